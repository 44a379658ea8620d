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
} lg_url;

/* Parses "http[s]://host[:port][/path]" (the scheme in any case). Returns 0,
 * or -1 with a message in err (other schemes are refused by name). */
int lg_url_parse(const char *s, lg_url *u, char *err, size_t errlen);

#endif
