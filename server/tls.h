/*
 * tls: TLS termination for `https` listeners (OpenSSL). One srv_tls (an
 * SSL_CTX) per listener, made by the master before fork, so every worker
 * shares its session-ticket keys (a ticket from one worker resumes on
 * another); one SSL per connection, driven non-blocking on the worker's
 * loop for the handshake and by whichever thread owns the connection after.
 * The I/O calls follow recv/send/writev/sendfile's conventions (bytes, or
 * -1 with errno, EAGAIN when the socket must be waited for), so the core
 * swaps them in where it would call the kernel.
 */
#ifndef SERVER_TLS_H
#define SERVER_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct srv_tls srv_tls;
struct ssl_st;

/* Parses uWSGI's `https = addr,cert,key[,ciphers][,client_ca]` spec (the
 * address is the caller's; spec starts after it) and loads the files. A
 * client_ca asks for a client certificate and checks one that is sent;
 * '!' before it (as in uWSGI) refuses clients without one.
 * where: "file:line" for messages. 0, or -1 with err set. */
int srv_tls_create(const char *spec, const char *where, srv_tls **out, char *err, size_t errlen);
void srv_tls_free(srv_tls *t);
/* The address part of an https spec ("addr,cert,key..."), into out. -1: too long. */
int srv_tls_addr(const char *spec, char *out, size_t cap);

struct ssl_st *srv_tls_conn_new(srv_tls *t, int fd);
/* Sends close_notify (non-blocking, best effort) and frees. */
void srv_tls_conn_free(struct ssl_st *ssl, int notify);
enum { SRV_TLS_DONE = 1, SRV_TLS_WANT = 0, SRV_TLS_FAIL = -1, SRV_TLS_PLAIN_HTTP = -2 };
/* One step of the handshake: DONE, WANT (*want = EV_READ or EV_WRITE), FAIL,
 * or PLAIN_HTTP (the client spoke plain HTTP to the port). */
int srv_tls_handshake(struct ssl_st *ssl, unsigned *want);
ssize_t srv_tls_recv(struct ssl_st *ssl, void *dst, size_t cap);
ssize_t srv_tls_send(struct ssl_st *ssl, const void *src, size_t len);
ssize_t srv_tls_writev(struct ssl_st *ssl, const struct iovec *iov, int cnt);
/* sendfile(2) through TLS: pread + write, at most one record's worth. */
ssize_t srv_tls_sendfile(struct ssl_st *ssl, int fd, off_t *off, size_t len);
/* Decrypted bytes OpenSSL holds that the socket will not signal. */
int srv_tls_pending(const struct ssl_st *ssl);
/* The verified client certificate's subject (RFC 2253 form) into out; ""
 * when none. */
void srv_tls_peer_dn(struct ssl_st *ssl, char *out, size_t cap);

#endif
