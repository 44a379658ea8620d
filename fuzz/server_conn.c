/* libFuzzer: client bytes into a connection of a real worker loop (no
 * processes): conn.c reads, parses (HTTP/1.x, or the uwsgi protocol when the
 * first byte is 0, as a uwsgi packet's modifier1 is), checks, reads bodies (de-chunking), routes
 * and answers, resp.c frames the answers, pipelined requests included; then the client hangs up and
 * the timeout sweep runs. Nothing may crash, leak a connection or read out of bounds, whatever the
 * bytes. */
#define _GNU_SOURCE
#include "server/core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static srv s;
static srv_worker w;

static int echo(app_request *r, void *d)
{
    (void)d;
    app_add_header(r, "Content-Type", 12, "text/plain", 10);
    app_write(r, r->path_info, r->path_info_len);
    if (r->body) app_write(r, r->body, r->body_len);
    return r->query_len ? -1 : APP_DONE; /* a query: a failing handler (500) */
}

static void init(void)
{
    s.sb = sb_create(1, 1);
    if (!s.sb) abort();
    s.s.buffer_size = 4096;
    s.s.socket_timeout = 5;
    s.s.keepalive = 5;
    s.s.limit_post = 1 << 16;
    s.s.disable_logging = 1;
    s.nlisten = 2;
    s.listen_fds[0] = s.listen_fds[1] = -1;
    s.listen_proto[1] = SRV_PROTO_UWSGI;
    if (srv_route_add(&s, "/", SRV_MATCH_PREFIX, APP_RUN_LOOP, echo, NULL, 0)) abort();
    w.srv = &s;
    w.id = 1;
    w.slot = sb_slot_at(s.sb, 0);
    w.loop = ev_loop_new();
    if (!w.loop) abort();
    w.loop_tid = pthread_self();
    w.max_conns = 16;
    w.mem_fd = -1;
    w.listen_closed = 1;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_init(&w.done_mu, NULL);
    if (worker_async_init(&w)) abort();
    resp_update_date(&w);
}

static void drain(int fd)
{
    char b[65536];
    while (recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0) {
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!w.loop) init();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)) return 0;
    srv_conn *c = conn_new(&w, sv[0]);
    if (!c) {
        close(sv[1]);
        return 0;
    }
    struct sockaddr_storage ss = {.ss_family = AF_UNIX};
    conn_accepted(c, size && data[0] == 0, &ss);
    size_t off = 0;
    for (int round = 0; off < size && round < 256; round++) {
        ssize_t n = send(sv[1], data + off, size - off, MSG_NOSIGNAL);
        if (n > 0) off += (size_t)n;
        ev_loop_run_once(w.loop, 0);
        drain(sv[1]);
    }
    shutdown(sv[1], SHUT_WR); /* the client is done sending */
    for (int i = 0; i < 8 && w.nconns; i++) {
        ev_loop_run_once(w.loop, 0);
        drain(sv[1]);
    }
    conn_sweep(&w, ev_now_ms(w.loop) + 3600 * 1000); /* every deadline passed */
    drain(sv[1]);
    while (w.conns) conn_close(w.conns);
    if (w.in_flight != 0 || atomic_load(&w.slot->conns) != 0) abort();
    close(sv[1]);
    return 0;
}
