/* wsgi_call against an in-memory HTTP side: each test starts CPython in its
 * own Criterion process, compiles a small app and checks what reached io. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "server/wsgi/call.h"
#include "server/wsgi/types.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* CPython keeps interned objects until exit; they are not leaks of ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libpython3\nleak:_PyObject\nleak:PyUnicode\n";
}

typedef struct mem_io {
    const char *body;
    size_t body_len, body_off;
    int status;
    buf reason, headers, out, log;
    int64_t cl;
    int started, finished, ok;
    int writes_before_gone; /* -1: never */
    int read_error;         /* returned once the body is consumed (0: EOF) */
    int sendfiles;
} mem_io;

static long m_read(void *ctx, void *b, size_t n)
{
    mem_io *m = ctx;
    if (m->read_error && m->body_off == m->body_len) return m->read_error;
    size_t left = m->body_len - m->body_off;
    if (n > left) n = left;
    if (n > 7) n = 7; /* short reads exercise the buffering */
    memcpy(b, m->body + m->body_off, n);
    m->body_off += n;
    return (long)n;
}

static int m_start(void *ctx, int status, const char *reason, size_t rlen, const wsgi_header *h,
                   size_t n, int64_t cl)
{
    mem_io *m = ctx;
    m->started++;
    m->status = status;
    m->cl = cl;
    buf_append(&m->reason, reason, rlen);
    for (size_t i = 0; i < n; i++)
        buf_printf(&m->headers, "%.*s: %.*s\n", (int)h[i].name_len, h[i].name, (int)h[i].value_len,
                   h[i].value);
    return 0;
}

static int m_write(void *ctx, const void *d, size_t n)
{
    mem_io *m = ctx;
    if (m->writes_before_gone == 0) return -EPIPE;
    if (m->writes_before_gone > 0) m->writes_before_gone--;
    return buf_append(&m->out, d, n);
}

static int m_sendfile(void *ctx, int fd, int64_t off, int64_t len)
{
    mem_io *m = ctx;
    char tmp[4096];
    m->sendfiles++;
    while (len > 0) {
        ssize_t k = pread(fd, tmp, len < (int64_t)sizeof(tmp) ? (size_t)len : sizeof(tmp), off);
        if (k <= 0) return -EIO;
        buf_append(&m->out, tmp, (size_t)k);
        off += k;
        len -= k;
    }
    return 0;
}

static void m_finish(void *ctx, int ok)
{
    mem_io *m = ctx;
    m->finished++;
    m->ok = ok;
}

static void m_log(void *ctx, const char *msg, size_t n)
{
    mem_io *m = ctx;
    buf_printf(&m->log, "%.*s\n", (int)n, msg);
}

static wsgi_types *types;

static void py_up(void)
{
    PyConfig c;
    PyConfig_InitPythonConfig(&c);
    c.install_signal_handlers = 0;
    PyConfig_SetBytesString(&c, &c.program_name, "/usr/bin/python3");
    cr_assert(!PyStatus_Exception(Py_InitializeFromConfig(&c)));
    PyConfig_Clear(&c);
    types = wsgi_types_new();
    cr_assert_not_null(types);
}

static void py_down(void)
{
    wsgi_types_free(types);
    Py_FinalizeEx();
}

/* Compiles src and returns its global `app`, wrapped in wsgiref's validator
 * unless the source sets NO_VALIDATE. Also returns the module dict. */
static PyObject *app_from(const char *src, PyObject **globals)
{
    PyObject *g = PyDict_New();
    PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins());
    PyObject *r = PyRun_String(src, Py_file_input, g, g);
    if (!r) PyErr_Print();
    cr_assert_not_null(r, "the test app compiles");
    Py_DECREF(r);
    PyObject *app = PyDict_GetItemString(g, "app");
    cr_assert_not_null(app);
    Py_INCREF(app);
    if (!PyDict_GetItemString(g, "NO_VALIDATE")) {
        PyObject *v = PyImport_ImportModule("wsgiref.validate");
        PyObject *w = PyObject_CallMethod(v, "validator", "O", app);
        Py_DECREF(v);
        Py_DECREF(app);
        app = w;
    }
    if (globals)
        *globals = g;
    else
        Py_DECREF(g);
    return app;
}

static void mem_done(mem_io *m)
{
    buf_free(&m->reason);
    buf_free(&m->headers);
    buf_free(&m->out);
    buf_free(&m->log);
}

static wsgi_io io_for(mem_io *m)
{
    m->writes_before_gone = m->writes_before_gone ? m->writes_before_gone : -1;
    return (wsgi_io){m, m_read, m_start, m_write, m_sendfile, m_finish, m_log};
}

static wsgi_request get(const char *method, const char *target)
{
    static const wsgi_header hs[] = {
        {"Host", 4, "example.test:8080", 17},
        {"Cookie", 6, "a=1", 3},
        {"Cookie", 6, "b=2", 3},
        {"X_Spoof", 7, "bad", 3},
        {"Content-Type", 12, "text/plain", 10},
        {"X-Caf", 5, "caf\xe9", 4},
        {"X\xe9", 2, "dropped", 7},
    };
    return (wsgi_request){.method = method,
                          .method_len = strlen(method),
                          .target = target,
                          .target_len = strlen(target),
                          .version_minor = 1,
                          .headers = hs,
                          .nheaders = sizeof(hs) / sizeof(*hs),
                          .remote_addr = "127.0.0.1",
                          .remote_port = 5555,
                          .server_name = "example.test",
                          .server_port = 8080,
                          .content_length = -1};
}

static const wsgi_flags flags = {1, 0, 0};

/* Runs src's app on rq; with globals, hands back the app's module dict (the
 * caller drops it) so a test can look at what the app recorded. */
static wsgi_status run_g(const char *src, wsgi_request *rq, mem_io *m, size_t script_len,
                         PyObject **globals)
{
    PyObject *app = app_from(src, globals);
    wsgi_io io = io_for(m);
    wsgi_status s = wsgi_call_run(types, app, rq, script_len, &flags, &io);
    Py_DECREF(app);
    cr_assert(!PyErr_Occurred(), "no Python error leaks out of wsgi_call_run");
    return s;
}

static wsgi_status run(const char *src, wsgi_request *rq, mem_io *m, size_t script_len)
{
    return run_g(src, rq, m, script_len, NULL);
}

/* Runs src's app on GET / into a fresh *m. */
static wsgi_status run_get(const char *src, mem_io *m)
{
    wsgi_request rq = get("GET", "/");
    return run(src, &rq, m, 0);
}

/* The length of the list the app keeps in global name. */
static Py_ssize_t list_len(PyObject *g, const char *name)
{
    return PyList_Size(PyDict_GetItemString(g, name));
}

TestSuite(wsgi_call, .init = py_up, .fini = py_down);

Test(wsgi_call, environ_has_every_cgi_and_wsgi_key_as_native_latin1_strings)
{
    const char *src = "def app(env, sr):\n"
                      "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    keys = ['REQUEST_METHOD','SCRIPT_NAME','PATH_INFO','QUERY_STRING',\n"
                      "            'CONTENT_TYPE','SERVER_NAME','SERVER_PORT','SERVER_PROTOCOL',\n"
                      "            'REMOTE_ADDR','REQUEST_URI','HTTP_HOST','HTTP_COOKIE',\n"
                      "            'HTTP_X_CAF','wsgi.url_scheme']\n"
                      "    out = '|'.join(env[k] for k in keys)\n"
                      "    assert type(env) is dict and 'HTTP_X_SPOOF' not in env\n"
                      "    assert 'CONTENT_LENGTH' not in env and 'HTTP_CONTENT_TYPE' not in env\n"
                      "    assert env['wsgi.version'] == (1, 0) and env['wsgi.multithread']\n"
                      "    assert not env['wsgi.multiprocess'] and not env['wsgi.run_once']\n"
                      "    assert env['wsgi.input_terminated'] is False\n"
                      "    return [out.encode('utf-8')]\n";
    mem_io m = {0};
    wsgi_request rq = get("GET", "/app/caf%C3%A9%20x?q=%41&b");
    cr_assert_eq(run(src, &rq, &m, 4), WSGI_OK);
    cr_assert_str_eq(m.out.data, "GET|/app|/caf\xc3\x83\xc2\xa9 x|q=%41&b|text/plain|example.test|"
                                 "8080|HTTP/1.1|127.0.0.1|/app/caf%C3%A9%20x?q=%41&b|"
                                 "example.test:8080|a=1; b=2|caf\xc3\xa9|http");
    cr_assert_eq(m.finished, 1);
    cr_assert(m.ok);
    mem_done(&m);
}

Test(wsgi_call, one_item_list_gets_a_content_length)
{
    const char *src = "NO_VALIDATE = 1\n"
                      "def app(env, sr):\n"
                      "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    return [b'12345']\n";
    mem_io m = {0};
    cr_assert_eq(run_get(src, &m), WSGI_OK);
    cr_assert_eq(m.cl, 5);
    mem_done(&m);
}

Test(wsgi_call, generator_body_streams_without_length_and_close_is_called)
{
    const char *src = "closed = []\n"
                      "class Body:\n"
                      "    def __iter__(self):\n"
                      "        yield b'a'; yield b''; yield b'bc'\n"
                      "    def close(self): closed.append(1)\n"
                      "def app(env, sr):\n"
                      "    sr('201 Created', [('Content-Type', 'text/plain'), ('X-A', 'b')])\n"
                      "    return Body()\n";
    mem_io m = {0};
    wsgi_request rq = get("GET", "/");
    PyObject *g;
    cr_assert_eq(run_g(src, &rq, &m, 0, &g), WSGI_OK);
    cr_assert_eq(m.status, 201);
    cr_assert_str_eq(m.reason.data, "Created");
    cr_assert_eq(m.cl, -1, "an iterator of unknown size has no Content-Length");
    cr_assert_str_eq(m.out.data, "abc");
    cr_assert_str_eq(m.headers.data, "Content-Type: text/plain\nX-A: b\n");
    cr_assert_eq(list_len(g, "closed"), 1);
    Py_DECREF(g);
    mem_done(&m);
}

/* Apps that fail before a byte of the response is sent: each is an app
 * error answered 500 (never an exit, never a header injected), with the
 * reason in the log where one is named. */
Test(wsgi_call, failures_before_the_headers_answer_500)
{
    static const struct {
        const char *what, *src, *log;
    } cases[] = {
        {"an exception logs its traceback",
         "def app(env, sr):\n"
         "    raise KeyError('boom-key')\n",
         "boom-key"},
        {"a second start_response without exc_info",
         "NO_VALIDATE = 1\n"
         "def app(env, sr):\n"
         "    sr('200 OK', [])\n"
         "    sr('404 Not Found', [])\n"
         "    return [b'x']\n",
         NULL},
        {"a header with CRLF is refused, not injected",
         "NO_VALIDATE = 1\n"
         "def app(env, sr):\n"
         "    sr('200 OK', [('X-A', 'v\\r\\nSet-Cookie: evil=1')])\n"
         "    return [b'x']\n",
         NULL},
        {"a header value with DEL is refused",
         "NO_VALIDATE = 1\n"
         "def app(env, sr):\n"
         "    sr('200 OK', [('X-A', 'v\\x7fevil')])\n"
         "    return [b'x']\n",
         NULL},
        {"a header value beyond latin-1 is refused",
         "NO_VALIDATE = 1\n"
         "def app(env, sr):\n"
         "    sr('200 OK', [('X-A', '\\u20ac evil')])\n"
         "    return [b'x']\n",
         NULL},
        {"a body of str, not bytes",
         "NO_VALIDATE = 1\n"
         "def app(env, sr):\n"
         "    sr('200 OK', [])\n"
         "    return ['text, not bytes']\n",
         NULL},
        {"SystemExit is a 500, not an exit",
         "import sys\n"
         "def app(env, sr):\n"
         "    sys.exit(3)\n",
         "SystemExit"},
        {"None as the result",
         "NO_VALIDATE = 1\n"
         "def app(env, sr):\n"
         "    sr('200 OK', [])\n",
         NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        mem_io m = {0};
        cr_assert_eq(run_get(cases[i].src, &m), WSGI_APP_ERROR, "%s", cases[i].what);
        cr_assert_eq(m.status, 500, "%s", cases[i].what);
        cr_assert_eq(m.finished, 1, "%s", cases[i].what);
        cr_assert(!m.headers.data || !strstr(m.headers.data, "evil"), "%s", cases[i].what);
        if (cases[i].log)
            cr_assert(m.log.data && strstr(m.log.data, cases[i].log), "%s: log %s", cases[i].what,
                      m.log.data ? m.log.data : "");
        if (i == 0) cr_assert(strstr(m.log.data, "Traceback"), "log: %s", m.log.data);
        mem_done(&m);
    }
    const char *bad[] = {"'200'", "'20 OK'", "'abc OK'", "b'200 OK'", "'200 O\\nK'", "200"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char src[256];
        snprintf(src, sizeof(src),
                 "NO_VALIDATE = 1\n"
                 "def app(env, sr):\n"
                 "    sr(%s, [])\n"
                 "    return [b'x']\n",
                 bad[i]);
        mem_io m = {0};
        cr_assert_eq(run_get(src, &m), WSGI_APP_ERROR, "bad status line %s", bad[i]);
        cr_assert_eq(m.status, 500);
        mem_done(&m);
    }
}

Test(wsgi_call, exc_info_before_headers_replaces_the_status)
{
    const char *src = "import sys\n"
                      "def app(env, sr):\n"
                      "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    try:\n"
                      "        1/0\n"
                      "    except ZeroDivisionError:\n"
                      "        sr('503 Busy', [('Content-Type', 'text/plain')], sys.exc_info())\n"
                      "    return [b'later']\n";
    mem_io m = {0};
    cr_assert_eq(run_get(src, &m), WSGI_OK);
    cr_assert_eq(m.status, 503);
    cr_assert_str_eq(m.out.data, "later");
    mem_done(&m);
}

Test(wsgi_call, exc_info_after_headers_reraises_and_breaks_the_response)
{
    const char *src = "import sys\n"
                      "NO_VALIDATE = 1\n"
                      "def app(env, sr):\n"
                      "    w = sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    w(b'partial')\n"
                      "    try:\n"
                      "        raise ValueError('late-failure')\n"
                      "    except ValueError:\n"
                      "        sr('500 Oops', [('Content-Type', 'text/plain')], sys.exc_info())\n"
                      "    return [b'never']\n";
    mem_io m = {0};
    cr_assert_eq(run_get(src, &m), WSGI_BROKEN);
    cr_assert_eq(m.status, 200);
    cr_assert_str_eq(m.out.data, "partial");
    cr_assert_eq(m.ok, 0, "the connection must be cut");
    cr_assert(strstr(m.log.data, "late-failure"));
    mem_done(&m);
}

Test(wsgi_call, legacy_write_then_iterable)
{
    const char *src = "def app(env, sr):\n"
                      "    w = sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    w(b'one,')\n"
                      "    return [b'two']\n";
    mem_io m = {0};
    cr_assert_eq(run_get(src, &m), WSGI_OK);
    cr_assert_str_eq(m.out.data, "one,two");
    cr_assert_eq(m.started, 1);
    mem_done(&m);
}

Test(wsgi_call, input_read_readline_readlines_iteration_and_eof)
{
    const char *src = "def app(env, sr):\n"
                      "    i = env['wsgi.input']\n"
                      "    a = i.read(3)\n"
                      "    b = i.readline()\n"
                      "    c = i.readline(2)\n"
                      "    d = i.readlines()\n"
                      "    e = i.read(5)\n"
                      "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    return [repr((a, b, c, d, e)).encode()]\n";
    mem_io m = {.body = "abcdef\nghijkl\nmn\nlast", .body_len = 21};
    wsgi_request rq = get("POST", "/");
    rq.content_length = 21;
    cr_assert_eq(run(src, &rq, &m, 0), WSGI_OK);
    cr_assert_str_eq(m.out.data,
                     "(b'abc', b'def\\n', b'gh', [b'ijkl\\n', b'mn\\n', b'last'], b'')");
    mem_done(&m);
}

Test(wsgi_call, input_iteration_and_read_all_on_chunked_body)
{
    const char *src = "NO_VALIDATE = 1\n"
                      "def app(env, sr):\n"
                      "    i = env['wsgi.input']\n"
                      "    first = next(iter(i))\n"
                      "    rest = i.read()\n"
                      "    assert 'CONTENT_LENGTH' not in env and env['wsgi.input_terminated']\n"
                      "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    return [first + b'|' + rest]\n";
    mem_io m = {.body = "line1\nthe rest of a long body", .body_len = 29};
    wsgi_request rq = get("POST", "/");
    rq.chunked = 1;
    cr_assert_eq(run(src, &rq, &m, 0), WSGI_OK);
    cr_assert_str_eq(m.out.data, "line1\n|the rest of a long body");
    mem_done(&m);
}

Test(wsgi_call, client_disconnect_stops_iteration_and_calls_close)
{
    const char *src = "closed = []\n"
                      "made = []\n"
                      "class Body:\n"
                      "    def __iter__(self):\n"
                      "        for i in range(100):\n"
                      "            made.append(i); yield b'x' * 10\n"
                      "    def close(self): closed.append(1)\n"
                      "def app(env, sr):\n"
                      "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    return Body()\n";
    mem_io m = {.writes_before_gone = 2};
    wsgi_request rq = get("GET", "/");
    PyObject *g;
    cr_assert_eq(run_g(src, &rq, &m, 0, &g), WSGI_CLIENT_GONE);
    cr_assert_eq(list_len(g, "closed"), 1);
    cr_assert_lt(list_len(g, "made"), 5, "iteration stops");
    cr_assert_eq(m.ok, 0);
    Py_DECREF(g);
    mem_done(&m);
}

Test(wsgi_call, exception_mid_iteration_still_calls_close)
{
    const char *src = "closed = []\n"
                      "class Body:\n"
                      "    def __iter__(self):\n"
                      "        yield b'a'\n"
                      "        raise RuntimeError('mid-stream')\n"
                      "    def close(self): closed.append(1)\n"
                      "def app(env, sr):\n"
                      "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    return Body()\n";
    mem_io m = {0};
    wsgi_request rq = get("GET", "/");
    PyObject *g;
    cr_assert_eq(run_g(src, &rq, &m, 0, &g), WSGI_BROKEN);
    cr_assert_eq(list_len(g, "closed"), 1);
    cr_assert(strstr(m.log.data, "mid-stream"));
    Py_DECREF(g);
    mem_done(&m);
}

Test(wsgi_call, file_wrapper_uses_sendfile_for_real_files_and_iterates_others)
{
    char path[] = "/tmp/wsgi_fw_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "0123456789", 10), 10);
    close(fd);
    char src[1024];
    snprintf(src, sizeof(src),
             "import io\n"
             "NO_VALIDATE = 1\n"
             "def app(env, sr):\n"
             "    sr('200 OK', [('Content-Type', 'application/octet-stream')])\n"
             "    if env['PATH_INFO'] == '/real':\n"
             "        f = open('%s', 'rb'); f.read(2)\n"
             "        return env['wsgi.file_wrapper'](f, 4)\n"
             "    return env['wsgi.file_wrapper'](io.BytesIO(b'abcdefghij'), 3)\n",
             path);
    mem_io m = {0};
    wsgi_request rq = get("GET", "/real");
    cr_assert_eq(run(src, &rq, &m, 0), WSGI_OK);
    cr_assert_str_eq(m.out.data, "23456789", "sendfile starts at the file position");
    cr_assert_eq(m.sendfiles, 1);
    cr_assert_eq(m.cl, 8);
    mem_io m2 = {0};
    rq = get("GET", "/bytesio");
    cr_assert_eq(run(src, &rq, &m2, 0), WSGI_OK);
    cr_assert_str_eq(m2.out.data, "abcdefghij");
    cr_assert_eq(m2.sendfiles, 0, "BytesIO has no fileno: iterate instead");
    unlink(path);
    mem_done(&m);
    mem_done(&m2);
}

Test(wsgi_call, head_sends_headers_and_length_but_no_body)
{
    const char *src = "NO_VALIDATE = 1\n"
                      "def app(env, sr):\n"
                      "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    return [b'hello']\n";
    mem_io m = {0};
    wsgi_request rq = get("HEAD", "/");
    cr_assert_eq(run(src, &rq, &m, 0), WSGI_OK);
    cr_assert_eq(m.cl, 5);
    cr_assert_eq(m.out.len, 0);
    mem_done(&m);
}

Test(wsgi_call, declared_length_is_never_exceeded_and_a_short_body_breaks)
{
    const char *src = "NO_VALIDATE = 1\n"
                      "def app(env, sr):\n"
                      "    sr('200 OK', [('Content-Length', env['QUERY_STRING'])])\n"
                      "    return [b'abc', b'def']\n";
    mem_io m = {0};
    wsgi_request rq = get("GET", "/?4");
    cr_assert_eq(run(src, &rq, &m, 0), WSGI_OK);
    cr_assert_str_eq(m.out.data, "abcd");
    mem_io m2 = {0};
    rq = get("GET", "/?10");
    cr_assert_eq(run(src, &rq, &m2, 0), WSGI_BROKEN);
    cr_assert_eq(m2.ok, 0);
    mem_done(&m);
    mem_done(&m2);
}

Test(wsgi_call, errors_stream_lines_reach_the_log)
{
    const char *src = "def app(env, sr):\n"
                      "    e = env['wsgi.errors']\n"
                      "    e.write('first line\\nsecond ')\n"
                      "    e.writelines(['part\\n'])\n"
                      "    e.flush()\n"
                      "    sr('204 No Content', [])\n"
                      "    return []\n";
    mem_io m = {0};
    cr_assert_eq(run_get(src, &m), WSGI_OK);
    cr_assert_str_eq(m.log.data, "first line\nsecond part\n");
    cr_assert_eq(m.status, 204);
    mem_done(&m);
}

Test(wsgi_call, objects_kept_after_the_request_raise_instead_of_crashing)
{
    const char *src = "NO_VALIDATE = 1\n"
                      "kept = []\n"
                      "def app(env, sr):\n"
                      "    kept.append((env['wsgi.input'], sr))\n"
                      "    sr('200 OK', [])\n"
                      "    return [b'x']\n";
    mem_io m = {0};
    wsgi_request rq = get("GET", "/");
    PyObject *g;
    cr_assert_eq(run_g(src, &rq, &m, 0, &g), WSGI_OK);
    PyObject *r = PyRun_String("kept[0][0].read(1)", Py_eval_input, g, g);
    cr_assert_null(r);
    cr_assert(PyErr_ExceptionMatches(PyExc_OSError));
    PyErr_Clear();
    r = PyRun_String("kept[0][1].write(b'late')", Py_eval_input, g, g);
    cr_assert_null(r);
    PyErr_Clear();
    Py_DECREF(g);
    mem_done(&m);
}

Test(wsgi_call, path_decode_splits_query_and_rejects_bad_escapes)
{
    char out[64];
    const char *q;
    size_t ql;
    cr_assert_eq(wsgi_path_decode("/a%20b/%7e?x=%20", 16, out, &q, &ql), 6);
    cr_assert_str_eq(out, "/a b/~");
    cr_assert_eq(ql, 5);
    cr_assert_eq(wsgi_path_decode("http://h:1/p?q", 14, out, &q, &ql), 2);
    cr_assert_str_eq(out, "/p");
    cr_assert_eq(wsgi_path_decode("/%zz", 4, out, &q, &ql), -1);
    cr_assert_eq(wsgi_path_decode("/%00", 4, out, &q, &ql), -1);
    cr_assert_eq(wsgi_path_decode("/%4", 3, out, &q, &ql), -1);
}

Test(wsgi_call, exception_in_close_is_logged_after_a_complete_response)
{
    const char *src = "class Body(list):\n"
                      "    def close(self): raise OSError('close-failed')\n"
                      "def app(env, sr):\n"
                      "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    return Body([b'done'])\n";
    mem_io m = {0};
    cr_assert_eq(run_get(src, &m), WSGI_OK);
    cr_assert_str_eq(m.out.data, "done");
    cr_assert(m.ok);
    cr_assert(strstr(m.log.data, "close-failed"));
    mem_done(&m);
}

Test(wsgi_call, a_body_that_cannot_be_read_answers_the_clients_error_not_500)
{
    const char *src = "def app(env, sr):\n"
                      "    env['wsgi.input'].read(100)\n"
                      "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    return [b'never']\n";
    static const struct {
        int err, status;
    } cases[] = {{-EPROTO, 400}, {-EMSGSIZE, 413}, {-ETIMEDOUT, 408}, {-ECONNRESET, 500}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        mem_io m = {.body = "partial", .body_len = 7, .read_error = cases[i].err};
        wsgi_request rq = get("POST", "/");
        rq.chunked = 1;
        cr_assert_eq(run(src, &rq, &m, 0), WSGI_APP_ERROR);
        cr_assert_eq(m.status, cases[i].status, "errno %d", cases[i].err);
        mem_done(&m);
    }
}

/* Each environ is a copy of one template (call.c): what an app does to its
 * environ never reaches the next request, no key keeps the template's None,
 * and the values that are remembered between requests follow the request. */
Test(wsgi_call, environ_template_and_memos_never_leak_between_requests)
{
    const char *src =
        "NO_VALIDATE = 1\n"
        "seen = []\n"
        "def app(env, sr):\n"
        "    assert None not in env.values(), env\n"
        "    seen.append((env['SERVER_NAME'], env['SERVER_PORT'], env['REMOTE_ADDR'],\n"
        "                 env['REMOTE_PORT'], env['wsgi.url_scheme'], env.get('HTTPS'),\n"
        "                 env['wsgi.input_terminated'], 'wsgi.file_wrapper' in env,\n"
        "                 env['REQUEST_METHOD'], env['PATH_INFO'], 'MINE' in env))\n"
        "    env['MINE'] = 1\n"
        "    env['wsgi.url_scheme'] = 'gopher'\n"
        "    del env['wsgi.version']\n"
        "    sr('200 OK', [])\n"
        "    return [b'x']\n";
    PyObject *g;
    PyObject *app = app_from(src, &g);
    wsgi_flags fl[3] = {{0, 1, 0}, {0, 1, 0}, {0, 1, 1}};
    const char *names[3] = {"a.test", "a.test", "b.test"};
    const char *addrs[3] = {"10.0.0.1", "10.0.0.1", "10.0.0.2"};
    for (int i = 0; i < 3; i++) {
        mem_io m = {0};
        wsgi_io io = io_for(&m);
        wsgi_request rq = get(i == 2 ? "PUT" : "GET", i == 1 ? "/p" : "/");
        rq.server_name = names[i];
        rq.server_port = 8000 + i;
        rq.remote_addr = addrs[i];
        rq.remote_port = 40000 + i;
        rq.https = i == 1;
        rq.chunked = i == 2;
        cr_assert_eq(wsgi_call_run(types, app, &rq, 0, &fl[i], &io), WSGI_OK);
        cr_assert_str_eq(m.out.data, "x");
        mem_done(&m);
    }
    PyObject *want = NULL;
    PyObject *r = PyRun_String(
        "[('a.test', '8000', '10.0.0.1', '40000', 'http', None, False, True, 'GET', '/', False),"
        " ('a.test', '8001', '10.0.0.1', '40001', 'https', 'on', False, True, 'GET', '/p', False),"
        " ('b.test', '8002', '10.0.0.2', '40002', 'http', None, True, False, 'PUT', '/', False)]",
        Py_eval_input, g, g);
    cr_assert_not_null(r);
    want = r;
    PyObject *seen = PyDict_GetItemString(g, "seen");
    int eq = PyObject_RichCompareBool(seen, want, Py_EQ);
    if (eq != 1) PyObject_Print(seen, stderr, 0);
    cr_assert_eq(eq, 1, "each request's environ is its own");
    Py_DECREF(want);
    Py_DECREF(app);
    Py_DECREF(g);
}

/* start_response's vectorcall takes its arguments by position or by name as
 * PEP 3333's signature says, and refuses others as a Python function would. */
Test(wsgi_call, start_response_takes_keywords_and_refuses_bad_calls)
{
    const char *src =
        "NO_VALIDATE = 1\n"
        "errs = []\n"
        "def app(env, sr):\n"
        "    for args, kw in [((), {}), (('200 OK',), {}), (('200 OK', [], None, 1), {}),\n"
        "                     (('200 OK', []), {'bogus': 1}),\n"
        "                     (('200 OK', []), {'status': '200 OK'})]:\n"
        "        try:\n"
        "            sr(*args, **kw)\n"
        "        except TypeError as e:\n"
        "            errs.append(str(e))\n"
        "    w = sr(response_headers=[('X-A', '1')], status='201 Made', exc_info=None)\n"
        "    w(b'legacy')\n"
        "    return [b'+']\n";
    mem_io m = {0};
    PyObject *g;
    wsgi_request rq = get("GET", "/");
    cr_assert_eq(run_g(src, &rq, &m, 0, &g), WSGI_OK);
    cr_assert_eq(m.status, 201);
    cr_assert_str_eq(m.headers.data, "X-A: 1\n");
    cr_assert_str_eq(m.out.data, "legacy+");
    cr_assert_eq(list_len(g, "errs"), 5, "every bad call raised TypeError");
    Py_DECREF(g);
    mem_done(&m);
}

/* A request's input, errors and start_response are reused by the next
 * request only when nothing else holds them: no state crosses over, and an
 * object the app kept stays detached instead of serving someone else. */
Test(wsgi_call, request_objects_are_reused_only_when_no_one_kept_them)
{
    const char *src = "NO_VALIDATE = 1\n"
                      "kept = []\n"
                      "ids = []\n"
                      "def app(env, sr):\n"
                      "    ids.append((id(env['wsgi.input']), id(sr)))\n"
                      "    body = env['wsgi.input'].read(1 if len(ids) == 1 else None)\n"
                      "    env['wsgi.errors'].write('part of a line ')\n"
                      "    if len(ids) == 2:\n"
                      "        kept.append(env)\n"
                      "    sr('200 OK', [])\n"
                      "    return [body]\n";
    PyObject *g;
    PyObject *app = app_from(src, &g);
    const char *bodies[3] = {"abc", "defg", "hi"};
    const char *want[3] = {"a", "defg", "hi"};
    for (int i = 0; i < 3; i++) {
        mem_io m = {.body = bodies[i], .body_len = strlen(bodies[i])};
        wsgi_io io = io_for(&m);
        static const wsgi_header cl = {"Content-Length", 14, "3", 1};
        wsgi_request rq = get("POST", "/");
        rq.headers = &cl;
        rq.nheaders = 1;
        rq.content_length = (int64_t)strlen(bodies[i]);
        cr_assert_eq(wsgi_call_run(types, app, &rq, 0, &flags, &io), WSGI_OK);
        cr_assert_str_eq(m.out.data, want[i], "request %d got its own body", i);
        cr_assert_str_eq(m.log.data, "part of a line \n", "the unfinished line is flushed");
        mem_done(&m);
    }
    PyObject *r = PyRun_String("(ids[0] == ids[1], ids[1] != ids[2],"
                               " kept[0]['wsgi.input'].read.__self__ is not None)",
                               Py_eval_input, g, g);
    cr_assert_not_null(r);
    cr_assert(PyObject_IsTrue(PyTuple_GET_ITEM(r, 0)), "an unkept request's objects are reused");
    cr_assert(PyObject_IsTrue(PyTuple_GET_ITEM(r, 1)), "kept objects are not reused");
    Py_DECREF(r);
    r = PyRun_String("kept[0]['wsgi.input'].read()", Py_eval_input, g, g);
    cr_assert_null(r, "the kept input is detached");
    cr_assert(PyErr_ExceptionMatches(PyExc_OSError));
    PyErr_Clear();
    Py_DECREF(app);
    Py_DECREF(g);
}
