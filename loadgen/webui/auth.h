/*
 * webui_auth: HTTP Basic authentication of the web UI (--web-auth USER:PASS,
 * Locust's flag). The expected credentials are kept only as a SHA-256
 * digest, and a request's are hashed the same way and compared with
 * CRYPTO_memcmp, so the time a check takes says nothing about how much of
 * the password was right, nor about its length.
 */
#ifndef LOADGEN_WEBUI_AUTH_H
#define LOADGEN_WEBUI_AUTH_H

#include <stddef.h>

typedef struct webui_auth {
    int on;
    unsigned char digest[32]; /* SHA-256 of "user:pass" */
} webui_auth;

/* The value of WWW-Authenticate on a 401. */
#define WEBUI_AUTH_CHALLENGE "Basic realm=\"aiload\", charset=\"UTF-8\""

/* Checks "user:pass" as Locust does (exactly one ':') and keeps its digest.
 * NULL turns authentication off. Returns 0, or -1 with a message. */
int webui_auth_init(webui_auth *a, const char *user_pass, char *err, size_t errlen);

/* 1 when an Authorization header value (not NUL-terminated; NULL: header
 * absent) carries the right "Basic base64(user:pass)", or auth is off. */
int webui_auth_check(const webui_auth *a, const char *value, size_t len);

/* Strict base64 (RFC 4648, padding required, no blanks) of s[0..n) into out
 * (cap bytes). Returns the decoded length, or -1. */
int webui_base64_decode(const char *s, size_t n, unsigned char *out, size_t cap);

#endif
