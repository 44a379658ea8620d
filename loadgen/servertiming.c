#include "loadgen/servertiming.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int name_is(const char *p, size_t n, const char *want)
{
    size_t w = strlen(want);
    if (n != w) return 0;
    for (size_t i = 0; i < n; i++)
        if ((p[i] | 0x20) != want[i]) return 0;
    return 1;
}

/* A decimal number of milliseconds at p (at most n bytes) -> microseconds;
 * -1 when none or out of range. */
static int64_t parse_ms(const char *p, size_t n)
{
    char tmp[32];
    if (!n || n >= sizeof(tmp)) return -1;
    memcpy(tmp, p, n);
    tmp[n] = 0;
    char *end;
    double v = strtod(tmp, &end);
    if (end == tmp || !isfinite(v) || v < 0 || v > 3.6e6) return -1;
    return (int64_t)(v * 1000.0 + 0.5);
}

int lg_st_parse(const char *v, size_t len, int64_t *queue_us, int64_t *app_us)
{
    int found = 0;
    size_t i = 0;
    while (i < len) {
        /* one metric: up to the next ',' outside a quoted string */
        size_t start = i;
        int quoted = 0;
        while (i < len && (quoted || v[i] != ',')) {
            if (v[i] == '"') quoted = !quoted;
            if (quoted && v[i] == '\\' && i + 1 < len) i++;
            i++;
        }
        size_t end = i++;
        while (start < end && is_ows(v[start])) start++;
        size_t nend = start;
        while (nend < end && v[nend] != ';' && !is_ows(v[nend])) nend++;
        int which = 0;
        if (name_is(v + start, nend - start, "queue") || name_is(v + start, nend - start, "wait"))
            which = LG_ST_HAVE_QUEUE;
        else if (name_is(v + start, nend - start, "app") ||
                 name_is(v + start, nend - start, "compute") ||
                 name_is(v + start, nend - start, "inference") ||
                 name_is(v + start, nend - start, "handler"))
            which = LG_ST_HAVE_APP;
        if (!which) continue;
        /* parameters: ;dur=N (other parameters skipped) */
        for (size_t k = nend; k < end; k++) {
            if (v[k] != ';') continue;
            size_t q = k + 1;
            while (q < end && is_ows(v[q])) q++;
            if (end - q < 4 || !name_is(v + q, 3, "dur")) continue;
            q += 3;
            while (q < end && is_ows(v[q])) q++;
            if (q >= end || v[q] != '=') continue;
            q++;
            while (q < end && is_ows(v[q])) q++;
            if (q < end && v[q] == '"') q++;
            size_t e = q;
            while (e < end && ((v[e] >= '0' && v[e] <= '9') || v[e] == '.')) e++;
            /* the number must end the value: "1e400" or "12ms" is no duration */
            if (e < end && !is_ows(v[e]) && v[e] != ';' && v[e] != '"') break;
            int64_t us = parse_ms(v + q, e - q);
            if (us < 0) break;
            if (which == LG_ST_HAVE_QUEUE)
                *queue_us += us;
            else
                *app_us += us;
            found |= which;
            break;
        }
    }
    return found;
}

const char *lg_st_phase_name(int phase)
{
    static const char *names[LG_ST_NPHASES] = {"network+client", "server queue", "app"};
    return phase >= 0 && phase < LG_ST_NPHASES ? names[phase] : "?";
}
