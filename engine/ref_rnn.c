/* ref_rnn: the ONNX recurrent ops RNN, GRU and LSTM: forward, reverse and
 * bidirectional, layout 0 ([seq, batch, ...]) and 1 (batch_first), initial
 * states, sequence_lens, clip, peepholes, linear_before_reset, and the
 * activations list with its alpha/beta.
 *
 * The state of one step lives in a stack buffer (or one malloc for very wide
 * layers, beyond 64 KiB of state); the gate products are plain dot products. */
#include "engine/kernels_util.h"

#include <math.h>
#include <stdlib.h>

enum {
    AF_SIGMOID,
    AF_TANH,
    AF_RELU,
    AF_AFFINE,
    AF_LEAKY,
    AF_THRESH,
    AF_STANH,
    AF_HSIG,
    AF_ELU,
    AF_SOFTSIGN,
    AF_SOFTPLUS
};

typedef struct rnn_act {
    int kind;
    float al, be;
} rnn_act;

typedef struct rnn_cfg {
    int gates; /* 1 RNN, 3 GRU, 4 LSTM */
    int dirs, layout, lbr, input_forget;
    int64_t H, I, S, B;
    float clip;
    rnn_act f[2][3]; /* per direction: f, g, h */
} rnn_cfg;

static int act_parse(const char *s, int *kind)
{
    static const char *const names[] = {
        "Sigmoid",    "Tanh",        "Relu", "Affine",   "LeakyRelu", "ThresholdedRelu",
        "ScaledTanh", "HardSigmoid", "Elu",  "Softsign", "Softplus"};
    for (int i = 0; i < 11; i++)
        if (!strcmp(s, names[i])) {
            *kind = i;
            return 0;
        }
    return -1;
}

static float act_apply(const rnn_act *a, float x)
{
    switch (a->kind) {
    case AF_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case AF_TANH: return tanhf(x);
    case AF_RELU: return x > 0 ? x : 0;
    case AF_AFFINE: return a->al * x + a->be;
    case AF_LEAKY: return x < 0 ? a->al * x : x;
    case AF_THRESH: return x > a->al ? x : 0;
    case AF_STANH: return a->al * tanhf(a->be * x);
    case AF_HSIG: return fmaxf(0.0f, fminf(1.0f, a->al * x + a->be));
    case AF_ELU: return x < 0 ? a->al * expm1f(x) : x;
    case AF_SOFTSIGN: return x / (1 + fabsf(x));
    default: return x > 20.0f ? x : log1pf(expf(x));
    }
}

static void act_defaults(int kind, float *al, float *be)
{
    *al = kind == AF_LEAKY ? 0.01f : kind == AF_HSIG ? 0.2f : 1.0f;
    *be = kind == AF_HSIG ? 0.5f : kind == AF_AFFINE ? 0.0f : 1.0f;
}

static int rnn_cfg_get(ek_args *a, rnn_cfg *c)
{
    const eg_node *n = a->node;
    const ek_view *x = a->in[0], *w = a->in[1], *r = a->in[2];
    memset(c, 0, sizeof(*c));
    c->gates = n->op == EG_OP_LSTM ? 4 : n->op == EG_OP_GRU ? 3 : 1;
    const char *dir = eg_attr_str(n, "direction", "forward");
    c->dirs = !strcmp(dir, "bidirectional") ? 2 : 1;
    if (strcmp(dir, "forward") && strcmp(dir, "reverse") && c->dirs == 1)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): bad direction '%s'", KNAME(a), KOP(a), dir);
    c->layout = (int)eg_attr_int(n, "layout", 0);
    c->lbr = (int)eg_attr_int(n, "linear_before_reset", 0);
    c->input_forget = (int)eg_attr_int(n, "input_forget", 0);
    const eg_attr *cl = eg_attr_find(n, "clip");
    c->clip = cl ? cl->f : 0;
    if (x->dtype != ENG_FLOAT || w->dtype != ENG_FLOAT || r->dtype != ENG_FLOAT || x->rank != 3 ||
        w->rank != 3 || r->rank != 3 || (c->layout != 0 && c->layout != 1))
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (%s): needs float rank-3 X, W, R and layout "
                     "0 or 1",
                     KNAME(a), KOP(a));
    c->S = x->dims[c->layout ? 1 : 0];
    c->B = x->dims[c->layout ? 0 : 1];
    c->I = x->dims[2];
    c->H = eg_attr_int(n, "hidden_size", r->dims[2]);
    int64_t GH = c->gates * c->H;
    if (c->H < 1 || w->dims[0] != c->dirs || w->dims[1] != GH || w->dims[2] != c->I ||
        r->dims[0] != c->dirs || r->dims[1] != GH || r->dims[2] != c->H)
        return KFAIL(a, ENG_ESHAPE,
                     "node '%s' (%s): W must be [%d, %lld, %lld] and R [%d, %lld, %lld]", KNAME(a),
                     KOP(a), c->dirs, (long long)GH, (long long)c->I, c->dirs, (long long)GH,
                     (long long)c->H);
    /* optional inputs: B, sequence_lens, initial_h, initial_c, P */
    const ek_view *b = a->nin > 3 ? a->in[3] : NULL, *sl = a->nin > 4 ? a->in[4] : NULL;
    if (b && (b->dtype != ENG_FLOAT || ek_numel(b) != c->dirs * 2 * GH))
        return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): B must have %lld floats", KNAME(a), KOP(a),
                     (long long)(c->dirs * 2 * GH));
    if (sl && (!ku_is_int(sl->dtype) || ek_numel(sl) != c->B))
        return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): sequence_lens must have %lld ints (the batch)",
                     KNAME(a), KOP(a), (long long)c->B);
    for (int k = 5; k < 7 && k < a->nin; k++) {
        const ek_view *h = a->in[k];
        if (!h) continue;
        if (k == 6 && c->gates != 4) break;
        if (h->dtype != ENG_FLOAT || ek_numel(h) != c->dirs * c->B * c->H)
            return KFAIL(a, ENG_ESHAPE,
                         "node '%s' (%s): initial state must have %d x %lld x %lld "
                         "floats",
                         KNAME(a), KOP(a), c->dirs, (long long)c->B, (long long)c->H);
    }
    if (c->gates == 4 && a->nin > 7 && a->in[7] &&
        (a->in[7]->dtype != ENG_FLOAT || ek_numel(a->in[7]) != c->dirs * 3 * c->H))
        return KFAIL(a, ENG_ESHAPE, "node '%s' (LSTM): P must have %lld floats", KNAME(a),
                     (long long)(c->dirs * 3 * c->H));
    /* activations */
    int per = c->gates == 4 ? 3 : c->gates == 3 ? 2 : 1;
    static const int def[3][3] = {{AF_TANH}, {AF_SIGMOID, AF_TANH}, {AF_SIGMOID, AF_TANH, AF_TANH}};
    const int *d = def[per - 1];
    const eg_attr *acts = eg_attr_find(n, "activations"), *al = eg_attr_find(n, "activation_alpha"),
                  *be = eg_attr_find(n, "activation_beta");
    if (acts && (acts->type != EG_ATTR_STRINGS || acts->n != per * c->dirs))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): activations must list %d names", KNAME(a),
                     KOP(a), per * c->dirs);
    int ia = 0, ib = 0;
    for (int dr = 0; dr < c->dirs; dr++)
        for (int k = 0; k < per; k++) {
            rnn_act *f = &c->f[dr][k];
            f->kind = d[k];
            if (acts && act_parse(acts->strs[dr * per + k], &f->kind))
                return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): activation '%s' not supported",
                             KNAME(a), KOP(a), acts->strs[dr * per + k]);
            act_defaults(f->kind, &f->al, &f->be);
            int takes_al = f->kind >= AF_AFFINE && f->kind <= AF_ELU,
                takes_be = f->kind == AF_AFFINE || f->kind == AF_STANH || f->kind == AF_HSIG;
            if (takes_al && al && al->type == EG_ATTR_FLOATS && ia < al->n)
                f->al = al->floats[ia++];
            if (takes_be && be && be->type == EG_ATTR_FLOATS && ib < be->n)
                f->be = be->floats[ib++];
        }
    return 0;
}

static int infer_rnn(ek_args *a)
{
    rnn_cfg c;
    int rc = rnn_cfg_get(a, &c);
    if (rc) return rc;
    if (a->out[0]) {
        int64_t y0[4] = {c.S, c.dirs, c.B, c.H}, y1[4] = {c.B, c.S, c.dirs, c.H};
        ku_shape(a->out[0], ENG_FLOAT, 4, c.layout ? y1 : y0);
    }
    for (int k = 1; k < a->nout && k < (c.gates == 4 ? 3 : 2); k++) {
        if (!a->out[k]) continue;
        int64_t h0[3] = {c.dirs, c.B, c.H}, h1[3] = {c.B, c.dirs, c.H};
        ku_shape(a->out[k], ENG_FLOAT, 3, c.layout ? h1 : h0);
    }
    if (a->nout > (c.gates == 4 ? 3 : 2))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): too many outputs", KNAME(a), KOP(a));
    return 0;
}

static float clipv(float v, float c)
{
    return c > 0 ? (v < -c ? -c : (v > c ? c : v)) : v;
}

#define STACK_FLOATS 16384

static int run_rnn(ek_args *a)
{
    rnn_cfg c;
    int rc = rnn_cfg_get(a, &c);
    if (rc) return rc;
    const ek_view *xv = a->in[0];
    const float *X = xv->data, *W = a->in[1]->data, *R = a->in[2]->data;
    const float *Bv = a->nin > 3 && a->in[3] ? a->in[3]->data : NULL;
    const ek_view *sl = a->nin > 4 ? a->in[4] : NULL;
    const float *H0 = a->nin > 5 && a->in[5] ? a->in[5]->data : NULL;
    const float *C0 = c.gates == 4 && a->nin > 6 && a->in[6] ? a->in[6]->data : NULL;
    const float *P = c.gates == 4 && a->nin > 7 && a->in[7] ? a->in[7]->data : NULL;
    float *Y = a->out[0] ? a->out[0]->data : NULL;
    float *YH = a->nout > 1 && a->out[1] ? a->out[1]->data : NULL;
    float *YC = c.gates == 4 && a->nout > 2 && a->out[2] ? a->out[2]->data : NULL;
    int64_t H = c.H, I = c.I, B = c.B, S = c.S, G = c.gates, GH = G * H;
    /* state: h, c, gates */
    size_t need = (size_t)(B * H * 2 + GH + H);
    float stackbuf[STACK_FLOATS];
    float *buf = need <= STACK_FLOATS ? stackbuf : malloc(need * sizeof(float));
    if (!buf) return KFAIL(a, ENG_ENOMEM, "node '%s' (%s): out of memory", KNAME(a), KOP(a));
    float *h = buf, *cs = buf + B * H, *g = cs + B * H, *tmp = g + GH;
    if (Y) memset(Y, 0, (size_t)(S * c.dirs * B * H) * sizeof(float));
    int reverse_only = !strcmp(eg_attr_str(a->node, "direction", "forward"), "reverse");
    for (int dr = 0; dr < c.dirs; dr++) {
        int rev = dr == 1 || reverse_only;
        const float *Wd = W + dr * GH * I, *Rd = R + dr * GH * H;
        const float *Wb = Bv ? Bv + dr * 2 * GH : NULL, *Rb = Bv ? Wb + GH : NULL;
        const float *Pd = P ? P + dr * 3 * H : NULL;
        const rnn_act *f = c.f[dr];
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < H; j++) {
                int64_t hi = c.layout ? (b * c.dirs + dr) * H + j : (dr * B + b) * H + j;
                h[b * H + j] = H0 ? H0[hi] : 0;
                cs[b * H + j] = C0 ? C0[hi] : 0;
            }
        for (int64_t b = 0; b < B; b++) {
            int64_t len = sl ? ku_geti(sl, b) : S;
            if (len < 0 || len > S) {
                if (buf != stackbuf) free(buf);
                return KFAIL(a, ENG_EINVAL,
                             "node '%s' (%s): sequence_lens[%lld] = %lld, sequence "
                             "is %lld",
                             KNAME(a), KOP(a), (long long)b, (long long)len, (long long)S);
            }
            float *hb = h + b * H, *cb = cs + b * H;
            for (int64_t s = 0; s < len; s++) {
                int64_t t = rev ? len - 1 - s : s;
                const float *xt = X + (c.layout ? (b * S + t) * I : (t * B + b) * I);
                for (int64_t r = 0; r < GH; r++) {
                    const float *wr = Wd + r * I, *rr = Rd + r * H;
                    float acc = Wb ? Wb[r] : 0;
                    for (int64_t k = 0; k < I; k++) acc += wr[k] * xt[k];
                    /* GRU's candidate gate applies R after the reset gate */
                    if (G == 3 && r >= 2 * H) {
                        g[r] = acc;
                        continue;
                    }
                    if (Rb) acc += Rb[r];
                    for (int64_t k = 0; k < H; k++) acc += rr[k] * hb[k];
                    g[r] = acc;
                }
                if (G == 1) {
                    for (int64_t j = 0; j < H; j++) hb[j] = act_apply(&f[0], clipv(g[j], c.clip));
                } else if (G == 3) {
                    float *z = g, *rg = g + H, *hh = g + 2 * H;
                    for (int64_t j = 0; j < H; j++) {
                        z[j] = act_apply(&f[0], clipv(z[j], c.clip));
                        rg[j] = act_apply(&f[0], clipv(rg[j], c.clip));
                    }
                    for (int64_t j = 0; j < H; j++) {
                        const float *rr = Rd + (2 * H + j) * H;
                        float acc = 0;
                        if (c.lbr) {
                            for (int64_t k = 0; k < H; k++) acc += rr[k] * hb[k];
                            acc = rg[j] * (acc + (Rb ? Rb[2 * H + j] : 0));
                        } else {
                            for (int64_t k = 0; k < H; k++) acc += rr[k] * rg[k] * hb[k];
                            acc += Rb ? Rb[2 * H + j] : 0;
                        }
                        tmp[j] = act_apply(&f[1], clipv(hh[j] + acc, c.clip));
                    }
                    for (int64_t j = 0; j < H; j++) hb[j] = (1 - z[j]) * tmp[j] + z[j] * hb[j];
                } else { /* LSTM: gates i, o, f, c; peepholes i, o, f */
                    float *gi = g, *go = g + H, *gf = g + 2 * H, *gc = g + 3 * H;
                    for (int64_t j = 0; j < H; j++) {
                        float iv = gi[j] + (Pd ? Pd[j] * cb[j] : 0);
                        float fv = gf[j] + (Pd ? Pd[2 * H + j] * cb[j] : 0);
                        iv = act_apply(&f[0], clipv(iv, c.clip));
                        fv = c.input_forget ? 1 - iv : act_apply(&f[0], clipv(fv, c.clip));
                        float cv = act_apply(&f[1], clipv(gc[j], c.clip));
                        cb[j] = fv * cb[j] + iv * cv;
                        float ov = go[j] + (Pd ? Pd[H + j] * cb[j] : 0);
                        ov = act_apply(&f[0], clipv(ov, c.clip));
                        hb[j] = ov * act_apply(&f[2], cb[j]);
                    }
                }
                if (Y) {
                    float *yt = Y + (c.layout ? ((b * S + t) * c.dirs + dr) * H
                                              : ((t * c.dirs + dr) * B + b) * H);
                    memcpy(yt, hb, (size_t)H * sizeof(float));
                }
            }
        }
        for (int64_t b = 0; b < B; b++) {
            int64_t hi = c.layout ? (b * c.dirs + dr) * H : (dr * B + b) * H;
            if (YH) memcpy(YH + hi, h + b * H, (size_t)H * sizeof(float));
            if (YC) memcpy(YC + hi, cs + b * H, (size_t)H * sizeof(float));
        }
    }
    if (buf != stackbuf) free(buf);
    return 0;
}

const ek_op ek_op_rnn = {infer_rnn, run_rnn, 0, 0};
