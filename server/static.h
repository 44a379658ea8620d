/*
 * static: static-map, files served from mapped directories (sendfile). It
 * answers through app.h like any app, so it depends on nothing in the core
 * but the settings; conn.c asks it first, before the routes.
 */
#ifndef SERVER_STATIC_H
#define SERVER_STATIC_H

#include "server/core.h"

/* Looks up the decoded path (path[0..n), NUL-terminated) in the static-map
 * of s, for a request on listener listen_idx (an admin listener serves no
 * files). 0: no mapping covers it. Else *metric is the mapping's metric and
 * the return is the status: 200 with the file set as r's response
 * (Content-Type and app_sendfile), or an error status (403, 404, 405, 414)
 * with *msg naming it, for the caller to answer. */
int static_try(const srv *s, int listen_idx, app_request *r, const char *path, size_t n,
               int *metric, const char **msg);

/* The Content-Type for a file name, by its extension. */
const char *static_mime_type(const char *path);

#endif
