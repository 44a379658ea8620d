#include "server/wsgi/conf.h"

#include "lib/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wsgi_conf_init(wsgi_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->need_app = 1;
    c->threads = 1;
    c->processes = 1;
    c->fork_probe = 1;
}

void wsgi_target_free(wsgi_target *t)
{
    free(t->module);
    free(t->file);
    free(t->callable);
    memset(t, 0, sizeof(*t));
}

void wsgi_mounts_free(wsgi_mount *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].prefix);
        wsgi_target_free(&m[i].target);
    }
    free(m);
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void wsgi_conf_free(wsgi_conf *c)
{
    free(c->module);
    free(c->wsgi_file);
    free(c->callable);
    free(c->chdir);
    free(c->home);
    free_list(c->pythonpath, c->npythonpath);
    free_list(c->env, c->nenv);
    wsgi_mounts_free(c->mounts, c->nmounts);
    memset(c, 0, sizeof(*c));
}

static int set_str(char **slot, const char *value)
{
    char *s = strdup(value);
    if (!s) return -ENOMEM;
    free(*slot);
    *slot = s;
    return 0;
}

static int push_str(char ***v, size_t *n, const char *value)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(**v));
    if (!nv) return -ENOMEM;
    *v = nv;
    if (!(nv[*n] = strdup(value))) return -ENOMEM;
    (*n)++;
    return 0;
}

/* A Python identifier, or with dotted set a dotted path of them ("pkg.mod"). */
static int valid_identifier(const char *s, size_t n, int dotted)
{
    int seg_start = 1;
    if (!n) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.' && dotted && !seg_start && i + 1 < n) {
            seg_start = 1;
            continue;
        }
        if (!(ch == '_' || isalpha(ch) || ch >= 0x80 || (!seg_start && isdigit(ch)))) return 0;
        seg_start = 0;
    }
    return 1;
}

static int is_file_spec(const char *spec, size_t n)
{
    if (memchr(spec, '/', n)) return 1;
    return n > 3 && !memcmp(spec + n - 3, ".py", 3);
}

int wsgi_target_parse(wsgi_target *t, const char *spec, const char *default_callable, char *err,
                      size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (!spec || !*spec) return err_fmt_rc(err, errlen, -EINVAL, "empty app spec");
    const char *colon = strrchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (colon && !colon[1])
        return err_fmt_rc(err, errlen, -EINVAL, "'%s': no callable after ':'", spec);
    const char *callable = colon ? colon + 1 : default_callable;
    if (!callable || !*callable) callable = "application";
    if (!valid_identifier(callable, strlen(callable), 0))
        return err_fmt_rc(err, errlen, -EINVAL, "'%s': callable '%s' is not a Python identifier",
                          spec, callable);
    if (!n) return err_fmt_rc(err, errlen, -EINVAL, "'%s': no module or file before ':'", spec);
    int r = -ENOMEM;
    if (is_file_spec(spec, n)) {
        if (!(t->file = strndup(spec, n))) goto out;
    } else {
        if (!valid_identifier(spec, n, 1))
            return err_fmt_rc(err, errlen, -EINVAL, "'%s': '%.*s' is not a module name (pkg.mod)",
                              spec, (int)n, spec);
        if (!(t->module = strndup(spec, n))) goto out;
    }
    if (!(t->callable = strdup(callable))) goto out;
    return 0;
out:
    wsgi_target_free(t);
    return r;
}

/* "/prefix=spec": the prefix is normalised to "" or "/a/b" (no trailing slash). */
int wsgi_conf_mount(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen)
{
    (void)opt;
    const char *eq = strchr(value, '=');
    if (!eq || value[0] != '/')
        return err_fmt_rc(err, errlen, -EINVAL, "mount '%s': expected /prefix=module:callable",
                          value);
    size_t plen = (size_t)(eq - value);
    while (plen > 0 && value[plen - 1] == '/') plen--;
    for (size_t i = 0; i < c->nmounts; i++)
        if (strlen(c->mounts[i].prefix) == plen && !memcmp(c->mounts[i].prefix, value, plen))
            return err_fmt_rc(err, errlen, -EINVAL, "mount '%s': prefix mounted twice", value);
    wsgi_mount m = {0};
    int r = wsgi_target_parse(&m.target, eq + 1, c->callable, err, errlen);
    if (r) return r;
    if (!(m.prefix = strndup(value, plen))) {
        wsgi_target_free(&m.target);
        return -ENOMEM;
    }
    wsgi_mount *nm = realloc(c->mounts, (c->nmounts + 1) * sizeof(*nm));
    if (!nm) {
        free(m.prefix);
        wsgi_target_free(&m.target);
        return -ENOMEM;
    }
    c->mounts = nm;
    c->mounts[c->nmounts++] = m;
    return 0;
}

int wsgi_conf_module(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen)
{
    (void)opt;
    wsgi_target t;
    int r = wsgi_target_parse(&t, value, c->callable, err, errlen);
    if (r) return r;
    wsgi_target_free(&t);
    return set_str(&c->module, value);
}

int wsgi_conf_wsgi_file(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen)
{
    if (!*value) return err_fmt_rc(err, errlen, -EINVAL, "%s: empty path", opt);
    return set_str(&c->wsgi_file, value);
}

int wsgi_conf_callable(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen)
{
    if (!valid_identifier(value, strlen(value), 0))
        return err_fmt_rc(err, errlen, -EINVAL, "%s = '%s': not a Python identifier", opt, value);
    return set_str(&c->callable, value);
}

int wsgi_conf_chdir(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen)
{
    if (!*value) return err_fmt_rc(err, errlen, -EINVAL, "%s: empty path", opt);
    return set_str(&c->chdir, value);
}

int wsgi_conf_home(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen)
{
    if (!*value) return err_fmt_rc(err, errlen, -EINVAL, "%s: empty path", opt);
    return set_str(&c->home, value);
}

int wsgi_conf_pythonpath(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen)
{
    if (!*value) return err_fmt_rc(err, errlen, -EINVAL, "%s: empty path", opt);
    return push_str(&c->pythonpath, &c->npythonpath, value);
}

int wsgi_conf_env(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen)
{
    const char *eq = strchr(value, '=');
    if (!eq || eq == value)
        return err_fmt_rc(err, errlen, -EINVAL, "%s = '%s': expected KEY=VALUE", opt, value);
    return push_str(&c->env, &c->nenv, value);
}

int wsgi_conf_has_app(const wsgi_conf *c)
{
    return c->module || c->wsgi_file || c->nmounts;
}

static int mount_cmp(const void *a, const void *b)
{
    size_t la = strlen(((const wsgi_mount *)a)->prefix),
           lb = strlen(((const wsgi_mount *)b)->prefix);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

static int copy_target(wsgi_target *dst, const wsgi_target *src)
{
    memset(dst, 0, sizeof(*dst));
    if ((src->module && !(dst->module = strdup(src->module))) ||
        (src->file && !(dst->file = strdup(src->file))) ||
        !(dst->callable = strdup(src->callable))) {
        wsgi_target_free(dst);
        return -ENOMEM;
    }
    return 0;
}

int wsgi_conf_mounts(const wsgi_conf *c, wsgi_mount **out, char *err, size_t errlen)
{
    size_t n = c->nmounts + (c->module || c->wsgi_file ? 1 : 0);
    wsgi_mount *m = calloc(n ? n : 1, sizeof(*m));
    if (!m) return -ENOMEM;
    size_t k = 0;
    int r = 0;
    for (; k < c->nmounts; k++) {
        if (!(m[k].prefix = strdup(c->mounts[k].prefix)) ||
            copy_target(&m[k].target, &c->mounts[k].target)) {
            r = -ENOMEM;
            goto fail;
        }
    }
    if (k < n) {
        const char *spec = c->module ? c->module : c->wsgi_file;
        for (size_t i = 0; i < c->nmounts; i++)
            if (!*c->mounts[i].prefix) {
                r = err_fmt_rc(err, errlen, -EINVAL,
                               "mount '=' for '/' conflicts with module/wsgi-file");
                goto fail;
            }
        if (!(m[k].prefix = strdup(""))) {
            r = -ENOMEM;
            goto fail;
        }
        if (c->module) {
            r = wsgi_target_parse(&m[k].target, spec, c->callable, err, errlen);
        } else {
            r = -ENOMEM;
            m[k].target.file = strdup(c->wsgi_file);
            m[k].target.callable = strdup(c->callable ? c->callable : "application");
            if (m[k].target.file && m[k].target.callable) r = 0;
        }
        k++;
        if (r) goto fail;
    }
    qsort(m, n, sizeof(*m), mount_cmp);
    *out = m;
    return (int)n;
fail:
    wsgi_mounts_free(m, k);
    return r;
}

int wsgi_mount_match(const wsgi_mount *m, size_t n, const char *path, size_t path_len,
                     size_t *script_len)
{
    for (size_t i = 0; i < n; i++) {
        size_t pl = strlen(m[i].prefix);
        if (pl > path_len || memcmp(m[i].prefix, path, pl)) continue;
        if (pl < path_len && path[pl] != '/') continue;
        *script_len = pl;
        return (int)i;
    }
    return -1;
}
