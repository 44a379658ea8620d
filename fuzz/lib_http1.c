/* libFuzzer target for lib/http1: the request, response and header parsers
 * and the chunked decoder must never read out of bounds, crash, or return a
 * length beyond the input; and the decoder, fed the same bytes in two pieces,
 * must produce the same payload as fed all at once. A decoded path is never
 * longer than its input and keeps no "." or ".." segment. A parsed request
 * head gets a verdict from http1_check_request that is one of its statuses and
 * never lets through a head the rules refuse (CL+TE, no Host in HTTP/1.1). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http1.h"

static void check_chunked(const uint8_t *data, size_t size)
{
    char *a = malloc(size ? size : 1), *b = malloc(size ? size : 1);
    if (!a || !b) goto out;
    memcpy(a, data, size);
    memcpy(b, data, size);
    http1_chunked d1 = HTTP1_CHUNKED_INIT, d2 = HTTP1_CHUNKED_INIT;
    size_t l1 = size;
    ssize_t r1 = http1_decode_chunked(&d1, a, &l1);
    if (l1 > size || (r1 >= 0 && (size_t)r1 + l1 > size)) abort();
    /* Split at a data-derived point and decode in two calls. */
    size_t cut = size ? data[0] % (size + 1) : 0;
    size_t la = cut, lb = size - cut, out = 0;
    ssize_t r2 = http1_decode_chunked(&d2, b, &la);
    out = la;
    if (r2 == HTTP1_INCOMPLETE) {
        memmove(b + out, b + cut, lb);
        r2 = http1_decode_chunked(&d2, b + out, &lb);
        out += lb;
    }
    if ((r1 == HTTP1_BAD) != (r2 == HTTP1_BAD) && r1 != HTTP1_BAD && r2 != HTTP1_BAD) abort();
    if (r1 >= 0 && r2 >= 0 && (out != l1 || memcmp(a, b, l1))) abort();
out:
    free(a);
    free(b);
}

static void check_path(const char *in, size_t size)
{
    char *out = malloc(size + 1);
    if (!out) return;
    size_t len = 0;
    int rc = http1_decode_path(in, size, out, &len);
    if (rc == 0) {
        if (len > size || out[len] != 0) abort();
        if (size && in[0] == '/' && (len == 0 || out[0] != '/')) abort();
        for (size_t i = 0; len && out[0] == '/' && i < len; i++) {
            if (out[i] != '/') continue;
            size_t e = i + 1;
            while (e < len && out[e] != '/') e++;
            if ((e - i == 2 && out[i + 1] == '.') ||
                (e - i == 3 && out[i + 1] == '.' && out[i + 2] == '.'))
                abort();
        }
    } else if (rc != HTTP1_BAD && rc != HTTP1_PATH_ABOVE_ROOT) {
        abort();
    }
    free(out);
}

static void check_rules(const http1_request *req, const http1_header *h, int64_t max_body)
{
    http1_check k;
    http1_check_request(req, h, max_body, &k);
    int st = k.status;
    if (st != 0 && st != 400 && st != 413 && st != 417 && st != 501) abort();
    if ((st != 0) != (k.reason != NULL)) abort();
    if (st != 0 && st != 413) return;
    if (k.chunked && k.content_length >= 0) abort();
    if (k.chunked && req->minor_version == 0) abort();
    if (req->minor_version == 1 && !k.host) abort();
    if (k.content_length < -1) abort();
    if (max_body > 0 && k.content_length > max_body && st != 413) abort();
    if (st == 413 && (max_body <= 0 || k.content_length <= max_body)) abort();
    const http1_header *cl = http1_find_header(h, req->num_headers, "content-length");
    if (cl && http1_parse_length(cl->value, cl->value_len) != k.content_length) abort();
    if (!cl && k.content_length != -1) abort();
    if (http1_method_is(req->method, req->method_len, "GET") &&
        (req->method_len != 3 || memcmp(req->method, "GET", 3)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes: ASan flags any over-read. */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    http1_header h[32];
    http1_request req;
    http1_response res;
    size_t nh;
    int n = http1_parse_request(buf, size, 0, &req, h, 32);
    if (n > (int)size) abort();
    if (n > 0 && (req.num_headers > 32 || req.method_len == 0 || req.target_len == 0)) abort();
    if (n > 0) check_rules(&req, h, size ? (int64_t)data[size - 1] : 0);
    int n2 = http1_parse_request(buf, size, size / 2, &req, h, 32);
    if (n > 0 && n2 > 0 && n2 != n) abort();
    n = http1_parse_response(buf, size, 0, &res, h, 32);
    if (n > (int)size || (n > 0 && (res.status < 100 || res.status > 999))) abort();
    n = http1_parse_headers(buf, size, 0, h, 32, &nh);
    if (n > (int)size) abort();
    if (size < 20) (void)http1_parse_length(buf, size);
    (void)http1_value_has_token(buf, size, "close");
    check_path(buf, size);
    free(buf);
    check_chunked(data, size);
    return 0;
}
