/* census: the op types of a model file that the engine does not run, counted.
 * The loader stops at the first one (it has to: the graph cannot be built);
 * this walks the whole file, subgraphs included, so a user sees everything a
 * model needs in one go. It only parses: nothing is built or allocated beyond
 * protobuf-c's own unpacking. */
#include "engine/generated/onnx.pb-c.h"
#include "engine/model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct census {
    char (*names)[ENG_OPNAME_LEN];
    int *counts;
    int cap, n;
    int more; /* a distinct op did not fit in cap */
    int depth;
} census;

static void note(census *c, const char *domain, const char *op)
{
    char name[ENG_OPNAME_LEN];
    if (domain && *domain && strcmp(domain, "ai.onnx"))
        snprintf(name, sizeof(name), "%s:%s", domain, op);
    else
        snprintf(name, sizeof(name), "%s", op);
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->names[i], name)) {
            c->counts[i]++;
            return;
        }
    if (c->n == c->cap) {
        c->more = 1;
        return;
    }
    memcpy(c->names[c->n], name, sizeof(name));
    c->counts[c->n++] = 1;
}

/* Whether the loader has a kernel for this node: ai.onnx ops by name, and
 * ai.onnx.ml ops spelled "ai.onnx.ml:Op" (as onnx.c looks them up). */
static int runs(const Onnx__NodeProto *n)
{
    const char *op = n->op_type ? n->op_type : "";
    if (n->domain && !strcmp(n->domain, "ai.onnx.ml")) {
        char ml[ENG_OPNAME_LEN + 16];
        snprintf(ml, sizeof(ml), "ai.onnx.ml:%s", op);
        return eg_op_lookup(ml) != EG_OP_COUNT;
    }
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) return 0;
    return eg_op_lookup(op) != EG_OP_COUNT;
}

static void walk(census *c, const Onnx__GraphProto *g)
{
    if (!g || ++c->depth > 32) return; /* nesting beyond any real model */
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        const char *op = n->op_type ? n->op_type : "";
        if (!runs(n)) note(c, n->domain, op);
        for (size_t a = 0; a < n->n_attribute; a++) {
            const Onnx__AttributeProto *at = n->attribute[a];
            walk(c, at->g);
            for (size_t k = 0; k < at->n_graphs; k++) walk(c, at->graphs[k]);
        }
    }
    c->depth--;
}

int eng_model_unsupported_ops(const void *data, size_t len, char (*names)[ENG_OPNAME_LEN],
                              int *counts, int cap, char *err, size_t errlen)
{
    if (!data || cap < 0 || (cap && (!names || !counts)))
        return eg_err(err, errlen, ENG_EINVAL, "bad arguments");
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, data);
    if (!mp) return eg_err(err, errlen, ENG_EFORMAT, "not a valid ONNX model");
    census c = {names, counts, cap, 0, 0, 0};
    walk(&c, mp->graph);
    onnx__model_proto__free_unpacked(mp, NULL);
    return c.n + c.more;
}

int eng_model_file_unsupported_ops(const char *path, char (*names)[ENG_OPNAME_LEN], int *counts,
                                   int cap, char *err, size_t errlen)
{
    if (!path) return eg_err(err, errlen, ENG_EINVAL, "no model path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size == 0) {
        int rc = eg_err(err, errlen, ENG_EIO, "%s: %s", path,
                        fd < 0 ? strerror(errno) : "not a regular, non-empty file");
        if (fd >= 0) close(fd);
        return rc;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return eg_err(err, errlen, ENG_EIO, "%s: mmap: %s", path, strerror(errno));
    char inner[ENG_ERRLEN] = "";
    int rc = eng_model_unsupported_ops(map, (size_t)st.st_size, names, counts, cap, inner,
                                       sizeof(inner));
    munmap(map, (size_t)st.st_size);
    if (rc < 0) eg_err(err, errlen, -rc, "%s: %s", path, inner);
    return rc;
}

/* Plans the loaded model at batch 1 (dynamic dims probed at 1) and counts its
 * steps per (op, kernel). */
static int plan_kernels(const eng_model *m, eng_op_kernel *out, int cap, char *err, size_t errlen)
{
    int nin = eng_model_num_inputs(m);
    int64_t dims[64][ENG_MAX_RANK];
    const int64_t *shapes[64];
    if (nin > 64) return eg_err(err, errlen, ENG_EUNSUPPORTED, "more than 64 inputs");
    for (int i = 0; i < nin; i++) {
        eng_tensor_info t;
        eng_model_input(m, i, &t);
        for (int d = 0; d < t.rank; d++) dims[i][d] = t.shape[d] < 0 ? 1 : t.shape[d];
        shapes[i] = dims[i];
    }
    ep_plan *p = m->dynamic ? ep_plan_build_shapes(m, shapes, 1, err, errlen)
                            : ep_plan_build(m, 1, 1, err, errlen);
    if (!p) return -ENG_ESHAPE;
    int n = ep_plan_kernels(p, out, 0, cap);
    ep_plan_free(p);
    return n;
}

/* Rewrites each top-level unsupported node of mp into an Identity of its first
 * input (one output, no attributes), remembering what it changed in saved[] so
 * the caller restores the message before protobuf-c frees it. */
typedef struct standin {
    Onnx__NodeProto *n;
    char *op, *domain, *name;
    size_t n_attribute, n_output;
} standin;

static int stand_in(Onnx__GraphProto *g, standin *saved, int cap, char names[][ENG_OPNAME_LEN])
{
    int k = 0;
    for (size_t i = 0; g && i < g->n_node && k < cap; i++) {
        Onnx__NodeProto *n = g->node[i];
        if (runs(n)) continue;
        if (n->n_input < 1 || n->n_output < 1) continue; /* the load will fail: census only */
        saved[k] = (standin){n, n->op_type, n->domain, n->name, n->n_attribute, n->n_output};
        snprintf(names[k], ENG_OPNAME_LEN, EP_STANDIN "%d", k);
        n->op_type = (char *)"Identity";
        n->domain = (char *)"";
        n->name = names[k];
        n->n_attribute = 0;
        n->n_output = 1;
        k++;
    }
    return k;
}

static void restore(standin *saved, int k)
{
    for (int i = 0; i < k; i++) {
        standin *s = &saved[i];
        s->n->op_type = s->op, s->n->domain = s->domain, s->n->name = s->name;
        s->n->n_attribute = s->n_attribute, s->n->n_output = s->n_output;
    }
}

int eng_model_file_kernels(const char *path, const eng_load_opts *opts, eng_op_kernel *out, int cap,
                           char *err, size_t errlen)
{
    if (!path || cap < 0 || (cap && !out)) return eg_err(err, errlen, ENG_EINVAL, "bad arguments");
    char(*names)[ENG_OPNAME_LEN] = calloc(256, ENG_OPNAME_LEN);
    int *counts = calloc(256, sizeof(int));
    if (!names || !counts) {
        free(names), free(counts);
        return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    }
    int nu = eng_model_file_unsupported_ops(path, names, counts, 256, err, errlen);
    if (nu < 0) {
        free(names), free(counts);
        return nu;
    }
    if (nu > 256) nu = 256;
    int n = 0;
    char inner[ENG_ERRLEN];
    if (!nu) {
        eng_model *m = eng_model_load_file(path, opts, err, errlen);
        if (m)
            n = plan_kernels(m, out, cap, err, errlen);
        else
            n = -ENG_EUNSUPPORTED;
        eng_model_free(m);
    } else { /* plan the rest around Identity stand-ins, best effort */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        void *map = MAP_FAILED;
        if (fd >= 0 && !fstat(fd, &st) && st.st_size > 0)
            map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (fd >= 0) close(fd);
        Onnx__ModelProto *mp =
            map != MAP_FAILED ? onnx__model_proto__unpack(NULL, (size_t)st.st_size, map) : NULL;
        if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
        standin saved[256];
        char sn[256][ENG_OPNAME_LEN];
        int k = mp ? stand_in(mp->graph, saved, 256, sn) : 0;
        size_t len = mp ? onnx__model_proto__get_packed_size(mp) : 0;
        uint8_t *buf = len ? malloc(len) : NULL;
        if (buf) onnx__model_proto__pack(mp, buf);
        restore(saved, k);
        if (mp) onnx__model_proto__free_unpacked(mp, NULL);
        eng_model *m = buf ? eng_model_load_memory(buf, len, opts, inner, sizeof(inner)) : NULL;
        free(buf);
        if (m) n = plan_kernels(m, out, cap, inner, sizeof(inner));
        eng_model_free(m);
        if (n < 0) n = 0;
    }
    for (int i = 0; n >= 0 && i < nu && n < cap; i++) {
        snprintf(out[n].op, sizeof(out[n].op), "%s", names[i]);
        out[n].kernel = "unsupported";
        out[n++].count = counts[i];
    }
    free(names), free(counts);
    return n;
}
