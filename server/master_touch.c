/*
 * master_touch: the touch-* files (a changed mtime reloads: gracefully,
 * chained or the workers only) and py-autoreload (a changed source file of
 * an app the master loaded reloads). Checked from the master's tick.
 */
#include "server/master_int.h"

#include <stdlib.h>
#include <string.h>

static void touch_tick(master *m, uint64_t now)
{
    if (!m->ntouch || now - m->last_touch < 1000 || m->shutting_down) return;
    m->last_touch = now;
    for (int i = 0; i < m->ntouch; i++) {
        touch_file *t = &m->touch[i];
        if (!touch_changed(t)) continue;
        srv_log("%s was touched", t->path);
        if (t->action == TOUCH_RELOAD)
            master_reload(m);
        else if (t->action == TOUCH_CHAIN)
            master_chain_start(m);
        else if (!m->reloading && !m->chain_id)
            master_reload_fork(m);
        else
            m->pending_workers = 1;
    }
}

static void src_add(void *ctx, const char *path)
{
    master *m = ctx;
    if (m->nsrc == m->srccap) {
        int cap = m->srccap ? m->srccap * 2 : 256;
        touch_file *t = realloc(m->src, (size_t)cap * sizeof(*t));
        if (!t) return;
        m->src = t;
        char **p = realloc(m->src_paths, (size_t)cap * sizeof(*p));
        if (!p) return;
        m->src_paths = p;
        m->srccap = cap;
    }
    if (!(m->src_paths[m->nsrc] = strdup(path))) return;
    touch_init(&m->src[m->nsrc], m->src_paths[m->nsrc], TOUCH_RELOAD);
    m->nsrc++;
}

/* py-autoreload: the first changed module file reloads (re-exec), which
 * imports everything afresh and collects the list again. */
static void src_tick(master *m, uint64_t now)
{
    if (!m->nsrc || now - m->last_src < (uint64_t)m->src_every_ms || m->shutting_down) return;
    m->last_src = now;
    for (int i = 0; i < m->nsrc; i++) {
        if (!touch_changed(&m->src[i])) continue;
        srv_log("py-autoreload: %s changed; reloading", m->src[i].path);
        master_reload(m);
        return;
    }
}

void master_touch_init(master *m)
{
    srv *s = m->s;
    const cfg_core *o = cfg_core_values(s->cfg);
    const cfg_list *touch[] = {[TOUCH_RELOAD] = &o->touch_reload,
                               [TOUCH_CHAIN] = &o->touch_chain_reload,
                               [TOUCH_WORKERS] = &o->touch_workers_reload};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < touch[k]->n && m->ntouch < MAX_TOUCH; i++)
            touch_init(&m->touch[m->ntouch++], touch[k]->v[i], k);
    int every = o->py_autoreload;
    if (every > 0) {
        m->src_every_ms = every * 1000;
        for (int i = 0; i < s->napps; i++)
            if (s->apps[i].loaded && s->apps[i].kind->source_files)
                s->apps[i].kind->source_files(s->apps[i].state, src_add, m);
        if (m->nsrc)
            srv_log("py-autoreload: watching %d module files every %d s", m->nsrc, every);
        else
            srv_log("py-autoreload: no module files to watch (the apps are imported in the "
                    "workers: lazy-apps, or the fork probe deferred them)");
    }
}

void master_touch_tick(master *m, uint64_t now)
{
    touch_tick(m, now);
    src_tick(m, now);
}

void master_touch_free(master *m)
{
    for (int i = 0; i < m->nsrc; i++) free(m->src_paths[i]);
    free(m->src_paths);
    free(m->src);
}
