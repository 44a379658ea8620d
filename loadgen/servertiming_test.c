#include <criterion/criterion.h>
#include <string.h>

#include "loadgen/servertiming.h"

static int parse(const char *v, int64_t *q, int64_t *a)
{
    *q = *a = 0;
    return lg_st_parse(v, strlen(v), q, a);
}

Test(servertiming, the_issue_example)
{
    int64_t q, a;
    cr_assert_eq(parse("queue;dur=1.2, app;dur=3.4", &q, &a), LG_ST_HAVE_QUEUE | LG_ST_HAVE_APP);
    cr_assert_eq(q, 1200);
    cr_assert_eq(a, 3400);
}

Test(servertiming, names_params_and_case)
{
    int64_t q, a;
    cr_assert_eq(parse("db;dur=53, Compute;desc=\"fwd, pass\";dur=2.5,cache;desc=hit", &q, &a),
                 LG_ST_HAVE_APP);
    cr_assert_eq(a, 2500);
    cr_assert_eq(q, 0);
    cr_assert_eq(parse("wait ; dur = 0.5 ; desc=x", &q, &a), LG_ST_HAVE_QUEUE);
    cr_assert_eq(q, 500);
    cr_assert_eq(parse("app;dur=\"7.25\"", &q, &a), LG_ST_HAVE_APP);
    cr_assert_eq(a, 7250);
    /* repeated metrics add up */
    cr_assert_eq(parse("app;dur=1, app;dur=2", &q, &a), LG_ST_HAVE_APP);
    cr_assert_eq(a, 3000);
}

Test(servertiming, malformed_parts_are_skipped)
{
    int64_t q, a;
    cr_assert_eq(parse("", &q, &a), 0);
    cr_assert_eq(parse("app", &q, &a), 0);
    cr_assert_eq(parse("app;dur=", &q, &a), 0);
    cr_assert_eq(parse("app;dur=-3, queue;dur=abc", &q, &a), 0);
    cr_assert_eq(parse("app;dur=1e400", &q, &a), 0);
    cr_assert_eq(parse("apple;dur=3, queue;dur=4", &q, &a), LG_ST_HAVE_QUEUE);
    cr_assert_eq(q, 4000);
    cr_assert_eq(parse(",,,;;;=\"", &q, &a), 0);
    /* a length shorter than the string: nothing past it is read */
    q = a = 0;
    cr_assert_eq(lg_st_parse("app;dur=12", 9, &q, &a), LG_ST_HAVE_APP);
    cr_assert_eq(a, 1000);
}

Test(servertiming, phase_names)
{
    cr_assert_str_eq(lg_st_phase_name(LG_ST_NET), "network+client");
    cr_assert_str_eq(lg_st_phase_name(LG_ST_QUEUE), "server queue");
    cr_assert_str_eq(lg_st_phase_name(LG_ST_APP), "app");
    cr_assert_str_eq(lg_st_phase_name(9), "?");
}
