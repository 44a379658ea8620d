/*
 * tls: aiload's TLS client on OpenSSL, driven by the workers' epoll loops.
 *
 * One lg_tls (an SSL_CTX with the run's trust settings) per run, created by
 * the runner before any worker sees it and never changed afterwards: the
 * workers share it read-only (creating SSL objects from a shared SSL_CTX is
 * thread-safe in OpenSSL 1.1+; its certificate store locks internally).
 *
 * Each connection gets its own SSL object (lg_tls_conn_new), owned by the
 * connection. Everything is non-blocking: the calls below never wait, they
 * say which events (EV_READ / EV_WRITE of lib/ev.h) to wait for instead.
 *
 * Sessions: after a handshake the server's session (TLS 1.2 session id or
 * TLS 1.3 ticket) is kept in the slot the connection passed in; the next
 * connection on that slot offers it, so a user that reconnects resumes
 * instead of paying a full handshake.
 *
 * Error codes (for LG_ERR_TLS, see lg_tls_err_format): 0 the peer closed the
 * connection during the handshake; 1..4095 an X509 verification result
 * (X509_V_ERR_*); -errno a socket error; >= 4096 an OpenSSL error code
 * (library and reason, ERR_PACK).
 */
#ifndef LOADGEN_TLS_H
#define LOADGEN_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct ssl_st;
struct ssl_session_st;

typedef struct lg_tls lg_tls;

typedef struct lg_tls_opts {
    int insecure;       /* 1: no certificate or host name check (--insecure) */
    const char *cacert; /* PEM file of extra trusted CAs (--cacert); NULL: none */
} lg_tls_opts;

/* Creates the run's context: system trust store (plus cacert), verification
 * with host name check unless insecure, ALPN http/1.1, client session cache.
 * Returns 0, or -1 with a message in err (e.g. an unreadable cacert). */
int lg_tls_create(const lg_tls_opts *o, lg_tls **out, char *err, size_t errlen);
void lg_tls_free(lg_tls *t);

/* A client SSL on connected socket fd for host (a name gets SNI and a name
 * check; an IP address an address check). sess: the connection's session
 * slot; a session in it is offered for resumption, and new sessions from
 * the server replace it. The slot must outlive the SSL. NULL on failure. */
struct ssl_st *lg_tls_conn_new(const lg_tls *t, int fd, const char *host,
                               struct ssl_session_st **sess);
/* Frees the SSL without a close_notify (the socket is being closed anyway);
 * the session in the slot stays resumable. NULL is a no-op. */
void lg_tls_conn_free(struct ssl_st *ssl);
/* Frees a kept session (NULL is a no-op). */
void lg_tls_session_free(struct ssl_session_st *sess);
/* 1 when the last handshake on ssl resumed a session. */
int lg_tls_resumed(const struct ssl_st *ssl);

/* Advances the handshake. 1: done; 0: call again once *want (EV_READ or
 * EV_WRITE) is ready; -1: failed, *code says why (see above). */
int lg_tls_handshake(struct ssl_st *ssl, unsigned *want, int *code);

/* Like read(2) and writev(2): > 0 bytes moved; read returns 0 at the end of
 * the stream (close_notify or a TCP close); -1 with errno EAGAIN (*want says
 * which event to wait for), EPROTO (a TLS error, *code set) or the socket's
 * errno. writev may move fewer bytes than asked, as writev does. */
ssize_t lg_tls_read(struct ssl_st *ssl, void *dst, size_t cap, unsigned *want, int *code);
ssize_t lg_tls_writev(struct ssl_st *ssl, const struct iovec *iov, int iovcnt, unsigned *want,
                      int *code);
/* 1 when OpenSSL holds received bytes that epoll will not report again. */
int lg_tls_pending(const struct ssl_st *ssl);

/* Text for an LG_ERR_TLS code, e.g. "TLS: certificate verify failed:
 * self-signed certificate". */
void lg_tls_err_format(int code, char *out, size_t len);

#endif
