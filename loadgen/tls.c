#define _GNU_SOURCE
#include "loadgen/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/ev.h"

#define CODE_MIN_PACKED 4096 /* codes below are verify results or errnos */

struct lg_tls {
    SSL_CTX *ctx;
    int insecure;
};

/* The server sent a session (or ticket): it goes into the connection's slot,
 * replacing the one before. Returning 1 keeps our reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *s)
{
    SSL_SESSION **slot = SSL_get_app_data(ssl);
    if (!slot) return 0;
    SSL_SESSION_free(*slot);
    *slot = s;
    return 1;
}

static int ctx_fail(SSL_CTX *ctx, char *err, size_t errlen, const char *what)
{
    char reason[256] = "unknown error";
    unsigned long e = ERR_peek_last_error();
    if (e) ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s", what, reason);
    SSL_CTX_free(ctx);
    return -1;
}

static int load_cacert(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    char what[300];
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--cacert %s: %s", path, strerror(errno));
        SSL_CTX_free(ctx);
        return -1;
    }
    fclose(f);
    snprintf(what, sizeof(what), "--cacert %s: no PEM certificate loaded", path);
    if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1)
        return ctx_fail(ctx, err, errlen, what);
    return 0;
}

int lg_tls_create(const lg_tls_opts *o, lg_tls **out, char *err, size_t errlen)
{
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return ctx_fail(NULL, err, errlen, "cannot create the TLS context");
    /* partial writes behave like writev's; read-ahead takes a whole response
     * in one read(2) instead of one per record header and body */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    /* A keep-alive server that closes without close_notify is an ordinary
     * end of stream for HTTP/1.1 (framing is HTTP's, not TLS's). */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_set_default_verify_paths(ctx) != 1)
        return ctx_fail(ctx, err, errlen, "cannot load the system trust store");
    if (o->cacert && load_cacert(ctx, o->cacert, err, errlen)) return -1;
    SSL_CTX_set_verify(ctx, o->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    static const unsigned char alpn[] = "\x08http/1.1";
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
        return ctx_fail(ctx, err, errlen, "cannot set ALPN");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    lg_tls *t = calloc(1, sizeof(*t));
    if (!t) {
        SSL_CTX_free(ctx);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->ctx = ctx;
    t->insecure = o->insecure;
    *out = t;
    return 0;
}

void lg_tls_free(lg_tls *t)
{
    if (!t) return;
    SSL_CTX_free(t->ctx);
    free(t);
}

static int is_ip(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

SSL *lg_tls_conn_new(const lg_tls *t, int fd, const char *host, SSL_SESSION **sess)
{
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl) goto fail;
    if (SSL_set_fd(ssl, fd) != 1) goto fail;
    SSL_set_connect_state(ssl);
    SSL_set_app_data(ssl, sess);
    int ip = is_ip(host);
    /* RFC 6066: SNI carries host names only, never address literals */
    if (!ip && SSL_set_tlsext_host_name(ssl, host) != 1) goto fail;
    if (!t->insecure) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
                    : SSL_set1_host(ssl, host);
        if (ok != 1) goto fail;
    }
    if (*sess && SSL_set_session(ssl, *sess) != 1) goto fail;
    return ssl;
fail:
    ERR_clear_error();
    SSL_free(ssl);
    return NULL;
}

void lg_tls_conn_free(SSL *ssl)
{
    if (!ssl) return;
    /* Marked as shut down, OpenSSL keeps the session resumable (an SSL freed
     * mid-stream would otherwise void it). */
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl);
}

void lg_tls_session_free(SSL_SESSION *sess)
{
    SSL_SESSION_free(sess);
}

int lg_tls_resumed(const SSL *ssl)
{
    return SSL_session_reused(ssl);
}

int lg_tls_pending(const SSL *ssl)
{
    return SSL_has_pending(ssl);
}

static int packed(unsigned long e)
{
    return (int)ERR_PACK(ERR_GET_LIB(e), 0, ERR_GET_REASON(e));
}

/* The code of a failed handshake (SSL_get_error gave e). */
static int handshake_code(SSL *ssl, int e, int sys_errno)
{
    unsigned long err = ERR_peek_last_error();
    int code;
    if (err && ERR_GET_LIB(err) == ERR_LIB_SSL &&
        ERR_GET_REASON(err) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
        SSL_get_verify_result(ssl) != X509_V_OK) {
        long v = SSL_get_verify_result(ssl);
        code = v > 0 && v < CODE_MIN_PACKED ? (int)v : X509_V_ERR_UNSPECIFIED;
    } else if (err && e != SSL_ERROR_SYSCALL) {
        code = packed(err);
        if (code < CODE_MIN_PACKED) code = CODE_MIN_PACKED;
    } else if (e == SSL_ERROR_SYSCALL && sys_errno) {
        code = sys_errno < CODE_MIN_PACKED ? -sys_errno : -EIO;
    } else if (err) {
        code = packed(err);
        if (code < CODE_MIN_PACKED) code = CODE_MIN_PACKED;
    } else {
        code = 0; /* the peer closed the connection */
    }
    ERR_clear_error();
    return code;
}

int lg_tls_handshake(SSL *ssl, unsigned *want, int *code)
{
    int rc = SSL_connect(ssl);
    if (rc == 1) return 1;
    int sys_errno = errno;
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
        *want = EV_READ;
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        *want = EV_WRITE;
        return 0;
    }
    *code = handshake_code(ssl, e, sys_errno);
    return -1;
}

/* Maps a failed SSL_read/SSL_write (return rc) onto read(2)'s conventions. */
static ssize_t io_fail(SSL *ssl, int rc, int eof, unsigned *want, int *code)
{
    int sys_errno = errno;
    int e = SSL_get_error(ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want = EV_READ;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        *want = EV_WRITE;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        if (eof) return 0;
        errno = EPIPE;
        return -1;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (!sys_errno) {
            if (eof) return 0;
            sys_errno = EPIPE;
        }
        errno = sys_errno;
        return -1;
    default: {
        unsigned long err = ERR_peek_last_error();
        int c = err ? packed(err) : CODE_MIN_PACKED;
        *code = -(c < CODE_MIN_PACKED ? CODE_MIN_PACKED : c);
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
    }
}

ssize_t lg_tls_read(SSL *ssl, void *dst, size_t cap, unsigned *want, int *code)
{
    size_t got = 0;
    if (cap > INT_MAX) cap = INT_MAX;
    /* SSL_read returns one record at a time; take what read-ahead already
     * holds so one wake-up empties it (epoll cannot see it). */
    do {
        int n = SSL_read(ssl, (char *)dst + got, (int)(cap - got));
        if (n <= 0) {
            if (got) return (ssize_t)got; /* the error shows again on the next call */
            return io_fail(ssl, n, 1, want, code);
        }
        got += (size_t)n;
    } while (got < cap && SSL_has_pending(ssl));
    return (ssize_t)got;
}

ssize_t lg_tls_writev(SSL *ssl, const struct iovec *iov, int iovcnt, unsigned *want, int *code)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        const char *p = iov[i].iov_base;
        size_t off = 0, len = iov[i].iov_len;
        while (off < len) {
            size_t chunk = len - off > INT_MAX ? INT_MAX : len - off;
            int n = SSL_write(ssl, p + off, (int)chunk);
            if (n <= 0) {
                /* report progress first: the caller retries from the byte
                 * that failed, which is what SSL_write's retry rule needs */
                if (total) return (ssize_t)total;
                return io_fail(ssl, n, 0, want, code);
            }
            off += (size_t)n;
            total += (size_t)n;
        }
    }
    return (ssize_t)total;
}

void lg_tls_err_format(int code, char *out, size_t len)
{
    if (code == 0) {
        snprintf(out, len, "TLS: handshake failed: connection closed by peer");
    } else if (code > 0 && code < CODE_MIN_PACKED) {
        snprintf(out, len, "TLS: certificate verify failed: %s",
                 X509_verify_cert_error_string(code));
    } else if (code < 0 && code > -CODE_MIN_PACKED) {
        snprintf(out, len, "TLS: handshake failed: %s", strerror(-code));
    } else {
        unsigned long e = (unsigned long)(code < 0 ? -(long)code : (long)code);
        const char *r = ERR_reason_error_string(e);
        char tmp[64];
        if (!r) {
            snprintf(tmp, sizeof(tmp), "error %lu:%d", (unsigned long)ERR_GET_LIB(e),
                     ERR_GET_REASON(e));
            r = tmp;
        }
        snprintf(out, len, "TLS: %s%s", code > 0 ? "handshake failed: " : "", r);
    }
}
