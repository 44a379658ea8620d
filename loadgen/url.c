#include "loadgen/url.h"

#include "lib/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int lg_url_parse(const char *s, lg_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    const char *p;
    if (!strncasecmp(s, "http://", 7)) {
        p = s + 7;
    } else if (!strncasecmp(s, "https://", 8)) {
        p = s + 8;
        u->tls = 1;
    } else {
        return err_fmt(err, errlen, "URL must start with http:// or https://: '%s'", s);
    }
    const char *end = p + strcspn(p, "/?#");
    const char *host = p, *hend, *port = NULL;
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(end - p));
        if (!hend) return err_fmt(err, errlen, "unterminated [IPv6] address in URL: '%s'", s);
        host = p + 1;
        if (hend + 1 < end) {
            if (hend[1] != ':') return err_fmt(err, errlen, "bad text after ] in URL: '%s'", s);
            port = hend + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        hend = colon ? colon : end;
        if (colon) port = colon + 1;
    }
    size_t hlen = (size_t)(hend - host);
    if (hlen == 0) return err_fmt(err, errlen, "URL has no host: '%s'", s);
    if (hlen >= sizeof(u->host)) return err_fmt(err, errlen, "host name too long: '%s'", s);
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!isalnum(c) && c != '.' && c != '-' && c != '_' && c != ':' && c != '%')
            return err_fmt(err, errlen, "bad character in URL host: '%s'", s);
    }
    memcpy(u->host, host, hlen);
    if (port) {
        size_t plen = (size_t)(end - port);
        char *e;
        char tmp[8] = {0};
        if (plen == 0 || plen > 5) return err_fmt(err, errlen, "bad port in URL: '%s'", s);
        memcpy(tmp, port, plen);
        long v = strtol(tmp, &e, 10);
        if (*e || v < 1 || v > 65535) return err_fmt(err, errlen, "bad port in URL: '%s'", s);
        snprintf(u->port, sizeof(u->port), "%ld", v);
    } else {
        strcpy(u->port, u->tls ? "443" : "80");
    }
    size_t alen = (size_t)(end - p);
    if (alen >= sizeof(u->authority))
        return err_fmt(err, errlen, "URL authority too long: '%s'", s);
    memcpy(u->authority, p, alen);
    if (*end == '#') end = "";
    if (*end == '?') {
        if (strlen(end) + 2 > sizeof(u->path))
            return err_fmt(err, errlen, "URL path too long: '%s'", s);
        u->path[0] = '/';
        strcpy(u->path + 1, end);
    } else if (*end) {
        size_t plen = strcspn(end, "#");
        if (plen + 1 > sizeof(u->path)) return err_fmt(err, errlen, "URL path too long: '%s'", s);
        memcpy(u->path, end, plen);
    } else {
        strcpy(u->path, "/");
    }
    for (const char *c = u->path; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return err_fmt(err, errlen, "URL path has a space or control character: '%s'", s);
    u->prefix_len = *end ? strlen(u->path) : 0;
    return 0;
}
