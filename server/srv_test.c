#include "server/core.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int h(app_request *r, void *d)
{
    (void)r;
    (void)d;
    return APP_DONE;
}

/* A route table with two listeners: 0 is a main one, 1 an admin one. */
static srv *make(void)
{
    static srv s;
    memset(&s, 0, sizeof(s));
    s.sb = sb_create(1, 1);
    s.nlisten = 2;
    s.listen_admin[1] = 1;
    return &s;
}

static void done(srv *s)
{
    for (int i = 0; i < s->nroutes; i++) free(s->routes[i].prefix);
    sb_destroy(s->sb);
}

/* The route's prefix, tagged "B:" for a built-in; NULL when none. */
static const char *find_on(srv *s, int li, const char *path)
{
    static char out[128];
    const srv_route *r = srv_route_find(s, li, path, strlen(path));
    if (!r) return NULL;
    snprintf(out, sizeof(out), "%s%s", r->builtin ? "B:" : "", r->prefix);
    return out;
}

static const char *find(srv *s, const char *path)
{
    return find_on(s, 0, path);
}

/* The default built-ins, as builtin_register adds them. */
static void add_builtins(srv *s)
{
    cr_assert_eq(srv_route_add(s, "/hello", SRV_MATCH_EXACT, APP_RUN_LOOP, h, NULL, SRV_BI_HELLO),
                 0);
    srv_route_add(s, "/health/live", SRV_MATCH_EXACT, APP_RUN_LOOP, h, NULL, SRV_BI_HEALTH);
    srv_route_add(s, "/health/ready", SRV_MATCH_EXACT, APP_RUN_LOOP, h, NULL, SRV_BI_HEALTH);
    srv_route_add(s, "/metrics", SRV_MATCH_EXACT, APP_RUN_LOOP, h, NULL, SRV_BI_METRICS);
    srv_route_add(s, "/delay", SRV_MATCH_PREFIX, APP_RUN_LOOP, h, NULL, SRV_BI_DELAY);
}

Test(srv_routes, longest_prefix_wins_at_segment_boundaries)
{
    srv *s = make();
    cr_assert_eq(srv_route_add(s, "/", SRV_MATCH_PREFIX, APP_RUN_THREAD, h, NULL, 0), 0);
    cr_assert_eq(srv_route_add(s, "/api/", SRV_MATCH_PREFIX, APP_RUN_THREAD, h, NULL, 0), 0);
    cr_assert_eq(srv_route_add(s, "/api/v2", SRV_MATCH_PREFIX, APP_RUN_LOOP, h, NULL, 0), 0);
    cr_assert_str_eq(find(s, "/api"), "/api");
    cr_assert_str_eq(find(s, "/api/x"), "/api");
    cr_assert_str_eq(find(s, "/api/v2/models"), "/api/v2");
    cr_assert_str_eq(find(s, "/apix"), "/");
    cr_assert_str_eq(find(s, "/api/v20"), "/api");
    cr_assert_str_eq(find(s, "/"), "/");
    done(s);
}

Test(srv_routes, an_app_at_the_root_owns_the_builtin_paths_by_default)
{
    srv *s = make();
    add_builtins(s);
    srv_route_add(s, "/", SRV_MATCH_PREFIX, APP_RUN_THREAD, h, NULL, 0);
    for (const char *const *p = (const char *const[]){"/hello", "/health/live", "/health/ready",
                                                      "/metrics", "/delay/1", NULL};
         *p; p++)
        cr_assert_str_eq(find(s, *p), "/", "%s", *p);
    cr_assert_str_eq(find(s, "/health/live/x"), "/");
    done(s);
}

Test(srv_routes, builtins_stay_where_no_app_claims_their_path)
{
    srv *s = make();
    add_builtins(s);
    srv_route_add(s, "/api", SRV_MATCH_PREFIX, APP_RUN_THREAD, h, NULL, 0);
    srv_route_add(s, "/health", SRV_MATCH_PREFIX, APP_RUN_THREAD, h, NULL, 0);
    cr_assert_str_eq(find(s, "/hello"), "B:/hello");
    cr_assert_str_eq(find(s, "/metrics"), "B:/metrics");
    cr_assert_str_eq(find(s, "/delay/2"), "B:/delay");
    cr_assert_str_eq(find(s, "/api/hello"), "/api");
    cr_assert_str_eq(find(s, "/health/live"), "/health", "the app mounted there has it");
    cr_assert_null(find(s, "/nothing"));
    done(s);
}

Test(srv_routes, a_route_for_its_own_path_claims_nothing_below_it)
{
    srv *s = make();
    add_builtins(s);
    cr_assert_eq(srv_route_add(s, "/", SRV_MATCH_SELF, APP_RUN_LOOP, h, NULL, 0), 0);
    cr_assert_eq(srv_route_add(s, "/zero/", SRV_MATCH_SELF, APP_RUN_LOOP, h, NULL, 0), 0);
    const srv_route *r = srv_route_find(s, 0, "/", 1);
    cr_assert(r && r->narrow && r->match == SRV_MATCH_PREFIX && !r->builtin);
    cr_assert_str_eq(find(s, "/zero"), "/zero");
    cr_assert_str_eq(find(s, "/zero/"), "/zero");
    cr_assert_null(find(s, "/zero/x"));
    cr_assert_null(find(s, "/elsewhere"));
    cr_assert_str_eq(find(s, "/metrics"), "B:/metrics");
    cr_assert_str_eq(find(s, "/health/ready"), "B:/health/ready");
    cr_assert_eq(srv_route_add(s, "/zero", SRV_MATCH_PREFIX, APP_RUN_LOOP, h, NULL, 0), -EEXIST);
    done(s);
}

Test(srv_routes, named_builtins_win_over_a_root_app_and_the_others_are_off)
{
    srv *s = make();
    add_builtins(s);
    srv_route_add(s, "/", SRV_MATCH_PREFIX, APP_RUN_THREAD, h, NULL, 0);
    srv_route_add(s, "/delay/app", SRV_MATCH_PREFIX, APP_RUN_THREAD, h, NULL, 0);
    s->s.builtins_explicit = 1;
    s->s.builtins_on = SRV_BI_HEALTH | SRV_BI_METRICS | SRV_BI_DELAY;
    cr_assert_str_eq(find(s, "/health/live"), "B:/health/live");
    cr_assert_str_eq(find(s, "/metrics"), "B:/metrics");
    cr_assert_str_eq(find(s, "/hello"), "/", "not named: the app's");
    cr_assert_str_eq(find(s, "/delay/1"), "B:/delay");
    cr_assert_str_eq(find(s, "/delay/app/1"), "/delay/app", "the longer prefix still wins");
    s->s.builtins_on = 0; /* builtins = none */
    cr_assert_str_eq(find(s, "/health/live"), "/");
    done(s);
}

Test(srv_routes, an_admin_listener_reaches_only_the_builtins)
{
    srv *s = make();
    add_builtins(s);
    srv_route_add(s, "/", SRV_MATCH_PREFIX, APP_RUN_THREAD, h, NULL, 0);
    srv_route_add(s, "/v2", SRV_MATCH_PREFIX, APP_RUN_LOOP, h, NULL, 0);
    s->s.builtins_explicit = 1;
    s->s.builtins_on = 0; /* none on the main listener: the admin one still has all */
    cr_assert_str_eq(find_on(s, 1, "/hello"), "B:/hello");
    cr_assert_str_eq(find_on(s, 1, "/health/ready"), "B:/health/ready");
    cr_assert_str_eq(find_on(s, 1, "/metrics"), "B:/metrics");
    cr_assert_str_eq(find_on(s, 1, "/delay/0.1"), "B:/delay");
    cr_assert_null(find_on(s, 1, "/"));
    cr_assert_null(find_on(s, 1, "/v2/health/ready"));
    cr_assert_str_eq(find_on(s, 0, "/v2/health/ready"), "/v2");
    cr_assert_str_eq(find_on(s, 0, "/metrics"), "/");
    cr_assert_str_eq(find_on(s, 7, "/metrics"), "/", "an unknown listener is not an admin one");
    done(s);
}

Test(srv_routes, duplicates_and_bad_prefixes_are_refused)
{
    srv *s = make();
    cr_assert_eq(srv_route_add(s, "/a", SRV_MATCH_PREFIX, APP_RUN_LOOP, h, NULL, 0), 0);
    cr_assert_eq(srv_route_add(s, "/a/", SRV_MATCH_PREFIX, APP_RUN_LOOP, h, NULL, 0), -EEXIST);
    cr_assert_eq(srv_route_add(s, "/a", SRV_MATCH_SELF, APP_RUN_LOOP, h, NULL, 0), -EEXIST);
    cr_assert_eq(srv_route_add(s, "a", SRV_MATCH_PREFIX, APP_RUN_LOOP, h, NULL, 0), -EINVAL);
    cr_assert_eq(srv_route_add(s, "/b", SRV_MATCH_PREFIX, APP_RUN_LOOP, NULL, NULL, 0), -EINVAL);
    cr_assert_null(srv_route_find(s, 0, "/b", 2));
    done(s);
}
