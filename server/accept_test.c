/* The accept policy (accept.c) as a function of the scoreboard's counts:
 * no sockets, no processes. */
#include "server/accept.h"
#include "server/core.h"

#include <criterion/criterion.h>

Test(accept_able, serving_below_max_connections_and_not_paused)
{
    cr_assert(accept_able(0, 0, 0, 10, 0, 5));
    cr_assert(accept_able(0, 0, 9, 10, 0, 5));
    cr_assert_not(accept_able(0, 0, 10, 10, 0, 5),
                  "at max-connections: the kernel queue holds them");
    cr_assert_not(accept_able(1, 0, 0, 10, 0, 5), "draining");
    cr_assert_not(accept_able(0, 1, 0, 10, 0, 5), "listen sockets closed");
    cr_assert_not(accept_able(0, 0, 0, 10, 100, 99), "out of fds: paused until 100 ms");
    cr_assert(accept_able(0, 0, 0, 10, 100, 100), "the pause is over");
}

Test(accept_prefer, saturated_worker_leaves_it_to_a_less_loaded_peer)
{
    accept_load me = {.load = 4, .conns = 4};
    cr_assert(accept_prefer_peer(me, 1, (accept_load){.load = 3, .conns = 50}));
    /* not saturated: a peer with less load but more connections does not take it */
    cr_assert_not(accept_prefer_peer(me, 0, (accept_load){.load = 3, .conns = 50}));
    cr_assert_not(accept_prefer_peer(me, 1, (accept_load){.load = 4, .conns = 4}));
    cr_assert_not(accept_prefer_peer(me, 1, (accept_load){.load = 5, .conns = 0}),
                  "more load never takes it, whatever its connections");
}

Test(accept_prefer, equal_load_goes_to_fewer_connections)
{
    accept_load me = {.load = 1, .conns = 10};
    cr_assert(accept_prefer_peer(me, 0, (accept_load){.load = 1, .conns = 9}));
    cr_assert(accept_prefer_peer(me, 0, (accept_load){.load = 0, .conns = 9}));
    cr_assert_not(accept_prefer_peer(me, 0, (accept_load){.load = 1, .conns = 10}));
    cr_assert_not(accept_prefer_peer(me, 0, (accept_load){.load = 2, .conns = 0}));
}

Test(accept_prefer, thousands_of_connections_balance_within_a_slack)
{
    accept_load me = {.load = 0, .conns = 2500};
    cr_assert_eq(accept_conns_slack(2500), 39);
    cr_assert_eq(accept_conns_slack(63), 0, "below 64 the exact count decides");
    cr_assert_not(accept_prefer_peer(me, 0, (accept_load){.load = 0, .conns = 2480}),
                  "a few less is balanced: no hand-off per connection");
    cr_assert_not(accept_prefer_peer(me, 0, (accept_load){.load = 0, .conns = 2461}));
    cr_assert(accept_prefer_peer(me, 0, (accept_load){.load = 0, .conns = 2460}));
    cr_assert(accept_prefer_peer(me, 0, (accept_load){.load = 0, .conns = 100}));
    /* the load rule is untouched by the slack */
    cr_assert(accept_prefer_peer((accept_load){.load = 1, .conns = 2500}, 1,
                                 (accept_load){.load = 0, .conns = 2600}));
}

Test(accept_prefer, a_warming_worker_leaves_it_to_a_ready_one)
{
    accept_load warming = {.load = 0, .conns = 0, .warming = 1};
    cr_assert(accept_prefer_peer(warming, 0, (accept_load){.load = 5, .conns = 900}),
              "a ready peer takes it however loaded: a warm-up may last seconds");
    cr_assert_not(accept_prefer_peer((accept_load){.load = 4, .conns = 4}, 1, warming),
                  "a ready worker never hands one to a warming peer");
    cr_assert_not(
        accept_prefer_peer(warming, 0, (accept_load){.load = 0, .conns = 0, .warming = 1}));
    cr_assert(accept_prefer_peer((accept_load){.load = 1, .conns = 3, .warming = 1}, 0,
                                 (accept_load){.load = 1, .conns = 2, .warming = 1}),
              "all warming: the usual rules among them");
}

Test(accept_choose, first_preferred_peer_or_none)
{
    accept_load peers[3] = {{2, 1, 0}, {0, 7, 0}, {0, 3, 0}};
    /* 2 threads, load 2: saturated; peer 0 has as much load, fewer conns */
    cr_assert_eq(accept_choose((accept_load){2, 5, 0}, 2, peers, 3), 0);
    cr_assert_eq(accept_choose((accept_load){0, 3, 0}, 2, peers, 3), -1);
    cr_assert_eq(accept_choose((accept_load){0, 8, 0}, 2, peers, 3), 1);
    cr_assert_eq(accept_choose((accept_load){0, 0, 0}, 2, NULL, 0), -1);
}

/* Whatever the counts, among the workers able to accept at least one prefers
 * no other: the policy never leaves a connection with nobody to accept it. */
Test(accept_choose, someone_always_accepts)
{
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        int n = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 6;
        int nthreads = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 4;
        accept_load w[6];
        for (int i = 0; i < n; i++) {
            w[i].load = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 6;
            w[i].conns = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 6;
            w[i].warming = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 3 == 0;
            if (round & 1) /* thousands: the slack applies */
                w[i].conns = 3000 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 200;
        }
        int takers = 0;
        for (int i = 0; i < n; i++) {
            accept_load others[6];
            int k = 0;
            for (int j = 0; j < n; j++)
                if (j != i) others[k++] = w[j];
            if (accept_choose(w[i], nthreads, others, k) < 0) takers++;
        }
        cr_assert_gt(takers, 0, "round %d: every worker defers to another", round);
    }
}

Test(accept_want, deferral_lasts_while_a_peer_is_preferred)
{
    int deferred = 0;
    cr_assert(accept_want(1, &deferred, 1), "not deferred: watches even if a peer is preferable");
    deferred = 1;
    cr_assert_not(accept_want(1, &deferred, 1));
    cr_assert_eq(deferred, 1);
    cr_assert(accept_want(1, &deferred, 0), "no peer preferred any more: watches again");
    cr_assert_eq(deferred, 0);
    deferred = 1;
    cr_assert_not(accept_want(0, &deferred, 1), "not able: does not watch");
    cr_assert_eq(deferred, 0, "and the deferral ends");
}

Test(accept_shed, only_with_waiting_requests_and_an_idle_ready_sibling)
{
    accept_peer idle = {.running = 1, .ready = 1, .able = 1, .conns = 0};
    accept_peer busy = {.running = 1, .ready = 1, .able = 1, .conns = 3};
    accept_peer unready = {.running = 1, .ready = 0, .able = 1, .conns = 0};
    accept_peer draining = {.running = 1, .ready = 1, .able = 0, .conns = 0};
    cr_assert(accept_shed(1, &idle, 1));
    cr_assert_not(accept_shed(0, &idle, 1), "nothing waits for a thread here");
    cr_assert_not(accept_shed(2, &busy, 1));
    cr_assert_not(accept_shed(2, &unready, 1));
    cr_assert_not(accept_shed(2, &draining, 1));
    accept_peer mix[3] = {busy, unready, idle};
    cr_assert(accept_shed(2, mix, 3));
}

/* The scoreboard walkers read the same counts from shared memory. */
Test(accept_sb, prefer_other_and_shed_read_the_slots)
{
    sb *b = sb_create(3, 2);
    cr_assert_not_null(b);
    for (int i = 0; i < 3; i++) {
        sb_slot *s = sb_slot_at(b, i);
        atomic_store(&s->state, SB_RUNNING);
        atomic_store(&s->pid, 100 + i);
        atomic_store(&s->ready, 1);
        atomic_store(&s->able, 1);
        atomic_store(&s->conns, 5);
    }
    sb_slot *me = sb_slot_at(b, 0), *s1 = sb_slot_at(b, 1), *s2 = sb_slot_at(b, 2);
    accept_load mine = {.load = 2, .conns = 5};
    /* everyone at 5 connections, the peers with no load: only a saturated worker defers */
    cr_assert_eq(accept_prefer_other(b, me, mine, 2), s1);
    cr_assert_null(accept_prefer_other(b, me, mine, 4));
    atomic_store(&s1->able, 0);
    cr_assert_eq(accept_prefer_other(b, me, mine, 2), s2, "a peer that may not accept is skipped");
    atomic_store(&s2->state, SB_RETIRING);
    cr_assert_null(accept_prefer_other(b, me, mine, 2), "nor one that retires");
    atomic_store(&s2->state, SB_RUNNING);
    atomic_store(&s2->held, 1);
    atomic_store(&s2->fresh, 1);
    cr_assert_null(accept_prefer_other(b, me, mine, 2), "held + fresh is its load: 2, not less");

    cr_assert_not(accept_should_shed(b, 0), "no request waits here");
    atomic_store(&me->waiting, 3);
    cr_assert_not(accept_should_shed(b, 0), "every sibling holds connections");
    atomic_store(&s1->able, 1);
    atomic_store(&s1->conns, 0);
    cr_assert(accept_should_shed(b, 0));
    atomic_store(&s1->pid, 0);
    cr_assert_not(accept_should_shed(b, 0), "an empty slot is nobody");
    sb_destroy(b);
}
