/*
 * srv: turns the config into typed settings, binds the listen sockets, drops
 * privileges, loads the apps and keeps the route table.
 */
#define _GNU_SOURCE
#include "server/access.h"
#include "server/tls.h"
#include "server/core.h"
#include "server/sysd.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct app_ctx {
    srv *s;
    int worker_id;
};

void app_vlog(const char *tag, const char *fmt, va_list ap)
{
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, "aiserve[%d]: %s", (int)getpid(), tag);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    n = m < 0 ? n : (n + m > (int)sizeof(line) - 2 ? (int)sizeof(line) - 2 : n + m);
    line[n++] = '\n';
    /* One write per line: lines from several processes do not interleave. */
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
}

void srv_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    app_vlog("", fmt, ap);
    va_end(ap);
}

static int parse_statics(srv *s, char *err, size_t errlen)
{
    const cfg_list *l = &cfg_core_values(s->cfg)->static_map;
    const char *const *items = l->v;
    s->s.statics = calloc(l->n ? l->n : 1, sizeof(srv_static));
    if (!s->s.statics) return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < l->n; i++) {
        const char *eq = strchr(items[i], '=');
        const char *where = cfg_where(s->cfg, l, i);
        if (!eq || items[i][0] != '/' || !eq[1]) {
            snprintf(err, errlen, "%s: option 'static-map': '%s' is not /prefix=/directory", where,
                     items[i]);
            return -1;
        }
        size_t pl = (size_t)(eq - items[i]);
        while (pl > 1 && items[i][pl - 1] == '/') pl--;
        char *dir = realpath(eq + 1, NULL);
        if (!dir) {
            snprintf(err, errlen, "%s: option 'static-map': directory '%s': %s", where, eq + 1,
                     strerror(errno));
            return -1;
        }
        srv_static *st = &s->s.statics[s->s.nstatics++];
        st->prefix = strndup(items[i], pl);
        st->prefix_len = pl == 1 ? 0 : pl; /* "/" maps the whole tree */
        st->dir = dir;
        if (!st->prefix) return snprintf(err, errlen, "out of memory"), -1;
    }
    return 0;
}

/* A *-route option: field is its value in the cfg, name its name. */
static int check_route_opt(srv *s, const char *name, const char *const *field, const char **out,
                           char *err, size_t errlen)
{
    const char *v = *field;
    *out = v && *v ? v : NULL;
    if (*out && (*out)[0] != '/') {
        snprintf(err, errlen, "%s: option '%s': '%s' must start with '/'",
                 cfg_where(s->cfg, field, 0), name, v);
        return -1;
    }
    return 0;
}

static const struct {
    const char *name;
    unsigned bit;
} builtin_names[] = {
    {"hello", SRV_BI_HELLO},
    {"health", SRV_BI_HEALTH},
    {"metrics", SRV_BI_METRICS},
    {"delay", SRV_BI_DELAY},
    {"sleep", SRV_BI_SLEEP},
    {"all", SRV_BI_ALL},
    {"none", 0},
};

/* `builtins`: auto (the default), or a comma list of built-in names, all or
 * none; the option may repeat. */
static int parse_builtins(srv *s, char *err, size_t errlen)
{
    const cfg_list *l = &cfg_core_values(s->cfg)->builtins;
    size_t n = l->n;
    const char *const *items = l->v;
    s->s.builtins_explicit = 0;
    s->s.builtins_on = 0;
    int saw_auto = 0;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = items[i]; *p;) {
            while (*p == ',' || *p == ' ' || *p == '\t') p++;
            const char *w = p;
            while (*p && *p != ',' && *p != ' ' && *p != '\t') p++;
            size_t wl = (size_t)(p - w);
            if (!wl) continue;
            int known = 0;
            if (wl == 4 && !memcmp(w, "auto", 4)) {
                saw_auto = known = 1;
            }
            for (size_t k = 0; !known && k < sizeof(builtin_names) / sizeof(builtin_names[0]);
                 k++) {
                if (strlen(builtin_names[k].name) == wl && !memcmp(builtin_names[k].name, w, wl)) {
                    s->s.builtins_explicit = known = 1;
                    s->s.builtins_on |= builtin_names[k].bit;
                }
            }
            if (!known) {
                snprintf(err, errlen,
                         "%s: option 'builtins': '%.*s' is not auto, all, none, hello, health, "
                         "metrics, delay or sleep",
                         cfg_where(s->cfg, l, i), (int)wl, w);
                return -1;
            }
        }
    }
    if (saw_auto && s->s.builtins_explicit) {
        snprintf(err, errlen,
                 "%s: option 'builtins': auto cannot be combined with names (auto picks them)",
                 cfg_where(s->cfg, l, 0));
        return -1;
    }
    return 0;
}

/* An admin address that is also an http or socket address would adopt the
 * same inherited socket twice on reload; refuse it up front. */
static int check_admin_addrs(srv *s, char *err, size_t errlen)
{
    const cfg_core *c = cfg_core_values(s->cfg);
    const char *const *admin = c->admin.v;
    static const char *const others[] = {"http", "socket"};
    const cfg_list *lists[] = {&c->http, &c->socket};
    for (size_t i = 0; i < c->admin.n; i++)
        for (size_t o = 0; o < 2; o++) {
            const char *const *addrs = lists[o]->v;
            for (size_t j = 0; j < lists[o]->n; j++)
                if (!strcmp(admin[i], addrs[j])) {
                    snprintf(err, errlen,
                             "%s: option 'admin': '%s' is also a '%s' address: the admin "
                             "listener needs an address of its own",
                             cfg_where(s->cfg, &c->admin, i), admin[i], others[o]);
                    return -1;
                }
        }
    return 0;
}

int srv_init(srv *s, cfg *c, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->cfg = c;
    s->logfd = 2;
    srv_settings *st = &s->s;
    const cfg_core *o = cfg_core_values(c);
    st->processes = o->processes;
    st->threads = o->threads;
    st->listen_backlog = o->listen;
    st->need_app = o->need_app;
    st->lazy_apps = o->lazy_apps;
    st->harakiri = o->harakiri;
    st->socket_timeout = o->socket_timeout;
    st->keepalive = o->http_keepalive;
    st->mercy = o->reload_mercy;
    st->max_requests = o->max_requests;
    st->max_requests_delta = o->max_requests_delta;
    st->reload_on_rss_mb = o->reload_on_rss;
    st->buffer_size = o->buffer_size;
    st->limit_post = o->limit_post;
    st->post_buffering = o->post_buffering;
    st->disable_logging = o->disable_logging;
    st->pidfile = o->pidfile;
    st->logto = o->logto;
    const char *lf = o->log_format;
    if (!strcmp(lf, "json"))
        st->log_json = 1;
    else if (strcmp(lf, "clf") && strcmp(lf, "common")) {
        snprintf(err, errlen, "%s: option 'log-format': '%s' is not clf or json",
                 cfg_where(c, &o->log_format, 0), lf);
        return -1;
    }
    if (check_route_opt(s, "hello-route", &o->hello_route, &st->hello_route, err, errlen) ||
        check_route_opt(s, "health-route", &o->health_route, &st->health_route, err, errlen) ||
        check_route_opt(s, "metrics-route", &o->metrics_route, &st->metrics_route, err, errlen) ||
        check_route_opt(s, "delay-route", &o->delay_route, &st->delay_route, err, errlen) ||
        check_route_opt(s, "sleep-route", &o->sleep_route, &st->sleep_route, err, errlen))
        return -1;
    for (size_t i = 0; i < o->env.n; i++) {
        const char *eq = strchr(o->env.v[i], '=');
        if (!eq || eq == o->env.v[i]) {
            snprintf(err, errlen, "%s: option 'env': '%s' is not KEY=VALUE",
                     cfg_where(c, &o->env, i), o->env.v[i]);
            return -1;
        }
    }
    for (size_t i = 0; i < o->mount.n; i++) {
        const char *m = o->mount.v[i], *eq = strchr(m, '=');
        if (!eq || m[0] != '/' || !eq[1]) {
            snprintf(err, errlen, "%s: option 'mount': '%s' is not /prefix=target",
                     cfg_where(c, &o->mount, i), m);
            return -1;
        }
    }
    if (parse_builtins(s, err, errlen) || check_admin_addrs(s, err, errlen)) return -1;
    size_t n = o->http.n + o->https.n; /* https counts with http below */
    size_t nsock = o->socket.n, nadmin = o->admin.n;
    if (access_create(c, &s->access, err, errlen)) return -1;
    if (n + nsock == 0) {
        snprintf(err, errlen,
                 "no address to serve: set http = HOST:PORT (e.g. --http=:8000) or "
                 "socket = HOST:PORT|PATH for nginx's uwsgi_pass");
        return -1;
    }
    if (n + nsock + nadmin > SRV_MAX_LISTEN) {
        snprintf(err, errlen,
                 "%s: options 'http', 'https', 'socket' and 'admin': at most %d addresses in all",
                 n > SRV_MAX_LISTEN           ? cfg_where(c, &o->http, SRV_MAX_LISTEN)
                 : n + nsock > SRV_MAX_LISTEN ? cfg_where(c, &o->socket, SRV_MAX_LISTEN - n)
                                              : cfg_where(c, &o->admin, SRV_MAX_LISTEN - n - nsock),
                 SRV_MAX_LISTEN);
        return -1;
    }
    const char *mode = o->chmod_socket;
    s->s.chmod_socket = -1;
    if (mode) {
        char *end;
        long m = strtol(mode, &end, 8);
        if (!*mode || *end || m < 0 || m > 07777) {
            snprintf(err, errlen, "%s: option 'chmod-socket': '%s' is not an octal mode like 660",
                     cfg_where(c, &o->chmod_socket, 0), mode);
            return -1;
        }
        s->s.chmod_socket = (int)m;
    }
    s->s.vacuum = o->vacuum;
    return parse_statics(s, err, errlen);
}

/* somaxconn caps the backlog silently in the kernel; say so instead. */
static int clamp_backlog(int want)
{
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    int max = 0;
    if (f) {
        if (fscanf(f, "%d", &max) != 1) max = 0;
        fclose(f);
    }
    if (max > 0 && want > max) {
        srv_log("warning: listen = %d is above net.core.somaxconn (%d): using %d", want, max, max);
        return max;
    }
    return want;
}

/* Opens a TCP listen socket on HOST:PORT. Returns the fd, or -1 with err set. */
static int listen_tcp(srv *s, const char *addr, const char *opt, const char *where, char *err,
                      size_t errlen)
{
    char host[256], port[16];
    const char *colon = strrchr(addr, ':');
    if (!colon || !colon[1] || (size_t)(colon - addr) >= sizeof(host) || strlen(colon + 1) > 5) {
        snprintf(err, errlen,
                 "%s: option '%s': '%s' is not HOST:PORT or a unix socket path (./name.sock)",
                 where, opt, addr);
        return -1;
    }
    size_t hl = (size_t)(colon - addr);
    memcpy(host, addr, hl);
    host[hl] = 0;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    snprintf(port, sizeof(port), "%s", colon + 1);
    /* getaddrinfo takes "80999" and wraps it to 15463: check the range here. */
    char *end;
    long pnum = strtol(port, &end, 10);
    if (*end || end == port || pnum < 0 || pnum > 65535) {
        snprintf(err, errlen, "%s: option '%s': port '%s' is not a number from 0 to 65535", where,
                 opt, port);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "%s: option '%s': '%s': %s", where, opt, addr, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
            listen(fd, clamp_backlog(s->s.listen_backlog)) < 0) {
            rc = errno;
            close(fd);
            fd = -1;
            errno = rc;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "%s: option '%s': cannot listen on '%s': %s", where, opt, addr,
                 strerror(errno));
    return fd;
}

/* Opens a unix listen socket at path ('@name': Linux's abstract namespace). A
 * socket file left by an earlier run is replaced; any other file is not. */
static int listen_unix(srv *s, const char *path, const char *opt, const char *where, char *err,
                       size_t errlen)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    size_t pl = strlen(path);
    if (pl == 0 || pl >= sizeof(un.sun_path)) {
        snprintf(err, errlen, "%s: option '%s': unix socket path '%s' is empty or too long", where,
                 opt, path);
        return -1;
    }
    memcpy(un.sun_path, path, pl);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl);
    if (path[0] == '@') {
        un.sun_path[0] = 0;
    } else {
        struct stat st;
        if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s: option '%s': '%s' exists and is not a socket", where, opt,
                     path);
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&un, len) < 0 ||
                    listen(fd, clamp_backlog(s->s.listen_backlog)) < 0 ||
                    (path[0] != '@' && s->s.chmod_socket >= 0 &&
                     chmod(path, (mode_t)s->s.chmod_socket) < 0))) {
        int e = errno;
        close(fd);
        fd = -1;
        errno = e;
    }
    if (fd < 0)
        snprintf(err, errlen, "%s: option '%s': cannot listen on '%s': %s", where, opt, path,
                 strerror(errno));
    return fd;
}

/* A unix socket path has a '/' ("/run/app.sock", "./app.sock") or names an
 * abstract socket ("@app"); everything else must be HOST:PORT. uWSGI takes
 * any colon-less word for a path, which turns a typo like "http = 5000" into
 * a socket file nobody connects to: here that is an error instead. */
static int is_unix_addr(const char *addr)
{
    return addr[0] == '@' || (strchr(addr, '/') && !strchr(addr, ':'));
}

static void add_listener(srv *s, int fd, const char *name, const char *addr, int proto, int admin)
{
    int i = s->nlisten++;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    s->listen_fds[i] = fd;
    s->listen_ports[i] = ss.ss_family == AF_INET6  ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                         : ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                                   : 0;
    s->listen_names[i] = strdup(name);
    s->listen_proto[i] = proto;
    s->listen_unix[i] = is_unix_addr(addr);
    s->listen_admin[i] = admin;
}

/* After a SIGHUP re-exec the previous image hands its listen sockets over in
 * AISERVE_LISTEN_FDS ("fd=name;..."): an address still configured keeps its
 * socket, so connections queued across the reload are served, not refused.
 * Returns the fd, or -1 when name is not among them. */
static int adopt(srv *s, const char *name, const char *inherited)
{
    for (const char *p = inherited; p && *p;) {
        char *end;
        long fd = strtol(p, &end, 10);
        const char *semi = strchr(p, ';');
        size_t nl = semi ? (size_t)(semi - end - 1) : strlen(end + 1);
        if (*end == '=' && nl == strlen(name) && !memcmp(end + 1, name, nl) && fd > 2 &&
            fcntl((int)fd, F_GETFD) >= 0) {
            fcntl((int)fd, F_SETFD, FD_CLOEXEC);
            listen((int)fd, clamp_backlog(s->s.listen_backlog)); /* a new `listen` applies */
            return (int)fd;
        }
        p = semi ? semi + 1 : NULL;
    }
    return -1;
}

/* Closes inherited sockets the new configuration no longer names. */
static void close_unadopted(srv *s, const char *inherited)
{
    for (const char *p = inherited; p && *p;) {
        long fd = strtol(p, NULL, 10);
        int used = 0;
        for (int i = 0; i < s->nlisten; i++) used |= s->listen_fds[i] == fd;
        if (!used && fd > 2) close((int)fd);
        const char *semi = strchr(p, ';');
        p = semi ? semi + 1 : NULL;
    }
}

/* Binds (or adopts) every address of a listen option (its values: list),
 * speaking proto; https: each value carries a certificate; admin: the
 * listener serves the built-ins alone. The listen name is the address,
 * prefixed "uwsgi://" for the uwsgi protocol, so the same address under the
 * other protocol is a different socket on reload. */
static int bind_option(srv *s, const cfg_list *list, int proto, int https, int admin,
                       const char *inherited, sysd_passed *passed, char *err, size_t errlen)
{
    const char *opt = cfg_name(s->cfg, list);
    const char *const *specs = list->v;
    for (size_t i = 0; i < list->n; i++) {
        char name[300], addr[256];
        const char *where = cfg_where(s->cfg, list, i);
        /* https: "addr,cert,key,..."; its certificate is read here, in each
         * new image, so a reload (re-exec) picks up a renewed one */
        srv_tls *tls = NULL;
        if (https && (srv_tls_addr(specs[i], addr, sizeof(addr)) ||
                      srv_tls_create(specs[i], where, &tls, err, errlen))) {
            if (!err[0]) snprintf(err, errlen, "%s: option 'https': address too long", where);
            return -1;
        }
        if (!https) snprintf(addr, sizeof(addr), "%s", specs[i]);
        snprintf(name, sizeof(name), "%s%s",
                 proto == SRV_PROTO_UWSGI ? "uwsgi://"
                 : https                  ? "https://"
                                          : "",
                 addr);
        int fd = adopt(s, name, inherited);
        if (fd < 0) fd = sysd_passed_take(passed, addr);
        if (fd < 0)
            fd = is_unix_addr(addr) ? listen_unix(s, addr, opt, where, err, errlen)
                                    : listen_tcp(s, addr, opt, where, err, errlen);
        if (fd < 0) {
            srv_tls_free(tls);
            return -1;
        }
        add_listener(s, fd, name, addr, proto, admin);
        s->listen_tls[s->nlisten - 1] = tls;
    }
    return 0;
}

int srv_check_files(cfg *c, char *err, size_t errlen)
{
    const cfg_list *https = &cfg_core_values(c)->https;
    for (size_t i = 0; i < https->n; i++) {
        srv_tls *t;
        if (srv_tls_create(https->v[i], cfg_where(c, https, i), &t, err, errlen)) return -1;
        srv_tls_free(t);
    }
    srv_access *a;
    if (access_create(c, &a, err, errlen)) return -1;
    access_free(a);
    return 0;
}

int srv_bind(srv *s, char *err, size_t errlen)
{
    char *inherited = getenv("AISERVE_LISTEN_FDS");
    inherited = inherited ? strdup(inherited) : NULL;
    unsetenv("AISERVE_LISTEN_FDS");
    /* Socket activation: systemd's sockets serve the addresses they match. */
    sysd_passed passed;
    int npassed = sysd_passed_collect(&passed);
    const cfg_core *o = cfg_core_values(s->cfg);
    /* the listen options, bound to their fields (the name comes from the table) */
    const struct {
        const cfg_list *list;
        int proto, https, admin;
    } opts[] = {{&o->http, SRV_PROTO_HTTP, 0, 0},
                {&o->https, SRV_PROTO_HTTP, 1, 0},
                {&o->socket, SRV_PROTO_UWSGI, 0, 0},
                {&o->admin, SRV_PROTO_HTTP, 0, 1}};
    int rc = 0;
    for (size_t k = 0; k < sizeof(opts) / sizeof(*opts) && !rc; k++)
        rc = bind_option(s, opts[k].list, opts[k].proto, opts[k].https, opts[k].admin, inherited,
                         &passed, err, errlen);
    close_unadopted(s, inherited);
    char first[128];
    int unused = sysd_passed_close_rest(&passed, first, sizeof(first));
    if (unused)
        srv_log("socket activation: %d of %d passed socket(s) match no http/socket/admin address "
                "and were closed, first %s",
                unused, npassed, first);
    free(inherited);
    return rc;
}

void srv_unlink_sockets(srv *s)
{
    for (int i = 0; i < s->nlisten; i++) {
        const char *name = s->listen_names[i];
        if (!strncmp(name, "uwsgi://", 8)) name += 8;
        if (s->listen_unix[i] && name[0] != '@') unlink(name);
    }
}

void srv_option_tables(const app_kind *const *kinds, const cfg_option **tables, int max)
{
    int n = 0;
    tables[n++] = cfg_core_options;
    for (int i = 0; kinds && kinds[i] && n < max - 1; i++)
        if (kinds[i]->options) tables[n++] = kinds[i]->options;
    tables[n] = NULL;
}

int srv_drop_privileges(srv *s, char *err, size_t errlen)
{
    const cfg_core *o = cfg_core_values(s->cfg);
    const char *g = o->gid, *u = o->uid;
    if (g) {
        struct group *gr = getgrnam(g);
        char *end;
        long id = gr ? (long)gr->gr_gid : strtol(g, &end, 10);
        if ((!gr && (*end || end == g)) || setgroups(0, NULL) < 0 || setgid((gid_t)id) < 0) {
            snprintf(err, errlen, "%s: option 'gid': cannot switch to '%s': %s",
                     cfg_where(s->cfg, &o->gid, 0), g, gr || !*end ? strerror(errno) : "no group");
            return -1;
        }
    }
    if (u) {
        struct passwd *pw = getpwnam(u);
        char *end;
        long id = pw ? (long)pw->pw_uid : strtol(u, &end, 10);
        if ((!pw && (*end || end == u)) || setuid((uid_t)id) < 0) {
            snprintf(err, errlen, "%s: option 'uid': cannot switch to '%s': %s",
                     cfg_where(s->cfg, &o->uid, 0), u, pw || !*end ? strerror(errno) : "no user");
            return -1;
        }
    }
    return 0;
}

/* ---- routes ---- */

int srv_route_add(srv *s, const char *prefix, int match, int run_on, app_handler_fn fn, void *data,
                  unsigned builtin)
{
    if (!prefix || prefix[0] != '/' || !fn) return -EINVAL;
    int narrow = match == SRV_MATCH_SELF;
    if (narrow) match = SRV_MATCH_PREFIX;
    size_t len = strlen(prefix);
    while (match == SRV_MATCH_PREFIX && len > 1 && prefix[len - 1] == '/') len--;
    for (int i = 0; i < s->nroutes; i++)
        if (s->routes[i].len == len && s->routes[i].match == match &&
            !memcmp(s->routes[i].prefix, prefix, len))
            return -EEXIST;
    if (s->nroutes == SRV_MAX_ROUTES) return -ENOSPC;
    srv_route *r = &s->routes[s->nroutes];
    r->prefix = strndup(prefix, len);
    if (!r->prefix) return -ENOMEM;
    r->len = len;
    r->match = match;
    r->narrow = narrow;
    r->builtin = builtin;
    r->run_on = run_on;
    r->fn = fn;
    r->data = data;
    r->metric = sb_route_metric(s->sb, r->prefix);
    s->nroutes++;
    return 0;
}

static int route_hit(const srv_route *r, const char *path, size_t len)
{
    if (r->match == SRV_MATCH_EXACT) return r->len == len && !memcmp(r->prefix, path, len);
    if (r->narrow)
        return (len == r->len || (len == r->len + 1 && path[r->len] == '/')) &&
               !memcmp(r->prefix, path, r->len);
    return r->len == 1 || (len >= r->len && !memcmp(r->prefix, path, r->len) &&
                           (len == r->len || path[r->len] == '/'));
}

/* Within each kind (apps, built-ins): an exact route first, then the longest
 * prefix at a segment boundary. Between them, the listener decides: an admin
 * listener sees only built-ins; on the others, with `builtins = auto` an app
 * route that matches wins (the app owns its paths: one at "/" takes
 * /health/live too), and a built-in named in `builtins` wins over an app's
 * prefix as built-ins always did (exact first, then the longer prefix). */
const srv_route *srv_route_find(const srv *s, int listen_idx, const char *path, size_t len)
{
    int admin = listen_idx >= 0 && listen_idx < s->nlisten && s->listen_admin[listen_idx];
    unsigned on = admin || !s->s.builtins_explicit ? SRV_BI_ALL : s->s.builtins_on;
    const srv_route *app = NULL, *bexact = NULL, *bprefix = NULL;
    for (int i = 0; i < s->nroutes; i++) {
        const srv_route *r = &s->routes[i];
        if (r->builtin ? !(r->builtin & on) : admin) continue;
        if (!route_hit(r, path, len)) continue;
        if (!r->builtin) {
            if (!app || r->len > app->len) app = r;
        } else if (r->match == SRV_MATCH_EXACT) {
            bexact = r;
        } else if (!bprefix || r->len > bprefix->len) {
            bprefix = r;
        }
    }
    const srv_route *bi = bexact ? bexact : bprefix;
    if (admin) return bi;
    if (!s->s.builtins_explicit) return app ? app : bi;
    if (bexact) return bexact;
    return bprefix && (!app || bprefix->len >= app->len) ? bprefix : app;
}

int app_route_add(app_ctx *ctx, const char *prefix, int run_on, app_handler_fn fn, void *data)
{
    if (run_on != APP_RUN_LOOP && run_on != APP_RUN_THREAD) return -EINVAL;
    return srv_route_add(ctx->s, prefix, SRV_MATCH_PREFIX, run_on, fn, data, 0);
}

int app_route_add_exact(app_ctx *ctx, const char *path, int run_on, app_handler_fn fn, void *data)
{
    if (run_on != APP_RUN_LOOP && run_on != APP_RUN_THREAD) return -EINVAL;
    return srv_route_add(ctx->s, path, SRV_MATCH_SELF, run_on, fn, data, 0);
}

const cfg *app_ctx_cfg(const app_ctx *ctx)
{
    return ctx->s->cfg;
}

int app_ctx_worker_id(const app_ctx *ctx)
{
    return ctx->worker_id;
}

int srv_workers_ready(const srv *s, int *want)
{
    int ready = 0;
    for (int i = 0; i < s->sb->nslots; i++) {
        sb_slot *sl = sb_slot_at(s->sb, i);
        if (atomic_load(&sl->state) == SB_RUNNING && atomic_load(&sl->ready)) ready++;
    }
    *want = atomic_load(&s->sb->active);
    if (*want <= 0) *want = s->s.processes;
    return ready;
}

int app_workers_ready(const app_request *r)
{
    int want, ready = srv_workers_ready(r->_conn->w->srv, &want);
    return ready >= want;
}

/* Logs, per listener, the built-in paths a request there reaches: the ones
 * srv_route_find gives back for their own path (an app's route over it, or
 * `builtins` leaving it out, hides it). */
static void log_builtins(const srv *s)
{
    for (int li = 0; li < s->nlisten; li++) {
        char paths[1024];
        size_t pl = 0;
        paths[0] = 0;
        for (int i = 0; i < s->nroutes; i++) {
            const srv_route *r = &s->routes[i];
            if (!r->builtin || srv_route_find(s, li, r->prefix, r->len) != r) continue;
            int w = snprintf(paths + pl, sizeof(paths) - pl, " %s%s", r->prefix,
                             r->match == SRV_MATCH_PREFIX ? "/*" : "");
            if (w > 0 && (size_t)w < sizeof(paths) - pl) pl += (size_t)w;
        }
        const char *name = s->listen_names[li];
        const char *scheme = s->listen_proto[li] == SRV_PROTO_UWSGI || s->listen_tls[li] ? ""
                             : s->listen_unix[li] ? "http+unix:"
                                                  : "http://";
        char mode[64] = "";
        for (size_t k = 0; k < 5; k++) /* the single built-ins, without all and none */
            if (s->s.builtins_on & builtin_names[k].bit)
                snprintf(mode + strlen(mode), sizeof(mode) - strlen(mode), "%s%s",
                         mode[0] ? "," : "", builtin_names[k].name);
        if (s->listen_admin[li])
            srv_log("built-ins on admin listener %s%s:%s", scheme, name,
                    pl ? paths : " none (every built-in's route option is empty)");
        else
            srv_log("built-ins on %s%s (builtins = %s):%s", scheme, name,
                    !s->s.builtins_explicit ? "auto"
                    : mode[0]               ? mode
                                            : "none",
                    pl ? paths
                       : " none (the apps own these paths; name them in `builtins`, or set "
                         "`admin` to serve them on an address of their own)");
    }
}

/* ---- apps ---- */

int srv_load_apps(srv *s, int worker_id, char *err, size_t errlen)
{
    app_ctx ctx = {s, worker_id};
    const app_kind *const *kinds = s->kinds;
    int loaded = 0, wanted = 0;
    s->napps = 0;
    for (int i = 0; kinds && kinds[i] && s->napps < SRV_MAX_APPS; i++) {
        const app_kind *k = kinds[i];
        if (!k->configured || !k->configured(s->cfg)) continue;
        wanted++;
        srv_app *a = &s->apps[s->napps++];
        a->kind = k;
        char why[512] = "";
        if (k->load(&ctx, &a->state, why, sizeof(why))) {
            if (s->s.need_app) {
                snprintf(err, errlen, "app '%s' failed to load: %s (need-app is set)", k->name,
                         why);
                return -1;
            }
            srv_log("app '%s' failed to load: %s; serving without it", k->name, why);
            continue;
        }
        a->loaded = 1;
        loaded++;
        srv_log("app '%s' loaded%s", k->name, worker_id ? " (lazy-apps)" : "");
    }
    if (s->s.need_app && !loaded) {
        snprintf(err, errlen, "no app %s (need-app is set)",
                 wanted ? "loaded" : "is configured: set module, wsgi-file or model");
        return -1;
    }
    /* The routes are complete now: in the master, or under lazy-apps in each
     * worker (worker 1 speaks for them all). */
    if (worker_id <= 1) log_builtins(s);
    return 0;
}

void srv_free_apps(srv *s)
{
    for (int i = 0; i < s->napps; i++) {
        srv_app *a = &s->apps[i];
        if (a->loaded && a->kind->free) a->kind->free(a->state);
        a->loaded = 0;
    }
    s->napps = 0;
}
