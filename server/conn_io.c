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

ssize_t conn_io_send(srv_conn *c, const void *src, size_t len)
{
    if (c->ssl) return srv_tls_send(c->ssl, src, len);
    return send(c->fd, src, len, MSG_NOSIGNAL);
}

ssize_t conn_io_writev(srv_conn *c, const struct iovec *iov, int cnt)
{
    if (c->ssl) return srv_tls_writev(c->ssl, iov, cnt);
    return writev(c->fd, iov, cnt);
}

ssize_t conn_io_sendfile(srv_conn *c, int fd, off_t *off, size_t len)
{
    if (c->ssl) return srv_tls_sendfile(c->ssl, fd, off, len);
    return sendfile(c->fd, fd, off, len);
}
