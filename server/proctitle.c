#define _GNU_SOURCE
#include "server/proctitle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

/* Process-model state: the argv/environ memory this process may overwrite.
 * Written once by proctitle_init (before any fork), then only by the process
 * that owns its copy (each worker after fork). */
static char *title_area;
static size_t title_len;

char **proctitle_init(int argc, char **argv)
{
    /* From here on the process uses the copy: argv's strings get overwritten. */
    char **copy = calloc((size_t)argc + 1, sizeof(char *));
    if (!copy) return argv;
    for (int i = 0; i < argc; i++)
        if (!(copy[i] = strdup(argv[i]))) return argv;
    /* The strings of argv and then environ lie one after the other; the area
     * is as far as they stay contiguous. */
    char *end = argv[0] + strlen(argv[0]) + 1;
    for (int i = 1; i < argc && argv[i] == end; i++) end = argv[i] + strlen(argv[i]) + 1;
    size_t nenv = 0;
    while (environ && environ[nenv]) nenv++;
    char **env = calloc(nenv + 1, sizeof(char *));
    if (!env) return copy;
    for (size_t i = 0; i < nenv; i++) {
        if (environ[i] == end) end = environ[i] + strlen(environ[i]) + 1;
        if (!(env[i] = strdup(environ[i]))) return copy; /* titles stay off */
    }
    environ = env;
    title_area = argv[0];
    title_len = (size_t)(end - argv[0]);
    return copy;
}

void proctitle_set(const cfg *c, const char *role, int id)
{
    const cfg_core *o = cfg_core_values(c);
    const char *prefix = o->procname_prefix;
    const char *spaced = o->procname_prefix_spaced;
    if (!o->auto_procname && !prefix && !spaced) return;
    char title[256];
    int n = snprintf(title, sizeof(title), "%s%s%saiserve %s", prefix ? prefix : "",
                     spaced ? spaced : "", spaced ? " " : "", role);
    if (id > 0 && n > 0 && (size_t)n < sizeof(title))
        snprintf(title + n, sizeof(title) - (size_t)n, " %d", id);
    prctl(PR_SET_NAME, title, 0, 0, 0); /* the kernel keeps 15 bytes */
    if (!title_area || title_len < 2) return;
    size_t len = strlen(title);
    if (len > title_len - 1) len = title_len - 1;
    memcpy(title_area, title, len);
    memset(title_area + len, 0, title_len - len);
}
