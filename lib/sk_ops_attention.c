/* ONNX Runtime's fused attention ops (com.microsoft, opset 1), as specified in
 * ONNX Runtime's docs/ContribOperators.md and computed the way its CPU
 * kernels compute them:
 *
 *  - Attention(input, weights, bias?, mask_index?, past?, attention_bias?):
 *    Q, K, V = input x weights + bias, split by qkv_hidden_sizes (equal thirds
 *    without it); output [B, S, v_hidden]; present [2, B, N, P + S, H].
 *  - MultiHeadAttention(query, key?, value?, bias?, key_padding_mask?,
 *    attention_bias?, past_key?, past_value?): projections outside the op;
 *    query [B, S, D] with key [B, T, D] and value [B, T, Dv], or packed QKV
 *    query [B, S, N, 3, H], or packed KV key [B, T, N, 2, H], or key and value
 *    already split into heads [B, N, T, H]; outputs [B, S, Dv] and
 *    present_key/present_value [B, N, P + T, H].
 *
 * Per batch b and head n: scores = scale Q K^T + mask + attention_bias,
 * softmax over the keys, times V; heads are concatenated on the last axis
 * (head n at [n Dv, (n + 1) Dv)). scale defaults to 1/sqrt(head size) (also
 * when the attribute is 0). The mask adds mask_filter_value (default -10000)
 * where a key is masked, and the lowest float where unidirectional forbids a
 * later key (key j > past + i). Masks (int32, int64 or bool):
 *   [B]            right padding: keys at or after mask[b] are masked
 *   [2B]           also left padding: keys before mask[B + b] are masked
 *   [B, T]         0/1 per key (0 masked)
 *   [B, S, T]      0/1 per query and key
 *   [B, 1, M, M]   0/1 per query and key, M >= T (Attention; row P + i)
 * Not implemented (SK_EUNSUPPORTED, naming the feature): the [3B + 2] mask
 * form, do_rotary, past_present_share_buffer, past_sequence_length,
 * cache_indirection, MultiHeadAttention's qk output. attention_bias is
 * [B or 1, N or 1, S, T].
 *
 * float32 is computed directly; float16, bfloat16 and float64 tensors are
 * converted to float32 and the outputs back. The projections and the per-head
 * products go through sk_gemm_f32, the softmax through the engine's row
 * kernel. */
#include "sk_op.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sk_gemm.h"
#include "sk_model.h"

void sk_softmax_row(const float *x, float *y, int64_t n, int log_softmax); /* lib/sk_ops_reduce.c */

static const sk_tensor *in_at(const sk_op_ctx *ctx, size_t i)
{
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

static sk_tensor *out_at(const sk_op_ctx *ctx, size_t i)
{
    return i < ctx->n_out ? ctx->out[i] : NULL;
}

static int is_float(int dt)
{
    return dt == SK_FLOAT || dt == SK_FLOAT16 || dt == SK_BFLOAT16 || dt == SK_DOUBLE;
}

static int is_mask_type(int dt)
{
    return dt == SK_INT32 || dt == SK_INT64 || dt == SK_BOOL;
}

/* A float32 copy of t (any float type) in *out, malloc'd. */
static sk_status to_f32(const sk_tensor *t, const char *what, float **out, sk_error *err)
{
    *out = NULL;
    if (!is_float(t->dtype))
        return sk_error_set(err, SK_EINVAL, "%s is %s, not a float tensor", what, sk_dtype_name(t->dtype));
    float *d = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *d);
    if (!d) return sk_error_set(err, SK_ENOMEM, "out of memory");
    if (t->dtype == SK_FLOAT) {
        if (t->numel) memcpy(d, t->data, (size_t)t->numel * sizeof *d);
    } else {
        for (int64_t i = 0; i < t->numel; i++) d[i] = (float)sk_tensor_get_f64(t, i);
    }
    *out = d;
    return SK_OK;
}

/* t's data as float32: t's own when it is float32 (*buf NULL), else a
 * converted copy in *buf (malloc'd, the caller frees it). */
static sk_status view_f32(const sk_tensor *t, const char *what, const float **out, float **buf, sk_error *err)
{
    *buf = NULL;
    if (t->dtype == SK_FLOAT) {
        *out = t->data;
        return SK_OK;
    }
    sk_status s = to_f32(t, what, buf, err);
    *out = *buf;
    return s;
}

/* Allocates out with dtype and shape and fills it from f (float32). */
static sk_status store(sk_tensor *out, int dtype, int rank, const int64_t *dims, const float *f, sk_error *err)
{
    sk_status s = sk_tensor_alloc_uninit(out, dtype, rank, dims, err);
    if (s) return s;
    int64_t n = out->numel;
    switch (dtype) {
    case SK_FLOAT: if (n) memcpy(out->data, f, (size_t)n * sizeof *f); break;
    case SK_FLOAT16: for (int64_t i = 0; i < n; i++) ((uint16_t *)out->data)[i] = sk_float_to_half(f[i]); break;
    case SK_BFLOAT16: for (int64_t i = 0; i < n; i++) ((uint16_t *)out->data)[i] = sk_float_to_bf16(f[i]); break;
    default: for (int64_t i = 0; i < n; i++) ((double *)out->data)[i] = f[i]; break;
    }
    return SK_OK;
}

/* 1 when a * b * c * d overflows int64 (all >= 0): sizes of the buffers the
 * kernels allocate, from file-supplied dims and attributes. */
static int prod_overflows(int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t x;
    return sk_mul_i64(a, b, &x) || sk_mul_i64(x, c, &x) || sk_mul_i64(x, d, &x) || x > INT64_MAX / 8;
}

static const char *shape_of(const sk_tensor *t, char *buf, size_t cap)
{
    return sk_shape_str(t->rank, t->dims, buf, cap);
}

/* ---- the core ------------------------------------------------------------------ */

typedef enum mask_form {
    MASK_NONE = 0,
    MASK_END,       /* [B] */
    MASK_END_START, /* [2B] */
    MASK_KEY,       /* [B, T] */
    MASK_FULL,      /* [B, S, T] */
    MASK_4D         /* [B, 1, M, M] */
} mask_form;

typedef struct attn_core {
    int64_t B, N, S, T, P;    /* batch, heads, queries, keys (past included), past keys */
    int64_t Dh, Dv;           /* head sizes of Q/K and of V */
    const float *q;           /* Q of (b, s, n) at q + b*q_bs + s*q_ss + n*q_hs */
    int64_t q_bs, q_ss, q_hs;
    const float *k, *v;       /* [B, N, T, Dh], [B, N, T, Dv] */
    float scale, filter;
    int causal;
    const sk_tensor *mask;
    mask_form form;
    const float *abias;       /* attention_bias [B|1, N|1, S, T] or NULL */
    int64_t ab_b, ab_n;       /* its strides over b and n (0: broadcast) */
    float *out;               /* [B, S, N*Dv] */
    int threads;
} attn_core;

/* The additive mask of batch b, [S, T], into m. */
static void core_mask(const attn_core *c, int64_t b, float *m)
{
    int64_t S = c->S, T = c->T;
    for (int64_t i = 0; i < S * T; i++) m[i] = 0;
    const sk_tensor *mk = c->mask;
    switch (c->form) {
    case MASK_NONE: break;
    case MASK_END:
    case MASK_END_START: {
        int64_t end = sk_tensor_get_i64(mk, b), start = 0;
        if (c->form == MASK_END_START) start = sk_tensor_get_i64(mk, c->B + b);
        if (start > T) start = T;
        for (int64_t j = 0; j < T; j++)
            if (j >= end || j < start)
                for (int64_t i = 0; i < S; i++) m[i * T + j] = c->filter;
        break;
    }
    case MASK_KEY:
        for (int64_t j = 0; j < T; j++)
            if (sk_tensor_get_i64(mk, b * T + j) <= 0)
                for (int64_t i = 0; i < S; i++) m[i * T + j] = c->filter;
        break;
    case MASK_FULL:
        for (int64_t i = 0; i < S * T; i++)
            if (sk_tensor_get_i64(mk, b * S * T + i) <= 0) m[i] = c->filter;
        break;
    case MASK_4D: {
        int64_t M = mk->dims[3];
        for (int64_t i = 0; i < S; i++)
            for (int64_t j = 0; j < T; j++)
                if (sk_tensor_get_i64(mk, (b * M + c->P + i) * M + j) <= 0) m[i * T + j] = c->filter;
        break;
    }
    }
    if (c->causal)
        for (int64_t i = 0; i < S; i++)
            for (int64_t j = c->P + i + 1; j < T; j++) m[i * T + j] = -FLT_MAX;
}

static sk_status core_run(const attn_core *c, sk_error *err)
{
    int64_t S = c->S, T = c->T, N = c->N, Dh = c->Dh, Dv = c->Dv;
    size_t st = (size_t)S * (size_t)T;
    float *mask = malloc((st ? st : 1) * sizeof *mask), *sc = malloc((st ? st : 1) * sizeof *sc);
    sk_status s = !mask || !sc ? sk_error_set(err, SK_ENOMEM, "out of memory") : SK_OK;
    int has_mask = c->form != MASK_NONE || c->causal;
    for (int64_t b = 0; !s && b < c->B; b++) {
        if (has_mask) core_mask(c, b, mask);
        for (int64_t n = 0; !s && n < N; n++) {
            const float *q = c->q + b * c->q_bs + n * c->q_hs;
            const float *k = c->k + (b * N + n) * T * Dh, *v = c->v + (b * N + n) * T * Dv;
            if (has_mask) memcpy(sc, mask, st * sizeof *sc);
            if (T > 0)
                s = sk_gemm_f32(0, 1, (size_t)S, (size_t)T, (size_t)Dh, c->scale, q, (size_t)c->q_ss, k, (size_t)Dh,
                                has_mask ? 1.0f : 0.0f, sc, (size_t)T, 1, err);
            if (s) break;
            if (c->abias) {
                const float *ab = c->abias + b * c->ab_b + n * c->ab_n;
                for (size_t i = 0; i < st; i++) sc[i] += ab[i];
            }
            for (int64_t i = 0; i < S; i++) sk_softmax_row(sc + i * T, sc + i * T, T, 0);
            float *o = c->out + b * S * N * Dv + n * Dv;
            if (T > 0)
                s = sk_gemm_f32(0, 0, (size_t)S, (size_t)Dv, (size_t)T, 1.0f, sc, (size_t)T, v, (size_t)Dv, 0.0f, o,
                                (size_t)(N * Dv), 1, err);
            else
                for (int64_t i = 0; i < S; i++) memset(o + i * N * Dv, 0, (size_t)Dv * sizeof *o);
        }
    }
    free(mask);
    free(sc);
    return s;
}

/* Reads the mask's form from its shape. what: "mask_index" or "key_padding_mask". */
static sk_status core_set_mask(attn_core *c, const sk_tensor *m, const char *what, int allow_4d, sk_error *err)
{
    char sb[96];
    c->mask = m;
    c->form = MASK_NONE;
    if (!m) return SK_OK;
    if (!is_mask_type(m->dtype))
        return sk_error_set(err, SK_EINVAL, "%s is %s, not int32", what, sk_dtype_name(m->dtype));
    int64_t B = c->B, S = c->S, T = c->T;
    if (m->rank == 1 && m->dims[0] == B) c->form = MASK_END;
    else if (m->rank == 1 && m->dims[0] == 2 * B) c->form = MASK_END_START;
    else if (m->rank == 1 && m->dims[0] == 3 * B + 2)
        return sk_error_set(err, SK_EUNSUPPORTED, "%s of shape [3 x batch + 2] is not supported", what);
    else if (m->rank == 2 && m->dims[0] == B && m->dims[1] == T) c->form = MASK_KEY;
    else if (m->rank == 3 && m->dims[0] == B && m->dims[1] == S && m->dims[2] == T) c->form = MASK_FULL;
    else if (allow_4d && m->rank == 4 && m->dims[0] == B && m->dims[1] == 1 && m->dims[2] == m->dims[3] &&
             m->dims[2] >= c->P + S && m->dims[3] >= T)
        c->form = MASK_4D;
    else
        return sk_error_set(err, SK_EINVAL, "%s has shape %s: no mask form for batch %" PRId64 ", %" PRId64
                            " queries, %" PRId64 " keys", what, shape_of(m, sb, sizeof sb), B, S, T);
    return SK_OK;
}

/* attention_bias [B|1, N|1, S, T] into c (as float32 in *buf, freed by the caller). */
static sk_status core_set_abias(attn_core *c, const sk_tensor *ab, float **buf, sk_error *err)
{
    char sb[96];
    *buf = NULL;
    c->abias = NULL;
    if (!ab) return SK_OK;
    if (ab->rank != 4 || (ab->dims[0] != 1 && ab->dims[0] != c->B) || (ab->dims[1] != 1 && ab->dims[1] != c->N) ||
        ab->dims[2] != c->S || ab->dims[3] != c->T)
        return sk_error_set(err, SK_EINVAL, "attention_bias has shape %s, not [batch|1, heads|1, %" PRId64 ", %" PRId64 "]",
                            shape_of(ab, sb, sizeof sb), c->S, c->T);
    sk_status s = to_f32(ab, "attention_bias", buf, err);
    if (s) return s;
    c->abias = *buf;
    c->ab_n = ab->dims[1] == 1 ? 0 : c->S * c->T;
    c->ab_b = ab->dims[0] == 1 ? 0 : ab->dims[1] * c->S * c->T;
    return SK_OK;
}

static sk_status common_attrs(sk_op_ctx *ctx, attn_core *c, int64_t *heads)
{
    const Onnx__NodeProto *n = ctx->node;
    int64_t N = sk_node_attr_int(n, "num_heads", 0);
    if (N <= 0) return sk_error_set(ctx->err, SK_EINVAL, "num_heads is %s", sk_node_attr(n, "num_heads") ? "not positive" : "missing");
    *heads = N;
    c->filter = sk_node_attr_float(n, "mask_filter_value", -10000.0f);
    c->causal = sk_node_attr_int(n, "unidirectional", 0) != 0;
    c->scale = sk_node_attr_float(n, "scale", 0.0f);
    c->threads = ctx->threads;
    return SK_OK;
}

/* Copies rows of a [B, L, N, D]-strided source into [B, N, P + L, D] after
 * the past rows (past [B, N, P, D] or NULL): the keys or values the core
 * reads. src of (b, l, n) at src + b*bs + l*ls + n*hs. */
static void gather_heads(float *dst, const float *past, const float *src, int64_t bs, int64_t ls, int64_t hs,
                         int64_t B, int64_t N, int64_t P, int64_t L, int64_t D)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t n = 0; n < N; n++) {
            float *d = dst + (b * N + n) * (P + L) * D;
            if (P) memcpy(d, past + (b * N + n) * P * D, (size_t)(P * D) * sizeof *d);
            for (int64_t l = 0; l < L; l++) memcpy(d + (P + l) * D, src + b * bs + l * ls + n * hs, (size_t)D * sizeof *d);
        }
}

/* ---- Attention ----------------------------------------------------------------- */

static sk_status run_attention(sk_op_ctx *ctx)
{
    const Onnx__NodeProto *node = ctx->node;
    sk_error *err = ctx->err;
    const sk_tensor *x = in_at(ctx, 0), *w = in_at(ctx, 1), *bias = in_at(ctx, 2), *mask = in_at(ctx, 3),
                    *past = in_at(ctx, 4), *abias = in_at(ctx, 5);
    sk_tensor *out = out_at(ctx, 0), *present = out_at(ctx, 1);
    char sb[96];
    if (!x || !w) return sk_error_set(err, SK_EINVAL, "the %s input is missing", x ? "weights" : "input");
    if (!out) return sk_error_set(err, SK_EINVAL, "output 0 is missing");
    if (sk_node_attr_int(node, "do_rotary", 0))
        return sk_error_set(err, SK_EUNSUPPORTED, "do_rotary is not supported");
    if (sk_node_attr_int(node, "past_present_share_buffer", 0))
        return sk_error_set(err, SK_EUNSUPPORTED, "past_present_share_buffer is not supported");
    if (in_at(ctx, 6)) return sk_error_set(err, SK_EUNSUPPORTED, "past_sequence_length is not supported");
    attn_core c;
    memset(&c, 0, sizeof c);
    int64_t N;
    sk_status s = common_attrs(ctx, &c, &N);
    if (s) return s;
    if (!is_float(x->dtype) || x->dtype != w->dtype || (bias && bias->dtype != x->dtype))
        return sk_error_set(err, SK_EINVAL, "input, weights and bias must be the same float type");
    if (x->rank != 3) return sk_error_set(err, SK_EINVAL, "input has shape %s, not rank 3", shape_of(x, sb, sizeof sb));
    int64_t B = x->dims[0], S = x->dims[1], Din = x->dims[2];
    if (w->rank != 2 || w->dims[0] != Din)
        return sk_error_set(err, SK_EINVAL, "weights have shape %s, not [%" PRId64 ", n]", shape_of(w, sb, sizeof sb), Din);
    int64_t W = w->dims[1], sz[3];
    size_t nq;
    const int64_t *qkv = sk_node_attr_ints(node, "qkv_hidden_sizes", &nq);
    if (qkv) {
        if (nq != 3) return sk_error_set(err, SK_EINVAL, "qkv_hidden_sizes has %zu entries, not 3", nq);
        memcpy(sz, qkv, sizeof sz);
    } else {
        if (W % 3) return sk_error_set(err, SK_EINVAL, "weights have %" PRId64 " columns, not three equal parts", W);
        sz[0] = sz[1] = sz[2] = W / 3;
    }
    if (sz[0] <= 0 || sz[1] <= 0 || sz[2] <= 0 || sz[0] + sz[1] + sz[2] != W || sz[0] != sz[1])
        return sk_error_set(err, SK_EINVAL, "qkv_hidden_sizes does not fit %" PRId64 " columns (Q and K must be equal)", W);
    if (sz[0] % N || sz[2] % N)
        return sk_error_set(err, SK_EINVAL, "hidden sizes are not multiples of num_heads %" PRId64, N);
    if (bias && (bias->rank != 1 || bias->dims[0] != W))
        return sk_error_set(err, SK_EINVAL, "bias has shape %s, not [%" PRId64 "]", shape_of(bias, sb, sizeof sb), W);
    int64_t Dh = sz[0] / N, Dv = sz[2] / N, P = 0;
    if (past) {
        if (Dh != Dv) return sk_error_set(err, SK_EINVAL, "past needs equal Q, K and V sizes");
        if (past->dtype != x->dtype || past->rank != 5 || past->dims[0] != 2 || past->dims[1] != B || past->dims[2] != N ||
            past->dims[4] != Dh)
            return sk_error_set(err, SK_EINVAL, "past has shape %s, not [2, %" PRId64 ", %" PRId64 ", p, %" PRId64 "]",
                                shape_of(past, sb, sizeof sb), B, N, Dh);
        P = past->dims[3];
    }
    if (present && Dh != Dv) return sk_error_set(err, SK_EINVAL, "present needs equal Q, K and V sizes");
    int64_t rows = B * S; /* x exists: B * S * Din fits */
    if (P > INT64_MAX / 2 || prod_overflows(rows, W + 1, 1, 1) || prod_overflows(S, P + S, 1, 1) ||
        prod_overflows(B, N, P + S, Dh > Dv ? Dh : Dv) || prod_overflows(rows, N, Dv, 1))
        return sk_error_set(err, SK_EINVAL, "the attention is too large");
    c.B = B, c.N = N, c.S = S, c.P = P, c.T = P + S, c.Dh = Dh, c.Dv = Dv;
    if (c.scale == 0.0f) c.scale = 1.0f / sqrtf((float)Dh);
    float *xb = NULL, *wb = NULL, *bb = NULL, *pb = NULL, *abf = NULL, *qkvb = NULL, *kb = NULL, *vb = NULL, *of = NULL;
    const float *xf = NULL, *wf = NULL, *bf = NULL, *pf = NULL;
    s = core_set_mask(&c, mask, "mask_index", 1, err);
    if (!s) s = core_set_abias(&c, abias, &abf, err);
    if (!s) s = view_f32(x, "input", &xf, &xb, err);
    if (!s) s = view_f32(w, "weights", &wf, &wb, err);
    if (!s && bias) s = view_f32(bias, "bias", &bf, &bb, err);
    if (!s && past) s = view_f32(past, "past", &pf, &pb, err);
    if (!s) {
        qkvb = malloc((size_t)(rows * W + 1) * sizeof *qkvb);
        kb = malloc((size_t)(B * N * c.T * Dh + 1) * sizeof *kb);
        vb = malloc((size_t)(B * N * c.T * Dv + 1) * sizeof *vb);
        of = malloc((size_t)(rows * N * Dv + 1) * sizeof *of);
        if (!qkvb || !kb || !vb || !of) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    if (!s && rows) {
        if (bf)
            for (int64_t r = 0; r < rows; r++) memcpy(qkvb + r * W, bf, (size_t)W * sizeof *bf);
        s = sk_gemm_f32(0, 0, (size_t)rows, (size_t)W, (size_t)Din, 1.0f, xf, (size_t)Din, wf, (size_t)W, bf ? 1.0f : 0.0f,
                        qkvb, (size_t)W, ctx->threads, err);
    }
    if (!s) {
        gather_heads(kb, pf, qkvb + sz[0], S * W, W, Dh, B, N, P, S, Dh);
        gather_heads(vb, pf ? pf + B * N * P * Dh : NULL, qkvb + 2 * sz[0], S * W, W, Dv, B, N, P, S, Dv);
        c.q = qkvb, c.q_bs = S * W, c.q_ss = W, c.q_hs = Dh;
        c.k = kb, c.v = vb, c.out = of;
        s = core_run(&c, err);
    }
    int64_t od[3] = { B, S, N * Dv };
    if (!s) s = store(out, x->dtype, 3, od, of, err);
    if (!s && present) {
        int64_t pd[5] = { 2, B, N, c.T, Dh };
        size_t half = (size_t)(B * N * c.T * Dh);
        float *both = malloc((2 * half + 1) * sizeof *both);
        if (!both) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        if (!s) {
            memcpy(both, kb, half * sizeof *both);
            memcpy(both + half, vb, half * sizeof *both);
            s = store(present, x->dtype, 5, pd, both, err);
        }
        free(both);
    }
    free(xb);
    free(wb);
    free(bb);
    free(pb);
    free(abf);
    free(qkvb);
    free(kb);
    free(vb);
    free(of);
    return s;
}

/* ---- MultiHeadAttention -------------------------------------------------------- */

static sk_status run_mha(sk_op_ctx *ctx)
{
    sk_error *err = ctx->err;
    const sk_tensor *q = in_at(ctx, 0), *k = in_at(ctx, 1), *v = in_at(ctx, 2), *bias = in_at(ctx, 3),
                    *mask = in_at(ctx, 4), *abias = in_at(ctx, 5), *pk = in_at(ctx, 6), *pv = in_at(ctx, 7);
    sk_tensor *out = out_at(ctx, 0), *prk = out_at(ctx, 1), *prv = out_at(ctx, 2);
    char sb[96], sb2[96], sb3[96];
    if (!q) return sk_error_set(err, SK_EINVAL, "the query input is missing");
    if (!out) return sk_error_set(err, SK_EINVAL, "output 0 is missing");
    if (in_at(ctx, 8)) return sk_error_set(err, SK_EUNSUPPORTED, "past_sequence_length is not supported");
    if (in_at(ctx, 9)) return sk_error_set(err, SK_EUNSUPPORTED, "cache_indirection is not supported");
    if (out_at(ctx, 3)) return sk_error_set(err, SK_EUNSUPPORTED, "the qk output is not supported");
    attn_core c;
    memset(&c, 0, sizeof c);
    int64_t N;
    sk_status s = common_attrs(ctx, &c, &N);
    if (s) return s;
    const sk_tensor *all[] = { q, k, v, bias, pk, pv };
    const char *names[] = { "query", "key", "value", "bias", "past_key", "past_value" };
    for (size_t i = 0; i < 6; i++)
        if (all[i] && all[i]->dtype != q->dtype)
            return sk_error_set(err, SK_EINVAL, "%s is %s but query is %s", names[i], sk_dtype_name(all[i]->dtype),
                                sk_dtype_name(q->dtype));
    if (!is_float(q->dtype)) return sk_error_set(err, SK_EINVAL, "query is %s, not a float tensor", sk_dtype_name(q->dtype));
    if (!!pk != !!pv) return sk_error_set(err, SK_EINVAL, "past_key and past_value must be given together");
    /* layout */
    enum { SEP, PACKED_QKV, PACKED_KV, BNSH } lay;
    int64_t B, S, L, Dq, Dh, Dv;
    if (q->rank == 5) {
        if (k || v) return sk_error_set(err, SK_EINVAL, "packed QKV query %s comes with key or value", shape_of(q, sb, sizeof sb));
        if (q->dims[2] != N || q->dims[3] != 3)
            return sk_error_set(err, SK_EINVAL, "packed query has shape %s, not [b, s, %" PRId64 ", 3, h]",
                                shape_of(q, sb, sizeof sb), N);
        lay = PACKED_QKV;
        B = q->dims[0], S = L = q->dims[1], Dh = Dv = q->dims[4], Dq = N * Dh;
    } else {
        if (q->rank != 3)
            return sk_error_set(err, SK_EINVAL, "query has shape %s, not rank 3 or 5", shape_of(q, sb, sizeof sb));
        B = q->dims[0], S = q->dims[1], Dq = q->dims[2];
        if (Dq % N) return sk_error_set(err, SK_EINVAL, "query width %" PRId64 " is not a multiple of num_heads", Dq);
        Dh = Dq / N;
        if (!k) return sk_error_set(err, SK_EINVAL, "the key input is missing");
        if (k->rank == 5) {
            if (v) return sk_error_set(err, SK_EINVAL, "packed KV key %s comes with a value", shape_of(k, sb, sizeof sb));
            if (k->dims[0] != B || k->dims[2] != N || k->dims[3] != 2 || k->dims[4] != Dh)
                return sk_error_set(err, SK_EINVAL, "packed key has shape %s, not [%" PRId64 ", l, %" PRId64 ", 2, %" PRId64 "]",
                                    shape_of(k, sb, sizeof sb), B, N, Dh);
            lay = PACKED_KV;
            L = k->dims[1], Dv = Dh;
        } else if (!v) {
            return sk_error_set(err, SK_EINVAL, "the value input is missing");
        } else if (k->rank == 3) {
            if (v->rank != 3 || k->dims[0] != B || v->dims[0] != B || k->dims[2] != Dq || v->dims[1] != k->dims[1] ||
                v->dims[2] % N)
                return sk_error_set(err, SK_EINVAL, "key %s and value %s do not fit query %s", shape_of(k, sb, sizeof sb),
                                    shape_of(v, sb2, sizeof sb2), shape_of(q, sb3, sizeof sb3));
            lay = SEP;
            L = k->dims[1], Dv = v->dims[2] / N;
        } else if (k->rank == 4) {
            if (v->rank != 4 || k->dims[0] != B || k->dims[1] != N || k->dims[3] != Dh || v->dims[0] != B ||
                v->dims[1] != N || v->dims[2] != k->dims[2])
                return sk_error_set(err, SK_EINVAL, "key %s and value %s do not fit query %s", shape_of(k, sb, sizeof sb),
                                    shape_of(v, sb2, sizeof sb2), shape_of(q, sb3, sizeof sb3));
            if (pk) return sk_error_set(err, SK_EUNSUPPORTED, "past_key with key split into heads is not supported");
            lay = BNSH;
            L = k->dims[2], Dv = v->dims[3];
        } else {
            return sk_error_set(err, SK_EINVAL, "key has shape %s, not rank 3, 4 or 5", shape_of(k, sb, sizeof sb));
        }
    }
    if (bias) {
        if (bias->rank != 1 || bias->dims[0] != 2 * Dq + N * Dv)
            return sk_error_set(err, SK_EINVAL, "bias has shape %s, not [%" PRId64 "]", shape_of(bias, sb, sizeof sb),
                                2 * Dq + N * Dv);
        if (lay == BNSH) return sk_error_set(err, SK_EUNSUPPORTED, "a bias with key and value split into heads is not supported");
    }
    int64_t P = 0;
    if (pk) {
        if (Dh != Dv) return sk_error_set(err, SK_EINVAL, "past_key needs equal key and value sizes");
        if (pk->rank != 4 || pv->rank != 4 || pk->dims[0] != B || pk->dims[1] != N || pk->dims[3] != Dh ||
            pv->dims[0] != B || pv->dims[1] != N || pv->dims[2] != pk->dims[2] || pv->dims[3] != Dv)
            return sk_error_set(err, SK_EINVAL, "past_key %s and past_value %s are not [%" PRId64 ", %" PRId64 ", p, %" PRId64 "]",
                                shape_of(pk, sb, sizeof sb), shape_of(pv, sb2, sizeof sb2), B, N, Dh);
        P = pk->dims[2];
    }
    if (P > INT64_MAX / 2 || L > INT64_MAX / 2 || prod_overflows(B, S, 3, Dq + 1) || prod_overflows(S, P + L, 1, 1) ||
        prod_overflows(B, N, P + L, Dh > Dv ? Dh : Dv) || prod_overflows(B, S, N, Dv))
        return sk_error_set(err, SK_EINVAL, "the attention is too large");
    c.B = B, c.N = N, c.S = S, c.P = P, c.T = P + L, c.Dh = Dh, c.Dv = Dv;
    if (c.scale == 0.0f) c.scale = 1.0f / sqrtf((float)Dh);
    float *qf = NULL, *kf = NULL, *vf = NULL, *bf = NULL, *pkf = NULL, *pvf = NULL, *abf = NULL, *kb = NULL, *vb = NULL,
          *of = NULL;
    s = core_set_mask(&c, mask, "key_padding_mask", 0, err);
    if (!s) s = core_set_abias(&c, abias, &abf, err);
    if (!s) s = to_f32(q, "query", &qf, err);
    if (!s && k) s = to_f32(k, "key", &kf, err);
    if (!s && v) s = to_f32(v, "value", &vf, err);
    if (!s && bias) s = to_f32(bias, "bias", &bf, err);
    if (!s && pk) s = to_f32(pk, "past_key", &pkf, err);
    if (!s && pv) s = to_f32(pv, "past_value", &pvf, err);
    if (!s) {
        kb = malloc((size_t)(B * N * c.T * Dh + 1) * sizeof *kb);
        vb = malloc((size_t)(B * N * c.T * Dv + 1) * sizeof *vb);
        of = malloc((size_t)(B * S * N * Dv + 1) * sizeof *of);
        if (!kb || !vb || !of) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    if (!s) {
        /* the bias goes into the copies; q/k/v sources as [B, L, N, D] strides */
        const float *ks = NULL, *vs = NULL;
        int64_t k_bs = 0, k_ls = 0, k_hs = 0, v_bs = 0, v_ls = 0, v_hs = 0;
        switch (lay) {
        case PACKED_QKV: /* [B, S, N, 3, H] */
            c.q = qf, c.q_bs = S * N * 3 * Dh, c.q_ss = N * 3 * Dh, c.q_hs = 3 * Dh;
            ks = qf + Dh, vs = qf + 2 * Dh;
            k_bs = v_bs = c.q_bs, k_ls = v_ls = c.q_ss, k_hs = v_hs = 3 * Dh;
            break;
        case PACKED_KV: /* [B, L, N, 2, H] */
            c.q = qf, c.q_bs = S * Dq, c.q_ss = Dq, c.q_hs = Dh;
            ks = kf, vs = kf + Dh;
            k_bs = v_bs = L * N * 2 * Dh, k_ls = v_ls = N * 2 * Dh, k_hs = v_hs = 2 * Dh;
            break;
        case SEP:
            c.q = qf, c.q_bs = S * Dq, c.q_ss = Dq, c.q_hs = Dh;
            ks = kf, vs = vf;
            k_bs = L * Dq, k_ls = Dq, k_hs = Dh;
            v_bs = L * N * Dv, v_ls = N * Dv, v_hs = Dv;
            break;
        case BNSH: /* [B, N, L, H]: l stride H, n stride L*H */
            c.q = qf, c.q_bs = S * Dq, c.q_ss = Dq, c.q_hs = Dh;
            ks = kf, vs = vf;
            k_bs = N * L * Dh, k_ls = Dh, k_hs = L * Dh;
            v_bs = N * L * Dv, v_ls = Dv, v_hs = L * Dv;
            break;
        }
        if (bf) {
            /* add the bias in place in the float32 copies (each source element once) */
            float *qw = (float *)c.q;
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < S; i++)
                    for (int64_t n = 0; n < N; n++)
                        for (int64_t d = 0; d < Dh; d++) qw[b * c.q_bs + i * c.q_ss + n * c.q_hs + d] += bf[n * Dh + d];
            float *kw = (float *)ks, *vw = (float *)vs;
            for (int64_t b = 0; b < B; b++)
                for (int64_t l = 0; l < L; l++)
                    for (int64_t n = 0; n < N; n++) {
                        for (int64_t d = 0; d < Dh; d++) kw[b * k_bs + l * k_ls + n * k_hs + d] += bf[Dq + n * Dh + d];
                        for (int64_t d = 0; d < Dv; d++) vw[b * v_bs + l * v_ls + n * v_hs + d] += bf[2 * Dq + n * Dv + d];
                    }
        }
        for (int64_t b = 0; b < B; b++) {
            gather_heads(kb + b * N * c.T * Dh, pkf ? pkf + b * N * P * Dh : NULL, ks + b * k_bs, 0, k_ls, k_hs, 1, N, P, L, Dh);
            gather_heads(vb + b * N * c.T * Dv, pvf ? pvf + b * N * P * Dv : NULL, vs + b * v_bs, 0, v_ls, v_hs, 1, N, P, L, Dv);
        }
        c.k = kb, c.v = vb, c.out = of;
        s = core_run(&c, err);
    }
    int64_t od[3] = { B, S, N * Dv };
    if (!s) s = store(out, q->dtype, 3, od, of, err);
    int64_t kd[4] = { B, N, c.T, Dh }, vd[4] = { B, N, c.T, Dv };
    if (!s && prk) s = store(prk, q->dtype, 4, kd, kb, err);
    if (!s && prv) s = store(prv, q->dtype, 4, vd, vb, err);
    free(qf);
    free(kf);
    free(vf);
    free(bf);
    free(pkf);
    free(pvf);
    free(abf);
    free(kb);
    free(vb);
    free(of);
    return s;
}

const sk_op_def sk_ops_attention[] = {
    { "com.microsoft", "Attention", 1, run_attention },
    { "com.microsoft", "MultiHeadAttention", 1, run_mha },
    { NULL, NULL, 0, NULL },
};
