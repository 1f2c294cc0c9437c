/* Quantized ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
 * MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv, and the
 * com.microsoft ops ONNX Runtime's quantizers emit: MatMulNBits,
 * GatherBlockQuantized, DynamicQuantizeMatMul, MatMulIntegerToFloat.
 *
 * Integer products go through sk_qgemm (8-bit, with zero points) and
 * sk_nbits_gemm (N-bit blocks); float -> 8-bit quantization of whole runs is
 * vectorised here; the rest is plain loops. Rounding is round-half-to-even,
 * as ONNX and ONNX Runtime do; scales divide (x / scale), as they do too. */
#include "sk_op.h"
#include "sk_model.h"
#include "sk_qgemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

/* ---- small helpers --------------------------------------------------------- */

static const sk_tensor *in_at(const sk_op_ctx *ctx, size_t i)
{
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

static int is_float_type(int dt) { return dt == SK_FLOAT || dt == SK_FLOAT16 || dt == SK_BFLOAT16; }

static int is_float8(int dt)
{
    return dt == SK_FLOAT8E4M3FN || dt == SK_FLOAT8E4M3FNUZ || dt == SK_FLOAT8E5M2 || dt == SK_FLOAT8E5M2FNUZ;
}

static float get_f(const sk_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case SK_FLOAT: return ((const float *)t->data)[i];
    case SK_FLOAT16: return sk_half_to_float(((const uint16_t *)t->data)[i]);
    case SK_BFLOAT16: return sk_bf16_to_float(((const uint16_t *)t->data)[i]);
    default: return (float)sk_tensor_get_f64(t, i);
    }
}

static void put_f(sk_tensor *t, int64_t i, float v)
{
    switch (t->dtype) {
    case SK_FLOAT: ((float *)t->data)[i] = v; break;
    case SK_FLOAT16: ((uint16_t *)t->data)[i] = sk_float_to_half(v); break;
    case SK_BFLOAT16: ((uint16_t *)t->data)[i] = sk_float_to_bf16(v); break;
    default: break;
    }
}

/* A float tensor as float32: borrowed when it already is, else converted into
 * *buf (malloc'd, freed by the caller). NULL on allocation failure. */
static const float *as_f32(const sk_tensor *t, float **buf)
{
    *buf = NULL;
    if (t->dtype == SK_FLOAT) return t->data;
    size_t n = (size_t)t->numel;
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) p[i] = get_f(t, (int64_t)i);
    *buf = p;
    return p;
}

static sk_status oom(sk_op_ctx *ctx)
{
    return sk_error_set(ctx->err, SK_ENOMEM, "out of memory");
}

/* ---- 8-bit quantization of float runs ---------------------------------------- */

typedef float qv4f __attribute__((vector_size(16)));
typedef int32_t qv4i __attribute__((vector_size(16)));

static inline qv4f qv_select(qv4i mask, qv4f a, qv4f b) { return (qv4f)((mask & (qv4i)a) | (~mask & (qv4i)b)); }

static inline qv4f qv_min(qv4f a, qv4f b)
{
#if defined(__SSE2__)
    return (qv4f)_mm_min_ps((__m128)a, (__m128)b);
#elif defined(__wasm_simd128__)
    return (qv4f)wasm_f32x4_pmin((v128_t)a, (v128_t)b);
#else
    return qv_select(a < b, a, b);
#endif
}

static inline qv4f qv_max(qv4f a, qv4f b)
{
#if defined(__SSE2__)
    return (qv4f)_mm_max_ps((__m128)a, (__m128)b);
#elif defined(__wasm_simd128__)
    return (qv4f)wasm_f32x4_pmax((v128_t)a, (v128_t)b);
#else
    return qv_select(a > b, a, b);
#endif
}

/* Four vectors of int32 already in [-128, 255] to 16 bytes (int8 as two's
 * complement). */
static inline void qv_store16(qv4i a, qv4i b, qv4i c, qv4i d, int is_signed, uint8_t *y)
{
#if defined(__SSE2__)
    __m128i lo = _mm_packs_epi32((__m128i)a, (__m128i)b), hi = _mm_packs_epi32((__m128i)c, (__m128i)d);
    __m128i v = is_signed ? _mm_packs_epi16(lo, hi) : _mm_packus_epi16(lo, hi);
    _mm_storeu_si128((__m128i *)y, v);
#elif defined(__wasm_simd128__)
    v128_t lo = wasm_i16x8_narrow_i32x4((v128_t)a, (v128_t)b), hi = wasm_i16x8_narrow_i32x4((v128_t)c, (v128_t)d);
    wasm_v128_store(y, is_signed ? wasm_i8x16_narrow_i16x8(lo, hi) : wasm_u8x16_narrow_i16x8(lo, hi));
#else
    (void)is_signed;
    for (int j = 0; j < 4; j++) {
        y[j] = (uint8_t)a[j];
        y[4 + j] = (uint8_t)b[j];
        y[8 + j] = (uint8_t)c[j];
        y[12 + j] = (uint8_t)d[j];
    }
#endif
}

/* y[i] = saturate(round_half_even(x[i] / scale) + zp) into [lo, hi], stored as
 * bytes (int8 as its two's complement). Rounds with the 1.5 * 2^23 trick, which
 * is exact round-half-to-even for |v| <= 2^22 (larger values saturate anyway);
 * NaN becomes lo. */
static inline qv4i quantize4(qv4f v, qv4f vs, qv4f vz, qv4f vlo, qv4f vhi)
{
    const qv4f magic = (qv4f){ 0, 0, 0, 0 } + 12582912.0f, big = (qv4f){ 0, 0, 0, 0 } + 4194304.0f;
    v = v / vs;
    v = qv_min(qv_max(v, -big), big);
    v = (v + magic) - magic + vz;
    v = qv_select(v >= vlo, v, vlo); /* NaN fails the compare: lo */
    v = qv_min(v, vhi);
    return __builtin_convertvector(v, qv4i);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(SK_NO_DISPATCH)
#define SK_QUANT_X86 1
#include <immintrin.h>
/* 16-lane instances of the loops below for AVX-512: the same operations per
 * lane (min/max as a < b ? a : b, like minps/maxps), so the same bytes. */
typedef float qv16f __attribute__((vector_size(64)));
typedef int32_t qv16i __attribute__((vector_size(64)));
typedef uint8_t qv16u8 __attribute__((vector_size(16)));

#define Q16_SEL(m, a, b) ((qv16f)(((m) & (qv16i)(a)) | (~(m) & (qv16i)(b))))

__attribute__((target("avx512f,avx512bw"))) static size_t quantize_run_8bit_avx512(const float *x, size_t n, float scale,
                                                                                    int32_t zp, int lo, int hi, uint8_t *y)
{
    /* the 4-lane code's operations: x / scale, clamp to +-2^22 (NaN to
     * -2^22), round with 1.5 * 2^23, + zp, clamp to [lo, hi] (maxps / minps
     * are exactly its a > b ? a : b selects) */
    const __m512 vs = _mm512_set1_ps(0.0f + scale), vz = _mm512_set1_ps((float)zp);
    const __m512 vlo = _mm512_set1_ps((float)lo), vhi = _mm512_set1_ps((float)hi);
    const __m512 magic = _mm512_set1_ps(12582912.0f), big = _mm512_set1_ps(4194304.0f), nbig = _mm512_set1_ps(-4194304.0f);
    /* x * (1 / scale) instead of x / scale where that cannot change the
     * rounded result: both are within 3 ulp (|q| 2^-22) of the exact
     * quotient, so when q is further than |q| 2^-21 from a half-integer (and
     * below 2^21), they round to the same integer. A vector with any other
     * lane (near a tie, huge, NaN, inf) divides. */
    const __m512 rcp = _mm512_set1_ps(1.0f / scale), half = _mm512_set1_ps(0.5f);
    const __m512 tol = _mm512_set1_ps(4.76837158e-07f /* 2^-21 */), lim = _mm512_set1_ps(2097152.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 q = _mm512_mul_ps(v, rcp), aq = _mm512_abs_ps(q);
        __m512 d = _mm512_abs_ps(_mm512_sub_ps(q, _mm512_sub_ps(_mm512_add_ps(q, magic), magic)));
        __mmask16 ok = _mm512_cmp_ps_mask(_mm512_sub_ps(half, d), _mm512_mul_ps(aq, tol), _CMP_GT_OQ) &
                       _mm512_cmp_ps_mask(aq, lim, _CMP_LT_OQ);
        v = ok == 0xFFFF ? q : _mm512_div_ps(v, vs);
        v = _mm512_min_ps(_mm512_max_ps(v, nbig), big);
        v = _mm512_add_ps(_mm512_sub_ps(_mm512_add_ps(v, magic), magic), vz);
        v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
        _mm_storeu_si128((__m128i *)(y + i), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
    }
    return i;
}

__attribute__((target("avx512f,avx512bw"))) static size_t minmax_run_avx512(const float *x, size_t n, float *mn,
                                                                             float *mx)
{
    qv16f vmn = { 0 }, vmx = { 0 }, mn1 = { 0 }, mx1 = { 0 };
    size_t i = 0;
    for (; i + 32 <= n; i += 32) { /* two chains: min and max are exact in any order */
        qv16f v, w;
        memcpy(&v, x + i, sizeof v);
        memcpy(&w, x + i + 16, sizeof w);
        vmn = Q16_SEL(v < vmn, v, vmn);
        vmx = Q16_SEL(v > vmx, v, vmx);
        mn1 = Q16_SEL(w < mn1, w, mn1);
        mx1 = Q16_SEL(w > mx1, w, mx1);
    }
    for (; i + 16 <= n; i += 16) {
        qv16f v;
        memcpy(&v, x + i, sizeof v);
        vmn = Q16_SEL(v < vmn, v, vmn);
        vmx = Q16_SEL(v > vmx, v, vmx);
    }
    vmn = Q16_SEL(mn1 < vmn, mn1, vmn);
    vmx = Q16_SEL(mx1 > vmx, mx1, vmx);
    float a = 0, b = 0;
    for (int j = 0; j < 16; j++) {
        a = vmn[j] < a ? vmn[j] : a;
        b = vmx[j] > b ? vmx[j] : b;
    }
    *mn = a;
    *mx = b;
    return i;
}

static int quant_avx512(void)
{
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        __builtin_cpu_init();
        c = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c;
}
#endif

static void quantize_run_8bit(const float *x, size_t n, float scale, int32_t zp, int lo, int hi, uint8_t *y)
{
#ifdef SK_QUANT_X86
    if (n >= 64 && quant_avx512()) {
        size_t done = quantize_run_8bit_avx512(x, n, scale, zp, lo, hi, y);
        x += done;
        y += done;
        n -= done;
    }
#endif
    const qv4f vs = (qv4f){ 0, 0, 0, 0 } + scale, vz = (qv4f){ 0, 0, 0, 0 } + (float)zp;
    const qv4f vlo = (qv4f){ 0, 0, 0, 0 } + (float)lo, vhi = (qv4f){ 0, 0, 0, 0 } + (float)hi;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        qv4f v[4];
        memcpy(v, x + i, sizeof v);
        qv_store16(quantize4(v[0], vs, vz, vlo, vhi), quantize4(v[1], vs, vz, vlo, vhi), quantize4(v[2], vs, vz, vlo, vhi),
                   quantize4(v[3], vs, vz, vlo, vhi), lo < 0, y + i);
    }
    for (; i < n; i++) {
        float v = x[i] / scale;
        v = v > 4194304.0f ? 4194304.0f : v < -4194304.0f ? -4194304.0f : v;
        v = (v + 12582912.0f) - 12582912.0f + (float)zp;
        v = v >= (float)lo ? v : (float)lo;
        v = v <= (float)hi ? v : (float)hi;
        y[i] = (uint8_t)(int32_t)v;
    }
}

static void minmax_run(const float *x, size_t n, float *mn, float *mx)
{
    qv4f vmn = { 0 }, vmx = { 0 };
    size_t i = 0;
#ifdef SK_QUANT_X86
    if (n >= 64 && quant_avx512()) {
        float a, b;
        i = minmax_run_avx512(x, n, &a, &b);
        vmn = (qv4f){ a, a, a, a };
        vmx = (qv4f){ b, b, b, b };
    }
#endif
    for (; i + 4 <= n; i += 4) {
        qv4f v;
        memcpy(&v, x + i, sizeof v);
        vmn = qv_min(v, vmn);
        vmx = qv_max(v, vmx);
    }
    float a = 0, b = 0;
    for (int j = 0; j < 4; j++) {
        a = vmn[j] < a ? vmn[j] : a;
        b = vmx[j] > b ? vmx[j] : b;
    }
    for (; i < n; i++) {
        a = x[i] < a ? x[i] : a;
        b = x[i] > b ? x[i] : b;
    }
    *mn = a;
    *mx = b;
}

static const char *shape_s(const sk_tensor *t, char *buf, size_t cap)
{
    return sk_shape_str(t->rank, t->dims, buf, cap);
}

/* Integer range of a quantized type; 0 when dt is not an integer type. */
static int int_range(int dt, int64_t *lo, int64_t *hi)
{
    switch (dt) {
    case SK_UINT8: *lo = 0; *hi = 255; return 1;
    case SK_INT8: *lo = -128; *hi = 127; return 1;
    case SK_UINT16: *lo = 0; *hi = 65535; return 1;
    case SK_INT16: *lo = -32768; *hi = 32767; return 1;
    case SK_INT32: *lo = INT32_MIN; *hi = INT32_MAX; return 1;
    case SK_UINT4: *lo = 0; *hi = 15; return 1;
    case SK_INT4: *lo = -8; *hi = 7; return 1;
    default: return 0;
    }
}

/* Stores integer v (already in range) as element i of t. */
static void put_int(sk_tensor *t, int64_t i, int64_t v)
{
    uint8_t *p = t->data;
    switch (t->dtype) {
    case SK_UINT8: case SK_INT8: p[i] = (uint8_t)v; break;
    case SK_UINT16: case SK_INT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case SK_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case SK_UINT4: case SK_INT4: {
        unsigned sh = (unsigned)(i & 1) * 4;
        p[i >> 1] = (uint8_t)((p[i >> 1] & ~(0xFu << sh)) | (((unsigned)v & 0xFu) << sh));
        break;
    }
    default: break;
    }
}

/* ---- float8 ---------------------------------------------------------------- */

typedef struct f8_format {
    int mbits, bias, fnuz, has_inf;
    uint8_t max_code;   /* largest finite magnitude */
    float max_value;
} f8_format;

static const f8_format *f8_fmt(int dt)
{
    static const f8_format e4m3fn = { 3, 7, 0, 0, 0x7E, 448.0f };
    static const f8_format e4m3fnuz = { 3, 8, 1, 0, 0x7F, 240.0f };
    static const f8_format e5m2 = { 2, 15, 0, 1, 0x7B, 57344.0f };
    static const f8_format e5m2fnuz = { 2, 16, 1, 0, 0x7F, 57344.0f };
    switch (dt) {
    case SK_FLOAT8E4M3FN: return &e4m3fn;
    case SK_FLOAT8E4M3FNUZ: return &e4m3fnuz;
    case SK_FLOAT8E5M2: return &e5m2;
    default: return &e5m2fnuz;
    }
}

static float f8_to_float(int dt, uint8_t b)
{
    const f8_format *f = f8_fmt(dt);
    int eb = 7 - f->mbits, e = (b >> f->mbits) & ((1 << eb) - 1), m = b & ((1 << f->mbits) - 1);
    float sign = (b & 0x80) ? -1.0f : 1.0f;
    if (f->fnuz && b == 0x80) return NAN;
    if (!f->fnuz && e == (1 << eb) - 1) {
        if (f->has_inf) return m ? NAN : sign * INFINITY;
        if (m == (1 << f->mbits) - 1) return NAN;
    }
    if (e == 0) return sign * ldexpf((float)m, 1 - f->bias - f->mbits);
    return sign * ldexpf(1.0f + (float)m / (float)(1 << f->mbits), e - f->bias);
}

/* Round to nearest even with ONNX's saturation rules. */
static uint8_t float_to_f8(int dt, float x, int saturate)
{
    const f8_format *f = f8_fmt(dt);
    uint8_t sign = signbit(x) ? 0x80 : 0;
    uint8_t nan = f->fnuz ? 0x80 : (uint8_t)(sign | 0x7F);
    if (isnan(x)) return nan;
    float a = fabsf(x);
    if (isinf(a)) {
        if (f->fnuz) return saturate ? (uint8_t)(sign | f->max_code) : nan;
        if (saturate) return (uint8_t)(sign | f->max_code);
        return f->has_inf ? (uint8_t)(sign | 0x7C) : nan;
    }
    int e;
    frexpf(a, &e);
    e -= 1; /* a = 1.m * 2^e */
    if (e < 1 - f->bias) e = 1 - f->bias;
    float q = ldexpf(1.0f, e - f->mbits);
    float r = nearbyintf(a / q) * q;
    if (r > f->max_value) {
        if (saturate) return (uint8_t)(sign | f->max_code);
        return f->has_inf ? (uint8_t)(sign | 0x7C) : nan;
    }
    if (r == 0) return f->fnuz ? 0 : sign;
    int er;
    frexpf(r, &er);
    er -= 1;
    unsigned code;
    if (er < 1 - f->bias) {
        code = (unsigned)(r / ldexpf(1.0f, 1 - f->bias - f->mbits));
    } else {
        unsigned mant = (unsigned)((r / ldexpf(1.0f, er) - 1.0f) * (float)(1 << f->mbits));
        code = ((unsigned)(er + f->bias) << f->mbits) | mant;
    }
    return (uint8_t)(sign | code);
}

/* ---- quantization parameters ---------------------------------------------- */

/* How scale and zero point map onto x viewed as [outer, dim, inner] around
 * axis: one value, one per index of axis, or one per block of axis. */
typedef struct qparams {
    int mode;           /* 0 per tensor, 1 per axis, 2 blocked */
    int64_t outer, dim, inner, block, nblk;
    float *scale;       /* malloc'd */
    int32_t *zp;        /* malloc'd or NULL (all zero) */
} qparams;

static void qparams_free(qparams *q)
{
    free(q->scale);
    free(q->zp);
}

static inline int64_t qp_index(const qparams *q, int64_t o, int64_t a, int64_t i)
{
    switch (q->mode) {
    case 0: return 0;
    case 1: return a;
    default: return (o * q->nblk + a / q->block) * q->inner + i;
    }
}

/* Reads the scale (input si) and zero point (input zi) of ctx for input x:
 * one value, one per index of the axis attribute, or (opset 21 block_size)
 * one per block along it. On success q owns two arrays (qparams_free). */
static sk_status qparams_read(sk_op_ctx *ctx, const sk_tensor *x, size_t si, size_t zi, qparams *q)
{
    char b1[128], b2[128];
    const sk_tensor *s = in_at(ctx, si), *z = in_at(ctx, zi);
    memset(q, 0, sizeof *q);
    if (!s) return sk_error_set(ctx->err, SK_EINVAL, "the scale input is missing");
    if (!is_float_type(s->dtype))
        return sk_error_set(ctx->err, SK_EINVAL, "the scale is %s, not a float type", sk_dtype_name(s->dtype));
    int64_t axis = sk_node_attr_int(ctx->node, "axis", 1);
    int64_t block = ctx->opset >= 21 ? sk_node_attr_int(ctx->node, "block_size", 0) : 0;
    int rank = x->rank;
    if (block < 0) return sk_error_set(ctx->err, SK_EINVAL, "block_size %lld is negative", (long long)block);
    if (s->numel == 1 && block == 0) {
        q->mode = 0;
        q->outer = 1;
        q->dim = x->numel;
        q->inner = 1;
    } else {
        if (axis < -rank || axis >= rank || rank == 0)
            return sk_error_set(ctx->err, SK_EINVAL, "axis %lld is out of range for input of shape %s", (long long)axis,
                                shape_s(x, b1, sizeof b1));
        if (axis < 0) axis += rank;
        q->outer = sk_shape_numel((int)axis, x->dims);
        q->dim = x->dims[axis];
        q->inner = sk_shape_numel(rank - (int)axis - 1, x->dims + axis + 1);
        if (block == 0) {
            if (s->rank != 1 || s->dims[0] != q->dim)
                return sk_error_set(ctx->err, SK_EINVAL, "scale of shape %s does not match axis %lld of input %s",
                                    shape_s(s, b1, sizeof b1), (long long)axis, shape_s(x, b2, sizeof b2));
            q->mode = 1;
        } else {
            q->mode = 2;
            q->block = block;
            q->nblk = (q->dim + block - 1) / block;
            int ok = s->rank == rank;
            for (int d = 0; ok && d < rank; d++) ok = s->dims[d] == (d == axis ? q->nblk : x->dims[d]);
            if (!ok)
                return sk_error_set(ctx->err, SK_EINVAL,
                                    "scale of shape %s does not match input %s with block_size %lld on axis %lld",
                                    shape_s(s, b1, sizeof b1), shape_s(x, b2, sizeof b2), (long long)block,
                                    (long long)axis);
        }
    }
    if (z) {
        int same = z->rank == s->rank || (z->numel == 1 && s->numel == 1);
        for (int d = 0; same && d < z->rank && z->rank == s->rank; d++) same = z->dims[d] == s->dims[d];
        if (!same || z->numel != s->numel)
            return sk_error_set(ctx->err, SK_EINVAL, "zero point of shape %s does not match scale of shape %s",
                                shape_s(z, b1, sizeof b1), shape_s(s, b2, sizeof b2));
    }
    size_t n = (size_t)s->numel;
    q->scale = malloc((n ? n : 1) * sizeof *q->scale);
    if (!q->scale) return oom(ctx);
    for (size_t i = 0; i < n; i++) q->scale[i] = get_f(s, (int64_t)i);
    if (z && !is_float8(z->dtype)) {
        q->zp = malloc((n ? n : 1) * sizeof *q->zp);
        if (!q->zp) {
            qparams_free(q);
            return oom(ctx);
        }
        for (size_t i = 0; i < n; i++) q->zp[i] = (int32_t)sk_tensor_get_i64(z, (int64_t)i);
    }
    return SK_OK;
}

/* ---- QuantizeLinear ---------------------------------------------------------- */

static sk_status op_quantize_linear(sk_op_ctx *ctx)
{
    const sk_tensor *x = in_at(ctx, 0), *z = in_at(ctx, 2);
    if (!x) return sk_error_set(ctx->err, SK_EINVAL, "the input is missing");
    if (!is_float_type(x->dtype) && x->dtype != SK_INT32)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "input of type %s is not supported", sk_dtype_name(x->dtype));
    int out_dt = SK_UINT8;
    if (z) out_dt = z->dtype;
    else if (ctx->opset >= 21) out_dt = (int)sk_node_attr_int(ctx->node, "output_dtype", SK_UINT8);
    if (!out_dt) out_dt = SK_UINT8;
    int64_t lo = 0, hi = 0;
    int is_int = int_range(out_dt, &lo, &hi);
    if (!is_int && !is_float8(out_dt))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "output type %s is not supported", sk_dtype_name(out_dt));
    int saturate = (int)sk_node_attr_int(ctx->node, "saturate", 1);
    qparams q;
    sk_status st = qparams_read(ctx, x, 1, 2, &q);
    if (st) return st;
    st = sk_tensor_alloc(ctx->out[0], out_dt, x->rank, x->dims, ctx->err);
    if (st) {
        qparams_free(&q);
        return st;
    }
    sk_tensor *y = ctx->out[0];
    if (x->dtype == SK_FLOAT && (out_dt == SK_UINT8 || out_dt == SK_INT8) && q.mode != 2) {
        /* runs of inner elements share one scale and zero point */
        size_t run = q.mode == 0 ? (size_t)x->numel : (size_t)q.inner, nrun = q.mode == 0 ? 1 : (size_t)(q.outer * q.dim);
        for (size_t r = 0; r < nrun; r++) {
            size_t p = q.mode == 0 ? 0 : r % (size_t)q.dim;
            quantize_run_8bit((const float *)x->data + r * run, run, q.scale[p], q.zp ? q.zp[p] : 0, (int)lo, (int)hi,
                              (uint8_t *)y->data + r * run);
        }
        qparams_free(&q);
        return SK_OK;
    }
    int64_t idx = 0;
    for (int64_t o = 0; o < q.outer; o++)
        for (int64_t a = 0; a < q.dim; a++)
            for (int64_t i = 0; i < q.inner; i++, idx++) {
                int64_t p = qp_index(&q, o, a, i);
                float xv = x->dtype == SK_INT32 ? (float)((const int32_t *)x->data)[idx] : get_f(x, idx);
                float v = xv / q.scale[p];
                if (is_int) {
                    float r = nearbyintf(v);
                    double d = (double)r + (q.zp ? q.zp[p] : 0);
                    int64_t iv;
                    if (d != d) iv = q.zp ? q.zp[p] : 0;
                    else if (d <= (double)lo) iv = lo;
                    else if (d >= (double)hi) iv = hi;
                    else iv = (int64_t)d;
                    put_int(y, idx, iv);
                } else {
                    ((uint8_t *)y->data)[idx] = float_to_f8(out_dt, v, saturate);
                }
            }
    qparams_free(&q);
    return SK_OK;
}

/* ---- DequantizeLinear ---------------------------------------------------- */

static sk_status op_dequantize_linear(sk_op_ctx *ctx)
{
    const sk_tensor *x = in_at(ctx, 0), *s = in_at(ctx, 1);
    if (!x || !s) return sk_error_set(ctx->err, SK_EINVAL, "an input is missing");
    int64_t lo, hi;
    if (!int_range(x->dtype, &lo, &hi) && !is_float8(x->dtype))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "input of type %s is not supported", sk_dtype_name(x->dtype));
    int out_dt = s->dtype;
    if (ctx->opset >= 23) {
        int64_t od = sk_node_attr_int(ctx->node, "output_dtype", 0);
        if (od) out_dt = (int)od;
    }
    if (!is_float_type(out_dt))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "output type %s is not supported", sk_dtype_name(out_dt));
    qparams q;
    sk_status st = qparams_read(ctx, x, 1, 2, &q);
    if (st) return st;
    st = sk_tensor_alloc(ctx->out[0], out_dt, x->rank, x->dims, ctx->err);
    if (st) {
        qparams_free(&q);
        return st;
    }
    sk_tensor *y = ctx->out[0];
    if (q.mode == 0 && out_dt == SK_FLOAT && (x->dtype == SK_UINT8 || x->dtype == SK_INT8)) {
        float sc = q.scale[0];
        int32_t zp = q.zp ? q.zp[0] : 0;
        float *yo = y->data;
        size_t n = (size_t)x->numel;
        if (x->dtype == SK_UINT8) {
            const uint8_t *xp = x->data;
            for (size_t i = 0; i < n; i++) yo[i] = (float)((int32_t)xp[i] - zp) * sc;
        } else {
            const int8_t *xp = x->data;
            for (size_t i = 0; i < n; i++) yo[i] = (float)((int32_t)xp[i] - zp) * sc;
        }
        qparams_free(&q);
        return SK_OK;
    }
    int64_t idx = 0;
    for (int64_t o = 0; o < q.outer; o++)
        for (int64_t a = 0; a < q.dim; a++)
            for (int64_t i = 0; i < q.inner; i++, idx++) {
                int64_t p = qp_index(&q, o, a, i);
                float v;
                if (is_float8(x->dtype)) v = f8_to_float(x->dtype, ((const uint8_t *)x->data)[idx]);
                else v = (float)(sk_tensor_get_i64(x, idx) - (q.zp ? q.zp[p] : 0));
                put_f(y, idx, v * q.scale[p]);
            }
    qparams_free(&q);
    return SK_OK;
}

/* ---- DynamicQuantizeLinear -------------------------------------------------- */

/* uint8 parameters of x as ONNX defines them: the range always includes 0. */
static void dyn_params(const float *x, size_t n, float *scale, uint8_t *zp)
{
    float mn, mx;
    minmax_run(x, n, &mn, &mx);
    float s = (mx - mn) / 255.0f;
    float z = s != 0 ? nearbyintf(0.0f - mn / s) : 0.0f;
    if (!(z >= 0)) z = 0;
    if (z > 255) z = 255;
    *scale = s;
    *zp = (uint8_t)z;
}

static void dyn_quantize(const float *x, size_t n, float scale, uint8_t zp, uint8_t *y)
{
    if (scale == 0) {
        memset(y, zp, n);
        return;
    }
    quantize_run_8bit(x, n, scale, zp, 0, 255, y);
}

void sk_quantize_dynamic_u8(const float *x, size_t n, float *scale, uint8_t *zp, uint8_t *y)
{
    dyn_params(x, n, scale, zp);
    dyn_quantize(x, n, *scale, *zp, y);
}

static sk_status op_dynamic_quantize_linear(sk_op_ctx *ctx)
{
    const sk_tensor *x = in_at(ctx, 0);
    if (!x || x->dtype != SK_FLOAT)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "input must be float32, not %s",
                            x ? sk_dtype_name(x->dtype) : "missing");
    float scale;
    uint8_t zp;
    dyn_params(x->data, (size_t)x->numel, &scale, &zp);
    sk_status st = sk_tensor_alloc(ctx->out[0], SK_UINT8, x->rank, x->dims, ctx->err);
    if (!st && ctx->n_out > 1 && ctx->out[1]) st = sk_tensor_alloc(ctx->out[1], SK_FLOAT, 0, NULL, ctx->err);
    if (!st && ctx->n_out > 2 && ctx->out[2]) st = sk_tensor_alloc(ctx->out[2], SK_UINT8, 0, NULL, ctx->err);
    if (st) return st;
    dyn_quantize(x->data, (size_t)x->numel, scale, zp, ctx->out[0]->data);
    if (ctx->n_out > 1 && ctx->out[1]) *(float *)ctx->out[1]->data = scale;
    if (ctx->n_out > 2 && ctx->out[2]) *(uint8_t *)ctx->out[2]->data = zp;
    return SK_OK;
}

/* ---- batched integer matmul ------------------------------------------------- */

/* numpy.matmul shapes: batch dims broadcast, 1-D operands promoted. */
typedef struct mm_plan {
    int64_t M, K, N;
    int out_rank;
    int64_t out_dims[SK_TENSOR_MAX_RANK];
    int64_t batch;                       /* output batch count */
    int brank;
    int64_t bdims[SK_TENSOR_MAX_RANK];   /* output batch dims */
    int64_t astr[SK_TENSOR_MAX_RANK], bstr[SK_TENSOR_MAX_RANK]; /* batch strides in matrices, 0 when broadcast */
    int64_t a_batch, b_batch;            /* matrices in A and B */
} mm_plan;

static sk_status mm_plan_make(sk_op_ctx *ctx, const sk_tensor *a, const sk_tensor *b, mm_plan *p)
{
    char b1[128], b2[128];
    memset(p, 0, sizeof *p);
    if (a->rank < 1 || b->rank < 1)
        return sk_error_set(ctx->err, SK_EINVAL, "matmul of a scalar (%s x %s)", shape_s(a, b1, sizeof b1),
                            shape_s(b, b2, sizeof b2));
    p->M = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    p->K = a->dims[a->rank - 1];
    int64_t kb = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0];
    p->N = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (kb != p->K)
        return sk_error_set(ctx->err, SK_EINVAL, "matmul shapes %s and %s do not match", shape_s(a, b1, sizeof b1),
                            shape_s(b, b2, sizeof b2));
    int ra = a->rank >= 2 ? a->rank - 2 : 0, rb = b->rank >= 2 ? b->rank - 2 : 0;
    int br;
    sk_status st = sk_shape_broadcast(ra, a->dims, rb, b->dims, &br, p->bdims, ctx->err);
    if (st) return st;
    p->brank = br;
    p->a_batch = sk_shape_numel(ra, a->dims);
    p->b_batch = sk_shape_numel(rb, b->dims);
    int64_t sa = 1, sb = 1;
    for (int d = br - 1; d >= 0; d--) {
        int da = d - (br - ra), db = d - (br - rb);
        int64_t ea = da >= 0 ? a->dims[da] : 1, eb = db >= 0 ? b->dims[db] : 1;
        p->astr[d] = ea == 1 ? 0 : sa;
        p->bstr[d] = eb == 1 ? 0 : sb;
        sa *= ea;
        sb *= eb;
    }
    p->batch = sk_shape_numel(br, p->bdims);
    int r = 0;
    for (int d = 0; d < br; d++) p->out_dims[r++] = p->bdims[d];
    if (a->rank >= 2) p->out_dims[r++] = p->M;
    if (b->rank >= 2) p->out_dims[r++] = p->N;
    p->out_rank = r;
    if (p->batch < 0 || sk_shape_numel(r, p->out_dims) < 0)
        return sk_error_set(ctx->err, SK_EINVAL, "matmul output is too large");
    return SK_OK;
}

/* Matrix offsets of output batch item i in A and B. */
static void mm_offsets(const mm_plan *p, int64_t i, int64_t *ao, int64_t *bo)
{
    int64_t a = 0, b = 0;
    for (int d = p->brank - 1; d >= 0; d--) {
        int64_t c = i % p->bdims[d];
        i /= p->bdims[d];
        a += c * p->astr[d];
        b += c * p->bstr[d];
    }
    *ao = a;
    *bo = b;
}

/* Zero points of an 8-bit operand expanded to count per matrix x per row (A)
 * or per column (B): a scalar, one per row/column, or one per matrix and
 * row/column. *per is 1 (scalar), per_mat (shared by all matrices) or
 * per_mat * mats. Returns NULL (and *per = 0) when zp is absent. */
static sk_status zp_read(sk_op_ctx *ctx, const sk_tensor *zp, int64_t per_mat, int64_t mats, const char *what,
                         int32_t **out, int64_t *per)
{
    char b1[128];
    *out = NULL;
    *per = 0;
    if (!zp) return SK_OK;
    if (zp->dtype != SK_UINT8 && zp->dtype != SK_INT8)
        return sk_error_set(ctx->err, SK_EINVAL, "%s is %s, not an 8-bit type", what, sk_dtype_name(zp->dtype));
    if (zp->numel != 1 && zp->numel != per_mat && zp->numel != per_mat * mats)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "%s of shape %s is neither per tensor nor per %s", what,
                            shape_s(zp, b1, sizeof b1), per_mat == 1 ? "row" : "row or column");
    int32_t *z = malloc((size_t)zp->numel * sizeof *z + 1);
    if (!z) return oom(ctx);
    for (int64_t i = 0; i < zp->numel; i++) z[i] = (int32_t)sk_tensor_get_i64(zp, i);
    *out = z;
    *per = zp->numel;
    return SK_OK;
}

/* A constant 2-D B (and its zero points) packed for sk_qgemm_packed_run,
 * kept in the node's state across runs. */
typedef struct qpack_state {
    const void *b, *zb;   /* the data it was packed from */
    sk_qgemm_packed *pk;
} qpack_state;

static void qpack_state_free(void *p)
{
    if (!p) return;
    sk_qgemm_packed_free(((qpack_state *)p)->pk);
    free(p);
}

/* The pack of input bi (B, 2-D) with zero points zbi when the engine keeps
 * state and both are constants; NULL otherwise (and on allocation failure:
 * the caller then multiplies unpacked). */
static const sk_qgemm_packed *qpack_get(sk_op_ctx *ctx, size_t bi, size_t zbi)
{
#if !defined(__x86_64__)
    (void)ctx; /* only x86-64 has a packed kernel (VNNI); elsewhere a pack would be B itself */
    (void)bi;
    (void)zbi;
    return NULL;
#endif
    const sk_tensor *b = in_at(ctx, bi), *zb = in_at(ctx, zbi);
    if (!ctx->state || !b || b->rank != 2 || !((ctx->const_inputs >> bi) & 1) ||
        (zb && !((ctx->const_inputs >> zbi) & 1)) || (b->dtype != SK_UINT8 && b->dtype != SK_INT8))
        return NULL;
    if (zb && ((zb->dtype != SK_UINT8 && zb->dtype != SK_INT8) || (zb->numel != 1 && zb->numel != b->dims[1])))
        return NULL;
    qpack_state *st = *ctx->state;
    if (st && st->b == b->data && st->zb == (zb ? zb->data : NULL)) return st->pk;
    if (st) return NULL; /* another B: not the constant it looked like */
    if (!(st = calloc(1, sizeof *st))) return NULL;
    int32_t z[1] = { 0 }, *zv = z;
    size_t N = (size_t)b->dims[1];
    if (zb && zb->numel > 1 && !(zv = malloc(N * sizeof *zv))) {
        free(st);
        return NULL;
    }
    for (int64_t i = 0; zb && i < zb->numel; i++) zv[i] = (int32_t)sk_tensor_get_i64(zb, i);
    sk_qmat B = { b->data, N, b->dtype == SK_INT8, zb ? zv : NULL, zb ? (size_t)zb->numel : 0 };
    sk_error e;
    if (sk_qgemm_pack((size_t)b->dims[0], N, &B, &st->pk, &e)) st->pk = NULL;
    if (zv != z) free(zv);
    st->b = b->data;
    st->zb = zb ? zb->data : NULL;
    *ctx->state = st;
    *ctx->state_free = qpack_state_free;
    return st->pk;
}

/* int32 C = (A - za) x (B - zb) with numpy.matmul broadcasting; *C is
 * allocated with the plan's output shape and type c_dtype (SK_INT32, or
 * SK_FLOAT to be converted in place: it holds int32 bits until then). pk,
 * when not NULL, is B packed (a 2-D B). */
static sk_status qmatmul(sk_op_ctx *ctx, const sk_tensor *a, const sk_tensor *b, const sk_tensor *za_t,
                         const sk_tensor *zb_t, mm_plan *p, sk_tensor *C, int c_dtype, const sk_qgemm_packed *pk)
{
    if ((a->dtype != SK_UINT8 && a->dtype != SK_INT8) || (b->dtype != SK_UINT8 && b->dtype != SK_INT8))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "inputs of types %s and %s are not 8-bit integers",
                            sk_dtype_name(a->dtype), sk_dtype_name(b->dtype));
    sk_status st = mm_plan_make(ctx, a, b, p);
    if (st) return st;
    int32_t *za = NULL, *zb = NULL;
    int64_t zan = 0, zbn = 0;
    st = zp_read(ctx, za_t, p->M, p->a_batch, "a_zero_point", &za, &zan);
    if (!st) st = zp_read(ctx, zb_t, p->N, p->b_batch, "b_zero_point", &zb, &zbn);
    if (!st) st = sk_tensor_alloc_uninit(C, c_dtype, p->out_rank, p->out_dims, ctx->err);
    if (st) {
        free(za);
        free(zb);
        return st;
    }
    size_t M = (size_t)p->M, N = (size_t)p->N, K = (size_t)p->K;
    int fold = p->b_batch == 1 && p->a_batch == p->batch && zan <= p->M; /* one GEMM over all rows of A */
    int32_t *zrep = NULL;
    if (fold && zan == p->M && p->batch > 1) { /* per-row zero points repeat per batch item */
        zrep = malloc((size_t)(p->batch * p->M) * sizeof *zrep);
        if (!zrep) st = oom(ctx);
        for (int64_t i = 0; !st && i < p->batch * p->M; i++) zrep[i] = za[i % p->M];
    }
    if (!st && fold) {
        sk_qmat A = { a->data, K, a->dtype == SK_INT8, zrep ? zrep : za, zan == 1 ? 1 : M * (size_t)p->batch };
        sk_qmat B = { b->data, N, b->dtype == SK_INT8, zb, zbn == 1 ? 1 : N };
        if (pk) st = sk_qgemm_packed_run(M * (size_t)p->batch, &A, pk, C->data, N, ctx->err);
        else st = sk_qgemm(M * (size_t)p->batch, N, K, &A, &B, C->data, N, ctx->err);
    } else if (!st) {
        for (int64_t i = 0; i < p->batch && !st; i++) {
            int64_t ao, bo;
            mm_offsets(p, i, &ao, &bo);
            sk_qmat A = { (const uint8_t *)a->data + (size_t)ao * M * K, K, a->dtype == SK_INT8,
                          za ? za + (zan > p->M ? ao * p->M : 0) : NULL, zan == 1 ? 1 : M };
            sk_qmat B = { (const uint8_t *)b->data + (size_t)bo * K * N, N, b->dtype == SK_INT8,
                          zb ? zb + (zbn > p->N ? bo * p->N : 0) : NULL, zbn == 1 ? 1 : N };
            st = sk_qgemm(M, N, K, &A, &B, (int32_t *)C->data + (size_t)i * M * N, N, ctx->err);
        }
    }
    free(zrep);
    free(za);
    free(zb);
    return st;
}

static sk_status op_matmul_integer(sk_op_ctx *ctx)
{
    const sk_tensor *a = in_at(ctx, 0), *b = in_at(ctx, 1);
    if (!a || !b) return sk_error_set(ctx->err, SK_EINVAL, "an input is missing");
    mm_plan p;
    return qmatmul(ctx, a, b, in_at(ctx, 2), in_at(ctx, 3), &p, ctx->out[0], SK_INT32, qpack_get(ctx, 1, 3));
}

/* Scale of a quantized operand: one value, or one per row (per = M) or per
 * column (per = N). Written into *out (malloc'd), *n = 1 or per. */
static sk_status scale_read(sk_op_ctx *ctx, const sk_tensor *s, int64_t per, const char *what, float **out, int64_t *n)
{
    char b1[128];
    *out = NULL;
    if (!s) return sk_error_set(ctx->err, SK_EINVAL, "%s is missing", what);
    if (!is_float_type(s->dtype))
        return sk_error_set(ctx->err, SK_EINVAL, "%s is %s, not a float type", what, sk_dtype_name(s->dtype));
    if (s->numel != 1 && s->numel != per)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "%s of shape %s is neither per tensor nor per channel", what,
                            shape_s(s, b1, sizeof b1));
    float *f = malloc((size_t)s->numel * sizeof *f + 1);
    if (!f) return oom(ctx);
    for (int64_t i = 0; i < s->numel; i++) f[i] = get_f(s, i);
    *out = f;
    *n = s->numel;
    return SK_OK;
}

/* y = saturate(round(acc * mult) + zp) into 8-bit y. */
static inline uint8_t requant(int32_t acc, float mult, int32_t zp, int is_signed)
{
    float v = nearbyintf((float)acc * mult) + (float)zp;
    float lo = is_signed ? -128.f : 0.f, hi = is_signed ? 127.f : 255.f;
    if (!(v >= lo)) v = lo;
    if (v > hi) v = hi;
    return (uint8_t)(int32_t)v;
}

static sk_status op_qlinear_matmul(sk_op_ctx *ctx)
{
    const sk_tensor *a = in_at(ctx, 0), *b = in_at(ctx, 3), *yz = in_at(ctx, 7);
    if (!a || !b || !in_at(ctx, 6)) return sk_error_set(ctx->err, SK_EINVAL, "an input is missing");
    sk_tensor acc = { 0 };
    mm_plan p;
    sk_status st = qmatmul(ctx, a, b, in_at(ctx, 2), in_at(ctx, 5), &p, &acc, SK_INT32, qpack_get(ctx, 3, 5));
    if (st) return st;
    float *as = NULL, *bs = NULL, *ys = NULL;
    int64_t na = 0, nb = 0, ny = 0;
    st = scale_read(ctx, in_at(ctx, 1), p.M, "a_scale", &as, &na);
    if (!st) st = scale_read(ctx, in_at(ctx, 4), p.N, "b_scale", &bs, &nb);
    if (!st) st = scale_read(ctx, in_at(ctx, 6), p.N, "y_scale", &ys, &ny);
    int ydt = yz ? yz->dtype : a->dtype;
    if (!st && ydt != SK_UINT8 && ydt != SK_INT8)
        st = sk_error_set(ctx->err, SK_EUNSUPPORTED, "output type %s is not supported", sk_dtype_name(ydt));
    if (!st && yz && yz->numel != 1)
        st = sk_error_set(ctx->err, SK_EUNSUPPORTED, "y_zero_point must be a single value");
    if (!st) st = sk_tensor_alloc(ctx->out[0], ydt, p.out_rank, p.out_dims, ctx->err);
    if (!st) {
        int32_t yzp = yz ? (int32_t)sk_tensor_get_i64(yz, 0) : 0;
        const int32_t *c = acc.data;
        uint8_t *y = ctx->out[0]->data;
        int64_t M = p.M, N = p.N;
        for (int64_t i = 0; i < p.batch; i++)
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    float mult = as[na == 1 ? 0 : m] * bs[nb == 1 ? 0 : n] / ys[ny == 1 ? 0 : n];
                    size_t o = (size_t)((i * M + m) * N + n);
                    y[o] = requant(c[o], mult, yzp, ydt == SK_INT8);
                }
    }
    sk_tensor_free(&acc);
    free(as);
    free(bs);
    free(ys);
    return st;
}

/* ---- ConvInteger, QLinearConv ------------------------------------------------- */

#define CONV_MAX_SP 8

typedef struct conv_plan {
    int sp;                              /* spatial rank */
    int64_t N, C, M, group, Cg, Mg;
    int64_t in[CONV_MAX_SP], out[CONV_MAX_SP], kern[CONV_MAX_SP];
    int64_t stride[CONV_MAX_SP], dil[CONV_MAX_SP], pad0[CONV_MAX_SP];
    int64_t in_sz, out_sz, kern_sz;      /* products */
} conv_plan;

static sk_status conv_plan_make(sk_op_ctx *ctx, const sk_tensor *x, const sk_tensor *w, conv_plan *p)
{
    char b1[128], b2[128];
    const Onnx__NodeProto *nd = ctx->node;
    memset(p, 0, sizeof *p);
    if (x->rank < 3 || x->rank - 2 > CONV_MAX_SP || w->rank != x->rank)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "convolution of input %s with weight %s is not supported",
                            shape_s(x, b1, sizeof b1), shape_s(w, b2, sizeof b2));
    int sp = x->rank - 2;
    p->sp = sp;
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->M = w->dims[0];
    p->group = sk_node_attr_int(nd, "group", 1);
    if (p->group < 1 || p->C % p->group || p->M % p->group || w->dims[1] != p->C / p->group)
        return sk_error_set(ctx->err, SK_EINVAL, "weight %s does not match input %s with group %lld",
                            shape_s(w, b1, sizeof b1), shape_s(x, b2, sizeof b2), (long long)p->group);
    p->Cg = p->C / p->group;
    p->Mg = p->M / p->group;
    size_t nk = 0, ns = 0, ndl = 0, np = 0;
    const int64_t *ks = sk_node_attr_ints(nd, "kernel_shape", &nk);
    const int64_t *st = sk_node_attr_ints(nd, "strides", &ns);
    const int64_t *dl = sk_node_attr_ints(nd, "dilations", &ndl);
    const int64_t *pd = sk_node_attr_ints(nd, "pads", &np);
    if ((ks && nk != (size_t)sp) || (st && ns != (size_t)sp) || (dl && ndl != (size_t)sp) || (pd && np != 2 * (size_t)sp))
        return sk_error_set(ctx->err, SK_EINVAL, "kernel_shape, strides, dilations or pads do not have %d spatial dims", sp);
    size_t alen = 0;
    const char *ap = sk_node_attr_string(nd, "auto_pad", "NOTSET", &alen);
    int mode = 0; /* 0 explicit, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
    if (alen == 10 && !strncmp(ap, "SAME_UPPER", 10)) mode = 1;
    else if (alen == 10 && !strncmp(ap, "SAME_LOWER", 10)) mode = 2;
    else if (alen == 5 && !strncmp(ap, "VALID", 5)) mode = 3;
    p->in_sz = p->out_sz = p->kern_sz = 1;
    for (int d = 0; d < sp; d++) {
        p->in[d] = x->dims[2 + d];
        p->kern[d] = ks ? ks[d] : w->dims[2 + d];
        if (p->kern[d] != w->dims[2 + d])
            return sk_error_set(ctx->err, SK_EINVAL, "kernel_shape does not match weight %s", shape_s(w, b1, sizeof b1));
        p->stride[d] = st ? st[d] : 1;
        p->dil[d] = dl ? dl[d] : 1;
        if (p->stride[d] < 1 || p->dil[d] < 1)
            return sk_error_set(ctx->err, SK_EINVAL, "strides and dilations must be positive");
        int64_t ek = (p->kern[d] - 1) * p->dil[d] + 1, o;
        if (mode == 1 || mode == 2) {
            o = (p->in[d] + p->stride[d] - 1) / p->stride[d];
            int64_t tot = (o - 1) * p->stride[d] + ek - p->in[d];
            if (tot < 0) tot = 0;
            p->pad0[d] = mode == 1 ? tot / 2 : tot - tot / 2;
        } else {
            int64_t b0 = 0, b1p = 0;
            if (mode == 0 && pd) {
                b0 = pd[d];
                b1p = pd[sp + d];
            }
            if (b0 < 0 || b1p < 0) return sk_error_set(ctx->err, SK_EINVAL, "negative pads");
            p->pad0[d] = b0;
            int64_t span = p->in[d] + b0 + b1p - ek;
            if (span < 0) return sk_error_set(ctx->err, SK_EINVAL, "the kernel is larger than the padded input");
            o = span / p->stride[d] + 1;
        }
        p->out[d] = o;
        p->in_sz *= p->in[d];
        p->out_sz *= o;
        p->kern_sz *= p->kern[d];
    }
    return SK_OK;
}

/* col[(c * kern_sz + kk) * out_sz + o] = x[c][input position] or pad. */
static void im2col(const conv_plan *p, const uint8_t *x, uint8_t pad, uint8_t *col)
{
    int sp = p->sp;
    for (int64_t c = 0; c < p->Cg; c++)
        for (int64_t kk = 0; kk < p->kern_sz; kk++) {
            int64_t kc[CONV_MAX_SP], r = kk;
            for (int d = sp - 1; d >= 0; d--) {
                kc[d] = r % p->kern[d];
                r /= p->kern[d];
            }
            uint8_t *dst = col + (c * p->kern_sz + kk) * p->out_sz;
            const uint8_t *src = x + c * p->in_sz;
            int64_t oc[CONV_MAX_SP] = { 0 };
            for (int64_t o = 0; o < p->out_sz; o++) {
                int64_t off = 0;
                int inside = 1;
                for (int d = 0; d < sp; d++) {
                    int64_t i = oc[d] * p->stride[d] - p->pad0[d] + kc[d] * p->dil[d];
                    if (i < 0 || i >= p->in[d]) inside = 0;
                    off = off * p->in[d] + i;
                }
                dst[o] = inside ? src[off] : pad;
                for (int d = sp - 1; d >= 0; d--) {
                    if (++oc[d] < p->out[d]) break;
                    oc[d] = 0;
                }
            }
        }
}

/* int32 acc[N, M, out...] of (x - xz) conv (w - wz). */
static sk_status conv_integer(sk_op_ctx *ctx, const sk_tensor *x, const sk_tensor *w, const sk_tensor *xz_t,
                              const sk_tensor *wz_t, conv_plan *p, sk_tensor *acc)
{
    char b1[128];
    if ((x->dtype != SK_UINT8 && x->dtype != SK_INT8) || (w->dtype != SK_UINT8 && w->dtype != SK_INT8))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "inputs of types %s and %s are not 8-bit integers",
                            sk_dtype_name(x->dtype), sk_dtype_name(w->dtype));
    sk_status st = conv_plan_make(ctx, x, w, p);
    if (st) return st;
    if (xz_t && xz_t->numel != 1)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "x_zero_point of shape %s is not a single value",
                            shape_s(xz_t, b1, sizeof b1));
    int32_t xz = xz_t ? (int32_t)sk_tensor_get_i64(xz_t, 0) : 0;
    int32_t *wz = NULL;
    int64_t wzn = 0;
    st = zp_read(ctx, wz_t, p->M, 1, "w_zero_point", &wz, &wzn);
    if (st) return st;
    int64_t od[2 + CONV_MAX_SP] = { p->N, p->M };
    for (int d = 0; d < p->sp; d++) od[2 + d] = p->out[d];
    st = sk_tensor_alloc(acc, SK_INT32, 2 + p->sp, od, ctx->err);
    size_t rows = (size_t)(p->Cg * p->kern_sz), cols = (size_t)p->out_sz, csz;
    uint8_t *col = NULL;
    if (!st && (sk_mul_size(rows, cols, &csz) || !(col = malloc(csz + 1)))) st = oom(ctx);
    int32_t xzv = xz;
    for (int64_t n = 0; !st && n < p->N; n++)
        for (int64_t g = 0; !st && g < p->group; g++) {
            const uint8_t *xs = (const uint8_t *)x->data + (size_t)((n * p->C + g * p->Cg) * p->in_sz);
            im2col(p, xs, (uint8_t)xz, col);
            sk_qmat A = { (const uint8_t *)w->data + (size_t)(g * p->Mg) * rows, rows, w->dtype == SK_INT8,
                          wz ? wz + (wzn == 1 ? 0 : g * p->Mg) : NULL, wzn == 1 ? 1 : (size_t)p->Mg };
            sk_qmat B = { col, cols, x->dtype == SK_INT8, xz ? &xzv : NULL, 1 };
            int32_t *C = (int32_t *)acc->data + (size_t)((n * p->M + g * p->Mg) * p->out_sz);
            st = sk_qgemm((size_t)p->Mg, cols, rows, &A, &B, C, cols, ctx->err);
        }
    free(col);
    free(wz);
    return st;
}

static sk_status op_conv_integer(sk_op_ctx *ctx)
{
    const sk_tensor *x = in_at(ctx, 0), *w = in_at(ctx, 1);
    if (!x || !w) return sk_error_set(ctx->err, SK_EINVAL, "an input is missing");
    conv_plan p;
    return conv_integer(ctx, x, w, in_at(ctx, 2), in_at(ctx, 3), &p, ctx->out[0]);
}

static sk_status op_qlinear_conv(sk_op_ctx *ctx)
{
    const sk_tensor *x = in_at(ctx, 0), *w = in_at(ctx, 3), *yz = in_at(ctx, 7), *bias = in_at(ctx, 8);
    if (!x || !w || !in_at(ctx, 6)) return sk_error_set(ctx->err, SK_EINVAL, "an input is missing");
    sk_tensor acc = { 0 };
    conv_plan p;
    sk_status st = conv_integer(ctx, x, w, in_at(ctx, 2), in_at(ctx, 5), &p, &acc);
    if (st) return st;
    float *xs = NULL, *ws = NULL, *ys = NULL;
    int64_t nx = 0, nw = 0, ny = 0;
    st = scale_read(ctx, in_at(ctx, 1), 1, "x_scale", &xs, &nx);
    if (!st) st = scale_read(ctx, in_at(ctx, 4), p.M, "w_scale", &ws, &nw);
    if (!st) st = scale_read(ctx, in_at(ctx, 6), 1, "y_scale", &ys, &ny);
    if (!st && bias && (bias->dtype != SK_INT32 || bias->numel != p.M))
        st = sk_error_set(ctx->err, SK_EINVAL, "bias must be int32 with one value per output channel");
    int ydt = yz ? yz->dtype : x->dtype;
    if (!st && yz && yz->numel != 1)
        st = sk_error_set(ctx->err, SK_EUNSUPPORTED, "y_zero_point must be a single value");
    if (!st) st = sk_tensor_alloc(ctx->out[0], ydt, acc.rank, acc.dims, ctx->err);
    if (!st) {
        int32_t yzp = yz ? (int32_t)sk_tensor_get_i64(yz, 0) : 0;
        const int32_t *c = acc.data;
        uint8_t *y = ctx->out[0]->data;
        for (int64_t n = 0; n < p.N; n++)
            for (int64_t m = 0; m < p.M; m++) {
                float mult = xs[0] * ws[nw == 1 ? 0 : m] / ys[0];
                int32_t bv = bias ? ((const int32_t *)bias->data)[m] : 0;
                size_t o = (size_t)((n * p.M + m) * p.out_sz);
                for (int64_t i = 0; i < p.out_sz; i++)
                    y[o + (size_t)i] = requant((int32_t)((uint32_t)c[o + (size_t)i] + (uint32_t)bv), mult, yzp,
                                               ydt == SK_INT8);
            }
    }
    sk_tensor_free(&acc);
    free(xs);
    free(ws);
    free(ys);
    return st;
}

/* ---- DynamicQuantizeMatMul, MatMulIntegerToFloat (com.microsoft) ------------ */

/* ctx->out[0] = acc * (a_scale * b_scale[n]) + bias[n]. acc is either
 * ctx->out[0] itself (float32 output holding int32 bits, converted in place)
 * or a separate int32 tensor (other output types). */
static sk_status int_to_float(sk_op_ctx *ctx, sk_tensor *acc, const mm_plan *p, float a_scale,
                              const sk_tensor *b_scale, const sk_tensor *bias, int out_dt)
{
    float *bs = NULL;
    int64_t nb = 0;
    sk_status st = scale_read(ctx, b_scale, p->N, "b_scale", &bs, &nb);
    if (st) return st;
    if (bias && bias->numel != p->N) {
        free(bs);
        return sk_error_set(ctx->err, SK_EINVAL, "bias has %lld values for %lld columns", (long long)bias->numel,
                            (long long)p->N);
    }
    int in_place = acc == ctx->out[0];
    if (!in_place) st = sk_tensor_alloc(ctx->out[0], out_dt, p->out_rank, p->out_dims, ctx->err);
    float *bb = st ? NULL : malloc((size_t)p->N * 2 * sizeof *bb + 1);
    if (st || !bb) {
        free(bs);
        return st ? st : oom(ctx);
    }
    /* per column: the multiplier rounded to float, as ONNX Runtime does, and the bias */
    for (int64_t n = 0; n < p->N; n++) {
        bb[n] = a_scale * bs[nb == 1 ? 0 : n];
        bb[p->N + n] = bias ? get_f(bias, n) : 0.f;
    }
    const int32_t *c = acc->data;
    sk_tensor *y = ctx->out[0];
    int64_t rows = p->batch * p->M, N = p->N;
    for (int64_t r = 0; r < rows; r++) {
        const int32_t *cr = c + r * N;
        if (in_place) {
            float *yr = (float *)y->data + r * N;
            int64_t n = 0;
            for (; n + 4 <= N; n += 4) {
                qv4i ci;
                qv4f m4, b4;
                memcpy(&ci, cr + n, sizeof ci);
                memcpy(&m4, bb + n, sizeof m4);
                memcpy(&b4, bb + N + n, sizeof b4);
                qv4f v = __builtin_convertvector(ci, qv4f) * m4 + b4;
                memcpy(yr + n, &v, sizeof v);
            }
            for (; n < N; n++) yr[n] = (float)cr[n] * bb[n] + bb[N + n];
        } else {
            for (int64_t n = 0; n < N; n++) put_f(y, r * N + n, (float)cr[n] * bb[n] + bb[N + n]);
        }
    }
    free(bb);
    free(bs);
    return SK_OK;
}

static sk_status op_dynamic_quantize_matmul(sk_op_ctx *ctx)
{
    const sk_tensor *a = in_at(ctx, 0), *b = in_at(ctx, 1);
    if (!a || !b || !in_at(ctx, 2)) return sk_error_set(ctx->err, SK_EINVAL, "an input is missing");
    if (a->dtype != SK_FLOAT)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "A of type %s is not supported", sk_dtype_name(a->dtype));
    float scale;
    uint8_t zp;
    dyn_params(a->data, (size_t)a->numel, &scale, &zp);
    uint8_t *qbuf = malloc((size_t)a->numel + 1); /* not zeroed: every byte is written */
    if (!qbuf) return oom(ctx);
    dyn_quantize(a->data, (size_t)a->numel, scale, zp, qbuf);
    sk_tensor qa = { 0 }, zt = { 0 };
    sk_status st = sk_tensor_borrow(&qa, SK_UINT8, a->rank, a->dims, qbuf, (size_t)a->numel + 1, ctx->err);
    if (!st) st = sk_tensor_borrow(&zt, SK_UINT8, 0, NULL, &zp, 1, ctx->err);
    mm_plan p;
    if (!st) st = qmatmul(ctx, &qa, b, &zt, in_at(ctx, 3), &p, ctx->out[0], SK_FLOAT, qpack_get(ctx, 1, 3));
    if (!st) st = int_to_float(ctx, ctx->out[0], &p, scale, in_at(ctx, 2), in_at(ctx, 4), SK_FLOAT);
    free(qbuf);
    return st;
}

static sk_status op_matmul_integer_to_float(sk_op_ctx *ctx)
{
    const sk_tensor *a = in_at(ctx, 0), *b = in_at(ctx, 1), *as = in_at(ctx, 2), *bs = in_at(ctx, 3);
    if (!a || !b || !as || !bs) return sk_error_set(ctx->err, SK_EINVAL, "an input is missing");
    if (!is_float_type(as->dtype) || as->numel != 1)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "a_scale must be a single float value");
    sk_tensor acc = { 0 };
    mm_plan p;
    sk_status st;
    if (as->dtype == SK_FLOAT) { /* int32 in the output, converted in place */
        st = qmatmul(ctx, a, b, in_at(ctx, 4), in_at(ctx, 5), &p, ctx->out[0], SK_FLOAT, qpack_get(ctx, 1, 5));
        if (!st) st = int_to_float(ctx, ctx->out[0], &p, get_f(as, 0), bs, in_at(ctx, 6), SK_FLOAT);
    } else {
        st = qmatmul(ctx, a, b, in_at(ctx, 4), in_at(ctx, 5), &p, &acc, SK_INT32, qpack_get(ctx, 1, 5));
        if (!st) st = int_to_float(ctx, &acc, &p, get_f(as, 0), bs, in_at(ctx, 6), as->dtype);
    }
    sk_tensor_free(&acc);
    return st;
}

/* ---- MatMulNBits (com.microsoft) --------------------------------------------- */

static sk_status op_matmul_nbits(sk_op_ctx *ctx)
{
    char b1[128];
    const sk_tensor *a = in_at(ctx, 0), *b = in_at(ctx, 1), *s = in_at(ctx, 2), *z = in_at(ctx, 3);
    const sk_tensor *g = in_at(ctx, 4), *bias = in_at(ctx, 5);
    if (!a || !b || !s) return sk_error_set(ctx->err, SK_EINVAL, "an input is missing");
    int64_t K = sk_node_attr_int(ctx->node, "K", -1), N = sk_node_attr_int(ctx->node, "N", -1);
    int64_t bits = sk_node_attr_int(ctx->node, "bits", 4), bs = sk_node_attr_int(ctx->node, "block_size", -1);
    if (K <= 0 || N <= 0 || bs <= 0 || bits <= 0 || bits > 8 || K > SK_MAX_DIM || N > SK_MAX_DIM || bs > SK_MAX_DIM)
        return sk_error_set(ctx->err, SK_EINVAL, "attributes K=%lld N=%lld bits=%lld block_size=%lld are not valid",
                            (long long)K, (long long)N, (long long)bits, (long long)bs);
    if (sk_node_attr_int(ctx->node, "weight_prepacked", 0))
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "prepacked weights are not supported");
    if (!is_float_type(a->dtype) || a->rank < 1 || a->dims[a->rank - 1] != K)
        return sk_error_set(ctx->err, SK_EINVAL, "A of type %s and shape %s does not have K=%lld columns",
                            sk_dtype_name(a->dtype), shape_s(a, b1, sizeof b1), (long long)K);
    sk_nbits_weight w = { (size_t)K, (size_t)N, (size_t)bs, (int)bits, b->data, NULL, NULL, NULL, NULL };
    sk_status st = sk_nbits_check(&w, ctx->err);
    if (st) return st;
    int64_t nb = (K + bs - 1) / bs, blob = bs * bits / 8, per = 8 / bits, nbytes, nscale, nzp;
    if (sk_mul_i64(N, nb, &nscale) || sk_mul_i64(nscale, blob, &nbytes) || sk_mul_i64(N, (nb + per - 1) / per, &nzp))
        return sk_error_set(ctx->err, SK_EINVAL, "attributes K=%lld N=%lld describe a weight too large to address",
                            (long long)K, (long long)N);
    if (b->dtype != SK_UINT8 || b->numel != nbytes)
        return sk_error_set(ctx->err, SK_EINVAL, "B of type %s and shape %s is not %lld x %lld x %lld bytes",
                            sk_dtype_name(b->dtype), shape_s(b, b1, sizeof b1), (long long)N, (long long)nb,
                            (long long)blob);
    if (!is_float_type(s->dtype) || s->numel != nscale)
        return sk_error_set(ctx->err, SK_EINVAL, "scales of shape %s do not hold %lld x %lld values",
                            shape_s(s, b1, sizeof b1), (long long)N, (long long)nb);
    if (z && !(z->dtype == SK_UINT8 && z->numel == nzp) && !(is_float_type(z->dtype) && z->numel == nscale))
        return sk_error_set(ctx->err, SK_EINVAL, "zero_points of type %s and shape %s fit neither layout",
                            sk_dtype_name(z->dtype), shape_s(z, b1, sizeof b1));
    if (g && (g->dtype != SK_INT32 || g->numel != K))
        return sk_error_set(ctx->err, SK_EINVAL, "g_idx must be int32 with K=%lld values", (long long)K);
    if (bias && (!is_float_type(bias->dtype) || bias->numel != N))
        return sk_error_set(ctx->err, SK_EINVAL, "bias must hold N=%lld float values", (long long)N);
    if (g)
        for (int64_t k = 0; k < K; k++) {
            int32_t v = ((const int32_t *)g->data)[k];
            if (v < 0 || v >= nb) return sk_error_set(ctx->err, SK_EINVAL, "g_idx[%lld]=%d is not a block index", (long long)k, v);
        }
    int64_t od[SK_TENSOR_MAX_RANK];
    memcpy(od, a->dims, (size_t)a->rank * sizeof *od);
    od[a->rank - 1] = N;
    st = sk_tensor_alloc(ctx->out[0], a->dtype, a->rank, od, ctx->err);
    if (st) return st;
    float *abuf = NULL, *sbuf = NULL, *zbuf = NULL, *bbuf = NULL, *ybuf = NULL;
    const float *af = as_f32(a, &abuf), *sf = as_f32(s, &sbuf);
    const float *zf = z && z->dtype != SK_UINT8 ? as_f32(z, &zbuf) : NULL;
    const float *bf = bias ? as_f32(bias, &bbuf) : NULL;
    size_t M = (size_t)(a->numel / K);
    float *y = ctx->out[0]->data;
    if (a->dtype != SK_FLOAT) y = ybuf = malloc(M * (size_t)N * sizeof *y + 1);
    if (!af || !sf || (z && z->dtype != SK_UINT8 && !zf) || (bias && !bf) || !y) {
        st = oom(ctx);
    } else {
        w.scales = sf;
        w.zp_float = zf;
        w.zp_packed = z && z->dtype == SK_UINT8 ? z->data : NULL;
        w.g_idx = g ? g->data : NULL;
        if (g) sk_nbits_gemm_ref(M, af, (size_t)K, &w, bf, y, (size_t)N);
        else st = sk_nbits_gemm(M, af, (size_t)K, &w, bf, y, (size_t)N, ctx->threads, ctx->err);
        if (!st && ybuf)
            for (size_t i = 0; i < M * (size_t)N; i++) put_f(ctx->out[0], (int64_t)i, ybuf[i]);
    }
    free(abuf);
    free(sbuf);
    free(zbuf);
    free(bbuf);
    free(ybuf);
    return st;
}

/* ---- GatherBlockQuantized (com.microsoft) ------------------------------------- */

static sk_status op_gather_block_quantized(sk_op_ctx *ctx)
{
    char b1[128], b2[128];
    const sk_tensor *data = in_at(ctx, 0), *ind = in_at(ctx, 1), *sc = in_at(ctx, 2), *zp = in_at(ctx, 3);
    if (!data || !ind || !sc) return sk_error_set(ctx->err, SK_EINVAL, "an input is missing");
    int dt = data->dtype, r = data->rank;
    if (dt != SK_UINT8 && dt != SK_INT4 && dt != SK_UINT4)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "data of type %s is not supported", sk_dtype_name(dt));
    if (ind->dtype != SK_INT32 && ind->dtype != SK_INT64)
        return sk_error_set(ctx->err, SK_EINVAL, "indices of type %s are not int32 or int64", sk_dtype_name(ind->dtype));
    if (!is_float_type(sc->dtype) || sc->dtype == SK_BFLOAT16)
        return sk_error_set(ctx->err, SK_EUNSUPPORTED, "scales of type %s are not supported", sk_dtype_name(sc->dtype));
    if (zp && zp->dtype != dt)
        return sk_error_set(ctx->err, SK_EINVAL, "zero_points are %s, data is %s", sk_dtype_name(zp->dtype),
                            sk_dtype_name(dt));
    int64_t gax = sk_node_attr_int(ctx->node, "gather_axis", 0), qax = sk_node_attr_int(ctx->node, "quantize_axis", 1);
    int64_t bsz = sk_node_attr_int(ctx->node, "block_size", 128), bits = sk_node_attr_int(ctx->node, "bits", 4);
    if (r < 1 || gax < -r || gax >= r || qax < -r || qax >= r)
        return sk_error_set(ctx->err, SK_EINVAL, "gather_axis %lld or quantize_axis %lld is out of range for data %s",
                            (long long)gax, (long long)qax, shape_s(data, b1, sizeof b1));
    if (gax < 0) gax += r;
    if (qax < 0) qax += r;
    if (bsz < 16 || (bsz & (bsz - 1)) || bsz > SK_MAX_DIM)
        return sk_error_set(ctx->err, SK_EINVAL, "block_size %lld is not a power of two >= 16", (long long)bsz);
    int64_t comp = 1;
    if (dt == SK_UINT8) {
        if (bits != 2 && bits != 4 && bits != 8)
            return sk_error_set(ctx->err, SK_EUNSUPPORTED, "bits=%lld is not supported for uint8 data", (long long)bits);
        if (gax != 0 || qax != r - 1)
            return sk_error_set(ctx->err, SK_EINVAL, "uint8 data needs gather_axis 0 and quantize_axis last");
        comp = 8 / bits;
    } else if (bits != 4) {
        return sk_error_set(ctx->err, SK_EINVAL, "bits=%lld does not match 4-bit data", (long long)bits);
    }
    /* logical shape: the last dim of uint8 data holds comp values per byte */
    int64_t ld[SK_TENSOR_MAX_RANK];
    memcpy(ld, data->dims, (size_t)r * sizeof *ld);
    if (sk_mul_i64(ld[r - 1], comp, &ld[r - 1]))
        return sk_error_set(ctx->err, SK_EINVAL, "data %s is too large", shape_s(data, b1, sizeof b1));
    if (sc->rank != r)
        return sk_error_set(ctx->err, SK_EINVAL, "scales %s and data %s differ in rank", shape_s(sc, b1, sizeof b1),
                            shape_s(data, b2, sizeof b2));
    int64_t nblk = (ld[qax] + bsz - 1) / bsz;
    for (int d = 0; d < r; d++)
        if (sc->dims[d] != (d == qax ? nblk : ld[d]))
            return sk_error_set(ctx->err, SK_EINVAL, "scales %s do not match data %s with block_size %lld",
                                shape_s(sc, b1, sizeof b1), shape_s(data, b2, sizeof b2), (long long)bsz);
    if (zp) {
        int ok = zp->rank == r;
        for (int d = 0; ok && d < r; d++)
            ok = zp->dims[d] == (comp > 1 && d == qax ? (sc->dims[d] + comp - 1) / comp : sc->dims[d]);
        if (!ok)
            return sk_error_set(ctx->err, SK_EINVAL, "zero_points %s do not match scales %s", shape_s(zp, b1, sizeof b1),
                                shape_s(sc, b2, sizeof b2));
    }
    int64_t od[SK_TENSOR_MAX_RANK];
    int orank = r - 1 + ind->rank;
    if (orank > SK_TENSOR_MAX_RANK) return sk_error_set(ctx->err, SK_EUNSUPPORTED, "output rank %d is too large", orank);
    int o = 0;
    for (int d = 0; d < gax; d++) od[o++] = ld[d];
    for (int d = 0; d < ind->rank; d++) od[o++] = ind->dims[d];
    for (int d = (int)gax + 1; d < r; d++) od[o++] = ld[d];
    sk_status st = sk_tensor_alloc_uninit(ctx->out[0], sc->dtype, orank, od, ctx->err);
    if (st) return st;
    int64_t gblock = sk_shape_numel(r - (int)gax - 1, ld + gax + 1), gdim = ld[gax];
    int64_t gM = sk_shape_numel((int)gax, ld), gN = ind->numel;
    int64_t qdim = ld[qax], qN = sk_shape_numel(r - (int)qax - 1, ld + qax + 1);
    int64_t qfull = qdim * qN, sfull = nblk * qN;
    const uint8_t *dp = data->data, *zpp = zp ? zp->data : NULL;
    sk_tensor *y = ctx->out[0];
    if (gax == 0 && qax == r - 1 && sc->dtype == SK_FLOAT) {
        /* embedding rows with blocks along them: a block at a time, the same
         * arithmetic as the element loop below */
        const float *scp = sc->data;
        float *yo = y->data;
        for (int64_t gn = 0; gn < gN; gn++) {
            int64_t iv = sk_tensor_get_i64(ind, gn);
            float *yr = yo + gn * gblock;
            if (iv < -gdim || iv >= gdim) {
                for (int64_t i = 0; i < gblock; i++) yr[i] = 0.0f;
                continue;
            }
            if (iv < 0) iv += gdim;
            if (gblock == 0) continue;
            for (int64_t row = iv * (gblock / qdim), e = 0; e < gblock; row++, e += qdim) {
                int64_t dbase = row * qdim; /* element index of the row's first value */
                for (int64_t j = 0; j < nblk; j++) {
                    int64_t si = row * nblk + j, qi = j, i0 = j * bsz, i1 = i0 + bsz < qdim ? i0 + bsz : qdim;
                    int32_t zv;
                    if (dt == SK_UINT8) {
                        if (!zpp) zv = 1 << (bits - 1);
                        else if (bits == 8) zv = zpp[si];
                        else if (bits == 4) zv = (zpp[row * ((nblk + 1) / 2) + (qi >> 1)] >> ((qi & 1) * 4)) & 15;
                        else zv = (zpp[row * ((nblk + 3) / 4) + (qi >> 2)] >> ((qi & 3) * 2)) & 3;
                    } else if (zpp) {
                        zv = (zpp[si >> 1] >> ((si & 1) * 4)) & 15;
                        if (dt == SK_INT4 && zv >= 8) zv -= 16;
                    } else {
                        zv = 0;
                    }
                    const float sv = scp[si];
                    float *yb = yr + e;
                    if (dt == SK_UINT8 && bits == 8) {
                        const uint8_t *q = dp + dbase;
                        for (int64_t i = i0; i < i1; i++) yb[i] = (float)((int32_t)q[i] - zv) * sv;
                    } else if (dt == SK_UINT8 && bits == 2) {
                        for (int64_t i = i0; i < i1; i++) {
                            int64_t di = dbase + i;
                            yb[i] = (float)((int32_t)((dp[di >> 2] >> ((di & 3) * 2)) & 3) - zv) * sv;
                        }
                    } else {
                        for (int64_t i = i0; i < i1; i++) {
                            int64_t di = dbase + i;
                            int32_t q = (dp[di >> 1] >> ((di & 1) * 4)) & 15;
                            if (dt == SK_INT4 && q >= 8) q -= 16;
                            yb[i] = (float)(q - zv) * sv;
                        }
                    }
                }
            }
        }
        return SK_OK;
    }
    for (int64_t gm = 0; gm < gM; gm++)
        for (int64_t gn = 0; gn < gN; gn++) {
            int64_t iv = sk_tensor_get_i64(ind, gn);
            int64_t obase = (gm * gN + gn) * gblock;
            if (iv < -gdim || iv >= gdim) {
                for (int64_t i = 0; i < gblock; i++) put_f(y, obase + i, 0.0f);
                continue;
            }
            if (iv < 0) iv += gdim;
            int64_t dbase = (gm * gdim + iv) * gblock;
            for (int64_t i = 0; i < gblock; i++) {
                int64_t di = dbase + i;
                int32_t q;
                if (dt == SK_UINT8 && bits == 8) q = dp[di];
                else if (dt == SK_UINT8 && bits == 2) q = (dp[di >> 2] >> ((di & 3) * 2)) & 3;
                else {
                    q = (dp[di >> 1] >> ((di & 1) * 4)) & 15;
                    if (dt == SK_INT4 && q >= 8) q -= 16;
                }
                int64_t x = di / qfull, yy = di % qfull / qN, zz = di % qN;
                int64_t si = x * sfull + yy / bsz * qN + zz;
                int32_t zv;
                if (dt == SK_UINT8) {
                    if (zpp) {
                        int64_t row = si / sfull, qi = si % sfull;
                        if (bits == 8) zv = zpp[si];
                        else if (bits == 4) zv = (zpp[row * ((sfull + 1) / 2) + (qi >> 1)] >> ((qi & 1) * 4)) & 15;
                        else zv = (zpp[row * ((sfull + 3) / 4) + (qi >> 2)] >> ((qi & 3) * 2)) & 3;
                    } else {
                        zv = 1 << (bits - 1);
                    }
                } else if (zpp) {
                    zv = (zpp[si >> 1] >> ((si & 1) * 4)) & 15;
                    if (dt == SK_INT4 && zv >= 8) zv -= 16;
                } else {
                    zv = 0;
                }
                put_f(y, obase + i, (float)(q - zv) * get_f(sc, si));
            }
        }
    return SK_OK;
}

const sk_op_def sk_ops_quant[] = {
    { "", "QuantizeLinear", 10, op_quantize_linear },
    { "", "DequantizeLinear", 10, op_dequantize_linear },
    { "", "DynamicQuantizeLinear", 11, op_dynamic_quantize_linear },
    { "", "MatMulInteger", 10, op_matmul_integer },
    { "", "QLinearMatMul", 10, op_qlinear_matmul },
    { "", "ConvInteger", 10, op_conv_integer },
    { "", "QLinearConv", 10, op_qlinear_conv },
    { "com.microsoft", "MatMulNBits", 1, op_matmul_nbits },
    { "com.microsoft", "GatherBlockQuantized", 1, op_gather_block_quantized },
    { "com.microsoft", "DynamicQuantizeMatMul", 1, op_dynamic_quantize_matmul },
    { "com.microsoft", "MatMulIntegerToFloat", 1, op_matmul_integer_to_float },
    { "com.microsoft", "QuantizeLinear", 1, op_quantize_linear },
    { "com.microsoft", "DequantizeLinear", 1, op_dequantize_linear },
    { NULL, NULL, 0, NULL },
};
