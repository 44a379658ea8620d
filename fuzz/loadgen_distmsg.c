/*
 * Fuzzes the distributed mode's message decoder (loadgen/dist/msg.c): any
 * bytes a peer sends must decode to a (type, data, node_id) message or give
 * a message, never crash, leak or allocate for a lying container header.
 * Whatever the bounds-first scanner accepts, msgpack-c must decode in full
 * (a disagreement traps). Decoded data is walked with the accessors the
 * worker and master use, and every message is also read as a worker's stats
 * report (dist_parse_report) against a two-class scenario, as an exception
 * (dist_parse_exception) and as an open-model share (dist_parse_open).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/dist/msg.h"
#include "loadgen/dist/wire.h"
#include "loadgen/scenario.h"
#include "loadgen/stats.h"

static const char SCENARIO[] = "[user A]\n[task A]\npath = /\n[user B]\n[task B]\n"
                               "name = slow\npath = /slow\n";

static void walk(const msgpack_object *o, int depth)
{
    double d;
    int64_t i;
    char s[64];
    dist_obj_num(o, &d);
    dist_obj_int(o, &i);
    dist_obj_str(o, s, sizeof(s));
    dist_obj_streq(o, "spawn");
    if (depth > DIST_MAX_DEPTH) __builtin_trap();
    if (o->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t k = 0; k < o->via.array.size; k++) walk(&o->via.array.ptr[k], depth + 1);
    if (o->type == MSGPACK_OBJECT_MAP) {
        dist_map_get(o, "user_classes_count");
        for (uint32_t k = 0; k < o->via.map.size; k++) {
            walk(&o->via.map.ptr[k].key, depth + 1);
            walk(&o->via.map.ptr[k].val, depth + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (!dist_msgpack_check(data, size, err, sizeof(err))) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        if (msgpack_unpack_next(&u, (const char *)data, size, &off) != MSGPACK_UNPACK_SUCCESS ||
            off != size)
            __builtin_trap();
        walk(&u.data, 0);
        msgpack_unpacked_destroy(&u);
    }
    dist_msg m;
    if (dist_msg_decode(data, size, &m, err, sizeof(err))) return 0;
    if (!m.type[0] || strlen(m.type) >= sizeof(m.type)) __builtin_trap();
    walk(&m.data, 1);
    static scenario *sc; /* parsed once: the harness's only state */
    if (!sc) sc = scenario_parse(SCENARIO, sizeof(SCENARIO) - 1, "fuzz.ini", err, sizeof(err));
    if (sc) {
        lg_stats *st = lg_stats_create(2);
        int users[2], user_count;
        size_t unknown = 0;
        if (st) dist_parse_report(sc, &m.data, st, users, &user_count, &unknown, err, sizeof(err));
        lg_stats_free(st);
    }
    /* the master's exception reader and the worker's open-model share */
    char *text, *tb;
    if (!dist_parse_exception(&m.data, &text, &tb, err, sizeof(err))) {
        if (strlen(text) > size || strlen(tb) > size) __builtin_trap();
        free(text);
        free(tb);
    }
    runner_stage stages[DIST_OPEN_MAX_STAGES];
    double rate, elapsed;
    size_t n;
    const msgpack_object *open = dist_map_get(&m.data, "aiload_open");
    if (!dist_parse_open(open ? open : &m.data, &rate, stages, &n, &elapsed, err, sizeof(err))) {
        if (n > DIST_OPEN_MAX_STAGES || !(rate >= 0) || !(elapsed >= 0)) __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (!(stages[i].duration_s > 0) || !(stages[i].target >= 0)) __builtin_trap();
    }
    dist_msg_free(&m);
    return 0;
}
