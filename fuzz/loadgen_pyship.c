/*
 * Fuzzes the --processes sample stream decoder (loadgen/py/pyship.c): any
 * bytes, cut into pieces at any points, must be recorded or refused without
 * a crash, a leak or a read past the data; what is recorded must make a
 * consistent snapshot. Input: byte 0 is the piece size (1..256), the rest the
 * stream.
 */
#include <stddef.h>
#include <stdint.h>

#include "loadgen/py/pyship.h"

static void on_json(void *ctx, const char *text, size_t len)
{
    size_t *n = ctx;
    *n += len;
    if (len && !text) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t piece = (size_t)data[0] + 1;
    pystats *st = pystats_create();
    if (!st) return 0;
    pyship_peer pe = {0};
    size_t json = 0;
    for (size_t off = 1; off < size; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        if (pyship_ingest(&pe, st, (const char *)data + off, n, 0, on_json, &json)) break;
    }
    runner_snapshot *s = pystats_snapshot(st, 0);
    if (s) {
        uint64_t sum = 0;
        for (size_t i = 0; i < s->nentries; i++) sum += s->entries[i].num_requests;
        if (sum != s->total.num_requests) __builtin_trap();
        runner_snapshot_free(s);
    }
    pyship_peer_free(&pe);
    pystats_free(st);
    return 0;
}
