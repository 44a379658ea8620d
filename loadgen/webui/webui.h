/*
 * webui: aiload's web UI (Locust's page on :8089) and its Locust-compatible
 * REST endpoints, served from the calling thread's own event loop while the
 * runner's threads generate load. Also the HTML report of a finished run.
 *
 * With --web-auth every request, assets and downloads included, must carry
 * the credentials (HTTP Basic); anything else gets 401 and a challenge.
 *
 * Endpoints: GET / (the page and its embedded assets), POST /swarm,
 * GET /stop, GET /stats/reset, GET /stats/requests, GET /stats/history,
 * GET /stats/requests/csv, /stats/requests_full_history/csv,
 * /stats/failures/csv, /exceptions/csv, GET /exceptions, GET /stats/summary
 * (JSON), GET /stats/report[?download=1], GET /defaults (the form's values),
 * GET /metrics (Prometheus), GET /tasks (Locust's task ratios).
 * See docs/webui.md.
 *
 * Ownership: the runner is borrowed and must outlive the webui; option
 * strings are copied.
 */
#ifndef LOADGEN_WEBUI_WEBUI_H
#define LOADGEN_WEBUI_WEBUI_H

#include <signal.h>

#include "lib/buf.h"
#include "loadgen/runner.h"

typedef struct webui webui;

/* What the web UI drives and reads: the ini scenario's runner
 * (webui_backend_runner) or a Python locustfile's (loadgen/py/pyweb.c). Every
 * function is called on the UI thread and must not block on the network. */
typedef enum webui_csv {
    WEBUI_CSV_STATS,
    WEBUI_CSV_HISTORY,
    WEBUI_CSV_FAILURES,
    WEBUI_CSV_EXCEPTIONS,
} webui_csv;

typedef struct webui_backend {
    void *ctx;
    runner_snapshot *(*snapshot)(void *ctx); /* NULL on OOM */
    size_t (*history_len)(void *ctx);
    size_t (*history_get)(void *ctx, size_t from, runner_history_point *out, size_t max);
    int (*start)(void *ctx, const runner_start_params *p, char *err, size_t errlen);
    void (*stop)(void *ctx);
    void (*reset)(void *ctx);
    runner_state (*state)(void *ctx);
    int (*csv)(void *ctx, webui_csv what, buf *out);
    int (*summary)(void *ctx, buf *out); /* GET /stats/summary */
    /* GET /exceptions's {"exceptions":[...]} and the report's Exceptions
     * section (HTML); NULL: the run has none (ini scenarios run no code) */
    int (*exceptions_json)(void *ctx, buf *out);
    int (*exceptions_html)(void *ctx, buf *out);
    const scenario *sc; /* the ini scenario: GET /tasks and the report's ratios from it */
    int (*tasks_json)(void *ctx, buf *out); /* without sc: GET /tasks (NULL: no classes) */
} webui_backend;

/* The backend of an ini scenario's runner (borrowed). */
webui_backend webui_backend_runner(runner *r);

typedef struct webui_opts {
    const char *web_host; /* bind address; NULL: "127.0.0.1"; "*": every IPv4 address */
    int web_port;         /* 0..65535 (0 picks a free port); Locust's default is 8089 */
    int autostart;        /* start the test at once with `start` (--autostart) */
    double autoquit_s;    /* >= 0: exit this long after the test stops (--autoquit); < 0: never */
    runner_start_params start; /* the form's defaults (-u -r -H -t --rate); stages borrowed */
    const char *script;        /* scenario file, shown in the report */
    const char *default_host;  /* the scenario's host: prefills the form when -H is absent */
    const char *html_path;     /* non-NULL: write the HTML report here when the UI exits */
    const char *auth;          /* "user:pass": every route needs HTTP Basic auth (--web-auth) */
    /* distributed master: appends the workers as a JSON array (the Workers
     * tab; /stats/requests gets "workers" and "worker_count" as Locust's);
     * NULL otherwise */
    void (*workers_json)(void *ctx, buf *out);
    int (*worker_count)(void *ctx);
    void *workers_ctx;
    /* A Python locustfile's LoadTestShape class name, or NULL. The shape sets
     * users and spawn rate: POST /swarm takes neither (Locust's form sends 0
     * for both) and starts the shape, a running shape test can not be edited
     * (400), and GET /defaults names the shape so the page greys those fields. */
    const char *shape;
} webui_opts;

/* Binds the listen socket (and starts the test with --autostart). Returns
 * NULL with a message in err (address in use, bad host, failed autostart). */
webui *webui_create(runner *r, const webui_opts *o, char *err, size_t errlen);
/* The same over any backend (copied). */
webui *webui_create_backend(const webui_backend *b, const webui_opts *o, char *err, size_t errlen);
void webui_free(webui *w);

/* The port the UI listens on. */
int webui_port(const webui *w);

/* Serves until *quit becomes nonzero (checked every 100 ms; a signal handler
 * sets it) or --autoquit fires. Writes the HTML report when asked to. Returns
 * 0, or -errno when the loop or the report file failed. */
int webui_run(webui *w, volatile sig_atomic_t *quit);

/* Renders the HTML report of r's current statistics and whole history
 * (headless --html and GET /stats/report). 0 or -ENOMEM. */
int webui_report(runner *r, const char *script, buf *out);
int webui_report_backend(const webui_backend *b, const char *script, buf *out);

/* Parses a Locust run time ("90", "20s", "3m", "1h30m", "1.5h"; "" is 0) into
 * seconds. Returns 0, or -EINVAL. */
int webui_parse_run_time(const char *s, double *seconds);

#endif
