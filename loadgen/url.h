/*
 * url: the http:// URLs aiload accepts for hosts and quick-mode targets.
 */
#ifndef LOADGEN_URL_H
#define LOADGEN_URL_H

#include <stddef.h>

typedef struct lg_url {
    char host[256];      /* name or address, without brackets */
    char port[8];        /* decimal, "80" by default */
    char authority[272]; /* as the Host header wants it: host[:port] */
    char path[2048];     /* "/" when absent; includes the query */
} lg_url;

/* Parses "http://host[:port][/path]". Returns 0, or -1 with a message in err
 * (https and other schemes are refused by name). */
int lg_url_parse(const char *s, lg_url *u, char *err, size_t errlen);

#endif
