/* static.c: static-map lookups on a real directory, with no socket: the
 * answer is a status, or the file set as the response (resp.c's state). */
#include "server/static.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[PATH_MAX], outside[PATH_MAX];
static srv s;
static srv_static map;
static srv_conn *c;

static void put(const char *base, const char *name, const char *text)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", base, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    char tmpl[] = "/tmp/static_testXXXXXX", tmpl2[] = "/tmp/static_outXXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    cr_assert_not_null(mkdtemp(tmpl2));
    cr_assert_not_null(realpath(tmpl, dir));
    cr_assert_not_null(realpath(tmpl2, outside));
    put(dir, "index.html", "<p>hi</p>\n");
    put(dir, "app.js", "x()\n");
    put(outside, "secret.txt", "secret\n");
    char sub[PATH_MAX * 2], link[PATH_MAX * 2], target[PATH_MAX * 2];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    snprintf(link, sizeof(link), "%s/escape.txt", dir);
    snprintf(target, sizeof(target), "%s/secret.txt", outside);
    cr_assert_eq(symlink(target, link), 0);
    memset(&s, 0, sizeof(s));
    map = (srv_static){.prefix = "/static", .dir = dir, .prefix_len = 7, .metric = 5};
    s.s.statics = &map;
    s.s.nstatics = 1;
    s.nlisten = 2;
    s.listen_admin[1] = 1;
    c = calloc(1, sizeof(*c));
    resp_reset(c);
}

static void teardown(void)
{
    if (c->send_fd >= 0) close(c->send_fd);
    buf_free(&c->rhead);
    free(c);
    char cmd[PATH_MAX * 3];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, outside);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(static_map, .init = setup, .fini = teardown);

static int try(const char *method, const char *path, int listen_idx, const char **msg)
{
    c->ar = (app_request){.method = method, .method_len = strlen(method), ._conn = c};
    int metric = -1;
    *msg = NULL;
    int st = static_try(&s, listen_idx, &c->ar, path, strlen(path), &metric, msg);
    if (st) cr_assert_eq(metric, 5, "the mapping's metric");
    return st;
}

Test(static_map, serves_a_file_with_its_type)
{
    const char *msg;
    cr_assert_eq(try("GET", "/static/index.html", 0, &msg), 200);
    cr_assert(strstr(c->rhead.data, "Content-Type: text/html; charset=utf-8\r\n"), "%s",
              c->rhead.data);
    cr_assert_geq(c->send_fd, 0, "the file waits to be sent after the head");
    cr_assert_eq(c->send_left, 10);
    cr_assert_eq(c->send_off, 0);
}

Test(static_map, head_is_served_too)
{
    const char *msg;
    cr_assert_eq(try("HEAD", "/static/app.js", 0, &msg), 200);
    cr_assert(strstr(c->rhead.data, "Content-Type: text/javascript\r\n"));
}

Test(static_map, only_its_prefix_at_a_segment_boundary)
{
    const char *msg;
    cr_assert_eq(try("GET", "/staticx/index.html", 0, &msg), 0);
    cr_assert_eq(try("GET", "/other", 0, &msg), 0);
    cr_assert_eq(try("GET", "/static/index.html", 1, &msg), 0, "an admin listener serves no files");
}

Test(static_map, errors_name_the_problem)
{
    const char *msg;
    cr_assert_eq(try("POST", "/static/index.html", 0, &msg), 405);
    cr_assert_str_eq(msg, "method not allowed");
    cr_assert_eq(try("GET", "/static/missing.txt", 0, &msg), 404);
    cr_assert_str_eq(msg, "not found");
    cr_assert_eq(try("GET", "/static/sub", 0, &msg), 404, "a directory is not a file");
    cr_assert_eq(try("GET", "/static/a/../index.html", 0, &msg), 403);
    cr_assert_str_eq(msg, "forbidden");
    cr_assert_eq(try("GET", "/static/a\\b", 0, &msg), 403);
    cr_assert_eq(try("GET", "/static/escape.txt", 0, &msg), 404,
                 "a symlink out of the directory is refused");
    char longp[PATH_MAX + 64] = "/static/";
    memset(longp + 8, 'a', PATH_MAX);
    longp[8 + PATH_MAX] = 0;
    cr_assert_eq(try("GET", longp, 0, &msg), 414);
    cr_assert_eq(c->send_fd, -1, "no file was opened for an error");
}

Test(static_map, mime_types)
{
    cr_assert_str_eq(static_mime_type("/a/b.PNG"), "image/png");
    cr_assert_str_eq(static_mime_type("/a/model.onnx"), "application/octet-stream");
    cr_assert_str_eq(static_mime_type("/a.d/noext"), "application/octet-stream");
}
