/* Shape and data-movement ops: Reshape, Flatten, Squeeze, Unsqueeze,
 * Transpose, Concat, Split, Slice, Gather*, Scatter*, Expand, Tile, Pad, Shape,
 * Size, Range, ConstantOfShape, Trilu, EyeLike, OneHot, NonZero,
 * DepthToSpace, SpaceToDepth.
 *
 * These ops move bytes: they work on any element type of at least one byte
 * (ops that only change the shape also take int4/uint4). Every index read from
 * a tensor is range-checked before use: an out-of-range index is SK_EINVAL,
 * never an out-of-bounds access. */
#include "sk_op.h"
#include "sk_model.h"
#include "sk_kernels_ew.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MAXR SK_TENSOR_MAX_RANK

/* ---- helpers ------------------------------------------------------------- */

static const sk_tensor *input(const sk_op_ctx *c, size_t i)
{
    return i < c->n_in ? c->in[i] : NULL;
}

static sk_status need_io(const sk_op_ctx *c, size_t n_in)
{
    for (size_t i = 0; i < n_in; i++)
        if (!input(c, i)) return sk_error_set(c->err, SK_EINVAL, "required input %zu is missing", i);
    if (c->n_out < 1 || !c->out[0]) return sk_error_set(c->err, SK_EINVAL, "output 0 is missing");
    return SK_OK;
}

/* Bytes per element, 0 for sub-byte and variable-size types. */
static size_t esize(int dtype)
{
    if (!sk_dtype_valid(dtype)) return 0;
    unsigned bits = sk_dtype_table[dtype].bits;
    return bits >= 8 ? bits / 8 : 0;
}

static sk_status need_bytes(const sk_op_ctx *c, const sk_tensor *t, size_t *es)
{
    *es = esize(t->dtype);
    if (*es == 0)
        return sk_error_set(c->err, SK_EUNSUPPORTED, "tensors of type %s are not supported by this op",
                            sk_dtype_name(t->dtype));
    return SK_OK;
}

static int kind_is_float(int dtype)
{
    return dtype == SK_FLOAT || dtype == SK_DOUBLE || dtype == SK_FLOAT16 || dtype == SK_BFLOAT16;
}

/* 1 if element i is not zero (floats compare as numbers: -0 is zero, NaN is not). */
static int elem_nonzero(const sk_tensor *x, int64_t i, size_t es, int isf)
{
    if (isf) return sk_tensor_get_f64(x, i) != 0;
    const unsigned char *p = (const unsigned char *)x->data + (size_t)i * es;
    for (size_t b = 0; b < es; b++)
        if (p[b]) return 1;
    return 0;
}

static int is_index_type(int dtype) { return dtype == SK_INT64 || dtype == SK_INT32; }

static int64_t index_at(const sk_tensor *t, int64_t i)
{
    return t->dtype == SK_INT64 ? ((const int64_t *)t->data)[i] : ((const int32_t *)t->data)[i];
}

/* Reads a 1-D (or scalar) int32/int64 tensor into v[0..*n), at most cap values. */
static sk_status read_ints(const sk_op_ctx *c, const sk_tensor *t, const char *what, int64_t *v,
                           size_t cap, size_t *n)
{
    if (!is_index_type(t->dtype))
        return sk_error_set(c->err, SK_EINVAL, "%s must be int64 or int32, not %s", what, sk_dtype_name(t->dtype));
    if (t->rank > 1)
        return sk_error_set(c->err, SK_EINVAL, "%s must be 1-D, not rank %d", what, t->rank);
    if ((uint64_t)t->numel > cap)
        return sk_error_set(c->err, SK_EINVAL, "%s has %lld values, more than %zu", what, (long long)t->numel, cap);
    for (int64_t i = 0; i < t->numel; i++) v[i] = index_at(t, i);
    *n = (size_t)t->numel;
    return SK_OK;
}

/* An ints attribute into v (at most cap values); *n = 0 and *present = 0 when absent. */
static sk_status attr_ints(const sk_op_ctx *c, const char *name, int64_t *v, size_t cap, size_t *n, int *present)
{
    size_t cnt = 0;
    const int64_t *a = sk_node_attr_ints(c->node, name, &cnt);
    *present = sk_node_attr(c->node, name) != NULL;
    if (cnt > cap) return sk_error_set(c->err, SK_EINVAL, "attribute %s has %zu values, more than %zu", name, cnt, cap);
    if (cnt) memcpy(v, a, cnt * sizeof *v);
    *n = cnt;
    return SK_OK;
}

static sk_status norm_axis(const sk_op_ctx *c, int64_t axis, int rank, int *out)
{
    *out = 0;
    if (axis < -(int64_t)rank || axis >= rank)
        return sk_error_set(c->err, SK_EINVAL, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return SK_OK;
}

static void strides_of(int rank, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        st[d] = s;
        s *= dims[d];
    }
}

static int64_t prod(const int64_t *d, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* Stores the number v into element i of a buffer of dtype (numeric types). */
static void put_f64(int dtype, void *p, int64_t i, double v)
{
    switch (dtype) {
    case SK_FLOAT: ((float *)p)[i] = (float)v; break;
    case SK_DOUBLE: ((double *)p)[i] = v; break;
    case SK_FLOAT16: ((uint16_t *)p)[i] = sk_float_to_half((float)v); break;
    case SK_BFLOAT16: ((uint16_t *)p)[i] = sk_float_to_bf16((float)v); break;
    case SK_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case SK_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case SK_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case SK_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    case SK_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case SK_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case SK_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case SK_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
    case SK_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    default: break;
    }
}

/* dst[0..n) = n copies of the es-byte element at elem. */
static void fill_elem(unsigned char *dst, const void *elem, size_t es, int64_t n)
{
    if (n <= 0) return;
    size_t total = (size_t)n * es, done = es;
    memcpy(dst, elem, es);
    while (done < total) {
        size_t k = done < total - done ? done : total - done;
        memcpy(dst + done, dst, k);
        done += k;
    }
}

/* dst (rank r, dims od, dense) = src read with element strides ist (0 on
 * broadcast dims). r may reach 2 * SK_TENSOR_MAX_RANK (Tile). */
static void bcast_copy(void *dst, const void *src, size_t es, int r, const int64_t *od, const int64_t *ist)
{
    int64_t dims[2 * MAXR], st[2 * MAXR], idx[2 * MAXR] = { 0 };
    int nd = 0;
    for (int d = 0; d < r; d++) {
        if (od[d] == 1) continue;
        if (nd > 0 && st[nd - 1] == ist[d] * od[d]) {
            dims[nd - 1] *= od[d];
            st[nd - 1] = ist[d];
        } else {
            dims[nd] = od[d];
            st[nd] = ist[d];
            nd++;
        }
    }
    if (nd == 0) {
        dims[0] = 1;
        st[0] = 0;
        nd = 1;
    }
    int64_t total = prod(dims, 0, nd);
    if (total == 0) return;
    const int64_t n = dims[nd - 1], s = st[nd - 1];
    const unsigned char *in = src;
    unsigned char *out = dst;
    int64_t off = 0;
    for (int64_t o = 0; o < total / n; o++) {
        unsigned char *row = out + (size_t)(o * n) * es;
        const unsigned char *from = in + (ptrdiff_t)off * (ptrdiff_t)es; /* off < 0 for negative slice steps */
        if (s == 1) memcpy(row, from, (size_t)n * es);
        else if (s == 0) fill_elem(row, from, es, n);
        else
            for (int64_t i = 0; i < n; i++) memcpy(row + (size_t)i * es, from + (ptrdiff_t)(i * s) * (ptrdiff_t)es, es);
        for (int d = nd - 2; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < dims[d]) break;
            off -= st[d] * dims[d];
            idx[d] = 0;
        }
    }
}

/* ---- transpose kernels ----------------------------------------------------- */

void sk_transpose_ref(void *dst, const void *src, size_t es, int rank, const int64_t *dims, const int *perm)
{
    int64_t ist[MAXR], od[MAXR], ost[MAXR], idx[MAXR] = { 0 };
    strides_of(rank, dims, ist);
    for (int i = 0; i < rank; i++) {
        od[i] = dims[perm[i]];
        ost[i] = ist[perm[i]];
    }
    int64_t n = prod(od, 0, rank), off = 0;
    for (int64_t i = 0; i < n; i++) {
        memcpy((unsigned char *)dst + (size_t)i * es, (const unsigned char *)src + (size_t)off * es, es);
        for (int d = rank - 1; d >= 0; d--) {
            off += ost[d];
            if (++idx[d] < od[d]) break;
            off -= ost[d] * od[d];
            idx[d] = 0;
        }
    }
}

#define TP_TILE 32

/* A tile of the 2-D transpose: out[r][c] = in[r*sr + c*sc], for typed T. */
#define TP_TILE_LOOP(T)                                                               \
    do {                                                                              \
        T *o_ = (T *)out;                                                             \
        const T *i_ = (const T *)in;                                                  \
        for (int64_t r = r0; r < r1; r++)                                             \
            for (int64_t cc = c0; cc < c1; cc++) o_[r * C + cc] = i_[r * sr + cc * sc]; \
    } while (0)

static void transpose_2d(unsigned char *out, const unsigned char *in, size_t es, int64_t R, int64_t C,
                         int64_t sr, int64_t sc)
{
    for (int64_t r0 = 0; r0 < R; r0 += TP_TILE) {
        const int64_t r1 = r0 + TP_TILE < R ? r0 + TP_TILE : R;
        for (int64_t c0 = 0; c0 < C; c0 += TP_TILE) {
            const int64_t c1 = c0 + TP_TILE < C ? c0 + TP_TILE : C;
            switch (es) {
            case 1: TP_TILE_LOOP(uint8_t); break;
            case 2: TP_TILE_LOOP(uint16_t); break;
            case 4: TP_TILE_LOOP(uint32_t); break;
            case 8: TP_TILE_LOOP(uint64_t); break;
            default:
                for (int64_t r = r0; r < r1; r++)
                    for (int64_t cc = c0; cc < c1; cc++)
                        memcpy(out + (size_t)(r * C + cc) * es, in + (size_t)(r * sr + cc * sc) * es, es);
            }
        }
    }
}

void sk_transpose(void *dst, const void *src, size_t es, int rank, const int64_t *dims, const int *perm)
{
    int64_t ist[MAXR], od[MAXR], ost[MAXR], idx[MAXR] = { 0 };
    int nd = 0;
    strides_of(rank, dims, ist);
    /* Coalesce output axes that are adjacent, in order, in the input too;
     * drop size-1 axes. */
    for (int i = 0; i < rank; i++) {
        int64_t d = dims[perm[i]];
        if (d == 1) continue;
        if (nd > 0 && ost[nd - 1] == ist[perm[i]] * d) {
            od[nd - 1] *= d;
            ost[nd - 1] = ist[perm[i]];
        } else {
            od[nd] = d;
            ost[nd] = ist[perm[i]];
            nd++;
        }
    }
    const int64_t total = prod(dims, 0, rank);
    if (total == 0) return;
    if (nd <= 1) {
        memcpy(dst, src, (size_t)total * es);
        return;
    }
    unsigned char *out = dst;
    const unsigned char *in = src;
    int64_t off = 0;
    if (ost[nd - 1] == 1) { /* innermost axis stays innermost: whole rows */
        const int64_t n = od[nd - 1];
        for (int64_t o = 0; o < total / n; o++) {
            memcpy(out + (size_t)(o * n) * es, in + (size_t)off * es, (size_t)n * es);
            for (int d = nd - 2; d >= 0; d--) {
                off += ost[d];
                if (++idx[d] < od[d]) break;
                off -= ost[d] * od[d];
                idx[d] = 0;
            }
        }
        return;
    }
    /* tiles over the last two output axes */
    const int64_t R = od[nd - 2], C = od[nd - 1], plane = R * C;
    for (int64_t o = 0; o < total / plane; o++) {
        transpose_2d(out + (size_t)(o * plane) * es, in + (size_t)off * es, es, R, C, ost[nd - 2], ost[nd - 1]);
        for (int d = nd - 3; d >= 0; d--) {
            off += ost[d];
            if (++idx[d] < od[d]) break;
            off -= ost[d] * od[d];
            idx[d] = 0;
        }
    }
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze ---------------------------------- */

/* out = x's data with a new shape (any dtype: the bytes are the same). */
static sk_status reshaped_copy(const sk_op_ctx *c, const sk_tensor *x, int rank, const int64_t *dims)
{
    char b1[160], b2[160];
    int64_t n = sk_shape_numel(rank, dims);
    if (n != x->numel)
        return sk_error_set(c->err, SK_EINVAL, "cannot reshape %s (%lld elements) to %s",
                            sk_shape_str(x->rank, x->dims, b1, sizeof b1), (long long)x->numel,
                            sk_shape_str(rank, dims, b2, sizeof b2));
    sk_status s = sk_tensor_alloc_uninit(c->out[0], x->dtype, rank, dims, c->err); /* every byte copied below */
    if (s) return s;
    memcpy(c->out[0]->data, x->data, x->nbytes);
    return SK_OK;
}

static sk_status reshape_to(const sk_op_ctx *c, const sk_tensor *x, const int64_t *shape, size_t n, int allowzero)
{
    int64_t dims[MAXR], known = 1;
    int infer = -1, has_zero = 0;
    if (n > MAXR) return sk_error_set(c->err, SK_EINVAL, "target shape has %zu dims, more than %d", n, MAXR);
    for (size_t i = 0; i < n; i++) {
        int64_t v = shape[i];
        if (v == 0 && !allowzero) {
            if ((int)i >= x->rank)
                return sk_error_set(c->err, SK_EINVAL, "shape[%zu] is 0 (copy) but the input has rank %d", i, x->rank);
            v = x->dims[i];
        } else if (v == -1) {
            if (infer >= 0) return sk_error_set(c->err, SK_EINVAL, "target shape has more than one -1");
            infer = (int)i;
            dims[i] = 1;
            continue;
        } else if (v < -1) {
            return sk_error_set(c->err, SK_EINVAL, "shape[%zu] is %lld", i, (long long)v);
        }
        if (v == 0) has_zero = 1;
        dims[i] = v;
        if (sk_mul_i64(known, v, &known)) return sk_error_set(c->err, SK_EINVAL, "target shape overflows");
    }
    if (infer >= 0) {
        if (has_zero && allowzero) return sk_error_set(c->err, SK_EINVAL, "target shape has both -1 and 0 with allowzero");
        if (known == 0 || x->numel % known)
            return sk_error_set(c->err, SK_EINVAL, "cannot infer the -1 dim: %lld elements into blocks of %lld",
                                (long long)x->numel, (long long)known);
        dims[infer] = x->numel / known;
    }
    return reshaped_copy(c, x, (int)n, dims);
}

static sk_status run_reshape_1(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    int64_t shape[MAXR];
    size_t n;
    int present;
    if ((s = attr_ints(c, "shape", shape, MAXR, &n, &present))) return s;
    return reshape_to(c, input(c, 0), shape, n, 0);
}

static sk_status run_reshape_5(sk_op_ctx *c)
{
    sk_status s = need_io(c, 2);
    if (s) return s;
    int64_t shape[MAXR];
    size_t n;
    if ((s = read_ints(c, input(c, 1), "shape", shape, MAXR, &n))) return s;
    return reshape_to(c, input(c, 0), shape, n, (int)sk_node_attr_int(c->node, "allowzero", 0));
}

static sk_status run_flatten(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    int64_t axis = sk_node_attr_int(c->node, "axis", 1);
    if (axis < -(int64_t)x->rank || axis > x->rank)
        return sk_error_set(c->err, SK_EINVAL, "axis %lld is out of range for rank %d", (long long)axis, x->rank);
    if (axis < 0) axis += x->rank;
    int64_t dims[2] = { prod(x->dims, 0, (int)axis), prod(x->dims, (int)axis, x->rank) };
    return reshaped_copy(c, x, 2, dims);
}

/* Axes of Squeeze/Unsqueeze: attribute before opset 13, input from 13. */
static sk_status squeeze_axes(const sk_op_ctx *c, int64_t *axes, size_t *n, int *present)
{
    if (c->opset < 13) return attr_ints(c, "axes", axes, MAXR * 2, n, present);
    const sk_tensor *a = input(c, 1);
    *present = a != NULL;
    *n = 0;
    return a ? read_ints(c, a, "axes", axes, MAXR * 2, n) : SK_OK;
}

static sk_status run_squeeze(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    int64_t axes[MAXR * 2], dims[MAXR];
    size_t n;
    int present, drop[MAXR] = { 0 }, r = 0;
    if ((s = squeeze_axes(c, axes, &n, &present))) return s;
    for (size_t i = 0; i < n; i++) {
        int a;
        if ((s = norm_axis(c, axes[i], x->rank, &a))) return s;
        if (x->dims[a] != 1)
            return sk_error_set(c->err, SK_EINVAL, "cannot squeeze axis %d of size %lld", a, (long long)x->dims[a]);
        drop[a] = 1;
    }
    for (int d = 0; d < x->rank; d++) {
        if (n == 0 ? x->dims[d] == 1 : drop[d]) continue;
        dims[r++] = x->dims[d];
    }
    return reshaped_copy(c, x, r, dims);
}

static sk_status run_unsqueeze(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    int64_t axes[MAXR * 2], dims[MAXR];
    size_t n;
    int present, ins[MAXR] = { 0 };
    if ((s = squeeze_axes(c, axes, &n, &present))) return s;
    if (!present) return sk_error_set(c->err, SK_EINVAL, "axes are missing");
    const int64_t r = x->rank + (int64_t)n;
    if (r > MAXR) return sk_error_set(c->err, SK_EINVAL, "result rank %lld is over the limit of %d", (long long)r, MAXR);
    for (size_t i = 0; i < n; i++) {
        int a;
        if ((s = norm_axis(c, axes[i], (int)r, &a))) return s;
        if (ins[a]) return sk_error_set(c->err, SK_EINVAL, "axis %d is repeated", a);
        ins[a] = 1;
    }
    for (int d = 0, k = 0; d < r; d++) dims[d] = ins[d] ? 1 : x->dims[k++];
    return reshaped_copy(c, x, (int)r, dims);
}

/* ---- Transpose ------------------------------------------------------------- */

static sk_status run_transpose(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    size_t es;
    if ((s = need_bytes(c, x, &es))) return s;
    int64_t p[MAXR];
    size_t n;
    int present, perm[MAXR], seen[MAXR] = { 0 };
    if ((s = attr_ints(c, "perm", p, MAXR, &n, &present))) return s;
    if (!present) {
        n = (size_t)x->rank;
        for (int i = 0; i < x->rank; i++) p[i] = x->rank - 1 - i;
    }
    if (n != (size_t)x->rank)
        return sk_error_set(c->err, SK_EINVAL, "perm has %zu entries for rank %d", n, x->rank);
    int64_t dims[MAXR];
    for (size_t i = 0; i < n; i++) {
        int a;
        if ((s = norm_axis(c, p[i], x->rank, &a))) return s;
        if (seen[a]) return sk_error_set(c->err, SK_EINVAL, "perm repeats axis %d", a);
        seen[a] = 1;
        perm[i] = a;
        dims[i] = x->dims[a];
    }
    if ((s = sk_tensor_alloc_uninit(c->out[0], x->dtype, x->rank, dims, c->err))) return s; /* a permutation writes all */
    sk_transpose(c->out[0]->data, x->data, es, x->rank, x->dims, perm);
    return SK_OK;
}

/* ---- Concat, Split ------------------------------------------------------- */

static sk_status run_concat(sk_op_ctx *c)
{
    if (c->n_in < 1) return sk_error_set(c->err, SK_EINVAL, "needs at least one input");
    sk_status s = need_io(c, c->n_in);
    if (s) return s;
    const sk_tensor *x0 = input(c, 0);
    size_t es;
    if ((s = need_bytes(c, x0, &es))) return s;
    int axis;
    if (!sk_node_attr(c->node, "axis") && c->opset >= 4) return sk_error_set(c->err, SK_EINVAL, "attribute axis is missing");
    if ((s = norm_axis(c, sk_node_attr_int(c->node, "axis", 1), x0->rank, &axis))) return s;
    int64_t dims[MAXR];
    memcpy(dims, x0->dims, sizeof dims);
    dims[axis] = 0;
    for (size_t i = 0; i < c->n_in; i++) {
        const sk_tensor *t = input(c, i);
        char b1[160], b2[160];
        if (t->dtype != x0->dtype)
            return sk_error_set(c->err, SK_EINVAL, "input %zu is %s but input 0 is %s", i,
                                sk_dtype_name(t->dtype), sk_dtype_name(x0->dtype));
        int ok = t->rank == x0->rank;
        for (int d = 0; ok && d < t->rank; d++) ok = d == axis || t->dims[d] == x0->dims[d];
        if (!ok)
            return sk_error_set(c->err, SK_EINVAL, "input %zu has shape %s, which does not match %s outside axis %d", i,
                                sk_shape_str(t->rank, t->dims, b1, sizeof b1),
                                sk_shape_str(x0->rank, x0->dims, b2, sizeof b2), axis);
        if (__builtin_add_overflow(dims[axis], t->dims[axis], &dims[axis]))
            return sk_error_set(c->err, SK_EINVAL, "concatenated dim overflows");
    }
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, x0->dtype, x0->rank, dims, c->err))) return s;
    const int64_t outer = prod(dims, 0, axis), inner = prod(dims, axis + 1, x0->rank);
    unsigned char *o = y->data;
    for (int64_t k = 0; k < outer; k++) {
        for (size_t i = 0; i < c->n_in; i++) {
            const sk_tensor *t = input(c, i);
            size_t chunk = (size_t)(t->dims[axis] * inner) * es;
            memcpy(o, (const unsigned char *)t->data + (size_t)k * chunk, chunk);
            o += chunk;
        }
    }
    return SK_OK;
}

static sk_status run_split(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    size_t es, nsplit = 0;
    if ((s = need_bytes(c, x, &es))) return s;
    int axis, present = 0;
    if ((s = norm_axis(c, sk_node_attr_int(c->node, "axis", 0), x->rank, &axis))) return s;
    const size_t nout = c->n_out;
    const int64_t dim = x->dims[axis];
    int64_t *split = calloc(nout ? nout : 1, sizeof *split);
    if (!split) return sk_error_set(c->err, SK_ENOMEM, "out of memory");
    if (c->opset < 13) {
        s = attr_ints(c, "split", split, nout, &nsplit, &present);
        if (s == SK_EINVAL) s = sk_error_set(c->err, SK_EINVAL, "split has more entries than the %zu outputs", nout);
    } else if (input(c, 1)) {
        present = 1;
        s = read_ints(c, input(c, 1), "split", split, nout, &nsplit);
        if (s == SK_EINVAL && input(c, 1)->numel > (int64_t)nout)
            s = sk_error_set(c->err, SK_EINVAL, "split has %lld entries for %zu outputs", (long long)input(c, 1)->numel, nout);
    }
    if (s) goto done;
    if (present) {
        int64_t sum = 0;
        if (nsplit != nout) {
            s = sk_error_set(c->err, SK_EINVAL, "split has %zu entries for %zu outputs", nsplit, nout);
            goto done;
        }
        for (size_t i = 0; i < nout; i++) {
            if (split[i] < 0 || __builtin_add_overflow(sum, split[i], &sum)) {
                s = sk_error_set(c->err, SK_EINVAL, "split[%zu] is %lld", i, (long long)split[i]);
                goto done;
            }
        }
        if (sum != dim) {
            s = sk_error_set(c->err, SK_EINVAL, "split sizes add up to %lld, not the axis size %lld",
                             (long long)sum, (long long)dim);
            goto done;
        }
    } else {
        const Onnx__AttributeProto *no = sk_node_attr(c->node, "num_outputs");
        if (no && sk_node_attr_int(c->node, "num_outputs", 0) != (int64_t)nout) {
            s = sk_error_set(c->err, SK_EINVAL, "num_outputs is %lld but the node has %zu outputs",
                             (long long)sk_node_attr_int(c->node, "num_outputs", 0), nout);
            goto done;
        }
        if (nout == 0) {
            s = sk_error_set(c->err, SK_EINVAL, "node has no outputs");
            goto done;
        }
        int64_t each = dim / (int64_t)nout;
        if (dim % (int64_t)nout) {
            if (!no) {
                s = sk_error_set(c->err, SK_EINVAL, "axis size %lld does not split evenly into %zu outputs",
                                 (long long)dim, nout);
                goto done;
            }
            each++; /* opset 18: equal chunks, the last one smaller */
        }
        int64_t left = dim;
        for (size_t i = 0; i < nout; i++) {
            split[i] = each < left ? each : left;
            left -= split[i];
        }
    }
    const int64_t outer = prod(x->dims, 0, axis), inner = prod(x->dims, axis + 1, x->rank);
    int64_t start = 0;
    for (size_t i = 0; i < nout; i++) {
        sk_tensor *y = c->out[i];
        if (y) {
            int64_t dims[MAXR];
            memcpy(dims, x->dims, sizeof dims);
            dims[axis] = split[i];
            if ((s = sk_tensor_alloc(y, x->dtype, x->rank, dims, c->err))) goto done;
            const size_t chunk = (size_t)(split[i] * inner) * es;
            for (int64_t k = 0; k < outer; k++)
                memcpy((unsigned char *)y->data + (size_t)k * chunk,
                       (const unsigned char *)x->data + (size_t)((k * dim + start) * inner) * es, chunk);
        }
        start += split[i];
    }
done:
    free(split);
    return s;
}

/* ---- Slice ----------------------------------------------------------------- */

/* Clamps start/end of one axis of size dim and counts the elements taken. */
static int64_t slice_axis(int64_t dim, int64_t step, int64_t *start, int64_t *end)
{
    int64_t b = *start, e = *end;
    if (b < 0) b = b < -dim ? -1 : b + dim; /* b >= -dim-1 now, no overflow */
    if (e < 0) e = e < -dim ? -1 : e + dim;
    if (step > 0) {
        b = b < 0 ? 0 : b > dim ? dim : b;
        e = e < 0 ? 0 : e > dim ? dim : e;
    } else {
        b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
        e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
    }
    *start = b;
    *end = e;
    int64_t diff = step > 0 ? e - b : b - e;
    if (diff <= 0) return 0;
    uint64_t as = step > 0 ? (uint64_t)step : 0 - (uint64_t)step;
    return (int64_t)(((uint64_t)diff + as - 1) / as);
}

static sk_status run_slice(sk_op_ctx *c)
{
    sk_status s = need_io(c, c->opset < 10 ? 1 : 3);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    size_t es;
    if ((s = need_bytes(c, x, &es))) return s;
    int64_t starts[MAXR], ends[MAXR], axes[MAXR], steps[MAXR];
    size_t ns = 0, ne = 0, na = 0, nst = 0;
    int pa = 0, pdummy;
    if (c->opset < 10) {
        if ((s = attr_ints(c, "starts", starts, MAXR, &ns, &pdummy))) return s;
        if ((s = attr_ints(c, "ends", ends, MAXR, &ne, &pdummy))) return s;
        if ((s = attr_ints(c, "axes", axes, MAXR, &na, &pa))) return s;
    } else {
        if ((s = read_ints(c, input(c, 1), "starts", starts, MAXR, &ns))) return s;
        if ((s = read_ints(c, input(c, 2), "ends", ends, MAXR, &ne))) return s;
        if (input(c, 3)) {
            pa = 1;
            if ((s = read_ints(c, input(c, 3), "axes", axes, MAXR, &na))) return s;
        }
        if (input(c, 4) && (s = read_ints(c, input(c, 4), "steps", steps, MAXR, &nst))) return s;
    }
    if (ne != ns) return sk_error_set(c->err, SK_EINVAL, "starts has %zu values but ends has %zu", ns, ne);
    if (pa && na != ns) return sk_error_set(c->err, SK_EINVAL, "axes has %zu values but starts has %zu", na, ns);
    if (input(c, 4) && nst != ns) return sk_error_set(c->err, SK_EINVAL, "steps has %zu values but starts has %zu", nst, ns);
    int64_t b[MAXR], st[MAXR], od[MAXR];
    int done[MAXR] = { 0 };
    for (int d = 0; d < x->rank; d++) {
        b[d] = 0;
        st[d] = 1;
        od[d] = x->dims[d];
    }
    for (size_t i = 0; i < ns; i++) {
        int a;
        if (pa) {
            if ((s = norm_axis(c, axes[i], x->rank, &a))) return s;
        } else {
            if ((int64_t)i >= x->rank) return sk_error_set(c->err, SK_EINVAL, "more starts than input dims");
            a = (int)i;
        }
        if (done[a]) return sk_error_set(c->err, SK_EINVAL, "axis %d is sliced twice", a);
        done[a] = 1;
        int64_t step = nst ? steps[i] : 1;
        if (step == 0) return sk_error_set(c->err, SK_EINVAL, "step of axis %d is 0", a);
        int64_t sb = starts[i], se = ends[i];
        od[a] = slice_axis(x->dims[a], step, &sb, &se);
        b[a] = sb;
        st[a] = step;
    }
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, x->dtype, x->rank, od, c->err))) return s;
    if (y->numel == 0) return SK_OK;
    /* offset of the first element and per-axis strides in the input */
    int64_t xs[MAXR], is[MAXR] = { 0 }, off = 0;
    strides_of(x->rank, x->dims, xs);
    for (int d = 0; d < x->rank; d++) {
        off += b[d] * xs[d];
        is[d] = od[d] > 1 ? st[d] * xs[d] : 0; /* od > 1 means |step| < dim: no overflow */
    }
    if (x->rank == 0) {
        memcpy(y->data, x->data, es);
        return SK_OK;
    }
    /* The broadcast copier walks any strides, negative ones included. */
    const unsigned char *base = (const unsigned char *)x->data + (size_t)off * es;
    bcast_copy(y->data, base, es, x->rank, od, is);
    return SK_OK;
}

/* ---- Gather family ------------------------------------------------------- */

static sk_status bad_index(const sk_op_ctx *c, int64_t v, int64_t dim, int axis)
{
    return sk_error_set(c->err, SK_EINVAL, "index %lld is out of range for axis %d of size %lld",
                        (long long)v, axis, (long long)dim);
}

static sk_status run_gather(sk_op_ctx *c)
{
    sk_status s = need_io(c, 2);
    if (s) return s;
    const sk_tensor *x = input(c, 0), *ind = input(c, 1);
    size_t es;
    if ((s = need_bytes(c, x, &es))) return s;
    if (!is_index_type(ind->dtype))
        return sk_error_set(c->err, SK_EINVAL, "indices must be int32 or int64, not %s", sk_dtype_name(ind->dtype));
    int axis;
    if ((s = norm_axis(c, sk_node_attr_int(c->node, "axis", 0), x->rank, &axis))) return s;
    const int r = x->rank - 1 + ind->rank;
    if (r > MAXR) return sk_error_set(c->err, SK_EINVAL, "result rank %d is over the limit of %d", r, MAXR);
    int64_t dims[MAXR];
    int k = 0;
    for (int d = 0; d < axis; d++) dims[k++] = x->dims[d];
    for (int d = 0; d < ind->rank; d++) dims[k++] = ind->dims[d];
    for (int d = axis + 1; d < x->rank; d++) dims[k++] = x->dims[d];
    const int64_t dim = x->dims[axis], n = ind->numel;
    for (int64_t j = 0; j < n; j++) {
        int64_t v = index_at(ind, j);
        if (v < -dim || v >= dim) return bad_index(c, v, dim, axis);
    }
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, x->dtype, r, dims, c->err))) return s;
    const int64_t outer = prod(x->dims, 0, axis);
    const size_t row = (size_t)prod(x->dims, axis + 1, x->rank) * es;
    unsigned char *o = y->data;
    const unsigned char *in = x->data;
    for (int64_t i = 0; i < outer; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t v = index_at(ind, j);
            if (v < 0) v += dim;
            memcpy(o, in + (size_t)(i * dim + v) * row, row);
            o += row;
        }
    return SK_OK;
}

static sk_status run_gather_elements(sk_op_ctx *c)
{
    sk_status s = need_io(c, 2);
    if (s) return s;
    const sk_tensor *x = input(c, 0), *ind = input(c, 1);
    size_t es;
    if ((s = need_bytes(c, x, &es))) return s;
    if (!is_index_type(ind->dtype))
        return sk_error_set(c->err, SK_EINVAL, "indices must be int32 or int64, not %s", sk_dtype_name(ind->dtype));
    if (ind->rank != x->rank || x->rank == 0)
        return sk_error_set(c->err, SK_EINVAL, "indices have rank %d but data has rank %d", ind->rank, x->rank);
    int axis;
    if ((s = norm_axis(c, sk_node_attr_int(c->node, "axis", 0), x->rank, &axis))) return s;
    for (int d = 0; d < x->rank; d++)
        if (d != axis && ind->dims[d] > x->dims[d])
            return sk_error_set(c->err, SK_EINVAL, "indices dim %d (%lld) is larger than the data's (%lld)", d,
                                (long long)ind->dims[d], (long long)x->dims[d]);
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, x->dtype, ind->rank, ind->dims, c->err))) return s;
    int64_t xs[MAXR], idx[MAXR] = { 0 }, off = 0;
    strides_of(x->rank, x->dims, xs);
    const int64_t dim = x->dims[axis];
    for (int64_t i = 0; i < ind->numel; i++) {
        int64_t v = index_at(ind, i);
        if (v < -dim || v >= dim) return bad_index(c, v, dim, axis);
        if (v < 0) v += dim;
        memcpy((unsigned char *)y->data + (size_t)i * es,
               (const unsigned char *)x->data + (size_t)(off + v * xs[axis]) * es, es);
        for (int d = ind->rank - 1; d >= 0; d--) {
            if (d != axis) off += xs[d];
            if (++idx[d] < ind->dims[d]) break;
            if (d != axis) off -= xs[d] * ind->dims[d];
            idx[d] = 0;
        }
    }
    return SK_OK;
}

/* Shared by GatherND and ScatterND: where the index tuple t (k values, for
 * batch b) points, as an element offset into data; SK_EINVAL when out of range. */
static sk_status nd_offset(const sk_op_ctx *c, const sk_tensor *data, const sk_tensor *ind, int64_t t, int64_t k,
                           int bd, const int64_t *xs, int64_t *off)
{
    int64_t o = 0;
    for (int64_t j = 0; j < k; j++) {
        const int ax = bd + (int)j;
        const int64_t dim = data->dims[ax];
        int64_t v = index_at(ind, t * k + j);
        if (v < -dim || v >= dim) return bad_index(c, v, dim, ax);
        o += (v < 0 ? v + dim : v) * xs[ax];
    }
    *off = o;
    return SK_OK;
}

static sk_status run_gather_nd(sk_op_ctx *c)
{
    sk_status s = need_io(c, 2);
    if (s) return s;
    const sk_tensor *x = input(c, 0), *ind = input(c, 1);
    size_t es;
    if ((s = need_bytes(c, x, &es))) return s;
    if (!is_index_type(ind->dtype))
        return sk_error_set(c->err, SK_EINVAL, "indices must be int32 or int64, not %s", sk_dtype_name(ind->dtype));
    const int64_t bd = sk_node_attr_int(c->node, "batch_dims", 0);
    if (ind->rank < 1 || x->rank < 1) return sk_error_set(c->err, SK_EINVAL, "data and indices need rank >= 1");
    if (bd < 0 || bd >= ind->rank || bd >= x->rank)
        return sk_error_set(c->err, SK_EINVAL, "batch_dims %lld is out of range", (long long)bd);
    const int64_t k = ind->dims[ind->rank - 1];
    if (k < 1 || k > x->rank - bd)
        return sk_error_set(c->err, SK_EINVAL, "index tuples of %lld values for data of rank %d (batch_dims %lld)",
                            (long long)k, x->rank, (long long)bd);
    for (int d = 0; d < bd; d++)
        if (ind->dims[d] != x->dims[d])
            return sk_error_set(c->err, SK_EINVAL, "batch dim %d differs between data and indices", d);
    int64_t dims[MAXR];
    int r = 0;
    for (int d = 0; d < ind->rank - 1; d++) dims[r++] = ind->dims[d];
    if (r + x->rank - bd - k > MAXR) return sk_error_set(c->err, SK_EINVAL, "result rank is over the limit");
    for (int d = (int)(bd + k); d < x->rank; d++) dims[r++] = x->dims[d];
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, x->dtype, r, dims, c->err))) return s;
    int64_t xs[MAXR];
    strides_of(x->rank, x->dims, xs);
    const int64_t nb = prod(x->dims, 0, (int)bd), ntup = ind->numel / (k ? k : 1);
    const int64_t per_batch = nb ? ntup / nb : 0, batch_stride = nb ? x->numel / nb : 0;
    const size_t slice = (size_t)prod(x->dims, (int)(bd + k), x->rank) * es;
    for (int64_t t = 0; t < ntup; t++) {
        int64_t off;
        if ((s = nd_offset(c, x, ind, t, k, (int)bd, xs, &off))) return s;
        off += (t / per_batch) * batch_stride;
        memcpy((unsigned char *)y->data + (size_t)t * slice, (const unsigned char *)x->data + (size_t)off * es, slice);
    }
    return SK_OK;
}

/* ---- Scatter family -------------------------------------------------------- */

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static sk_status parse_reduction(const sk_op_ctx *c, int *red)
{
    size_t len = 0;
    const char *r = sk_node_attr_string(c->node, "reduction", "none", &len);
    static const char *const names[] = { "none", "add", "mul", "max", "min" };
    for (int i = 0; i < 5; i++)
        if (strlen(names[i]) == len && !memcmp(r, names[i], len)) {
            *red = i;
            return SK_OK;
        }
    return sk_error_set(c->err, SK_EINVAL, "reduction '%.*s' is not none, add, mul, max or min", (int)len, r);
}

#define COMBINE_INT(T)                                                             \
    do {                                                                           \
        T *d_ = dst;                                                               \
        const T *s_ = src;                                                         \
        for (int64_t i = 0; i < n; i++) {                                          \
            T a = d_[i], b = s_[i];                                                \
            d_[i] = red == RED_ADD ? (T)((uint64_t)a + (uint64_t)b)                \
                  : red == RED_MUL ? (T)((uint64_t)a * (uint64_t)b)                \
                  : red == RED_MAX ? (a > b ? a : b) : (a < b ? a : b);            \
        }                                                                          \
    } while (0);                                                                   \
    return SK_OK
#define COMBINE_FLT(T, LD, STO)                                                    \
    do {                                                                           \
        T *d_ = dst;                                                               \
        const T *s_ = src;                                                         \
        for (int64_t i = 0; i < n; i++) {                                          \
            double a = LD(d_[i]), b = LD(s_[i]);                                   \
            double v = red == RED_ADD ? a + b : red == RED_MUL ? a * b             \
                     : red == RED_MAX ? (a > b || a != a ? a : b) : (a < b || a != a ? a : b); \
            d_[i] = STO(v);                                                        \
        }                                                                          \
    } while (0);                                                                   \
    return SK_OK
#define ID(v) (v)
#define TO_F(v) ((float)(v))
#define H2F(v) sk_half_to_float(v)
#define F2H(v) sk_float_to_half((float)(v))
#define B2F(v) sk_bf16_to_float(v)
#define F2B(v) sk_float_to_bf16((float)(v))

/* dst[i] = dst[i] (red) src[i] for n elements of dtype. */
static sk_status combine(const sk_op_ctx *c, int dtype, void *dst, const void *src, int64_t n, int red)
{
    switch (dtype) {
    case SK_FLOAT: COMBINE_FLT(float, ID, TO_F);
    case SK_DOUBLE: COMBINE_FLT(double, ID, ID);
    case SK_FLOAT16: COMBINE_FLT(uint16_t, H2F, F2H);
    case SK_BFLOAT16: COMBINE_FLT(uint16_t, B2F, F2B);
    case SK_INT8: COMBINE_INT(int8_t);
    case SK_UINT8: COMBINE_INT(uint8_t);
    case SK_INT16: COMBINE_INT(int16_t);
    case SK_UINT16: COMBINE_INT(uint16_t);
    case SK_INT32: COMBINE_INT(int32_t);
    case SK_UINT32: COMBINE_INT(uint32_t);
    case SK_INT64: COMBINE_INT(int64_t);
    case SK_UINT64: COMBINE_INT(uint64_t);
    case SK_BOOL: {
        uint8_t *d = dst;
        const uint8_t *s = src;
        for (int64_t i = 0; i < n; i++)
            d[i] = (red == RED_ADD || red == RED_MAX) ? (d[i] || s[i]) : (d[i] && s[i]);
        return SK_OK;
    }
    }
    return sk_error_set(c->err, SK_EUNSUPPORTED, "reduction on %s tensors is not supported", sk_dtype_name(dtype));
}

static sk_status run_scatter_nd(sk_op_ctx *c)
{
    sk_status s = need_io(c, 3);
    if (s) return s;
    const sk_tensor *x = input(c, 0), *ind = input(c, 1), *upd = input(c, 2);
    size_t es;
    int red = RED_NONE;
    if ((s = need_bytes(c, x, &es))) return s;
    if (c->opset >= 16 && (s = parse_reduction(c, &red))) return s;
    if (!is_index_type(ind->dtype))
        return sk_error_set(c->err, SK_EINVAL, "indices must be int32 or int64, not %s", sk_dtype_name(ind->dtype));
    if (upd->dtype != x->dtype) return sk_error_set(c->err, SK_EINVAL, "updates and data differ in type");
    if (ind->rank < 1 || x->rank < 1) return sk_error_set(c->err, SK_EINVAL, "data and indices need rank >= 1");
    const int64_t k = ind->dims[ind->rank - 1];
    if (k < 1 || k > x->rank) return sk_error_set(c->err, SK_EINVAL, "index tuples of %lld values for data of rank %d",
                                                  (long long)k, x->rank);
    /* updates shape = indices.shape[:-1] + data.shape[k:] */
    int ok = upd->rank == ind->rank - 1 + x->rank - k;
    for (int d = 0; ok && d < ind->rank - 1; d++) ok = upd->dims[d] == ind->dims[d];
    for (int d = 0; ok && d < x->rank - k; d++) ok = upd->dims[ind->rank - 1 + d] == x->dims[k + d];
    if (!ok) return sk_error_set(c->err, SK_EINVAL, "updates have the wrong shape for these indices and data");
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_copy(y, x, c->err))) return s;
    int64_t xs[MAXR];
    strides_of(x->rank, x->dims, xs);
    const int64_t slice = prod(x->dims, (int)k, x->rank), ntup = ind->numel / k;
    for (int64_t t = 0; t < ntup; t++) {
        int64_t off;
        if ((s = nd_offset(c, x, ind, t, k, 0, xs, &off))) return s;
        unsigned char *d = (unsigned char *)y->data + (size_t)off * es;
        const unsigned char *u = (const unsigned char *)upd->data + (size_t)(t * slice) * es;
        if (red == RED_NONE) memcpy(d, u, (size_t)slice * es);
        else if ((s = combine(c, x->dtype, d, u, slice, red))) return s;
    }
    return SK_OK;
}

static sk_status run_scatter_elements(sk_op_ctx *c)
{
    sk_status s = need_io(c, 3);
    if (s) return s;
    const sk_tensor *x = input(c, 0), *ind = input(c, 1), *upd = input(c, 2);
    size_t es;
    int red = RED_NONE, axis;
    if ((s = need_bytes(c, x, &es))) return s;
    if (c->opset >= 16 && (s = parse_reduction(c, &red))) return s;
    if (!is_index_type(ind->dtype))
        return sk_error_set(c->err, SK_EINVAL, "indices must be int32 or int64, not %s", sk_dtype_name(ind->dtype));
    if (upd->dtype != x->dtype) return sk_error_set(c->err, SK_EINVAL, "updates and data differ in type");
    if (ind->rank != x->rank || upd->rank != x->rank || x->rank == 0)
        return sk_error_set(c->err, SK_EINVAL, "data, indices and updates must have the same rank");
    for (int d = 0; d < x->rank; d++) {
        if (ind->dims[d] != upd->dims[d]) return sk_error_set(c->err, SK_EINVAL, "indices and updates differ in shape");
        if (ind->dims[d] > x->dims[d])
            return sk_error_set(c->err, SK_EINVAL, "indices dim %d (%lld) is larger than the data's", d, (long long)ind->dims[d]);
    }
    if ((s = norm_axis(c, sk_node_attr_int(c->node, "axis", 0), x->rank, &axis))) return s;
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_copy(y, x, c->err))) return s;
    int64_t xs[MAXR], idx[MAXR] = { 0 }, off = 0;
    strides_of(x->rank, x->dims, xs);
    const int64_t dim = x->dims[axis];
    for (int64_t i = 0; i < ind->numel; i++) {
        int64_t v = index_at(ind, i);
        if (v < -dim || v >= dim) return bad_index(c, v, dim, axis);
        if (v < 0) v += dim;
        unsigned char *d = (unsigned char *)y->data + (size_t)(off + v * xs[axis]) * es;
        const unsigned char *u = (const unsigned char *)upd->data + (size_t)i * es;
        if (red == RED_NONE) memcpy(d, u, es);
        else if ((s = combine(c, x->dtype, d, u, 1, red))) return s;
        for (int dd = ind->rank - 1; dd >= 0; dd--) {
            if (dd != axis) off += xs[dd];
            if (++idx[dd] < ind->dims[dd]) break;
            if (dd != axis) off -= xs[dd] * ind->dims[dd];
            idx[dd] = 0;
        }
    }
    return SK_OK;
}

/* ---- Expand, Tile ---------------------------------------------------------- */

static sk_status run_expand(sk_op_ctx *c)
{
    sk_status s = need_io(c, 2);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    size_t es, n;
    if ((s = need_bytes(c, x, &es))) return s;
    int64_t shape[MAXR], dims[MAXR], ist[MAXR], xs[MAXR];
    int r;
    if ((s = read_ints(c, input(c, 1), "shape", shape, MAXR, &n))) return s;
    for (size_t i = 0; i < n; i++)
        if (shape[i] < 0) return sk_error_set(c->err, SK_EINVAL, "shape[%zu] is %lld", i, (long long)shape[i]);
    if ((s = sk_shape_broadcast(x->rank, x->dims, (int)n, shape, &r, dims, c->err))) return s;
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, x->dtype, r, dims, c->err))) return s;
    strides_of(x->rank, x->dims, xs);
    for (int d = 0; d < r; d++) {
        int dx = d - (r - x->rank);
        ist[d] = dx < 0 || x->dims[dx] == 1 ? 0 : xs[dx];
    }
    bcast_copy(y->data, x->data, es, r, dims, ist);
    return SK_OK;
}

static sk_status run_tile(sk_op_ctx *c)
{
    sk_status s = need_io(c, 2);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    size_t es, n;
    if ((s = need_bytes(c, x, &es))) return s;
    int64_t rep[MAXR], dims[MAXR], xs[MAXR], vd[2 * MAXR], vs[2 * MAXR];
    if ((s = read_ints(c, input(c, 1), "repeats", rep, MAXR, &n))) return s;
    if (n != (size_t)x->rank)
        return sk_error_set(c->err, SK_EINVAL, "repeats has %zu values for rank %d", n, x->rank);
    strides_of(x->rank, x->dims, xs);
    for (int d = 0; d < x->rank; d++) {
        if (rep[d] < 0) return sk_error_set(c->err, SK_EINVAL, "repeats[%d] is %lld", d, (long long)rep[d]);
        if (sk_mul_i64(x->dims[d], rep[d], &dims[d])) return sk_error_set(c->err, SK_EINVAL, "tiled shape overflows");
        vd[2 * d] = rep[d];
        vs[2 * d] = 0;
        vd[2 * d + 1] = x->dims[d];
        vs[2 * d + 1] = xs[d];
    }
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, x->dtype, x->rank, dims, c->err))) return s;
    bcast_copy(y->data, x->data, es, 2 * x->rank, vd, vs);
    return SK_OK;
}

/* ---- Pad ------------------------------------------------------------------- */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

/* Source index along an axis of size dim for output position o (already
 * shifted by the leading pad), or -1 for the constant value. */
static int64_t pad_src(int64_t i, int64_t dim, int mode)
{
    if (i >= 0 && i < dim) return i;
    if (dim == 0) return -1;
    switch (mode) {
    case PAD_EDGE: return i < 0 ? 0 : dim - 1;
    case PAD_WRAP: { int64_t m = i % dim; return m < 0 ? m + dim : m; }
    case PAD_REFLECT: {
        if (dim == 1) return 0;
        int64_t p = 2 * (dim - 1), m = i % p;
        if (m < 0) m += p;
        return m < dim ? m : p - m;
    }
    default: return -1;
    }
}

static sk_status run_pad(sk_op_ctx *c)
{
    sk_status s = need_io(c, c->opset < 11 ? 1 : 2);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    size_t es, np = 0, na = 0;
    if ((s = need_bytes(c, x, &es))) return s;
    const int r = x->rank;
    int64_t pads[2 * MAXR], axes_in[MAXR], pb[MAXR] = { 0 }, pe[MAXR] = { 0 }, dims[MAXR];
    int mode, present;
    size_t len = 0;
    const char *m = sk_node_attr_string(c->node, "mode", "constant", &len);
    if (len == 8 && !memcmp(m, "constant", 8)) mode = PAD_CONSTANT;
    else if (len == 7 && !memcmp(m, "reflect", 7)) mode = PAD_REFLECT;
    else if (len == 4 && !memcmp(m, "edge", 4)) mode = PAD_EDGE;
    else if (len == 4 && !memcmp(m, "wrap", 4)) mode = PAD_WRAP;
    else return sk_error_set(c->err, SK_EINVAL, "mode '%.*s' is not constant, reflect, edge or wrap", (int)len, m);

    unsigned char value[16] = { 0 };
    if (c->opset < 11) {
        if ((s = attr_ints(c, "pads", pads, 2 * MAXR, &np, &present))) return s;
        put_f64(x->dtype, value, 0, sk_node_attr_float(c->node, "value", 0.0f));
    } else {
        if ((s = read_ints(c, input(c, 1), "pads", pads, 2 * MAXR, &np))) return s;
        const sk_tensor *cv = input(c, 2);
        if (cv && cv->numel > 0) {
            if (cv->dtype != x->dtype) return sk_error_set(c->err, SK_EINVAL, "constant_value and data differ in type");
            memcpy(value, cv->data, es);
        }
        if (input(c, 3) && (s = read_ints(c, input(c, 3), "axes", axes_in, MAXR, &na))) return s;
    }
    const size_t naxes = input(c, 3) ? na : (size_t)r;
    if (np != 2 * naxes)
        return sk_error_set(c->err, SK_EINVAL, "pads has %zu values for %zu axes", np, naxes);
    for (size_t i = 0; i < naxes; i++) {
        int a = (int)i;
        if (input(c, 3) && (s = norm_axis(c, axes_in[i], r, &a))) return s;
        pb[a] = pads[i];
        pe[a] = pads[i + naxes];
    }
    for (int d = 0; d < r; d++) {
        int64_t v;
        if (pb[d] < -SK_MAX_DIM || pb[d] > SK_MAX_DIM || pe[d] < -SK_MAX_DIM || pe[d] > SK_MAX_DIM ||
            (v = x->dims[d] + pb[d] + pe[d]) < 0)
            return sk_error_set(c->err, SK_EINVAL, "pads %lld, %lld do not fit axis %d of size %lld",
                                (long long)pb[d], (long long)pe[d], d, (long long)x->dims[d]);
        if (mode != PAD_CONSTANT && x->dims[d] == 0 && v > 0)
            return sk_error_set(c->err, SK_EINVAL, "cannot pad the empty axis %d in this mode", d);
        dims[d] = v;
    }
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, x->dtype, r, dims, c->err))) return s;
    if (y->numel == 0) return SK_OK;
    if (r == 0) {
        memcpy(y->data, x->data, es);
        return SK_OK;
    }
    /* per-axis maps from output position to source position (-1: the value) */
    size_t total = 0;
    for (int d = 0; d < r; d++) total += (size_t)dims[d];
    int64_t *map = malloc(total * sizeof *map), *mp[MAXR];
    if (!map) return sk_error_set(c->err, SK_ENOMEM, "out of memory");
    int64_t *p = map, xs[MAXR];
    strides_of(r, x->dims, xs);
    for (int d = 0; d < r; d++) {
        mp[d] = p;
        for (int64_t o = 0; o < dims[d]; o++) {
            int64_t src = pad_src(o - pb[d], x->dims[d], mode);
            p[o] = src < 0 ? -1 : src * xs[d];
        }
        p += dims[d];
    }
    int64_t idx[MAXR] = { 0 };
    const int64_t n = dims[r - 1], rows = y->numel / n;
    unsigned char *o = y->data;
    const unsigned char *in = x->data;
    for (int64_t row = 0; row < rows; row++) {
        int64_t base = 0, outside = 0;
        for (int d = 0; d < r - 1; d++) {
            if (mp[d][idx[d]] < 0) outside = 1;
            else base += mp[d][idx[d]];
        }
        if (outside) {
            fill_elem(o, value, es, n);
        } else {
            for (int64_t i = 0; i < n; i++) {
                int64_t sp = mp[r - 1][i];
                memcpy(o + (size_t)i * es, sp < 0 ? value : in + (size_t)(base + sp) * es, es);
            }
        }
        o += (size_t)n * es;
        for (int d = r - 2; d >= 0; d--) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
        }
    }
    free(map);
    return SK_OK;
}

/* ---- Shape, Size, Range, ConstantOfShape ----------------------------------- */

static sk_status run_shape(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    const int64_t r = x->rank;
    int64_t b = sk_node_attr_int(c->node, "start", 0), e = sk_node_attr_int(c->node, "end", r);
    if (b < 0) b += r;
    if (e < 0) e += r;
    b = b < 0 ? 0 : b > r ? r : b;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t n = e > b ? e - b : 0;
    if ((s = sk_tensor_alloc(c->out[0], SK_INT64, 1, &n, c->err))) return s;
    memcpy(c->out[0]->data, x->dims + b, (size_t)n * sizeof(int64_t));
    return SK_OK;
}

static sk_status run_size(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    if ((s = sk_tensor_alloc(c->out[0], SK_INT64, 0, NULL, c->err))) return s;
    *(int64_t *)c->out[0]->data = input(c, 0)->numel;
    return SK_OK;
}

static sk_status run_range(sk_op_ctx *c)
{
    sk_status s = need_io(c, 3);
    if (s) return s;
    const sk_tensor *t0 = input(c, 0), *t1 = input(c, 1), *t2 = input(c, 2);
    const int dt = t0->dtype;
    if (t1->dtype != dt || t2->dtype != dt) return sk_error_set(c->err, SK_EINVAL, "start, limit and delta differ in type");
    if (t0->numel != 1 || t1->numel != 1 || t2->numel != 1)
        return sk_error_set(c->err, SK_EINVAL, "start, limit and delta must be scalars");
    int64_t n;
    sk_tensor *y = c->out[0];
    switch (dt) {
    case SK_FLOAT: case SK_DOUBLE: case SK_FLOAT16: case SK_BFLOAT16: {
        double b = sk_tensor_get_f64(t0, 0), e = sk_tensor_get_f64(t1, 0), d = sk_tensor_get_f64(t2, 0);
        if (d == 0) return sk_error_set(c->err, SK_EINVAL, "delta is 0");
        double cnt = ceil((e - b) / d);
        if (!(cnt == cnt) || cnt > (double)SK_MAX_DIM) return sk_error_set(c->err, SK_EINVAL, "range has too many elements");
        n = cnt > 0 ? (int64_t)cnt : 0;
        if ((s = sk_tensor_alloc(y, dt, 1, &n, c->err))) return s;
        for (int64_t i = 0; i < n; i++) put_f64(dt, y->data, i, b + (double)i * d);
        return SK_OK;
    }
    case SK_INT16: case SK_INT32: case SK_INT64: {
        int64_t b = sk_tensor_get_i64(t0, 0), e = sk_tensor_get_i64(t1, 0), d = sk_tensor_get_i64(t2, 0);
        if (d == 0) return sk_error_set(c->err, SK_EINVAL, "delta is 0");
        if (e == b || (e > b) != (d > 0)) {
            n = 0;
        } else { /* distances in uint64: exact for any two int64s */
            uint64_t adiff = e > b ? (uint64_t)e - (uint64_t)b : (uint64_t)b - (uint64_t)e;
            uint64_t ad = d > 0 ? (uint64_t)d : 0 - (uint64_t)d;
            uint64_t cnt = adiff / ad + (adiff % ad != 0);
            if (cnt > (uint64_t)SK_MAX_DIM) return sk_error_set(c->err, SK_EINVAL, "range has too many elements");
            n = (int64_t)cnt;
        }
        if ((s = sk_tensor_alloc(y, dt, 1, &n, c->err))) return s;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = (int64_t)((uint64_t)b + (uint64_t)i * (uint64_t)d);
            if (dt == SK_INT64) ((int64_t *)y->data)[i] = v;
            else if (dt == SK_INT32) ((int32_t *)y->data)[i] = (int32_t)v;
            else ((int16_t *)y->data)[i] = (int16_t)v;
        }
        return SK_OK;
    }
    default:
        return sk_error_set(c->err, SK_EUNSUPPORTED, "Range of %s is not supported", sk_dtype_name(dt));
    }
}

/* The single element of a TensorProto attribute, as raw bytes (es bytes). */
static sk_status attr_scalar(const sk_op_ctx *c, const Onnx__TensorProto *t, int *dtype, unsigned char *out)
{
    const int dt = t->has_data_type ? t->data_type : SK_FLOAT;
    const size_t es = esize(dt);
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++)
        if (t->dims[i] < 0 || sk_mul_i64(n, t->dims[i], &n)) return sk_error_set(c->err, SK_EINVAL, "value has a bad shape");
    if (es == 0 || es > 8 || dt == SK_STRING)
        return sk_error_set(c->err, SK_EUNSUPPORTED, "value of type %s is not supported", sk_dtype_name(dt));
    if (n != 1) return sk_error_set(c->err, SK_EINVAL, "value must hold one element, not %lld", (long long)n);
    if (t->has_raw_data && t->raw_data.len > 0) {
        if (t->raw_data.len != es) return sk_error_set(c->err, SK_EINVAL, "value has %zu bytes of data, not %zu", t->raw_data.len, es);
        memcpy(out, t->raw_data.data, es);
    } else if (t->n_float_data == 1 && dt == SK_FLOAT) {
        memcpy(out, t->float_data, 4);
    } else if (t->n_double_data == 1 && dt == SK_DOUBLE) {
        memcpy(out, t->double_data, 8);
    } else if (t->n_int64_data == 1 && dt == SK_INT64) {
        memcpy(out, t->int64_data, 8);
    } else if (t->n_uint64_data == 1 && (dt == SK_UINT64 || dt == SK_UINT32)) {
        uint64_t v = t->uint64_data[0];
        if (dt == SK_UINT32) { uint32_t w = (uint32_t)v; memcpy(out, &w, 4); }
        else memcpy(out, &v, 8);
    } else if (t->n_int32_data == 1 && sk_dtype_table[dt].field == SK_FIELD_INT32) {
        int32_t v = t->int32_data[0];
        switch (es) {
        case 1: { uint8_t w = (uint8_t)v; memcpy(out, &w, 1); break; }
        case 2: { uint16_t w = (uint16_t)v; memcpy(out, &w, 2); break; }
        default: memcpy(out, &v, 4); break;
        }
    } else {
        return sk_error_set(c->err, SK_EINVAL, "value holds no data");
    }
    *dtype = dt;
    return SK_OK;
}

static sk_status run_constant_of_shape(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    int64_t dims[MAXR];
    size_t n;
    if ((s = read_ints(c, input(c, 0), "shape", dims, MAXR, &n))) return s;
    for (size_t i = 0; i < n; i++)
        if (dims[i] < 0) return sk_error_set(c->err, SK_EINVAL, "shape[%zu] is %lld", i, (long long)dims[i]);
    unsigned char v[8] = { 0 };
    int dt = SK_FLOAT;
    const Onnx__TensorProto *t = sk_node_attr_tensor(c->node, "value");
    if (t && (s = attr_scalar(c, t, &dt, v))) return s;
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, dt, (int)n, dims, c->err))) return s;
    fill_elem(y->data, v, esize(dt), y->numel);
    return SK_OK;
}

/* ---- Trilu, EyeLike, OneHot, NonZero --------------------------------------- */

static sk_status run_trilu(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0), *kt = input(c, 1);
    size_t es;
    if ((s = need_bytes(c, x, &es))) return s;
    if (x->rank < 2) return sk_error_set(c->err, SK_EINVAL, "input must have rank >= 2, not %d", x->rank);
    int64_t k = 0;
    if (kt) {
        if (!is_index_type(kt->dtype) || kt->numel != 1) return sk_error_set(c->err, SK_EINVAL, "k must be one int64");
        k = index_at(kt, 0);
    }
    const int upper = sk_node_attr_int(c->node, "upper", 1) != 0;
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_copy(y, x, c->err))) return s;
    const int64_t R = x->dims[x->rank - 2], C = x->dims[x->rank - 1], plane = R * C;
    const int64_t mats = plane ? x->numel / plane : 0;
    unsigned char *p = y->data;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++) {
                /* keep j - i >= k (upper) or j - i <= k (lower); j - i cannot overflow */
                int keep = upper ? j - i >= k : j - i <= k;
                if (!keep) memset(p + (size_t)((m * R + i) * C + j) * es, 0, es);
            }
    return SK_OK;
}

static sk_status run_eye_like(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    if (x->rank != 2) return sk_error_set(c->err, SK_EINVAL, "input must be 2-D, not rank %d", x->rank);
    int64_t dt = sk_node_attr_int(c->node, "dtype", x->dtype), k = sk_node_attr_int(c->node, "k", 0);
    if (dt <= 0 || dt >= SK_DTYPE_COUNT || esize((int)dt) == 0 || dt == SK_STRING)
        return sk_error_set(c->err, SK_EUNSUPPORTED, "dtype %lld is not supported", (long long)dt);
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, (int)dt, 2, x->dims, c->err))) return s;
    for (int64_t i = 0; i < x->dims[0]; i++) {
        if (k > x->dims[1] || k < -x->dims[1]) break;
        int64_t j = i + k;
        if (j >= 0 && j < x->dims[1]) put_f64((int)dt, y->data, i * x->dims[1] + j, 1.0);
    }
    return SK_OK;
}

static sk_status run_one_hot(sk_op_ctx *c)
{
    sk_status s = need_io(c, 3);
    if (s) return s;
    const sk_tensor *ind = input(c, 0), *dt = input(c, 1), *vals = input(c, 2);
    size_t es;
    if ((s = need_bytes(c, vals, &es))) return s;
    if (dt->numel != 1) return sk_error_set(c->err, SK_EINVAL, "depth must hold one value");
    if (vals->numel != 2) return sk_error_set(c->err, SK_EINVAL, "values must hold [off, on]");
    double fd = sk_tensor_get_f64(dt, 0);
    if (!(fd >= 1) || fd > (double)SK_MAX_DIM) return sk_error_set(c->err, SK_EINVAL, "depth %g is out of range", fd);
    const int64_t depth = (int64_t)fd;
    const int r = ind->rank + 1;
    if (r > MAXR) return sk_error_set(c->err, SK_EINVAL, "result rank %d is over the limit", r);
    int axis;
    if ((s = norm_axis(c, sk_node_attr_int(c->node, "axis", -1), r, &axis))) return s;
    int64_t dims[MAXR];
    for (int d = 0, k = 0; d < r; d++) dims[d] = d == axis ? depth : ind->dims[k++];
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, vals->dtype, r, dims, c->err))) return s;
    const unsigned char *off = vals->data, *on = off + es;
    fill_elem(y->data, off, es, y->numel);
    const int64_t inner = prod(ind->dims, axis, ind->rank);
    const int k_float = kind_is_float(ind->dtype);
    for (int64_t i = 0; i < ind->numel; i++) {
        double fv = sk_tensor_get_f64(ind, i);
        int64_t v = k_float ? (fv != fv ? depth : (fv < -1e18 ? -depth - 1 : fv > 1e18 ? depth : (int64_t)fv))
                            : sk_tensor_get_i64(ind, i);
        if (v < 0) v += depth;
        if (v < 0 || v >= depth) continue; /* outside [-depth, depth): all off */
        const int64_t outer_i = i / inner, inner_i = i % inner;
        memcpy((unsigned char *)y->data + (size_t)((outer_i * depth + v) * inner + inner_i) * es, on, es);
    }
    return SK_OK;
}

static sk_status run_non_zero(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    size_t es;
    if ((s = need_bytes(c, x, &es))) return s;
    const int isf = kind_is_float(x->dtype);
    int64_t nnz = 0;
    for (int64_t i = 0; i < x->numel; i++) nnz += elem_nonzero(x, i, es, isf);
    int64_t dims[2] = { x->rank, nnz };
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, SK_INT64, 2, dims, c->err))) return s;
    int64_t idx[MAXR] = { 0 }, k = 0, *o = y->data;
    for (int64_t i = 0; i < x->numel; i++) {
        if (elem_nonzero(x, i, es, isf)) {
            for (int d = 0; d < x->rank; d++) o[d * nnz + k] = idx[d];
            k++;
        }
        for (int d = x->rank - 1; d >= 0; d--) {
            if (++idx[d] < x->dims[d]) break;
            idx[d] = 0;
        }
    }
    return SK_OK;
}

/* ---- DepthToSpace, SpaceToDepth -------------------------------------------- */

/* y = reshape(transpose(reshape(x, v6), perm), out4). */
static sk_status permute6(const sk_op_ctx *c, const sk_tensor *x, const int64_t *v6, const int *perm, const int64_t *out4)
{
    size_t es;
    sk_status s = need_bytes(c, x, &es);
    if (s) return s;
    sk_tensor *y = c->out[0];
    if ((s = sk_tensor_alloc(y, x->dtype, 4, out4, c->err))) return s;
    sk_transpose(y->data, x->data, es, 6, v6, perm);
    return SK_OK;
}

static sk_status run_depth_to_space(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    const int64_t b = sk_node_attr_int(c->node, "blocksize", 0);
    if (x->rank != 4) return sk_error_set(c->err, SK_EINVAL, "input must be 4-D, not rank %d", x->rank);
    if (b < 1 || b > 65536 || x->dims[1] % (b * b))
        return sk_error_set(c->err, SK_EINVAL, "blocksize %lld does not divide %lld channels", (long long)b, (long long)x->dims[1]);
    size_t len = 0;
    const char *mode = sk_node_attr_string(c->node, "mode", "DCR", &len);
    const int64_t N = x->dims[0], C = x->dims[1] / (b * b), H = x->dims[2], W = x->dims[3];
    const int64_t out4[4] = { N, C, H * b, W * b };
    if (len == 3 && !memcmp(mode, "DCR", 3)) {
        const int64_t v6[6] = { N, b, b, C, H, W };
        const int perm[6] = { 0, 3, 4, 1, 5, 2 };
        return permute6(c, x, v6, perm, out4);
    }
    if (len == 3 && !memcmp(mode, "CRD", 3)) {
        const int64_t v6[6] = { N, C, b, b, H, W };
        const int perm[6] = { 0, 1, 4, 2, 5, 3 };
        return permute6(c, x, v6, perm, out4);
    }
    return sk_error_set(c->err, SK_EINVAL, "mode '%.*s' is not DCR or CRD", (int)len, mode);
}

static sk_status run_space_to_depth(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    const int64_t b = sk_node_attr_int(c->node, "blocksize", 0);
    if (x->rank != 4) return sk_error_set(c->err, SK_EINVAL, "input must be 4-D, not rank %d", x->rank);
    if (b < 1 || b > 65536 || x->dims[2] % b || x->dims[3] % b)
        return sk_error_set(c->err, SK_EINVAL, "blocksize %lld does not divide the spatial dims", (long long)b);
    const int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2] / b, W = x->dims[3] / b;
    const int64_t v6[6] = { N, C, H, b, W, b };
    const int perm[6] = { 0, 3, 5, 1, 2, 4 };
    const int64_t out4[4] = { N, C * b * b, H, W };
    return permute6(c, x, v6, perm, out4);
}

const sk_op_def sk_ops_shape[] = {
    { "", "Reshape", 1, run_reshape_1 },
    { "", "Reshape", 5, run_reshape_5 },
    { "", "Flatten", 1, run_flatten },
    { "", "Squeeze", 1, run_squeeze },
    { "", "Unsqueeze", 1, run_unsqueeze },
    { "", "Transpose", 1, run_transpose },
    { "", "Concat", 1, run_concat },
    { "", "Split", 2, run_split },
    { "", "Slice", 1, run_slice },
    { "", "Gather", 1, run_gather },
    { "", "GatherElements", 11, run_gather_elements },
    { "", "GatherND", 11, run_gather_nd },
    { "", "ScatterND", 11, run_scatter_nd },
    { "", "ScatterElements", 11, run_scatter_elements },
    { "", "Scatter", 9, run_scatter_elements },
    { "", "Expand", 8, run_expand },
    { "", "Tile", 6, run_tile },
    { "", "Pad", 2, run_pad },
    { "", "Shape", 1, run_shape },
    { "", "Size", 1, run_size },
    { "", "Range", 11, run_range },
    { "", "ConstantOfShape", 9, run_constant_of_shape },
    { "", "Trilu", 14, run_trilu },
    { "", "EyeLike", 9, run_eye_like },
    { "", "OneHot", 9, run_one_hot },
    { "", "NonZero", 9, run_non_zero },
    { "", "DepthToSpace", 1, run_depth_to_space },
    { "", "SpaceToDepth", 1, run_space_to_depth },
    { NULL, NULL, 0, NULL },
};
