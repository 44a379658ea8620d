/*
 * conn_io: the connection's socket calls. A plain connection goes to the
 * kernel; one from an `https` listener goes through its SSL (tls.c), with
 * the same return conventions, so conn.c and resp.c test nothing else.
 */
#define _GNU_SOURCE
#include "server/core.h"
#include "server/tls.h"

#include <sys/sendfile.h>
#include <sys/socket.h>

ssize_t conn_io_recv(srv_conn *c, void *dst, size_t cap)
{
    if (c->ssl) return srv_tls_recv(c->ssl, dst, cap);
    return recv(c->fd, dst, cap, 0);
}

/* Every byte of a response leaves through one of these three: the stats
 * server's `tx` (head and body, as uWSGI counts it) is counted here. */
static ssize_t tx(srv_conn *c, ssize_t n)
{
    if (n > 0) sb_count_tx(c->w->slot, (uint64_t)n);
    return n;
}

ssize_t conn_io_send(srv_conn *c, const void *src, size_t len)
{
    return tx(c, c->ssl ? srv_tls_send(c->ssl, src, len) : send(c->fd, src, len, MSG_NOSIGNAL));
}

ssize_t conn_io_writev(srv_conn *c, const struct iovec *iov, int cnt)
{
    return tx(c, c->ssl ? srv_tls_writev(c->ssl, iov, cnt) : writev(c->fd, iov, cnt));
}

ssize_t conn_io_writev_more(srv_conn *c, const struct iovec *iov, int cnt)
{
    if (c->ssl) return tx(c, srv_tls_writev(c->ssl, iov, cnt));
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt};
    return tx(c, sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_MORE));
}

ssize_t conn_io_sendfile(srv_conn *c, int fd, off_t *off, size_t len)
{
    return tx(c, c->ssl ? srv_tls_sendfile(c->ssl, fd, off, len) : sendfile(c->fd, fd, off, len));
}
