/*
 * server/model/conf.c: the model options. Every per-model option is a list whose
 * items are either "VALUE" (every model) or "NAME=VALUE" (one model); the
 * one-model form wins whatever the order, so an ini can set a default and
 * override it per model. A NAME that is not a configured model is an error,
 * as is any value that does not parse: start-up names the option and where.
 */
#include "server/model/app_int.h"

#include "lib/err.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MODEL(type, f) CFG_BIND(model_opts, type, f)

const cfg_option model_options[] = {
    {"model", NULL, MODEL(CFG_LIST, model), NULL, 0, 0,
     "NAME=PATH.onnx: serve an ONNX model (repeatable)"},
    {"model-threads", NULL, MODEL(CFG_LIST, model_threads), NULL, 0, 0,
     "[NAME=]N: engine threads per worker for a model (default 1)"},
    {"max-batch-size", NULL, MODEL(CFG_LIST, max_batch_size), NULL, 0, 0,
     "[NAME=]N: largest batch the dynamic batcher forms (default 8; 1: no batching)"},
    {"batch-delay-us", NULL, MODEL(CFG_LIST, batch_delay_us), NULL, 0, 0,
     "[NAME=]US: how long the oldest queued request waits for a fuller batch (default 0)"},
    {"batch-invariant", NULL, MODEL(CFG_LIST, batch_invariant), NULL, 0, 0,
     "[NAME=]BOOL: a request's outputs never depend on what it is batched with; each sample runs "
     "alone on the batch-1 kernels (default false)"},
    {"max-queue", NULL, MODEL(CFG_LIST, max_queue), NULL, 0, 0,
     "[NAME=]N: queued requests per worker and model; beyond it 503 + Retry-After (default 64)"},
    {"max-sequence", NULL, MODEL(CFG_LIST, max_sequence), NULL, 0, 0,
     "[NAME=]N: largest value a dynamic dimension beyond the batch (a sequence length) may take "
     "in a request; beyond it 413 (default 512)"},
    {"model-timeout-ms", NULL, MODEL(CFG_LIST, model_timeout_ms), NULL, 0, 0,
     "[NAME=]MS: a request still queued after MS fails with 503 (default 0: no limit)"},
    {"labels", NULL, MODEL(CFG_LIST, labels), NULL, 0, 0,
     "[NAME=]FILE: class labels, one per line, for classify"},
    {"model-int8", NULL, MODEL(CFG_LIST, model_int8), NULL, 0, 0,
     "[NAME=]CALIB.npy: calibrate on CALIB's inputs at load and serve the dense Convs and Gemms "
     "in int8 (outputs differ from f32: check top-1 agreement)"},
    {"image-size", NULL, MODEL(CFG_LIST, image_size), NULL, 0, 0,
     "[NAME=]WxH: image size the model takes (default: from its input shape)"},
    {"image-mean", NULL, MODEL(CFG_LIST, image_mean), NULL, 0, 0,
     "[NAME=]M or R,G,B: subtracted from scaled pixels (default 0)"},
    {"image-std", NULL, MODEL(CFG_LIST, image_std), NULL, 0, 0,
     "[NAME=]S or R,G,B: divides scaled pixels after the mean (default 1)"},
    {"image-scale", NULL, MODEL(CFG_LIST, image_scale), NULL, 0, 0,
     "[NAME=]F: pixel multiplier before mean/std (default 1/255)"},
    {"image-layout", NULL, MODEL(CFG_LIST, image_layout), NULL, 0, 0,
     "[NAME=]nchw|nhwc: tensor layout of image inputs (default: from the input shape)"},
    {"image-max-side", NULL, MODEL(CFG_INT, image_max_side), "8192", 1, 65535,
     "largest image width or height accepted by classify (larger: 413)"},
    {"image-max-pixels", NULL, MODEL(CFG_INT, image_max_pixels), "16777216", 1, 1LL << 30,
     "largest width x height accepted by classify (larger: 413)"},
    {"model-route", NULL, MODEL(CFG_LIST, model_route), NULL, 0, 0,
     "PATH=NAME: GET PATH runs NAME once on zeros and answers Hello, World! (the article's app)"},
    CFG_END(model_opts),
};

/* field: the option's list in cfg_values, for where item i came from. */
static int bad(char *err, size_t errlen, const cfg *c, const char *opt, const cfg_list *field,
               size_t i, const char *val, const char *why)
{
    snprintf(err, errlen, "%s: option '%s': '%s' %s", cfg_where(c, field, i), opt, val, why);
    return -1;
}

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_floats(const char *s, float *out, int n_max)
{
    int n = 0;
    while (n < n_max) {
        char *end;
        float v = strtof(s, &end);
        if (end == s) return -1;
        out[n++] = v;
        if (*end == '\0') break;
        if (*end != ',') return -1;
        s = end + 1;
    }
    if (n == 1)
        for (int k = 1; k < n_max; k++) out[k] = out[0];
    return n == 1 || n == n_max ? 0 : -1;
}

/* The per-model options, each bound to its list in model_opts and to a parser
 * that stores one value in a model_conf; the option's name (for messages)
 * comes from the table above through cfg_name, so no name is spelt twice.
 * An integer option names its model_conf field and bounds (PM_INT refuses a
 * field that is not int or int64_t at compile time). */
typedef struct per_model_opt per_model_opt;
struct per_model_opt {
    size_t off; /* offsetof(model_opts, the option's list) */
    int (*parse)(model_conf *mc, const char *v, const per_model_opt *o);
    int path;     /* the value is a path: "a=b" naming no model is a value, not an error */
    size_t field; /* integer options: offsetof(model_conf, field), its width, bounds */
    size_t width;
    int64_t lo, hi;
};

static int parse_int_field(model_conf *mc, const char *v, const per_model_opt *o)
{
    int64_t x;
    if (parse_int(v, o->lo, o->hi, &x)) return -1;
    char *f = (char *)mc + o->field;
    if (o->width == sizeof(int)) {
        int i = (int)x;
        memcpy(f, &i, sizeof(i));
    } else {
        memcpy(f, &x, sizeof(x));
    }
    return 0;
}

static int parse_invariant(model_conf *mc, const char *v, const per_model_opt *o)
{
    (void)o;
    return cfg_parse_bool(v, &mc->batch_invariant);
}

static int parse_labels(model_conf *mc, const char *v, const per_model_opt *o)
{
    (void)o;
    char *s = strdup(v);
    if (!s) return -1;
    free(mc->labels_path);
    mc->labels_path = s;
    return 0;
}

static int parse_int8(model_conf *mc, const char *v, const per_model_opt *o)
{
    (void)o;
    char *s = *v ? strdup(v) : NULL;
    if (!s) return -1;
    free(mc->int8_path);
    mc->int8_path = s;
    return 0;
}

static int parse_size(model_conf *mc, const char *v, const per_model_opt *o)
{
    (void)o;
    char *end;
    long w = strtol(v, &end, 10), h = 0;
    if (*end == 'x' || *end == 'X') h = strtol(end + 1, &end, 10);
    if (*end || w < 1 || h < 1 || w > 16384 || h > 16384) return -1;
    mc->img_w = (int)w, mc->img_h = (int)h;
    return 0;
}

static int parse_mean(model_conf *mc, const char *v, const per_model_opt *o)
{
    (void)o;
    return parse_floats(v, mc->mean, 3);
}

static int parse_std(model_conf *mc, const char *v, const per_model_opt *o)
{
    (void)o;
    if (parse_floats(v, mc->std, 3)) return -1;
    for (int k = 0; k < 3; k++)
        if (mc->std[k] == 0) return -1;
    return 0;
}

static int parse_scale(model_conf *mc, const char *v, const per_model_opt *o)
{
    (void)o;
    char *end;
    mc->scale = strtof(v, &end);
    return end == v || *end ? -1 : 0;
}

static int parse_layout(model_conf *mc, const char *v, const per_model_opt *o)
{
    (void)o;
    if (!strcasecmp(v, "nchw"))
        mc->layout = IMAGE_NCHW;
    else if (!strcasecmp(v, "nhwc"))
        mc->layout = IMAGE_NHWC;
    else
        return -1;
    return 0;
}

#define PM_LIST(opt)                                                                               \
    offsetof(model_opts, opt) + 0 * sizeof(char[CFG_FIELD_OK_CFG_LIST(model_opts, opt) ? 1 : -1])
#define PM_INT(opt, f, lo, hi)                                                                     \
    {                                                                                              \
        PM_LIST(opt), parse_int_field, 0,                                                          \
            offsetof(model_conf, f) +                                                              \
                0 * sizeof(char[CFG_FIELD_OK_CFG_INT(model_conf, f) ? 1 : -1]),                    \
            sizeof(((model_conf *)0)->f), lo, hi                                                   \
    }
#define PM(opt, fn, path)                                                                          \
    {                                                                                              \
        PM_LIST(opt), fn, path, 0, 0, 0, 0                                                         \
    }

static const per_model_opt per_model[] = {
    PM_INT(model_threads, threads, 1, 256),
    PM_INT(max_batch_size, max_batch, 1, 1024),
    PM_INT(batch_delay_us, delay_us, 0, 10000000),
    PM(batch_invariant, parse_invariant, 0),
    PM_INT(max_queue, max_queue, 1, 1 << 20),
    PM_INT(max_sequence, max_seq, 1, 1 << 20),
    PM_INT(model_timeout_ms, timeout_ms, 0, 86400000),
    PM(labels, parse_labels, 1),
    PM(model_int8, parse_int8, 1),
    PM(image_size, parse_size, 0),
    PM(image_mean, parse_mean, 0),
    PM(image_std, parse_std, 0),
    PM(image_scale, parse_scale, 0),
    PM(image_layout, parse_layout, 0),
};

/* Splits "NAME=VALUE" when NAME is a model; returns the model index or -1. */
static int split(app_model *app, const char *item, const char **value)
{
    const char *eq = strchr(item, '=');
    *value = item;
    if (!eq) return -1;
    for (int i = 0; i < app->n; i++) {
        if (strlen(app->models[i].c.name) == (size_t)(eq - item) &&
            !memcmp(item, app->models[i].c.name, (size_t)(eq - item))) {
            *value = eq + 1;
            return i;
        }
    }
    return -2; /* has '=' but the prefix is no model: maybe a path with '=' */
}

static int read_models(app_model *app, const cfg *c, char *err, size_t errlen)
{
    const cfg_list *l = &((const model_opts *)cfg_values(c, model_options))->model;
    size_t n = l->n;
    const char *const *items = l->v;
    if (n > MODEL_MAX) {
        snprintf(err, errlen, "at most %d models (got %zu)", MODEL_MAX, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        if (!eq || eq == items[i] || !eq[1])
            return bad(err, errlen, c, "model", l, i, items[i], "is not NAME=PATH.onnx");
        for (const char *p = items[i]; p < eq; p++)
            if (!isalnum((unsigned char)*p) && !strchr("-_.", *p))
                return bad(err, errlen, c, "model", l, i, items[i],
                           "has a name that is not [A-Za-z0-9._-]");
        model_conf *mc = &app->models[app->n].c;
        *mc = (model_conf){.threads = 1,
                           .max_batch = 8,
                           .max_queue = 64,
                           .max_seq = 512,
                           .layout = -1,
                           .scale = 1.0f / 255,
                           .std = {1, 1, 1}};
        mc->name = strndup(items[i], (size_t)(eq - items[i]));
        mc->path = strdup(eq + 1);
        app->n++; /* model_conf_free releases what was copied, also on failure */
        if (!mc->name || !mc->path) return err_fmt(err, errlen, "out of memory");
        for (int k = 0; k < app->n - 1; k++)
            if (!strcmp(app->models[k].c.name, mc->name))
                return bad(err, errlen, c, "model", l, i, items[i], "repeats a model name");
    }
    return 0;
}

int model_conf_read(app_model *app, const cfg *c, char *err, size_t errlen)
{
    if (read_models(app, c, err, errlen)) return -1;
    const model_opts *mo = cfg_values(c, model_options);
    for (size_t o = 0; o < sizeof(per_model) / sizeof(*per_model); o++) {
        const per_model_opt *po = &per_model[o];
        const cfg_list *l = (const cfg_list *)((const char *)mo + po->off);
        const char *name = cfg_name(c, l);
        size_t n = l->n;
        const char *const *items = l->v;
        /* pass 0: values for every model; pass 1: NAME=VALUE overrides */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < n; i++) {
                const char *v;
                int m = split(app, items[i], &v);
                if ((m >= 0) != (pass == 1)) continue;
                if (m == -2 && !po->path)
                    return bad(err, errlen, c, name, l, i, items[i], "names no model");
                for (int k = 0; k < app->n; k++) {
                    if (m >= 0 && k != m) continue;
                    if (po->parse(&app->models[k].c, v, po))
                        return bad(err, errlen, c, name, l, i, items[i], "is not valid");
                }
            }
        }
    }
    const char *const *routes = mo->model_route.v;
    for (size_t i = 0; i < mo->model_route.n && app->nroutes < MODEL_MAX; i++) {
        const char *eq = strrchr(routes[i], '=');
        model *m = eq ? model_find(app, eq + 1, strlen(eq + 1)) : NULL;
        if (!eq || routes[i][0] != '/' || !m)
            return bad(err, errlen, c, "model-route", &mo->model_route, i, routes[i],
                       "is not PATH=NAME with PATH starting '/' and NAME a model");
        app->routes[app->nroutes++] =
            (mroute){strndup(routes[i], (size_t)(eq - routes[i])), m, app};
    }
    app->img_lim.max_side = mo->image_max_side;
    app->img_lim.max_pixels = mo->image_max_pixels;
    return 0;
}

void model_conf_free(model_conf *mc)
{
    free(mc->name);
    free(mc->path);
    free(mc->labels_path);
    free(mc->int8_path);
    mc->name = mc->path = mc->labels_path = mc->int8_path = NULL;
}

int model_labels_load(model *m, char *err, size_t errlen)
{
    if (!m->c.labels_path) return 0;
    FILE *f = fopen(m->c.labels_path, "r");
    if (!f) {
        snprintf(err, errlen, "model '%s': labels file %s: %s", m->c.name, m->c.labels_path,
                 strerror(errno));
        return -1;
    }
    char line[1024];
    int cap = 0, rc = 0;
    while (!rc && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (m->n_labels == cap) {
            cap = cap ? cap * 2 : 64;
            char **l = realloc(m->labels, (size_t)cap * sizeof(*l));
            if (!l) {
                rc = -1;
                break;
            }
            m->labels = l;
        }
        if (!(m->labels[m->n_labels] = strdup(line)))
            rc = -1;
        else
            m->n_labels++;
    }
    fclose(f);
    /* a short label list would misname classes: refuse it rather than truncate */
    if (rc)
        return err_fmt(err, errlen, "model '%s': labels file %s: out of memory", m->c.name,
                       m->c.labels_path);
    return 0;
}

/*
 * An image input is [N,C,H,W] or [N,H,W,C] with C 1 or 3, or [N,K] when
 * image-size WxH is given and K = W*H (grey) or 3*W*H. prep.channels stays 0
 * when the first input is none of these: classify then answers 400.
 */
void model_prep_init(model *m)
{
    image_prep *p = &m->prep;
    *p = (image_prep){.scale = m->c.scale};
    memcpy(p->mean, m->c.mean, sizeof(p->mean));
    memcpy(p->std, m->c.std, sizeof(p->std));
    if (m->n_in < 1 || m->in[0].dtype != KSERVE_FP32) return;
    const kserve_io *io = &m->in[0];
    int64_t w = m->c.img_w, h = m->c.img_h;
    if (io->rank == 4) {
        bool nchw = m->c.layout == IMAGE_NCHW ||
                    (m->c.layout < 0 && (io->shape[1] == 1 || io->shape[1] == 3));
        int64_t ch = nchw ? io->shape[1] : io->shape[3];
        int64_t hh = nchw ? io->shape[2] : io->shape[1], ww = nchw ? io->shape[3] : io->shape[2];
        if ((ch != 1 && ch != 3) || hh < 1 || ww < 1 || (w && (w != ww || h != hh))) return;
        *p = (image_prep){(int)ww,
                          (int)hh,
                          (int)ch,
                          nchw ? IMAGE_NCHW : IMAGE_NHWC,
                          p->scale,
                          {p->mean[0], p->mean[1], p->mean[2]},
                          {p->std[0], p->std[1], p->std[2]}};
    } else if (io->rank == 2 && w && h) {
        int64_t ch = io->shape[1] == w * h ? 1 : io->shape[1] == 3 * w * h ? 3 : 0;
        if (!ch) return;
        p->width = (int)w, p->height = (int)h, p->channels = (int)ch;
        p->layout = m->c.layout == IMAGE_NHWC ? IMAGE_NHWC : IMAGE_NCHW;
    }
}
