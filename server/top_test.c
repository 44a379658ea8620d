#include "server/top.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static const char *doc(int req)
{
    static char b[1024];
    snprintf(b, sizeof(b),
             "{\"version\":\"1.2\",\"pid\":42,\"load\":1,\"listen_queue\":3,"
             "\"workers\":[{\"id\":1,\"pid\":43,\"status\":\"busy\",\"requests\":%d,"
             "\"avg_rt\":1500,\"rss\":2097152,\"tx\":2048,\"exceptions\":1,\"waiting\":2,"
             "\"conns\":5,\"respawn_count\":0},{\"id\":2,\"pid\":0,\"status\":\"cheap\","
             "\"requests\":0}],\"aiserve\":{\"cheaper\":\"spare\"}}",
             req);
    return b;
}

Test(top, renders_header_rows_and_rates)
{
    top_prev prev = {0};
    buf out = BUF_INIT;
    const char *d = doc(100);
    cr_assert_eq(top_render(d, strlen(d), &prev, 10.0, &out), 0);
    buf_puts(&out, "");
    cr_assert(strstr(out.data, "pid 42") && strstr(out.data, "workers 1/2 (cheaper: spare)") &&
                  strstr(out.data, "listen queue 3"),
              "%s", out.data);
    cr_assert(strstr(out.data, "   1       43   busy        100      0.0      1.50      2.0"), "%s",
              out.data);
    cr_assert(strstr(out.data, "cheap"));
    buf_reset(&out);
    d = doc(150);
    cr_assert_eq(top_render(d, strlen(d), &prev, 12.0, &out), 0);
    buf_puts(&out, "");
    cr_assert(strstr(out.data, "25.0 req/s") && strstr(out.data, "150     25.0"), "%s", out.data);
    buf_free(&out);
}

Test(top, reads_an_http_framed_document_and_refuses_garbage)
{
    top_prev prev = {0};
    buf out = BUF_INIT;
    char http[1200];
    snprintf(http, sizeof(http), "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n%s",
             doc(1));
    cr_assert_eq(top_render(http, strlen(http), &prev, 1.0, &out), 0);
    buf_reset(&out);
    cr_assert_eq(top_render("{\"work", 6, &prev, 1.0, &out), -1);
    buf_puts(&out, "");
    cr_assert(strstr(out.data, "not a stats document"));
    buf_free(&out);
}
