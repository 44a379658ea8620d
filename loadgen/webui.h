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
#ifndef LOADGEN_WEBUI_H
#define LOADGEN_WEBUI_H

#include <signal.h>

#include "lib/buf.h"
#include "loadgen/runner.h"

typedef struct webui webui;

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
} webui_opts;

/* Binds the listen socket (and starts the test with --autostart). Returns
 * NULL with a message in err (address in use, bad host, failed autostart). */
webui *webui_create(runner *r, const webui_opts *o, char *err, size_t errlen);
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

/* Parses a Locust run time ("90", "20s", "3m", "1h30m", "1.5h"; "" is 0) into
 * seconds. Returns 0, or -EINVAL. */
int webui_parse_run_time(const char *s, double *seconds);

#endif
