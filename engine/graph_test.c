/* Unit tests of the loader and graph passes on small models built here with
 * protobuf-c: fusion and folding keep results, unsupported ops are named,
 * malformed graphs are rejected with the offending name. */
#include "engine/engine.h"
#include "engine/generated/onnx.pb-c.h"
#include "engine/graph.h"
#include "engine/kernels.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A tiny model builder: every string and array lives in static storage of
 * the test, so nothing needs freeing except the packed bytes. */
typedef struct mb {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset, *opsets[1];
    Onnx__NodeProto nodes[16], *pnodes[16];
    Onnx__TensorProto inits[16], *pinits[16];
    Onnx__ValueInfoProto vis[4], *pins[2], *pouts[2];
    Onnx__TypeProto types[4];
    Onnx__TypeProto__Tensor ttypes[4];
    Onnx__TensorShapeProto shapes[4];
    Onnx__TensorShapeProto__Dimension dims[4][8], *pdims[4][8];
    Onnx__AttributeProto attrs[32], *pattrs[16][4];
    int nattrs;
} mb;

static void mb_init(mb *b, int opset)
{
    memset(b, 0, sizeof(*b));
    onnx__model_proto__init(&b->model);
    onnx__graph_proto__init(&b->graph);
    onnx__operator_set_id_proto__init(&b->opset);
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = opset;
    b->opsets[0] = &b->opset;
    b->model.n_opset_import = 1;
    b->model.opset_import = b->opsets;
    b->model.has_ir_version = 1;
    b->model.ir_version = 8;
    b->model.graph = &b->graph;
    b->graph.node = b->pnodes;
    b->graph.initializer = b->pinits;
    b->graph.input = b->pins;
    b->graph.output = b->pouts;
}

static void mb_io(mb *b, int is_input, char *name, int rank, const int64_t *shape)
{
    int k = (int)(b->graph.n_input + b->graph.n_output);
    Onnx__ValueInfoProto *v = &b->vis[k];
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(&b->types[k]);
    onnx__type_proto__tensor__init(&b->ttypes[k]);
    onnx__tensor_shape_proto__init(&b->shapes[k]);
    for (int d = 0; d < rank; d++) {
        onnx__tensor_shape_proto__dimension__init(&b->dims[k][d]);
        if (shape[d] >= 0) {
            b->dims[k][d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            b->dims[k][d].dim_value = shape[d];
        } else {
            b->dims[k][d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            b->dims[k][d].dim_param = "N";
        }
        b->pdims[k][d] = &b->dims[k][d];
    }
    b->shapes[k].n_dim = (size_t)rank;
    b->shapes[k].dim = b->pdims[k];
    b->ttypes[k].has_elem_type = 1;
    b->ttypes[k].elem_type = 1;
    b->ttypes[k].shape = &b->shapes[k];
    b->types[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    b->types[k].tensor_type = &b->ttypes[k];
    v->name = name;
    v->type = &b->types[k];
    if (is_input)
        b->pins[b->graph.n_input++] = v;
    else
        b->pouts[b->graph.n_output++] = v;
}

static void mb_init_f(mb *b, char *name, int rank, int64_t *dims, float *data, size_t n)
{
    Onnx__TensorProto *t = &b->inits[b->graph.n_initializer];
    onnx__tensor_proto__init(t);
    t->name = name;
    t->n_dims = (size_t)rank;
    t->dims = dims;
    t->has_data_type = 1;
    t->data_type = 1;
    t->n_float_data = n;
    t->float_data = data;
    b->pinits[b->graph.n_initializer++] = t;
}

static Onnx__NodeProto *mb_node(mb *b, char *op, char *name, char **in, int nin, char **out)
{
    Onnx__NodeProto *n = &b->nodes[b->graph.n_node];
    onnx__node_proto__init(n);
    n->op_type = op;
    n->name = name;
    n->n_input = (size_t)nin;
    n->input = in;
    n->n_output = 1;
    n->output = out;
    n->attribute = b->pattrs[b->graph.n_node];
    b->pnodes[b->graph.n_node++] = n;
    return n;
}

static void mb_attr_ints(mb *b, Onnx__NodeProto *n, char *name, int64_t *v, int cnt)
{
    Onnx__AttributeProto *a = &b->attrs[b->nattrs++];
    onnx__attribute_proto__init(a);
    a->name = name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)cnt;
    a->ints = v;
    n->attribute[n->n_attribute++] = a;
}

static void *mb_pack(mb *b, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(&b->model);
    void *buf = malloc(*len);
    onnx__model_proto__pack(&b->model, buf);
    return buf;
}

/* X[N,2,4,4] -> Conv(3x3, pad 1) -> BatchNorm -> Relu -> Add(X-conv'd residual) -> Clip(0,6) */
static float W[4 * 2 * 9], B[4], SC[4], BI[4], MU[4], VA[4], W2[4 * 4], MN[1] = {0}, MX[1] = {6};
static void *build_block(size_t *len)
{
    static mb b;
    mb_init(&b, 13);
    for (int i = 0; i < 72; i++) W[i] = sinf((float)i) * 0.5f;
    for (int i = 0; i < 16; i++) W2[i] = cosf((float)i) * 0.4f;
    for (int i = 0; i < 4; i++) {
        B[i] = 0.1f * i, SC[i] = 1.0f + 0.2f * i, BI[i] = -0.1f * i, MU[i] = 0.05f * i;
        VA[i] = 0.5f + 0.25f * i;
    }
    static int64_t wd[] = {4, 2, 3, 3}, w2d[] = {4, 4, 1, 1}, cd[] = {4}, sd[] = {1};
    static int64_t xs[] = {-1, 2, 4, 4}, ys[] = {-1, 4, 4, 4}, pads[] = {1, 1, 1, 1};
    mb_io(&b, 1, "X", 4, xs);
    mb_io(&b, 0, "Y", 4, ys);
    mb_init_f(&b, "W", 4, wd, W, 72);
    mb_init_f(&b, "B", 1, cd, B, 4);
    mb_init_f(&b, "sc", 1, cd, SC, 4);
    mb_init_f(&b, "bi", 1, cd, BI, 4);
    mb_init_f(&b, "mu", 1, cd, MU, 4);
    mb_init_f(&b, "va", 1, cd, VA, 4);
    mb_init_f(&b, "W2", 4, w2d, W2, 16);
    mb_init_f(&b, "mn", 0, sd, MN, 1);
    mb_init_f(&b, "mx", 0, sd, MX, 1);
    static char *i0[] = {"X", "W", "B"}, *o0[] = {"c"};
    static char *i1[] = {"c", "sc", "bi", "mu", "va"}, *o1[] = {"bn"};
    static char *i2[] = {"bn"}, *o2[] = {"r"};
    static char *i3[] = {"r", "W2"}, *o3[] = {"c2"};
    static char *i4[] = {"c2", "r"}, *o4[] = {"s"};
    static char *i5[] = {"s", "mn", "mx"}, *o5[] = {"Y"};
    mb_attr_ints(&b, mb_node(&b, "Conv", "conv", i0, 3, o0), "pads", pads, 4);
    mb_node(&b, "BatchNormalization", "bn", i1, 5, o1);
    mb_node(&b, "Relu", "relu", i2, 1, o2);
    mb_node(&b, "Conv", "conv2", i3, 2, o3);
    mb_node(&b, "Add", "add", i4, 2, o4);
    mb_node(&b, "Clip", "clip", i5, 3, o5);
    return mb_pack(&b, len);
}

static void run_block(const void *buf, size_t len, const eng_load_opts *o, float *y, char *desc)
{
    char err[ENG_ERRLEN];
    eng_model *m = eng_model_load_memory(buf, len, o, err, sizeof(err));
    cr_assert_not_null(m, "%s", err);
    eng_ctx_opts co = {.threads = 1, .max_batch = 2};
    eng_ctx *c = eng_ctx_create(m, &co, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    float x[2 * 32];
    for (int i = 0; i < 64; i++) x[i] = cosf(i * 0.37f) * 2.0f;
    const void *in[1] = {x};
    void *out[1] = {y};
    cr_assert_eq(eng_ctx_run(c, 2, in, out), 0, "%s", eng_ctx_error(c));
    if (desc) eng_ctx_describe(c, 2, desc, 4096);
    eng_ctx_free(c);
    eng_model_free(m);
}

Test(graph, batchnorm_folding_and_fusion_keep_results)
{
    size_t len;
    void *buf = build_block(&len);
    float plain[128], fused[128], ref[128];
    static char desc[4096];
    eng_load_opts raw = {.reference_only = 1, .no_graph_passes = 1};
    eng_load_opts fast = {0}, ref_fused = {.reference_only = 1};
    run_block(buf, len, &raw, plain, NULL);
    run_block(buf, len, &ref_fused, ref, NULL);
    run_block(buf, len, &fast, fused, desc);
    for (int i = 0; i < 128; i++) {
        cr_expect_float_eq(ref[i], plain[i], 1e-5f, "reference, fused vs unfused at %d", i);
        cr_expect_float_eq(fused[i], plain[i], 1e-5f, "oneDNN vs reference at %d", i);
    }
    /* BN, Relu, Add and Clip were absorbed: only the two convs remain */
    cr_expect_null(strstr(desc, "BatchNormalization"), "%s", desc);
    cr_expect_null(strstr(desc, "Relu"), "%s", desc);
    cr_expect_null(strstr(desc, "Add"), "%s", desc);
    cr_expect_null(strstr(desc, "Clip"), "%s", desc);
    cr_expect_neq(strstr(desc, "conv2 Conv: onednn"), NULL, "%s", desc);
    free(buf);
}

Test(graph, unsupported_op_error_names_op_and_node)
{
    static mb b;
    mb_init(&b, 13);
    static int64_t xs[] = {1, 4};
    mb_io(&b, 1, "X", 2, xs);
    mb_io(&b, 0, "Y", 2, xs);
    static char *i0[] = {"X"}, *o0[] = {"Y"};
    mb_node(&b, "FancyOp", "my_fancy_node", i0, 1, o0);
    size_t len;
    void *buf = mb_pack(&b, &len);
    char err[ENG_ERRLEN];
    cr_expect_null(eng_model_load_memory(buf, len, NULL, err, sizeof(err)));
    cr_expect_neq(strstr(err, "FancyOp"), NULL, "%s", err);
    cr_expect_neq(strstr(err, "my_fancy_node"), NULL, "%s", err);
    free(buf);
}

Test(graph, undefined_input_and_bad_weights_are_named)
{
    static mb b;
    mb_init(&b, 13);
    static int64_t xs[] = {1, 2, 4, 4}, wd[] = {4, 2, 3, 3};
    static float w[10];
    mb_io(&b, 1, "X", 4, xs);
    mb_io(&b, 0, "Y", 4, xs);
    mb_init_f(&b, "W", 4, wd, w, 10); /* 10 floats for 72 elements */
    static char *i0[] = {"X", "W"}, *o0[] = {"Y"};
    mb_node(&b, "Conv", "conv", i0, 2, o0);
    size_t len;
    void *buf = mb_pack(&b, &len);
    char err[ENG_ERRLEN];
    cr_expect_null(eng_model_load_memory(buf, len, NULL, err, sizeof(err)));
    cr_expect_neq(strstr(err, "'W'"), NULL, "%s", err);
    free(buf);
    static char *i1[] = {"X", "nowhere"};
    b.nodes[0].input = i1;
    b.inits[0].n_float_data = 72;
    static float w72[72];
    b.inits[0].float_data = w72;
    buf = mb_pack(&b, &len);
    cr_expect_null(eng_model_load_memory(buf, len, NULL, err, sizeof(err)));
    cr_expect_neq(strstr(err, "nowhere"), NULL, "%s", err);
    free(buf);
}

Test(graph, omitted_required_inputs_and_outputs_are_named)
{
    /* "" marks an omitted optional input in ONNX; on a required one (found by
     * the loader's fuzzer) the load must fail instead of a kernel reading it */
    static mb b;
    mb_init(&b, 13);
    static int64_t xs[] = {2, 3};
    mb_io(&b, 1, "X", 2, xs);
    mb_io(&b, 0, "Y", 2, xs);
    static char *i0[] = {""}, *o0[] = {"Y"};
    mb_node(&b, "Transpose", "tr", i0, 1, o0);
    size_t len;
    void *buf = mb_pack(&b, &len);
    char err[ENG_ERRLEN];
    cr_expect_null(eng_model_load_memory(buf, len, NULL, err, sizeof(err)));
    cr_expect_neq(strstr(err, "'tr' (Transpose): required input 0"), NULL, "%s", err);
    free(buf);
    static char *i1[] = {"X", ""};
    b.nodes[0].op_type = "Add";
    b.nodes[0].input = i1;
    b.nodes[0].n_input = 2;
    buf = mb_pack(&b, &len);
    cr_expect_null(eng_model_load_memory(buf, len, NULL, err, sizeof(err)));
    cr_expect_neq(strstr(err, "required input 1"), NULL, "%s", err);
    free(buf);
    static char *i2[] = {"X", "X"}, *o2[] = {""};
    b.nodes[0].input = i2;
    b.nodes[0].output = o2;
    buf = mb_pack(&b, &len);
    cr_expect_null(eng_model_load_memory(buf, len, NULL, err, sizeof(err)));
    cr_expect_neq(strstr(err, "needs an output"), NULL, "%s", err);
    free(buf);
}

Test(graph, conv_channel_mismatch_is_a_shape_error)
{
    static mb b;
    mb_init(&b, 13);
    static int64_t xs[] = {1, 3, 4, 4}, wd[] = {4, 2, 3, 3};
    static float w[72];
    mb_io(&b, 1, "X", 4, xs);
    mb_io(&b, 0, "Y", 4, xs);
    mb_init_f(&b, "W", 4, wd, w, 72);
    static char *i0[] = {"X", "W"}, *o0[] = {"Y"};
    mb_node(&b, "Conv", "conv", i0, 2, o0);
    size_t len;
    void *buf = mb_pack(&b, &len);
    char err[ENG_ERRLEN];
    cr_expect_null(eng_model_load_memory(buf, len, NULL, err, sizeof(err)));
    cr_expect_neq(strstr(err, "conv"), NULL, "%s", err);
    cr_expect_neq(strstr(err, "channels"), NULL, "%s", err);
    free(buf);
}

Test(graph, every_op_has_shape_inference_and_a_reference_kernel)
{
    for (int op = 0; op < EG_OP_COUNT; op++) {
        if (op == EG_OP_CONSTANT) continue; /* folded into a value at load */
        const ek_op *k = ek_op_get((eg_op)op);
        cr_assert_not_null(k, "op %s has no kernel", eg_op_name((eg_op)op));
        cr_expect(k->infer && k->run, "op %s", eg_op_name((eg_op)op));
        cr_expect_eq(eg_op_lookup(eg_op_name((eg_op)op)), op);
    }
    cr_expect_eq(eg_op_lookup("NoSuchOp"), EG_OP_COUNT);
}

/* A model whose input has a dynamic sequence axis: runs take shapes, a few
 * plans are cached per context (more distinct shapes than slots still run
 * right), and bad shapes name the input. */
Test(graph, dynamic_sequence_axis_runs_through_the_shapes_api)
{
    static mb b;
    mb_init(&b, 13);
    static int64_t xs[] = {-1, -1, 4};
    mb_io(&b, 1, "X", 3, xs);
    mb_io(&b, 0, "Y", 3, xs);
    static char *i0[] = {"X"}, *o0[] = {"Y"};
    mb_node(&b, "Tanh", "tanh", i0, 1, o0);
    size_t len;
    void *buf = mb_pack(&b, &len);
    char err[ENG_ERRLEN];
    eng_model *m = eng_model_load_memory(buf, len, NULL, err, sizeof(err));
    cr_assert_not_null(m, "%s", err);
    cr_expect_eq(eng_model_dynamic(m), 1);
    eng_tensor_info ti;
    eng_model_output(m, 0, &ti);
    cr_expect(ti.shape[0] == -1 && ti.shape[1] == -1 && ti.shape[2] == 4 && ti.item_count == 0);
    eng_ctx *c = eng_ctx_create(m, NULL, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    static float x[2 * 40 * 4], y[2 * 40 * 4];
    const void *in[1] = {x};
    void *out[1] = {y};
    cr_expect_eq(eng_ctx_run(c, 1, in, out), -ENG_EINVAL);
    cr_expect_neq(strstr(eng_ctx_error(c), "shapes"), NULL, "%s", eng_ctx_error(c));
    for (int round = 0; round < 2; round++)
        for (int64_t s = 1; s <= 12; s++) { /* 12 shapes > the cache's slots */
            int64_t shape[3] = {2, s, 4}, od[ENG_MAX_RANK];
            const int64_t *shapes[1] = {shape};
            for (int i = 0; i < 2 * s * 4; i++) x[i] = (float)(i - 10 * round) / (float)(s + 3);
            cr_assert_eq(eng_ctx_plan_shapes(c, shapes, od), 0, "%s", eng_ctx_error(c));
            cr_expect(od[0] == 2 && od[1] == s && od[2] == 4);
            cr_assert_eq(eng_ctx_run_shapes(c, shapes, in, out), 0, "%s", eng_ctx_error(c));
            for (int i = 0; i < 2 * s * 4; i++) cr_expect_float_eq(y[i], tanhf(x[i]), 1e-6f);
        }
    int64_t bad[3] = {2, 5, 3}, huge[3] = {1, (int64_t)1 << 30, 4};
    const int64_t *sb[1] = {bad}, *sh[1] = {huge};
    cr_expect_eq(eng_ctx_run_shapes(c, sb, in, out), -ENG_ESHAPE);
    cr_expect_neq(strstr(eng_ctx_error(c), "input 'X': dimension 2 is 3"), NULL, "%s",
                  eng_ctx_error(c));
    cr_expect_eq(eng_ctx_run_shapes(c, sh, in, out), -ENG_ESHAPE);
    cr_expect_neq(strstr(eng_ctx_error(c), "input 'X': dimension 1"), NULL, "%s", eng_ctx_error(c));
    eng_ctx_free(c);
    eng_model_free(m);
    free(buf);
}

/* eg_alloc_big: from EG_BIG_MIN on, 2 MB aligned (huge-page advised), zeroed
 * and writable to the last byte; below it, or with AIINFER_HUGEPAGES=0, plain
 * eg_alloc (64-byte aligned); both freed with free(). */
Test(graph, big_buffers_are_2mb_aligned_zeroed_and_switchable)
{
    const size_t sizes[] = {64, EG_BIG_MIN - 4, EG_BIG_MIN, 3 * EG_BIG_MIN + 12345};
    unsetenv("AIINFER_HUGEPAGES");
    for (int off = 0; off < 2; off++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            unsigned char *p = eg_alloc_big(sizes[i]);
            cr_assert_not_null(p, "%zu bytes", sizes[i]);
            size_t align = sizes[i] >= EG_BIG_MIN && !off ? (size_t)2 << 20 : 64;
            cr_expect_eq((uintptr_t)p % align, 0, "%zu bytes: %p not %zu-aligned", sizes[i],
                         (void *)p, align);
            size_t nz = 0;
            for (size_t k = 0; k < sizes[i]; k++) nz += p[k] != 0;
            cr_expect_eq(nz, 0, "%zu bytes: %zu not zero", sizes[i], nz);
            memset(p, 0xab, sizes[i]);
            free(p);
        }
        setenv("AIINFER_HUGEPAGES", "0", 1);
    }
    unsetenv("AIINFER_HUGEPAGES");
    cr_expect_null(eg_alloc_big(EG_MAX_TENSOR_BYTES + 1));
}
