/*
 * wsgi_aiserve_mod: the built-in Python module `aiserve`, importable by the
 * WSGI apps aiserve hosts (and only there: it is compiled into the server and
 * registered with PyImport_AppendInittab before the interpreter starts; a
 * plain `python3` raises ModuleNotFoundError). It calls the models the server
 * loaded (`model = NAME=PATH`) in-process, through model_api: the calling
 * worker's batcher, the GIL released while the request waits. See
 * docs/wsgi.md, "Calling models from Python".
 */
#ifndef SERVER_WSGI_AISERVE_MOD_H
#define SERVER_WSGI_AISERVE_MOD_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The module's init function, for PyImport_AppendInittab("aiserve", ...). */
PyObject *wsgi_aiserve_init(void);

#endif
