/*
 * tls: real handshakes between lg_tls and an OpenSSL server over a
 * non-blocking socketpair, with a throw-away certificate made here for
 * "test.local" and 127.0.0.1.
 */
#include "loadgen/tls.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/ev.h"
#include "loadgen/stats.h"

typedef struct fixture {
    EVP_PKEY *key;
    X509 *cert;
    SSL_CTX *srv;
    char pem[64]; /* the certificate as a PEM file, for cacert */
} fixture;

static void add_ext(X509 *c, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, c, c, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    cr_assert_not_null(e);
    X509_add_ext(c, e, -1);
    X509_EXTENSION_free(e);
}

static void make_fixture(fixture *f)
{
    f->key = EVP_EC_gen("P-256");
    cr_assert_not_null(f->key);
    f->cert = X509_new();
    X509_set_version(f->cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(f->cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(f->cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(f->cert), 3600);
    X509_set_pubkey(f->cert, f->key);
    X509_NAME *n = X509_get_subject_name(f->cert);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"test.local", -1, -1,
                               0);
    X509_set_issuer_name(f->cert, n);
    add_ext(f->cert, NID_subject_alt_name, "DNS:test.local,IP:127.0.0.1");
    add_ext(f->cert, NID_basic_constraints, "critical,CA:TRUE");
    cr_assert(X509_sign(f->cert, f->key, EVP_sha256()) > 0);
    f->srv = SSL_CTX_new(TLS_server_method());
    cr_assert_eq(SSL_CTX_use_certificate(f->srv, f->cert), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey(f->srv, f->key), 1);
    strcpy(f->pem, "/tmp/lg-tls-test-XXXXXX");
    int fd = mkstemp(f->pem);
    cr_assert_geq(fd, 0);
    FILE *out = fdopen(fd, "w");
    PEM_write_X509(out, f->cert);
    fclose(out);
}

static void free_fixture(fixture *f)
{
    unlink(f->pem);
    SSL_CTX_free(f->srv);
    X509_free(f->cert);
    EVP_PKEY_free(f->key);
}

typedef struct pair {
    int cfd, sfd;
    SSL *cli, *srv;
} pair;

/* Connects a client SSL for host to a fresh server SSL; the handshake is
 * driven in one thread, both sides non-blocking. Returns lg_tls_handshake's
 * last result; *code gets the failure code. */
static int handshake(const lg_tls *t, fixture *f, const char *host, SSL_SESSION **sess, pair *p,
                     int *code)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    p->cfd = sv[0];
    p->sfd = sv[1];
    p->cli = lg_tls_conn_new(t, p->cfd, host, sess);
    cr_assert_not_null(p->cli);
    p->srv = SSL_new(f->srv);
    SSL_set_fd(p->srv, p->sfd);
    SSL_set_accept_state(p->srv);
    int rc = 0, srv_done = 0;
    for (int i = 0; i < 100 && (rc == 0 || !srv_done); i++) {
        unsigned want = 0;
        if (rc == 0) rc = lg_tls_handshake(p->cli, &want, code);
        if (rc < 0) break;
        if (!srv_done) {
            int s = SSL_accept(p->srv);
            if (s == 1) srv_done = 1;
            if (s <= 0 && SSL_get_error(p->srv, s) != SSL_ERROR_WANT_READ) break;
        }
    }
    ERR_clear_error();
    return rc;
}

static void close_pair(pair *p)
{
    lg_tls_conn_free(p->cli);
    SSL_free(p->srv);
    close(p->cfd);
    close(p->sfd);
}

static lg_tls *make_tls(int insecure, const char *cacert)
{
    lg_tls *t;
    char err[256];
    lg_tls_opts o = {.insecure = insecure, .cacert = cacert};
    cr_assert_eq(lg_tls_create(&o, &t, err, sizeof(err)), 0, "%s", err);
    return t;
}

Test(tls, an_untrusted_self_signed_server_fails_with_the_verify_reason)
{
    fixture f;
    make_fixture(&f);
    lg_tls *t = make_tls(0, NULL);
    SSL_SESSION *sess = NULL;
    pair p;
    int code = 0;
    cr_assert_eq(handshake(t, &f, "test.local", &sess, &p, &code), -1);
    char text[256];
    lg_tls_err_format(code, text, sizeof(text));
    cr_assert_str_eq(text, "TLS: certificate verify failed: self-signed certificate");
    lg_err_format(LG_ERR_TLS, code, text, sizeof(text));
    cr_assert_str_eq(text, "SSLError('TLS: certificate verify failed: self-signed certificate')");
    cr_assert_null(sess, "no session is kept from a failed handshake");
    close_pair(&p);
    lg_tls_free(t);
    free_fixture(&f);
}

Test(tls, cacert_trusts_the_server_and_the_name_or_address_is_checked)
{
    fixture f;
    make_fixture(&f);
    lg_tls *t = make_tls(0, f.pem);
    const char *ok[] = {"test.local", "127.0.0.1"};
    for (int i = 0; i < 2; i++) {
        SSL_SESSION *sess = NULL;
        pair p;
        int code = 0;
        cr_assert_eq(handshake(t, &f, ok[i], &sess, &p, &code), 1, "%s: code %d", ok[i], code);
        close_pair(&p);
        lg_tls_session_free(sess);
    }
    const char *bad[] = {"other.local", "127.0.0.2"};
    const char *why[] = {"TLS: certificate verify failed: hostname mismatch",
                         "TLS: certificate verify failed: IP address mismatch"};
    for (int i = 0; i < 2; i++) {
        SSL_SESSION *sess = NULL;
        pair p;
        int code = 0;
        cr_assert_eq(handshake(t, &f, bad[i], &sess, &p, &code), -1, "%s", bad[i]);
        char text[256];
        lg_tls_err_format(code, text, sizeof(text));
        cr_assert_str_eq(text, why[i]);
        close_pair(&p);
    }
    lg_tls_free(t);
    free_fixture(&f);
}

Test(tls, insecure_accepts_any_certificate_and_name)
{
    fixture f;
    make_fixture(&f);
    lg_tls *t = make_tls(1, NULL);
    SSL_SESSION *sess = NULL;
    pair p;
    int code = 0;
    cr_assert_eq(handshake(t, &f, "other.local", &sess, &p, &code), 1, "code %d", code);
    close_pair(&p);
    lg_tls_session_free(sess);
    lg_tls_free(t);
    free_fixture(&f);
}

/* Client reads until it has n bytes or the stream ends; the server writes. */
static void roundtrip(pair *p)
{
    struct iovec iov[2] = {{"GET / HTTP/1.1\r\n", 16}, {"\r\n", 2}};
    unsigned want = 0;
    int code = 0;
    cr_assert_eq(lg_tls_writev(p->cli, iov, 2, &want, &code), 18);
    char in[64];
    int n = 0;
    for (int i = 0; i < 50 && n < 18; i++) { /* one record per iovec */
        int r = SSL_read(p->srv, in + n, (int)sizeof(in) - n);
        if (r > 0) n += r;
    }
    cr_assert_eq(n, 18);
    cr_assert_eq(memcmp(in, "GET / HTTP/1.1\r\n\r\n", 18), 0);
    cr_assert_eq(SSL_write(p->srv, "HTTP/1.1 200 OK\r\n\r\n", 19), 19);
    char out[64];
    ssize_t got = lg_tls_read(p->cli, out, sizeof(out), &want, &code);
    cr_assert_eq(got, 19);
    cr_assert_eq(memcmp(out, "HTTP/1.1 200 OK\r\n\r\n", 19), 0);
    got = lg_tls_read(p->cli, out, sizeof(out), &want, &code);
    cr_assert_eq(got, -1);
    cr_assert_eq(errno, EAGAIN);
    cr_assert_eq(want, EV_READ);
}

Test(tls, data_flows_both_ways_and_a_reconnect_resumes_the_session)
{
    fixture f;
    make_fixture(&f);
    lg_tls *t = make_tls(0, f.pem);
    SSL_SESSION *sess = NULL;
    pair p;
    int code = 0;
    cr_assert_eq(handshake(t, &f, "test.local", &sess, &p, &code), 1, "code %d", code);
    cr_assert_not(lg_tls_resumed(p.cli));
    roundtrip(&p); /* the client takes the server's session ticket on the way */
    cr_assert_not_null(sess, "the server's session is kept in the connection's slot");
    /* the server ends the stream: the client reads 0, like read(2) */
    SSL_shutdown(p.srv);
    unsigned want = 0;
    char out[16];
    cr_assert_eq(lg_tls_read(p.cli, out, sizeof(out), &want, &code), 0);
    close_pair(&p);

    cr_assert_eq(handshake(t, &f, "test.local", &sess, &p, &code), 1, "code %d", code);
    cr_assert(lg_tls_resumed(p.cli), "the second connection resumes");
    roundtrip(&p);
    close_pair(&p);
    lg_tls_session_free(sess);
    lg_tls_free(t);
    free_fixture(&f);
}

Test(tls, a_plain_http_peer_or_a_closed_one_fails_the_handshake_with_a_reason)
{
    lg_tls *t = make_tls(1, NULL);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    SSL_SESSION *sess = NULL;
    struct ssl_st *ssl = lg_tls_conn_new(t, sv[0], "h", &sess);
    unsigned want = 0;
    int code = 0;
    cr_assert_eq(lg_tls_handshake(ssl, &want, &code), 0);
    cr_assert_eq(want, EV_READ);
    const char *resp = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    cr_assert_eq(write(sv[1], resp, strlen(resp)), (ssize_t)strlen(resp));
    cr_assert_eq(lg_tls_handshake(ssl, &want, &code), -1);
    char text[256];
    lg_tls_err_format(code, text, sizeof(text));
    cr_assert(!strncmp(text, "TLS: handshake failed: ", 23), "%s", text);
    cr_assert_gt(strlen(text), 23, "%s", text);
    lg_tls_conn_free(ssl);
    close(sv[0]);
    close(sv[1]);

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    ssl = lg_tls_conn_new(t, sv[0], "h", &sess);
    cr_assert_eq(lg_tls_handshake(ssl, &want, &code), 0);
    close(sv[1]);
    cr_assert_eq(lg_tls_handshake(ssl, &want, &code), -1);
    lg_tls_err_format(code, text, sizeof(text));
    cr_assert(strstr(text, "TLS: handshake failed: "), "%s", text);
    lg_tls_conn_free(ssl);
    close(sv[0]);
    lg_tls_free(t);
}

Test(tls, a_missing_or_empty_cacert_is_refused_by_name)
{
    lg_tls *t = NULL;
    char err[256];
    lg_tls_opts o = {.cacert = "/nonexistent/ca.pem"};
    cr_assert_eq(lg_tls_create(&o, &t, err, sizeof(err)), -1);
    cr_assert_null(t);
    cr_assert(strstr(err, "/nonexistent/ca.pem") && strstr(err, "No such file"), "%s", err);
    char path[] = "/tmp/lg-tls-empty-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "not a certificate\n", 18), 18);
    close(fd);
    o.cacert = path;
    cr_assert_eq(lg_tls_create(&o, &t, err, sizeof(err)), -1);
    cr_assert(strstr(err, path) && strstr(err, "no PEM certificate"), "%s", err);
    unlink(path);
}

Test(tls, error_codes_format_as_clear_text)
{
    char text[256];
    lg_tls_err_format(0, text, sizeof(text));
    cr_assert_str_eq(text, "TLS: handshake failed: connection closed by peer");
    lg_tls_err_format(X509_V_ERR_CERT_HAS_EXPIRED, text, sizeof(text));
    cr_assert_str_eq(text, "TLS: certificate verify failed: certificate has expired");
    lg_tls_err_format(-ECONNRESET, text, sizeof(text));
    cr_assert_str_eq(text, "TLS: handshake failed: Connection reset by peer");
    lg_err_format(LG_ERR_TIMEOUT, 2, text, sizeof(text));
    cr_assert_str_eq(text, "ConnectTimeout('TLS handshake timed out')");
}
