/*
 * tls: see tls.h. The handshake and every read and write are non-blocking
 * calls that report "wait for the socket" as EAGAIN, like the kernel's; the
 * caller (conn.c on the loop, resp.c on an app thread) waits as it would for
 * a plain socket. Read-ahead is on (one read(2) takes several records), so
 * what OpenSSL holds is checked with srv_tls_pending() where epoll cannot
 * see it: after the handshake and after each response.
 */
#define _GNU_SOURCE
#include "server/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "lib/ev.h"

struct srv_tls {
    SSL_CTX *ctx;
};

/* One record's plaintext: writes are gathered up to this, so a small
 * response (head and body) leaves as one record. */
#define REC_MAX 16384

static int ctx_fail(SSL_CTX *ctx, char *err, size_t errlen, const char *where, const char *what,
                    const char *file)
{
    char reason[256] = "unknown error";
    unsigned long e = ERR_peek_last_error();
    if (e) ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(err, errlen, "%s: option 'https': %s%s%s: %s", where, what, file ? " " : "",
             file ? file : "", reason);
    SSL_CTX_free(ctx);
    return -1;
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen;) {
        unsigned n = in[i];
        if (i + 1 + n > inlen) break;
        if (n == 8 && !memcmp(in + i + 1, "http/1.1", 8)) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    /* h2 only (or nothing we speak): go on without ALPN rather than fail */
    return SSL_TLSEXT_ERR_NOACK;
}

int srv_tls_addr(const char *spec, char *out, size_t cap)
{
    const char *comma = strchr(spec, ',');
    size_t n = comma ? (size_t)(comma - spec) : strlen(spec);
    if (n >= cap) return -1;
    memcpy(out, spec, n);
    out[n] = 0;
    return 0;
}

/* Field i (0-based) of a comma-separated spec into out; "" when absent. */
static void field(const char *spec, int i, char *out, size_t cap)
{
    const char *p = spec;
    for (; i > 0 && p; i--) {
        p = strchr(p, ',');
        if (p) p++;
    }
    out[0] = 0;
    if (!p) return;
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

int srv_tls_create(const char *spec, const char *where, srv_tls **out, char *err, size_t errlen)
{
    char addr[256], cert[1024], key[1024], ciphers[1024], ca[1024];
    *out = NULL;
    field(spec, 0, addr, sizeof(addr));
    field(spec, 1, cert, sizeof(cert));
    field(spec, 2, key, sizeof(key));
    field(spec, 3, ciphers, sizeof(ciphers));
    field(spec, 4, ca, sizeof(ca));
    int commas = 0;
    for (const char *p = spec; *p; p++) commas += *p == ',';
    if (!addr[0] || !cert[0] || !key[0] || commas > 4) {
        snprintf(err, errlen, "%s: option 'https': '%s' is not addr,cert,key[,ciphers][,client_ca]",
                 where, spec);
        return -1;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return ctx_fail(NULL, err, errlen, where, "cannot create a TLS context", NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return ctx_fail(ctx, err, errlen, where, "cannot load the certificate", cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        return ctx_fail(ctx, err, errlen, where, "cannot load the key", key);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return ctx_fail(ctx, err, errlen, where, "the key does not match the certificate", key);
    if (ciphers[0] && SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
        return ctx_fail(ctx, err, errlen, where, "bad cipher list", ciphers);
    if (ca[0]) {
        /* uWSGI's meaning: a client certificate is asked for and checked
         * when sent; "!ca" refuses the handshake without one. */
        int required = ca[0] == '!';
        const char *path = ca + required;
        if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1)
            return ctx_fail(ctx, err, errlen, where, "cannot load the client CA", path);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(path);
        if (!names) return ctx_fail(ctx, err, errlen, where, "no CA name in", path);
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx,
                           SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE |
                               (required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
    }
    /* Resumption: stateless tickets (the keys are made here, in the master,
     * so all workers share them) and a per-worker session cache for clients
     * without tickets. The id context is required once clients are verified. */
    static const unsigned char sid[] = "aiserve";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 20000);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    srv_tls *t = calloc(1, sizeof(*t));
    if (!t) {
        SSL_CTX_free(ctx);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->ctx = ctx;
    *out = t;
    return 0;
}

void srv_tls_free(srv_tls *t)
{
    if (!t) return;
    SSL_CTX_free(t->ctx);
    free(t);
}

SSL *srv_tls_conn_new(srv_tls *t, int fd)
{
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

void srv_tls_conn_free(SSL *ssl, int notify)
{
    if (!ssl) return;
    /* One non-blocking close_notify; the peer's is not awaited. */
    if (notify && SSL_is_init_finished(ssl)) SSL_shutdown(ssl);
    ERR_clear_error();
    SSL_free(ssl);
}

int srv_tls_handshake(SSL *ssl, unsigned *want)
{
    int rc = SSL_accept(ssl);
    if (rc == 1) return SRV_TLS_DONE;
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
        *want = EV_READ;
        return SRV_TLS_WANT;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        *want = EV_WRITE;
        return SRV_TLS_WANT;
    }
    unsigned long err = ERR_peek_error();
    int plain = err && ERR_GET_LIB(err) == ERR_LIB_SSL &&
                (ERR_GET_REASON(err) == SSL_R_HTTP_REQUEST ||
                 ERR_GET_REASON(err) == SSL_R_HTTPS_PROXY_REQUEST);
    ERR_clear_error();
    return plain ? SRV_TLS_PLAIN_HTTP : SRV_TLS_FAIL;
}

/* A failed SSL_read/SSL_write (return rc) in errno terms. */
static ssize_t io_fail(SSL *ssl, int rc, int reading)
{
    int sys = errno;
    int e = SSL_get_error(ssl, rc);
    ERR_clear_error();
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: errno = EAGAIN; return -1;
    case SSL_ERROR_ZERO_RETURN:
        if (reading) return 0;
        errno = EPIPE;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (!sys) { /* an end of stream without close_notify */
            if (reading) return 0;
            sys = EPIPE;
        }
        errno = sys;
        return -1;
    default: errno = EPROTO; return -1;
    }
}

ssize_t srv_tls_recv(SSL *ssl, void *dst, size_t cap)
{
    if (cap > INT_MAX) cap = INT_MAX;
    if (cap == 0) return 0;
    size_t got = 0;
    /* SSL_read gives one record at a time; take what read-ahead holds now,
     * since epoll will not report it. */
    do {
        errno = 0;
        int n = SSL_read(ssl, (char *)dst + got, (int)(cap - got));
        if (n <= 0) {
            if (got) return (ssize_t)got; /* the condition shows again on the next call */
            return io_fail(ssl, n, 1);
        }
        got += (size_t)n;
    } while (got < cap && SSL_has_pending(ssl));
    return (ssize_t)got;
}

ssize_t srv_tls_send(SSL *ssl, const void *src, size_t len)
{
    if (len == 0) return 0;
    if (len > INT_MAX) len = INT_MAX;
    errno = 0;
    int n = SSL_write(ssl, src, (int)len);
    if (n > 0) return n;
    return io_fail(ssl, n, 0);
}

ssize_t srv_tls_writev(SSL *ssl, const struct iovec *iov, int cnt)
{
    char rec[REC_MAX];
    size_t total = 0;
    int i = 0;
    size_t ioff = 0;
    while (i < cnt) {
        /* Gather up to one record; a single large piece is written in place. */
        const char *p;
        size_t len;
        if (iov[i].iov_len - ioff >= REC_MAX) {
            p = (const char *)iov[i].iov_base + ioff;
            len = iov[i].iov_len - ioff;
        } else {
            len = 0;
            int j = i;
            size_t joff = ioff;
            while (j < cnt && len < REC_MAX) {
                size_t take = iov[j].iov_len - joff;
                if (take > REC_MAX - len) take = REC_MAX - len;
                memcpy(rec + len, (const char *)iov[j].iov_base + joff, take);
                len += take;
                joff += take;
                if (joff == iov[j].iov_len) {
                    j++;
                    joff = 0;
                }
            }
            p = rec;
        }
        if (len == 0) {
            i++;
            ioff = 0;
            continue;
        }
        ssize_t n = srv_tls_send(ssl, p, len);
        if (n < 0) return total ? (ssize_t)total : -1;
        total += (size_t)n;
        /* advance over n bytes */
        size_t adv = (size_t)n;
        while (adv && i < cnt) {
            size_t left = iov[i].iov_len - ioff;
            if (adv < left) {
                ioff += adv;
                adv = 0;
            } else {
                adv -= left;
                i++;
                ioff = 0;
            }
        }
        if ((size_t)n < len) break; /* partial: the caller continues */
    }
    return (ssize_t)total;
}

ssize_t srv_tls_sendfile(SSL *ssl, int fd, off_t *off, size_t len)
{
    char rec[REC_MAX];
    if (len > sizeof(rec)) len = sizeof(rec);
    ssize_t r = pread(fd, rec, len, *off);
    if (r <= 0) return r;
    ssize_t n = srv_tls_send(ssl, rec, (size_t)r);
    if (n > 0) *off += n;
    return n;
}

int srv_tls_pending(const SSL *ssl)
{
    return SSL_has_pending(ssl);
}

void srv_tls_peer_dn(SSL *ssl, char *out, size_t cap)
{
    out[0] = 0;
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer) return;
    if (SSL_get_verify_result(ssl) == X509_V_OK)
        X509_NAME_oneline(X509_get_subject_name(peer), out, (int)cap);
    X509_free(peer);
}
