/*
 * Template rendering and the per-thread random generator. These run on the
 * hot path of every dynamic request: no allocation once the output buffer has
 * grown to the largest request, no locks, no libc rand().
 */
#include <inttypes.h>
#include <stdio.h>

#include "loadgen/scenario_int.h"

uint64_t sc_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

double sc_rand01(uint64_t *s)
{
    return (double)(sc_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

static int put_u64(buf *out, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    return buf_append(out, tmp, (size_t)n);
}

int sc_render(const sc_tmpl *t, buf *out, uint64_t *rng, uint64_t user_id, uint64_t seq)
{
    if (t->is_static) return buf_append(out, t->text, t->len);
    for (size_t i = 0; i < t->nparts; i++) {
        const sc_part *p = &t->parts[i];
        int rc = 0;
        switch (p->kind) {
        case SC_LIT: rc = buf_append(out, p->text, p->len); break;
        case SC_RANDINT: {
            uint64_t span = (uint64_t)(p->hi - p->lo) + 1;
            int64_t v = span ? p->lo + (int64_t)(sc_rand(rng) % span) : (int64_t)sc_rand(rng);
            char tmp[24];
            int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
            rc = buf_append(out, tmp, (size_t)n);
            break;
        }
        case SC_CHOICE: rc = buf_puts(out, p->choices[sc_rand(rng) % p->len]); break;
        case SC_USER_ID: rc = put_u64(out, user_id); break;
        case SC_SEQ: rc = put_u64(out, seq); break;
        }
        if (rc) return rc;
    }
    return 0;
}
