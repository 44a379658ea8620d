/*
 * uwsgi: a parser for the request packet of the uwsgi protocol, the binary
 * framing nginx's uwsgi_pass and uWSGI's routers send to a `socket =`.
 *
 * A packet is a 4-byte header (modifier1, vars size as uint16 little-endian,
 * modifier2) and a vars block of (uint16 key length, key, uint16 value length,
 * value) pairs carrying CGI variables; CONTENT_LENGTH body bytes follow it.
 *
 * The parser turns the packet into the same request view the HTTP/1.1 parser
 * gives (lib/http1.h), so the server handles both alike: REQUEST_METHOD,
 * REQUEST_URI and SERVER_PROTOCOL become the request line; HTTP_* variables
 * become headers (HTTP_USER_AGENT -> "USER-AGENT", rewritten in place in the
 * caller's buffer); CONTENT_LENGTH and CONTENT_TYPE become Content-Length and
 * Content-Type headers. Every other variable is ignored: the protocol can
 * carry instructions (UWSGI_FILE, UWSGI_SCRIPT) that must never load code.
 * Strings point into buf, which must outlive the result.
 */
#ifndef UWSGI_H
#define UWSGI_H

#include "lib/http1.h"

#include <stddef.h>

enum {
    UWSGI_HEAD_SIZE = 4,
};

/* What the packet said beyond the request line and headers. Strings point
 * into the caller's buffer and are not NUL-terminated. */
typedef struct uwsgi_vars {
    int modifier1;         /* 0 for a WSGI request */
    size_t vars_size;      /* the header's size field: bytes of vars after the header */
    const char *path_info; /* PATH_INFO, when REQUEST_URI is absent */
    size_t path_info_len;
    const char *query; /* QUERY_STRING, likewise */
    size_t query_len;
    const char *remote_addr; /* REMOTE_ADDR: the client nginx talked to */
    size_t remote_addr_len;
    int remote_port; /* REMOTE_PORT, 0 when absent */
    int https;       /* HTTPS = on/1, or REQUEST_SCHEME = https */
} uwsgi_vars;

/*
 * Parses the packet head at buf[0..len). Returns the head length (4 + vars
 * size; the body follows) and fills req, headers[0..req->num_headers) and
 * vars; or HTTP1_INCOMPLETE when more bytes are needed (vars->vars_size is
 * set as soon as the 4-byte header is in, so the caller can refuse an
 * oversized packet early), HTTP1_TOO_MANY_HEADERS, or HTTP1_BAD on a
 * malformed block, a modifier other than 0, or a missing method or target.
 * When REQUEST_URI is absent, req->target is NULL and the caller composes it
 * from vars->path_info and vars->query.
 */
int uwsgi_parse_request(char *buf, size_t len, http1_request *req, http1_header *headers,
                        size_t max_headers, uwsgi_vars *vars);

/* 1 if the first bytes look like an HTTP request line ("GET /", "POST ..."):
 * someone sent HTTP to a uwsgi socket, which deserves its own message. */
int uwsgi_looks_like_http(const char *buf, size_t len);

#endif
