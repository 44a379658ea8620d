/*
 * The registry of app kinds. An app kind joins by shipping its header
 * (server/app_<kind>.h declaring `extern const app_kind app_kind_<kind>;`) and
 * its .c file: the guards below pick it up, so the build works before the
 * file exists. After adding the header, touch this file (make's dependency
 * files do not know about headers that did not exist).
 */
#include "server/app.h"

#if __has_include("server/app_wsgi.h")
#include "server/app_wsgi.h"
#define HAVE_APP_WSGI 1
#endif
#if __has_include("server/app_model.h")
#include "server/app_model.h"
#define HAVE_APP_MODEL 1
#endif

/* Models load first, so a WSGI app sees them when it is imported (`import
 * aiserve; aiserve.models()` at import time). */
static const app_kind *const kinds[] = {
#ifdef HAVE_APP_MODEL
    &app_kind_model,
#endif
#ifdef HAVE_APP_WSGI
    &app_kind_wsgi,
#endif
    NULL,
};

const app_kind *const *app_kinds(void)
{
    return kinds;
}
