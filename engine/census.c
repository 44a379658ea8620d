/* census: the op types of a model file that the engine does not run, counted.
 * The loader stops at the first one (it has to: the graph cannot be built);
 * this walks the whole file, subgraphs included, so a user sees everything a
 * model needs in one go. It only parses: nothing is built or allocated beyond
 * protobuf-c's own unpacking. */
#include "engine/generated/onnx.pb-c.h"
#include "engine/graph.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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

static void walk(census *c, const Onnx__GraphProto *g)
{
    if (!g || ++c->depth > 32) return; /* nesting beyond any real model */
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        const char *op = n->op_type ? n->op_type : "";
        int foreign = n->domain && *n->domain && strcmp(n->domain, "ai.onnx");
        if (foreign || eg_op_lookup(op) == EG_OP_COUNT) note(c, n->domain, op);
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
