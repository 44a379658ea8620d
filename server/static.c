/*
 * static: static-map (see static.h). A path is refused when any segment is
 * "..", and the file, symlinks resolved, must lie under the mapped directory.
 */
#define _GNU_SOURCE
#include "server/static.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const char *static_mime_type(const char *path)
{
    static const char *const map[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".css", "text/css"},
        {".js", "text/javascript"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".svg", "image/svg+xml"},
        {".ico", "image/x-icon"},
        {".wasm", "application/wasm"},
        {".onnx", "application/octet-stream"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (!strcasecmp(dot, map[i][0])) return map[i][1];
    return "application/octet-stream";
}

/* 1 if any segment of the decoded path is "..": refused outright. */
static int has_dotdot(const char *p)
{
    for (const char *s = p; (s = strstr(s, "..")); s += 2) {
        int start = s == p || s[-1] == '/';
        int end = s[2] == 0 || s[2] == '/';
        if (start && end) return 1;
    }
    return 0;
}

static int method_is(const app_request *r, const char *m)
{
    return http1_token_eq(r->method, r->method_len, m) && strlen(m) == r->method_len;
}

static int serve(const srv_static *st, app_request *r, const char *rel, const char **msg)
{
    char full[PATH_MAX], real[PATH_MAX];
    if (has_dotdot(rel) || strchr(rel, '\\')) {
        *msg = "forbidden";
        return 403;
    }
    if (snprintf(full, sizeof(full), "%s/%s", st->dir, *rel == '/' ? rel + 1 : rel) >=
        (int)sizeof(full)) {
        *msg = "path too long";
        return 414;
    }
    size_t dl = strlen(st->dir);
    /* realpath resolves symlinks: the file must still lie under the mapped
     * directory, so a link pointing outside it is refused. */
    struct stat sb;
    int fd = -1;
    if (!realpath(full, real) || strncmp(real, st->dir, dl) || (real[dl] && real[dl] != '/') ||
        (fd = open(real, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0) close(fd);
        *msg = "not found";
        return 404;
    }
    const char *mt = static_mime_type(real);
    app_add_header(r, "Content-Type", 12, mt, strlen(mt));
    app_sendfile(r, fd, 0, sb.st_size); /* dup()ed: sent after the head, on the loop */
    close(fd);
    return 200;
}

int static_try(const srv *s, int listen_idx, app_request *r, const char *p, size_t n, int *metric,
               const char **msg)
{
    if (s->listen_admin[listen_idx]) return 0; /* an admin listener serves built-ins only */
    for (size_t i = 0; i < s->s.nstatics; i++) {
        const srv_static *st = &s->s.statics[i];
        size_t pl = st->prefix_len;
        if (n < pl || memcmp(p, st->prefix, pl) || (n > pl && p[pl] != '/' && pl)) continue;
        *metric = st->metric;
        if (!method_is(r, "GET") && !method_is(r, "HEAD")) {
            *msg = "method not allowed";
            return 405;
        }
        return serve(st, r, p + pl, msg);
    }
    return 0;
}
