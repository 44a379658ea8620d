/*
 * Layout (as in HdrHistogram): bucket b covers values [2^(b+half_mag+unit_mag)
 * / 2, 2^(b+half_mag+1+unit_mag)) with `half` linear slots; bucket 0 also
 * holds the lower half [0, half << unit_mag) at unit resolution. counts[] is
 * indexed ((b + 1) << half_mag) + (sub - half).
 *
 * Besides the counts we keep the exact min, max and sum, and the range of
 * touched slots [lo, hi] so that merge, reset and percentile scans touch only
 * what is in use (latencies cluster in a few hundred slots).
 */
#include "hist.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct hist {
    int64_t lowest, highest;
    int sig;
    int unit_mag;
    int half_mag;
    int64_t half; /* sub_bucket_half_count */
    int64_t sub_bucket_count;
    int64_t sub_bucket_mask;
    int bucket_count;
    size_t len;
    uint64_t total;
    int64_t min, max;
    uint64_t sum;  /* exact sum of the recorded (clamped) values */
    size_t lo, hi; /* touched slots; lo > hi when empty */
    uint64_t counts[];
};

static int floor_log2(uint64_t v)
{
    return 63 - __builtin_clzll(v);
}

hist *hist_create(int64_t lowest, int64_t highest, int sig)
{
    if (lowest < 1 || sig < 1 || sig > 5 || highest < 2 * lowest) {
        errno = EINVAL;
        return NULL;
    }
    int64_t largest_single_unit = 2;
    for (int i = 0; i < sig; i++) largest_single_unit *= 10;
    int sub_mag = (int)ceil(log2((double)largest_single_unit));
    int half_mag = sub_mag > 1 ? sub_mag - 1 : 0;
    int64_t sub_count = (int64_t)1 << (half_mag + 1);
    int unit_mag = floor_log2((uint64_t)lowest);
    if (unit_mag + half_mag + 1 > 62) {
        errno = EINVAL;
        return NULL;
    }
    int64_t untrackable = sub_count << unit_mag;
    int buckets = 1;
    while (untrackable <= highest) {
        if (untrackable > INT64_MAX / 2) {
            buckets++;
            break;
        }
        untrackable <<= 1;
        buckets++;
    }
    size_t len = (size_t)(buckets + 1) * (size_t)(sub_count / 2);
    hist *h = calloc(1, sizeof(*h) + len * sizeof(uint64_t));
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    h->lowest = lowest;
    h->highest = highest;
    h->sig = sig;
    h->unit_mag = unit_mag;
    h->half_mag = half_mag;
    h->half = sub_count / 2;
    h->sub_bucket_count = sub_count;
    h->sub_bucket_mask = (sub_count - 1) << unit_mag;
    h->bucket_count = buckets;
    h->len = len;
    h->lo = len;
    h->hi = 0;
    return h;
}

void hist_free(hist *h)
{
    free(h);
}

static int bucket_of(const hist *h, int64_t v)
{
    int pow2ceil = 64 - __builtin_clzll((uint64_t)(v | h->sub_bucket_mask));
    return pow2ceil - h->unit_mag - (h->half_mag + 1);
}

static size_t index_of(const hist *h, int64_t v)
{
    int b = bucket_of(h, v);
    int64_t sub = v >> (b + h->unit_mag);
    return (size_t)((((int64_t)b + 1) << h->half_mag) + (sub - h->half));
}

static int64_t value_at(const hist *h, size_t idx)
{
    int b = (int)(idx >> h->half_mag) - 1;
    int64_t sub = (int64_t)(idx & (size_t)(h->half - 1)) + h->half;
    if (b < 0) {
        sub -= h->half;
        b = 0;
    }
    return sub << (b + h->unit_mag);
}

static int64_t range_size(const hist *h, int64_t v)
{
    int b = bucket_of(h, v);
    int64_t sub = v >> (b + h->unit_mag);
    int adj = sub >= h->sub_bucket_count ? b + 1 : b;
    return (int64_t)1 << (h->unit_mag + adj);
}

int64_t hist_lowest_equivalent(const hist *h, int64_t v)
{
    int b = bucket_of(h, v);
    int64_t sub = v >> (b + h->unit_mag);
    return sub << (b + h->unit_mag);
}

int64_t hist_highest_equivalent(const hist *h, int64_t v)
{
    return hist_lowest_equivalent(h, v) + range_size(h, v) - 1;
}

void hist_record_n(hist *h, int64_t v, uint64_t n)
{
    if (n == 0) return;
    if (v < 0) v = 0;
    if (v > h->highest) v = h->highest;
    size_t i = index_of(h, v);
    h->counts[i] += n;
    if (h->total == 0) {
        h->min = h->max = v;
    } else {
        if (v < h->min) h->min = v;
        if (v > h->max) h->max = v;
    }
    h->total += n;
    h->sum += (uint64_t)v * n;
    if (i < h->lo) h->lo = i;
    if (i > h->hi) h->hi = i;
}

void hist_record(hist *h, int64_t v)
{
    hist_record_n(h, v, 1);
}

static int same_config(const hist *a, const hist *b)
{
    return a->len == b->len && a->unit_mag == b->unit_mag && a->half_mag == b->half_mag;
}

void hist_add(hist *dst, const hist *src)
{
    if (src->total == 0) return;
    if (!same_config(dst, src)) {
        uint64_t sum = dst->sum + src->sum, total = dst->total + src->total;
        int64_t mn = dst->total ? (dst->min < src->min ? dst->min : src->min) : src->min;
        int64_t mx = dst->max > src->max ? dst->max : src->max;
        for (size_t i = src->lo; i <= src->hi; i++) {
            if (!src->counts[i]) continue;
            int64_t v = value_at(src, i);
            hist_record_n(dst, v + range_size(src, v) / 2, src->counts[i]);
        }
        dst->sum = sum;
        dst->total = total;
        dst->min = mn;
        dst->max = mx > dst->highest ? dst->highest : mx;
        return;
    }
    for (size_t i = src->lo; i <= src->hi; i++) dst->counts[i] += src->counts[i];
    if (dst->total == 0) {
        dst->min = src->min;
        dst->max = src->max;
    } else {
        if (src->min < dst->min) dst->min = src->min;
        if (src->max > dst->max) dst->max = src->max;
    }
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->lo < dst->lo) dst->lo = src->lo;
    if (src->hi > dst->hi) dst->hi = src->hi;
}

void hist_sub(hist *dst, const hist *src)
{
    if (!same_config(dst, src) || src->total == 0) return;
    for (size_t i = src->lo; i <= src->hi; i++) {
        uint64_t c = src->counts[i];
        dst->counts[i] -= c < dst->counts[i] ? c : dst->counts[i];
    }
    dst->total -= src->total < dst->total ? src->total : dst->total;
    dst->sum -= src->sum < dst->sum ? src->sum : dst->sum;
    if (dst->total == 0) hist_reset(dst);
}

void hist_reset(hist *h)
{
    if (h->lo <= h->hi) memset(&h->counts[h->lo], 0, (h->hi - h->lo + 1) * sizeof(uint64_t));
    h->total = 0;
    h->sum = 0;
    h->min = h->max = 0;
    h->lo = h->len;
    h->hi = 0;
}

uint64_t hist_count(const hist *h)
{
    return h->total;
}

int64_t hist_min(const hist *h)
{
    return h->total ? h->min : 0;
}

int64_t hist_max(const hist *h)
{
    return h->total ? h->max : 0;
}

uint64_t hist_sum(const hist *h)
{
    return h->sum;
}

void hist_set_sum(hist *h, uint64_t sum)
{
    h->sum = sum;
}

int hist_next(const hist *h, size_t *cursor, int64_t *value, uint64_t *count)
{
    size_t i = *cursor < h->lo ? h->lo : *cursor;
    for (; i <= h->hi && i < h->len; i++) {
        if (!h->counts[i]) continue;
        *value = value_at(h, i);
        *count = h->counts[i];
        *cursor = i + 1;
        return 1;
    }
    *cursor = i;
    return 0;
}

double hist_mean(const hist *h)
{
    return h->total ? (double)h->sum / (double)h->total : 0.0;
}

double hist_stddev(const hist *h)
{
    if (h->total == 0) return 0.0;
    double mean = hist_mean(h), acc = 0;
    for (size_t i = h->lo; i <= h->hi; i++) {
        if (!h->counts[i]) continue;
        int64_t v = value_at(h, i);
        double d = (double)(v + range_size(h, v) / 2) - mean;
        acc += d * d * (double)h->counts[i];
    }
    return sqrt(acc / (double)h->total);
}

int64_t hist_percentile(const hist *h, double p)
{
    if (h->total == 0) return 0;
    if (p <= 0) return h->min;
    if (p >= 100) return h->max;
    uint64_t target = (uint64_t)(p / 100.0 * (double)h->total + 0.5);
    if (target < 1) target = 1;
    uint64_t seen = 0;
    for (size_t i = h->lo; i <= h->hi; i++) {
        seen += h->counts[i];
        if (seen >= target) {
            int64_t v = hist_highest_equivalent(h, value_at(h, i));
            if (v > h->max) v = h->max;
            if (v < h->min) v = h->min;
            return v;
        }
    }
    return h->max;
}

size_t hist_slots(const hist *h)
{
    return h->len;
}

size_t hist_footprint(const hist *h)
{
    return sizeof(*h) + h->len * sizeof(uint64_t);
}
