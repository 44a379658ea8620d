/*
 * access: who may use the server. Bearer tokens (`auth-token-file`) guard
 * the model endpoints and, with `auth-apps`, the apps; `rate-limit` is a
 * token bucket per client address (per worker); `max-connections-per-ip`
 * caps a client address's open connections (over all workers, in a shared
 * table); `request-id` accepts a sane X-Request-Id or makes one, logs it,
 * returns it and hands it to the app.
 *
 * The parsers are pure functions (fuzzed: fuzz/server_access.c).
 */
#ifndef SERVER_ACCESS_H
#define SERVER_ACCESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_access srv_access;
typedef struct srv_conn srv_conn;
struct cfg;

#define ACCESS_TOKEN_MAX 4096 /* bytes of one token */
#define ACCESS_RID_MAX   64   /* bytes of an X-Request-Id */

/* Reads the access options of c (file:line in errors). *out stays NULL when
 * none is set. Made by the master before the workers fork. */
int access_create(struct cfg *c, srv_access **out, char *err, size_t errlen);
void access_free(srv_access *a);

/* A well-formed request head: sets c->request_id (`request-id`). Loop only. */
void access_request_id(srv_conn *c);
/* The routed request c: 0 to go on, 1 when answered (401, 404, 429). Loop only. */
int access_request(srv_conn *c);
void access_conn_opened(srv_access *a, srv_conn *c);
void access_conn_closed(srv_access *a, srv_conn *c);

/* ---- pure parsers ---- */

/* Calls fn(token, len, ctx) for each token of a token file: one a line,
 * blanks around it trimmed, empty lines and '#' comments skipped. Returns
 * the count, or -(line number) of a line with a bad character (a control,
 * a space inside) or longer than ACCESS_TOKEN_MAX. */
int access_parse_tokens(const char *text, size_t len,
                        void (*fn)(const char *tok, size_t n, void *ctx), void *ctx);
/* An Authorization value "Bearer <token68>": 0 with the token's span, -1 otherwise. */
int access_parse_bearer(const char *v, size_t n, const char **tok, size_t *tok_len);
/* A client's X-Request-Id is taken when 1..ACCESS_RID_MAX bytes of
 * [A-Za-z0-9._:+/=-]. */
int access_rid_ok(const char *v, size_t n);
/* "N/s" or "N/m" (requests per second or minute), with an optional
 * ",burst=B" (default: N, at least 1). 0 or -1. */
int access_parse_rate(const char *s, double *per_sec, double *burst);

#endif
