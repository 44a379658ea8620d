/*
 * The runner API end to end (as the web UI drives it) against a tiny
 * in-process keep-alive server: exact counts, stop awaiting in-flight
 * requests, restart, retarget, reset, open model and the output writers.
 * Runs under ASan/UBSan in make test, which covers worker.c and conn.c.
 */
#include "loadgen/runner.h"
#include "loadgen/runner_int.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct tserver {
    int lfd, port;
    atomic_int requests;
    atomic_int quit;
    pthread_t th;
} tserver;

typedef struct tconn {
    tserver *s;
    int fd;
} tconn;

/* One client connection: answers every request head with a 5-byte body. */
static void *serve_conn(void *arg)
{
    tconn *c = arg;
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(c->fd, buf + len, sizeof(buf) - len - 1);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
        char *end;
        while ((end = strstr(buf, "\r\n\r\n"))) {
            const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
            atomic_fetch_add(&c->s->requests, 1);
            if (write(c->fd, resp, strlen(resp)) < 0) break;
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, buf + used, len - used);
            len -= used;
            buf[len] = '\0';
        }
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *serve(void *arg)
{
    tserver *s = arg;
    while (!atomic_load(&s->quit)) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) break;
        tconn *c = malloc(sizeof(*c));
        *c = (tconn){.s = s, .fd = fd};
        pthread_t t;
        pthread_create(&t, NULL, serve_conn, c);
        pthread_detach(t);
    }
    return NULL;
}

static tserver *tserver_start(void)
{
    tserver *s = calloc(1, sizeof(*s));
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(s->lfd, 128), 0);
    socklen_t al = sizeof(a);
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->th, NULL, serve, s);
    return s;
}

static void tserver_stop(tserver *s)
{
    atomic_store(&s->quit, 1);
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_join(s->th, NULL);
    free(s);
}

static scenario *one_task(const char *wait)
{
    char text[256], err[256];
    snprintf(text, sizeof(text), "[user U]\nwait_time = %s\n[task]\npath = /x\n", wait);
    scenario *sc = scenario_parse(text, strlen(text), "t.ini", err, sizeof(err));
    cr_assert_not_null(sc, "%s", err);
    return sc;
}

static runner_start_params params(tserver *s, int users, double run_time, char *host)
{
    snprintf(host, 64, "http://127.0.0.1:%d", s->port);
    return (runner_start_params){
        .users = users, .spawn_rate = 100, .host = host, .run_time_s = run_time};
}

Test(runner, counts_are_exact_and_the_run_stops_by_itself)
{
    tserver *s = tserver_start();
    scenario *sc = one_task("constant(0.001)");
    char err[256], host[64];
    runner_opts ro = {.threads = 2};
    runner *r = runner_create(sc, &ro, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    cr_assert_eq(runner_get_state(r), RUNNER_READY);
    runner_start_params p = params(s, 4, 1.2, host);
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert(runner_wait(r, 10000));
    cr_assert_eq(runner_get_state(r), RUNNER_STOPPED);
    runner_snapshot *snap = runner_snapshot_take(r);
    cr_assert_gt(snap->total.num_requests, 50);
    cr_assert_eq(snap->total.num_requests, (uint64_t)atomic_load(&s->requests));
    cr_assert_eq(snap->total.num_failures, 0);
    cr_assert_eq(snap->nentries, 1);
    cr_assert_str_eq(snap->entries[0].name, "/x");
    cr_assert_float_eq(snap->entries[0].avg_content_length, 5.0, 1e-9);
    cr_assert_gt(runner_history_len(r), 0);
    runner_snapshot_free(snap);
    runner_free(r);
    scenario_free(sc);
    tserver_stop(s);
}

Test(runner, outputs_carry_the_final_counts)
{
    tserver *s = tserver_start();
    scenario *sc = one_task("constant(0.002)");
    char err[256], host[64];
    runner_opts ro = {.threads = 1, .full_history = 1};
    runner *r = runner_create(sc, &ro, err, sizeof(err));
    runner_start_params p = params(s, 2, 1.1, host);
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert(runner_wait(r, 10000));
    char want[64];
    snprintf(want, sizeof(want), ",Aggregated,%d,0,", atomic_load(&s->requests));
    buf b = BUF_INIT;
    cr_assert_eq(runner_csv_stats(r, &b), 0);
    cr_assert(strstr(b.data, want), "%s", b.data);
    buf_reset(&b);
    cr_assert_eq(runner_csv_history(r, &b), 0);
    cr_assert(strstr(b.data, "Timestamp,User Count,"), "%s", b.data);
    cr_assert(strstr(b.data, ",GET,/x,"), "%s", b.data);
    buf_reset(&b);
    size_t cursor = 0;
    runner_csv_history_append(r, &b, &cursor);
    size_t first = b.len;
    runner_csv_history_append(r, &b, &cursor);
    cr_assert_eq(b.len, first, "nothing new to append");
    buf_reset(&b);
    cr_assert_eq(runner_json_summary(r, &b), 0);
    cr_assert(strstr(b.data, "\"state\":\"stopped\""), "%s", b.data);
    cr_assert(strstr(b.data, "\"percentiles_ms\":{\"50\":"), "%s", b.data);
    buf_free(&b);
    runner_free(r);
    scenario_free(sc);
    tserver_stop(s);
}

Test(runner, stop_restart_retarget_and_reset)
{
    tserver *s = tserver_start();
    scenario *sc = one_task("constant(0.005)");
    char err[256], host[64];
    runner_opts ro = {.threads = 2};
    runner *r = runner_create(sc, &ro, err, sizeof(err));
    runner_start_params p = params(s, 2, 0, host);
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), 0, "%s", err);
    usleep(300000);
    cr_assert_eq(runner_set_users(r, 6, 1000), 0);
    usleep(1300000);
    runner_snapshot *snap = runner_snapshot_take(r);
    cr_assert_eq(snap->user_count, 6);
    cr_assert_eq(snap->state, RUNNER_RUNNING);
    runner_snapshot_free(snap);
    runner_reset_stats(r);
    usleep(300000);
    runner_stop(r);
    cr_assert(runner_wait(r, 10000));
    int served = atomic_load(&s->requests);
    snap = runner_snapshot_take(r);
    cr_assert_lt(snap->total.num_requests, (uint64_t)served, "reset dropped the early ones");
    runner_snapshot_free(snap);
    /* a stopped runner starts a fresh test */
    p.run_time_s = 0.5;
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert(runner_wait(r, 10000));
    snap = runner_snapshot_take(r);
    cr_assert_eq(snap->total.num_requests, (uint64_t)(atomic_load(&s->requests) - served));
    runner_snapshot_free(snap);
    runner_free(r);
    scenario_free(sc);
    tserver_stop(s);
}

Test(runner, open_model_sends_the_scheduled_arrivals)
{
    tserver *s = tserver_start();
    scenario *sc = one_task("constant(0)");
    char err[256], host[64];
    runner_opts ro = {.threads = 2};
    runner *r = runner_create(sc, &ro, err, sizeof(err));
    runner_start_params p = params(s, 8, 1.0, host);
    p.rate = 200;
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert(runner_wait(r, 10000));
    runner_snapshot *snap = runner_snapshot_take(r);
    cr_assert(snap->open_model);
    /* arrivals at t = 0, 5 ms, ..., 995 ms: the workers stop at the run time exactly */
    cr_assert(snap->total.num_requests >= 198 && snap->total.num_requests <= 202, "%llu",
              (unsigned long long)snap->total.num_requests);
    cr_assert_eq(snap->total.num_requests, (uint64_t)atomic_load(&s->requests));
    runner_snapshot_free(snap);
    runner_free(r);
    scenario_free(sc);
    tserver_stop(s);
}

Test(runner, bad_start_parameters_are_refused)
{
    scenario *sc = one_task("constant(0)");
    char err[256];
    runner_opts ro = {.threads = 1};
    runner *r = runner_create(sc, &ro, err, sizeof(err));
    runner_start_params p = {.users = 0, .spawn_rate = 1, .host = "http://127.0.0.1:1"};
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), -EINVAL);
    p.users = 1;
    p.host = "ftp://127.0.0.1:1";
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "https://"), "%s", err);
    p.host = NULL;
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "no host"), "%s", err);
    cr_assert_eq(runner_set_users(r, 3, 1), -EINVAL, "not running");
    cr_assert_eq(runner_get_state(r), RUNNER_READY);
    runner_free(r);
    scenario_free(sc);
}

/* fixed_count end to end: the workers really run the split users per class,
 * the snapshot and the JSON summary show them, a tag filter removed /gone. */
Test(runner, fixed_count_classes_run_exactly_their_users)
{
    tserver *s = tserver_start();
    const char *text = "[user F]\nfixed_count = 2\nweight = 50\nwait_time = constant(0.01)\n"
                       "[task]\npath = /f\n"
                       "[user W]\nweight = 1\nwait_time = constant(0.01)\n"
                       "[task]\npath = /w\n[task]\npath = /gone\ntags = old\n"
                       "[user V]\nweight = 3\nwait_time = constant(0.01)\n[task]\npath = /v\n";
    char err[256], host[64];
    scenario *sc = scenario_parse(text, strlen(text), "t.ini", err, sizeof(err));
    cr_assert_not_null(sc, "%s", err);
    const char *ex[] = {"old"};
    scenario_options so = {.exclude_tags = ex, .nexclude_tags = 1};
    cr_assert_eq(scenario_apply_options(sc, &so, NULL, err, sizeof(err)), 0, "%s", err);
    runner_opts ro = {.threads = 2};
    runner *r = runner_create(sc, &ro, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    runner_start_params p = params(s, 6, 0, host);
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), 0, "%s", err);
    usleep(1500000);
    runner_snapshot *snap = runner_snapshot_take(r);
    cr_assert_eq(snap->nclasses, 3);
    cr_assert_str_eq(snap->class_names[0], "F");
    cr_assert_eq(snap->class_users[0], 2, "F is fixed at 2 whatever its weight");
    cr_assert_eq(snap->class_users[1], 1, "W and V split the other 4 users 1:3");
    cr_assert_eq(snap->class_users[2], 3);
    cr_assert_eq(snap->user_count, 6);
    for (size_t i = 0; i < snap->nentries; i++) cr_assert_str_neq(snap->entries[i].name, "/gone");
    runner_snapshot_free(snap);
    runner_stop(r);
    cr_assert(runner_wait(r, 10000));
    buf b = BUF_INIT;
    cr_assert_eq(runner_json_summary(r, &b), 0);
    cr_assert(strstr(b.data, "{\"name\":\"F\",\"weight\":50,\"fixed_count\":2,\"target_users\":2,"
                             "\"users\":0,\"peak_users\":2}"),
              "%s", b.data);
    cr_assert(strstr(b.data, "\"name\":\"V\",\"weight\":3,\"fixed_count\":0,\"target_users\":3"),
              "%s", b.data);
    buf_free(&b);
    runner_free(r);
    scenario_free(sc);
    tserver_stop(s);
}

Test(runner, an_unusable_cacert_fails_creation_with_its_name)
{
    scenario *sc = one_task("constant(0)");
    char err[256] = "";
    runner_opts ro = {.threads = 1, .tls_cacert = "/nonexistent/ca.pem"};
    cr_assert_null(runner_create(sc, &ro, err, sizeof(err)));
    cr_assert(strstr(err, "/nonexistent/ca.pem"), "%s", err);
    scenario_free(sc);
}

Test(runner, an_https_host_resolves_with_a_tls_context_made_once)
{
    scenario *sc = one_task("constant(0)");
    char err[256];
    runner_opts ro = {.threads = 1, .tls_insecure = 1};
    runner *r = runner_create(sc, &ro, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    cr_assert_null(r->tls, "no context before an https host");
    runner_start_params p = {.users = 1, .spawn_rate = 1, .host = "https://127.0.0.1:1"};
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), 0, "%s", err);
    lg_tls *made = r->tls;
    cr_assert_not_null(made);
    cr_assert_eq(r->targets[0].tls, made);
    cr_assert_str_eq(r->targets[0].tls_host, "127.0.0.1");
    cr_assert_str_eq(r->targets[0].authority, "127.0.0.1:1");
    runner_stop(r);
    cr_assert(runner_wait(r, 15000));
    p.host = "https://localhost:1";
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r->tls, made, "the run's context is reused");
    cr_assert_str_eq(r->targets[0].tls_host, "localhost");
    runner_stop(r);
    cr_assert(runner_wait(r, 15000));
    p.host = "http://127.0.0.1:1";
    cr_assert_eq(runner_start(r, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert_null(r->targets[0].tls, "plain http has no TLS");
    runner_free(r);
    scenario_free(sc);
}
