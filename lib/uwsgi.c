/* uwsgi: the uwsgi protocol's request packet, parsed into an HTTP request view. */
#include "lib/uwsgi.h"

#include <string.h>

static unsigned get16(const char *p)
{
    return (unsigned)(unsigned char)p[0] | (unsigned)(unsigned char)p[1] << 8;
}

static int is_key(const char *k, size_t kl, const char *lit)
{
    return kl == strlen(lit) && !memcmp(k, lit, kl);
}

static int parse_port(const char *s, size_t n)
{
    int v = 0;
    if (n == 0 || n > 5) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 65535 ? v : 0;
}

/* Hop-by-hop and framing headers the front end already dealt with: the body
 * comes framed by CONTENT_LENGTH, and nginx answers Expect itself (a 100
 * Continue sent back would read as the final status). Content-Length and
 * Content-Type come from their CGI variables instead. */
static int skipped_header(const char *name, size_t n)
{
    static const char *const skip[] = {"CONNECTION",   "KEEP-ALIVE",       "TRANSFER-ENCODING",
                                       "TE",           "EXPECT",           "CONTENT-LENGTH",
                                       "CONTENT-TYPE", "PROXY-CONNECTION", "UPGRADE"};
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
        if (is_key(name, n, skip[i])) return 1;
    return 0;
}

static int add_header(http1_request *req, http1_header *hs, size_t max, const char *name, size_t nl,
                      const char *value, size_t vl)
{
    if (req->num_headers >= max) return HTTP1_TOO_MANY_HEADERS;
    hs[req->num_headers++] = (http1_header){name, nl, value, vl};
    return 0;
}

/* One variable. Returns 0, or an HTTP1_* error. */
static int take_var(char *k, size_t kl, const char *v, size_t vl, http1_request *req,
                    http1_header *hs, size_t max, uwsgi_vars *out)
{
    if (kl > 5 && !memcmp(k, "HTTP_", 5)) {
        char *name = k + 5;
        size_t nl = kl - 5;
        for (size_t i = 0; i < nl; i++)
            if (name[i] == '_') name[i] = '-';
        if (!http1_is_token(name, nl) || !http1_is_field_value(v, vl)) return HTTP1_BAD;
        if (skipped_header(name, nl)) return 0;
        return add_header(req, hs, max, name, nl, v, vl);
    }
    if (is_key(k, kl, "REQUEST_METHOD")) {
        if (!http1_is_token(v, vl)) return HTTP1_BAD;
        req->method = v;
        req->method_len = vl;
    } else if (is_key(k, kl, "REQUEST_URI")) {
        if (!http1_is_target(v, vl)) return HTTP1_BAD;
        req->target = v;
        req->target_len = vl;
    } else if (is_key(k, kl, "SERVER_PROTOCOL")) {
        /* HTTP/2 and 3 front ends: their requests have HTTP/1.1 semantics here */
        req->minor_version = is_key(v, vl, "HTTP/1.0") ? 0 : 1;
    } else if (is_key(k, kl, "PATH_INFO")) {
        if (!http1_is_field_value(v, vl)) return HTTP1_BAD;
        out->path_info = v;
        out->path_info_len = vl;
    } else if (is_key(k, kl, "QUERY_STRING")) {
        if (!http1_is_field_value(v, vl)) return HTTP1_BAD;
        out->query = v;
        out->query_len = vl;
    } else if (is_key(k, kl, "CONTENT_LENGTH") && vl) {
        if (http1_parse_length(v, vl) < 0) return HTTP1_BAD;
        return add_header(req, hs, max, "Content-Length", 14, v, vl);
    } else if (is_key(k, kl, "CONTENT_TYPE") && vl) {
        if (!http1_is_field_value(v, vl)) return HTTP1_BAD;
        return add_header(req, hs, max, "Content-Type", 12, v, vl);
    } else if (is_key(k, kl, "REMOTE_ADDR")) {
        out->remote_addr = v;
        out->remote_addr_len = vl;
    } else if (is_key(k, kl, "REMOTE_PORT")) {
        out->remote_port = parse_port(v, vl);
    } else if (is_key(k, kl, "HTTPS")) {
        out->https |= is_key(v, vl, "on") || is_key(v, vl, "ON") || is_key(v, vl, "1");
    } else if (is_key(k, kl, "REQUEST_SCHEME")) {
        out->https |= is_key(v, vl, "https");
    }
    return 0;
}

int uwsgi_parse_request(char *buf, size_t len, http1_request *req, http1_header *headers,
                        size_t max_headers, uwsgi_vars *vars)
{
    memset(req, 0, sizeof(*req));
    memset(vars, 0, sizeof(*vars));
    req->minor_version = 1;
    if (len < UWSGI_HEAD_SIZE) return HTTP1_INCOMPLETE;
    vars->modifier1 = (unsigned char)buf[0];
    vars->vars_size = get16(buf + 1);
    /* 0 is WSGI; 30 is WSGI with SCRIPT_NAME already cut from PATH_INFO, the
     * same request here since routing uses REQUEST_URI and our own mounts */
    if ((vars->modifier1 != 0 && vars->modifier1 != 30) || buf[3] != 0) return HTTP1_BAD;
    size_t total = UWSGI_HEAD_SIZE + vars->vars_size;
    if (len < total) return HTTP1_INCOMPLETE;
    char *p = buf + UWSGI_HEAD_SIZE, *end = buf + total;
    while (p < end) {
        if (end - p < 2) return HTTP1_BAD;
        size_t kl = get16(p);
        p += 2;
        if (kl == 0 || (size_t)(end - p) < kl + 2) return HTTP1_BAD;
        char *k = p;
        p += kl;
        size_t vl = get16(p);
        p += 2;
        if ((size_t)(end - p) < vl) return HTTP1_BAD;
        const char *v = p;
        p += vl;
        int rc = take_var(k, kl, v, vl, req, headers, max_headers, vars);
        if (rc) return rc;
    }
    if (!req->method || (!req->target && !vars->path_info)) return HTTP1_BAD;
    return (int)total;
}

int uwsgi_looks_like_http(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && i < 8 && buf[i] >= 'A' && buf[i] <= 'Z') i++;
    return i >= 3 && i < len && buf[i] == ' ';
}
