/*
 * dist/zsock: ZeroMQ sockets set up as Locust's rpc/zmqrpc.py does (TCP
 * keepalive on, idle 30 s), plus aiload's limits: ZMQ_MAXMSGSIZE (a peer
 * cannot make us buffer more than DIST_MAX_MSG), IPv6 allowed, a short linger
 * so the last messages (stats, quit) still leave at exit.
 */
#ifndef LOADGEN_DIST_ZSOCK_H
#define LOADGEN_DIST_ZSOCK_H

#include <stddef.h>

/* A socket of type (ZMQ_DEALER / ZMQ_ROUTER); identity may be NULL. NULL
 * with errno on failure. */
void *dist_zsock_open(void *ctx, int type, const char *identity);

/* "tcp://host:port", brackets around an IPv6 literal; "*" binds to all. */
void dist_zsock_endpoint(char *out, size_t len, const char *host, int port);

/* n random lower-case hex digits (and a NUL) into out: a worker id like
 * Locust's uuid4().hex. */
void dist_random_hex(char *out, size_t n);

#endif
