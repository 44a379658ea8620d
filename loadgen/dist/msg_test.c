#include "loadgen/dist/msg.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hist.h"
#include "loadgen/dist/wire.h"
#include "loadgen/scenario_int.h"
#include "loadgen/stats.h"

static char err[256];

Test(dist_msg, round_trip)
{
    dist_pack p;
    dist_pack_init(&p);
    dist_pack_begin(&p, "spawn");
    msgpack_pack_map(&p.pk, 2);
    dist_pack_str(&p, "timestamp");
    msgpack_pack_double(&p.pk, 1700000000.25);
    dist_pack_str(&p, "user_classes_count");
    msgpack_pack_map(&p.pk, 1);
    dist_pack_str(&p, "UserA");
    msgpack_pack_int64(&p.pk, 7);
    dist_pack_end(&p, "host_abc");
    dist_msg m;
    cr_assert_eq(dist_msg_decode(p.sb.data, p.sb.size, &m, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(m.type, "spawn");
    cr_assert_str_eq(m.node_id, "host_abc");
    double ts;
    int64_t n;
    cr_assert_eq(dist_obj_num(dist_map_get(&m.data, "timestamp"), &ts), 0);
    cr_assert_eq(ts, 1700000000.25);
    const msgpack_object *u = dist_map_get(&m.data, "user_classes_count");
    cr_assert_eq(dist_obj_int(dist_map_get(u, "UserA"), &n), 0);
    cr_assert_eq(n, 7);
    cr_assert_null(dist_map_get(&m.data, "nope"));
    dist_msg_free(&m);
    dist_pack_free(&p);
}

/* Python's msgpack.dumps(("stop", None, "w")) and friends, byte for byte. */
Test(dist_msg, python_bytes)
{
    static const uint8_t stop[] = {0x93, 0xa4, 's', 't', 'o', 'p', 0xc0, 0xa1, 'w'};
    dist_msg m;
    cr_assert_eq(dist_msg_decode(stop, sizeof(stop), &m, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(m.type, "stop");
    cr_assert_eq(m.data.type, MSGPACK_OBJECT_NIL);
    dist_msg_free(&m);
}

Test(dist_msg, rejects_malformed)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *why;
    } bad[] = {
        {"\xc1", 1, "invalid type byte"},
        {"\x93\xa4stop", 6, "truncated"},
        {"\xdd\xff\xff\xff\xff", 5, "container count exceeds"},
        {"\x93\xa4stop\xc0\xa1w\x00", 10, "extra data"},
        {"\x92\xa4stop\xc0", 7, "not a (type, data, node_id)"},
        {"\x93\x01\xc0\xa1w", 5, "type is not a short string"},
        {"\x93\xa4stop\xc0\x05", 8, "node id is not a string"},
        {"\x93\xa4st\0p\xc0\xa1w", 9, "NUL byte"},
        {"", 0, "truncated"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dist_msg m;
        cr_assert_eq(dist_msg_decode(bad[i].bytes, bad[i].len, &m, err, sizeof(err)), -1,
                     "case %zu", i);
        cr_assert(strstr(err, bad[i].why), "case %zu: %s", i, err);
        dist_msg_free(&m); /* a no-op on a failed decode */
    }
}

Test(dist_msg, depth_and_size_limits)
{
    size_t n = DIST_MAX_DEPTH + 5;
    uint8_t *b = malloc(n + 1);
    memset(b, 0x91, n);
    b[n] = 0xc0;
    cr_assert_eq(dist_msgpack_check(b, n + 1, err, sizeof(err)), -1);
    cr_assert(strstr(err, "nested too deeply"), "%s", err);
    cr_assert_eq(dist_msgpack_check(b + n - 3, 4, err, sizeof(err)), 0, "%s", err);
    free(b);
    cr_assert_eq(
        dist_msgpack_check((const uint8_t *)"", (size_t)DIST_MAX_MSG + 1, err, sizeof(err)), -1);
    cr_assert(strstr(err, "exceeds"), "%s", err);
}

Test(dist_wire, locust_rounding)
{
    /* locust/stats.py _log_response_time; round() is half-to-even */
    cr_assert_eq(dist_round_ms(0.4), 0);
    cr_assert_eq(dist_round_ms(2.5), 2);
    cr_assert_eq(dist_round_ms(3.5), 4);
    cr_assert_eq(dist_round_ms(99.4), 99);
    cr_assert_eq(dist_round_ms(147), 150);
    cr_assert_eq(dist_round_ms(3432), 3400);
    cr_assert_eq(dist_round_ms(58760), 59000);
}

Test(dist_wire, error_key_is_locusts)
{
    /* hashlib.sha256("GET./.'x'".encode()).hexdigest() */
    char key[65];
    dist_error_key("GET", "/", "x", key);
    cr_assert_str_eq(key, "a62e7710bd9dc5a550e836d37bd711a72cf1257813f88268b8efb809b3116512");
}

Test(dist_wire, report_counts)
{
    char e2[256];
    scenario *sc = scenario_parse("[user U]\n[task U]\npath = /a\n[task U]\npath = /b\n", 47,
                                  "t.ini", e2, sizeof(e2));
    cr_assert_not_null(sc, "%s", e2);
    runner_delta *d = runner_delta_create(sc->nentries);
    lg_stats *st = lg_stats_create(sc->nentries);
    for (int i = 0; i < 10; i++) lg_stats_record(st, 0, 1000 + i * 100, 900, 5, i == 3);
    lg_stats_record(st, 1, 250000, 250000, 7, 0);
    lg_stats_error(st, 0, LG_ERR_STATUS, 500, 100);
    runner_delta_add(d, st, 100);
    runner_delta_add(d, st, 101);
    dist_pack p;
    dist_pack_init(&p);
    int users[1] = {4};
    cr_assert_eq(dist_pack_report(&p, sc, d, 99.5, users, 4), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&u, p.sb.data, p.sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *tot = dist_map_get(&u.data, "stats_total");
    int64_t v;
    cr_assert_eq(dist_obj_int(dist_map_get(tot, "num_requests"), &v), 0);
    cr_assert_eq(v, 22);
    cr_assert_eq(dist_obj_int(dist_map_get(tot, "num_failures"), &v), 0);
    cr_assert_eq(v, 2);
    const msgpack_object *rt = dist_map_get(tot, "response_times");
    uint64_t sum = 0;
    int saw250 = 0;
    for (uint32_t i = 0; i < rt->via.map.size; i++) {
        sum += rt->via.map.ptr[i].val.via.u64;
        saw250 |= rt->via.map.ptr[i].key.via.i64 == 250;
    }
    cr_assert_eq(sum, 22);
    cr_assert(saw250);
    const msgpack_object *ps = dist_map_get(tot, "num_reqs_per_sec");
    cr_assert_eq(ps->via.map.size, 2);
    cr_assert_eq(dist_map_get(&u.data, "stats")->via.array.size, 2);
    const msgpack_object *errs = dist_map_get(&u.data, "errors");
    cr_assert_eq(errs->via.map.size, 1);
    cr_assert_eq(dist_obj_int(dist_map_get(&errs->via.map.ptr[0].val, "occurrences"), &v), 0);
    cr_assert_eq(v, 2);
    cr_assert_eq(dist_obj_int(dist_map_get(&u.data, "user_count"), &v), 0);
    cr_assert_eq(v, 4);
    msgpack_unpacked_destroy(&u);
    dist_pack_free(&p);
    lg_stats_free(st);
    runner_delta_free(d);
    scenario_free(sc);
}

/* What an aiload worker packs, an aiload master reads back exactly: counts,
 * bytes, errors (kind and code) and every histogram slot. */
Test(dist_wire, report_round_trip_is_exact)
{
    char e2[256];
    const char text[] = "[user U]\n[task U]\npath = /a\n[user V]\n[task V]\npath = /b\n";
    scenario *sc = scenario_parse(text, sizeof(text) - 1, "t.ini", e2, sizeof(e2));
    cr_assert_not_null(sc, "%s", e2);
    runner_delta *d = runner_delta_create(sc->nentries);
    lg_stats *st = lg_stats_create(sc->nentries);
    for (int i = 0; i < 500; i++) lg_stats_record(st, i % 2, 137 + i * 911, 100, 3, i % 50 == 0);
    lg_stats_error(st, 1, LG_ERR_STATUS, 503, 100);
    lg_stats_error(st, 0, LG_ERR_RESET, 0, 100);
    runner_delta_add(d, st, 100);
    dist_pack p;
    dist_pack_init(&p);
    int users[2] = {3, 4};
    cr_assert_eq(dist_pack_report(&p, sc, d, 99.0, users, 7), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&u, p.sb.data, p.sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    lg_stats *back = lg_stats_create(sc->nentries);
    int cu[2], uc;
    size_t unknown = 0;
    cr_assert_eq(dist_parse_report(sc, &u.data, back, cu, &uc, &unknown, e2, sizeof(e2)), 0, "%s",
                 e2);
    cr_assert_eq(unknown, 0);
    cr_assert_eq(uc, 7);
    cr_assert_eq(cu[0], 3);
    cr_assert_eq(cu[1], 4);
    for (size_t i = 0; i < sc->nentries; i++) {
        cr_assert_eq(back->e[i].nreq, st->e[i].nreq);
        cr_assert_eq(back->e[i].nfail, st->e[i].nfail);
        cr_assert_eq(back->e[i].bytes, st->e[i].bytes);
        cr_assert_eq(hist_count(back->e[i].lat), hist_count(st->e[i].lat));
        cr_assert_eq(hist_min(back->e[i].lat), hist_min(st->e[i].lat));
        cr_assert_eq(hist_max(back->e[i].lat), hist_max(st->e[i].lat));
        cr_assert_eq(hist_sum(back->e[i].lat), hist_sum(st->e[i].lat));
        for (double q = 1; q <= 100; q += 0.5)
            cr_assert_eq(hist_percentile(back->e[i].lat, q), hist_percentile(st->e[i].lat, q),
                         "entry %zu p%g", i, q);
    }
    cr_assert_eq(back->nerrs, 2);
    for (size_t k = 0; k < 2; k++) {
        const lg_err *a = &back->errs[k];
        int found = 0;
        for (size_t j = 0; j < st->nerrs; j++)
            found |= st->errs[j].entry == a->entry && st->errs[j].kind == a->kind &&
                     st->errs[j].code == a->code && st->errs[j].count == a->count;
        cr_assert(found, "error %zu", k);
    }
    msgpack_unpacked_destroy(&u);
    dist_pack_free(&p);
    lg_stats_free(st);
    lg_stats_free(back);
    runner_delta_free(d);
    scenario_free(sc);
}

/* spawn's aiload_open with the given rate and one stage (duration, 10/s). */
static int parse_open(double rate, double dur, double *r, runner_stage *st, size_t *n, double *el)
{
    dist_pack p;
    dist_pack_init(&p);
    dist_pack_begin(&p, "spawn");
    msgpack_pack_map(&p.pk, 1);
    dist_pack_str(&p, "aiload_open");
    msgpack_pack_map(&p.pk, 3);
    dist_pack_str(&p, "rate");
    if (rate == (int)rate)
        msgpack_pack_int(&p.pk, (int)rate); /* Python sends integral rates as ints */
    else
        msgpack_pack_double(&p.pk, rate);
    dist_pack_str(&p, "stages");
    msgpack_pack_array(&p.pk, 1);
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_double(&p.pk, dur);
    msgpack_pack_int(&p.pk, 10);
    dist_pack_str(&p, "elapsed");
    msgpack_pack_double(&p.pk, 0.5);
    dist_pack_end(&p, "n");
    dist_msg m;
    int rc = dist_msg_decode(p.sb.data, p.sb.size, &m, err, sizeof(err));
    if (!rc)
        rc = dist_parse_open(dist_map_get(&m.data, "aiload_open"), r, st, n, el, err, sizeof(err));
    dist_msg_free(&m);
    dist_pack_free(&p);
    return rc;
}

Test(dist_wire, exception_and_open_share)
{
    dist_pack p;
    dist_pack_init(&p);
    dist_pack_begin(&p, "exception");
    msgpack_pack_map(&p.pk, 2);
    dist_pack_str(&p, "msg");
    dist_pack_str(&p, "boom");
    dist_pack_str(&p, "traceback");
    msgpack_pack_nil(&p.pk);
    dist_pack_end(&p, "w1");
    dist_msg m;
    cr_assert_eq(dist_msg_decode(p.sb.data, p.sb.size, &m, err, sizeof(err)), 0, "%s", err);
    char *text, *tb;
    cr_assert_eq(dist_parse_exception(&m.data, &text, &tb, err, sizeof(err)), 0);
    cr_assert_str_eq(text, "boom");
    cr_assert_str_eq(tb, "");
    free(text);
    free(tb);
    runner_stage st[DIST_OPEN_MAX_STAGES];
    double rate, el;
    size_t n;
    cr_assert_eq(dist_parse_open(&m.data, &rate, st, &n, &el, err, sizeof(err)), -EINVAL);
    dist_msg_free(&m);
    dist_pack_free(&p);

    cr_assert_eq(parse_open(5, 2.0, &rate, st, &n, &el), 0, "%s", err);
    cr_assert(rate == 5 && n == 1 && st[0].duration_s == 2.0 && st[0].target == 10 && el == 0.5);
    /* a negative rate, a zero duration: refused */
    cr_assert_eq(parse_open(-1, 2.0, &rate, st, &n, &el), -EINVAL);
    cr_assert_eq(parse_open(5, 0, &rate, st, &n, &el), -EINVAL);
}
