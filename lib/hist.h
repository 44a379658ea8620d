/*
 * hist: an HdrHistogram-style log-linear histogram of non-negative integers
 * (aiload records microseconds: 1 us .. 1 h at 3 significant digits).
 *
 * Every power-of-two range is split into sub_bucket_count/2 linear slots, so
 * any value is kept to within 10^-sig of itself. Counts are exact (uint64).
 * Recording is a few shifts and one increment: no allocation, no locks; one
 * histogram belongs to one thread. Merging two histograms of the same
 * configuration is an element-wise add, which makes per-thread recording with
 * a periodic merge cheap.
 *
 * Values above `highest` are clamped to it (and still counted); min and max
 * are tracked exactly on the side.
 *
 * Ownership: hist_create() allocates; hist_free() releases.
 */
#ifndef HIST_H
#define HIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct hist hist;

/* lowest >= 1, highest >= 2 * lowest, 1 <= sig <= 5. NULL on bad arguments
 * (errno EINVAL) or allocation failure (ENOMEM). */
hist *hist_create(int64_t lowest, int64_t highest, int sig);
void hist_free(hist *h);

/* Records value (negative values count as 0) n times. */
void hist_record(hist *h, int64_t value);
void hist_record_n(hist *h, int64_t value, uint64_t n);

/* dst += src. Same configuration: an element-wise add; otherwise each of
 * src's slots is re-recorded at its median equivalent value. */
void hist_add(hist *dst, const hist *src);
/* dst -= src, for same-configuration histograms where src was counted into
 * dst (a windowed view: total now minus total then). min/max keep dst's. */
void hist_sub(hist *dst, const hist *src);
void hist_reset(hist *h);

uint64_t hist_count(const hist *h);
int64_t hist_min(const hist *h); /* exact; 0 when empty */
int64_t hist_max(const hist *h); /* exact; 0 when empty */
double hist_mean(const hist *h);
uint64_t hist_sum(const hist *h); /* exact sum of the recorded (clamped) values */
/* Sets the sum (and so the mean) of a histogram rebuilt from slot values to
 * the exact sum of the original values (aiload's distributed reports). */
void hist_set_sum(hist *h, uint64_t sum);
/* Walks the non-empty slots in ascending order: *cursor starts at 0; each
 * call gives the next slot's lowest equivalent value and its count and
 * returns 1, or returns 0 when none is left. */
int hist_next(const hist *h, size_t *cursor, int64_t *value, uint64_t *count);
double hist_stddev(const hist *h);

/* The value at percentile p (0..100): the highest value equivalent to the
 * slot where the cumulative count reaches p% of the total, capped by the exact
 * max (p = 0 gives the exact min, p = 100 the exact max). 0 when empty. */
int64_t hist_percentile(const hist *h, double p);

/* Slot arithmetic, exposed for tests and for walking the counts. */
size_t hist_slots(const hist *h);
int64_t hist_lowest_equivalent(const hist *h, int64_t value);
int64_t hist_highest_equivalent(const hist *h, int64_t value);
/* Memory used by one histogram, in bytes. */
size_t hist_footprint(const hist *h);

#endif
