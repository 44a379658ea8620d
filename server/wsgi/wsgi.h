/*
 * app_wsgi: the "wsgi" app kind: hosts Python WSGI apps (Flask, Django, any
 * PEP 3333 callable) in each worker through embedded CPython. Options:
 * module, wsgi-file, callable, pythonpath, home/virtualenv, mount, plus the
 * core's chdir, env, need-app, lazy-apps, threads and processes.
 * See docs/wsgi.md.
 */
#ifndef SERVER_WSGI_WSGI_H
#define SERVER_WSGI_WSGI_H

#include "lib/buf.h" /* app.h names struct buf */
#include "server/app.h"

extern const app_kind app_kind_wsgi;

#endif
