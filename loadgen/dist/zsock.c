/*
 * dist/zsock: see zsock.h.
 */
#define _GNU_SOURCE
#include "loadgen/dist/zsock.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "loadgen/dist/msg.h"

void *dist_zsock_open(void *ctx, int type, const char *identity)
{
    void *s = zmq_socket(ctx, type);
    if (!s) return NULL;
    int one = 1, idle = 30, linger = 2000;
    int64_t max = DIST_MAX_MSG;
    zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE, &one, sizeof(one));
    zmq_setsockopt(s, ZMQ_TCP_KEEPALIVE_IDLE, &idle, sizeof(idle));
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max));
    zmq_setsockopt(s, ZMQ_IPV6, &one, sizeof(one));
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    if (identity) zmq_setsockopt(s, ZMQ_ROUTING_ID, identity, strlen(identity));
    return s;
}

void dist_zsock_endpoint(char *out, size_t len, const char *host, int port)
{
    int v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(out, len, "tcp://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

void dist_random_hex(char *out, size_t n)
{
    unsigned char b[64];
    size_t need = (n + 1) / 2 < sizeof(b) ? (n + 1) / 2 : sizeof(b);
    if (getrandom(b, need, 0) != (ssize_t)need) {
        /* no entropy source: time and pid still tell workers apart */
        uint64_t x = (uint64_t)time(NULL) * 6364136223846793005ull ^ (uint64_t)getpid();
        for (size_t i = 0; i < need; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            b[i] = (unsigned char)x;
        }
    }
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    for (; i < n && i / 2 < need; i++) out[i] = hex[(b[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[i] = 0;
}
