/* aiserve: application server for AI services (see docs/config.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "server/core.h"
#include "server/model/model.h"
#include "server/proctitle.h"
#include "server/top.h"
#include "server/wsgi/wsgi.h"

#define MAX_TABLES (SRV_MAX_APPS + 2)

/* The app kinds this program links, handed to the core (srv.kinds): the core
 * (server/) never includes a kind, the program picks them. Models load first,
 * so a WSGI app sees them when it is imported (`import aiserve;
 * aiserve.models()` at import time). */
static const app_kind *const kinds[] = {&app_kind_model, &app_kind_wsgi, NULL};

/* Many concurrent /delay clients need many fds: raise the soft limit. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int apply_process_options(srv *s, char *err, size_t errlen)
{
    const cfg_core *o = cfg_core_values(s->cfg);
    for (size_t i = 0; i < o->env.n; i++) {
        char *kv = strdup(o->env.v[i]);
        if (!kv) return -1;
        char *eq = strchr(kv, '=');
        *eq = 0;
        setenv(kv, eq + 1, 1);
        free(kv);
    }
    if (s->s.logto) {
        int fd = open(s->s.logto, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(err, errlen, "%s: option 'logto': cannot open '%s': %s",
                     cfg_where(s->cfg, &o->logto, 0), s->s.logto, strerror(errno));
            return -1;
        }
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    const char *dir = o->chdir;
    if (dir && chdir(dir) < 0) {
        snprintf(err, errlen, "%s: option 'chdir': '%s': %s", cfg_where(s->cfg, &o->chdir, 0), dir,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int write_pidfile(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "%d\n", (int)getpid());
    return fclose(f);
}

/* Prints a (possibly multi-line) message, each line as "aiserve: line". */
static void print_lines(const char *msg)
{
    for (const char *p = msg; *p;) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(stderr, "aiserve: %.*s\n", n, p);
        p += n + (nl != NULL);
    }
}

int main(int argc, char **argv)
{
    /* `aiserve top ADDR` / `aiserve --top ADDR`: the stats viewer, no server. */
    if (argc >= 2 && (!strcmp(argv[1], "top") || !strcmp(argv[1], "--top")))
        return top_main(argc - 2, argv + 2);
    argv = proctitle_init(argc, argv);
    const cfg_option *tables[MAX_TABLES];
    srv_option_tables(kinds, tables, MAX_TABLES);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            /* titles in the order srv_option_tables lists the kinds' tables */
            const char *titles[MAX_TABLES] = {NULL};
            for (int k = 0, t = 1; kinds[k] && t < MAX_TABLES - 1; k++) {
                if (!kinds[k]->options) continue;
                const char *n = kinds[k]->name;
                titles[t++] = !strcmp(n, "wsgi")    ? "Python (WSGI apps)"
                              : !strcmp(n, "model") ? "Model serving (ONNX)"
                                                    : n;
            }
            cfg_print_help(tables, titles, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("aiserve %s\n", AISERVE_VERSION);
            return 0;
        }
    }
    if (argc < 2) {
        fprintf(stderr, "usage: aiserve FILE.ini | --ini FILE | --http=HOST:PORT [options]\n"
                        "       aiserve --help lists every option\n");
        return 2;
    }
    char err[4096];
    cfg *c;
    int load_rc = cfg_load(argc - 1, argv + 1, tables, &c, err, sizeof(err));
    if (load_rc) {
        print_lines(err);
        return load_rc == -2 ? 2 : 1;
    }
    size_t nmsg;
    const char *const *msgs = cfg_messages(c, &nmsg);
    for (size_t i = 0; i < nmsg; i++) print_lines(msgs[i]);
    static srv s;
    int init_rc = srv_init(&s, c, err, sizeof(err));
    s.kinds = kinds;
    s.start_cwd = getcwd(NULL, 0);
    if (init_rc || apply_process_options(&s, err, sizeof(err))) {
        fprintf(stderr, "aiserve: %s\n", err);
        return 1;
    }
    s.argv = argv;
    raise_nofile();
    s.sb = sb_create(s.s.processes, s.s.threads);
    if (!s.sb) {
        fprintf(stderr, "aiserve: cannot map the scoreboard: %s\n", strerror(errno));
        return 1;
    }
    err[0] = 0;
    if (srv_bind(&s, err, sizeof(err))) {
        fprintf(stderr, "aiserve: %s\n", err);
        return 1;
    }
    /* Written before dropping privileges (like uWSGI's pidfile), so it may live
     * in a directory only root can write. */
    if (s.s.pidfile && write_pidfile(s.s.pidfile)) {
        fprintf(stderr, "aiserve: option 'pidfile': cannot write '%s': %s\n", s.s.pidfile,
                strerror(errno));
        return 1;
    }
    if (srv_drop_privileges(&s, err, sizeof(err)) || builtin_register(&s) ||
        (!s.s.lazy_apps && srv_load_apps(&s, 0, err, sizeof(err)))) {
        fprintf(stderr, "aiserve: %s\n", err[0] ? err : "cannot register the built-in routes");
        if (s.s.pidfile) unlink(s.s.pidfile);
        return 1;
    }
    for (int i = 0; i < s.nlisten; i++) {
        if (s.listen_unix[i])
            srv_log("aiserve %s: listening on %s%s (unix socket)", AISERVE_VERSION,
                    s.listen_proto[i] == SRV_PROTO_UWSGI ? "" : "http+unix:", s.listen_names[i]);
        else
            srv_log("aiserve %s: listening on %s%s (port %d)", AISERVE_VERSION,
                    s.listen_proto[i] == SRV_PROTO_UWSGI || s.listen_tls[i] ? "" : "http://",
                    s.listen_names[i], s.listen_ports[i]);
    }
    srv_log("master pid %d: %d worker(s) x %d thread(s)%s", (int)getpid(), s.s.processes,
            s.s.threads, s.s.lazy_apps ? ", lazy-apps" : "");
    proctitle_set(c, "master", 0);
    int rc = master_run(&s);
    if (!s.s.lazy_apps) srv_free_apps(&s);
    if (s.s.pidfile) unlink(s.s.pidfile);
    if (s.s.vacuum) srv_unlink_sockets(&s);
    return rc;
}
