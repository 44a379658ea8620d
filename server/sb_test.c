#include "server/core.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

Test(sb, route_names_are_interned_once_and_other_is_zero)
{
    sb *s = sb_create(2, 2);
    cr_assert_not_null(s);
    int a = sb_route_metric(s, "/hello");
    cr_assert_gt(a, 0);
    cr_assert_eq(sb_route_metric(s, "/hello"), a);
    cr_assert_neq(sb_route_metric(s, "/v2"), a);
    cr_assert_eq(sb_route_metric(s, "other"), 0);
    sb_destroy(s);
}

Test(sb, route_table_overflow_falls_back_to_other)
{
    sb *s = sb_create(1, 1);
    char name[32];
    int last = -1;
    for (int i = 0; i < SRV_METRIC_ROUTES + 5; i++) {
        snprintf(name, sizeof(name), "/r%d", i);
        last = sb_route_metric(s, name);
    }
    cr_assert_eq(last, 0);
    sb_destroy(s);
}

Test(sb, counts_render_as_prometheus_text_summed_over_slots)
{
    sb *s = sb_create(2, 1);
    int r = sb_route_metric(s, "/hello");
    sb_count(sb_slot_at(s, 0), r, 200, 50);
    sb_count(sb_slot_at(s, 1), r, 200, 3000);
    sb_count(sb_slot_at(s, 1), r, 599, 20000000);
    buf out = BUF_INIT;
    cr_assert_eq(sb_render_metrics(s, NULL, NULL, 0, &out), 0);
    cr_assert(strstr(out.data, "aiserve_requests_total{route=\"/hello\",status=\"200\"} 2\n"), "%s",
              out.data);
    cr_assert(strstr(out.data, "status=\"other\"} 1\n"));
    cr_assert(strstr(out.data, "aiserve_request_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
    cr_assert(strstr(out.data, "aiserve_request_duration_seconds_bucket{le=\"0.005\"} 2\n"));
    cr_assert(strstr(out.data, "aiserve_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    cr_assert(strstr(out.data, "aiserve_request_duration_seconds_count 3\n"));
    buf_free(&out);
    sb_destroy(s);
}

Test(sb, slots_are_distinct_and_aligned)
{
    sb *s = sb_create(3, 4);
    cr_assert_eq(s->nslots, 11);
    for (int i = 1; i < s->nslots; i++) {
        char *a = (char *)sb_slot_at(s, i - 1), *b = (char *)sb_slot_at(s, i);
        cr_assert_geq((size_t)(b - a), sizeof(sb_slot) + 4 * sizeof(sb_thread));
        cr_assert_eq((uintptr_t)b % 64, 0);
    }
    sb_destroy(s);
}

Test(sb, connections_waiting_requests_and_full_workers_are_summed_over_live_slots)
{
    sb *s = sb_create(2, 1);
    int pid = (int)getpid(); /* slot_alive() checks the pid with kill(pid, 0) */
    for (int i = 0; i < 2; i++) {
        sb_slot *sl = sb_slot_at(s, i);
        atomic_store(&sl->state, SB_RUNNING);
        atomic_store(&sl->pid, pid);
        atomic_store(&sl->conns, 1000 + i);
        atomic_store(&sl->waiting, 3);
        atomic_store(&sl->full, i);
    }
    atomic_store(&sb_slot_at(s, 2)->conns, 77); /* a free slot: not counted */
    buf out = BUF_INIT;
    cr_assert_eq(sb_render_metrics(s, NULL, NULL, 0, &out), 0);
    cr_assert(strstr(out.data, "aiserve_connections 2001\n"), "%s", out.data);
    cr_assert(strstr(out.data, "aiserve_requests_waiting 6\n"));
    cr_assert(strstr(out.data, "aiserve_workers_full 1\n"));
    buf_free(&out);
    sb_destroy(s);
}
