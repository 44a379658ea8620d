/*
 * master_fifo: the master fifo's commands (`master-fifo`, uWSGI's one-letter
 * commands): each byte read from the fifo is one command for the master.
 */
#include "server/master_int.h"

#include <signal.h>
#include <stdio.h>

int master_fifo_open(master *m)
{
    const cfg *c = m->s->cfg;
    const cfg_core *o = cfg_core_values(c);
    char err[512];
    const char *const *fifos = o->master_fifo.v;
    size_t n = o->master_fifo.n;
    if (n) {
        if (fifo_open(&m->fifo, fifos[0], err, sizeof(err))) {
            srv_log("%s: %s", cfg_where(c, &o->master_fifo, 0), err);
            return -1;
        }
        if (n > 1) srv_log("master-fifo: using %s; the others are ignored", fifos[0]);
    }
    return 0;
}

static void fifo_command(master *m, char c)
{
    switch (c) {
    case 'r':
    case 'R':
        if (m->paused) master_set_paused(m, 0);
        srv_log("master fifo: graceful reload");
        master_reload(m);
        break;
    case 'w':
    case 'W':
        if (m->paused) master_set_paused(m, 0);
        if (m->reloading || m->chain_id) {
            srv_log("master fifo: a reload is under way; the workers reload follows it");
            m->pending_workers = 1;
        } else {
            master_reload_fork(m);
        }
        break;
    case 'c':
        if (m->paused) master_set_paused(m, 0);
        master_chain_start(m);
        break;
    case 'q':
        if (m->paused) master_set_paused(m, 0);
        master_shutdown_all(m, SIGTERM);
        break;
    case 'Q': master_shutdown_all(m, SIGQUIT); break;
    case '+':
        if (m->ch.algo == CHEAPER_OFF || master_add_worker(m, "master fifo"))
            srv_log("master fifo: no worker to add (processes = %d running)", m->active);
        break;
    case '-':
        if (m->active <= (m->ch.min > 1 ? m->ch.min : 1) || master_cheap_worker(m, "master fifo"))
            srv_log("master fifo: no worker to remove (%d running, at least %d)", m->active,
                    m->ch.min > 1 ? m->ch.min : 1);
        break;
    case 'p':
        if (!m->shutting_down) master_set_paused(m, !m->paused);
        break;
    case 's': {
        stats_view v = master_view(m);
        buf b = BUF_INIT;
        if (!stats_render(&v, &b)) srv_log("stats: %.*s", (int)(b.len ? b.len - 1 : 0), b.data);
        buf_free(&b);
        break;
    }
    case '\n':
    case '\r':
    case ' ': break;
    default:
        if (c >= 0x21 && c < 0x7f)
            srv_log("master fifo: unknown command '%c'", c);
        else
            srv_log("master fifo: unknown command byte 0x%02x", (unsigned char)c);
    }
}

void master_fifo_io(master *m)
{
    char cmds[256];
    ssize_t n;
    while ((n = fifo_read(&m->fifo, cmds, sizeof(cmds))) > 0)
        for (ssize_t i = 0; i < n && !m->quit; i++) fifo_command(m, cmds[i]);
}
