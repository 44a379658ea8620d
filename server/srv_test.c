#include "server/core.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int h(app_request *r, void *d)
{
    (void)r;
    (void)d;
    return APP_DONE;
}

static srv *make(void)
{
    static srv s;
    memset(&s, 0, sizeof(s));
    s.sb = sb_create(1, 1);
    return &s;
}

static void done(srv *s)
{
    for (int i = 0; i < s->nroutes; i++) free(s->routes[i].prefix);
    sb_destroy(s->sb);
}

static const char *find(srv *s, const char *path)
{
    const srv_route *r = srv_route_find(s, path, strlen(path));
    return r ? r->prefix : NULL;
}

Test(srv_routes, longest_prefix_wins_at_segment_boundaries)
{
    srv *s = make();
    cr_assert_eq(srv_route_add(s, "/", SRV_MATCH_PREFIX, APP_RUN_THREAD, h, NULL, NULL), 0);
    cr_assert_eq(srv_route_add(s, "/api/", SRV_MATCH_PREFIX, APP_RUN_THREAD, h, NULL, NULL), 0);
    cr_assert_eq(srv_route_add(s, "/api/v2", SRV_MATCH_PREFIX, APP_RUN_LOOP, h, NULL, NULL), 0);
    cr_assert_str_eq(find(s, "/api"), "/api");
    cr_assert_str_eq(find(s, "/api/x"), "/api");
    cr_assert_str_eq(find(s, "/api/v2/models"), "/api/v2");
    cr_assert_str_eq(find(s, "/apix"), "/");
    cr_assert_str_eq(find(s, "/api/v20"), "/api");
    cr_assert_str_eq(find(s, "/"), "/");
    done(s);
}

Test(srv_routes, exact_builtins_stay_reachable_under_a_root_mount)
{
    srv *s = make();
    srv_route_add(s, "/", SRV_MATCH_PREFIX, APP_RUN_THREAD, h, NULL, NULL);
    srv_route_add(s, "/health/live", SRV_MATCH_EXACT, APP_RUN_LOOP, h, NULL, NULL);
    const srv_route *r = srv_route_find(s, "/health/live", 12);
    cr_assert_eq(r->match, SRV_MATCH_EXACT);
    cr_assert_str_eq(find(s, "/health/live/x"), "/");
    done(s);
}

Test(srv_routes, duplicates_and_bad_prefixes_are_refused)
{
    srv *s = make();
    cr_assert_eq(srv_route_add(s, "/a", SRV_MATCH_PREFIX, APP_RUN_LOOP, h, NULL, NULL), 0);
    cr_assert_eq(srv_route_add(s, "/a/", SRV_MATCH_PREFIX, APP_RUN_LOOP, h, NULL, NULL), -EEXIST);
    cr_assert_eq(srv_route_add(s, "a", SRV_MATCH_PREFIX, APP_RUN_LOOP, h, NULL, NULL), -EINVAL);
    cr_assert_eq(srv_route_add(s, "/b", SRV_MATCH_PREFIX, APP_RUN_LOOP, NULL, NULL, NULL), -EINVAL);
    cr_assert_null(srv_route_find(s, "/b", 2));
    done(s);
}
