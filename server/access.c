/*
 * access: see access.h. Tokens are kept as SHA-256 digests and compared with
 * CRYPTO_memcmp against every configured one (no early exit), so neither the
 * position nor the length of a match shows in the timing. The rate buckets
 * are the worker's own (a fixed table, the oldest entry replaced); the
 * per-address connection counts live in a shared anonymous mapping made by
 * the master, a counter per hash bucket, so the cap holds over all workers
 * (two addresses in one bucket share it: 65536 buckets keep that rare).
 */
#define _GNU_SOURCE
#include "server/access.h"

#include "server/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#define IP_BUCKETS   65536
#define RATE_ENTRIES 4096

typedef struct rate_entry {
    uint64_t key; /* hash of the address; 0: free */
    double tokens;
    uint64_t last_us;
} rate_entry;

struct srv_access {
    unsigned char (*tokens)[SHA256_DIGEST_LENGTH];
    size_t ntokens, cap;
    int auth_apps;
    int request_id;
    double rate, burst;    /* rate 0: off */
    rate_entry *rates;     /* the worker's own copy after fork */
    int max_per_ip;        /* 0: off */
    _Atomic int *ip_count; /* shared: IP_BUCKETS counters */
    uint64_t rid_seed, rid_next;
};

/* ---- pure parsers ---- */

int access_parse_tokens(const char *text, size_t len,
                        void (*fn)(const char *tok, size_t n, void *ctx), void *ctx)
{
    int count = 0, line = 0;
    size_t i = 0;
    while (i < len) {
        line++;
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        size_t a = i, b = e;
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r')) a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r')) b--;
        i = e + 1;
        if (a == b || text[a] == '#') continue;
        if (b - a > ACCESS_TOKEN_MAX) return -line;
        for (size_t k = a; k < b; k++) {
            unsigned char ch = (unsigned char)text[k];
            if (ch <= ' ' || ch == 0x7f) return -line;
        }
        if (fn) fn(text + a, b - a, ctx);
        count++;
    }
    return count;
}

static int token68_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '+' || ch == '/' || ch == '=';
}

int access_parse_bearer(const char *v, size_t n, const char **tok, size_t *tok_len)
{
    while (n && (*v == ' ' || *v == '\t')) v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    if (n < 8 || !http1_token_eq(v, 6, "bearer") || (v[6] != ' ' && v[6] != '\t')) return -1;
    size_t i = 7;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
    if (i == n || n - i > ACCESS_TOKEN_MAX) return -1;
    /* RFC 6750: token68, '=' only as trailing padding */
    size_t k = i;
    while (k < n && token68_char((unsigned char)v[k]) && v[k] != '=') k++;
    while (k < n && v[k] == '=') k++;
    if (k != n || k == i || v[i] == '=') return -1;
    *tok = v + i;
    *tok_len = n - i;
    return 0;
}

int access_rid_ok(const char *v, size_t n)
{
    if (n == 0 || n > ACCESS_RID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == ':' || ch == '+' || ch == '/' || ch == '=' ||
                 ch == '-';
        if (!ok) return 0;
    }
    return 1;
}

int access_parse_rate(const char *s, double *per_sec, double *burst)
{
    char *end;
    errno = 0;
    double n = strtod(s, &end);
    if (errno || end == s || !(n > 0) || n > 1e9 || *end != '/') return -1;
    double div;
    if (end[1] == 's')
        div = 1;
    else if (end[1] == 'm')
        div = 60;
    else
        return -1;
    const char *p = end + 2;
    double b = n;
    if (*p == ',') {
        p++;
        while (*p == ' ') p++;
        if (strncmp(p, "burst=", 6)) return -1;
        errno = 0;
        b = strtod(p + 6, &end);
        if (errno || end == p + 6 || !(b >= 1) || b > 1e9) return -1;
        p = end;
    }
    if (*p) return -1;
    *per_sec = n / div;
    *burst = b < 1 ? 1 : b;
    return 0;
}

/* ---- set-up (master) ---- */

static void add_token(const char *tok, size_t n, void *ctx)
{
    srv_access *a = ctx;
    if (a->ntokens == a->cap) return; /* sized by a first counting pass */
    SHA256((const unsigned char *)tok, n, a->tokens[a->ntokens++]);
}

static int load_tokens(srv_access *a, cfg *c, const char *path, char *err, size_t errlen)
{
    const char *where = cfg_where(c, &cfg_core_values(c)->auth_token_file, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: option 'auth-token-file': %s: %s", where, path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    ssize_t n;
    while (text && (n = read(fd, text + len, cap - len)) > 0) {
        len += (size_t)n;
        if (len == cap) {
            char *t = cap < (64u << 20) ? realloc(text, cap *= 2) : NULL;
            if (!t) free(text);
            text = t;
        }
    }
    close(fd);
    if (!text) {
        snprintf(err, errlen, "%s: option 'auth-token-file': %s: too large", where, path);
        return -1;
    }
    int count = access_parse_tokens(text, len, NULL, NULL);
    if (count <= 0) {
        if (count == 0)
            snprintf(err, errlen, "%s: option 'auth-token-file': %s holds no token", where, path);
        else
            snprintf(err, errlen,
                     "%s: option 'auth-token-file': %s:%d: a token is one word of printable "
                     "characters, at most %d bytes",
                     where, path, -count, ACCESS_TOKEN_MAX);
        free(text);
        return -1;
    }
    a->tokens = calloc((size_t)count, sizeof(*a->tokens));
    a->cap = (size_t)count;
    if (a->tokens) access_parse_tokens(text, len, add_token, a);
    OPENSSL_cleanse(text, len);
    free(text);
    if (!a->tokens) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int access_create(cfg *c, srv_access **out, char *err, size_t errlen)
{
    *out = NULL;
    const cfg_core *o = cfg_core_values(c);
    const char *file = o->auth_token_file;
    const char *rate = o->rate_limit;
    int per_ip = o->max_connections_per_ip;
    int rid = o->request_id;
    int apps = o->auth_apps;
    if (file && !*file) file = NULL;
    if (rate && !*rate) rate = NULL;
    if (apps && !file) {
        snprintf(err, errlen, "%s: option 'auth-apps': needs auth-token-file",
                 cfg_where(c, &o->auth_apps, 0));
        return -1;
    }
    if (!file && !rate && !per_ip && !rid) return 0;
    srv_access *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->auth_apps = apps;
    a->request_id = rid;
    a->max_per_ip = per_ip;
    if (rate && access_parse_rate(rate, &a->rate, &a->burst)) {
        snprintf(err, errlen,
                 "%s: option 'rate-limit': '%s' is not N/s or N/m with an optional ,burst=B",
                 cfg_where(c, &o->rate_limit, 0), rate);
        access_free(a);
        return -1;
    }
    if (file && load_tokens(a, c, file, err, errlen)) {
        access_free(a);
        return -1;
    }
    if (a->rate > 0 && !(a->rates = calloc(RATE_ENTRIES, sizeof(*a->rates)))) goto oom;
    if (per_ip) {
        void *m = mmap(NULL, IP_BUCKETS * sizeof(*a->ip_count), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) goto oom;
        a->ip_count = m;
    }
    *out = a;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    access_free(a);
    return -1;
}

void access_free(srv_access *a)
{
    if (!a) return;
    if (a->tokens) OPENSSL_cleanse(a->tokens, a->ntokens * sizeof(*a->tokens));
    free(a->tokens);
    free(a->rates);
    if (a->ip_count) munmap((void *)a->ip_count, IP_BUCKETS * sizeof(*a->ip_count));
    free(a);
}

/* ---- per connection and request (a worker's loop) ---- */

static uint64_t hash_addr(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ? h : 1;
}

void access_conn_opened(srv_access *a, srv_conn *c)
{
    if (!a->ip_count || !strcmp(c->remote, "unix")) return;
    _Atomic int *cnt = &a->ip_count[hash_addr(c->remote) % IP_BUCKETS];
    c->ip_counted = 1;
    /* over the cap: answered 429 at its first request, then closed */
    if (atomic_fetch_add(cnt, 1) >= a->max_per_ip) c->ip_counted = 2;
}

void access_conn_closed(srv_access *a, srv_conn *c)
{
    if (a && a->ip_count && c->ip_counted)
        atomic_fetch_sub(&a->ip_count[hash_addr(c->remote) % IP_BUCKETS], 1);
    c->ip_counted = 0;
}

static int token_ok(const srv_access *a, const srv_conn *c)
{
    const http1_header *h = app_header(&c->ar, "authorization");
    const char *tok;
    size_t n;
    if (!h || access_parse_bearer(h->value, h->value_len, &tok, &n)) return 0;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)tok, n, d);
    int ok = 0;
    for (size_t i = 0; i < a->ntokens; i++) ok |= !CRYPTO_memcmp(d, a->tokens[i], sizeof(d));
    return ok;
}

/* The token bucket of c's address: 0 when a request may go, else the
 * seconds until one may (Retry-After). */
static int rate_take(srv_access *a, const srv_conn *c)
{
    uint64_t key = hash_addr(c->remote), now = ev_clock_us();
    rate_entry *e = NULL, *oldest = NULL;
    for (int i = 0; i < 8; i++) { /* a short probe; the oldest is replaced */
        rate_entry *r = &a->rates[(key + (uint64_t)i) % RATE_ENTRIES];
        if (r->key == key) {
            e = r;
            break;
        }
        if (!oldest || r->last_us < oldest->last_us) oldest = r;
    }
    if (!e) {
        e = oldest;
        e->key = key;
        e->tokens = a->burst;
        e->last_us = now;
    }
    e->tokens += (double)(now - e->last_us) / 1e6 * a->rate;
    if (e->tokens > a->burst) e->tokens = a->burst;
    e->last_us = now;
    if (e->tokens >= 1) {
        e->tokens -= 1;
        return 0;
    }
    double wait = (1 - e->tokens) / a->rate;
    return wait < 1 ? 1 : (int)(wait + 0.999);
}

static void make_rid(srv_access *a, char *out)
{
    if (!a->rid_seed) {
        if (getrandom(&a->rid_seed, sizeof(a->rid_seed), GRND_NONBLOCK) != sizeof(a->rid_seed))
            a->rid_seed = ev_clock_us() ^ ((uint64_t)getpid() << 32);
        a->rid_seed |= 1;
    }
    uint64_t x[2];
    for (int i = 0; i < 2; i++) { /* splitmix64 over a per-worker counter */
        uint64_t z = a->rid_seed + 0x9e3779b97f4a7c15ull * ++a->rid_next;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        x[i] = z ^ (z >> 31);
    }
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)x[0], (unsigned long long)x[1]);
}

/* Whether the routed request needs a token: the model app's routes (loop
 * routes that are no built-in) except the v2 health and server metadata,
 * and the apps' routes with auth-apps. */
static int guarded(const srv_access *a, const srv_conn *c)
{
    const srv_route *rt = c->route;
    if (rt->builtin) return 0;
    if (rt->run_on == APP_RUN_THREAD) return a->auth_apps;
    const char *p = c->path_info.data;
    size_t n = c->path_info.len;
    if (n >= 11 && !memcmp(p, "/v2/health/", 11)) return 0;
    if ((n == 3 && !memcmp(p, "/v2", 3)) || (n == 4 && !memcmp(p, "/v2/", 4))) return 0;
    return 1;
}

void access_request_id(srv_conn *c)
{
    srv_access *a = c->w->srv->access;
    if (!a->request_id) return;
    const http1_header *h = app_header(&c->ar, "x-request-id");
    c->request_id_made = !h || !access_rid_ok(h->value, h->value_len);
    if (c->request_id_made) {
        make_rid(a, c->request_id);
    } else {
        memcpy(c->request_id, h->value, h->value_len);
        c->request_id[h->value_len] = 0;
    }
    c->ar.request_id = c->request_id;
}

int access_request(srv_conn *c)
{
    srv_access *a = c->w->srv->access;
    if (c->ip_counted == 2) {
        conn_error_hdr(c, 429, "too many connections from this address", "Retry-After", "1", 1);
        return 1;
    }
    const srv_route *rt = c->route;
    if (a->rate > 0 && !(rt->builtin & SRV_BI_HEALTH)) {
        int wait = rate_take(a, c);
        if (wait) {
            char v[16];
            snprintf(v, sizeof(v), "%d", wait);
            conn_error_hdr(c, 429, "rate limit exceeded", "Retry-After", v, 0);
            return 1;
        }
    }
    if (!a->ntokens) return 0;
    if ((rt->builtin & SRV_BI_METRICS) && !c->w->srv->listen_admin[c->listen_idx]) {
        conn_error_hdr(c, 404, "not found (with auth on, metrics are served on the admin listener)",
                       NULL, NULL, 0);
        return 1;
    }
    if (guarded(a, c) && !token_ok(a, c)) {
        conn_error_hdr(c, 401, "a valid bearer token is required", "WWW-Authenticate",
                       "Bearer realm=\"aiserve\"", 0);
        return 1;
    }
    return 0;
}
