/*
 * accept: the accept policy (see accept.h). Pure functions of counts; the
 * worker (worker.c) gathers the counts from its own state and the scoreboard.
 */
#include "server/accept.h"

#include "server/core.h"

int accept_conns_slack(int conns)
{
    return conns > 0 ? conns >> ACCEPT_CONNS_SLACK_SHIFT : 0;
}

int accept_able(int draining, int listen_closed, int nconns, int max_conns, uint64_t pause_until,
                uint64_t now_ms)
{
    return !draining && !listen_closed && nconns < max_conns &&
           (!pause_until || now_ms >= pause_until);
}

int accept_prefer_peer(accept_load self, int saturated, accept_load peer)
{
    if (self.warming != peer.warming) return self.warming;
    if (saturated && peer.load < self.load) return 1;
    return peer.load <= self.load && peer.conns < self.conns - accept_conns_slack(self.conns);
}

int accept_choose(accept_load self, int nthreads, const accept_load *peers, int n)
{
    int saturated = self.load >= nthreads;
    for (int i = 0; i < n; i++)
        if (accept_prefer_peer(self, saturated, peers[i])) return i;
    return -1;
}

int accept_want(int able, int *deferred, int peer_preferred)
{
    if (*deferred && (!able || !peer_preferred)) *deferred = 0;
    return able && !*deferred;
}

int accept_shed(int waiting, const accept_peer *peers, int n)
{
    if (waiting <= 0) return 0;
    for (int i = 0; i < n; i++)
        if (peers[i].running && peers[i].ready && peers[i].able && peers[i].conns == 0) return 1;
    return 0;
}

/* ---- over the scoreboard ---- */

sb_slot *accept_prefer_other(sb *b, const sb_slot *self, accept_load me, int nthreads)
{
    int saturated = me.load >= nthreads;
    for (int i = 0; i < b->nslots; i++) {
        sb_slot *sl = sb_slot_at(b, i);
        if (sl == self || atomic_load_explicit(&sl->state, memory_order_relaxed) != SB_RUNNING ||
            !atomic_load_explicit(&sl->able, memory_order_relaxed))
            continue;
        accept_load peer = {atomic_load_explicit(&sl->held, memory_order_relaxed) +
                                atomic_load_explicit(&sl->fresh, memory_order_relaxed),
                            atomic_load_explicit(&sl->conns, memory_order_relaxed),
                            !atomic_load_explicit(&sl->ready, memory_order_relaxed)};
        if (accept_prefer_peer(me, saturated, peer)) return sl;
    }
    return NULL;
}

int accept_should_shed(sb *b, int self_idx)
{
    sb_slot *me = sb_slot_at(b, self_idx);
    if (atomic_load_explicit(&me->waiting, memory_order_relaxed) <= 0) return 0;
    for (int i = 0; i < b->nslots; i++) {
        sb_slot *o = sb_slot_at(b, i);
        if (i == self_idx || atomic_load(&o->pid) <= 0) continue;
        accept_peer p = {atomic_load(&o->state) == SB_RUNNING, atomic_load(&o->ready),
                         atomic_load(&o->able), atomic_load(&o->conns)};
        if (accept_shed(1, &p, 1)) return 1;
    }
    return 0;
}
