/* Reductions and normalisations along axes: Reduce*, ArgMax/ArgMin, CumSum,
 * Softmax/LogSoftmax, LayerNormalization and its RMS and skip variants, TopK.
 *
 * Reductions accumulate in double (int64 for integer types), so they are
 * their own reference. Softmax and the layer norms have a vectorised float32
 * row kernel (GCC vector extensions) next to a scalar reference
 * (sk_softmax_row_ref, sk_layernorm_row_ref) that tests/unit/test_ops_reduce.c
 * checks it against. Float16 and bfloat16 compute in float32. */
#include "sk_op.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sk_model.h"

/* ---- helpers ------------------------------------------------------------- */

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

static int is_int(int dt)
{
    return dt == SK_INT8 || dt == SK_UINT8 || dt == SK_INT16 || dt == SK_UINT16 || dt == SK_INT32 ||
           dt == SK_UINT32 || dt == SK_INT64 || dt == SK_UINT64;
}

/* Normalises axis a of a rank-r tensor into [0, r); -1 when out of range. */
static int norm_axis(int64_t a, int r)
{
    if (a < 0) a += r;
    return a >= 0 && a < r ? (int)a : -1;
}

static void set_f64(sk_tensor *t, int64_t i, double v)
{
    void *p = t->data;
    switch (t->dtype) {
    case SK_FLOAT: ((float *)p)[i] = (float)v; break;
    case SK_DOUBLE: ((double *)p)[i] = v; break;
    case SK_FLOAT16: ((uint16_t *)p)[i] = sk_float_to_half((float)v); break;
    case SK_BFLOAT16: ((uint16_t *)p)[i] = sk_float_to_bf16((float)v); break;
    default: break;
    }
}

static void set_i64(sk_tensor *t, int64_t i, int64_t v)
{
    void *p = t->data;
    switch (t->dtype) {
    case SK_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case SK_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case SK_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    case SK_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case SK_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case SK_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case SK_INT64: case SK_UINT64: ((int64_t *)p)[i] = v; break;
    default: set_f64(t, i, (double)v); break;
    }
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
    } else {
        for (int64_t i = 0; i < t->numel; i++) d[i] = (float)sk_tensor_get_f64(t, i);
    }
    *out = tmp;
    return SK_OK;
}

/* Converts the float32 tensor t to the float type dtype. */
static sk_status f32_to(sk_tensor *t, int dtype, sk_error *err)
{
    if (dtype == SK_FLOAT) return SK_OK;
    sk_tensor r = { 0 };
    sk_status s = sk_tensor_alloc_uninit(&r, dtype, t->rank, t->dims, err);
    if (s) return s;
    const float *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) set_f64(&r, i, p[i]);
    sk_tensor_free(t);
    *t = r;
    return SK_OK;
}

/* Sizes before, along and after axis. */
static void split_at(const sk_tensor *t, int axis, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= t->dims[i];
    *n = t->dims[axis];
    for (int i = axis + 1; i < t->rank; i++) *inner *= t->dims[i];
}

/* ---- vectorised exp -------------------------------------------------------- */

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f v4f_load(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void v4f_store(float *p, v4f v)
{
    memcpy(p, &v, sizeof v);
}

static inline float v4f_hsum(v4f v)
{
    return (v[0] + v[1]) + (v[2] + v[3]);
}

/* ---- Reduce* ------------------------------------------------------------------ */

typedef enum {
    RED_SUM, RED_MEAN, RED_MAX, RED_MIN, RED_PROD, RED_L1, RED_L2, RED_SUMSQ, RED_LOGSUM, RED_LOGSUMEXP
} red_kind;

/* Sum of x[0..n) (of squares with sq), four float lanes per block of 16
 * values, blocks added in double. */
static double row_sum_f32(const float *x, int64_t n, int sq)
{
    double total = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v4f a = v4f_load(x + i), b = v4f_load(x + i + 4), c = v4f_load(x + i + 8), d = v4f_load(x + i + 12);
        if (sq) {
            a *= a;
            b *= b;
            c *= c;
            d *= d;
        }
        total += v4f_hsum((a + b) + (c + d));
    }
    for (; i < n; i++) total += sq ? (double)x[i] * x[i] : x[i];
    return total;
}

/* Which axes to reduce: mask[i] = 1 for reduced dims. *noop is set when the
 * axes are empty and noop_with_empty_axes asks to pass the input through. */
static sk_status reduce_axes(sk_op_ctx *ctx, int axes_from_input, int rank, int *mask, int *noop)
{
    const int64_t *attr = NULL;
    size_t n = 0;
    const sk_tensor *t = NULL;
    *noop = 0;
    if (axes_from_input) {
        t = in_at(ctx, 1);
        if (t) {
            if (t->dtype != SK_INT64 && t->dtype != SK_INT32)
                return sk_error_set(ctx->err, SK_EINVAL, "axes must be int64");
            n = (size_t)t->numel;
        }
    } else {
        attr = sk_node_attr_ints(ctx->node, "axes", &n);
    }
    for (int i = 0; i < rank; i++) mask[i] = n == 0;
    if (n == 0 && sk_node_attr_int(ctx->node, "noop_with_empty_axes", 0)) *noop = 1;
    for (size_t i = 0; i < n; i++) {
        int64_t a = t ? sk_tensor_get_i64(t, (int64_t)i) : attr[i];
        int ax = norm_axis(a, rank);
        if (ax < 0) return sk_error_set(ctx->err, SK_EINVAL, "axis %lld is out of range for rank %d", (long long)a, rank);
        mask[ax] = 1;
    }
    return SK_OK;
}

static sk_status run_reduce(sk_op_ctx *ctx, red_kind kind)
{
    sk_status s = need_in(ctx, 1);
    if (s) return s;
    const sk_tensor *x = ctx->in[0];
    sk_tensor *y = ctx->out[0];
    int dt = x->dtype, rank = x->rank;
    if (!is_float(dt) && !is_int(dt))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "reduction of %s is not supported", sk_dtype_name(dt));
    const char *op = ctx->node && ctx->node->op_type ? ctx->node->op_type : "";
    int axes_input = ctx->opset >= 18 || (!strcmp(op, "ReduceSum") && ctx->opset >= 13);
    int mask[SK_TENSOR_MAX_RANK], noop;
    if ((s = reduce_axes(ctx, axes_input, rank, mask, &noop))) return s;
    if (noop) return sk_tensor_copy(y, x, ctx->err);
    int keep = sk_node_attr_int(ctx->node, "keepdims", 1) != 0;
    int64_t od[SK_TENSOR_MAX_RANK], kd[SK_TENSOR_MAX_RANK];
    int ro = 0;
    for (int i = 0; i < rank; i++) {
        kd[i] = mask[i] ? 1 : x->dims[i];
        if (!mask[i] || keep) od[ro++] = kd[i];
    }
    if ((s = sk_tensor_alloc_uninit(y, dt, ro, od, ctx->err))) return s;
    int64_t no = y->numel, count = no ? x->numel / no : 0;
    if (no == 0) return SK_OK;
    for (int i = 0; i < rank; i++)
        if (mask[i] && x->dims[i] == 0) count = 0;
    if (dt == SK_FLOAT && count > 0 && (kind == RED_SUM || kind == RED_MEAN || kind == RED_SUMSQ || kind == RED_L2)) {
        /* reduced dims all at the end (RMSNorm's ReduceMean): contiguous rows */
        int first = rank;
        while (first > 0 && mask[first - 1]) first--;
        int trailing = 1;
        for (int i = 0; i < first; i++)
            if (mask[i] && x->dims[i] != 1) trailing = 0;
        if (trailing) {
            const float *xd = x->data;
            float *yd = y->data;
            for (int64_t o = 0; o < no; o++) {
                double v = row_sum_f32(xd + o * count, count, kind == RED_SUMSQ || kind == RED_L2);
                yd[o] = (float)(kind == RED_MEAN ? v / (double)count : kind == RED_L2 ? sqrt(v) : v);
            }
            return SK_OK;
        }
    }
    int use_int = is_int(dt) && kind != RED_L2 && kind != RED_LOGSUM && kind != RED_LOGSUMEXP;
    double *acc = malloc((size_t)no * sizeof *acc);
    int64_t *iacc = use_int ? malloc((size_t)no * sizeof *iacc) : NULL;
    double *mx = kind == RED_LOGSUMEXP ? malloc((size_t)no * sizeof *mx) : NULL;
    if (!acc || (use_int && !iacc) || (kind == RED_LOGSUMEXP && !mx)) {
        s = sk_error_set(ctx->err, SK_ENOMEM, "out of memory");
        goto done;
    }
    /* Merge neighbouring dims that are both reduced or both kept; walk the
     * input in order with the output offset following (stride 0 on reduced
     * dims). The innermost merged dim is a contiguous run. */
    int64_t md[SK_TENSOR_MAX_RANK], ms[SK_TENSOR_MAX_RANK];
    int mr[SK_TENSOR_MAX_RANK], nm = 0;
    {
        int64_t ostr[SK_TENSOR_MAX_RANK], st = 1;
        for (int i = rank - 1; i >= 0; i--) {
            ostr[i] = mask[i] ? 0 : st;
            st *= kd[i];
        }
        for (int i = 0; i < rank; i++) {
            if (x->dims[i] == 1) continue;
            if (nm && mr[nm - 1] == mask[i] && (mask[i] || ms[nm - 1] == ostr[i] * x->dims[i])) {
                md[nm - 1] *= x->dims[i];
                ms[nm - 1] = ostr[i];
            } else {
                md[nm] = x->dims[i];
                ms[nm] = ostr[i];
                mr[nm] = mask[i];
                nm++;
            }
        }
        if (nm == 0) {
            md[0] = 1;
            ms[0] = 0;
            mr[0] = 1;
            nm = 1;
        }
    }
    for (int pass = kind == RED_LOGSUMEXP ? 0 : 1; pass < 2; pass++) {
        for (int64_t o = 0; o < no; o++) {
            double init;
            switch (kind) {
            case RED_MAX: init = -INFINITY; break;
            case RED_MIN: init = INFINITY; break;
            case RED_PROD: init = 1; break;
            default: init = 0; break;
            }
            if (pass == 0) init = -INFINITY;
            acc[o] = init;
            if (use_int)
                iacc[o] = kind == RED_PROD ? 1 : kind == RED_MAX ? INT64_MIN : kind == RED_MIN ? INT64_MAX : 0;
        }
        if (count == 0) break;
        int64_t idx[SK_TENSOR_MAX_RANK] = { 0 }, off = 0, last = md[nm - 1], ls = ms[nm - 1];
        int lred = mr[nm - 1];
        int red_kind_eff = pass == 0 ? RED_MAX : (int)kind;
        for (int64_t i = 0; i < x->numel; i += last) {
            for (int64_t j = 0; j < last; j++) {
                int64_t oi = lred ? off : off + j * ls;
                if (use_int) {
                    int64_t v = sk_tensor_get_i64(x, i + j);
                    int64_t *a = &iacc[oi];
                    switch (red_kind_eff) {
                    case RED_MAX: if (v > *a) *a = v; break;
                    case RED_MIN: if (v < *a) *a = v; break;
                    case RED_PROD: *a = (int64_t)((uint64_t)*a * (uint64_t)v); break;
                    case RED_L1: *a += v < 0 ? -v : v; break;
                    case RED_SUMSQ: *a += v * v; break;
                    default: *a += v; break;
                    }
                    continue;
                }
                double v = dt == SK_FLOAT ? ((const float *)x->data)[i + j] : sk_tensor_get_f64(x, i + j);
                double *a = &acc[oi];
                switch (red_kind_eff) {
                case RED_MAX: if (v > *a || v != v) *a = v; break;
                case RED_MIN: if (v < *a || v != v) *a = v; break;
                case RED_PROD: *a *= v; break;
                case RED_L1: *a += fabs(v); break;
                case RED_L2: case RED_SUMSQ: *a += v * v; break;
                case RED_LOGSUMEXP: *a += exp(v - mx[oi]); break;
                default: *a += v; break;
                }
            }
            for (int d = nm - 2; d >= 0; d--) {
                off += ms[d];
                if (++idx[d] < md[d]) break;
                off -= ms[d] * md[d];
                idx[d] = 0;
            }
        }
        if (pass == 0) memcpy(mx, acc, (size_t)no * sizeof *mx);
    }
    for (int64_t o = 0; o < no; o++) {
        if (use_int) {
            int64_t v = iacc[o];
            if (kind == RED_MEAN) v = count ? v / count : 0;
            set_i64(y, o, v);
            continue;
        }
        double v = acc[o];
        switch (kind) {
        case RED_MEAN: v = count ? v / (double)count : NAN; break;
        case RED_L2: v = sqrt(v); break;
        case RED_LOGSUM: v = log(v); break;
        case RED_LOGSUMEXP: v = count ? (isinf(mx[o]) ? mx[o] : mx[o] + log(v)) : -INFINITY; break;
        default: break;
        }
        if (is_int(dt)) set_i64(y, o, (int64_t)v);
        else set_f64(y, o, v);
    }
done:
    free(acc);
    free(iacc);
    free(mx);
    return s;
}

static sk_status run_reduce_sum(sk_op_ctx *ctx) { return run_reduce(ctx, RED_SUM); }
static sk_status run_reduce_mean(sk_op_ctx *ctx) { return run_reduce(ctx, RED_MEAN); }
static sk_status run_reduce_max(sk_op_ctx *ctx) { return run_reduce(ctx, RED_MAX); }
static sk_status run_reduce_min(sk_op_ctx *ctx) { return run_reduce(ctx, RED_MIN); }
static sk_status run_reduce_prod(sk_op_ctx *ctx) { return run_reduce(ctx, RED_PROD); }
static sk_status run_reduce_l1(sk_op_ctx *ctx) { return run_reduce(ctx, RED_L1); }
static sk_status run_reduce_l2(sk_op_ctx *ctx) { return run_reduce(ctx, RED_L2); }
static sk_status run_reduce_sumsq(sk_op_ctx *ctx) { return run_reduce(ctx, RED_SUMSQ); }
static sk_status run_reduce_logsum(sk_op_ctx *ctx) { return run_reduce(ctx, RED_LOGSUM); }
static sk_status run_reduce_logsumexp(sk_op_ctx *ctx) { return run_reduce(ctx, RED_LOGSUMEXP); }

/* ---- ArgMax, ArgMin ---------------------------------------------------------- */

static sk_status run_arg(sk_op_ctx *ctx, int is_max)
{
    sk_status s = need_in(ctx, 1);
    if (s) return s;
    const sk_tensor *x = ctx->in[0];
    sk_tensor *y = ctx->out[0];
    if (!is_float(x->dtype) && !is_int(x->dtype))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "%s input is not supported", sk_dtype_name(x->dtype));
    int64_t a = sk_node_attr_int(ctx->node, "axis", 0);
    int axis = norm_axis(a, x->rank);
    if (axis < 0) return sk_error_set(ctx->err, SK_EINVAL, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    int keep = sk_node_attr_int(ctx->node, "keepdims", 1) != 0;
    int last = ctx->opset >= 12 && sk_node_attr_int(ctx->node, "select_last_index", 0) != 0;
    int64_t outer, n, inner, od[SK_TENSOR_MAX_RANK];
    split_at(x, axis, &outer, &n, &inner);
    if (n == 0) return sk_error_set(ctx->err, SK_EINVAL, "cannot take the arg%s of an empty axis", is_max ? "max" : "min");
    int ro = 0;
    for (int i = 0; i < x->rank; i++)
        if (i != axis) od[ro++] = x->dims[i];
        else if (keep) od[ro++] = 1;
    if ((s = sk_tensor_alloc_uninit(y, SK_INT64, ro, od, ctx->err))) return s;
    int64_t *yd = y->data;
    int fl = is_float(x->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            int64_t base = o * n * inner + j, best = 0;
            double bv = fl ? sk_tensor_get_f64(x, base) : 0;
            int64_t bi = fl ? 0 : sk_tensor_get_i64(x, base);
            for (int64_t k = 1; k < n; k++) {
                int better, equal;
                if (fl) {
                    double v = x->dtype == SK_FLOAT ? ((const float *)x->data)[base + k * inner]
                                                    : sk_tensor_get_f64(x, base + k * inner);
                    better = is_max ? v > bv : v < bv;
                    equal = v == bv;
                    if (better || (last && equal)) bv = v;
                } else {
                    int64_t v = sk_tensor_get_i64(x, base + k * inner);
                    better = is_max ? v > bi : v < bi;
                    equal = v == bi;
                    if (better || (last && equal)) bi = v;
                }
                if (better || (last && equal)) best = k;
            }
            yd[o * inner + j] = best;
        }
    return SK_OK;
}

static sk_status run_argmax(sk_op_ctx *ctx) { return run_arg(ctx, 1); }
static sk_status run_argmin(sk_op_ctx *ctx) { return run_arg(ctx, 0); }

/* ---- CumSum ------------------------------------------------------------------- */

static sk_status run_cumsum(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 2);
    if (s) return s;
    const sk_tensor *x = ctx->in[0], *at = ctx->in[1];
    sk_tensor *y = ctx->out[0];
    if (!is_float(x->dtype) && !is_int(x->dtype))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "CumSum of %s is not supported", sk_dtype_name(x->dtype));
    if (at->numel != 1 || (at->dtype != SK_INT64 && at->dtype != SK_INT32))
        return sk_error_set(ctx->err, SK_EINVAL, "axis must be one int32 or int64 value");
    int64_t a = sk_tensor_get_i64(at, 0);
    int axis = norm_axis(a, x->rank);
    if (axis < 0) return sk_error_set(ctx->err, SK_EINVAL, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    int excl = sk_node_attr_int(ctx->node, "exclusive", 0) != 0, rev = sk_node_attr_int(ctx->node, "reverse", 0) != 0;
    if ((s = sk_tensor_alloc_uninit(y, x->dtype, x->rank, x->dims, ctx->err))) return s;
    int64_t outer, n, inner;
    split_at(x, axis, &outer, &n, &inner);
    int fl = is_float(x->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double sf = 0;
            int64_t si = 0;
            for (int64_t c = 0; c < n; c++) {
                int64_t k = rev ? n - 1 - c : c, at_i = (o * n + k) * inner + j;
                if (fl) {
                    double v = sk_tensor_get_f64(x, at_i);
                    if (!excl) sf += v;
                    set_f64(y, at_i, sf);
                    if (excl) sf += v;
                } else {
                    int64_t v = sk_tensor_get_i64(x, at_i);
                    if (!excl) si = (int64_t)((uint64_t)si + (uint64_t)v);
                    set_i64(y, at_i, si);
                    if (excl) si = (int64_t)((uint64_t)si + (uint64_t)v);
                }
            }
        }
    return SK_OK;
}

/* ---- Softmax, LogSoftmax -------------------------------------------------------- */

void sk_softmax_row_ref(const float *x, float *y, int64_t n, int log_softmax);
void sk_softmax_row(const float *x, float *y, int64_t n, int log_softmax);

/* Reference: y = exp(x - max) / sum, or x - max - log(sum), in double. */
void sk_softmax_row_ref(const float *x, float *y, int64_t n, int log_softmax)
{
    if (n <= 0) return;
    double m = x[0], sum = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > m) m = x[i];
    for (int64_t i = 0; i < n; i++) sum += exp((double)x[i] - m);
    for (int64_t i = 0; i < n; i++)
        y[i] = log_softmax ? (float)((double)x[i] - m - log(sum)) : (float)(exp((double)x[i] - m) / sum);
}

/* The softmax row kernel, written once with GCC vector extensions and
 * instantiated per instruction set: VF is a float vector of W lanes, VI the
 * int32 vector of the same size. Its exp: range reduction x = n ln2 + r, a
 * degree-6 polynomial for e^r, 2^n built in the exponent bits; relative
 * error about 2e-7, results below 2^-126 flush to 0. y may alias x. */
#define SK_DEFINE_SOFTMAX_ROW(NAME, ATTR, VF, VI, W)                                          \
    ATTR static inline VF NAME##_exp(VF x)                                                     \
    {                                                                                          \
        const VF hi = (VF){ 0 } + 88.3762626647949f, lo = (VF){ 0 } - 87.3365478515625f;     \
        VI m = x < hi;                                                                         \
        x = (VF)(((VI)x & m) | ((VI)hi & ~m));                                                 \
        m = x > lo;                                                                            \
        x = (VF)(((VI)x & m) | ((VI)lo & ~m));                                                 \
        VF fx = x * 1.44269504088896341f + 0.5f;                                               \
        VF t = __builtin_convertvector(__builtin_convertvector(fx, VI), VF);                   \
        VI gt = t > fx;                                                                        \
        fx = t + __builtin_convertvector(gt, VF); /* floor */                                  \
        x = x - fx * 0.693359375f - fx * -2.12194440e-4f;                                      \
        VF z = x * x, y = (VF){ 0 } + 1.9875691500e-4f;                                        \
        y = y * x + 1.3981999507e-3f;                                                          \
        y = y * x + 8.3334519073e-3f;                                                          \
        y = y * x + 4.1665795894e-2f;                                                          \
        y = y * x + 1.6666665459e-1f;                                                          \
        y = y * x + 5.0000001201e-1f;                                                          \
        y = y * z + x + 1.0f;                                                                  \
        VI bits = (__builtin_convertvector(fx, VI) + 127) << 23;                               \
        VF p2;                                                                                 \
        memcpy(&p2, &bits, sizeof p2);                                                         \
        return y * p2;                                                                         \
    }                                                                                          \
    ATTR static void NAME(const float *x, float *y, int64_t n, int log_softmax)                \
    {                                                                                          \
        int64_t i = 0;                                                                         \
        float m = x[0], sum = 0;                                                               \
        if (n >= 2 * W) {                                                                      \
            VF vm, v;                                                                          \
            memcpy(&vm, x, sizeof vm);                                                         \
            for (i = W; i + W <= n; i += W) {                                                  \
                memcpy(&v, x + i, sizeof v);                                                   \
                VI gtm = v > vm;                                                               \
                vm = (VF)(((VI)v & gtm) | ((VI)vm & ~gtm));                                    \
            }                                                                                  \
            for (int l = 0; l < W; l++) m = vm[l] > m ? vm[l] : m;                             \
        }                                                                                      \
        for (; i < n; i++) m = x[i] > m ? x[i] : m;                                            \
        VF vs = { 0 }, vmv = m - (VF){ 0 };                                                    \
        for (i = 0; i + W <= n; i += W) {                                                      \
            VF v;                                                                              \
            memcpy(&v, x + i, sizeof v);                                                       \
            VF e = NAME##_exp(v - vmv);                                                        \
            vs += e;                                                                           \
            if (!log_softmax) memcpy(y + i, &e, sizeof e);                                     \
        }                                                                                      \
        for (; i < n; i++) {                                                                   \
            float e = expf(x[i] - m);                                                          \
            sum += e;                                                                          \
            if (!log_softmax) y[i] = e;                                                        \
        }                                                                                      \
        for (int l = 0; l < W; l++) sum += vs[l];                                              \
        if (log_softmax) {                                                                     \
            float ls = logf(sum);                                                              \
            for (i = 0; i < n; i++) y[i] = (x[i] - m) - ls;                                    \
        } else {                                                                               \
            float r = 1.0f / sum;                                                              \
            VF vr = r - (VF){ 0 };                                                             \
            for (i = 0; i + W <= n; i += W) {                                                  \
                VF v;                                                                          \
                memcpy(&v, y + i, sizeof v);                                                   \
                v *= vr;                                                                       \
                memcpy(y + i, &v, sizeof v);                                                   \
            }                                                                                  \
            for (; i < n; i++) y[i] *= r;                                                      \
        }                                                                                      \
    }

SK_DEFINE_SOFTMAX_ROW(softmax_row_generic, , v4f, v4i, 4)

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(SK_NO_DISPATCH)
#define SK_REDUCE_X86 1
#if defined(__clang__)
#define SK_CONTRACT
#else
#define SK_CONTRACT __attribute__((optimize("fp-contract=fast")))
#endif
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
SK_DEFINE_SOFTMAX_ROW(softmax_row_avx2, __attribute__((target("avx2,fma"))) SK_CONTRACT, v8f, v8i, 8)
SK_DEFINE_SOFTMAX_ROW(softmax_row_avx512, __attribute__((target("avx512f,fma"))) SK_CONTRACT, v16f, v16i, 16)
#endif

typedef void (*softmax_row_fn)(const float *x, float *y, int64_t n, int log_softmax);

static softmax_row_fn softmax_row_pick(void)
{
#ifdef SK_REDUCE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return softmax_row_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return softmax_row_avx2;
#endif
    return softmax_row_generic;
}

/* Fast path: vectorised max, exp and sum, in the widest vectors the CPU has.
 * y may alias x. */
void sk_softmax_row(const float *x, float *y, int64_t n, int log_softmax)
{
    static softmax_row_fn cached; /* every thread computes the same value */
    if (n <= 0) return;
    softmax_row_fn fn = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!fn) {
        fn = softmax_row_pick();
        __atomic_store_n(&cached, fn, __ATOMIC_RELAXED);
    }
    fn(x, y, n, log_softmax);
}

/* The generic (128-bit) instance, for tests on machines with wider vectors. */
void sk_softmax_row_generic(const float *x, float *y, int64_t n, int log_softmax);
void sk_softmax_row_generic(const float *x, float *y, int64_t n, int log_softmax)
{
    if (n > 0) softmax_row_generic(x, y, n, log_softmax);
}

/* Softmax over the middle dim of [outer, n, inner] with inner > 1: every
 * step works on a contiguous run of inner values. */
static void softmax_strided(const float *x, float *y, int64_t n, int64_t inner, int log_softmax, float *m, float *sum)
{
    for (int64_t j = 0; j < inner; j++) {
        m[j] = x[j];
        sum[j] = 0;
    }
    for (int64_t k = 1; k < n; k++)
        for (int64_t j = 0; j < inner; j++) m[j] = x[k * inner + j] > m[j] ? x[k * inner + j] : m[j];
    for (int64_t k = 0; k < n; k++)
        for (int64_t j = 0; j < inner; j++) {
            float e = expf(x[k * inner + j] - m[j]);
            sum[j] += e;
            if (!log_softmax) y[k * inner + j] = e;
        }
    for (int64_t k = 0; k < n; k++)
        for (int64_t j = 0; j < inner; j++) {
            if (log_softmax) y[k * inner + j] = (x[k * inner + j] - m[j]) - logf(sum[j]);
            else y[k * inner + j] /= sum[j];
        }
}

static sk_status run_softmax_any(sk_op_ctx *ctx, int log_softmax)
{
    sk_status s = need_in(ctx, 1);
    if (s) return s;
    const sk_tensor *x0 = ctx->in[0];
    sk_tensor *y = ctx->out[0];
    int dt = x0->dtype;
    if (!is_float(dt)) return sk_error_set(ctx->err, SK_EUNSUPPORTED, "%s input is not supported", sk_dtype_name(dt));
    int64_t a = sk_node_attr_int(ctx->node, "axis", ctx->opset >= 13 ? -1 : 1);
    int rank = x0->rank;
    int axis = rank == 0 ? 0 : norm_axis(a, rank);
    if (axis < 0) return sk_error_set(ctx->err, SK_EINVAL, "axis %lld is out of range for rank %d", (long long)a, rank);
    int64_t outer = 1, n = 1, inner = 1;
    if (rank > 0) {
        if (ctx->opset >= 13) split_at(x0, axis, &outer, &n, &inner);
        else {
            for (int i = 0; i < axis; i++) outer *= x0->dims[i];
            for (int i = axis; i < rank; i++) n *= x0->dims[i];
        }
    }
    sk_tensor tx = { 0 };
    const sk_tensor *x;
    float *scratch = NULL;
    if ((s = f32_view(x0, &tx, &x, ctx->err))) goto done;
    if ((s = sk_tensor_alloc_uninit(y, SK_FLOAT, rank, x0->dims, ctx->err))) goto done;
    if (y->numel == 0) goto convert;
    if (inner > 1 && !(scratch = malloc(2 * (size_t)inner * sizeof *scratch))) {
        s = sk_error_set(ctx->err, SK_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t o = 0; o < outer; o++) {
        const float *xr = (const float *)x->data + o * n * inner;
        float *yr = (float *)y->data + o * n * inner;
        if (inner == 1) sk_softmax_row(xr, yr, n, log_softmax);
        else softmax_strided(xr, yr, n, inner, log_softmax, scratch, scratch + inner);
    }
convert:
    s = f32_to(y, dt, ctx->err);
done:
    free(scratch);
    sk_tensor_free(&tx);
    return s;
}

static sk_status run_softmax(sk_op_ctx *ctx) { return run_softmax_any(ctx, 0); }
static sk_status run_logsoftmax(sk_op_ctx *ctx) { return run_softmax_any(ctx, 1); }

/* ---- LayerNormalization and friends --------------------------------------------- */

void sk_layernorm_row_ref(const float *x, float *y, int64_t n, const float *scale, const float *bias, float eps,
                          int rms, float *mean_out, float *rstd_out);
void sk_layernorm_row(const float *x, float *y, int64_t n, const float *scale, const float *bias, float eps, int rms,
                      float *mean_out, float *rstd_out);

/* Reference: mean and variance in double, two passes. rms: no mean
 * subtraction (RMSNorm), *mean_out stays untouched. */
void sk_layernorm_row_ref(const float *x, float *y, int64_t n, const float *scale, const float *bias, float eps,
                          int rms, float *mean_out, float *rstd_out)
{
    double mean = 0, var = 0;
    if (!rms) {
        for (int64_t i = 0; i < n; i++) mean += x[i];
        mean = n ? mean / (double)n : 0;
    }
    for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var = n ? var / (double)n : 0;
    double rstd = 1.0 / sqrt(var + eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)((x[i] - mean) * rstd * (scale ? scale[i] : 1.0f) + (bias ? bias[i] : 0.0f));
    if (mean_out && !rms) *mean_out = (float)mean;
    if (rstd_out) *rstd_out = (float)rstd;
}

/* Fast path: float32 vector sums, two passes over the row. y may alias x. */
void sk_layernorm_row(const float *x, float *y, int64_t n, const float *scale, const float *bias, float eps, int rms,
                      float *mean_out, float *rstd_out)
{
    int64_t i;
    float mean = 0;
    if (!rms) {
        v4f s4 = { 0 };
        float s = 0;
        for (i = 0; i + 4 <= n; i += 4) s4 += v4f_load(x + i);
        for (; i < n; i++) s += x[i];
        mean = n ? (s + v4f_hsum(s4)) / (float)n : 0;
    }
    v4f q4 = { 0 }, vm = mean - (v4f){ 0 };
    float q = 0;
    for (i = 0; i + 4 <= n; i += 4) {
        v4f d = v4f_load(x + i) - vm;
        q4 += d * d;
    }
    for (; i < n; i++) q += (x[i] - mean) * (x[i] - mean);
    float var = n ? (q + v4f_hsum(q4)) / (float)n : 0;
    float rstd = 1.0f / sqrtf(var + eps);
    v4f vr = rstd - (v4f){ 0 };
    for (i = 0; i + 4 <= n; i += 4) {
        v4f v = (v4f_load(x + i) - vm) * vr;
        if (scale) v *= v4f_load(scale + i);
        if (bias) v += v4f_load(bias + i);
        v4f_store(y + i, v);
    }
    for (; i < n; i++) y[i] = (x[i] - mean) * rstd * (scale ? scale[i] : 1.0f) + (bias ? bias[i] : 0.0f);
    if (mean_out && !rms) *mean_out = mean;
    if (rstd_out) *rstd_out = rstd;
}

/* A float32 copy of t broadcast (numpy rules) to the last dims of length n,
 * or t's own data when it already has n values. */
static sk_status norm_param(sk_op_ctx *ctx, const sk_tensor *t, int rank_tail, const int64_t *tail, int64_t n,
                            sk_tensor *tmp, const float **out, const char *what)
{
    char s1[128];
    *out = NULL;
    if (!t) return SK_OK;
    const sk_tensor *f;
    sk_status s = f32_view(t, tmp, &f, ctx->err);
    if (s) return s;
    if (t->numel == n) {
        *out = f->data;
        return SK_OK;
    }
    int r;
    int64_t bd[SK_TENSOR_MAX_RANK];
    if (t->rank > rank_tail || sk_shape_broadcast(rank_tail, tail, t->rank, t->dims, &r, bd, NULL) ||
        sk_shape_numel(r, bd) != n)
        return sk_error_set(ctx->err, SK_EINVAL, "%s of shape %s does not broadcast to the normalised dims", what,
                            sk_shape_str(t->rank, t->dims, s1, sizeof s1));
    sk_tensor e = { 0 };
    if ((s = sk_tensor_alloc_uninit(&e, SK_FLOAT, rank_tail, tail, ctx->err))) return s;
    int64_t str[SK_TENSOR_MAX_RANK], st = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        str[i] = t->dims[i] == 1 ? 0 : st;
        st *= t->dims[i];
    }
    const float *src = f->data;
    float *dst = e.data;
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, off = 0;
        for (int d = rank_tail - 1; d >= 0; d--) {
            int64_t c = rem % tail[d];
            rem /= tail[d];
            int td = d - (rank_tail - t->rank);
            if (td >= 0) off += c * str[td];
        }
        dst[i] = src[off];
    }
    sk_tensor_free(tmp);
    *tmp = e;
    *out = tmp->data;
    return SK_OK;
}

typedef enum { LN_PLAIN, LN_SIMPLIFIED, LN_SKIP, LN_SKIP_SIMPLIFIED } ln_kind;

/* LayerNormalization (17), SimplifiedLayerNormalization, RMSNormalization (23):
 * X, Scale, [B] -> Y, [Mean], [InvStdDev] over dims [axis, rank).
 * com.microsoft Skip(Simplified)LayerNormalization: input, skip, gamma,
 * [beta], [bias] -> output, [mean], [inv_std_var], [input_skip_bias_sum] over
 * the last dim. */
static sk_status run_layernorm_any(sk_op_ctx *ctx, ln_kind kind)
{
    int skip = kind == LN_SKIP || kind == LN_SKIP_SIMPLIFIED;
    int rms = kind == LN_SIMPLIFIED || kind == LN_SKIP_SIMPLIFIED;
    sk_status s = need_in(ctx, skip ? 3 : 1);
    if (s) return s;
    const sk_tensor *x0 = ctx->in[0];
    int dt = x0->dtype, rank = x0->rank;
    char s1[128], s2[128];
    if (!is_float(dt)) return sk_error_set(ctx->err, SK_EUNSUPPORTED, "%s input is not supported", sk_dtype_name(dt));
    if (rank < 1) return sk_error_set(ctx->err, SK_EINVAL, "input must have rank >= 1");
    int64_t a = skip ? -1 : sk_node_attr_int(ctx->node, "axis", -1);
    int axis = norm_axis(a, rank);
    if (axis < 0) return sk_error_set(ctx->err, SK_EINVAL, "axis %lld is out of range for rank %d", (long long)a, rank);
    float eps = sk_node_attr_float(ctx->node, "epsilon", skip ? 1e-12f : 1e-5f);
    int64_t outer = 1, n = 1;
    for (int i = 0; i < axis; i++) outer *= x0->dims[i];
    for (int i = axis; i < rank; i++) n *= x0->dims[i];
    const sk_tensor *skip_t = skip ? ctx->in[1] : NULL;
    const sk_tensor *scale_t = in_at(ctx, skip ? 2 : 1);
    const sk_tensor *bias_t = rms && !skip ? NULL : in_at(ctx, skip ? 3 : 2);
    const sk_tensor *skbias_t = kind == LN_SKIP ? in_at(ctx, 4) : kind == LN_SKIP_SIMPLIFIED ? in_at(ctx, 3) : NULL;
    if (kind == LN_SKIP_SIMPLIFIED) bias_t = NULL;
    if (skip && (skip_t->rank < 1 || skip_t->dims[skip_t->rank - 1] != n || x0->numel % (skip_t->numel ? skip_t->numel : 1)))
        return sk_error_set(ctx->err, SK_EINVAL, "skip %s does not match input %s",
                            sk_shape_str(skip_t->rank, skip_t->dims, s1, sizeof s1), sk_shape_str(rank, x0->dims, s2, sizeof s2));
    if (!skip && !scale_t) return sk_error_set(ctx->err, SK_EINVAL, "input Scale is missing");
    sk_tensor tx = { 0 }, tsk = { 0 }, tsc = { 0 }, tb = { 0 }, tsb = { 0 }, tsum = { 0 };
    const sk_tensor *x, *sk = NULL;
    const float *scale = NULL, *bias = NULL, *skb = NULL;
    sk_tensor *y = ctx->out[0];
    sk_tensor *mean_t = rms ? NULL : out_at(ctx, 1), *rstd_t = out_at(ctx, rms && !skip ? 1 : 2);
    sk_tensor *sum_t = skip ? out_at(ctx, 3) : NULL;
    if ((s = f32_view(x0, &tx, &x, ctx->err))) goto done;
    if (skip && (s = f32_view(skip_t, &tsk, &sk, ctx->err))) goto done;
    if ((s = norm_param(ctx, scale_t, rank - axis, x0->dims + axis, n, &tsc, &scale, "scale")) ||
        (s = norm_param(ctx, bias_t, rank - axis, x0->dims + axis, n, &tb, &bias, "bias")) ||
        (s = norm_param(ctx, skbias_t, rank - axis, x0->dims + axis, n, &tsb, &skb, "skip bias")))
        goto done;
    if ((s = sk_tensor_alloc_uninit(y, SK_FLOAT, rank, x0->dims, ctx->err))) goto done;
    {
        int64_t sd[SK_TENSOR_MAX_RANK];
        for (int i = 0; i < rank; i++) sd[i] = i < axis ? x0->dims[i] : 1;
        if (mean_t && (s = sk_tensor_alloc_uninit(mean_t, SK_FLOAT, rank, sd, ctx->err))) goto done;
        if (rstd_t && (s = sk_tensor_alloc_uninit(rstd_t, SK_FLOAT, rank, sd, ctx->err))) goto done;
        if (sum_t && (s = sk_tensor_alloc_uninit(sum_t, SK_FLOAT, rank, x0->dims, ctx->err))) goto done;
    }
    const float *xd = x->data;
    float *yd = y->data;
    if (skip) { /* s = input + skip (+ bias) into the output buffer, normalised in place */
        const float *sd = sk->data;
        int64_t sn = skip_t->numel;
        for (int64_t o = 0; o < outer; o++) {
            float *yr = yd + o * n;
            const float *xr = xd + o * n, *sr = sd + (o * n) % sn;
            for (int64_t i = 0; i < n; i++) yr[i] = xr[i] + sr[i] + (skb ? skb[i] : 0.0f);
        }
        if (sum_t) memcpy(sum_t->data, yd, (size_t)x0->numel * sizeof(float));
        xd = yd;
    }
    for (int64_t o = 0; o < outer; o++)
        sk_layernorm_row(xd + o * n, yd + o * n, n, scale, bias, eps, rms,
                         mean_t ? (float *)mean_t->data + o : NULL, rstd_t ? (float *)rstd_t->data + o : NULL);
    if ((s = f32_to(y, dt, ctx->err))) goto done;
    if (sum_t && (s = f32_to(sum_t, dt, ctx->err))) goto done;
    /* Mean and InvStdDev keep float32 (stash_type 1) for float32 and
     * float16 inputs; a float64 input gets float64 statistics. */
    if (dt == SK_DOUBLE) {
        if (mean_t && (s = f32_to(mean_t, dt, ctx->err))) goto done;
        if (rstd_t && (s = f32_to(rstd_t, dt, ctx->err))) goto done;
    }
done:
    sk_tensor_free(&tx);
    sk_tensor_free(&tsk);
    sk_tensor_free(&tsc);
    sk_tensor_free(&tb);
    sk_tensor_free(&tsb);
    sk_tensor_free(&tsum);
    return s;
}

static sk_status run_layernorm(sk_op_ctx *ctx) { return run_layernorm_any(ctx, LN_PLAIN); }
static sk_status run_simplified_layernorm(sk_op_ctx *ctx) { return run_layernorm_any(ctx, LN_SIMPLIFIED); }
static sk_status run_skip_layernorm(sk_op_ctx *ctx) { return run_layernorm_any(ctx, LN_SKIP); }
static sk_status run_skip_simplified_layernorm(sk_op_ctx *ctx) { return run_layernorm_any(ctx, LN_SKIP_SIMPLIFIED); }

/* ---- TopK ----------------------------------------------------------------------- */

typedef struct topk_item {
    double v;
    int64_t i;
} topk_item;

static int topk_cmp_largest(const void *a, const void *b)
{
    const topk_item *x = a, *y = b;
    if (x->v != y->v) {
        if (x->v != x->v) return -1; /* NaN first, as the largest */
        if (y->v != y->v) return 1;
        return x->v > y->v ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

static int topk_cmp_smallest(const void *a, const void *b)
{
    const topk_item *x = a, *y = b;
    if (x->v != y->v) {
        if (x->v != x->v) return 1;
        if (y->v != y->v) return -1;
        return x->v < y->v ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

static sk_status run_topk(sk_op_ctx *ctx)
{
    sk_status s = need_in(ctx, 1);
    if (s) return s;
    const sk_tensor *x = ctx->in[0];
    sk_tensor *vals = ctx->out[0], *inds = out_at(ctx, 1);
    if (!is_float(x->dtype) && !is_int(x->dtype))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "TopK of %s is not supported", sk_dtype_name(x->dtype));
    int64_t k;
    if (ctx->opset >= 10) {
        const sk_tensor *kt = in_at(ctx, 1);
        if (!kt || kt->numel != 1) return sk_error_set(ctx->err, SK_EINVAL, "K must be one int64 value");
        k = sk_tensor_get_i64(kt, 0);
    } else {
        k = sk_node_attr_int(ctx->node, "k", -1);
    }
    int64_t a = sk_node_attr_int(ctx->node, "axis", -1);
    int axis = norm_axis(a, x->rank);
    if (axis < 0) return sk_error_set(ctx->err, SK_EINVAL, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    int largest = ctx->opset < 11 || sk_node_attr_int(ctx->node, "largest", 1) != 0;
    int64_t outer, n, inner;
    split_at(x, axis, &outer, &n, &inner);
    if (k < 0 || k > n)
        return sk_error_set(ctx->err, SK_EINVAL, "K = %lld is not in [0, %lld]", (long long)k, (long long)n);
    int64_t od[SK_TENSOR_MAX_RANK];
    memcpy(od, x->dims, (size_t)x->rank * sizeof *od);
    od[axis] = k;
    if ((s = sk_tensor_alloc_uninit(vals, x->dtype, x->rank, od, ctx->err))) return s;
    if (inds && (s = sk_tensor_alloc_uninit(inds, SK_INT64, x->rank, od, ctx->err))) return s;
    topk_item *it = malloc(((size_t)n + 1) * sizeof *it);
    if (!it) return sk_error_set(ctx->err, SK_ENOMEM, "out of memory");
    int fl = is_float(x->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            for (int64_t c = 0; c < n; c++) {
                int64_t at = (o * n + c) * inner + j;
                it[c].v = fl ? sk_tensor_get_f64(x, at) : (double)sk_tensor_get_i64(x, at);
                it[c].i = c;
            }
            qsort(it, (size_t)n, sizeof *it, largest ? topk_cmp_largest : topk_cmp_smallest);
            for (int64_t c = 0; c < k; c++) {
                int64_t oat = (o * k + c) * inner + j, src = (o * n + it[c].i) * inner + j;
                if (fl) set_f64(vals, oat, sk_tensor_get_f64(x, src));
                else set_i64(vals, oat, sk_tensor_get_i64(x, src));
                if (inds) ((int64_t *)inds->data)[oat] = it[c].i;
            }
        }
    free(it);
    return SK_OK;
}

/* ---- table ----------------------------------------------------------------- */

const sk_op_def sk_ops_reduce[] = {
    { "", "ReduceSum", 1, run_reduce_sum },
    { "", "ReduceMean", 1, run_reduce_mean },
    { "", "ReduceMax", 1, run_reduce_max },
    { "", "ReduceMin", 1, run_reduce_min },
    { "", "ReduceProd", 1, run_reduce_prod },
    { "", "ReduceL1", 1, run_reduce_l1 },
    { "", "ReduceL2", 1, run_reduce_l2 },
    { "", "ReduceSumSquare", 1, run_reduce_sumsq },
    { "", "ReduceLogSum", 1, run_reduce_logsum },
    { "", "ReduceLogSumExp", 1, run_reduce_logsumexp },
    { "", "ArgMax", 1, run_argmax },
    { "", "ArgMin", 1, run_argmin },
    { "", "CumSum", 11, run_cumsum },
    { "", "Softmax", 1, run_softmax },
    { "", "LogSoftmax", 1, run_logsoftmax },
    { "", "LayerNormalization", 1, run_layernorm },
    { "", "SimplifiedLayerNormalization", 1, run_simplified_layernorm },
    { "", "RMSNormalization", 23, run_simplified_layernorm },
    { "com.microsoft", "SkipLayerNormalization", 1, run_skip_layernorm },
    { "com.microsoft", "SkipSimplifiedLayerNormalization", 1, run_skip_simplified_layernorm },
    { "", "TopK", 1, run_topk },
    { NULL, NULL, 0, NULL },
};
