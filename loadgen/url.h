/*
 * url: the http:// and https:// URLs aiload accepts for hosts and quick-mode
 * targets.
 */
#ifndef LOADGEN_URL_H
#define LOADGEN_URL_H

#include <stddef.h>

typedef struct lg_url {
    int tls;             /* 1: https:// */
    char host[256];      /* name or address, without brackets */
    char port[8];        /* decimal, "80" (http) or "443" (https) by default */
    char authority[272]; /* as the Host header wants it: host[:port] */
    char path[2048];     /* "/" when absent; includes the query */
    /* As a host (-H, scenario host), the path is a prefix of every request's
     * path, joined as Locust joins them: text, not path segments, so
     * "http://h/api" + "/x" is "/api/x" and "http://h/" + "/x" is "//x".
     * 0 when the URL has no path or query ("http://h:8080"). */
    size_t prefix_len;
} lg_url;

/* Parses "http[s]://host[:port][/path]" (the scheme in any case). Returns 0,
 * or -1 with a message in err (other schemes are refused by name). */
int lg_url_parse(const char *s, lg_url *u, char *err, size_t errlen);

#endif
