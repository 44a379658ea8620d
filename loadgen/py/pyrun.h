/*
 * pyrun: aiload's Python locustfile mode. `aiload -f locustfile.py` (or a
 * directory, or a comma list of files) runs the file unchanged in an embedded
 * CPython against the `locust` package that aiload carries inside its binary
 * (loadgen/py/locust/, embedded at build time by loadgen/py/embed.py): the
 * users' Python runs on gevent's hub, the HTTP is aiload's C client
 * (loadgen/py/pyconn.h), the statistics are exact histograms
 * (loadgen/py/pystats.h) printed by loadgen/report.c. See docs/aiload.md.
 */
#ifndef LOADGEN_PY_PYRUN_H
#define LOADGEN_PY_PYRUN_H

/* 1 when the command line names a Python locustfile: -f/--locustfile (or
 * LOCUST_LOCUSTFILE when -f is absent) ends in .py, lists .py files, or is a
 * directory. */
int pyrun_wants(int argc, char **argv);

/* Runs the Python mode to the end; returns the process's exit code (as the
 * ini path: 0, 1 requests failed, 2 bad command line or locustfile, 3 a
 * --fail-if threshold broke). */
int pyrun_main(int argc, char **argv);
/* pyrun_main for a command line merged from config files: orig_argv (the
 * process's own, NULL-terminated) is what `--processes` under the web UI
 * runs again as its workers. */
int pyrun_main_from(int argc, char **argv, char **orig_argv);

#endif
