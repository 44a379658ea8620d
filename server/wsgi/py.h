/*
 * wsgi_py: the embedded CPython interpreter of one process: start-up (no
 * Python signal handlers, sys.path, virtualenv), importing apps, fork safety
 * and thread states.
 *
 * GIL protocol. wsgi_py_start() returns with the GIL held by the caller. The
 * master keeps holding it (it runs no Python) so that the fork happens with
 * the GIL owned by the forking thread, as CPython's after-fork code requires;
 * a worker calls wsgi_py_after_fork() and then wsgi_py_release() once set up.
 * Each app thread pins its own thread state with wsgi_py_thread_enter() and
 * takes the GIL per request with PyGILState_Ensure()/Release().
 *
 * The interpreter is the one process-wide global the project allows; these
 * functions are not thread-safe against each other and belong to the process
 * model (master, then worker main thread).
 */
#ifndef SERVER_WSGI_PY_H
#define SERVER_WSGI_PY_H

#include <stddef.h>

#include "server/wsgi/call.h"
#include "server/wsgi/conf.h"

/* Initialises CPython for conf: env, chdir, home/virtualenv, sys.path
 * (pythonpath entries, the working directory, then conf_dir, the config
 * file's directory, which may be NULL). Python installs no signal handlers.
 * 0, or -1 with a message in err. */
int wsgi_py_start(const wsgi_conf *conf, const char *conf_dir, char *err, size_t errlen);
int wsgi_py_started(void);

/* Imports a target and returns a new reference to its callable, or NULL after
 * logging the traceback through io (may be NULL: stderr); err gets one line. */
PyObject *wsgi_py_load(const wsgi_target *t, const char *conf_dir, const wsgi_io *io, char *err,
                       size_t errlen);

/* Threads of this process (entries of /proc/self/task), or -errno. */
int wsgi_py_count_threads(void);
/* The files of the modules imported so far (each module's __file__), for
 * py-autoreload. GIL held. 0 or -ENOMEM. */
int wsgi_py_module_files(void (*add)(void *ctx, const char *path), void *ctx);

/*
 * Imports the targets in a throw-away child (fork, import, count threads,
 * exit) and reports how many threads the import left running besides the
 * main one: *new_threads >= 0, or -1 when the import failed there. Output of
 * the child is discarded. Waits at most timeout_ms (then kills it: -ETIMEDOUT).
 * Call with the GIL held. 0 or -errno.
 */
int wsgi_py_probe(const wsgi_mount *m, size_t n, const char *conf_dir, int timeout_ms,
                  int *new_threads);

/* In a child after fork (GIL held by the forking thread in the parent). */
void wsgi_py_after_fork(void);
/* Releases the GIL held since start/after-fork; returns the thread state to
 * re-take it with wsgi_py_acquire. */
void *wsgi_py_release(void);
void wsgi_py_acquire(void *tstate);

/* Per app thread: pins a thread state (and threading.local data) for the
 * thread's life. enter returns a token for leave; both without the GIL. */
int wsgi_py_thread_enter(void);
void wsgi_py_thread_leave(int token);

/* Runs atexit handlers (unless run_atexit is 0) and flushes stdio, without
 * tearing the interpreter down (native extensions such as torch crash in
 * teardown). GIL held. */
void wsgi_py_shutdown(int run_atexit);

#endif
