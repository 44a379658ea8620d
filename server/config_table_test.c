/*
 * The option tables against the structs they bind: every entry of the core's
 * table and of each app kind's (as srv_option_tables lists them) must name a
 * field of its width inside its struct, no two options may share a field,
 * each default must land in its own field, and a value given for one option
 * must change that field and no other; a field is named after its option.
 * CFG_BIND already refuses a misspelt field or a wrong field type at compile
 * time; this catches what it cannot (an entry bound to another option's
 * field, a table ended with the wrong struct, int bounds an int field cannot
 * hold).
 */
#include "server/config.h"
#include "server/core.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TABLES (SRV_MAX_APPS + 2)

/* The core's test binary links no app kind, so it checks the core's table;
 * server/wsgi/config_table_test.c includes this file with the kinds (its
 * binary links them all) to check their tables too. */
#ifndef CONFIG_TABLE_KINDS
#define CONFIG_TABLE_KINDS NULL
#endif

static const cfg_option *tables[MAX_TABLES];

static void get_tables(void)
{
    srv_option_tables(CONFIG_TABLE_KINDS, tables, MAX_TABLES);
    cr_assert_not_null(tables[0]);
}

static size_t table_size(const cfg_option *t)
{
    while (t->name) t++;
    return t->off;
}

static int64_t read_int(const void *field, size_t width)
{
    if (width == sizeof(int)) {
        int v;
        memcpy(&v, field, sizeof(v));
        return v;
    }
    int64_t v;
    memcpy(&v, field, sizeof(v));
    return v;
}

static const char *read_str(const void *field)
{
    const char *s;
    memcpy(&s, field, sizeof(s));
    return s;
}

static cfg_list read_list(const void *field)
{
    cfg_list l;
    memcpy(&l, field, sizeof(l));
    return l;
}

/* 1 when option o holds the same value in the structs a and b. */
static int same_value(const cfg_option *o, const char *a, const char *b)
{
    a += o->off;
    b += o->off;
    switch (o->type) {
    case CFG_BOOL:
    case CFG_INT:
    case CFG_SIZE: return read_int(a, o->width) == read_int(b, o->width);
    case CFG_STR: {
        const char *x = read_str(a), *y = read_str(b);
        return (!x && !y) || (x && y && !strcmp(x, y));
    }
    case CFG_LIST: {
        cfg_list x = read_list(a), y = read_list(b);
        if (x.n != y.n) return 0;
        for (size_t i = 0; i < x.n; i++)
            if (strcmp(x.v[i], y.v[i])) return 0;
        return 1;
    }
    }
    return 0;
}

static cfg *load_args(int argc, char **argv)
{
    cfg *c = NULL;
    char err[2048];
    int rc = cfg_load(argc, argv, tables, &c, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    return c;
}

Test(config_table, every_entry_binds_a_field_of_its_width_inside_its_struct)
{
    get_tables();
    for (size_t t = 0; tables[t]; t++) {
        size_t size = table_size(tables[t]);
        cr_assert_gt(size, 0, "table %zu ends without its struct's size (CFG_END)", t);
        for (const cfg_option *o = tables[t]; o->name; o++) {
            cr_assert_leq(o->off + o->width, size, "'%s' lies outside its struct", o->name);
            switch (o->type) {
            case CFG_BOOL: cr_assert_eq(o->width, sizeof(int), "%s", o->name); break;
            case CFG_INT:
                cr_assert(o->width == sizeof(int) || o->width == sizeof(int64_t), "%s", o->name);
                if (o->width == sizeof(int))
                    cr_assert((o->min || o->max) && o->min >= INT_MIN && o->max <= INT_MAX,
                              "'%s': an int field needs bounds an int holds", o->name);
                break;
            case CFG_SIZE: cr_assert_eq(o->width, sizeof(int64_t), "%s", o->name); break;
            case CFG_STR: cr_assert_eq(o->width, sizeof(const char *), "%s", o->name); break;
            case CFG_LIST: cr_assert_eq(o->width, sizeof(cfg_list), "%s", o->name); break;
            }
            /* a field is named after its option, so an entry bound to another
             * option's field shows */
            char want[128];
            size_t k = 0;
            for (; o->name[k] && k < sizeof(want) - 1; k++)
                want[k] = o->name[k] == '-' ? '_' : o->name[k];
            want[k] = 0;
            cr_assert_str_eq(o->field, want, "'%s' is bound to field %s", o->name, o->field);
            /* no two options of a table share a byte of their fields */
            for (const cfg_option *p = tables[t]; p != o; p++)
                cr_assert(p->off + p->width <= o->off || o->off + o->width <= p->off,
                          "'%s' and '%s' overlap", p->name, o->name);
        }
    }
}

Test(config_table, every_default_lands_in_its_own_field)
{
    get_tables();
    cfg *c = load_args(0, NULL);
    for (size_t t = 0; tables[t]; t++) {
        const char *base = cfg_values(c, tables[t]);
        cr_assert_not_null(base);
        for (const cfg_option *o = tables[t]; o->name; o++) {
            const char *field = base + o->off;
            cr_assert_str_eq(cfg_where(c, field, 0), o->type == CFG_LIST ? "?" : "default", "%s",
                             o->name);
            cr_assert(!cfg_is_set(c, field), "%s", o->name);
            int64_t want = 0;
            int b;
            switch (o->type) {
            case CFG_BOOL:
                if (o->def) cr_assert(!cfg_parse_bool(o->def, &b), "%s", o->name);
                cr_assert_eq(read_int(field, o->width), o->def ? b : 0, "%s", o->name);
                break;
            case CFG_INT:
            case CFG_SIZE:
                if (o->def)
                    cr_assert(!(o->type == CFG_INT ? cfg_parse_int : cfg_parse_size)(o->def, &want),
                              "%s", o->name);
                cr_assert_eq(read_int(field, o->width), want, "%s = %s", o->name,
                             o->def ? o->def : "(none)");
                break;
            case CFG_STR:
                if (o->def)
                    cr_assert_str_eq(read_str(field), o->def, "%s", o->name);
                else
                    cr_assert_null(read_str(field), "%s", o->name);
                break;
            case CFG_LIST: {
                cfg_list l = read_list(field);
                cr_assert(l.n == 0 && l.v == NULL, "%s", o->name);
                break;
            }
            }
        }
    }
    cfg_free(c);
}

/* A valid value for o that differs from its default. */
static void other_value(const cfg_option *o, char *out, size_t len)
{
    int64_t d = 0, cand[3];
    int b = 0;
    switch (o->type) {
    case CFG_BOOL:
        if (o->def) cfg_parse_bool(o->def, &b);
        snprintf(out, len, "%s", b ? "false" : "true");
        return;
    case CFG_INT:
    case CFG_SIZE:
        if (o->def) (o->type == CFG_INT ? cfg_parse_int : cfg_parse_size)(o->def, &d);
        cand[0] = o->min, cand[1] = o->max, cand[2] = 12345;
        for (int i = 0; i < 3; i++)
            if (cand[i] != d && (i == 2 ? !(o->min || o->max) : (o->min || o->max))) {
                snprintf(out, len, "%lld", (long long)cand[i]);
                return;
            }
        cr_assert_fail("'%s': no value other than its default", o->name);
        return;
    case CFG_STR:
    case CFG_LIST: snprintf(out, len, "/x-%s", o->name); return;
    }
}

Test(config_table, a_value_for_one_option_changes_its_field_and_no_other)
{
    get_tables();
    cfg *base = load_args(0, NULL);
    for (size_t t = 0; tables[t]; t++) {
        for (const cfg_option *o = tables[t]; o->name; o++) {
            char value[128], flag[256];
            other_value(o, value, sizeof(value));
            snprintf(flag, sizeof(flag), "--%s=%s", o->name, value);
            char *argv[] = {flag};
            cfg *c = load_args(1, argv);
            for (size_t u = 0; tables[u]; u++) {
                const char *a = cfg_values(base, tables[u]), *b = cfg_values(c, tables[u]);
                for (const cfg_option *p = tables[u]; p->name; p++)
                    cr_assert_eq(same_value(p, a, b), p != o, "%s changed %s", flag, p->name);
            }
            const char *field = (const char *)cfg_values(c, tables[t]) + o->off;
            char where[160];
            snprintf(where, sizeof(where), "--%s", o->name);
            cr_assert_str_eq(cfg_where(c, field, 0), where);
            cr_assert(cfg_is_set(c, field), "%s", o->name);
            cfg_free(c);
        }
    }
    cfg_free(base);
}

Test(config_table, every_alias_reaches_its_options_field)
{
    get_tables();
    for (size_t t = 0; tables[t]; t++) {
        for (const cfg_option *o = tables[t]; o->name; o++) {
            for (const char *a = o->alias; a && *a;) {
                size_t n = strcspn(a, "|");
                char value[128], flag[256];
                other_value(o, value, sizeof(value));
                snprintf(flag, sizeof(flag), "--%.*s=%s", (int)n, a, value);
                char *argv[] = {flag};
                cfg *c = load_args(1, argv);
                const char *field = (const char *)cfg_values(c, tables[t]) + o->off;
                cr_assert(cfg_is_set(c, field), "%s did not set %s", flag, o->name);
                cfg_free(c);
                a += n + (a[n] == '|');
            }
        }
    }
}
