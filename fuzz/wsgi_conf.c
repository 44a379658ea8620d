/* libFuzzer: WSGI option values and request paths are untrusted text. The
 * input is "Kvalue\0Kvalue\0...\0target": each K byte picks one of
 * wsgi_conf's setters, which gets the value (then the mount table is built
 * and matched), and the tail goes through the request-path decoder. Nothing may crash, leak or read
 * out of bounds. */
#include "server/wsgi/call.h"
#include "server/wsgi/conf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    wsgi_conf c;
    wsgi_conf_init(&c);
    static const wsgi_conf_setter setters[] = {
        wsgi_conf_module, wsgi_conf_wsgi_file,  wsgi_conf_callable, wsgi_conf_chdir,
        wsgi_conf_home,   wsgi_conf_pythonpath, wsgi_conf_env,      wsgi_conf_mount,
    };
    char err[256];
    const char *p = s, *end = s + size;
    while (p < end) {
        wsgi_conf_setter set = setters[(unsigned char)*p % (sizeof(setters) / sizeof(*setters))];
        const char *value = p + 1;
        if (value >= end) break;
        p = value + strlen(value) + 1;
        set(&c, "opt", value, err, sizeof(err));
    }
    wsgi_mount *m;
    int n = wsgi_conf_mounts(&c, &m, err, sizeof(err));
    if (n >= 0) {
        size_t sl;
        wsgi_mount_match(m, (size_t)n, s, strnlen(s, size), &sl);
        wsgi_mounts_free(m, (size_t)n);
    }
    wsgi_conf_free(&c);
    /* The whole input as a request-target. */
    char *out = malloc(size + 1);
    const char *q;
    size_t ql;
    if (out) {
        long k = wsgi_path_decode((const char *)data, size, out, &q, &ql);
        if (k > (long)size || q < (const char *)data || q + ql > (const char *)data + size) abort();
        free(out);
    }
    free(s);
    return 0;
}
