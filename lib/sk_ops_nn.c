/* Compute-heavy ops: MatMul, Gemm, Conv, ConvTranspose, pooling, normalisation
 * over channels, Resize/Upsample, Einsum, LRN.
 *
 * Float16, bfloat16 and float64 tensors are converted to float32, computed and
 * converted back (MatMul and Einsum keep float64 in float64). The float32 work
 * goes through sk_gemm_f32 (im2col for Conv, col2im for ConvTranspose); each
 * op's loops here are its reference, and the GEMM fast path is checked
 * against sk_gemm_f32_ref in tests/unit/test_gemm.c. */
#include "sk_op.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sk_gemm.h"
#include "sk_model.h"

/* ---- helpers ------------------------------------------------------------- */

#define MAX_SPATIAL 3 /* Conv and pooling: 1-D, 2-D and 3-D */

static const sk_tensor *in_at(const sk_op_ctx *ctx, size_t i)
{
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

static sk_tensor *out_at(const sk_op_ctx *ctx, size_t i)
{
    return i < ctx->n_out ? ctx->out[i] : NULL;
}

static sk_status need_in(const sk_op_ctx *ctx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!in_at(ctx, i)) return sk_error_set(ctx->err, SK_EINVAL, "required input %zu is missing", i);
    if (!out_at(ctx, 0)) return sk_error_set(ctx->err, SK_EINVAL, "output 0 is missing");
    return SK_OK;
}

static int is_float(int dt)
{
    return dt == SK_FLOAT || dt == SK_FLOAT16 || dt == SK_BFLOAT16 || dt == SK_DOUBLE;
}

/* The attribute as a NUL-terminated string in buf (truncated), for messages. */
static const char *attr_str(const Onnx__NodeProto *n, const char *name, const char *def, char *buf, size_t cap)
{
    size_t len;
    const char *s = sk_node_attr_string(n, name, def, &len);
    if (!s) s = "";
    if (len >= cap) len = cap - 1;
    memcpy(buf, s, len);
    buf[len] = 0;
    return buf;
}

/* A float32 version of t: t itself, or a converted copy put in tmp. */
static sk_status f32_view(const sk_tensor *t, sk_tensor *tmp, const sk_tensor **out, sk_error *err)
{
    if (t->dtype == SK_FLOAT) {
        *out = t;
        return SK_OK;
    }
    sk_status s = sk_tensor_alloc_uninit(tmp, SK_FLOAT, t->rank, t->dims, err);
    if (s) return s;
    float *d = tmp->data;
    if (t->dtype == SK_FLOAT16) {
        const uint16_t *p = t->data;
        for (int64_t i = 0; i < t->numel; i++) d[i] = sk_half_to_float(p[i]);
    } else if (t->dtype == SK_DOUBLE) {
        const double *p = t->data;
        for (int64_t i = 0; i < t->numel; i++) d[i] = (float)p[i];
    } else {
        for (int64_t i = 0; i < t->numel; i++) d[i] = (float)sk_tensor_get_f64(t, i);
    }
    *out = tmp;
    return SK_OK;
}

/* Float32 copies of a node's constant non-float32 inputs (float16 weights),
 * made at the first run and kept in the node's state. */
#define NN_CACHED_INPUTS 4

typedef struct nn_state {
    sk_tensor f32[NN_CACHED_INPUTS];
    const void *src[NN_CACHED_INPUTS]; /* data the copy was made from */
} nn_state;

static void nn_state_free(void *p)
{
    nn_state *st = p;
    if (!st) return;
    for (int i = 0; i < NN_CACHED_INPUTS; i++) sk_tensor_free(&st->f32[i]);
    free(st);
}

/* A float32 version of input i: the input itself, the node's cached copy
 * (constant inputs, when the engine keeps state), or a copy in tmp. */
static sk_status f32_input(sk_op_ctx *ctx, size_t i, sk_tensor *tmp, const sk_tensor **out)
{
    const sk_tensor *t = ctx->in[i];
    if (t->dtype == SK_FLOAT || !ctx->state || i >= NN_CACHED_INPUTS || !(ctx->const_inputs >> i & 1))
        return f32_view(t, tmp, out, ctx->err);
    nn_state *st = *ctx->state;
    if (!st) {
        if (!(st = calloc(1, sizeof *st))) return f32_view(t, tmp, out, ctx->err);
        *ctx->state = st;
        *ctx->state_free = nn_state_free;
    }
    sk_tensor *c = &st->f32[i];
    if (st->src[i] != t->data || c->rank != t->rank || c->numel != t->numel ||
        (t->rank && memcmp(c->dims, t->dims, (size_t)t->rank * sizeof *t->dims))) {
        const sk_tensor *v;
        sk_tensor fresh = { 0 };
        sk_status s = f32_view(t, &fresh, &v, ctx->err);
        if (s) return s;
        sk_tensor_free(c);
        *c = fresh;
        st->src[i] = t->data;
    }
    *out = c;
    return SK_OK;
}

/* Converts the float32 tensor t to dtype (float types and small integers). */
static sk_status f32_to(sk_tensor *t, int dtype, sk_error *err)
{
    if (dtype == SK_FLOAT) return SK_OK;
    sk_tensor r = { 0 };
    sk_status s = sk_tensor_alloc_uninit(&r, dtype, t->rank, t->dims, err);
    if (s) return s;
    const float *p = t->data;
    int64_t n = t->numel;
    switch (dtype) {
    case SK_FLOAT16: for (int64_t i = 0; i < n; i++) ((uint16_t *)r.data)[i] = sk_float_to_half(p[i]); break;
    case SK_BFLOAT16: for (int64_t i = 0; i < n; i++) ((uint16_t *)r.data)[i] = sk_float_to_bf16(p[i]); break;
    case SK_DOUBLE: for (int64_t i = 0; i < n; i++) ((double *)r.data)[i] = p[i]; break;
    case SK_UINT8: for (int64_t i = 0; i < n; i++) ((uint8_t *)r.data)[i] = (uint8_t)p[i]; break;
    case SK_INT8: for (int64_t i = 0; i < n; i++) ((int8_t *)r.data)[i] = (int8_t)p[i]; break;
    default:
        sk_tensor_free(&r);
        return sk_error_set(err, SK_EUNSUPPORTED, "element type %s is not supported here", sk_dtype_name(dtype));
    }
    sk_tensor_free(t);
    *t = r;
    return SK_OK;
}

static sk_status check_float(const sk_op_ctx *ctx, const sk_tensor *t, const char *what)
{
    if (!is_float(t->dtype))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "%s has element type %s; only float types are supported",
                            what, sk_dtype_name(t->dtype));
    return SK_OK;
}

/* dst = src permuted: dst dims are src dims[perm[i]]. Float32 or float64. */
static void permute_copy(const void *src, void *dst, size_t esize, int rank, const int64_t *dims, const int *perm)
{
    int64_t sstr[SK_TENSOR_MAX_RANK], odims[SK_TENSOR_MAX_RANK], ostr[SK_TENSOR_MAX_RANK], idx[SK_TENSOR_MAX_RANK];
    int64_t n = 1;
    for (int i = rank - 1; i >= 0; i--) {
        sstr[i] = n;
        n *= dims[i];
    }
    for (int i = 0; i < rank; i++) {
        odims[i] = dims[perm[i]];
        ostr[i] = sstr[perm[i]];
        idx[i] = 0;
    }
    if (n == 0) return;
    if (rank <= 0) {
        memcpy(dst, src, esize);
        return;
    }
    int64_t last = odims[rank - 1], ls = ostr[rank - 1], off = 0;
    for (int64_t o = 0; o < n; o += last) {
        if (esize == 4) {
            const float *s = (const float *)src + off;
            float *d = (float *)dst + o;
            for (int64_t j = 0; j < last; j++) d[j] = s[j * ls];
        } else {
            const double *s = (const double *)src + off;
            double *d = (double *)dst + o;
            for (int64_t j = 0; j < last; j++) d[j] = s[j * ls];
        }
        for (int i = rank - 2; i >= 0; i--) {
            off += ostr[i];
            if (++idx[i] < odims[i]) break;
            off -= ostr[i] * odims[i];
            idx[i] = 0;
        }
    }
}

/* ---- MatMul --------------------------------------------------------------- */

/* C (M x N) = A (M x K) * B (K x N), row-major, one dtype, plain loops. */
static void matmul_plain(int dt, int64_t M, int64_t N, int64_t K, const void *A, const void *B, void *C)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            if (dt == SK_DOUBLE) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += ((const double *)A)[i * K + k] * ((const double *)B)[k * N + j];
                ((double *)C)[i * N + j] = s;
            } else {
                uint64_t s = 0; /* wraps like two's complement */
                for (int64_t k = 0; k < K; k++) {
                    int64_t a, b;
                    switch (dt) {
                    case SK_INT32: a = ((const int32_t *)A)[i * K + k]; b = ((const int32_t *)B)[k * N + j]; break;
                    case SK_UINT32: a = ((const uint32_t *)A)[i * K + k]; b = ((const uint32_t *)B)[k * N + j]; break;
                    default: a = ((const int64_t *)A)[i * K + k]; b = ((const int64_t *)B)[k * N + j]; break;
                    }
                    s += (uint64_t)a * (uint64_t)b;
                }
                switch (dt) {
                case SK_INT32: ((int32_t *)C)[i * N + j] = (int32_t)(uint32_t)s; break;
                case SK_UINT32: ((uint32_t *)C)[i * N + j] = (uint32_t)s; break;
                default: ((uint64_t *)C)[i * N + j] = s; break;
                }
            }
        }
}

static sk_status run_matmul(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 2);
    if (s) return s;
    const sk_tensor *a0 = ctx->in[0], *b0 = ctx->in[1];
    sk_tensor *y = ctx->out[0];
    int dt = a0->dtype;
    char s1[128], s2[128];
    if (b0->dtype != dt)
        return sk_error_set(ctx->err, SK_EINVAL, "inputs have different element types (%s and %s)",
                            sk_dtype_name(dt), sk_dtype_name(b0->dtype));
    if (a0->rank < 1 || b0->rank < 1)
        return sk_error_set(ctx->err, SK_EINVAL, "MatMul needs inputs of rank >= 1");
    int native = dt == SK_FLOAT || dt == SK_DOUBLE || dt == SK_INT32 || dt == SK_INT64 || dt == SK_UINT32 ||
                 dt == SK_UINT64;
    if (!native && dt != SK_FLOAT16 && dt != SK_BFLOAT16)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "MatMul of %s is not supported", sk_dtype_name(dt));
    int ra = a0->rank, rb = b0->rank;
    int64_t M = ra >= 2 ? a0->dims[ra - 2] : 1, K = a0->dims[ra - 1];
    int64_t Kb = rb >= 2 ? b0->dims[rb - 2] : b0->dims[0], N = rb >= 2 ? b0->dims[rb - 1] : 1;
    if (K != Kb)
        return sk_error_set(ctx->err, SK_EINVAL, "shapes %s and %s do not match for a matrix product",
                            sk_shape_str(ra, a0->dims, s1, sizeof s1), sk_shape_str(rb, b0->dims, s2, sizeof s2));
    int bra = ra > 2 ? ra - 2 : 0, brb = rb > 2 ? rb - 2 : 0, bro;
    int64_t bdims[SK_TENSOR_MAX_RANK], odims[SK_TENSOR_MAX_RANK];
    s = sk_shape_broadcast(bra, a0->dims, brb, b0->dims, &bro, bdims, ctx->err);
    if (s) return s;
    int ro = bro;
    memcpy(odims, bdims, (size_t)bro * sizeof *odims);
    if (ra >= 2) odims[ro++] = M;
    if (rb >= 2) odims[ro++] = N;

    sk_tensor ta = { 0 }, tb = { 0 };
    const sk_tensor *a = a0, *b = b0;
    if (!native) {
        if ((s = f32_input(ctx, 0, &ta, &a)) || (s = f32_input(ctx, 1, &tb, &b))) goto done;
    }
    int cdt = native ? dt : SK_FLOAT;
    if ((s = sk_tensor_alloc_uninit(y, cdt, ro, odims, ctx->err))) goto done;
    int64_t nbatch = sk_shape_numel(bro, bdims);
    if (y->numel == 0) goto convert;
    /* Element strides of each output batch dim in A and B (0 where broadcast). */
    int64_t sa[SK_TENSOR_MAX_RANK], sb[SK_TENSOR_MAX_RANK], idx[SK_TENSOR_MAX_RANK] = { 0 };
    int64_t st = M * K;
    int a_full = 1, b_flat = 1;
    for (int i = bro - 1; i >= 0; i--) {
        int j = i - (bro - bra);
        sa[i] = j >= 0 && a0->dims[j] != 1 ? st : 0;
        if (j >= 0) st *= a0->dims[j];
        if (j < 0 || a0->dims[j] != bdims[i]) a_full = 0;
    }
    st = K * N;
    for (int i = bro - 1; i >= 0; i--) {
        int j = i - (bro - brb);
        sb[i] = j >= 0 && b0->dims[j] != 1 ? st : 0;
        if (j >= 0) st *= b0->dims[j];
        if (sb[i]) b_flat = 0;
    }
    size_t es = cdt == SK_FLOAT ? 4 : cdt == SK_INT32 || cdt == SK_UINT32 ? 4 : 8;
    if (a_full && b_flat && ra >= 2) { /* [batch, M, K] x [K, N]: one GEMM of batch*M rows */
        M *= nbatch;
        nbatch = 1;
    }
    int64_t oa = 0, ob = 0;
    for (int64_t bi = 0; bi < nbatch; bi++) {
        const char *pa = (const char *)a->data + (size_t)oa * es;
        const char *pb = (const char *)b->data + (size_t)ob * es;
        char *py = (char *)y->data + (size_t)(bi * M * N) * es;
        if (cdt == SK_FLOAT) {
            s = sk_gemm_f32(0, 0, (size_t)M, (size_t)N, (size_t)K, 1.0f, (const float *)pa, (size_t)K,
                            (const float *)pb, (size_t)N, 0.0f, (float *)py, (size_t)N, ctx->threads, ctx->err);
            if (s) goto done;
        } else {
            matmul_plain(cdt, M, N, K, pa, pb, py);
        }
        for (int i = bro - 1; i >= 0; i--) {
            oa += sa[i];
            ob += sb[i];
            if (++idx[i] < bdims[i]) break;
            oa -= sa[i] * bdims[i];
            ob -= sb[i] * bdims[i];
            idx[i] = 0;
        }
    }
convert:
    if (!native) s = f32_to(y, dt, ctx->err);
done:
    sk_tensor_free(&ta);
    sk_tensor_free(&tb);
    return s;
}

/* ---- Gemm ----------------------------------------------------------------- */

static sk_status run_gemm(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 2);
    if (s) return s;
    const sk_tensor *a0 = ctx->in[0], *b0 = ctx->in[1], *c0 = in_at(ctx, 2);
    sk_tensor *y = ctx->out[0];
    int dt = a0->dtype;
    char s1[128], s2[128];
    if ((s = check_float(ctx, a0, "A"))) return s;
    if (b0->dtype != dt || (c0 && c0->dtype != dt))
        return sk_error_set(ctx->err, SK_EINVAL, "inputs have different element types");
    if (a0->rank != 2 || b0->rank != 2)
        return sk_error_set(ctx->err, SK_EINVAL, "Gemm needs 2-D A and B, got %s and %s",
                            sk_shape_str(a0->rank, a0->dims, s1, sizeof s1), sk_shape_str(b0->rank, b0->dims, s2, sizeof s2));
    int ta = (int)sk_node_attr_int(ctx->node, "transA", 0) != 0;
    int tb = (int)sk_node_attr_int(ctx->node, "transB", 0) != 0;
    float alpha = sk_node_attr_float(ctx->node, "alpha", 1.0f);
    float beta = sk_node_attr_float(ctx->node, "beta", 1.0f);
    int64_t M = ta ? a0->dims[1] : a0->dims[0], K = ta ? a0->dims[0] : a0->dims[1];
    int64_t Kb = tb ? b0->dims[1] : b0->dims[0], N = tb ? b0->dims[0] : b0->dims[1];
    if (K != Kb)
        return sk_error_set(ctx->err, SK_EINVAL, "shapes %s and %s do not match for a matrix product (transA %d, transB %d)",
                            sk_shape_str(2, a0->dims, s1, sizeof s1), sk_shape_str(2, b0->dims, s2, sizeof s2), ta, tb);
    int64_t od[2] = { M, N };
    if (c0) { /* C must broadcast to [M, N] */
        int r;
        int64_t bd[SK_TENSOR_MAX_RANK];
        if (c0->rank > 2 || sk_shape_broadcast(2, od, c0->rank, c0->dims, &r, bd, NULL) || bd[0] != M || bd[1] != N)
            return sk_error_set(ctx->err, SK_EINVAL, "C of shape %s does not broadcast to [%lld,%lld]",
                                sk_shape_str(c0->rank, c0->dims, s1, sizeof s1), (long long)M, (long long)N);
    }
    sk_tensor tma = { 0 }, tmb = { 0 }, tmc = { 0 };
    const sk_tensor *a, *b, *c = NULL;
    if ((s = f32_input(ctx, 0, &tma, &a)) || (s = f32_input(ctx, 1, &tmb, &b))) goto done;
    if (c0 && (s = f32_input(ctx, 2, &tmc, &c))) goto done;
    if ((s = sk_tensor_alloc_uninit(y, SK_FLOAT, 2, od, ctx->err))) goto done;
    float *yd = y->data;
    float gb = 0;
    if (c && beta != 0 && c->numel > 0) {
        const float *cd = c->data;
        int64_t cr = c->rank == 2 ? c->dims[0] : 1, cc = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                yd[i * N + j] = beta * cd[(cr == 1 ? 0 : i) * cc + (cc == 1 ? 0 : j)];
        gb = 1;
    }
    s = sk_gemm_f32(ta, tb, (size_t)M, (size_t)N, (size_t)K, alpha, a->data, (size_t)a0->dims[1], b->data,
                    (size_t)b0->dims[1], gb, yd, (size_t)N, ctx->threads, ctx->err);
    if (!s) s = f32_to(y, dt, ctx->err);
done:
    sk_tensor_free(&tma);
    sk_tensor_free(&tmb);
    sk_tensor_free(&tmc);
    return s;
}

/* ---- Conv, ConvTranspose and pooling geometry ----------------------------- */

/* Spatial geometry normalised to three dims: a 1-D op uses only [2], 2-D
 * uses [1] and [2]; unused leading dims have size, kernel, stride and
 * dilation 1 and no padding. */
typedef struct conv_geom {
    int nd;
    int64_t in[MAX_SPATIAL], out[MAX_SPATIAL], k[MAX_SPATIAL], s[MAX_SPATIAL], d[MAX_SPATIAL];
    int64_t pb[MAX_SPATIAL], pe[MAX_SPATIAL];
} conv_geom;

typedef enum { GEOM_CONV, GEOM_POOL } geom_kind;

static int64_t div_floor(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t div_ceil(int64_t a, int64_t b)
{
    return -div_floor(-a, b);
}

/* Reads strides, dilations, pads, auto_pad (and ceil_mode for pools) for
 * spatial sizes in[0..nd) and kernel k[0..nd), and computes output sizes. */
static sk_status geometry(const sk_op_ctx *ctx, geom_kind kind, int nd, const int64_t *in, const int64_t *k,
                          conv_geom *g)
{
    const Onnx__NodeProto *n = ctx->node;
    size_t ns, ndl, np;
    const int64_t *st = sk_node_attr_ints(n, "strides", &ns);
    const int64_t *dl = sk_node_attr_ints(n, "dilations", &ndl);
    const int64_t *pads = sk_node_attr_ints(n, "pads", &np);
    int ceil_mode = kind == GEOM_POOL && sk_node_attr_int(n, "ceil_mode", 0) != 0;
    char ap[32];
    attr_str(n, "auto_pad", "NOTSET", ap, sizeof ap);
    if (nd < 1 || nd > MAX_SPATIAL)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "%d spatial dims are not supported (1 to %d)", nd, MAX_SPATIAL);
    if ((st && ns != (size_t)nd) || (dl && ndl != (size_t)nd) || (pads && np != 2 * (size_t)nd))
        return sk_error_set(ctx->err, SK_EINVAL, "strides, dilations or pads do not match %d spatial dims", nd);
    int same_upper = !strcmp(ap, "SAME_UPPER"), same_lower = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(ap, "NOTSET") && ap[0])
        return sk_error_set(ctx->err, SK_EINVAL, "auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", ap);
    memset(g, 0, sizeof *g);
    g->nd = nd;
    for (int i = 0; i < MAX_SPATIAL; i++) g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
    for (int i = 0; i < nd; i++) {
        int j = MAX_SPATIAL - nd + i;
        int64_t s = st ? st[i] : 1, d = dl ? dl[i] : 1, kk = k[i];
        if (s < 1 || d < 1 || kk < 1 || in[i] < 0 || s > SK_MAX_DIM || d > SK_MAX_DIM || kk > SK_MAX_DIM)
            return sk_error_set(ctx->err, SK_EINVAL, "kernel %lld, stride %lld or dilation %lld is out of range",
                                (long long)kk, (long long)s, (long long)d);
        int64_t eff = (kk - 1) * d + 1, pb = 0, pe = 0, o;
        if (same_upper || same_lower) {
            o = div_ceil(in[i], s);
            int64_t tot = (o - 1) * s + eff - in[i];
            if (tot < 0) tot = 0;
            pb = same_upper ? tot / 2 : tot - tot / 2;
            pe = tot - pb;
        } else {
            if (!valid && pads) {
                pb = pads[i];
                pe = pads[i + nd];
            }
            if (pb < 0 || pe < 0 || pb > SK_MAX_DIM || pe > SK_MAX_DIM)
                return sk_error_set(ctx->err, SK_EINVAL, "pads %lld, %lld are out of range", (long long)pb, (long long)pe);
            int64_t span = in[i] + pb + pe - eff;
            if (span < 0)
                return sk_error_set(ctx->err, SK_EINVAL, "kernel extent %lld is larger than the padded input %lld",
                                    (long long)eff, (long long)(in[i] + pb + pe));
            if (ceil_mode) {
                o = div_ceil(span, s) + 1;
                if ((o - 1) * s >= in[i] + pb) o--; /* the last window must start inside the input or its left pad */
            } else {
                o = span / s + 1;
            }
        }
        g->in[j] = in[i];
        g->out[j] = o;
        g->k[j] = kk;
        g->s[j] = s;
        g->d[j] = d;
        g->pb[j] = pb;
        g->pe[j] = pe;
    }
    return SK_OK;
}

/* ---- Conv ------------------------------------------------------------------ */

/* Columns for output rows [r0, r1) (a row is one (o0, o1) pair; it has out[2]
 * positions) of a cg-channel input x: col is [cg * K, (r1 - r0) * out[2]]. */
static void im2col(const float *x, const conv_geom *g, int64_t cg, int64_t r0, int64_t r1, float *col)
{
    int64_t isz = g->in[0] * g->in[1] * g->in[2], o2n = g->out[2];
    float *dst = col;
    for (int64_t c = 0; c < cg; c++)
        for (int64_t k0 = 0; k0 < g->k[0]; k0++)
            for (int64_t k1 = 0; k1 < g->k[1]; k1++)
                for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                    const float *xc = x + c * isz;
                    int64_t off2 = k2 * g->d[2] - g->pb[2];
                    /* o2 range whose input column is inside: 0 <= o2*s + off2 < in */
                    int64_t lo = off2 < 0 ? div_ceil(-off2, g->s[2]) : 0;
                    int64_t hi = div_floor(g->in[2] - 1 - off2, g->s[2]) + 1;
                    if (hi > o2n) hi = o2n;
                    if (lo > hi) lo = hi;
                    for (int64_t r = r0; r < r1; r++, dst += o2n) {
                        int64_t o0 = r / g->out[1], o1 = r % g->out[1];
                        int64_t i0 = o0 * g->s[0] - g->pb[0] + k0 * g->d[0];
                        int64_t i1 = o1 * g->s[1] - g->pb[1] + k1 * g->d[1];
                        if (i0 < 0 || i0 >= g->in[0] || i1 < 0 || i1 >= g->in[1] || lo >= hi) {
                            memset(dst, 0, (size_t)o2n * sizeof *dst);
                            continue;
                        }
                        const float *xr = xc + (i0 * g->in[1] + i1) * g->in[2] + off2;
                        for (int64_t o = 0; o < lo; o++) dst[o] = 0;
                        if (g->s[2] == 1) memcpy(dst + lo, xr + lo, (size_t)(hi - lo) * sizeof *dst);
                        else
                            for (int64_t o = lo; o < hi; o++) dst[o] = xr[o * g->s[2]];
                        for (int64_t o = hi; o < o2n; o++) dst[o] = 0;
                    }
                }
}

typedef float nn_v4f __attribute__((vector_size(16)));

/* y[0..n) = v */
static void fill_f32(float *restrict y, float v, int64_t n)
{
    int64_t i = 0;
    nn_v4f vv = v - (nn_v4f){ 0 };
    for (; i + 4 <= n; i += 4) memcpy(y + i, &vv, sizeof vv);
    for (; i < n; i++) y[i] = v;
}

/* One depthwise output row: yr[o] += sum over taps t < nt of
 * wv[t] * xr[t][o], for o in [0, n). The sum stays in registers (two
 * vectors of W outputs at a time); the ragged end reads up to W - 1 floats
 * past xr[t][n - 1], which the caller's buffer must allow. Instantiated per
 * instruction set like the GEMM kernel. */
#define SK_DEFINE_DW_ROW(NAME, ATTR, VF, W)                                                     \
    ATTR static void NAME(float *restrict yr, const float *const *xr, const float *wv, int64_t nt, int64_t n) \
    {                                                                                          \
        int64_t o = 0;                                                                         \
        for (; o + 2 * W <= n; o += 2 * W) {                                                   \
            VF a0, a1, x0, x1;                                                                 \
            memcpy(&a0, yr + o, sizeof a0);                                                    \
            memcpy(&a1, yr + o + W, sizeof a1);                                                \
            for (int64_t t = 0; t < nt; t++) {                                                 \
                VF w = wv[t] - (VF){ 0 };                                                      \
                memcpy(&x0, xr[t] + o, sizeof x0);                                             \
                memcpy(&x1, xr[t] + o + W, sizeof x1);                                         \
                a0 += w * x0;                                                                  \
                a1 += w * x1;                                                                  \
            }                                                                                  \
            memcpy(yr + o, &a0, sizeof a0);                                                    \
            memcpy(yr + o + W, &a1, sizeof a1);                                                \
        }                                                                                      \
        for (; o < n; o += W) { /* last one or two vectors: only n - o lanes kept */           \
            VF a0 = { 0 }, x0;                                                                 \
            for (int64_t t = 0; t < nt; t++) {                                                 \
                memcpy(&x0, xr[t] + o, sizeof x0);                                             \
                a0 += (wv[t] - (VF){ 0 }) * x0;                                                \
            }                                                                                  \
            for (int64_t l = 0; l < W && o + l < n; l++) yr[o + l] += a0[l];                   \
        }                                                                                      \
    }

typedef void (*dw_row_fn)(float *restrict yr, const float *const *xr, const float *wv, int64_t nt, int64_t n);

SK_DEFINE_DW_ROW(dw_row_generic, , nn_v4f, 4)
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(SK_NO_DISPATCH)
#define SK_NN_X86 1
#if defined(__clang__)
#define SK_NN_CONTRACT
#else
#define SK_NN_CONTRACT __attribute__((optimize("fp-contract=fast")))
#endif
typedef float nn_v8f __attribute__((vector_size(32)));
typedef float nn_v16f __attribute__((vector_size(64)));
SK_DEFINE_DW_ROW(dw_row_avx2, __attribute__((target("avx2,fma"))) SK_NN_CONTRACT, nn_v8f, 8)
SK_DEFINE_DW_ROW(dw_row_avx512, __attribute__((target("avx512f,fma"))) SK_NN_CONTRACT, nn_v16f, 16)
#endif

static dw_row_fn dw_row_pick(void)
{
    static dw_row_fn cached; /* every thread computes the same value */
    dw_row_fn fn = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (fn) return fn;
    fn = dw_row_generic;
#ifdef SK_NN_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) fn = dw_row_avx512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) fn = dw_row_avx2;
#endif
    __atomic_store_n(&cached, fn, __ATOMIC_RELAXED);
    return fn;
}

#define DW_SLACK 64 /* floats after the split plane that dw_row's ragged end may read */

/* Geometry of the split plane conv_depthwise works on: the input zero-padded
 * by the pads in dims 1 and 2 (h1 x w2 per dim-0 slice), each padded row
 * split into s2 phases of len floats (phase p holds columns p, p + s2, ...),
 * so that the taps of consecutive outputs are consecutive floats. */
static void dw_split_dims(const conv_geom *g, int64_t *h1, int64_t *w2, int64_t *len)
{
    *h1 = g->in[1] + g->pb[1] + g->pe[1];
    *w2 = g->in[2] + g->pb[2] + g->pe[2];
    *len = (*w2 + g->s[2] - 1) / g->s[2];
}

/* Depthwise: one input channel x to one output channel y (already holding the
 * bias), kernel w. The plane is copied into split (see dw_split_dims; room
 * for in0 * h1 * s2 * len + DW_SLACK floats), then every output row is one
 * dw_row call over its taps (at most k0 * k1 * k2 entries in xr and wv). */
static void conv_depthwise(const float *restrict x, const float *restrict w, const conv_geom *g, float *restrict y,
                           float *restrict split, const float **xr, float *wv)
{
    int64_t h1, w2, len, s2 = g->s[2], in1 = g->in[1], in2 = g->in[2];
    dw_split_dims(g, &h1, &w2, &len);
    int64_t rowlen = s2 * len;
    for (int64_t i0 = 0; i0 < g->in[0]; i0++)
        for (int64_t r = 0; r < h1; r++) {
            float *dst = split + (i0 * h1 + r) * rowlen;
            int64_t i1 = r - g->pb[1];
            const float *src = i1 >= 0 && i1 < in1 ? x + (i0 * in1 + i1) * in2 : NULL;
            memset(dst, 0, (size_t)rowlen * sizeof *dst);
            if (!src) continue;
            if (s2 == 1) {
                memcpy(dst + g->pb[2], src, (size_t)in2 * sizeof *dst);
                continue;
            }
            for (int64_t p = 0; p < s2; p++) { /* phase p: padded columns p, p + s2, ... */
                float *dp = dst + p * len;
                int64_t j = 0, c = p - g->pb[2];
                for (; c < 0; j++, c += s2) {}
                for (; c < in2; j++, c += s2) dp[j] = src[c];
            }
        }
    dw_row_fn row = dw_row_pick();
    for (int64_t o0 = 0; o0 < g->out[0]; o0++)
        for (int64_t o1 = 0; o1 < g->out[1]; o1++) {
            int64_t nt = 0;
            for (int64_t k0 = 0; k0 < g->k[0]; k0++) {
                int64_t i0 = o0 * g->s[0] - g->pb[0] + k0 * g->d[0];
                if (i0 < 0 || i0 >= g->in[0]) continue;
                for (int64_t k1 = 0; k1 < g->k[1]; k1++) {
                    int64_t r = o1 * g->s[1] + k1 * g->d[1]; /* row of the padded plane */
                    if (r < 0 || r >= h1) continue;
                    const float *base = split + (i0 * h1 + r) * rowlen;
                    for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                        int64_t q = k2 * g->d[2];
                        xr[nt] = base + (q % s2) * len + q / s2;
                        wv[nt] = w[(k0 * g->k[1] + k1) * g->k[2] + k2];
                        nt++;
                    }
                }
            }
            if (nt) row(y + (o0 * g->out[1] + o1) * g->out[2], xr, wv, nt, g->out[2]);
        }
}

/* Reads kernel_shape (if given it must agree with the weight's dims). */
static sk_status kernel_dims(const sk_op_ctx *ctx, const sk_tensor *w, int nd, int64_t *k)
{
    size_t nk;
    const int64_t *ks = sk_node_attr_ints(ctx->node, "kernel_shape", &nk);
    for (int i = 0; i < nd; i++) {
        k[i] = w->dims[2 + i];
        if (ks && (nk != (size_t)nd || ks[i] != k[i]))
            return sk_error_set(ctx->err, SK_EINVAL, "kernel_shape does not match the weight's shape");
    }
    return SK_OK;
}

#define CHUNK_FLOATS ((int64_t)1 << 17) /* im2col columns + output block of one Conv chunk (512 KB) */

static sk_status run_conv(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 2);
    if (s) return s;
    const sk_tensor *x0 = ctx->in[0], *w0 = ctx->in[1], *b0 = in_at(ctx, 2);
    sk_tensor *y = ctx->out[0];
    int dt = x0->dtype;
    char s1[128], s2[128];
    if ((s = check_float(ctx, x0, "X"))) return s;
    if (w0->dtype != dt || (b0 && b0->dtype != dt))
        return sk_error_set(ctx->err, SK_EINVAL, "inputs have different element types");
    int nd = x0->rank - 2;
    if (nd < 1 || w0->rank != x0->rank)
        return sk_error_set(ctx->err, SK_EINVAL, "X %s and W %s must have the same rank, at least 3",
                            sk_shape_str(x0->rank, x0->dims, s1, sizeof s1), sk_shape_str(w0->rank, w0->dims, s2, sizeof s2));
    int64_t group = sk_node_attr_int(ctx->node, "group", 1);
    int64_t N = x0->dims[0], C = x0->dims[1], M = w0->dims[0];
    if (group < 1 || C % group || M % group || w0->dims[1] * group != C)
        return sk_error_set(ctx->err, SK_EINVAL, "X %s, W %s and group %lld do not agree",
                            sk_shape_str(x0->rank, x0->dims, s1, sizeof s1),
                            sk_shape_str(w0->rank, w0->dims, s2, sizeof s2), (long long)group);
    if (b0 && (b0->rank != 1 || b0->dims[0] != M))
        return sk_error_set(ctx->err, SK_EINVAL, "bias has shape %s, expected [%lld]",
                            sk_shape_str(b0->rank, b0->dims, s1, sizeof s1), (long long)M);
    int64_t k[MAX_SPATIAL];
    conv_geom g;
    if ((s = kernel_dims(ctx, w0, nd, k))) return s;
    if ((s = geometry(ctx, GEOM_CONV, nd, x0->dims + 2, k, &g))) return s;
    int64_t od[SK_TENSOR_MAX_RANK] = { N, M };
    for (int i = 0; i < nd; i++) od[2 + i] = g.out[MAX_SPATIAL - nd + i];

    sk_tensor tx = { 0 }, tw = { 0 }, tbias = { 0 };
    const sk_tensor *x, *w, *b = NULL;
    float *col = NULL;
    const float **taps_x = NULL;
    float *taps_w = NULL;
    if ((s = f32_input(ctx, 0, &tx, &x)) || (s = f32_input(ctx, 1, &tw, &w))) goto done;
    if (b0 && (s = f32_input(ctx, 2, &tbias, &b))) goto done;
    if ((s = sk_tensor_alloc_uninit(y, SK_FLOAT, x0->rank, od, ctx->err))) goto done;
    if (y->numel == 0) goto convert;
    {
        int64_t cg = C / group, mg = M / group;
        int64_t isp = g.in[0] * g.in[1] * g.in[2], osp = g.out[0] * g.out[1] * g.out[2];
        int64_t kk = g.k[0] * g.k[1] * g.k[2], kdim = cg * kk;
        int64_t nrows = g.out[0] * g.out[1];
        int pointwise = kk == 1;
        for (int i = 0; i < MAX_SPATIAL; i++)
            if (g.s[i] != 1 || g.pb[i] || g.pe[i]) pointwise = 0;
        int depthwise = cg == 1 && mg == 1;
        /* Output rows are done in chunks whose im2col columns and output
         * block fit in L2 together, so the GEMM reads and writes cache. */
        int64_t per_row = (pointwise ? mg : mg + kdim) * g.out[2];
        int64_t chunk = per_row > 0 ? CHUNK_FLOATS / per_row : nrows;
        if (chunk * g.out[2] < 256) chunk = (256 + g.out[2] - 1) / g.out[2];
        if (chunk < 1) chunk = 1;
        if (chunk > nrows) chunk = nrows;
        size_t nfl = 0, bytes = 0;
        int bad = 0;
        if (depthwise) { /* split plane, and the pointers and weights of the taps */
            int64_t h1, w2, len;
            dw_split_dims(&g, &h1, &w2, &len);
            bad = sk_mul_size((size_t)g.in[0] * (size_t)h1, (size_t)(g.s[2] * len), &nfl) ||
                  sk_add_size(nfl, DW_SLACK, &nfl) || !(taps_x = malloc((size_t)kk * sizeof *taps_x)) ||
                  !(taps_w = malloc((size_t)kk * sizeof *taps_w));
        } else if (!pointwise) {
            bad = sk_mul_size((size_t)chunk * (size_t)g.out[2], (size_t)kdim, &nfl);
        }
        if (bad || sk_mul_size(nfl, sizeof(float), &bytes) || !(col = malloc(bytes ? bytes : 1))) {
            s = sk_error_set(ctx->err, SK_ENOMEM, "out of memory for the im2col buffer");
            goto done;
        }
        const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
        float *yd = y->data;
        float beta = bd ? 1.0f : 0.0f;
        for (int64_t n = 0; n < N; n++)
            for (int64_t gi = 0; gi < group; gi++) {
                const float *xg = xd + (n * C + gi * cg) * isp;
                const float *wg = wd + gi * mg * kdim;
                float *yg = yd + (n * M + gi * mg) * osp;
                if (depthwise) {
                    fill_f32(yg, bd ? bd[gi] : 0.0f, osp);
                    conv_depthwise(xg, wg, &g, yg, col, taps_x, taps_w);
                    continue;
                }
                for (int64_t r0 = 0; r0 < nrows && !s; r0 += chunk) {
                    int64_t r1 = r0 + chunk < nrows ? r0 + chunk : nrows;
                    int64_t c0 = r0 * g.out[2], ncol = (r1 - r0) * g.out[2];
                    if (bd)
                        for (int64_t m = 0; m < mg; m++) fill_f32(yg + m * osp + c0, bd[gi * mg + m], ncol);
                    if (pointwise) {
                        s = sk_gemm_f32(0, 0, (size_t)mg, (size_t)ncol, (size_t)cg, 1.0f, wg, (size_t)kdim, xg + c0,
                                        (size_t)isp, beta, yg + c0, (size_t)osp, ctx->threads, ctx->err);
                    } else {
                        im2col(xg, &g, cg, r0, r1, col);
                        s = sk_gemm_f32(0, 0, (size_t)mg, (size_t)ncol, (size_t)kdim, 1.0f, wg, (size_t)kdim, col,
                                        (size_t)ncol, beta, yg + c0, (size_t)osp, ctx->threads, ctx->err);
                    }
                }
                if (s) goto done;
            }
    }
convert:
    s = f32_to(y, dt, ctx->err);
done:
    free(col);
    free(taps_x);
    free(taps_w);
    sk_tensor_free(&tx);
    sk_tensor_free(&tw);
    sk_tensor_free(&tbias);
    return s;
}

/* ---- ConvTranspose --------------------------------------------------------- */

/* Geometry of a transposed convolution, in the same normalised form as
 * conv_geom but with in/out meaning X's and Y's spatial sizes. Output sizes
 * and pads follow ONNX Runtime 1.30 and the ONNX spec: with output_shape, the
 * total padding is max(0, natural - wanted), split with the odd unit at the
 * end (at the start for SAME_LOWER); with SAME_* and no output_shape, the
 * output is in * stride. */
static sk_status geometry_transpose(const sk_op_ctx *ctx, int nd, const int64_t *in, const int64_t *k, conv_geom *g)
{
    const Onnx__NodeProto *n = ctx->node;
    size_t ns, ndl, np, nop, nos;
    const int64_t *st = sk_node_attr_ints(n, "strides", &ns);
    const int64_t *dl = sk_node_attr_ints(n, "dilations", &ndl);
    const int64_t *pads = sk_node_attr_ints(n, "pads", &np);
    const int64_t *opad = sk_node_attr_ints(n, "output_padding", &nop);
    const int64_t *oshape = sk_node_attr_ints(n, "output_shape", &nos);
    char ap[32];
    attr_str(n, "auto_pad", "NOTSET", ap, sizeof ap);
    if (nd < 1 || nd > MAX_SPATIAL)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "%d spatial dims are not supported (1 to %d)", nd, MAX_SPATIAL);
    if ((st && ns != (size_t)nd) || (dl && ndl != (size_t)nd) || (pads && np != 2 * (size_t)nd) ||
        (opad && nop != (size_t)nd) || (oshape && nos != (size_t)nd && nos != (size_t)nd + 2))
        return sk_error_set(ctx->err, SK_EINVAL,
                            "strides, dilations, pads, output_padding or output_shape do not match %d spatial dims", nd);
    int same_lower = !strcmp(ap, "SAME_LOWER"), same = same_lower || !strcmp(ap, "SAME_UPPER");
    int valid = !strcmp(ap, "VALID");
    memset(g, 0, sizeof *g);
    g->nd = nd;
    for (int i = 0; i < MAX_SPATIAL; i++) g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
    for (int i = 0; i < nd; i++) {
        int j = MAX_SPATIAL - nd + i;
        int64_t s = st ? st[i] : 1, d = dl ? dl[i] : 1, kk = k[i], op = opad ? opad[i] : 0;
        if (s < 1 || d < 1 || kk < 1 || op < 0 || s > SK_MAX_DIM || d > SK_MAX_DIM || kk > SK_MAX_DIM ||
            op > SK_MAX_DIM || in[i] > SK_MAX_DIM)
            return sk_error_set(ctx->err, SK_EINVAL, "kernel, stride, dilation or output_padding is out of range");
        int64_t natural = s * (in[i] - 1) + op + (kk - 1) * d + 1, pb = 0, pe = 0, o;
        int64_t want = oshape ? oshape[nos == (size_t)nd ? i : i + 2] : same ? in[i] * s : -1;
        if (want >= 0) {
            int64_t tot = natural - want > 0 ? natural - want : 0;
            pb = same_lower ? tot - tot / 2 : tot / 2;
            pe = tot - pb;
            o = want;
        } else {
            if (!valid && pads) {
                pb = pads[i];
                pe = pads[i + nd];
            }
            if (pb < 0 || pe < 0 || pb > SK_MAX_DIM || pe > SK_MAX_DIM)
                return sk_error_set(ctx->err, SK_EINVAL, "pads are out of range");
            o = natural - pb - pe;
        }
        if (o < 0 || o > SK_MAX_DIM) return sk_error_set(ctx->err, SK_EINVAL, "output size %lld is out of range", (long long)o);
        g->in[j] = in[i];
        g->out[j] = o;
        g->k[j] = kk;
        g->s[j] = s;
        g->d[j] = d;
        g->pb[j] = pb;
        g->pe[j] = pe;
    }
    return SK_OK;
}

/* y[m] += the kernel taps of col scattered to their output positions. col is
 * [mg * K, isp]. */
static void col2im(const float *col, const conv_geom *g, int64_t mg, float *y)
{
    int64_t isp = g->in[0] * g->in[1] * g->in[2], osp = g->out[0] * g->out[1] * g->out[2];
    for (int64_t m = 0; m < mg; m++)
        for (int64_t k0 = 0; k0 < g->k[0]; k0++)
            for (int64_t k1 = 0; k1 < g->k[1]; k1++)
                for (int64_t k2 = 0; k2 < g->k[2]; k2++, col += isp) {
                    float *ym = y + m * osp;
                    int64_t off2 = k2 * g->d[2] - g->pb[2];
                    int64_t lo = off2 < 0 ? div_ceil(-off2, g->s[2]) : 0;
                    int64_t hi = div_floor(g->out[2] - 1 - off2, g->s[2]) + 1;
                    if (hi > g->in[2]) hi = g->in[2];
                    if (lo >= hi) continue;
                    for (int64_t i0 = 0; i0 < g->in[0]; i0++) {
                        int64_t o0 = i0 * g->s[0] - g->pb[0] + k0 * g->d[0];
                        if (o0 < 0 || o0 >= g->out[0]) continue;
                        for (int64_t i1 = 0; i1 < g->in[1]; i1++) {
                            int64_t o1 = i1 * g->s[1] - g->pb[1] + k1 * g->d[1];
                            if (o1 < 0 || o1 >= g->out[1]) continue;
                            const float *cr = col + (i0 * g->in[1] + i1) * g->in[2];
                            float *yr = ym + (o0 * g->out[1] + o1) * g->out[2] + off2;
                            for (int64_t i2 = lo; i2 < hi; i2++) yr[i2 * g->s[2]] += cr[i2];
                        }
                    }
                }
}

static sk_status run_conv_transpose(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 2);
    if (s) return s;
    const sk_tensor *x0 = ctx->in[0], *w0 = ctx->in[1], *b0 = in_at(ctx, 2);
    sk_tensor *y = ctx->out[0];
    int dt = x0->dtype;
    char s1[128], s2[128];
    if ((s = check_float(ctx, x0, "X"))) return s;
    if (w0->dtype != dt || (b0 && b0->dtype != dt))
        return sk_error_set(ctx->err, SK_EINVAL, "inputs have different element types");
    int nd = x0->rank - 2;
    int64_t group = sk_node_attr_int(ctx->node, "group", 1);
    if (nd < 1 || w0->rank != x0->rank || group < 1 || x0->dims[1] != w0->dims[0] || x0->dims[1] % group)
        return sk_error_set(ctx->err, SK_EINVAL, "X %s, W %s and group %lld do not agree",
                            sk_shape_str(x0->rank, x0->dims, s1, sizeof s1),
                            sk_shape_str(w0->rank, w0->dims, s2, sizeof s2), (long long)group);
    int64_t N = x0->dims[0], C = x0->dims[1], mg = w0->dims[1], M = mg * group, cg = C / group;
    if (b0 && (b0->rank != 1 || b0->dims[0] != M))
        return sk_error_set(ctx->err, SK_EINVAL, "bias has shape %s, expected [%lld]",
                            sk_shape_str(b0->rank, b0->dims, s1, sizeof s1), (long long)M);
    int64_t k[MAX_SPATIAL];
    conv_geom g;
    if ((s = kernel_dims(ctx, w0, nd, k))) return s;
    if ((s = geometry_transpose(ctx, nd, x0->dims + 2, k, &g))) return s;
    int64_t od[SK_TENSOR_MAX_RANK] = { N, M };
    for (int i = 0; i < nd; i++) od[2 + i] = g.out[MAX_SPATIAL - nd + i];

    sk_tensor tx = { 0 }, tw = { 0 }, tbias = { 0 };
    const sk_tensor *x, *w, *b = NULL;
    float *col = NULL;
    if ((s = f32_input(ctx, 0, &tx, &x)) || (s = f32_input(ctx, 1, &tw, &w))) goto done;
    if (b0 && (s = f32_input(ctx, 2, &tbias, &b))) goto done;
    if ((s = sk_tensor_alloc(y, SK_FLOAT, x0->rank, od, ctx->err))) goto done;
    if (y->numel == 0) goto convert;
    {
        int64_t isp = g.in[0] * g.in[1] * g.in[2], osp = g.out[0] * g.out[1] * g.out[2];
        int64_t kk = g.k[0] * g.k[1] * g.k[2], rows = mg * kk;
        size_t bytes;
        if (sk_mul_size((size_t)rows, (size_t)isp, &bytes) || sk_mul_size(bytes, sizeof(float), &bytes) ||
            !(col = malloc(bytes ? bytes : 1))) {
            s = sk_error_set(ctx->err, SK_ENOMEM, "out of memory for the col2im buffer");
            goto done;
        }
        const float *xd = x->data, *wd = w->data;
        float *yd = y->data;
        for (int64_t n = 0; n < N; n++)
            for (int64_t gi = 0; gi < group; gi++) {
                const float *xg = xd + (n * C + gi * cg) * isp;
                const float *wg = wd + gi * cg * rows;
                float *yg = yd + (n * M + gi * mg) * osp;
                s = sk_gemm_f32(1, 0, (size_t)rows, (size_t)isp, (size_t)cg, 1.0f, wg, (size_t)rows, xg,
                                (size_t)isp, 0.0f, col, (size_t)isp, ctx->threads, ctx->err);
                if (s) goto done;
                col2im(col, &g, mg, yg);
            }
        if (b) {
            const float *bd = b->data;
            for (int64_t n = 0; n < N; n++)
                for (int64_t m = 0; m < M; m++) {
                    float *ym = yd + (n * M + m) * osp;
                    for (int64_t p = 0; p < osp; p++) ym[p] += bd[m];
                }
        }
    }
convert:
    s = f32_to(y, dt, ctx->err);
done:
    free(col);
    sk_tensor_free(&tx);
    sk_tensor_free(&tw);
    sk_tensor_free(&tbias);
    return s;
}

/* ---- pooling ---------------------------------------------------------------- */

/* One channel plane: max (with the flat input index of the max when ind is
 * set) or average over each window. */
static void pool_plane(const float *x, const conv_geom *g, int is_max, int include_pad, float *y, int64_t *ind,
                       int64_t ind_base, int col_major)
{
    for (int64_t o0 = 0; o0 < g->out[0]; o0++)
        for (int64_t o1 = 0; o1 < g->out[1]; o1++)
            for (int64_t o2 = 0; o2 < g->out[2]; o2++) {
                int64_t st0 = o0 * g->s[0] - g->pb[0], st1 = o1 * g->s[1] - g->pb[1], st2 = o2 * g->s[2] - g->pb[2];
                float best = -INFINITY;
                double sum = 0;
                int64_t cnt = 0, padded = 0, arg = -1;
                for (int64_t k0 = 0; k0 < g->k[0]; k0++) {
                    int64_t i0 = st0 + k0 * g->d[0];
                    int in0 = i0 >= 0 && i0 < g->in[0], pad0 = i0 >= -g->pb[0] && i0 < g->in[0] + g->pe[0];
                    for (int64_t k1 = 0; k1 < g->k[1]; k1++) {
                        int64_t i1 = st1 + k1 * g->d[1];
                        int in1 = in0 && i1 >= 0 && i1 < g->in[1];
                        int pad1 = pad0 && i1 >= -g->pb[1] && i1 < g->in[1] + g->pe[1];
                        for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                            int64_t i2 = st2 + k2 * g->d[2];
                            if (pad1 && i2 >= -g->pb[2] && i2 < g->in[2] + g->pe[2]) padded++;
                            if (!in1 || i2 < 0 || i2 >= g->in[2]) continue;
                            int64_t at = (i0 * g->in[1] + i1) * g->in[2] + i2;
                            float v = x[at];
                            if (is_max) {
                                if (v > best || arg < 0) {
                                    best = v;
                                    arg = col_major ? i0 + g->in[0] * (i1 + g->in[1] * i2) : at;
                                }
                            } else {
                                sum += v;
                                cnt++;
                            }
                        }
                    }
                }
                int64_t o = (o0 * g->out[1] + o1) * g->out[2] + o2;
                if (is_max) {
                    y[o] = best;
                    if (ind) ind[o] = ind_base + (arg < 0 ? 0 : arg);
                } else {
                    int64_t div = include_pad ? padded : cnt;
                    y[o] = div ? (float)(sum / (double)div) : NAN;
                }
            }
}

static sk_status run_pool(sk_op_ctx *ctx, int is_max)
{
    sk_status s = need_in(ctx, 1);
    if (s) return s;
    const sk_tensor *x0 = ctx->in[0];
    sk_tensor *y = ctx->out[0], *ind = out_at(ctx, 1);
    int dt = x0->dtype;
    char s1[128];
    if (!is_float(dt) && !(is_max && (dt == SK_INT8 || dt == SK_UINT8)))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "%s input is not supported", sk_dtype_name(dt));
    int nd = x0->rank - 2;
    if (nd < 1) return sk_error_set(ctx->err, SK_EINVAL, "input of shape %s has no spatial dims",
                                    sk_shape_str(x0->rank, x0->dims, s1, sizeof s1));
    size_t nk;
    const int64_t *ks = sk_node_attr_ints(ctx->node, "kernel_shape", &nk);
    if (!ks || nk != (size_t)nd)
        return sk_error_set(ctx->err, SK_EINVAL, "kernel_shape is missing or does not have %d values", nd);
    if (!is_max && ctx->opset < 19 && sk_node_attr(ctx->node, "dilations"))
        return sk_error_set(ctx->err, SK_EINVAL, "AveragePool has dilations only from opset 19");
    conv_geom g;
    if ((s = geometry(ctx, GEOM_POOL, nd, x0->dims + 2, ks, &g))) return s;
    int include_pad = sk_node_attr_int(ctx->node, "count_include_pad", 0) != 0;
    int col_major = sk_node_attr_int(ctx->node, "storage_order", 0) != 0;
    int64_t od[SK_TENSOR_MAX_RANK] = { x0->dims[0], x0->dims[1] };
    for (int i = 0; i < nd; i++) od[2 + i] = g.out[MAX_SPATIAL - nd + i];
    sk_tensor tx = { 0 };
    const sk_tensor *x;
    if ((s = f32_view(x0, &tx, &x, ctx->err))) goto done;
    if ((s = sk_tensor_alloc_uninit(y, SK_FLOAT, x0->rank, od, ctx->err))) goto done;
    if (is_max && ind && (s = sk_tensor_alloc_uninit(ind, SK_INT64, x0->rank, od, ctx->err))) goto done;
    {
        int64_t planes = od[0] * od[1];
        int64_t isp = g.in[0] * g.in[1] * g.in[2], osp = g.out[0] * g.out[1] * g.out[2];
        for (int64_t p = 0; p < planes; p++)
            pool_plane((const float *)x->data + p * isp, &g, is_max, include_pad, (float *)y->data + p * osp,
                       is_max && ind ? (int64_t *)ind->data + p * osp : NULL, p * isp, col_major);
    }
    s = f32_to(y, dt, ctx->err);
done:
    sk_tensor_free(&tx);
    return s;
}

static sk_status run_maxpool(sk_op_ctx *ctx)
{
    return run_pool(ctx, 1);
}

static sk_status run_avgpool(sk_op_ctx *ctx)
{
    return run_pool(ctx, 0);
}

static sk_status run_global_pool(sk_op_ctx *ctx, int is_max)
{
    sk_status s = need_in(ctx, 1);
    if (s) return s;
    const sk_tensor *x0 = ctx->in[0];
    sk_tensor *y = ctx->out[0];
    int dt = x0->dtype;
    if ((s = check_float(ctx, x0, "X"))) return s;
    if (x0->rank < 2) return sk_error_set(ctx->err, SK_EINVAL, "input has rank %d, at least 2 needed", x0->rank);
    int64_t od[SK_TENSOR_MAX_RANK];
    for (int i = 0; i < x0->rank; i++) od[i] = i < 2 ? x0->dims[i] : 1;
    sk_tensor tx = { 0 };
    const sk_tensor *x;
    if ((s = f32_view(x0, &tx, &x, ctx->err))) goto done;
    if ((s = sk_tensor_alloc_uninit(y, SK_FLOAT, x0->rank, od, ctx->err))) goto done;
    {
        int64_t planes = od[0] * od[1], sp = planes ? x0->numel / planes : 0;
        const float *xd = x->data;
        float *yd = y->data;
        for (int64_t p = 0; p < planes; p++) {
            const float *xp = xd + p * sp;
            if (is_max) {
                float m = -INFINITY;
                for (int64_t i = 0; i < sp; i++) m = xp[i] > m || xp[i] != xp[i] ? xp[i] : m;
                yd[p] = m;
            } else {
                double acc = 0;
                for (int64_t i = 0; i < sp; i++) acc += xp[i];
                yd[p] = sp ? (float)(acc / (double)sp) : NAN;
            }
        }
    }
    s = f32_to(y, dt, ctx->err);
done:
    sk_tensor_free(&tx);
    return s;
}

static sk_status run_global_avgpool(sk_op_ctx *ctx)
{
    return run_global_pool(ctx, 0);
}

static sk_status run_global_maxpool(sk_op_ctx *ctx)
{
    return run_global_pool(ctx, 1);
}

/* MaxUnpool: X values scattered to the flat output positions in I (as MaxPool
 * produced them), zeros elsewhere. */
static sk_status run_maxunpool(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 2);
    if (s) return s;
    const sk_tensor *x = ctx->in[0], *ind = ctx->in[1], *os = in_at(ctx, 2);
    sk_tensor *y = ctx->out[0];
    char s1[128], s2[128];
    int nd = x->rank - 2;
    if (nd < 1 || nd > MAX_SPATIAL || ind->dtype != SK_INT64 || ind->numel != x->numel)
        return sk_error_set(ctx->err, SK_EINVAL, "X %s and int64 indices %s do not match",
                            sk_shape_str(x->rank, x->dims, s1, sizeof s1), sk_shape_str(ind->rank, ind->dims, s2, sizeof s2));
    size_t nk, ns, np;
    const int64_t *ks = sk_node_attr_ints(ctx->node, "kernel_shape", &nk);
    const int64_t *st = sk_node_attr_ints(ctx->node, "strides", &ns);
    const int64_t *pads = sk_node_attr_ints(ctx->node, "pads", &np);
    if (!ks || nk != (size_t)nd || (st && ns != (size_t)nd) || (pads && np != 2 * (size_t)nd))
        return sk_error_set(ctx->err, SK_EINVAL, "kernel_shape, strides or pads do not match %d spatial dims", nd);
    int64_t od[SK_TENSOR_MAX_RANK] = { x->dims[0], x->dims[1] };
    if (os) {
        if (os->numel != x->rank) return sk_error_set(ctx->err, SK_EINVAL, "output_shape must have %d values", x->rank);
        for (int i = 0; i < x->rank; i++) od[i] = sk_tensor_get_i64(os, i);
    } else {
        for (int i = 0; i < nd; i++) {
            int64_t sv = st ? st[i] : 1, pb = pads ? pads[i] : 0, pe = pads ? pads[i + nd] : 0;
            if (sv < 1 || ks[i] < 1 || sv > SK_MAX_DIM || ks[i] > SK_MAX_DIM || pb < 0 || pe < 0 || pb > SK_MAX_DIM ||
                pe > SK_MAX_DIM)
                return sk_error_set(ctx->err, SK_EINVAL, "kernel, stride or pads are out of range");
            od[2 + i] = (x->dims[2 + i] - 1) * sv + ks[i] - pb - pe;
        }
    }
    for (int i = 0; i < x->rank; i++)
        if (od[i] < 0 || od[i] > SK_MAX_DIM) return sk_error_set(ctx->err, SK_EINVAL, "output dim %lld is out of range", (long long)od[i]);
    if ((s = sk_tensor_alloc(y, x->dtype, x->rank, od, ctx->err))) return s;
    int64_t bits = sk_dtype_table[x->dtype].bits;
    if (bits % 8 || bits == 0) return sk_error_set(ctx->err, SK_EUNSUPPORTED, "MaxUnpool of %s is not supported", sk_dtype_name(x->dtype));
    size_t es = (size_t)bits / 8;
    const int64_t *id = ind->data;
    for (int64_t i = 0; i < x->numel; i++) {
        if (id[i] < 0 || id[i] >= y->numel)
            return sk_error_set(ctx->err, SK_EINVAL, "index %lld is outside the output of %lld values", (long long)id[i],
                                (long long)y->numel);
        memcpy((char *)y->data + (size_t)id[i] * es, (const char *)x->data + (size_t)i * es, es);
    }
    return SK_OK;
}

/* ---- BatchNormalization, InstanceNormalization, LRN -------------------------- */

static sk_status run_batchnorm(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 5);
    if (s) return s;
    const sk_tensor *x0 = ctx->in[0];
    sk_tensor *y = ctx->out[0];
    int dt = x0->dtype;
    char s1[128];
    if ((s = check_float(ctx, x0, "X"))) return s;
    if (ctx->opset < 9 && sk_node_attr_int(ctx->node, "spatial", 1) == 0)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "BatchNormalization with spatial=0 is not supported");
    float eps = sk_node_attr_float(ctx->node, "epsilon", 1e-5f);
    float momentum = sk_node_attr_float(ctx->node, "momentum", 0.9f);
    int training = ctx->opset >= 14 && sk_node_attr_int(ctx->node, "training_mode", 0) != 0;
    if (ctx->opset < 14 && (out_at(ctx, 1) || out_at(ctx, 2)))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "training-mode outputs of BatchNormalization before opset 14 are not supported");
    int64_t N = x0->rank >= 1 ? x0->dims[0] : 1, C = x0->rank >= 2 ? x0->dims[1] : 1;
    int64_t sp = N && C ? x0->numel / (N * C) : 0;
    for (int i = 1; i < 5; i++)
        if (ctx->in[i]->numel != C || !is_float(ctx->in[i]->dtype))
            return sk_error_set(ctx->err, SK_EINVAL, "input %d has shape %s, expected [%lld] floats", i,
                                sk_shape_str(ctx->in[i]->rank, ctx->in[i]->dims, s1, sizeof s1), (long long)C);
    sk_tensor tmp[5] = { { 0 } };
    const sk_tensor *v[5];
    double *mean = NULL, *var = NULL;
    for (int i = 0; i < 5; i++)
        if ((s = f32_view(ctx->in[i], &tmp[i], &v[i], ctx->err))) goto done;
    if ((s = sk_tensor_alloc_uninit(y, SK_FLOAT, x0->rank, x0->dims, ctx->err))) goto done;
    mean = calloc((size_t)C + 1, sizeof *mean);
    var = calloc((size_t)C + 1, sizeof *var);
    if (!mean || !var) {
        s = sk_error_set(ctx->err, SK_ENOMEM, "out of memory");
        goto done;
    }
    const float *xd = v[0]->data, *sc = v[1]->data, *bi = v[2]->data, *rm = v[3]->data, *rv = v[4]->data;
    float *yd = y->data;
    for (int64_t c = 0; c < C; c++) {
        if (training) {
            double acc = 0, acc2 = 0, cnt = (double)(N * sp);
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < sp; i++) acc += xd[(n * C + c) * sp + i];
            mean[c] = cnt ? acc / cnt : 0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < sp; i++) {
                    double d = xd[(n * C + c) * sp + i] - mean[c];
                    acc2 += d * d;
                }
            var[c] = cnt ? acc2 / cnt : 0;
        } else {
            mean[c] = rm[c];
            var[c] = rv[c];
        }
        float a = (float)(sc[c] / sqrt(var[c] + eps)), b = (float)(bi[c] - mean[c] * a);
        for (int64_t n = 0; n < N; n++) {
            const float *xp = xd + (n * C + c) * sp;
            float *yp = yd + (n * C + c) * sp;
            for (int64_t i = 0; i < sp; i++) yp[i] = xp[i] * a + b;
        }
    }
    if ((s = f32_to(y, dt, ctx->err))) goto done;
    for (int o = 1; o <= 2; o++) {
        sk_tensor *t = out_at(ctx, (size_t)o);
        if (!t) continue;
        int64_t cd = C;
        if ((s = sk_tensor_alloc_uninit(t, SK_FLOAT, 1, &cd, ctx->err))) goto done;
        const float *run = o == 1 ? rm : rv;
        const double *cur = o == 1 ? mean : var;
        for (int64_t c = 0; c < C; c++)
            ((float *)t->data)[c] = training ? (float)(run[c] * momentum + cur[c] * (1 - momentum)) : run[c];
        if ((s = f32_to(t, ctx->in[o + 2]->dtype, ctx->err))) goto done;
    }
done:
    for (int i = 0; i < 5; i++) sk_tensor_free(&tmp[i]);
    free(mean);
    free(var);
    return s;
}

static sk_status run_instancenorm(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 3);
    if (s) return s;
    const sk_tensor *x0 = ctx->in[0];
    sk_tensor *y = ctx->out[0];
    int dt = x0->dtype;
    if ((s = check_float(ctx, x0, "X"))) return s;
    if (x0->rank < 2) return sk_error_set(ctx->err, SK_EINVAL, "input has rank %d, at least 2 needed", x0->rank);
    int64_t N = x0->dims[0], C = x0->dims[1], sp = N && C ? x0->numel / (N * C) : 0;
    if (ctx->in[1]->numel != C || ctx->in[2]->numel != C)
        return sk_error_set(ctx->err, SK_EINVAL, "scale and B must have %lld values", (long long)C);
    float eps = sk_node_attr_float(ctx->node, "epsilon", 1e-5f);
    sk_tensor tmp[3] = { { 0 } };
    const sk_tensor *v[3];
    for (int i = 0; i < 3; i++)
        if ((s = f32_view(ctx->in[i], &tmp[i], &v[i], ctx->err))) goto done;
    if ((s = sk_tensor_alloc_uninit(y, SK_FLOAT, x0->rank, x0->dims, ctx->err))) goto done;
    {
        const float *xd = v[0]->data, *sc = v[1]->data, *bi = v[2]->data;
        float *yd = y->data;
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) {
                const float *xp = xd + (n * C + c) * sp;
                float *yp = yd + (n * C + c) * sp;
                double acc = 0, acc2 = 0;
                for (int64_t i = 0; i < sp; i++) acc += xp[i];
                double mean = sp ? acc / (double)sp : 0;
                for (int64_t i = 0; i < sp; i++) acc2 += (xp[i] - mean) * (xp[i] - mean);
                double var = sp ? acc2 / (double)sp : 0;
                float a = (float)(sc[c] / sqrt(var + eps)), b = (float)(bi[c] - mean * a);
                for (int64_t i = 0; i < sp; i++) yp[i] = xp[i] * a + b;
            }
    }
    s = f32_to(y, dt, ctx->err);
done:
    for (int i = 0; i < 3; i++) sk_tensor_free(&tmp[i]);
    return s;
}

static sk_status run_lrn(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 1);
    if (s) return s;
    const sk_tensor *x0 = ctx->in[0];
    sk_tensor *y = ctx->out[0];
    int dt = x0->dtype;
    if ((s = check_float(ctx, x0, "X"))) return s;
    if (x0->rank < 2) return sk_error_set(ctx->err, SK_EINVAL, "input has rank %d, at least 2 needed", x0->rank);
    int64_t size = sk_node_attr_int(ctx->node, "size", 0);
    if (size < 1) return sk_error_set(ctx->err, SK_EINVAL, "attribute size must be positive");
    double alpha = sk_node_attr_float(ctx->node, "alpha", 1e-4f), beta = sk_node_attr_float(ctx->node, "beta", 0.75f);
    double bias = sk_node_attr_float(ctx->node, "bias", 1.0f);
    int64_t N = x0->dims[0], C = x0->dims[1], sp = N && C ? x0->numel / (N * C) : 0;
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo; /* window [c - lo, c + hi] */
    sk_tensor tx = { 0 };
    const sk_tensor *x;
    if ((s = f32_view(x0, &tx, &x, ctx->err))) goto done;
    if ((s = sk_tensor_alloc_uninit(y, SK_FLOAT, x0->rank, x0->dims, ctx->err))) goto done;
    {
        const float *xd = x->data;
        float *yd = y->data;
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < sp; i++) {
                    double sq = 0;
                    for (int64_t j = c - lo; j <= c + hi; j++)
                        if (j >= 0 && j < C) {
                            double v = xd[(n * C + j) * sp + i];
                            sq += v * v;
                        }
                    int64_t at = (n * C + c) * sp + i;
                    yd[at] = (float)(xd[at] / pow(bias + alpha / (double)size * sq, beta));
                }
    }
    s = f32_to(y, dt, ctx->err);
done:
    sk_tensor_free(&tx);
    return s;
}

/* ---- Resize and Upsample ------------------------------------------------------ */

typedef enum { RZ_NEAREST, RZ_LINEAR, RZ_CUBIC } rz_mode;
typedef enum {
    CT_HALF_PIXEL, CT_HALF_PIXEL_SYMMETRIC, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_ASYMMETRIC,
    CT_TF_HALF_PIXEL_FOR_NN, CT_TF_CROP_AND_RESIZE
} rz_coord;
typedef enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE } rz_nearest;

typedef struct rz_params {
    rz_mode mode;
    rz_coord coord;
    rz_nearest nearest;
    float cubic_a;
    int exclude_outside;
    float extrapolation;
} rz_params;

#define RZ_TAPS 4

/* Per axis: for each output coordinate, up to RZ_TAPS (input index, weight)
 * taps (weight-0 taps dropped) and whether it falls outside the crop box. */
typedef struct rz_axis {
    int64_t n;
    uint8_t *ntaps;
    uint8_t *outside;
    int64_t *idx;
    float *w;
} rz_axis;

/* The source coordinate of output coordinate x, computed in float like ONNX
 * Runtime so that nearest-neighbour ties fall the same way. */
static float rz_source(rz_coord ct, float x, float scale, float out, float in, float roi0, float roi1)
{
    switch (ct) {
    case CT_ASYMMETRIC: return x / scale;
    case CT_PYTORCH_HALF_PIXEL: return out > 1 ? (x + 0.5f) / scale - 0.5f : 0.0f;
    case CT_TF_HALF_PIXEL_FOR_NN: return (x + 0.5f) / scale;
    case CT_ALIGN_CORNERS: return out == 1 ? 0.0f : x * (in - 1) / (out - 1);
    case CT_TF_CROP_AND_RESIZE:
        return out > 1 ? roi0 * (in - 1) + (x * (roi1 - roi0) * (in - 1)) / (out - 1)
                       : (float)(0.5 * (roi0 + roi1) * (in - 1));
    case CT_HALF_PIXEL_SYMMETRIC: {
        float adj = out / (scale * in), center = in / 2, off = center * (1 - adj);
        return (float)(off + (x + 0.5) / scale - 0.5);
    }
    default: return (x + 0.5f) / scale - 0.5f;
    }
}

static int64_t rz_nearest_index(rz_nearest nm, float x, int down)
{
    switch (nm) {
    case NM_SIMPLE: return down ? (int64_t)ceilf(x) : (int64_t)x;
    case NM_ROUND_PREFER_CEIL: return (int64_t)roundf(x);
    case NM_FLOOR: return (int64_t)floorf(x);
    case NM_CEIL: return (int64_t)ceilf(x);
    default:
        if (x == (float)(int64_t)x + 0.5f) return (int64_t)floorf(x);
        return (int64_t)roundf(x);
    }
}

static sk_status rz_axis_build(rz_axis *ax, const rz_params *p, int64_t in, int64_t out, float scale, float roi0,
                               float roi1, sk_error *err)
{
    size_t n = (size_t)out;
    ax->n = out;
    ax->ntaps = calloc(n + 1, 1);
    ax->outside = calloc(n + 1, 1);
    ax->idx = calloc(n * RZ_TAPS + 1, sizeof *ax->idx);
    ax->w = calloc(n * RZ_TAPS + 1, sizeof *ax->w);
    if (!ax->ntaps || !ax->outside || !ax->idx || !ax->w) return sk_error_set(err, SK_ENOMEM, "out of memory");
    for (int64_t o = 0; o < out; o++) {
        float x = rz_source(p->coord, (float)o, scale, (float)out, (float)in, roi0, roi1);
        int64_t *idx = ax->idx + o * RZ_TAPS;
        float *w = ax->w + o * RZ_TAPS;
        int nt = 0;
        if (p->coord == CT_TF_CROP_AND_RESIZE && (x < 0 || x > (float)(in - 1))) ax->outside[o] = 1;
        if (in == 1 && p->mode != RZ_CUBIC) {
            idx[0] = 0;
            w[0] = 1;
            nt = 1;
        } else if (p->mode == RZ_NEAREST) {
            int64_t i = rz_nearest_index(p->nearest, x, scale < 1);
            idx[0] = i < 0 ? 0 : i >= in ? in - 1 : i;
            w[0] = 1;
            nt = 1;
        } else if (p->mode == RZ_LINEAR) {
            float xc = x < 0 ? 0 : x > (float)(in - 1) ? (float)(in - 1) : x;
            int64_t i0 = (int64_t)xc < in - 1 ? (int64_t)xc : in - 1, i1 = i0 + 1 < in - 1 ? i0 + 1 : in - 1;
            float d0 = fabsf(xc - (float)i0), d1 = fabsf(xc - (float)i1);
            if (i0 == i1) d0 = d1 = 0.5f;
            idx[0] = i0; w[0] = d1;
            idx[1] = i1; w[1] = d0;
            nt = 2;
        } else {
            float fl = floorf(x), t = x - fl, a = p->cubic_a;
            float c[4];
            c[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
            c[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
            c[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
            c[3] = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a;
            float sum = 0;
            for (int k = 0; k < 4; k++) {
                int64_t i = (int64_t)fl - 1 + k;
                if (p->exclude_outside && (i < 0 || i >= in)) c[k] = 0;
                sum += c[k];
                idx[k] = i < 0 ? 0 : i >= in ? in - 1 : i;
            }
            for (int k = 0; k < 4; k++) w[k] = p->exclude_outside && sum != 0 ? c[k] / sum : c[k];
            nt = 4;
        }
        /* drop zero-weight taps (exact positions, scale 1 axes) */
        int m = 0;
        for (int k = 0; k < nt; k++)
            if (w[k] != 0 || (k == nt - 1 && m == 0)) {
                idx[m] = idx[k];
                w[m] = w[k];
                m++;
            }
        ax->ntaps[o] = (uint8_t)m;
    }
    return SK_OK;
}

static void rz_axis_free(rz_axis *ax)
{
    free(ax->ntaps);
    free(ax->outside);
    free(ax->idx);
    free(ax->w);
}

/* The common nearest-neighbour case (one tap everywhere, no crop box): each
 * output row gathers from one input row, and a row that maps to the same
 * input row as the previous one (upsampling) is a copy of it. Returns 0,
 * doing nothing, when the taps are not like that. */
static int rz_nearest_rows(const float *x, const int64_t *istr, int rank, const rz_axis *ax, float *y)
{
    for (int i = 0; i < rank; i++)
        for (int64_t o = 0; o < ax[i].n; o++)
            if (ax[i].ntaps[o] != 1 || ax[i].outside[o] || ax[i].w[o * RZ_TAPS] != 1) return 0;
    const rz_axis *la = &ax[rank - 1];
    int64_t last = la->n, rows = 1, o[SK_TENSOR_MAX_RANK] = { 0 }, prev = -1;
    for (int i = 0; i < rank - 1; i++) rows *= ax[i].n;
    for (int64_t r = 0; r < rows; r++, y += last) {
        int64_t off = 0;
        for (int i = 0; i < rank - 1; i++) off += ax[i].idx[o[i] * RZ_TAPS] * istr[i];
        if (off == prev) {
            memcpy(y, y - last, (size_t)last * sizeof *y);
        } else {
            const float *xr = x + off;
            for (int64_t j = 0; j < last; j++) y[j] = xr[la->idx[j * RZ_TAPS]];
        }
        prev = off;
        for (int i = rank - 2; i >= 0; i--) {
            if (++o[i] < ax[i].n) break;
            o[i] = 0;
        }
    }
    return 1;
}

/* Output y from input x (float32) with per-axis taps. Each row (all axes but
 * the last fixed) gathers the combinations of its outer taps once, then
 * interpolates along the last axis. */
static sk_status rz_apply(const float *x, const int64_t *in, int rank, const rz_axis *ax, const rz_params *p, float *y,
                          sk_error *err)
{
    int64_t istr[SK_TENSOR_MAX_RANK], o[SK_TENSOR_MAX_RANK] = { 0 };
    int64_t st = 1;
    for (int i = rank - 1; i >= 0; i--) {
        istr[i] = st;
        st *= in[i];
    }
    int outer = rank - 1;
    if (rank > 0 && rz_nearest_rows(x, istr, rank, ax, y)) return SK_OK;
    size_t maxc = 1;
    for (int i = 0; i < outer; i++) maxc *= RZ_TAPS;
    if (maxc > ((size_t)1 << 16)) return sk_error_set(err, SK_EUNSUPPORTED, "Resize of rank %d is not supported", rank);
    int64_t *coff = malloc(maxc * sizeof *coff);
    float *cw = malloc(maxc * sizeof *cw);
    if (!coff || !cw) {
        free(coff);
        free(cw);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    int64_t rows = 1, last = rank ? ax[rank - 1].n : 1;
    for (int i = 0; i < outer; i++) rows *= ax[i].n;
    for (int64_t r = 0; r < rows; r++, y += last) {
        int outside = 0;
        size_t nc = 1;
        coff[0] = 0;
        cw[0] = 1;
        for (int i = 0; i < outer; i++) {
            int64_t oi = o[i];
            int nt = ax[i].ntaps[oi];
            if (ax[i].outside[oi]) outside = 1;
            for (size_t c = nc; c-- > 0;) /* expand each combination by this axis' taps */
                for (int t = nt - 1; t >= 0; t--) {
                    coff[c * (size_t)nt + (size_t)t] = coff[c] + ax[i].idx[oi * RZ_TAPS + t] * istr[i];
                    cw[c * (size_t)nt + (size_t)t] = cw[c] * ax[i].w[oi * RZ_TAPS + t];
                }
            nc *= (size_t)nt;
        }
        if (outside) {
            for (int64_t j = 0; j < last; j++) y[j] = p->extrapolation;
        } else if (rank == 0) {
            y[0] = x[0];
        } else {
            const rz_axis *la = &ax[rank - 1];
            for (int64_t j = 0; j < last; j++) {
                if (la->outside[j]) {
                    y[j] = p->extrapolation;
                    continue;
                }
                int nt = la->ntaps[j];
                const int64_t *li = la->idx + j * RZ_TAPS;
                const float *lw = la->w + j * RZ_TAPS;
                if (nc == 1 && nt == 1) {
                    y[j] = cw[0] * x[coff[0] + li[0]];
                    continue;
                }
                float acc = 0;
                for (size_t c = 0; c < nc; c++) {
                    const float *xr = x + coff[c];
                    float s = 0;
                    for (int t = 0; t < nt; t++) s += lw[t] * xr[li[t]];
                    acc += cw[c] * s;
                }
                y[j] = acc;
            }
        }
        for (int i = outer - 1; i >= 0; i--) {
            if (++o[i] < ax[i].n) break;
            o[i] = 0;
        }
    }
    free(coff);
    free(cw);
    return SK_OK;
}

/* Resizes ctx->in[0] into ctx->out[0] given output dims, per-axis scales and
 * roi (2*rank values or NULL). */
static sk_status rz_run(sk_op_ctx *ctx, const rz_params *p, const int64_t *od, const float *scales, const float *roi)
{
    const sk_tensor *x0 = ctx->in[0];
    sk_tensor *y = ctx->out[0];
    int rank = x0->rank, dt = x0->dtype;
    sk_status s = SK_OK;
    rz_axis ax[SK_TENSOR_MAX_RANK];
    memset(ax, 0, sizeof ax);
    sk_tensor tx = { 0 };
    const sk_tensor *x;
    if (!is_float(dt) && dt != SK_INT8 && dt != SK_UINT8)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "Resize of %s is not supported", sk_dtype_name(dt));
    for (int i = 0; i < rank; i++)
        if (od[i] < 0 || od[i] > SK_MAX_DIM || (x0->dims[i] == 0 && od[i] != 0))
            return sk_error_set(ctx->err, SK_EINVAL, "output dim %d (%lld) is out of range", i, (long long)od[i]);
    if ((s = f32_view(x0, &tx, &x, ctx->err))) goto done;
    if ((s = sk_tensor_alloc_uninit(y, SK_FLOAT, rank, od, ctx->err))) goto done;
    if (y->numel == 0) goto convert;
    for (int i = 0; i < rank; i++)
        if ((s = rz_axis_build(&ax[i], p, x0->dims[i], od[i], scales[i], roi ? roi[i] : 0, roi ? roi[rank + i] : 1,
                               ctx->err)))
            goto done;
    if ((s = rz_apply(x->data, x0->dims, rank, ax, p, y->data, ctx->err))) goto done;
convert:
    if (dt == SK_UINT8 || dt == SK_INT8) { /* round to nearest, saturate */
        float *yd = y->data;
        float lo = dt == SK_UINT8 ? 0 : -128, hi = dt == SK_UINT8 ? 255 : 127;
        for (int64_t i = 0; i < y->numel; i++) yd[i] = fminf(fmaxf(nearbyintf(yd[i]), lo), hi);
    }
    s = f32_to(y, dt, ctx->err);
done:
    for (int i = 0; i < rank; i++) rz_axis_free(&ax[i]);
    sk_tensor_free(&tx);
    return s;
}

static sk_status rz_mode_from(sk_op_ctx *ctx, rz_params *p)
{
    char m[32];
    attr_str(ctx->node, "mode", "nearest", m, sizeof m);
    if (!strcmp(m, "nearest")) p->mode = RZ_NEAREST;
    else if (!strcmp(m, "linear") || !strcmp(m, "bilinear")) p->mode = RZ_LINEAR;
    else if (!strcmp(m, "cubic")) p->mode = RZ_CUBIC;
    else return sk_error_set(ctx->err, SK_EINVAL, "mode '%s' is not nearest, linear or cubic", m);
    return SK_OK;
}

static sk_status run_resize(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 1);
    if (s) return s;
    const sk_tensor *x = ctx->in[0];
    int rank = x->rank;
    rz_params p = { RZ_NEAREST, CT_ASYMMETRIC, NM_SIMPLE, -0.75f, 0, 0 };
    char buf[64];
    if ((s = rz_mode_from(ctx, &p))) return s;
    if (ctx->opset >= 11) {
        attr_str(ctx->node, "coordinate_transformation_mode", "half_pixel", buf, sizeof buf);
        static const char *const cts[] = { "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                           "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize" };
        size_t i = 0;
        while (i < sizeof cts / sizeof cts[0] && strcmp(cts[i], buf)) i++;
        if (i == sizeof cts / sizeof cts[0])
            return sk_error_set(ctx->err, SK_EINVAL, "coordinate_transformation_mode '%s' is not known", buf);
        p.coord = (rz_coord)i;
        if (p.mode == RZ_NEAREST) {
            attr_str(ctx->node, "nearest_mode", "round_prefer_floor", buf, sizeof buf);
            static const char *const nms[] = { "round_prefer_floor", "round_prefer_ceil", "floor", "ceil" };
            i = 0;
            while (i < 4 && strcmp(nms[i], buf)) i++;
            if (i == 4) return sk_error_set(ctx->err, SK_EINVAL, "nearest_mode '%s' is not known", buf);
            p.nearest = (rz_nearest)i;
        }
        p.cubic_a = sk_node_attr_float(ctx->node, "cubic_coeff_a", -0.75f);
        p.exclude_outside = sk_node_attr_int(ctx->node, "exclude_outside", 0) != 0;
        p.extrapolation = sk_node_attr_float(ctx->node, "extrapolation_value", 0.0f);
    }
    if (ctx->opset >= 18 && sk_node_attr_int(ctx->node, "antialias", 0))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "Resize with antialias is not supported");
    /* axes (opset 18): which dims scales/sizes/roi name; default all */
    int axes[SK_TENSOR_MAX_RANK], nax = rank;
    for (int i = 0; i < rank; i++) axes[i] = i;
    if (ctx->opset >= 18) {
        size_t na;
        const int64_t *a = sk_node_attr_ints(ctx->node, "axes", &na);
        if (a) {
            if (na > (size_t)rank) return sk_error_set(ctx->err, SK_EINVAL, "axes has more entries than the rank");
            for (size_t i = 0; i < na; i++) {
                int64_t v = a[i] < 0 ? a[i] + rank : a[i];
                if (v < 0 || v >= rank) return sk_error_set(ctx->err, SK_EINVAL, "axis %lld is out of range", (long long)a[i]);
                axes[i] = (int)v;
            }
            nax = (int)na;
        }
    }
    const sk_tensor *roi_t = ctx->opset >= 11 ? in_at(ctx, 1) : NULL;
    const sk_tensor *sc_t = in_at(ctx, ctx->opset >= 11 ? 2 : 1), *sz_t = ctx->opset >= 11 ? in_at(ctx, 3) : NULL;
    if (sc_t && sc_t->numel == 0) sc_t = NULL;
    if (sz_t && sz_t->numel == 0) sz_t = NULL;
    if (!sc_t == !sz_t) return sk_error_set(ctx->err, SK_EINVAL, "exactly one of scales and sizes must be given");
    float scales[SK_TENSOR_MAX_RANK], roi[2 * SK_TENSOR_MAX_RANK];
    int64_t od[SK_TENSOR_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        scales[i] = 1;
        od[i] = x->dims[i];
        roi[i] = 0;
        roi[rank + i] = 1;
    }
    if (roi_t && roi_t->numel > 0 && p.coord == CT_TF_CROP_AND_RESIZE) {
        if (roi_t->numel != 2 * nax) return sk_error_set(ctx->err, SK_EINVAL, "roi must have %d values", 2 * nax);
        for (int i = 0; i < nax; i++) {
            roi[axes[i]] = (float)sk_tensor_get_f64(roi_t, i);
            roi[rank + axes[i]] = (float)sk_tensor_get_f64(roi_t, nax + i);
        }
    }
    if (sc_t) {
        if (sc_t->numel != nax) return sk_error_set(ctx->err, SK_EINVAL, "scales must have %d values", nax);
        for (int i = 0; i < nax; i++) {
            float v = (float)sk_tensor_get_f64(sc_t, i);
            if (!(v > 0)) return sk_error_set(ctx->err, SK_EINVAL, "scale %g is not positive", (double)v);
            scales[axes[i]] = v;
        }
        for (int i = 0; i < rank; i++) {
            float o = scales[i] * (float)x->dims[i];
            if (!(o < 1e15f)) return sk_error_set(ctx->err, SK_EINVAL, "scale %g is too large", (double)scales[i]);
            od[i] = (int64_t)o;
        }
    } else {
        if (sz_t->numel != nax || (sz_t->dtype != SK_INT64 && sz_t->dtype != SK_INT32))
            return sk_error_set(ctx->err, SK_EINVAL, "sizes must have %d int64 values", nax);
        for (int i = 0; i < nax; i++) od[axes[i]] = sk_tensor_get_i64(sz_t, i);
        for (int i = 0; i < rank; i++) {
            if (od[i] < 0 || od[i] > SK_MAX_DIM) return sk_error_set(ctx->err, SK_EINVAL, "size %lld is out of range", (long long)od[i]);
            scales[i] = x->dims[i] ? (float)od[i] / (float)x->dims[i] : 1.0f;
        }
        attr_str(ctx->node, "keep_aspect_ratio_policy", "stretch", buf, sizeof buf);
        if (ctx->opset >= 18 && strcmp(buf, "stretch")) {
            int larger = !strcmp(buf, "not_smaller");
            if (!larger && strcmp(buf, "not_larger"))
                return sk_error_set(ctx->err, SK_EINVAL, "keep_aspect_ratio_policy '%s' is not known", buf);
            float sc = larger ? FLT_MIN : FLT_MAX;
            for (int i = 0; i < nax; i++) sc = larger ? fmaxf(sc, scales[axes[i]]) : fminf(sc, scales[axes[i]]);
            for (int i = 0; i < nax; i++) {
                scales[axes[i]] = sc;
                od[axes[i]] = (int64_t)roundf(sc * (float)x->dims[axes[i]]);
            }
        }
    }
    return rz_run(ctx, &p, od, scales, roi);
}

static sk_status run_upsample(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 1);
    if (s) return s;
    const sk_tensor *x = ctx->in[0];
    rz_params p = { RZ_NEAREST, CT_ASYMMETRIC, NM_SIMPLE, -0.75f, 0, 0 };
    if ((s = rz_mode_from(ctx, &p))) return s;
    float scales[SK_TENSOR_MAX_RANK];
    int64_t od[SK_TENSOR_MAX_RANK];
    size_t n = 0;
    const float *sa = NULL;
    const sk_tensor *st = in_at(ctx, 1);
    if (ctx->opset >= 9) {
        if (!st) return sk_error_set(ctx->err, SK_EINVAL, "input scales is missing");
        n = (size_t)st->numel;
    } else {
        sa = sk_node_attr_floats(ctx->node, "scales", &n);
    }
    if (n != (size_t)x->rank) return sk_error_set(ctx->err, SK_EINVAL, "scales must have %d values", x->rank);
    for (int i = 0; i < x->rank; i++) {
        scales[i] = sa ? sa[i] : (float)sk_tensor_get_f64(st, i);
        if (!(scales[i] >= 1) || !(scales[i] * (float)x->dims[i] < 1e15f))
            return sk_error_set(ctx->err, SK_EINVAL, "Upsample scale %g is not in [1, large)", (double)scales[i]);
        od[i] = (int64_t)(scales[i] * (float)x->dims[i]);
    }
    return rz_run(ctx, &p, od, scales, NULL);
}

/* ---- Einsum ------------------------------------------------------------------- */

#define ES_LETTERS 52 /* 'A'..'Z' are 0..25, 'a'..'z' 26..51: numeric order is ASCII order */
#define ES_LABELS (ES_LETTERS + SK_TENSOR_MAX_RANK)
#define ES_MAX_OPS 8

typedef struct es_term {
    int n;
    int lab[SK_TENSOR_MAX_RANK];
} es_term;

typedef struct es_eq {
    int nops;
    es_term op[ES_MAX_OPS];
    es_term out;
    int64_t size[ES_LABELS];
} es_eq;

static int es_letter(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return 26 + c - 'a';
    return -1;
}

/* Parses one term (s[0..len)) into labels; ellipsis dims are filled in later
 * (marked -1 - position). Returns -1 on a syntax error. */
static int es_parse_term(const char *s, size_t len, es_term *t, int *has_ell)
{
    t->n = 0;
    *has_ell = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') continue;
        if (s[i] == '.') {
            if (i + 2 >= len) return -1;
            if (s[i + 1] != '.' || s[i + 2] != '.' || *has_ell) return -1;
            *has_ell = 1;
            if (t->n >= SK_TENSOR_MAX_RANK) return -1;
            t->lab[t->n++] = -1;
            i += 2;
            continue;
        }
        int l = es_letter(s[i]);
        if (l < 0 || t->n >= SK_TENSOR_MAX_RANK) return -1;
        t->lab[t->n++] = l;
    }
    return 0;
}

/* Replaces the ellipsis marker of t by ne labels (the last ne of ell ones). */
static int es_expand(es_term *t, int ne, int ell)
{
    int at = -1;
    for (int i = 0; i < t->n; i++)
        if (t->lab[i] == -1) at = i;
    if (at < 0) return ne == 0 ? 0 : -1;
    if (t->n - 1 + ne > SK_TENSOR_MAX_RANK) return -1;
    int tail = t->n - at - 1;
    memmove(&t->lab[at + ne], &t->lab[at + 1], (size_t)tail * sizeof(int));
    for (int j = 0; j < ne; j++) t->lab[at + j] = ES_LETTERS + (ell - ne) + j;
    t->n += ne - 1;
    return 0;
}

static sk_status es_parse(sk_op_ctx *ctx, es_eq *q)
{
    size_t len;
    const char *eq = sk_node_attr_string(ctx->node, "equation", NULL, &len);
    if (!eq) return sk_error_set(ctx->err, SK_EINVAL, "attribute equation is missing");
    memset(q, 0, sizeof *q);
    const char *arrow = NULL;
    for (size_t i = 0; i + 1 < len; i++)
        if (eq[i] == '-' && eq[i + 1] == '>') arrow = eq + i;
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : len;
    int ell_of[ES_MAX_OPS], ell = 0, out_ell = 0;
    size_t start = 0;
    q->nops = 0;
    for (size_t i = 0; i <= lhs_len; i++) {
        if (i < lhs_len && eq[i] != ',') continue;
        if (q->nops >= ES_MAX_OPS) return sk_error_set(ctx->err, SK_EUNSUPPORTED, "Einsum of more than %d operands", ES_MAX_OPS);
        if (es_parse_term(eq + start, i - start, &q->op[q->nops], &ell_of[q->nops]))
            return sk_error_set(ctx->err, SK_EINVAL, "equation '%.*s' is malformed", (int)(len > 200 ? 200 : len), eq);
        q->nops++;
        start = i + 1;
    }
    if ((size_t)q->nops != ctx->n_in)
        return sk_error_set(ctx->err, SK_EINVAL, "equation has %d operands but the node has %zu inputs", q->nops, ctx->n_in);
    for (int k = 0; k < q->nops; k++) {
        const sk_tensor *t = ctx->in[k];
        if (!t) return sk_error_set(ctx->err, SK_EINVAL, "input %d is missing", k);
        int explicit_n = q->op[k].n - ell_of[k];
        int ne = t->rank - explicit_n;
        if (ne < 0 || (!ell_of[k] && ne != 0))
            return sk_error_set(ctx->err, SK_EINVAL, "operand %d has rank %d, which its term does not match", k, t->rank);
        if (ne > ell) ell = ne;
    }
    for (int k = 0; k < q->nops; k++) {
        int ne = ctx->in[k]->rank - (q->op[k].n - ell_of[k]);
        if (es_expand(&q->op[k], ne, ell)) return sk_error_set(ctx->err, SK_EINVAL, "equation is too long");
    }
    for (int l = 0; l < ES_LABELS; l++) q->size[l] = -1;
    for (int k = 0; k < q->nops; k++)
        for (int i = 0; i < q->op[k].n; i++) {
            int l = q->op[k].lab[i];
            int64_t d = ctx->in[k]->dims[i];
            if (q->size[l] < 0 || q->size[l] == 1) q->size[l] = d;
            else if (d != q->size[l] && d != 1)
                return sk_error_set(ctx->err, SK_EINVAL, "a label has sizes %lld and %lld", (long long)q->size[l], (long long)d);
        }
    if (arrow) {
        if (es_parse_term(arrow + 2, len - lhs_len - 2, &q->out, &out_ell))
            return sk_error_set(ctx->err, SK_EINVAL, "equation output is malformed");
        if (es_expand(&q->out, out_ell ? ell : 0, ell)) return sk_error_set(ctx->err, SK_EINVAL, "equation is too long");
        for (int i = 0; i < q->out.n; i++) {
            if (q->size[q->out.lab[i]] < 0) return sk_error_set(ctx->err, SK_EINVAL, "output label is not in any input");
            for (int j = 0; j < i; j++)
                if (q->out.lab[j] == q->out.lab[i]) return sk_error_set(ctx->err, SK_EINVAL, "output repeats a label");
        }
    } else { /* implicit: broadcast dims, then letters seen once, in ASCII order */
        int count[ES_LABELS] = { 0 };
        for (int k = 0; k < q->nops; k++)
            for (int i = 0; i < q->op[k].n; i++) count[q->op[k].lab[i]]++;
        q->out.n = 0;
        for (int j = 0; j < ell; j++) q->out.lab[q->out.n++] = ES_LETTERS + j;
        for (int l = 0; l < ES_LETTERS; l++)
            if (count[l] == 1) {
                if (q->out.n >= SK_TENSOR_MAX_RANK) return sk_error_set(ctx->err, SK_EINVAL, "output rank is too large");
                q->out.lab[q->out.n++] = l;
            }
    }
    return SK_OK;
}

/* Reference: loops over every label; works for any number of operands,
 * repeated labels (diagonals) and broadcasting. Accumulates in double. */
static sk_status es_general(sk_op_ctx *ctx, const es_eq *q, sk_tensor *y)
{
    int lab[ES_LABELS], nl = 0, in_out[ES_LABELS] = { 0 };
    for (int i = 0; i < q->out.n; i++) {
        lab[nl++] = q->out.lab[i];
        in_out[q->out.lab[i]] = 1;
    }
    for (int l = 0; l < ES_LABELS; l++)
        if (q->size[l] >= 0 && !in_out[l]) lab[nl++] = l;
    int64_t stride[ES_MAX_OPS][ES_LABELS];
    memset(stride, 0, sizeof stride);
    for (int k = 0; k < q->nops; k++) {
        const sk_tensor *t = ctx->in[k];
        int64_t st = 1;
        for (int i = t->rank - 1; i >= 0; i--) {
            if (t->dims[i] != 1) stride[k][q->op[k].lab[i]] += st;
            st *= t->dims[i];
        }
    }
    int64_t total = 1, nsum = 1;
    for (int i = 0; i < nl; i++) {
        if (sk_mul_i64(total, q->size[lab[i]], &total)) return sk_error_set(ctx->err, SK_EINVAL, "Einsum is too large");
        if (i >= q->out.n) nsum *= q->size[lab[i]];
    }
    if (total > ((int64_t)1 << 40)) return sk_error_set(ctx->err, SK_EUNSUPPORTED, "Einsum is too large for the general loop");
    int64_t idx[ES_LABELS] = { 0 }, base[ES_MAX_OPS] = { 0 }, off[ES_MAX_OPS];
    int dt = y->dtype, no = q->out.n;
    for (int64_t o = 0; o < y->numel; o++) {
        double acc = 0;
        memcpy(off, base, sizeof off);
        for (int64_t r = 0; r < nsum; r++) {
            double p = 1;
            for (int k = 0; k < q->nops; k++) p *= sk_tensor_get_f64(ctx->in[k], off[k]);
            acc += p;
            for (int i = nl - 1; i >= no; i--) { /* next summed index; wraps back to base */
                int l = lab[i];
                for (int k = 0; k < q->nops; k++) off[k] += stride[k][l];
                if (++idx[i] < q->size[l]) break;
                for (int k = 0; k < q->nops; k++) off[k] -= stride[k][l] * q->size[l];
                idx[i] = 0;
            }
        }
        for (int i = no - 1; i >= 0; i--) { /* next output index */
            int l = lab[i];
            for (int k = 0; k < q->nops; k++) base[k] += stride[k][l];
            if (++idx[i] < q->size[l]) break;
            for (int k = 0; k < q->nops; k++) base[k] -= stride[k][l] * q->size[l];
            idx[i] = 0;
        }
        switch (dt) {
        case SK_FLOAT: ((float *)y->data)[o] = (float)acc; break;
        case SK_DOUBLE: ((double *)y->data)[o] = acc; break;
        case SK_FLOAT16: ((uint16_t *)y->data)[o] = sk_float_to_half((float)acc); break;
        case SK_BFLOAT16: ((uint16_t *)y->data)[o] = sk_float_to_bf16((float)acc); break;
        case SK_INT32: ((int32_t *)y->data)[o] = (int32_t)acc; break;
        case SK_INT64: ((int64_t *)y->data)[o] = (int64_t)acc; break;
        case SK_UINT32: ((uint32_t *)y->data)[o] = (uint32_t)acc; break;
        case SK_UINT64: ((uint64_t *)y->data)[o] = (uint64_t)acc; break;
        default: break;
        }
    }
    return SK_OK;
}

/* Positions of labels want[0..n) in term t, or -1 when one is absent. */
static int es_perm(const es_term *t, const int *want, int n, int *perm)
{
    if (n != t->n) return -1;
    for (int i = 0; i < n; i++) {
        perm[i] = -1;
        for (int j = 0; j < t->n; j++)
            if (t->lab[j] == want[i]) perm[i] = j;
        if (perm[i] < 0) return -1;
    }
    return 0;
}

static int es_is_identity(const int *perm, int n)
{
    for (int i = 0; i < n; i++)
        if (perm[i] != i) return 0;
    return 1;
}

/* Two float32 operands without diagonals, broadcasting or labels summed in
 * only one operand: batched GEMM on (transposed when needed) copies. Returns
 * SK_EUNSUPPORTED (without setting err) when the equation does not fit. */
static sk_status es_gemm(sk_op_ctx *ctx, const es_eq *q, sk_tensor *y)
{
    const sk_tensor *A = ctx->in[0], *B = ctx->in[1];
    if (q->nops != 2 || A->dtype != SK_FLOAT || B->dtype != SK_FLOAT) return SK_EUNSUPPORTED;
    int ina[ES_LABELS] = { 0 }, inb[ES_LABELS] = { 0 }, ino[ES_LABELS] = { 0 };
    for (int i = 0; i < q->op[0].n; i++) {
        if (ina[q->op[0].lab[i]]++ || A->dims[i] != q->size[q->op[0].lab[i]]) return SK_EUNSUPPORTED;
    }
    for (int i = 0; i < q->op[1].n; i++) {
        if (inb[q->op[1].lab[i]]++ || B->dims[i] != q->size[q->op[1].lab[i]]) return SK_EUNSUPPORTED;
    }
    for (int i = 0; i < q->out.n; i++) ino[q->out.lab[i]] = 1;
    int bat[SK_TENSOR_MAX_RANK], con[SK_TENSOR_MAX_RANK], af[SK_TENSOR_MAX_RANK], bf[SK_TENSOR_MAX_RANK];
    int nb = 0, nc = 0, na = 0, nf = 0;
    int64_t NB = 1, KK = 1, MM = 1, NN = 1;
    for (int i = 0; i < q->out.n; i++) {
        int l = q->out.lab[i];
        if (ina[l] && inb[l]) { bat[nb++] = l; NB *= q->size[l]; }
        else if (ina[l]) { af[na++] = l; MM *= q->size[l]; }
        else { bf[nf++] = l; NN *= q->size[l]; }
    }
    for (int i = 0; i < q->op[0].n; i++) {
        int l = q->op[0].lab[i];
        if (!ino[l]) {
            if (!inb[l]) return SK_EUNSUPPORTED;
            con[nc++] = l;
            KK *= q->size[l];
        }
    }
    for (int i = 0; i < q->op[1].n; i++)
        if (!ino[q->op[1].lab[i]] && !ina[q->op[1].lab[i]]) return SK_EUNSUPPORTED;
    /* A as [bat, af, con] or [bat, con, af]; B as [bat, con, bf] or [bat, bf, con] */
    int want[SK_TENSOR_MAX_RANK], perm[SK_TENSOR_MAX_RANK], n;
    int ta = 0, tb = 0;
    const float *pa = A->data, *pb = B->data;
    float *ca = NULL, *cb = NULL, *cr = NULL;
    sk_status s = SK_OK;
#define ES_CAT3(x, nx, y_, ny, z, nz)                             \
    do {                                                          \
        n = 0;                                                    \
        for (int i_ = 0; i_ < (nx); i_++) want[n++] = (x)[i_];    \
        for (int i_ = 0; i_ < (ny); i_++) want[n++] = (y_)[i_];   \
        for (int i_ = 0; i_ < (nz); i_++) want[n++] = (z)[i_];    \
    } while (0)
    ES_CAT3(bat, nb, af, na, con, nc);
    es_perm(&q->op[0], want, n, perm);
    if (!es_is_identity(perm, n)) {
        int p2[SK_TENSOR_MAX_RANK];
        ES_CAT3(bat, nb, con, nc, af, na);
        es_perm(&q->op[0], want, n, p2);
        if (es_is_identity(p2, n)) ta = 1;
        else {
            if (!(ca = malloc((size_t)A->numel * sizeof(float) + 1))) goto nomem;
            permute_copy(A->data, ca, 4, A->rank, A->dims, perm);
            pa = ca;
        }
    }
    ES_CAT3(bat, nb, con, nc, bf, nf);
    es_perm(&q->op[1], want, n, perm);
    if (!es_is_identity(perm, n)) {
        int p2[SK_TENSOR_MAX_RANK];
        ES_CAT3(bat, nb, bf, nf, con, nc);
        es_perm(&q->op[1], want, n, p2);
        if (es_is_identity(p2, n)) tb = 1;
        else {
            if (!(cb = malloc((size_t)B->numel * sizeof(float) + 1))) goto nomem;
            permute_copy(B->data, cb, 4, B->rank, B->dims, perm);
            pb = cb;
        }
    }
    ES_CAT3(bat, nb, af, na, bf, nf);
#undef ES_CAT3
    int direct = 1;
    for (int i = 0; i < n; i++)
        if (want[i] != q->out.lab[i]) direct = 0;
    float *pr = y->data;
    if (!direct) {
        if (!(cr = malloc((size_t)y->numel * sizeof(float) + 1))) goto nomem;
        pr = cr;
    }
    for (int64_t b = 0; b < NB && !s; b++)
        s = sk_gemm_f32(ta, tb, (size_t)MM, (size_t)NN, (size_t)KK, 1.0f, pa + b * MM * KK, (size_t)(ta ? MM : KK),
                        pb + b * KK * NN, (size_t)(tb ? KK : NN), 0.0f, pr + b * MM * NN, (size_t)NN, ctx->threads,
                        ctx->err);
    if (!s && !direct) { /* result is [bat, af, bf]; permute into the output's label order */
        int64_t rd[SK_TENSOR_MAX_RANK];
        int op[SK_TENSOR_MAX_RANK];
        for (int i = 0; i < n; i++) rd[i] = q->size[want[i]];
        for (int i = 0; i < q->out.n; i++)
            for (int j = 0; j < n; j++)
                if (want[j] == q->out.lab[i]) op[i] = j;
        permute_copy(cr, y->data, 4, n, rd, op);
    }
    free(ca);
    free(cb);
    free(cr);
    return s;
nomem:
    free(ca);
    free(cb);
    free(cr);
    return sk_error_set(ctx->err, SK_ENOMEM, "out of memory");
}

static sk_status run_einsum(sk_op_ctx *ctx)
{
    if (ctx->n_in < 1 || !out_at(ctx, 0)) return sk_error_set(ctx->err, SK_EINVAL, "Einsum needs inputs and an output");
    es_eq q;
    sk_status s = es_parse(ctx, &q);
    if (s) return s;
    int dt = ctx->in[0]->dtype;
    for (int k = 1; k < q.nops; k++)
        if (ctx->in[k]->dtype != dt) return sk_error_set(ctx->err, SK_EINVAL, "inputs have different element types");
    if (!is_float(dt) && dt != SK_INT32 && dt != SK_INT64 && dt != SK_UINT32 && dt != SK_UINT64)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "Einsum of %s is not supported", sk_dtype_name(dt));
    int64_t od[SK_TENSOR_MAX_RANK];
    for (int i = 0; i < q.out.n; i++) od[i] = q.size[q.out.lab[i]];
    sk_tensor *y = ctx->out[0];
    if ((s = sk_tensor_alloc_uninit(y, dt, q.out.n, od, ctx->err))) return s;
    s = es_gemm(ctx, &q, y);
    if (s == SK_EUNSUPPORTED) s = es_general(ctx, &q, y);
    return s;
}

/* ---- table ----------------------------------------------------------------- */

const sk_op_def sk_ops_nn[] = {
    { "", "MatMul", 1, run_matmul },
    { "", "Gemm", 1, run_gemm },
    { "", "Conv", 1, run_conv },
    { "", "ConvTranspose", 1, run_conv_transpose },
    { "", "MaxPool", 1, run_maxpool },
    { "", "AveragePool", 1, run_avgpool },
    { "", "GlobalAveragePool", 1, run_global_avgpool },
    { "", "GlobalMaxPool", 1, run_global_maxpool },
    { "", "MaxUnpool", 9, run_maxunpool },
    { "", "BatchNormalization", 1, run_batchnorm },
    { "", "InstanceNormalization", 1, run_instancenorm },
    { "", "LRN", 1, run_lrn },
    { "", "Resize", 10, run_resize },
    { "", "Upsample", 7, run_upsample },
    { "", "Einsum", 12, run_einsum },
    { NULL, NULL, 0, NULL },
};
