/*
 * kserve.c: the v2 wire format. Parsing goes JSON text -> lib/json tokens ->
 * kserve_request; tensor data is converted element by element straight into
 * its final buffer, whose size is checked against the limit before the
 * allocation (it is shape-derived and must equal the leaf count anyway).
 */
#include "server/model/kserve.h"

#include "lib/err.h"

#include "lib/json.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [KSERVE_INVALID] = {"INVALID", 0}, [KSERVE_BOOL] = {"BOOL", 1},
    [KSERVE_UINT8] = {"UINT8", 1},     [KSERVE_UINT16] = {"UINT16", 2},
    [KSERVE_UINT32] = {"UINT32", 4},   [KSERVE_UINT64] = {"UINT64", 8},
    [KSERVE_INT8] = {"INT8", 1},       [KSERVE_INT16] = {"INT16", 2},
    [KSERVE_INT32] = {"INT32", 4},     [KSERVE_INT64] = {"INT64", 8},
    [KSERVE_FP16] = {"FP16", 2},       [KSERVE_FP32] = {"FP32", 4},
    [KSERVE_FP64] = {"FP64", 8},       [KSERVE_BYTES] = {"BYTES", 0},
};
#define N_DTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

const char *kserve_dtype_name(kserve_dtype t)
{
    return (size_t)t < N_DTYPES ? dtypes[t].name : "INVALID";
}

kserve_dtype kserve_dtype_parse(const char *s, size_t len)
{
    for (size_t i = 1; i < N_DTYPES; i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, s, len) == 0)
            return (kserve_dtype)i;
    return KSERVE_INVALID;
}

size_t kserve_dtype_size(kserve_dtype t)
{
    return (size_t)t < N_DTYPES ? dtypes[t].size : 0;
}

/* ---- parsing ---- */

typedef struct ctx {
    json_doc doc;
    const char *bin; /* binary part of the body */
    size_t bin_len;
    size_t bin_used;
    size_t max_bytes;
    const char *why; /* where max_bytes comes from, or "" */
    char *err;
    size_t errlen;
} ctx;

static bool is_type(const ctx *c, int i, json_type t)
{
    return i >= 0 && c->doc.tok[i].type == t;
}

/* Reads an optional boolean; 400 if present and not a boolean. */
static int opt_bool(ctx *c, int obj, const char *key, const char *what, int *out)
{
    int i = json_obj_get(&c->doc, obj, key);
    if (i < 0) return 0;
    json_type t = c->doc.tok[i].type;
    if (t != JSON_TRUE && t != JSON_FALSE)
        return err_fmt_rc(c->err, c->errlen, 400, "%s: '%s' must be a boolean", what, key);
    *out = t == JSON_TRUE;
    return 0;
}

static int name_of(ctx *c, int obj, const char *what, char *out)
{
    int i = json_obj_get(&c->doc, obj, "name");
    if (!is_type(c, i, JSON_STRING))
        return err_fmt_rc(c->err, c->errlen, 400, "%s has no 'name' string", what);
    int n = json_str_copy(&c->doc, i, out, KSERVE_NAME_MAX);
    if (n == -E2BIG)
        return err_fmt_rc(c->err, c->errlen, 400, "%s name longer than %d bytes", what,
                          KSERVE_NAME_MAX - 1);
    if (n <= 0) return err_fmt_rc(c->err, c->errlen, 400, "%s has an empty or invalid name", what);
    return 0;
}

static int parse_shape(ctx *c, int obj, kserve_tensor *t)
{
    int s = json_obj_get(&c->doc, obj, "shape");
    if (!is_type(c, s, JSON_ARRAY))
        return err_fmt_rc(c->err, c->errlen, 400, "input '%s' has no 'shape' array", t->name);
    if (c->doc.tok[s].count > KSERVE_MAX_RANK)
        return err_fmt_rc(c->err, c->errlen, 400, "input '%s': rank %u exceeds %d", t->name,
                          c->doc.tok[s].count, KSERVE_MAX_RANK);
    t->rank = (int)c->doc.tok[s].count;
    size_t count = 1;
    bool over = false;
    for (int d = 0; d < t->rank; d++) {
        int64_t v;
        if (json_num_i64(&c->doc, s + 1 + d, &v) || v < 0)
            return err_fmt_rc(c->err, c->errlen, 400,
                              "input '%s': shape dims must be non-negative integers", t->name);
        t->shape[d] = v;
        if (v && count > SIZE_MAX / 16 / (uint64_t)v)
            over = true;
        else
            count *= (size_t)v;
    }
    size_t esz = kserve_dtype_size(t->dtype);
    const char *lp = c->why[0] ? " (" : "", *rp = c->why[0] ? ")" : "";
    if (over)
        return err_fmt_rc(c->err, c->errlen, 413,
                          "input '%s': tensor is larger than the %zu-byte limit%s%s%s", t->name,
                          c->max_bytes, lp, c->why, rp);
    if ((esz && count > c->max_bytes / esz) || (!esz && count > c->max_bytes))
        return err_fmt_rc(c->err, c->errlen, 413,
                          "input '%s': %zu bytes exceed the %zu-byte limit%s%s%s", t->name,
                          count * (esz ? esz : 1), c->max_bytes, lp, c->why, rp);
    t->count = count;
    t->nbytes = count * esz;
    return 0;
}

static int conv_err(ctx *c, const kserve_tensor *t, size_t k, const char *why)
{
    return err_fmt_rc(c->err, c->errlen, 400, "input '%s': element %zu %s", t->name, k, why);
}

/* A decimal beyond the dtype's range (1e999) is the client's mistake, not
 * infinity: 400 quoting it. Infinity is sent as "Infinity" (or the bare
 * literal). */
static int out_of_range(ctx *c, const kserve_tensor *t, size_t k, int i)
{
    const json_tok *tok = &c->doc.tok[i];
    int n = tok->len > 40 ? 40 : (int)tok->len;
    return err_fmt_rc(c->err, c->errlen, 400,
                      "input '%s': element %zu (%.*s%s) is out of range for %s (largest %s); send "
                      "infinity as \"Infinity\"",
                      t->name, k, n, c->doc.src + tok->start, tok->len > 40 ? "..." : "",
                      kserve_dtype_name(t->dtype),
                      t->dtype == KSERVE_FP32 ? "3.40282347e+38" : "1.7976931348623157e+308");
}

/* The JSON string token i as a non-finite float: "NaN", "Infinity",
 * "-Infinity" (also "inf", "+inf", "nan", any case, as Python's float()
 * reads them). 0, or -1 for any other string. */
static int nonfinite_string(ctx *c, int i, double *out)
{
    char s[16];
    int n = json_str_copy(&c->doc, i, s, sizeof(s));
    if (n <= 0) return -1;
    const char *p = s;
    double sign = 1;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (!strcasecmp(p, "nan")) return *out = NAN, 0;
    if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity")) return *out = sign * INFINITY, 0;
    return -1;
}

/* Converts leaf token i into element k of t's buffer. */
static int conv_one(ctx *c, kserve_tensor *t, void *buf, size_t k, int i)
{
    const json_tok *tok = &c->doc.tok[i];
    if (t->dtype == KSERVE_BOOL) {
        if (tok->type != JSON_TRUE && tok->type != JSON_FALSE)
            return conv_err(c, t, k, "is not a boolean");
        ((uint8_t *)buf)[k] = tok->type == JSON_TRUE;
        return 0;
    }
    if ((t->dtype == KSERVE_FP32 || t->dtype == KSERVE_FP64) && tok->type == JSON_STRING) {
        double nf;
        if (nonfinite_string(c, i, &nf))
            return conv_err(c, t, k,
                            "is a string other than \"NaN\", \"Infinity\" or \"-Infinity\"");
        if (t->dtype == KSERVE_FP32)
            ((float *)buf)[k] = (float)nf;
        else
            memcpy((char *)buf + k * 8, &nf, 8);
        return 0;
    }
    if (tok->type != JSON_NUMBER) return conv_err(c, t, k, "is not a number");
    double d;
    int64_t v;
    uint64_t u;
    static const int64_t lo[] = {[KSERVE_INT8] = INT8_MIN,
                                 [KSERVE_INT16] = INT16_MIN,
                                 [KSERVE_INT32] = INT32_MIN,
                                 [KSERVE_INT64] = INT64_MIN};
    static const int64_t hi[] = {
        [KSERVE_INT8] = INT8_MAX,    [KSERVE_INT16] = INT16_MAX, [KSERVE_INT32] = INT32_MAX,
        [KSERVE_INT64] = INT64_MAX,  [KSERVE_UINT8] = UINT8_MAX, [KSERVE_UINT16] = UINT16_MAX,
        [KSERVE_UINT32] = UINT32_MAX};
    switch (t->dtype) {
    case KSERVE_FP32:
        if (json_num_f32(&c->doc, i, &((float *)buf)[k])) return out_of_range(c, t, k, i);
        return 0;
    case KSERVE_FP64:
        if (json_num_f64(&c->doc, i, &d)) return out_of_range(c, t, k, i);
        memcpy((char *)buf + k * 8, &d, 8);
        return 0;
    case KSERVE_INT8:
    case KSERVE_INT16:
    case KSERVE_INT32:
    case KSERVE_INT64:
        if (json_num_i64(&c->doc, i, &v) || v < lo[t->dtype] || v > hi[t->dtype])
            return conv_err(c, t, k, "is not an integer in range");
        if (t->dtype == KSERVE_INT8)
            ((int8_t *)buf)[k] = (int8_t)v;
        else if (t->dtype == KSERVE_INT16)
            ((int16_t *)buf)[k] = (int16_t)v;
        else if (t->dtype == KSERVE_INT32)
            ((int32_t *)buf)[k] = (int32_t)v;
        else
            ((int64_t *)buf)[k] = v;
        return 0;
    case KSERVE_UINT8:
    case KSERVE_UINT16:
    case KSERVE_UINT32:
    case KSERVE_UINT64:
        if (json_num_u64(&c->doc, i, &u) ||
            (t->dtype != KSERVE_UINT64 && u > (uint64_t)hi[t->dtype]))
            return conv_err(c, t, k, "is not an unsigned integer in range");
        if (t->dtype == KSERVE_UINT8)
            ((uint8_t *)buf)[k] = (uint8_t)u;
        else if (t->dtype == KSERVE_UINT16)
            ((uint16_t *)buf)[k] = (uint16_t)u;
        else if (t->dtype == KSERVE_UINT32)
            ((uint32_t *)buf)[k] = (uint32_t)u;
        else
            ((uint64_t *)buf)[k] = u;
        return 0;
    default: return conv_err(c, t, k, "has an unsupported datatype");
    }
}

/* JSON "data": flat or nested arrays (or a bare scalar for rank 0). */
static int parse_json_data(ctx *c, int di, kserve_tensor *t)
{
    if (t->dtype == KSERVE_FP16)
        return err_fmt_rc(c->err, c->errlen, 400, "input '%s': FP16 data must be sent as binary",
                          t->name);
    if (t->dtype == KSERVE_BYTES)
        return err_fmt_rc(c->err, c->errlen, 400, "input '%s': BYTES tensors are not supported",
                          t->name);
    const json_tok *tok = c->doc.tok;
    uint32_t first = tok[di].type == JSON_ARRAY ? (uint32_t)di + 1 : (uint32_t)di;
    uint32_t end = tok[di].next;
    size_t leaves = 0;
    for (uint32_t i = first; i < end; i++) {
        if (tok[i].type == JSON_OBJECT)
            return err_fmt_rc(c->err, c->errlen, 400, "input '%s': data holds an object", t->name);
        if (tok[i].type != JSON_ARRAY) leaves++;
    }
    if (leaves != t->count)
        return err_fmt_rc(c->err, c->errlen, 400,
                          "input '%s': shape has %zu elements but data has %zu", t->name, t->count,
                          leaves);
    void *buf = malloc(t->nbytes ? t->nbytes : 1);
    if (!buf) return err_fmt_rc(c->err, c->errlen, 500, "out of memory");
    t->data = buf;
    t->owned = true;
    size_t k = 0;
    for (uint32_t i = first; i < end; i++) {
        if (tok[i].type == JSON_ARRAY) continue;
        int rc = conv_one(c, t, buf, k++, (int)i);
        if (rc) return rc;
    }
    return 0;
}

static int parse_binary_data(ctx *c, kserve_tensor *t, int64_t size)
{
    if (t->dtype == KSERVE_BYTES)
        return err_fmt_rc(c->err, c->errlen, 400, "input '%s': BYTES tensors are not supported",
                          t->name);
    if ((uint64_t)size != t->nbytes)
        return err_fmt_rc(
            c->err, c->errlen, 400,
            "input '%s': binary_data_size %lld does not match shape and datatype (%zu "
            "bytes)",
            t->name, (long long)size, t->nbytes);
    if (t->nbytes > c->bin_len - c->bin_used)
        return err_fmt_rc(c->err, c->errlen, 400,
                          "input '%s': binary data truncated: needs %zu bytes at offset %zu, body "
                          "has %zu",
                          t->name, t->nbytes, c->bin_used, c->bin_len - c->bin_used);
    t->data = c->bin + c->bin_used;
    t->binary = true;
    c->bin_used += t->nbytes;
    return 0;
}

static int parse_input(ctx *c, int obj, kserve_tensor *t)
{
    if (!is_type(c, obj, JSON_OBJECT))
        return err_fmt_rc(c->err, c->errlen, 400, "inputs must be objects");
    int rc = name_of(c, obj, "an input", t->name);
    if (rc) return rc;
    int dt = json_obj_get(&c->doc, obj, "datatype");
    if (!is_type(c, dt, JSON_STRING))
        return err_fmt_rc(c->err, c->errlen, 400, "input '%s' has no 'datatype' string", t->name);
    t->dtype = kserve_dtype_parse(c->doc.src + c->doc.tok[dt].start, c->doc.tok[dt].len);
    if (t->dtype == KSERVE_INVALID)
        return err_fmt_rc(c->err, c->errlen, 400, "input '%s': unknown datatype '%.*s'", t->name,
                          (int)(c->doc.tok[dt].len > 32 ? 32 : c->doc.tok[dt].len),
                          c->doc.src + c->doc.tok[dt].start);
    if ((rc = parse_shape(c, obj, t))) return rc;
    int params = json_obj_get(&c->doc, obj, "parameters");
    if (params >= 0 && !is_type(c, params, JSON_OBJECT))
        return err_fmt_rc(c->err, c->errlen, 400, "input '%s': 'parameters' must be an object",
                          t->name);
    int bds = json_obj_get(&c->doc, params, "binary_data_size");
    int data = json_obj_get(&c->doc, obj, "data");
    if (bds >= 0) {
        int64_t size;
        if (json_num_i64(&c->doc, bds, &size) || size < 0)
            return err_fmt_rc(c->err, c->errlen, 400,
                              "input '%s': binary_data_size must be a non-negative integer",
                              t->name);
        if (data >= 0)
            return err_fmt_rc(c->err, c->errlen, 400,
                              "input '%s' has both 'data' and binary_data_size", t->name);
        return parse_binary_data(c, t, size);
    }
    if (data < 0) return err_fmt_rc(c->err, c->errlen, 400, "input '%s' has no 'data'", t->name);
    return parse_json_data(c, data, t);
}

static int parse_outputs(ctx *c, int arr, kserve_request *req)
{
    if (!is_type(c, arr, JSON_ARRAY))
        return err_fmt_rc(c->err, c->errlen, 400, "'outputs' must be an array");
    if (c->doc.tok[arr].count > KSERVE_MAX_TENSORS)
        return err_fmt_rc(c->err, c->errlen, 400, "more than %d outputs requested",
                          KSERVE_MAX_TENSORS);
    uint32_t i = (uint32_t)arr + 1;
    for (uint32_t k = 0; k < c->doc.tok[arr].count; k++, i = c->doc.tok[i].next) {
        kserve_output_req *o = &req->outputs[req->n_outputs];
        if (!is_type(c, (int)i, JSON_OBJECT))
            return err_fmt_rc(c->err, c->errlen, 400, "outputs must be objects");
        int rc = name_of(c, (int)i, "a requested output", o->name);
        if (rc) return rc;
        o->binary = -1;
        int params = json_obj_get(&c->doc, (int)i, "parameters");
        if (params >= 0 && !is_type(c, params, JSON_OBJECT))
            return err_fmt_rc(c->err, c->errlen, 400, "output '%s': 'parameters' must be an object",
                              o->name);
        if ((rc = opt_bool(c, params, "binary_data", "output parameters", &o->binary))) return rc;
        int cl = json_obj_get(&c->doc, params, "classification");
        if (cl >= 0) {
            uint64_t k;
            if (json_num_u64(&c->doc, cl, &k) || k > 1000000)
                return err_fmt_rc(
                    c->err, c->errlen, 400,
                    "output '%s': 'classification' must be an integer 0..1000000 (the "
                    "number of classes to return)",
                    o->name);
            o->classification = (int)k;
        }
        req->n_outputs++;
    }
    return 0;
}

static int parse_inputs(ctx *c, int arr, kserve_request *req)
{
    if (!is_type(c, arr, JSON_ARRAY))
        return err_fmt_rc(c->err, c->errlen, 400, "'inputs' must be an array");
    if (c->doc.tok[arr].count == 0) return err_fmt_rc(c->err, c->errlen, 400, "'inputs' is empty");
    if (c->doc.tok[arr].count > KSERVE_MAX_TENSORS)
        return err_fmt_rc(c->err, c->errlen, 400, "more than %d inputs", KSERVE_MAX_TENSORS);
    uint32_t i = (uint32_t)arr + 1;
    for (uint32_t k = 0; k < c->doc.tok[arr].count; k++, i = c->doc.tok[i].next) {
        int rc = parse_input(c, (int)i, &req->inputs[req->n_inputs++]);
        if (rc) return rc;
    }
    if (c->bin_used != c->bin_len)
        return err_fmt_rc(c->err, c->errlen, 400,
                          "%zu bytes after the JSON header are not claimed by any binary_data_size",
                          c->bin_len - c->bin_used);
    return 0;
}

static int parse_root(ctx *c, kserve_request *req)
{
    if (c->doc.tok[0].type != JSON_OBJECT)
        return err_fmt_rc(c->err, c->errlen, 400, "request body must be a JSON object");
    int id = json_obj_get(&c->doc, 0, "id");
    if (id >= 0) {
        if (!is_type(c, id, JSON_STRING))
            return err_fmt_rc(c->err, c->errlen, 400, "'id' must be a string");
        int n = json_str_copy(&c->doc, id, req->id, sizeof(req->id));
        if (n < 0)
            return err_fmt_rc(c->err, c->errlen, 400, "'id' is longer than %d bytes or holds NUL",
                              KSERVE_ID_MAX - 1);
        req->has_id = true;
    }
    int params = json_obj_get(&c->doc, 0, "parameters");
    if (params >= 0 && !is_type(c, params, JSON_OBJECT))
        return err_fmt_rc(c->err, c->errlen, 400, "'parameters' must be an object");
    int bo = 0;
    int rc = opt_bool(c, params, "binary_data_output", "request parameters", &bo);
    if (rc) return rc;
    req->binary_output = bo;
    int to = json_obj_get(&c->doc, params, "timeout");
    if (to >= 0) {
        uint64_t us;
        if (json_num_u64(&c->doc, to, &us))
            return err_fmt_rc(c->err, c->errlen, 400,
                              "'timeout' must be a non-negative integer (us)");
        req->timeout_us = us;
    }
    int in = json_obj_get(&c->doc, 0, "inputs");
    if (in < 0) return err_fmt_rc(c->err, c->errlen, 400, "request has no 'inputs'");
    if ((rc = parse_inputs(c, in, req))) return rc;
    int out = json_obj_get(&c->doc, 0, "outputs");
    return out >= 0 ? parse_outputs(c, out, req) : 0;
}

int kserve_request_parse(kserve_request *req, const char *body, size_t len, size_t json_len,
                         const kserve_limits *lim, char *err, size_t errlen)
{
    memset(req, 0, sizeof(*req));
    if (json_len == (size_t)-1) json_len = len;
    if (json_len > len)
        return err_fmt_rc(err, errlen, 400,
                          "Inference-Header-Content-Length %zu exceeds the %zu-byte body", json_len,
                          len);
    ctx c = {.bin = body + json_len, .bin_len = len - json_len, .err = err, .errlen = errlen};
    c.max_bytes = lim && lim->max_tensor_bytes ? lim->max_tensor_bytes : (size_t)64 << 20;
    c.why = lim && lim->max_tensor_bytes && lim->tensor_why ? lim->tensor_why : "";
    json_limits jl = {.max_depth = 32, .allow_nonfinite = 1};
    jl.max_tokens = lim && lim->max_json_tokens ? lim->max_json_tokens : 4u << 20;
    char jerr[128];
    int rc = json_parse(&c.doc, body, json_len, &jl, jerr, sizeof(jerr));
    if (rc == -EINVAL) return err_fmt_rc(err, errlen, 400, "invalid JSON: %s", jerr);
    if (rc == -E2BIG)
        return err_fmt_rc(err, errlen, 413, "request JSON over a limit: %s%s%s%s", jerr,
                          lim && lim->tokens_why ? " (" : "",
                          lim && lim->tokens_why ? lim->tokens_why : "",
                          lim && lim->tokens_why ? ")" : "");
    if (rc) return err_fmt_rc(err, errlen, 500, "out of memory parsing the request");
    rc = parse_root(&c, req);
    json_doc_free(&c.doc);
    if (rc) kserve_request_free(req);
    return rc;
}

void kserve_request_free(kserve_request *req)
{
    for (int i = 0; i < req->n_inputs; i++) {
        if (req->inputs[i].owned) free((void *)req->inputs[i].data);
        req->inputs[i].data = NULL;
        req->inputs[i].owned = false;
    }
    req->n_inputs = 0;
}

/* ---- checking against the model ---- */

static void fmt_shape(char *out, size_t cap, const int64_t *shape, int rank)
{
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int d = 0; d < rank && n < cap; d++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", d ? "," : "", (long long)shape[d]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

static int check_one(const kserve_tensor *t, const kserve_io *io, char *err, size_t errlen)
{
    if (t->dtype != io->dtype)
        return err_fmt_rc(err, errlen, 400, "input '%s': datatype %s, but the model expects %s",
                          t->name, kserve_dtype_name(t->dtype), kserve_dtype_name(io->dtype));
    bool ok = t->rank == io->rank;
    for (int d = 0; ok && d < t->rank; d++)
        if (io->shape[d] >= 0 && io->shape[d] != t->shape[d]) ok = false;
    if (!ok) {
        char got[128], want[128];
        fmt_shape(got, sizeof(got), t->shape, t->rank);
        fmt_shape(want, sizeof(want), io->shape, io->rank);
        return err_fmt_rc(err, errlen, 400,
                          "input '%s': shape %s, but the model expects %s (-1: any)", t->name, got,
                          want);
    }
    return 0;
}

int kserve_request_check(kserve_request *req, const kserve_io *in, int n_in, const kserve_io *out,
                         int n_out, char *err, size_t errlen)
{
    for (int i = 0; i < req->n_inputs; i++) {
        int found = -1;
        for (int m = 0; m < n_in && found < 0; m++)
            if (strcmp(req->inputs[i].name, in[m].name) == 0) found = m;
        if (found < 0)
            return err_fmt_rc(err, errlen, 400,
                              "unknown input '%s' (the model's first input is '%s')",
                              req->inputs[i].name, n_in ? in[0].name : "");
        for (int j = 0; j < i; j++)
            if (strcmp(req->inputs[i].name, req->inputs[j].name) == 0)
                return err_fmt_rc(err, errlen, 400, "input '%s' given twice", req->inputs[i].name);
        int rc = check_one(&req->inputs[i], &in[found], err, errlen);
        if (rc) return rc;
    }
    if (req->n_inputs != n_in) {
        for (int m = 0; m < n_in; m++) {
            bool have = false;
            for (int i = 0; i < req->n_inputs; i++)
                have |= !strcmp(req->inputs[i].name, in[m].name);
            if (!have) return err_fmt_rc(err, errlen, 400, "missing input '%s'", in[m].name);
        }
    }
    /* Put the inputs in the model's order, so callers index them by position. */
    for (int m = 0; m < n_in; m++) {
        for (int i = m; i < req->n_inputs; i++) {
            if (strcmp(req->inputs[i].name, in[m].name) != 0) continue;
            kserve_tensor tmp = req->inputs[m];
            req->inputs[m] = req->inputs[i];
            req->inputs[i] = tmp;
            break;
        }
    }
    for (int m = 1; m < n_in; m++)
        if (in[m].rank > 0 && in[m].shape[0] < 0 && in[0].rank > 0 && in[0].shape[0] < 0 &&
            req->inputs[m].shape[0] != req->inputs[0].shape[0])
            return err_fmt_rc(err, errlen, 400, "inputs '%s' and '%s' differ in batch size",
                              req->inputs[0].name, req->inputs[m].name);
    for (int o = 0; o < req->n_outputs; o++) {
        int found = -1;
        for (int m = 0; m < n_out && found < 0; m++)
            if (!strcmp(req->outputs[o].name, out[m].name)) found = m;
        if (found < 0)
            return err_fmt_rc(err, errlen, 400, "unknown output '%s'", req->outputs[o].name);
        kserve_dtype t = out[found].dtype;
        if (req->outputs[o].classification &&
            (t == KSERVE_BYTES || t == KSERVE_BOOL || t == KSERVE_FP16 || t == KSERVE_INVALID))
            return err_fmt_rc(err, errlen, 400, "output '%s': classification needs numbers, not %s",
                              req->outputs[o].name, kserve_dtype_name(t));
    }
    return 0;
}

/* ---- writing ---- */

static int write_shape(buf *b, const int64_t *shape, int rank)
{
    int rc = buf_puts(b, "[");
    for (int d = 0; d < rank && !rc; d++)
        rc = buf_printf(b, "%s%lld", d ? "," : "", (long long)shape[d]);
    return rc ? rc : buf_puts(b, "]");
}

/* NaN and the infinities as the JSON strings a request may send them as. */
static int fmt_nonfinite(char *p, double v)
{
    const char *s = isnan(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    size_t n = strlen(s);
    memcpy(p, s, n + 1);
    return (int)n;
}

/* Writes count elements as a flat JSON array. */
static int write_data(buf *b, kserve_dtype t, const void *data, size_t count)
{
    /* 26 bytes covers the longest element (FP64 %.17g, INT64 with sign) plus comma. */
    if (count > ((size_t)-1 / 2) / 26 || buf_reserve(b, count * 26 + 2)) return -ENOMEM;
    char *p = b->data + b->len;
    *p++ = '[';
    const char *d = data;
    for (size_t k = 0; k < count; k++) {
        if (k) *p++ = ',';
        switch (t) {
        case KSERVE_FP32: {
            float f;
            memcpy(&f, d + 4 * k, 4);
            p += isfinite(f) ? json_fmt_f32(p, f) : fmt_nonfinite(p, f);
            break;
        }
        case KSERVE_FP64: {
            double v;
            memcpy(&v, d + 8 * k, 8);
            p += isfinite(v) ? json_fmt_f64(p, v) : fmt_nonfinite(p, v);
            break;
        }
        case KSERVE_BOOL: p += sprintf(p, "%s", d[k] ? "true" : "false"); break;
        case KSERVE_INT8: p += sprintf(p, "%d", ((const int8_t *)d)[k]); break;
        case KSERVE_UINT8: p += sprintf(p, "%u", ((const uint8_t *)d)[k]); break;
        case KSERVE_INT32: {
            int32_t v;
            memcpy(&v, d + 4 * k, 4);
            p += sprintf(p, "%d", v);
            break;
        }
        case KSERVE_INT64: {
            int64_t v;
            memcpy(&v, d + 8 * k, 8);
            p += sprintf(p, "%lld", (long long)v);
            break;
        }
        default: p += sprintf(p, "null"); break;
        }
    }
    *p++ = ']';
    b->len = (size_t)(p - b->data);
    b->data[b->len] = '\0';
    return 0;
}

static int want_class(const kserve_request *req, const char *name)
{
    for (int o = 0; o < req->n_outputs; o++)
        if (!strcmp(req->outputs[o].name, name)) return req->outputs[o].classification;
    return 0;
}

static double elem(kserve_dtype t, const void *data, size_t k)
{
    const char *d = data;
    switch (t) {
    case KSERVE_FP32: {
        float f;
        memcpy(&f, d + 4 * k, 4);
        return f;
    }
    case KSERVE_FP64: {
        double v;
        memcpy(&v, d + 8 * k, 8);
        return v;
    }
    case KSERVE_INT8: return ((const int8_t *)d)[k];
    case KSERVE_UINT8: return ((const uint8_t *)d)[k];
    case KSERVE_INT16:
        return (double)(int16_t)((uint16_t)(uint8_t)d[2 * k] | (uint16_t)(uint8_t)d[2 * k + 1]
                                                                   << 8);
    case KSERVE_INT32: {
        int32_t v;
        memcpy(&v, d + 4 * k, 4);
        return v;
    }
    case KSERVE_INT64: {
        int64_t v;
        memcpy(&v, d + 8 * k, 8);
        return (double)v;
    }
    default: return NAN;
    }
}

/*
 * Triton's classification: for each row, the top k elements as "score:index"
 * or "score:index:label", serialized as BYTES (4-byte little-endian length,
 * then the string). NaN scores rank last. Sets *rows and *k (capped at the
 * row length). 0 or -ENOMEM.
 */
static int classify_result(buf *out, const kserve_result *r, int want, int64_t *rows, int *k)
{
    int64_t nrows = r->rank >= 2 ? r->shape[0] : 1;
    size_t per = nrows > 0 ? r->count / (size_t)nrows : 0;
    *rows = nrows;
    *k = (size_t)want < per ? want : (int)per;
    unsigned char *taken = calloc(per ? per : 1, 1);
    if (!taken) return -ENOMEM;
    int rc = 0;
    for (int64_t row = 0; row < nrows && !rc; row++) {
        memset(taken, 0, per ? per : 1);
        for (int j = 0; j < *k && !rc; j++) {
            size_t best = per;
            double bv = 0;
            for (size_t i = 0; i < per; i++) {
                if (taken[i]) continue;
                double v = elem(r->dtype, r->data, (size_t)row * per + i);
                if (best == per || (isnan(bv) && !isnan(v)) || v > bv) best = i, bv = v;
            }
            taken[best] = 1;
            char s[64];
            if (!isfinite(bv))
                snprintf(s, sizeof(s), "%s", isnan(bv) ? "NaN" : bv > 0 ? "Infinity" : "-Infinity");
            else if (r->dtype == KSERVE_FP32)
                json_fmt_f32(s, (float)bv);
            else if (r->dtype == KSERVE_FP64)
                json_fmt_f64(s, bv);
            else
                snprintf(s, sizeof(s), "%.0f", bv);
            size_t at = out->len;
            rc = buf_append(out, "\0\0\0\0", 4);
            if (!rc) rc = buf_printf(out, "%s:%zu", s, best);
            if (!rc && (int64_t)best < r->n_labels && r->labels && r->labels[best])
                rc = buf_printf(out, ":%s", r->labels[best]);
            if (!rc) {
                uint32_t n = (uint32_t)(out->len - at - 4);
                unsigned char le[4] = {(unsigned char)n, (unsigned char)(n >> 8),
                                       (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
                memcpy(out->data + at, le, 4);
            }
        }
    }
    free(taken);
    return rc;
}

/* Writes serialized BYTES elements as a JSON array of strings. */
static int write_bytes_json(buf *b, const buf *ser)
{
    int rc = buf_puts(b, "[");
    for (size_t off = 0; off + 4 <= ser->len && !rc;) {
        const unsigned char *p = (const unsigned char *)ser->data + off;
        size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        if (off) rc = buf_puts(b, ",");
        if (!rc) rc = buf_json_str(b, (const char *)p + 4, n);
        off += 4 + n;
    }
    return rc ? rc : buf_puts(b, "]");
}

static bool want_binary(const kserve_request *req, const char *name)
{
    for (int o = 0; o < req->n_outputs; o++)
        if (!strcmp(req->outputs[o].name, name))
            return req->outputs[o].binary < 0 ? req->binary_output : req->outputs[o].binary;
    return req->binary_output;
}

/* The results to send, in the order the request named them (all when none). */
static int select_results(const kserve_request *req, const kserve_result *res, int n_res,
                          const kserve_result **sel)
{
    if (req->n_outputs == 0) {
        for (int i = 0; i < n_res; i++) sel[i] = &res[i];
        return n_res;
    }
    int n = 0;
    for (int o = 0; o < req->n_outputs; o++)
        for (int i = 0; i < n_res; i++)
            if (!strcmp(req->outputs[o].name, res[i].name)) sel[n++] = &res[i];
    return n;
}

int kserve_response_write(buf *out, size_t *json_len, const char *model, const kserve_request *req,
                          const kserve_result *res, int n_res)
{
    const kserve_result *sel[KSERVE_MAX_TENSORS];
    buf cls[KSERVE_MAX_TENSORS]; /* classification strings, serialized as BYTES */
    if (n_res > KSERVE_MAX_TENSORS) n_res = KSERVE_MAX_TENSORS;
    int n = select_results(req, res, n_res, sel);
    for (int i = 0; i < n; i++) cls[i] = (buf)BUF_INIT;
    size_t start = out->len;
    bool any_bin = false;
    int rc = buf_puts(out, "{\"model_name\":");
    if (!rc) rc = buf_json_str(out, model, strlen(model));
    if (!rc) rc = buf_puts(out, ",\"model_version\":\"1\"");
    if (!rc && req->has_id) {
        rc = buf_puts(out, ",\"id\":");
        if (!rc) rc = buf_json_str(out, req->id, strlen(req->id));
    }
    if (!rc) rc = buf_puts(out, ",\"outputs\":[");
    for (int i = 0; i < n && !rc; i++) {
        const kserve_result *r = sel[i];
        int want = want_class(req, r->name), k = 0;
        int64_t rows = 0;
        if (want) rc = classify_result(&cls[i], r, want, &rows, &k);
        if (!rc) rc = buf_printf(out, "%s{\"name\":", i ? "," : "");
        if (!rc) rc = buf_json_str(out, r->name, strlen(r->name));
        if (!rc && want) {
            int64_t shape[2] = {rows, k};
            rc = buf_puts(out, ",\"datatype\":\"BYTES\",\"shape\":");
            if (!rc)
                rc = r->rank >= 2 ? write_shape(out, shape, 2) : write_shape(out, shape + 1, 1);
        } else if (!rc) {
            rc = buf_printf(out, ",\"datatype\":\"%s\",\"shape\":", kserve_dtype_name(r->dtype));
            if (!rc) rc = write_shape(out, r->shape, r->rank);
        }
        if (rc) break;
        if (want_binary(req, r->name)) {
            any_bin = true;
            rc = buf_printf(out, ",\"parameters\":{\"binary_data_size\":%zu}}",
                            want ? cls[i].len : r->count * kserve_dtype_size(r->dtype));
        } else {
            rc = buf_puts(out, ",\"data\":");
            if (!rc)
                rc = want ? write_bytes_json(out, &cls[i])
                          : write_data(out, r->dtype, r->data, r->count);
            if (!rc) rc = buf_puts(out, "}");
        }
    }
    if (!rc) rc = buf_puts(out, "]}");
    *json_len = any_bin ? out->len - start : 0;
    for (int i = 0; i < n && !rc && any_bin; i++) {
        if (!want_binary(req, sel[i]->name)) continue;
        if (want_class(req, sel[i]->name))
            rc = buf_append(out, cls[i].data, cls[i].len);
        else
            rc = buf_append(out, sel[i]->data, sel[i]->count * kserve_dtype_size(sel[i]->dtype));
    }
    for (int i = 0; i < n; i++) buf_free(&cls[i]);
    return rc;
}

int kserve_error_write(buf *out, const char *msg)
{
    int rc = buf_puts(out, "{\"error\":");
    if (!rc) rc = buf_json_str(out, msg, strlen(msg));
    return rc ? rc : buf_puts(out, "}");
}

static int write_ios(buf *out, const kserve_io *io, int n)
{
    int rc = buf_puts(out, "[");
    for (int i = 0; i < n && !rc; i++) {
        rc = buf_printf(out, "%s{\"name\":", i ? "," : "");
        if (!rc) rc = buf_json_str(out, io[i].name, strlen(io[i].name));
        if (!rc)
            rc = buf_printf(out, ",\"datatype\":\"%s\",\"shape\":", kserve_dtype_name(io[i].dtype));
        if (!rc) rc = write_shape(out, io[i].shape, io[i].rank);
        if (!rc) rc = buf_puts(out, "}");
    }
    return rc ? rc : buf_puts(out, "]");
}

int kserve_metadata_write(buf *out, const char *model, const kserve_io *in, int n_in,
                          const kserve_io *outs, int n_out)
{
    int rc = buf_puts(out, "{\"name\":");
    if (!rc) rc = buf_json_str(out, model, strlen(model));
    if (!rc) rc = buf_puts(out, ",\"versions\":[\"1\"],\"platform\":\"onnx_onnxv1\",\"inputs\":");
    if (!rc) rc = write_ios(out, in, n_in);
    if (!rc) rc = buf_puts(out, ",\"outputs\":");
    if (!rc) rc = write_ios(out, outs, n_out);
    return rc ? rc : buf_puts(out, "}");
}
