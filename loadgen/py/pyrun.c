/*
 * pyrun: starts the embedded interpreter, makes the embedded `locust`
 * package importable ahead of anything on sys.path, and hands the command
 * line to locust.main.aiload_main (loadgen/py/locust/main.py), which imports
 * the locustfile, parses the options (aiload's own, through cli_parse, plus
 * the file's custom ones) and runs the test.
 */
#include "loadgen/py/pyrun_int.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define PYRUN_PROGRAM "/usr/bin/python3"

/* A directory is a set of locustfiles when it holds a *.py file (not
 * starting with '_'); any other directory stays a (bad) scenario path. */
static int dir_has_python(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        found = n > 3 && e->d_name[0] != '_' && !strcmp(e->d_name + n - 3, ".py");
    }
    closedir(d);
    return found;
}

static int is_python_spec(const char *v)
{
    if (!v || !*v) return 0;
    struct stat st;
    if (stat(v, &st) == 0 && S_ISDIR(st.st_mode)) return dir_has_python(v);
    /* "a.py" or "a.py,b.py" (Locust's comma list) */
    const char *p = v;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 3 && !strncmp(p + n - 3, ".py", 3)) return 1;
        p += n + (e ? 1 : 0);
    }
    return 0;
}

int pyrun_wants(int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) break;
        if ((!strcmp(a, "-f") || !strcmp(a, "--locustfile")) && i + 1 < argc)
            file = argv[++i];
        else if (!strncmp(a, "--locustfile=", 13))
            file = a + 13;
        else if (!strncmp(a, "-f", 2) && a[2])
            file = a[2] == '=' ? a + 3 : a + 2;
    }
    if (!file) file = getenv("LOCUST_LOCUSTFILE");
    return is_python_spec(file);
}

/* The finder that serves the embedded package; runs once at start-up. */
static const char bootstrap[] =
    "import sys, importlib.abc, importlib.util\n"
    "import _aiload\n"
    "class _Embedded(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):\n"
    "    def __init__(self, table):\n"
    "        self.table = table\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        e = self.table.get(name)\n"
    "        if e is None:\n"
    "            return None\n"
    "        spec = importlib.util.spec_from_loader(name, self, origin=e[1], is_package=e[0])\n"
    "        spec.has_location = True\n"
    "        return spec\n"
    "    def get_source(self, name):\n"
    "        return self.table[name][2]\n"
    "    def get_code(self, name):\n"
    "        e = self.table[name]\n"
    "        return compile(e[2], e[1], 'exec', dont_inherit=True)\n"
    "    def exec_module(self, module):\n"
    "        e = self.table[module.__name__]\n"
    "        module.__file__ = e[1]\n"
    "        exec(self.get_code(module.__name__), module.__dict__)\n"
    "    def is_package(self, name):\n"
    "        return self.table[name][0]\n"
    "for _m in [m for m in sys.modules if m == 'locust' or m.startswith('locust.')]:\n"
    "    del sys.modules[_m]\n"
    "sys.meta_path.insert(0, _Embedded(_aiload.SOURCES))\n";

static int add_sources(void)
{
    PyObject *mod = PyImport_ImportModule("_aiload");
    PyObject *d = PyDict_New();
    int ok = mod && d;
    for (size_t i = 0; ok && i < pyrun_nsources; i++) {
        const pyrun_source *s = &pyrun_sources[i];
        PyObject *v =
            Py_BuildValue("(Oss)", s->is_package ? Py_True : Py_False, s->file, s->source);
        ok = v && !PyDict_SetItemString(d, s->module, v);
        Py_XDECREF(v);
    }
    if (ok) ok = !PyObject_SetAttrString(mod, "SOURCES", d);
    Py_XDECREF(d);
    Py_XDECREF(mod);
    return ok ? 0 : -1;
}

static int start_python(void)
{
    if (PyImport_AppendInittab("_aiload", pyrun_init_module) < 0) return -1;
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.parse_argv = 0;
    config.safe_path = 1; /* the locustfile's directory is added by main.py, as Locust does */
    char *argv[] = {"aiload"};
    PyStatus st = PyConfig_SetBytesString(&config, &config.program_name, PYRUN_PROGRAM);
    if (!PyStatus_Exception(st)) st = PyConfig_SetBytesArgv(&config, 1, argv);
    if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        fprintf(stderr, "aiload: cannot start Python: %s\n", st.err_msg ? st.err_msg : "?");
        return -1;
    }
    if (add_sources() || PyRun_SimpleString(bootstrap)) {
        PyErr_Print();
        fprintf(stderr, "aiload: cannot set up the embedded locust package\n");
        return -1;
    }
    return 0;
}

/* Set once by pyrun_main_from before the interpreter starts; read only. */
static char **orig_args;

char **pyrun_orig_argv(void)
{
    return orig_args;
}

int pyrun_main_from(int argc, char **argv, char **orig_argv)
{
    orig_args = orig_argv;
    return pyrun_main(argc, argv);
}

int pyrun_main(int argc, char **argv)
{
    /* every user holds a socket: the soft fd limit goes to the hard one */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (start_python()) return 2;
    int code = 2;
    PyObject *args = PyList_New(0);
    for (int i = 1; args && i < argc; i++) {
        PyObject *s = PyUnicode_DecodeFSDefault(argv[i]);
        if (!s || PyList_Append(args, s)) Py_CLEAR(args);
        Py_XDECREF(s);
    }
    PyObject *mod = args ? PyImport_ImportModule("locust.main") : NULL;
    PyObject *r = mod ? PyObject_CallMethod(mod, "aiload_main", "O", args) : NULL;
    if (r && PyLong_Check(r)) {
        code = (int)PyLong_AsLong(r);
    } else if (!r && PyErr_ExceptionMatches(PyExc_SystemExit)) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        PyObject *c = v ? PyObject_GetAttrString(v, "code") : NULL;
        code = c && PyLong_Check(c) ? (int)PyLong_AsLong(c) : (c && c != Py_None ? 1 : 0);
        Py_XDECREF(c);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    } else if (!r) {
        PyErr_Print();
        fprintf(stderr, "aiload: internal error in the Python mode (above)\n");
    }
    Py_XDECREF(r);
    Py_XDECREF(mod);
    Py_XDECREF(args);
    PyObject *sys_out = PySys_GetObject("stdout"), *sys_err = PySys_GetObject("stderr");
    if (sys_out) Py_XDECREF(PyObject_CallMethod(sys_out, "flush", NULL));
    if (sys_err) Py_XDECREF(PyObject_CallMethod(sys_err, "flush", NULL));
    PyErr_Clear();
    pyrun_shutdown_module();
    /* no Py_Finalize: gevent's hub and the users' greenlets would be torn
     * down one by one for nothing; the process ends here */
    fflush(stdout);
    fflush(stderr);
    return code;
}
