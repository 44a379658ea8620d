#define _GNU_SOURCE
#include "loadgen/py/pyconn.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "lib/ev.h"
#include "loadgen/stats.h"

/* The wait function: poll(2) instead of a greenlet switch. */
static int poll_wait(void *ctx, int fd, unsigned events, int64_t deadline_ns)
{
    (void)ctx;
    struct pollfd p = {
        .fd = fd,
        .events = (short)((events & EV_READ ? POLLIN : 0) | (events & EV_WRITE ? POLLOUT : 0))};
    int64_t left = (deadline_ns - pyconn_now_ns()) / 1000000;
    if (left <= 0) return -ETIMEDOUT;
    int n = poll(&p, 1, (int)left);
    return n == 0 ? -ETIMEDOUT : 0;
}

/* A scripted server: for each accepted connection, answers each request
 * with the next reply; "" closes the connection instead. */
typedef struct server {
    int lfd, port;
    const char *const *replies;
    int nreplies, accepts;
    pthread_t th;
} server;

static void *serve(void *arg)
{
    server *s = arg;
    int next = 0;
    while (next < s->nreplies) {
        int c = accept(s->lfd, NULL, NULL);
        if (c < 0) break;
        s->accepts++;
        char buf[4096];
        while (next < s->nreplies) {
            if (!*s->replies[next]) {
                next++;
                break; /* close this connection */
            }
            ssize_t n = read(c, buf, sizeof(buf));
            if (n <= 0) break;
            const char *r = s->replies[next++];
            if (write(c, r, strlen(r)) < 0) break;
        }
        close(c);
    }
    return NULL;
}

static void server_start(server *s, const char *const *replies, int n)
{
    memset(s, 0, sizeof(*s));
    s->replies = replies;
    s->nreplies = n;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t l = sizeof(a);
    getsockname(s->lfd, (struct sockaddr *)&a, &l);
    s->port = ntohs(a.sin_port);
    listen(s->lfd, 8);
    pthread_create(&s->th, NULL, serve, s);
}

static void server_stop(server *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_join(s->th, NULL);
}

static pyconn_origin origin_of(int port)
{
    pyconn_origin o = {0};
    struct sockaddr_in *a = (struct sockaddr_in *)&o.addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    o.addrlen = sizeof(*a);
    return o;
}

static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

static int get(pyconn *c, pyconn_resp *r, int *kind, int *code, int64_t timeout_ns)
{
    return pyconn_request(c, req, sizeof(req) - 1, 0, 1000000000, timeout_ns, poll_wait, NULL, r,
                          kind, code);
}

Test(pyconn, keep_alive_content_length_and_chunked)
{
    static const char *const replies[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
        "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: "
        "chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    };
    server s;
    server_start(&s, replies, 2);
    pyconn_origin o = origin_of(s.port);
    pyconn *c = pyconn_create(&o);
    pyconn_resp r;
    int kind = -1, code = -1;
    cr_assert_eq(get(c, &r, &kind, &code, 2000000000), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, 5);
    cr_assert(!memcmp(r.body, "hello", 5));
    cr_assert(!memcmp(r.reason, "OK", 2));
    cr_assert(memmem(r.headers, r.headers_len, "X-A: b", 6));
    cr_assert(r.t_end_ns >= r.t_start_ns);
    int fd = pyconn_fd(c);
    cr_assert_eq(get(c, &r, &kind, &code, 2000000000), 0);
    cr_assert_eq(pyconn_fd(c), fd); /* the same connection */
    cr_assert_eq(r.status, 404);
    cr_assert_eq(r.body_len, 5);
    cr_assert(!memcmp(r.body, "abcde", 5));
    pyconn_free(c);
    server_stop(&s);
    cr_assert_eq(s.accepts, 1);
}

Test(pyconn, a_stale_keep_alive_socket_is_resent_once)
{
    static const char *const replies[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
        "", /* the server closes the idle connection */
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
    };
    server s;
    server_start(&s, replies, 3);
    pyconn_origin o = origin_of(s.port);
    pyconn *c = pyconn_create(&o);
    pyconn_resp r;
    int kind, code;
    cr_assert_eq(get(c, &r, &kind, &code, 2000000000), 0);
    usleep(100000);
    cr_assert_eq(get(c, &r, &kind, &code, 2000000000), 0, "kind %d", kind);
    cr_assert_eq(r.body[0], 'b');
    pyconn_free(c);
    server_stop(&s);
    cr_assert_eq(s.accepts, 2);
}

Test(pyconn, refused_and_timed_out_requests_are_classified)
{
    server s;
    static const char *const none[] = {"x"};
    server_start(&s, none, 0); /* listens, never answers */
    int port = s.port;
    pyconn_origin o = origin_of(port);
    pyconn *c = pyconn_create(&o);
    pyconn_resp r;
    int kind = -1, code = -1;
    cr_assert_eq(get(c, &r, &kind, &code, 200000000), -EIO);
    cr_assert_eq(kind, LG_ERR_TIMEOUT);
    cr_assert_eq(code, 1);
    cr_assert(r.t_end_ns - r.t_start_ns >= 190000000);
    pyconn_free(c);
    server_stop(&s);
    c = pyconn_create(&o); /* nothing listens there any more */
    cr_assert_eq(get(c, &r, &kind, &code, 200000000), -EIO);
    cr_assert_eq(kind, LG_ERR_REFUSED);
    pyconn_free(c);
}

Test(pyconn, a_malformed_head_is_a_protocol_failure)
{
    static const char *const replies[] = {"HTTP/1.1 2x0 What\r\n\r\n"};
    server s;
    server_start(&s, replies, 1);
    pyconn_origin o = origin_of(s.port);
    pyconn *c = pyconn_create(&o);
    pyconn_resp r;
    int kind = -1, code = -1;
    cr_assert_eq(get(c, &r, &kind, &code, 2000000000), -EIO);
    cr_assert_eq(kind, LG_ERR_PROTOCOL);
    pyconn_free(c);
    server_stop(&s);
}
