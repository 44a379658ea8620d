/* XNNPACK peer for bench/engine: runs a MobileNet-style network, exported
 * from ONNX by export.py into XNNPACK's weight layouts, through XNNPACK's
 * subgraph API (the API TFLite's delegate uses, so XNNPACK fuses the clamps
 * and picks its kernels itself), checks the output against a reference .npy
 * and times inferences. Output lines match what bench/engine/run.py parses.
 *
 *   xnn_bench MODEL.xnnw INPUT.npy EXPECTED.npy [--threads T] [--batch B]
 *             [--seconds S] [--nospin] [--tol X]
 *
 * Exit 0 when the output is within --tol (absolute, default 1e-3; the
 * logits are of order 10) of EXPECTED and the top-1 classes agree, 1 when
 * it is not, 2 on a usage or file error. Bench-only: not built by make all. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthreadpool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xnnpack.h>

enum { OP_CONV = 1, OP_CLAMP, OP_ADD, OP_GAP, OP_FC };

struct op {
    uint32_t r[20];
    float lo, hi;
    const float *w, *b;
};

struct net {
    uint32_t c, h, w, nvalues, nops;
    struct op *ops;
    float *blob; /* all weights; must outlive the runtime */
};

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "xnn_bench: %s: %s\n", what, detail);
    exit(2);
}

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) die(path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || n < 0 || fread(buf, 1, (size_t)n, f) != (size_t)n) die(path, "read failed");
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* A float32, C-order .npy; returns the element count. */
static float *read_npy(const char *path, size_t *count)
{
    size_t len;
    unsigned char *buf = read_file(path, &len);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6)) die(path, "not a .npy file");
    size_t hl = buf[8] | (size_t)buf[9] << 8, off = 10;
    if (buf[6] >= 2) {
        hl = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        off = 12;
    }
    if (off + hl > len) die(path, "truncated header");
    char *hdr = strndup((char *)buf + off, hl);
    if (!strstr(hdr, "'<f4'") || strstr(hdr, "'fortran_order': True"))
        die(path, "want float32 C-order");
    size_t n = 1;
    char *p = strstr(hdr, "'shape'");
    if (!p || !(p = strchr(p, '('))) die(path, "no shape in the header");
    for (p++; *p && *p != ')';) {
        char *e;
        unsigned long d = strtoul(p, &e, 10);
        if (e == p) {
            p++;
            continue;
        }
        n *= d;
        p = e;
    }
    free(hdr);
    if (off + hl + n * 4 > len) die(path, "truncated data");
    float *out = malloc(n * 4 + 4);
    memcpy(out, buf + off + hl, n * 4);
    free(buf);
    *count = n;
    return out;
}

static void load_net(const char *path, struct net *net)
{
    size_t len;
    char *buf = read_file(path, &len);
    if (len < 28 || memcmp(buf, "AIXNNW01", 8)) die(path, "not an export.py file");
    uint32_t hdr[5];
    memcpy(hdr, buf + 8, sizeof hdr);
    net->c = hdr[0], net->h = hdr[1], net->w = hdr[2];
    net->nvalues = hdr[3], net->nops = hdr[4];
    net->ops = calloc(net->nops, sizeof *net->ops);
    /* Copy the floats out so they are 4-byte aligned. */
    net->blob = malloc(len);
    float *fp = net->blob;
    size_t off = 28;
    for (uint32_t i = 0; i < net->nops; i++) {
        struct op *o = &net->ops[i];
        if (off + 88 > len) die(path, "truncated op");
        memcpy(o->r, buf + off, 80);
        off += 80;
        size_t nf = 2 + (size_t)o->r[17] + o->r[18];
        if (off + nf * 4 > len) die(path, "truncated weights");
        memcpy(fp, buf + off, nf * 4);
        off += nf * 4;
        o->lo = fp[0], o->hi = fp[1];
        o->w = fp + 2;
        o->b = fp + 2 + o->r[17];
        fp += nf;
    }
    free(buf);
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        enum xnn_status st_ = (call);                                                              \
        if (st_ != xnn_status_success) {                                                           \
            fprintf(stderr, "xnn_bench: %s failed (status %d)\n", #call, (int)st_);                \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

/* Defines every op of the network in a subgraph with batch n. */
static xnn_subgraph_t build(const struct net *net, size_t n)
{
    xnn_subgraph_t sg;
    CHECK(xnn_create_subgraph(2, 0, &sg));
    uint32_t *id = malloc(net->nvalues * sizeof *id);
    size_t(*shape)[4] = calloc(net->nvalues, sizeof *shape);
    uint32_t *rank = calloc(net->nvalues, sizeof *rank);
    for (uint32_t v = 0; v < net->nvalues; v++) id[v] = XNN_INVALID_VALUE_ID;
    size_t in_dims[4] = {n, net->h, net->w, net->c};
    CHECK(xnn_define_tensor_value(sg, xnn_datatype_fp32, 4, in_dims, NULL, 0,
                                  XNN_VALUE_FLAG_EXTERNAL_INPUT, &id[0]));
    memcpy(shape[0], in_dims, sizeof in_dims);
    rank[0] = 4;
    for (uint32_t i = 0; i < net->nops; i++) {
        const struct op *o = &net->ops[i];
        const uint32_t *r = o->r;
        uint32_t in0 = r[1], in1 = r[2], out = r[3];
        if (in0 >= net->nvalues || in1 >= net->nvalues || out >= net->nvalues ||
            id[in0] == XNN_INVALID_VALUE_ID)
            die("model", "bad value index");
        size_t dims[4];
        uint32_t nd = rank[in0];
        memcpy(dims, shape[in0], sizeof dims);
        if (r[0] == OP_CONV) {
            uint32_t kh = r[4], kw = r[5], sh = r[6], sw = r[7];
            uint32_t dh = r[12], dw = r[13];
            dims[1] = (dims[1] + r[8] + r[10] - dh * (kh - 1) - 1) / sh + 1;
            dims[2] = (dims[2] + r[9] + r[11] - dw * (kw - 1) - 1) / sw + 1;
            dims[3] = r[16];
        } else if (r[0] == OP_GAP) {
            dims[1] = dims[2] = 1;
        } else if (r[0] == OP_FC) {
            nd = 2;
            dims[1] = r[16];
        }
        uint32_t oflags = out == 1 ? XNN_VALUE_FLAG_EXTERNAL_OUTPUT : 0;
        CHECK(xnn_define_tensor_value(sg, xnn_datatype_fp32, nd, dims, NULL,
                                      out == 1 ? 1 : XNN_INVALID_VALUE_ID, oflags, &id[out]));
        memcpy(shape[out], dims, sizeof dims);
        rank[out] = nd;
        uint32_t wid = XNN_INVALID_VALUE_ID, bid = XNN_INVALID_VALUE_ID;
        if (r[0] == OP_CONV || r[0] == OP_FC) {
            size_t bd[1] = {r[18]}, wd[4];
            uint32_t wn;
            if (r[0] == OP_FC) {
                wn = 2, wd[0] = r[16], wd[1] = r[15];
            } else if (r[14] == 1) {
                wn = 4, wd[0] = r[16], wd[1] = r[4], wd[2] = r[5], wd[3] = r[15];
            } else {
                wn = 4, wd[0] = 1, wd[1] = r[4], wd[2] = r[5], wd[3] = r[16];
            }
            CHECK(xnn_define_tensor_value(sg, xnn_datatype_fp32, wn, wd, o->w, XNN_INVALID_VALUE_ID,
                                          0, &wid));
            CHECK(xnn_define_tensor_value(sg, xnn_datatype_fp32, 1, bd, o->b, XNN_INVALID_VALUE_ID,
                                          0, &bid));
        }
        switch (r[0]) {
        case OP_CONV:
            if (r[14] == 1)
                CHECK(xnn_define_convolution_2d(sg, r[8], r[11], r[10], r[9], r[4], r[5], r[6],
                                                r[7], r[12], r[13], 1, r[15], r[16], o->lo, o->hi,
                                                id[in0], wid, bid, id[out], 0));
            else if (r[14] == r[15])
                CHECK(xnn_define_depthwise_convolution_2d(
                    sg, r[8], r[11], r[10], r[9], r[4], r[5], r[6], r[7], r[12], r[13],
                    r[16] / r[15], r[15], o->lo, o->hi, id[in0], wid, bid, id[out], 0));
            else
                die("model", "grouped convolution");
            break;
        case OP_CLAMP: CHECK(xnn_define_clamp(sg, o->lo, o->hi, id[in0], id[out], 0)); break;
        case OP_ADD: CHECK(xnn_define_add2(sg, o->lo, o->hi, id[in0], id[in1], id[out], 0)); break;
        case OP_GAP:
            CHECK(xnn_define_global_average_pooling_2d(sg, o->lo, o->hi, id[in0], id[out], 0));
            break;
        case OP_FC:
            CHECK(xnn_define_fully_connected(sg, o->lo, o->hi, id[in0], wid, bid, id[out],
                                             XNN_FLAG_TENSORFLOW_RESHAPE_2D));
            break;
        default: die("model", "unknown op kind");
        }
    }
    if (id[1] == XNN_INVALID_VALUE_ID) die("model", "output never written");
    free(id);
    free(shape);
    free(rank);
    return sg;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: xnn_bench MODEL.xnnw INPUT.npy "
                        "EXPECTED.npy [--threads T] [--batch B] "
                        "[--seconds S] [--nospin] [--tol X]\n");
        return 2;
    }
    size_t threads = 1, batch = 1;
    double seconds = 2.0, tol = 1e-3;
    uint32_t rflags = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--nospin")) {
            rflags |= XNN_FLAG_YIELD_WORKERS;
            continue;
        }
        if (i + 1 >= argc) die(argv[i], "missing value");
        if (!strcmp(argv[i], "--threads"))
            threads = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--batch"))
            batch = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--tol"))
            tol = strtod(argv[++i], NULL);
        else
            die(argv[i], "unknown option");
    }
    if (threads < 1 || batch < 1 || threads > 256 || batch > 1024)
        die("options", "threads and batch must be 1..256 / 1..1024");

    struct net net;
    load_net(argv[1], &net);
    size_t nin, nexp;
    float *in_nchw = read_npy(argv[2], &nin);
    float *expect = read_npy(argv[3], &nexp);
    size_t plane = (size_t)net.h * net.w, per = plane * net.c;
    if (nin != per) die(argv[2], "input size does not match the model");

    /* NCHW reference input -> NHWC, repeated over the batch. */
    float *in = malloc(per * batch * sizeof *in + 64);
    for (size_t b = 0; b < batch; b++)
        for (size_t p = 0; p < plane; p++)
            for (size_t c = 0; c < net.c; c++) in[b * per + p * net.c + c] = in_nchw[c * plane + p];
    float *out = calloc(nexp * batch + 16, sizeof *out);

    CHECK(xnn_initialize(NULL));
    pthreadpool_t pool = threads > 1 ? pthreadpool_create(threads) : NULL;
    xnn_subgraph_t sg = build(&net, batch);
    xnn_runtime_t rt;
    CHECK(xnn_create_runtime_v2(sg, pool, rflags, &rt));
    struct xnn_external_value ext[2] = {{0, in}, {1, out}};
    CHECK(xnn_setup_runtime(rt, 2, ext));
    CHECK(xnn_invoke_runtime(rt));

    double maxdiff = 0;
    int agree = 1;
    for (size_t b = 0; b < batch; b++) {
        for (size_t i = 0; i < nexp; i++) {
            double d = fabs((double)out[b * nexp + i] - expect[i]);
            if (!(d <= maxdiff)) maxdiff = d; /* NaN sticks */
        }
        agree &= argmax(out + b * nexp, nexp) == argmax(expect, nexp);
    }
    int ok = maxdiff <= tol && agree;
    printf("check max_abs_diff %.3g tol %.3g top1 %s %s\n", maxdiff, tol,
           agree ? "agrees" : "DIFFERS", ok ? "ok" : "FAILED");

    if (seconds > 0) {
        size_t cap = 1 << 16, n = 0;
        double *lat = malloc(cap * sizeof *lat);
        double t_end = now() + seconds * 0.2; /* warm-up */
        while (now() < t_end) CHECK(xnn_invoke_runtime(rt));
        double t0 = now();
        t_end = t0 + seconds;
        double t;
        do {
            double s = now();
            CHECK(xnn_invoke_runtime(rt));
            t = now();
            if (n < cap) lat[n++] = t - s;
        } while (t < t_end);
        qsort(lat, n, sizeof *lat, cmp_double);
        printf("xnnpack threads %zu batch %zu: %zu runs in %.2f s\n", threads, batch, n, t - t0);
        printf("throughput %.1f inferences/s\n", n * batch / (t - t0));
        printf("latency p50 %.3f ms p99 %.3f ms\n", lat[n / 2] * 1e3,
               lat[(size_t)(n * 0.99)] * 1e3);
        free(lat);
    }
    xnn_delete_runtime(rt);
    xnn_delete_subgraph(sg);
    if (pool) pthreadpool_destroy(pool);
    xnn_deinitialize();
    free(in);
    free(out);
    free(in_nchw);
    free(expect);
    free(net.ops);
    free(net.blob);
    return ok ? 0 : 1;
}
