/*
 * dist/dispatch: the master's users dispatcher. The total is split over the
 * classes as Locust's UsersDispatcher does (scenario_split_users: weights and
 * fixed_count); each class is then spread round-robin over the workers,
 * continuing where the previous class's remainder stopped, so every class's
 * count differs by at most one between workers, and so does every worker's
 * total. (Locust places a cycle of class names on a cycle of workers, which
 * gives the same totals but may put a whole class on one worker.)
 */
#ifndef LOADGEN_DIST_DISPATCH_H
#define LOADGEN_DIST_DISPATCH_H

#include <stddef.h>

/* The share of worker j (0..nworkers-1, in index order) of per_class users
 * (nc classes): want[k] users of class k. */
void dist_dispatch_share(const int *per_class, size_t nc, size_t nworkers, size_t j, int *want);

#endif
