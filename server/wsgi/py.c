#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "server/wsgi/aiserve_mod.h"
#include "server/wsgi/py.h"
#include "server/wsgi/types.h"

#include "lib/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Debian's interpreter; naming it keeps CPython from searching PATH for
 * "python3" (a pyenv build here) and picking up the wrong standard library. */
#define WSGI_PY_PROGRAM "/usr/bin/python3"

int wsgi_py_started(void)
{
    return Py_IsInitialized();
}

static int apply_env(const wsgi_conf *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->nenv; i++) {
        char *kv = strdup(c->env[i]);
        if (!kv) return err_fmt(err, errlen, "out of memory");
        char *eq = strchr(kv, '=');
        *eq = '\0';
        int r = setenv(kv, eq + 1, 1);
        free(kv);
        if (r) return err_fmt(err, errlen, "env '%s': %s", c->env[i], strerror(errno));
    }
    return 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int append_fs(PyObject *list, const char *p)
{
    PyObject *s = PyUnicode_DecodeFSDefault(p);
    int r = s ? PyList_Append(list, s) : -1;
    Py_XDECREF(s);
    return r;
}

/* One pythonpath entry; a pattern with * ? [ expands like uWSGI's (sorted matches). */
static int append_entry(PyObject *list, const char *entry)
{
    if (!strpbrk(entry, "*?[")) return append_fs(list, entry);
    glob_t g;
    int r = 0;
    if (glob(entry, 0, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc && !r; i++) r = append_fs(list, g.gl_pathv[i]);
    globfree(&g);
    return r;
}

/* sys.path = pythonpath..., cwd, conf_dir, then Python's own entries. */
static int setup_path(const wsgi_conf *c, const char *conf_dir)
{
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    PyObject *front = PyList_New(0);
    char cwd[4096];
    int r = !path || !PyList_Check(path) || !front;
    for (size_t i = 0; i < c->npythonpath && !r; i++) r = append_entry(front, c->pythonpath[i]);
    if (!r && getcwd(cwd, sizeof(cwd))) r = append_fs(front, cwd);
    if (!r && conf_dir && *conf_dir) r = append_fs(front, conf_dir);
    if (!r) r = PyList_SetSlice(path, 0, 0, front);
    Py_XDECREF(front);
    return r ? -1 : 0;
}

/* home/virtualenv: the venv's site-packages join sys.path and sys.prefix
 * points at it, as `python -m venv` interpreters do. */
static int setup_home(const char *home, char *err, size_t errlen)
{
    char sp[4096];
    snprintf(sp, sizeof(sp), "%s/lib/python%d.%d/site-packages", home, PY_MAJOR_VERSION,
             PY_MINOR_VERSION);
    if (!is_dir(home)) return err_fmt(err, errlen, "home/virtualenv '%s' is not a directory", home);
    if (!is_dir(sp)) return err_fmt(err, errlen, "home/virtualenv '%s' has no %s", home, sp);
    PyObject *site = PyImport_ImportModule("site");
    PyObject *r = site ? PyObject_CallMethod(site, "addsitedir", "s", sp) : NULL;
    PyObject *h = PyUnicode_DecodeFSDefault(home);
    int ok = r && h && !PySys_SetObject("prefix", h) && !PySys_SetObject("exec_prefix", h);
    Py_XDECREF(h);
    Py_XDECREF(r);
    Py_XDECREF(site);
    if (!ok) {
        PyErr_Clear();
        return err_fmt(err, errlen, "home/virtualenv '%s': cannot add its site-packages", home);
    }
    return 0;
}

/* The core may have applied a relative chdir already: then cwd ends with it. */
static int already_in(const char *dir)
{
    char cwd[4096];
    size_t n = strlen(dir), k;
    while (n > 1 && dir[n - 1] == '/') n--;
    if (dir[0] == '/' || !getcwd(cwd, sizeof(cwd)) || (k = strlen(cwd)) <= n) return 0;
    return cwd[k - n - 1] == '/' && !strncmp(cwd + k - n, dir, n);
}

int wsgi_py_start(const wsgi_conf *c, const char *conf_dir, char *err, size_t errlen)
{
    if (Py_IsInitialized()) return 0;
    if (apply_env(c, err, errlen)) return -1;
    if (c->chdir && chdir(c->chdir) && !already_in(c->chdir))
        return err_fmt(err, errlen, "chdir '%s': %s", c->chdir, strerror(errno));
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0; /* SIGINT, SIGPIPE... stay aiserve's */
    config.parse_argv = 0;
    char *argv[] = {"aiserve"};
    PyStatus st = PyConfig_SetBytesString(&config, &config.program_name, WSGI_PY_PROGRAM);
    if (!PyStatus_Exception(st)) st = PyConfig_SetBytesArgv(&config, 1, argv);
    struct sigaction saved[NSIG];
    for (int i = 1; i < NSIG; i++) sigaction(i, NULL, &saved[i]);
    /* `import aiserve` (in-process model calls) exists only in here. */
    if (!PyStatus_Exception(st) && PyImport_AppendInittab("aiserve", wsgi_aiserve_init))
        st = PyStatus_Error("cannot register the aiserve module");
    if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st))
        return err_fmt(err, errlen, "cannot start Python: %s", st.err_msg ? st.err_msg : "?");
    /* Importing `signal` (apps do) installs Python's SIGINT handler when the
     * disposition is the default: import it now and put every disposition
     * back, so the signals stay aiserve's whatever the app imports. */
    PyObject *sig = PyImport_ImportModule("signal");
    Py_XDECREF(sig);
    PyErr_Clear();
    for (int i = 1; i < NSIG; i++)
        if (i != SIGKILL && i != SIGSTOP) sigaction(i, &saved[i], NULL);
    if (setup_path(c, conf_dir)) {
        PyErr_Clear();
        return err_fmt(err, errlen, "cannot set sys.path");
    }
    if (c->home && setup_home(c->home, err, errlen)) return -1;
    return 0;
}

/* One line for err from the pending exception: "ModuleNotFoundError: No module named 'x'". */
static void exc_line(char *err, size_t errlen, const char *spec)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *s = value ? PyObject_Str(value) : NULL;
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    err_fmt(err, errlen, "cannot load WSGI app '%s': %s%s%s", spec,
            type ? ((PyTypeObject *)type)->tp_name : "error", msg && *msg ? ": " : "",
            msg ? msg : "");
    Py_XDECREF(s);
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

static PyObject *import_file(const char *path, const char *conf_dir)
{
    char full[4096];
    struct stat st;
    if (path[0] != '/' && stat(path, &st) && conf_dir)
        snprintf(full, sizeof(full), "%s/%s", conf_dir, path);
    else
        snprintf(full, sizeof(full), "%s", path);
    if (stat(full, &st))
        return PyErr_Format(PyExc_FileNotFoundError, "wsgi-file '%s' not found", path);
    /* A module name from the path, as uWSGI does ("uwsgi_file_" + path). */
    char name[512] = "aiserve_file_";
    size_t k = strlen(name);
    for (const char *p = full; *p && k + 1 < sizeof(name); p++)
        name[k++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
                        ? *p
                        : '_';
    name[k] = '\0';
    PyObject *util = PyImport_ImportModule("importlib.util");
    PyObject *spec =
        util ? PyObject_CallMethod(util, "spec_from_file_location", "ss", name, full) : NULL;
    PyObject *mod =
        spec && spec != Py_None ? PyObject_CallMethod(util, "module_from_spec", "O", spec) : NULL;
    if (spec == Py_None) PyErr_Format(PyExc_ImportError, "'%s' is not a Python file", full);
    PyObject *loader = mod ? PyObject_GetAttrString(spec, "loader") : NULL;
    PyObject *r = NULL;
    if (loader && !PyDict_SetItemString(PyImport_GetModuleDict(), name, mod))
        r = PyObject_CallMethod(loader, "exec_module", "O", mod);
    if (!r && mod) PyDict_DelItemString(PyImport_GetModuleDict(), name) ? PyErr_Clear() : (void)0;
    Py_XDECREF(r);
    Py_XDECREF(loader);
    Py_XDECREF(spec);
    Py_XDECREF(util);
    if (!r) Py_CLEAR(mod);
    return mod;
}

PyObject *wsgi_py_load(const wsgi_target *t, const char *conf_dir, const wsgi_io *io, char *err,
                       size_t errlen)
{
    char spec[1024];
    snprintf(spec, sizeof(spec), "%s:%s", t->module ? t->module : t->file, t->callable);
    PyObject *mod = t->module ? PyImport_ImportModule(t->module) : import_file(t->file, conf_dir);
    PyObject *app = mod ? PyObject_GetAttrString(mod, t->callable) : NULL;
    Py_XDECREF(mod);
    if (app && !PyCallable_Check(app)) {
        PyErr_Format(PyExc_TypeError, "'%s' is a %s, not a WSGI callable", spec,
                     Py_TYPE(app)->tp_name);
        Py_CLEAR(app);
    }
    if (!app) {
        exc_line(err, errlen, spec);
        char what[1200];
        snprintf(what, sizeof(what), "wsgi: %s; traceback:", err);
        wsgi_log_exception(io, what);
    }
    return app;
}

int wsgi_py_module_files(void (*add)(void *ctx, const char *path), void *ctx)
{
    PyObject *mods = PyImport_GetModuleDict(); /* borrowed */
    PyObject *vals = mods ? PyDict_Values(mods) : NULL;
    if (!vals) {
        PyErr_Clear();
        return -ENOMEM;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(vals); i++) {
        PyObject *f = PyObject_GetAttrString(PyList_GET_ITEM(vals, i), "__file__");
        if (!f) {
            PyErr_Clear(); /* built-in modules have no file */
            continue;
        }
        const char *p = PyUnicode_Check(f) ? PyUnicode_AsUTF8(f) : NULL;
        if (p)
            add(ctx, p);
        else
            PyErr_Clear();
        Py_DECREF(f);
    }
    Py_DECREF(vals);
    return 0;
}

int wsgi_py_count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* The probe child: import everything, report "<threads-1>" or "-1", exit. */
static void probe_child(int wfd, const wsgi_mount *m, size_t n, const char *conf_dir)
{
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
        dup2(devnull, 1);
        dup2(devnull, 2);
    }
    PyOS_AfterFork_Child();
    int failed = 0;
    for (size_t i = 0; i < n && !failed; i++) {
        char err[256];
        PyObject *app = wsgi_py_load(&m[i].target, conf_dir, NULL, err, sizeof(err));
        if (!app) failed = 1;
        Py_XDECREF(app);
    }
    char msg[32];
    int len = snprintf(msg, sizeof(msg), "%d", failed ? -1 : wsgi_py_count_threads() - 1);
    ssize_t w = write(wfd, msg, (size_t)len);
    (void)w;
    _exit(0); /* no atexit, no teardown: the state is thrown away */
}

int wsgi_py_probe(const wsgi_mount *m, size_t n, const char *conf_dir, int timeout_ms,
                  int *new_threads)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return -errno;
    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        probe_child(p[1], m, n, conf_dir);
    }
    int saved = errno;
    PyOS_AfterFork_Parent();
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -saved;
    }
    char msg[32] = {0};
    size_t got = 0;
    int r = 0;
    struct pollfd pfd = {p[0], POLLIN, 0};
    /* The import may take seconds (torch); poll with the GIL released. */
    for (;;) {
        int pr;
        Py_BEGIN_ALLOW_THREADS pr = poll(&pfd, 1, timeout_ms);
        Py_END_ALLOW_THREADS if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            r = -ETIMEDOUT;
            break;
        }
        ssize_t k = read(p[0], msg + got, sizeof(msg) - 1 - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(p[0]);
    if (r) kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    if (r) return r;
    if (!got) return -EPIPE; /* the child died (a crash in the import) */
    *new_threads = atoi(msg);
    return 0;
}

void wsgi_py_after_fork(void)
{
    PyOS_AfterFork_Child();
}

void *wsgi_py_release(void)
{
    return PyEval_SaveThread();
}

void wsgi_py_acquire(void *tstate)
{
    PyEval_RestoreThread(tstate);
}

int wsgi_py_thread_enter(void)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyEval_SaveThread();
    return (int)g;
}

void wsgi_py_thread_leave(int token)
{
    PyEval_RestoreThread(PyGILState_GetThisThreadState());
    PyGILState_Release((PyGILState_STATE)token);
}

void wsgi_py_shutdown(int run_atexit)
{
    PyObject *atexit = run_atexit ? PyImport_ImportModule("atexit") : NULL;
    PyObject *r = atexit ? PyObject_CallMethod(atexit, "_run_exitfuncs", NULL) : NULL;
    Py_XDECREF(r);
    Py_XDECREF(atexit);
    PyErr_Clear();
    for (int i = 0; i < 2; i++) {
        PyObject *f = PySys_GetObject(i ? "stderr" : "stdout");
        PyObject *fr = f && f != Py_None ? PyObject_CallMethod(f, "flush", NULL) : NULL;
        Py_XDECREF(fr);
        PyErr_Clear();
    }
}
