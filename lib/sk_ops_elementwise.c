/* Elementwise ops: arithmetic, comparison and logic with numpy broadcasting,
 * unary math and activations, Where, Clip, Cast, Identity, Dropout.
 *
 * Every op runs through one broadcasting engine (ew_apply). It maps each
 * tensor's element type to a compute kind (float32 for float32/float16/
 * bfloat16, float64, int64 for signed integers, uint64 for unsigned ones, bool),
 * coalesces the output shape into rows whose inputs are either contiguous or a
 * single broadcast value, and hands rows to a chunk function that works in the
 * compute kind. Tensors already in their compute kind are passed by pointer;
 * the others are converted through small stack buffers, so float16 computes in
 * float32 and int8 in int64 without whole-tensor copies. The float32 chunk
 * functions call the vectorised kernels of sk_kernels_ew.h. */
#include "sk_op.h"
#include "sk_model.h"
#include "sk_kernels_ew.h"
#include "sk_fuse.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================= */
/* float32 kernels: reference and vectorised                                */
/* ======================================================================= */

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f v4_ld(const float *p) { v4f v; memcpy(&v, p, sizeof v); return v; }
static inline void v4_st(float *p, v4f v) { memcpy(p, &v, sizeof v); }
static inline v4f v4_set(float x) { return (v4f){ x, x, x, x }; }
/* m ? a : b, lane by lane (m lanes are all ones or all zeros). */
static inline v4f v4_sel(v4i m, v4f a, v4f b) { return (v4f)(((v4i)a & m) | ((v4i)b & ~m)); }
static inline v4f v4_abs(v4f a) { return (v4f)((v4i)a & (v4i){ 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff }); }
/* |a| with the sign of s. */
static inline v4f v4_copysign(v4f a, v4f s)
{
    const v4i sign = { INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN };
    return (v4f)(((v4i)a & ~sign) | ((v4i)s & sign));
}

/* c0 + c1 x: the first level of Estrin's scheme. Polynomials below are
 * evaluated with it rather than Horner's rule: a shorter dependency chain, so
 * the loops are bound by throughput instead of latency. */
static inline v4f v4_lin(float c0, float c1, v4f x) { return v4_set(c0) + v4_set(c1) * x; }

static inline float sc_max(float x, float y) { return (x > y || x != x) ? x : y; }
static inline float sc_min(float x, float y) { return (x < y || x != x) ? x : y; }
static inline double sc_maxd(double x, double y) { return (x > y || x != x) ? x : y; }
static inline double sc_mind(double x, double y) { return (x < y || x != x) ? x : y; }

/* Kernels written once for any vector width have instances for 4 lanes
 * (SSE2 / NEON / SIMD128) and, on x86-64, 8 (AVX2) and 16 (AVX-512), picked
 * at run time by ew_width. Lanes do the same IEEE operations in every
 * instance (no FMA contraction: -std=c11 keeps it off), so all give the same
 * bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(SK_NO_DISPATCH)
#define SK_EW_X86 1
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

/* Widest instance the CPU runs: 16, 8 or 4 lanes (cached). */
static int ew_width(void)
{
    static int cached;
    int w = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!w) {
        w = 4;
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f")) w = 16;
        else if (__builtin_cpu_supports("avx2")) w = 8;
        __atomic_store_n(&cached, w, __ATOMIC_RELAXED);
    }
    return w;
}
#endif

#define VB_ADD(x, y) ((x) + (y))
#define VB_SUB(x, y) ((x) - (y))
#define VB_MUL(x, y) ((x) * (y))
#define VB_DIV(x, y) ((x) / (y))

/* One binary kernel: two vectors per step for each stride pattern, scalar
 * tail. VOP works on vectors, SOP on floats; min and max propagate NaN. */
#define EW_VBIN(NAME, ATTR, VF, W, VOP, SOP)                                          \
    ATTR static void NAME(float *o, const float *a, int64_t sa, const float *b, int64_t sb, \
                          int64_t n)                                                  \
    {                                                                                 \
        int64_t i = 0;                                                                \
        VF x0, x1, y0, y1;                                                            \
        if (sa && sb) {                                                               \
            for (; i + 2 * W <= n; i += 2 * W) {                                      \
                memcpy(&x0, a + i, sizeof x0);                                        \
                memcpy(&x1, a + i + W, sizeof x1);                                    \
                memcpy(&y0, b + i, sizeof y0);                                        \
                memcpy(&y1, b + i + W, sizeof y1);                                    \
                x0 = VOP(x0, y0);                                                     \
                x1 = VOP(x1, y1);                                                     \
                memcpy(o + i, &x0, sizeof x0);                                        \
                memcpy(o + i + W, &x1, sizeof x1);                                    \
            }                                                                         \
        } else if (sa) {                                                              \
            VF y; /* filled lane by lane: 0 + b would turn -0 into +0 */              \
            for (int l = 0; l < W; l++) y[l] = b[0];                                  \
            for (; i + 2 * W <= n; i += 2 * W) {                                      \
                memcpy(&x0, a + i, sizeof x0);                                        \
                memcpy(&x1, a + i + W, sizeof x1);                                    \
                x0 = VOP(x0, y);                                                      \
                x1 = VOP(x1, y);                                                      \
                memcpy(o + i, &x0, sizeof x0);                                        \
                memcpy(o + i + W, &x1, sizeof x1);                                    \
            }                                                                         \
        } else if (sb) {                                                              \
            VF x;                                                                     \
            for (int l = 0; l < W; l++) x[l] = a[0];                                  \
            for (; i + 2 * W <= n; i += 2 * W) {                                      \
                memcpy(&y0, b + i, sizeof y0);                                        \
                memcpy(&y1, b + i + W, sizeof y1);                                    \
                y0 = VOP(x, y0);                                                      \
                y1 = VOP(x, y1);                                                      \
                memcpy(o + i, &y0, sizeof y0);                                        \
                memcpy(o + i + W, &y1, sizeof y1);                                    \
            }                                                                         \
        }                                                                             \
        for (; i < n; i++) {                                                          \
            float x = a[i * sa], y = b[i * sb];                                       \
            o[i] = SOP(x, y);                                                         \
        }                                                                             \
    }
#define EW_DEFINE_BINARY(SFX, ATTR, VF, VI, W)                        \
    ATTR static inline VF vmin_##SFX(VF a, VF b)                      \
    {                                                                 \
        VI m = (a < b) | (a != a);                                    \
        return (VF)(((VI)a & m) | ((VI)b & ~m));                      \
    }                                                                 \
    ATTR static inline VF vmax_##SFX(VF a, VF b)                      \
    {                                                                 \
        VI m = (a > b) | (a != a);                                    \
        return (VF)(((VI)a & m) | ((VI)b & ~m));                      \
    }                                                                 \
    EW_VBIN(vbin_add_##SFX, ATTR, VF, W, VB_ADD, VB_ADD)              \
    EW_VBIN(vbin_sub_##SFX, ATTR, VF, W, VB_SUB, VB_SUB)              \
    EW_VBIN(vbin_mul_##SFX, ATTR, VF, W, VB_MUL, VB_MUL)              \
    EW_VBIN(vbin_div_##SFX, ATTR, VF, W, VB_DIV, VB_DIV)              \
    EW_VBIN(vbin_min_##SFX, ATTR, VF, W, vmin_##SFX, sc_min)          \
    EW_VBIN(vbin_max_##SFX, ATTR, VF, W, vmax_##SFX, sc_max)          \
    ATTR static void vbin_##SFX(sk_ew_binop op, float *o, const float *a, int64_t sa, \
                                const float *b, int64_t sb, int64_t n) \
    {                                                                 \
        switch (op) {                                                 \
        case SK_EW_ADD: vbin_add_##SFX(o, a, sa, b, sb, n); return;   \
        case SK_EW_SUB: vbin_sub_##SFX(o, a, sa, b, sb, n); return;   \
        case SK_EW_MUL: vbin_mul_##SFX(o, a, sa, b, sb, n); return;   \
        case SK_EW_DIV: vbin_div_##SFX(o, a, sa, b, sb, n); return;   \
        case SK_EW_MIN: vbin_min_##SFX(o, a, sa, b, sb, n); return;   \
        case SK_EW_MAX: vbin_max_##SFX(o, a, sa, b, sb, n); return;   \
        case SK_EW_BINOP_COUNT: break;                                \
        }                                                             \
        assert(0 && "bad binary op");                                 \
    }

EW_DEFINE_BINARY(v4, , v4f, v4i, 4)
#ifdef SK_EW_X86
EW_DEFINE_BINARY(v8, __attribute__((target("avx2"))), v8f, v8i, 8)
EW_DEFINE_BINARY(v16, __attribute__((target("avx512f"))), v16f, v16i, 16)
#endif

void sk_ew_binary_f32(sk_ew_binop op, float *o, const float *a, int64_t sa,
                      const float *b, int64_t sb, int64_t n)
{
#ifdef SK_EW_X86
    if (n >= 32) {
        switch (ew_width()) {
        case 16: vbin_v16(op, o, a, sa, b, sb, n); return;
        case 8: vbin_v8(op, o, a, sa, b, sb, n); return;
        default: break;
        }
    }
#endif
    vbin_v4(op, o, a, sa, b, sb, n);
}

void sk_ew_binary_f32_ref(sk_ew_binop op, float *o, const float *a, int64_t sa,
                          const float *b, int64_t sb, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float x = a[i * sa], y = b[i * sb];
        switch (op) {
        case SK_EW_ADD: o[i] = x + y; break;
        case SK_EW_SUB: o[i] = x - y; break;
        case SK_EW_MUL: o[i] = x * y; break;
        case SK_EW_DIV: o[i] = x / y; break;
        case SK_EW_MIN: o[i] = sc_min(x, y); break;
        case SK_EW_MAX: o[i] = sc_max(x, y); break;
        case SK_EW_BINOP_COUNT: assert(0 && "bad binary op"); return;
        }
    }
}

/* exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial
 * (Cephes expf coefficients), scale by 2^n through the exponent bits. Results
 * below 2^-125 (x < -86.5) flush to zero; x > 88.72 gives +inf. No clamping:
 * lanes outside the range compute garbage that the two masks replace, and a
 * NaN lane stays NaN through the arithmetic. About 30 vector operations. */
static inline v4f v4_exp(v4f x)
{
    const v4i over = x > v4_set(88.72283935546875f), under = x < v4_set(-86.5f);
    const v4f round = v4_set(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
    v4f fx = (x * v4_set(1.44269504088896341f) + round) - round;
    v4f t = x - fx * v4_set(0.693359375f) - fx * v4_set(-2.12194440e-4f);
    v4f z = t * t;
    v4f y = v4_lin(5.0000001201e-1f, 1.6666665459e-1f, t) +
            z * (v4_lin(4.1665795894e-2f, 8.3334519073e-3f, t) + z * v4_lin(1.3981999507e-3f, 1.9875691500e-4f, t));
    y = y * z + t + v4_set(1.0f);
    v4i e = __builtin_convertvector(fx, v4i); /* garbage only in masked lanes */
    v4f scale = (v4f)((e + 126) << 23);       /* 2^(n-1): n-1 stays a normal exponent */
    y = y * scale * v4_set(2.0f);
    y = (v4f)((v4i)y & ~under);
    return v4_sel(over, v4_set(INFINITY), y);
}

/* tanh: odd polynomial below 0.625 (Cephes tanhf), 1 - 2/(exp(2|x|)+1) above. */
static inline v4f v4_tanh(v4f x)
{
    v4f ax = v4_abs(x), z = x * x, z2 = z * z;
    v4f p = v4_lin(-3.33332819422e-1f, 1.33314422036e-1f, z) +
            z2 * (v4_lin(-5.37397155531e-2f, 2.06390887954e-2f, z) + z2 * v4_set(-5.70498872745e-3f));
    p = p * z * x + x;
    v4f e = v4_exp(ax + ax);
    v4f q = v4_set(1.0f) - v4_set(2.0f) / (e + v4_set(1.0f));
    q = v4_copysign(q, x);
    return v4_sel(ax < v4_set(0.625f), p, q);
}

/* erfc(a) for a >= 0 with relative error below 1.2e-7 (Numerical Recipes'
 * Chebyshev fit, erfcc). */
static inline v4f v4_erfc_pos(v4f a)
{
    v4f t = v4_set(1.0f) / (v4_set(1.0f) + v4_set(0.5f) * a);
    v4f t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    v4f p = v4_lin(-1.26551223f, 1.00002368f, t) + t2 * v4_lin(0.37409196f, 0.09678418f, t) +
            t4 * (v4_lin(-0.18628806f, 0.27886807f, t) + t2 * v4_lin(-1.13520398f, 1.48851587f, t)) +
            t8 * v4_lin(-0.82215223f, 0.17087277f, t);
    return t * v4_exp(p - a * a);
}

/* erf without exp or division, about 50 vector operations: x P(x^2) below 1,
 * a degree-12 polynomial in |x| - 2.5 on [1, 3.92] (least-squares fits on
 * Chebyshev nodes; 1.1e-7 relative in float32), 1 above 3.92 (erf is 1 in
 * float32 there).
 *
 * Written once for any vector width (VF floats, VI int32 lanes): instances
 * for 4 lanes (SSE2 / NEON / SIMD128) and, on x86-64, 8 (AVX2) and 16
 * (AVX-512) picked at run time. Every lane does the same IEEE operations in
 * the same order (no contraction into FMAs), so all widths give the same bits
 * and so does the fused gelu below, which calls the same function. */
#define EW_DEFINE_ERF(SFX, ATTR, VF, VI, W)                                                                  \
    ATTR static inline VF erf_##SFX(VF x)                                                                    \
    {                                                                                                        \
        const VI sgn = (VI){ 0 } + (int32_t)0x80000000;                                                      \
        VF ax = (VF)((VI)x & ~sgn), z = x * x, z2 = z * z;                                                   \
        VF p = (1.128379107e+00f + -3.761241436e-01f * z) +                                                  \
               z2 * ((1.128078923e-01f + -2.672698535e-02f * z) + z2 * (4.934513010e-03f + -5.696684239e-04f * z)); \
        p = p * x;                                                                                           \
        VF u = ax - 2.5f, u2 = u * u, u4 = u2 * u2, u8 = u4 * u4;                                            \
        VF q = (9.995930791e-01f + 2.178095980e-03f * u) + u2 * (-5.446658935e-03f + 8.353054523e-03f * u) + \
               u4 * ((-8.615348488e-03f + 6.103817839e-03f * u) + u2 * (-2.817970933e-03f + 5.696478765e-04f * u)) + \
               u8 * ((2.861811954e-04f + -2.785057877e-04f * u) + u2 * (6.208732520e-05f + 2.096307799e-05f * u) + \
                     u4 * -9.166776181e-06f);                                                                \
        VI big = ax > 3.92f;                                                                                 \
        q = (VF)(((VI)((VF){ 0 } + 1.0f) & big) | ((VI)q & ~big));                                          \
        q = (VF)(((VI)q & ~sgn) | ((VI)x & sgn));                                                            \
        VI small = ax < 1.0f;                                                                                \
        return (VF)(((VI)p & small) | ((VI)q & ~small));                                                     \
    }                                                                                                        \
    ATTR static void vun_erf_##SFX(float *o, const float *xs, int64_t n)                                     \
    {                                                                                                        \
        int64_t i = 0;                                                                                       \
        for (; i + W <= n; i += W) {                                                                         \
            VF x;                                                                                            \
            memcpy(&x, xs + i, sizeof x);                                                                    \
            x = erf_##SFX(x);                                                                                \
            memcpy(o + i, &x, sizeof x);                                                                     \
        }                                                                                                    \
        if (i < n) {                                                                                         \
            VF x = { 0 };                                                                                    \
            memcpy(&x, xs + i, (size_t)(n - i) * sizeof *xs);                                                \
            x = erf_##SFX(x);                                                                                \
            memcpy(o + i, &x, (size_t)(n - i) * sizeof *o);                                                  \
        }                                                                                                    \
    }                                                                                                        \
    ATTR static inline VF gelu_graph_##SFX(VF x, const sk_ew_gelu_graph *g)                                  \
    {                                                                                                        \
        VF e = erf_##SFX(g->pre_div ? x / g->k : x * g->k) + g->one;                                         \
        switch (g->order) {                                                                                  \
        case 0: return (x * e) * g->half;                                                                    \
        case 1: return (e * g->half) * x;                                                                    \
        default: return (x * g->half) * e;                                                                   \
        }                                                                                                    \
    }                                                                                                        \
    ATTR static void gelu_graph_run_##SFX(float *o, const float *xs, int64_t n, const sk_ew_gelu_graph *g)   \
    {                                                                                                        \
        int64_t i = 0;                                                                                       \
        for (; i + W <= n; i += W) {                                                                         \
            VF x;                                                                                            \
            memcpy(&x, xs + i, sizeof x);                                                                    \
            x = gelu_graph_##SFX(x, g);                                                                      \
            memcpy(o + i, &x, sizeof x);                                                                     \
        }                                                                                                    \
        if (i < n) {                                                                                         \
            VF x = { 0 };                                                                                    \
            memcpy(&x, xs + i, (size_t)(n - i) * sizeof *xs);                                                \
            x = gelu_graph_##SFX(x, g);                                                                      \
            memcpy(o + i, &x, (size_t)(n - i) * sizeof *o);                                                  \
        }                                                                                                    \
    }

EW_DEFINE_ERF(v4, , v4f, v4i, 4)

#ifdef SK_EW_X86
EW_DEFINE_ERF(v8, __attribute__((target("avx2"))), v8f, v8i, 8)
EW_DEFINE_ERF(v16, __attribute__((target("avx512f"))), v16f, v16i, 16)
#endif

static void vun_erf(float *o, const float *xs, int64_t n)
{
#ifdef SK_EW_X86
    switch (ew_width()) {
    case 16: vun_erf_v16(o, xs, n); return;
    case 8: vun_erf_v8(o, xs, n); return;
    default: break;
    }
#endif
    vun_erf_v4(o, xs, n);
}

void sk_ew_gelu_graph_f32(float *o, const float *x, int64_t n, const sk_ew_gelu_graph *g)
{
#ifdef SK_EW_X86
    switch (ew_width()) {
    case 16: gelu_graph_run_v16(o, x, n, g); return;
    case 8: gelu_graph_run_v8(o, x, n, g); return;
    default: break;
    }
#endif
    gelu_graph_run_v4(o, x, n, g);
}

/* gelu(x) = x/2 * erfc(-x/sqrt 2); erfc of a negative argument is 2 - erfc(|a|).
 * No cancellation for large negative x, unlike 1 + erf. */
static inline v4f v4_gelu(v4f x)
{
    v4f a = x * v4_set(-0.70710678118654752f);
    v4f e = v4_erfc_pos(v4_abs(a));
    e = v4_sel(a < v4_set(0.0f), v4_set(2.0f) - e, e);
    v4f y = v4_set(0.5f) * x * e;
    y = v4_sel(x < v4_set(-20.0f), v4_set(-0.0f), y); /* -inf * 0 is NaN; the limit is 0 */
    return v4_sel(x != x, x, y);
}

/* tanh-gelu: 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)). */
static inline v4f v4_gelu_tanh(v4f x)
{
    v4f u = v4_set(0.79788456080286536f) * (x + v4_set(0.044715f) * x * x * x);
    v4f y = x / (v4_set(1.0f) + v4_exp(v4_set(-2.0f) * u));
    /* x -> -inf: -inf / inf is NaN but the limit is 0 */
    return v4_sel(x < v4_set(-20.0f), v4_set(-0.0f), y);
}

static inline v4f v4_sigmoid(v4f x)
{
    return v4_set(1.0f) / (v4_set(1.0f) + v4_exp(-x));
}

static inline float clamp01f(float y) { return y < 0 ? 0 : y > 1 ? 1 : y; }
static inline double clamp01(double y) { return y < 0 ? 0 : y > 1 ? 1 : y; }
static inline float softplusf(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }
static inline double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
/* Gelu references in double precision, in forms without cancellation for
 * large negative x: 1 + erf(y) = erfc(-y) and 1 + tanh(u) = 2 / (1 + exp(-2u)). */
static double gelu_ref(double x)
{
    if (x == -INFINITY) return -0.0; /* the limit; the formula gives -inf * 0 */
    return 0.5 * x * erfc(-x * 0.70710678118654752440);
}
static double gelu_tanh_ref(double x)
{
    if (x == -INFINITY) return -0.0;
    double u = 0.79788456080286535588 * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * u));
}
static inline float gelu_reff(float x) { return (float)gelu_ref(x); }
static inline float gelu_tanh_reff(float x) { return (float)gelu_tanh_ref(x); }

/* The scalar body of every unary op, for T in {float, double}; M(f) names the
 * C library function for T (expf or exp). */
#define UL(EXPR)                                      \
    for (int64_t i = 0; i < n; i++) {                 \
        const T x = xs[i];                            \
        o[i] = (T)(EXPR);                             \
    }                                                 \
    break
#define UNARY_REF_BODY()                                                             \
    switch (op) {                                                                    \
    case SK_EW_IDENTITY: UL(x);                                                      \
    case SK_EW_NEG: UL(-x);                                                          \
    case SK_EW_ABS: UL(M(fabs)(x));                                                  \
    case SK_EW_RELU: UL(x < 0 ? (T)0 : x);                                           \
    case SK_EW_EXP: UL(M(exp)(x));                                                   \
    case SK_EW_TANH: UL(M(tanh)(x));                                                 \
    case SK_EW_ERF: UL(M(erf)(x));                                                   \
    case SK_EW_SIGMOID: UL((T)1 / ((T)1 + M(exp)(-x)));                              \
    case SK_EW_GELU: UL(M(gelu_ref)(x));                                             \
    case SK_EW_GELU_TANH: UL(M(gelu_tanh_ref)(x));                                   \
    case SK_EW_LOG: UL(M(log)(x));                                                   \
    case SK_EW_SQRT: UL(M(sqrt)(x));                                                 \
    case SK_EW_RECIPROCAL: UL((T)1 / x);                                             \
    case SK_EW_SIGN: UL(x > 0 ? (T)1 : x < 0 ? (T)-1 : x);                           \
    case SK_EW_FLOOR: UL(M(floor)(x));                                               \
    case SK_EW_CEIL: UL(M(ceil)(x));                                                 \
    case SK_EW_ROUND: UL(M(nearbyint)(x));                                           \
    case SK_EW_HARDSIGMOID: UL(M(clamp01)(alpha * x + beta));                        \
    case SK_EW_HARDSWISH: UL(x * M(clamp01)(x / (T)6 + (T)0.5));                     \
    case SK_EW_LEAKYRELU: UL(x < 0 ? alpha * x : x);                                 \
    case SK_EW_ELU: UL(x < 0 ? alpha * M(expm1)(x) : x);                             \
    case SK_EW_SELU: UL(x > 0 ? beta * x : beta * alpha * M(expm1)(x));              \
    case SK_EW_CELU: UL((x > 0 ? x : (T)0) + (x < 0 ? alpha * M(expm1)(x / alpha) : (T)0)); \
    case SK_EW_THRESHOLDEDRELU: UL(x > alpha ? x : (T)0);                            \
    case SK_EW_SHRINK: UL(x < -beta ? x + alpha : x > beta ? x - alpha : (T)0);      \
    case SK_EW_SOFTPLUS: UL(M(softplus)(x));                                         \
    case SK_EW_SOFTSIGN: UL(x / ((T)1 + M(fabs)(x)));                                \
    case SK_EW_MISH: UL(x * M(tanh)(M(softplus)(x)));                                \
    case SK_EW_SIN: UL(M(sin)(x));                                                   \
    case SK_EW_COS: UL(M(cos)(x));                                                   \
    case SK_EW_TAN: UL(M(tan)(x));                                                   \
    case SK_EW_ASIN: UL(M(asin)(x));                                                 \
    case SK_EW_ACOS: UL(M(acos)(x));                                                 \
    case SK_EW_ATAN: UL(M(atan)(x));                                                 \
    case SK_EW_SINH: UL(M(sinh)(x));                                                 \
    case SK_EW_COSH: UL(M(cosh)(x));                                                 \
    case SK_EW_ASINH: UL(M(asinh)(x));                                               \
    case SK_EW_ACOSH: UL(M(acosh)(x));                                               \
    case SK_EW_ATANH: UL(M(atanh)(x));                                               \
    case SK_EW_UNOP_COUNT: assert(0 && "bad unary op"); break;                       \
    }

void sk_ew_unary_f32_ref(sk_ew_unop op, float alpha, float beta, float *o, const float *xs, int64_t n)
{
#define T float
#define M(fn) fn##f
    UNARY_REF_BODY()
#undef M
#undef T
}

void sk_ew_unary_f64(sk_ew_unop op, double alpha, double beta, double *o, const double *xs, int64_t n)
{
#define T double
#define M(fn) fn
    UNARY_REF_BODY()
#undef M
#undef T
}

#define EW_VUN(NAME, VEXPR)                                     \
    static void NAME(float *o, const float *xs, int64_t n)     \
    {                                                          \
        int64_t i = 0;                                         \
        for (; i + 8 <= n; i += 8) {                           \
            v4f x = v4_ld(xs + i), x1 = v4_ld(xs + i + 4);     \
            v4_st(o + i, VEXPR);                               \
            x = x1;                                            \
            v4_st(o + i + 4, VEXPR);                           \
        }                                                      \
        if (i < n) {                                           \
            float tail[8] = { 0 };                             \
            memcpy(tail, xs + i, (size_t)(n - i) * sizeof *xs); \
            v4f x = v4_ld(tail), x1 = v4_ld(tail + 4);         \
            v4_st(tail, VEXPR);                                \
            x = x1;                                            \
            v4_st(tail + 4, VEXPR);                            \
            memcpy(o + i, tail, (size_t)(n - i) * sizeof *o);  \
        }                                                      \
    }

EW_VUN(vun_neg, -x)
EW_VUN(vun_abs, v4_abs(x))
EW_VUN(vun_relu, v4_sel(x < v4_set(0.0f), v4_set(0.0f), x))
EW_VUN(vun_exp, v4_exp(x))
EW_VUN(vun_tanh, v4_tanh(x))
EW_VUN(vun_sigmoid, v4_sigmoid(x))
EW_VUN(vun_gelu, v4_gelu(x))
EW_VUN(vun_gelu_tanh, v4_gelu_tanh(x))

void sk_ew_unary_f32(sk_ew_unop op, float alpha, float beta, float *o, const float *xs, int64_t n)
{
    switch (op) {
    case SK_EW_NEG: vun_neg(o, xs, n); return;
    case SK_EW_ABS: vun_abs(o, xs, n); return;
    case SK_EW_RELU: vun_relu(o, xs, n); return;
    case SK_EW_EXP: vun_exp(o, xs, n); return;
    case SK_EW_TANH: vun_tanh(o, xs, n); return;
    case SK_EW_ERF: vun_erf(o, xs, n); return;
    case SK_EW_SIGMOID: vun_sigmoid(o, xs, n); return;
    case SK_EW_GELU: vun_gelu(o, xs, n); return;
    case SK_EW_GELU_TANH: vun_gelu_tanh(o, xs, n); return;
    default: sk_ew_unary_f32_ref(op, alpha, beta, o, xs, n); return;
    }
}

void sk_ew_clip_f32_ref(float *o, const float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] < lo ? lo : x[i];
        o[i] = v > hi ? hi : v;
    }
}

void sk_ew_clip_f32(float *o, const float *x, int64_t n, float lo, float hi)
{
    const v4f vlo = v4_set(lo), vhi = v4_set(hi);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f v = v4_ld(x + i);
        v = v4_sel(v < vlo, vlo, v);
        v = v4_sel(v > vhi, vhi, v);
        v4_st(o + i, v);
    }
    sk_ew_clip_f32_ref(o + i, x + i, n - i, lo, hi);
}

static const char *const unop_names[SK_EW_UNOP_COUNT] = {
    [SK_EW_IDENTITY] = "Identity", [SK_EW_NEG] = "Neg", [SK_EW_ABS] = "Abs",
    [SK_EW_RELU] = "Relu", [SK_EW_EXP] = "Exp", [SK_EW_TANH] = "Tanh", [SK_EW_ERF] = "Erf",
    [SK_EW_SIGMOID] = "Sigmoid", [SK_EW_GELU] = "Gelu", [SK_EW_GELU_TANH] = "Gelu(tanh)",
    [SK_EW_LOG] = "Log", [SK_EW_SQRT] = "Sqrt", [SK_EW_RECIPROCAL] = "Reciprocal",
    [SK_EW_SIGN] = "Sign", [SK_EW_FLOOR] = "Floor", [SK_EW_CEIL] = "Ceil", [SK_EW_ROUND] = "Round",
    [SK_EW_HARDSIGMOID] = "HardSigmoid", [SK_EW_HARDSWISH] = "HardSwish",
    [SK_EW_LEAKYRELU] = "LeakyRelu", [SK_EW_ELU] = "Elu", [SK_EW_SELU] = "Selu",
    [SK_EW_CELU] = "Celu", [SK_EW_THRESHOLDEDRELU] = "ThresholdedRelu", [SK_EW_SHRINK] = "Shrink",
    [SK_EW_SOFTPLUS] = "Softplus", [SK_EW_SOFTSIGN] = "Softsign", [SK_EW_MISH] = "Mish",
    [SK_EW_SIN] = "Sin", [SK_EW_COS] = "Cos", [SK_EW_TAN] = "Tan", [SK_EW_ASIN] = "Asin",
    [SK_EW_ACOS] = "Acos", [SK_EW_ATAN] = "Atan", [SK_EW_SINH] = "Sinh", [SK_EW_COSH] = "Cosh",
    [SK_EW_ASINH] = "Asinh", [SK_EW_ACOSH] = "Acosh", [SK_EW_ATANH] = "Atanh",
};

const char *sk_ew_unop_name(sk_ew_unop op)
{
    return (unsigned)op < SK_EW_UNOP_COUNT && unop_names[op] ? unop_names[op] : "?";
}

/* ======================================================================= */
/* compute kinds: conversions between tensor dtypes and compute buffers      */
/* ======================================================================= */

enum ew_kind { K_F32, K_F64, K_I64, K_U64, K_BOOL, K_RAW };

/* The dtype a kind's buffers hold natively (tensors of it need no staging). */
static const int kind_native[] = { SK_FLOAT, SK_DOUBLE, SK_INT64, SK_UINT64, SK_BOOL, 0 };

/* Compute kind of a dtype, or -1 for types elementwise ops don't handle. */
static int kind_of(int dtype)
{
    switch (dtype) {
    case SK_FLOAT: case SK_FLOAT16: case SK_BFLOAT16: return K_F32;
    case SK_DOUBLE: return K_F64;
    case SK_INT8: case SK_INT16: case SK_INT32: case SK_INT64: return K_I64;
    case SK_UINT8: case SK_UINT16: case SK_UINT32: case SK_UINT64: return K_U64;
    case SK_BOOL: return K_BOOL;
    default: return -1;
    }
}

static int is_float_kind(int k) { return k == K_F32 || k == K_F64; }
static int is_numeric_kind(int k) { return k == K_F32 || k == K_F64 || k == K_I64 || k == K_U64; }

/* Bytes per element, 0 for sub-byte and variable-size types. */
static size_t elsize_of(int dtype)
{
    if (!sk_dtype_valid(dtype)) return 0;
    unsigned bits = sk_dtype_table[dtype].bits;
    return bits >= 8 ? bits / 8 : 0;
}

/* Float to integer without undefined behaviour: NaN is 0, out of range
 * saturates (then the store wraps to the target width, as C casts do). */
static inline int64_t f2i(double v)
{
    if (v != v) return 0;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}
static inline uint64_t f2u(double v)
{
    if (v != v) return 0;
    if (v >= 18446744073709551616.0) return UINT64_MAX;
    if (v >= 9223372036854775808.0) return (uint64_t)v;
    return (uint64_t)f2i(v);
}

#define CV_ID(v) (v)
#define CV_BOOL(v) ((v) != 0)

#define LD(D, S, EXPR)                                     \
    do {                                                   \
        const S *s_ = (const S *)src + off;                \
        for (int64_t i_ = 0; i_ < n; i_++) {               \
            const S v = s_[i_];                            \
            d_[i_] = (D)(EXPR);                            \
        }                                                  \
    } while (0);                                           \
    break
#define LD_ALL(D, FCV, ICV)                                               \
    do {                                                                  \
        D *d_ = dst;                                                      \
        switch (dtype) {                                                  \
        case SK_FLOAT: LD(D, float, FCV(v));                              \
        case SK_DOUBLE: LD(D, double, FCV(v));                            \
        case SK_FLOAT16: LD(D, uint16_t, FCV(sk_half_to_float(v)));       \
        case SK_BFLOAT16: LD(D, uint16_t, FCV(sk_bf16_to_float(v)));      \
        case SK_BOOL: LD(D, uint8_t, v != 0);                             \
        case SK_INT8: LD(D, int8_t, ICV(v));                              \
        case SK_UINT8: LD(D, uint8_t, ICV(v));                            \
        case SK_INT16: LD(D, int16_t, ICV(v));                            \
        case SK_UINT16: LD(D, uint16_t, ICV(v));                          \
        case SK_INT32: LD(D, int32_t, ICV(v));                            \
        case SK_UINT32: LD(D, uint32_t, ICV(v));                          \
        case SK_INT64: LD(D, int64_t, ICV(v));                            \
        case SK_UINT64: LD(D, uint64_t, ICV(v));                          \
        default: assert(0 && "bad dtype"); break;                         \
        }                                                                 \
    } while (0)

/* dst[0..n) (in kind) = elements off..off+n of src (a tensor of dtype). */
static void ew_load(int kind, void *dst, int dtype, const void *src, int64_t off, int64_t n)
{
    switch (kind) {
    case K_F32: LD_ALL(float, CV_ID, CV_ID); break;
    case K_F64: LD_ALL(double, CV_ID, CV_ID); break;
    case K_I64: LD_ALL(int64_t, f2i, CV_ID); break;
    case K_U64: LD_ALL(uint64_t, f2u, CV_ID); break;
    case K_BOOL: LD_ALL(uint8_t, CV_BOOL, CV_BOOL); break;
    default: assert(0 && "bad kind"); break;
    }
}

#define ST(D, EXPR)                                        \
    do {                                                   \
        D *d_ = (D *)dst + off;                            \
        for (int64_t i_ = 0; i_ < n; i_++) {               \
            const S v = s_[i_];                            \
            d_[i_] = (D)(EXPR);                            \
        }                                                  \
    } while (0);                                           \
    break
#define ST_ALL(ICV, UCV)                                                  \
    do {                                                                  \
        const S *s_ = src;                                                \
        switch (dtype) {                                                  \
        case SK_FLOAT: ST(float, v);                                      \
        case SK_DOUBLE: ST(double, v);                                    \
        case SK_FLOAT16: ST(uint16_t, sk_float_to_half((float)v));        \
        case SK_BFLOAT16: ST(uint16_t, sk_float_to_bf16((float)v));       \
        case SK_BOOL: ST(uint8_t, v != 0);                                \
        case SK_INT8: ST(int8_t, ICV(v));                                 \
        case SK_INT16: ST(int16_t, ICV(v));                               \
        case SK_INT32: ST(int32_t, ICV(v));                               \
        case SK_INT64: ST(int64_t, ICV(v));                               \
        case SK_UINT8: ST(uint8_t, UCV(v));                               \
        case SK_UINT16: ST(uint16_t, UCV(v));                             \
        case SK_UINT32: ST(uint32_t, UCV(v));                             \
        case SK_UINT64: ST(uint64_t, UCV(v));                             \
        default: assert(0 && "bad dtype"); break;                         \
        }                                                                 \
    } while (0)

/* Elements off..off+n of dst (a tensor of dtype) = src[0..n) (in kind).
 * Integers narrow by wrapping; floats to integers truncate and saturate. */
static void ew_store(int dtype, void *dst, int64_t off, int kind, const void *src, int64_t n)
{
    switch (kind) {
    case K_F32: { typedef float S; ST_ALL(f2i, f2u); break; }
    case K_F64: { typedef double S; ST_ALL(f2i, f2u); break; }
    case K_I64: { typedef int64_t S; ST_ALL(CV_ID, CV_ID); break; }
    case K_U64: { typedef uint64_t S; ST_ALL(CV_ID, CV_ID); break; }
    case K_BOOL: { typedef uint8_t S; ST_ALL(CV_ID, CV_ID); break; }
    default: assert(0 && "bad kind"); break;
    }
}

/* ======================================================================= */
/* the broadcasting engine                                                  */
/* ======================================================================= */

#define EW_MAX_IN 3
#define EW_BLK 256

typedef struct ew_op ew_op;

/* Computes n outputs in out (in out_kind) from inputs in[i] (in in_kind[i])
 * read with element strides st[i] (0 or 1). */
typedef sk_status (*ew_fn)(const ew_op *op, void *out, const void *const *in,
                           const int64_t *st, int64_t n, sk_error *err);

struct ew_op {
    ew_fn fn;
    int nin;
    int in_kind[EW_MAX_IN];
    int out_kind;
    int code;             /* op within fn: an sk_ew_binop/unop or a BIN_ code */
    double alpha, beta;   /* float parameters */
    int64_t mode;         /* integer parameter (fmod, direction, ...) */
    size_t elsize;        /* element bytes for K_RAW */
    double lo, hi;        /* Clip bounds for float kinds */
    int64_t ilo, ihi;     /* ... for K_I64 */
    uint64_t ulo, uhi;    /* ... for K_U64 */
};

/* Runs op over out's shape; every in[i] must broadcast to it (the caller has
 * checked). out is allocated. out may be in[0] when they have the same shape. */
static sk_status ew_apply(const ew_op *op, const sk_tensor *const *in, sk_tensor *out, sk_error *err)
{
    const int r = out->rank, nin = op->nin;
    int64_t full[EW_MAX_IN][SK_TENSOR_MAX_RANK];
    int64_t dims[SK_TENSOR_MAX_RANK], st[EW_MAX_IN][SK_TENSOR_MAX_RANK];
    int nd = 0;

    if (out->numel == 0) return SK_OK;
    for (int i = 0; i < nin; i++) {
        const sk_tensor *t = in[i];
        int64_t s = 1;
        assert(t->rank <= r);
        for (int d = r - 1; d >= 0; d--) {
            int di = d - (r - t->rank);
            if (di < 0 || t->dims[di] == 1) {
                full[i][d] = 0;
            } else {
                assert(t->dims[di] == out->dims[d]);
                full[i][d] = s;
                s *= t->dims[di];
            }
        }
    }
    /* Coalesce: drop size-1 dims, merge a dim into the previous one when every
     * input walks them as one (both contiguous, or both broadcast). */
    for (int d = 0; d < r; d++) {
        if (out->dims[d] == 1) continue;
        int merge = nd > 0;
        for (int i = 0; i < nin && merge; i++)
            if (st[i][nd - 1] != full[i][d] * out->dims[d]) merge = 0;
        if (merge) {
            dims[nd - 1] *= out->dims[d];
            for (int i = 0; i < nin; i++) st[i][nd - 1] = full[i][d];
        } else {
            dims[nd] = out->dims[d];
            for (int i = 0; i < nin; i++) st[i][nd] = full[i][d];
            nd++;
        }
    }
    if (nd == 0) {
        dims[0] = 1;
        for (int i = 0; i < nin; i++) st[i][0] = 0;
        nd = 1;
    }

    const int64_t n = dims[nd - 1], outer = out->numel / n;
    int direct[EW_MAX_IN], all_direct = 1;
    size_t es[EW_MAX_IN];
    int64_t inner[EW_MAX_IN], off[EW_MAX_IN] = { 0 }, idx[SK_TENSOR_MAX_RANK] = { 0 };
    for (int i = 0; i < nin; i++) {
        inner[i] = st[i][nd - 1];
        assert(inner[i] == 0 || inner[i] == 1);
        direct[i] = op->in_kind[i] == K_RAW || kind_native[op->in_kind[i]] == in[i]->dtype;
        es[i] = elsize_of(in[i]->dtype);
        all_direct &= direct[i];
    }
    const int out_direct = op->out_kind == K_RAW || kind_native[op->out_kind] == out->dtype;
    const size_t oes = elsize_of(out->dtype);
    const int64_t blk = all_direct && out_direct ? n : EW_BLK;
    _Alignas(64) unsigned char buf[EW_MAX_IN + 1][EW_BLK * 8];

    for (int64_t o = 0; o < outer; o++) {
        for (int64_t c = 0; c < n; c += blk) {
            const int64_t m = n - c < blk ? n - c : blk;
            const void *ip[EW_MAX_IN];
            int64_t is[EW_MAX_IN];
            for (int i = 0; i < nin; i++) {
                const int64_t pos = off[i] + c * inner[i];
                is[i] = inner[i];
                if (direct[i]) {
                    ip[i] = (const unsigned char *)in[i]->data + (size_t)pos * es[i];
                } else {
                    ew_load(op->in_kind[i], buf[i], in[i]->dtype, in[i]->data, pos, inner[i] ? m : 1);
                    ip[i] = buf[i];
                }
            }
            const int64_t opos = o * n + c;
            void *optr = out_direct ? (unsigned char *)out->data + (size_t)opos * oes : buf[EW_MAX_IN];
            sk_status s = op->fn(op, optr, ip, is, m, err);
            if (s) return s;
            if (!out_direct) ew_store(out->dtype, out->data, opos, op->out_kind, optr, m);
        }
        for (int d = nd - 2; d >= 0; d--) {
            for (int i = 0; i < nin; i++) off[i] += st[i][d];
            if (++idx[d] < dims[d]) break;
            for (int i = 0; i < nin; i++) off[i] -= st[i][d] * dims[d];
            idx[d] = 0;
        }
    }
    return SK_OK;
}

/* ======================================================================= */
/* chunk functions                                                          */
/* ======================================================================= */

enum {
    BIN_ADD = SK_EW_ADD, BIN_SUB = SK_EW_SUB, BIN_MUL = SK_EW_MUL, BIN_DIV = SK_EW_DIV,
    BIN_MIN = SK_EW_MIN, BIN_MAX = SK_EW_MAX,
    BIN_POW = SK_EW_BINOP_COUNT, BIN_MOD, BIN_EQ, BIN_LT, BIN_LE, BIN_GT, BIN_GE,
    BIN_AND, BIN_OR, BIN_XOR, BIN_SHL, BIN_SHR, BIN_PRELU
};

static int bin_is_compare(int code) { return code >= BIN_EQ && code <= BIN_GE; }

#define B2(TA, TO, EXPR)                                                 \
    do {                                                                 \
        const TA *A_ = in[0], *B_ = in[1];                               \
        TO *O_ = out;                                                    \
        const int64_t sa_ = st[0], sb_ = st[1];                          \
        for (int64_t i_ = 0; i_ < n; i_++) {                             \
            const TA x = A_[i_ * sa_], y = B_[i_ * sb_];                 \
            O_[i_] = (TO)(EXPR);                                         \
        }                                                                \
    } while (0);                                                         \
    return SK_OK

/* Comparisons shared by every kind. */
#define B_COMPARE(T)                                     \
    case BIN_EQ: B2(T, uint8_t, x == y);                 \
    case BIN_LT: B2(T, uint8_t, x < y);                  \
    case BIN_LE: B2(T, uint8_t, x <= y);                 \
    case BIN_GT: B2(T, uint8_t, x > y);                  \
    case BIN_GE: B2(T, uint8_t, x >= y)

static inline float modf_py(float x, float y, int fmod_)
{
    float r = fmodf(x, y);
    if (!fmod_ && r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
}
static inline double mod_py(double x, double y, int fmod_)
{
    double r = fmod(x, y);
    if (!fmod_ && r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
}

static sk_status bin_f32(const ew_op *op, void *out, const void *const *in, const int64_t *st,
                         int64_t n, sk_error *err)
{
    (void)err;
    const int fm = (int)op->mode;
    switch (op->code) {
    case BIN_ADD: case BIN_SUB: case BIN_MUL: case BIN_DIV: case BIN_MIN: case BIN_MAX:
        sk_ew_binary_f32((sk_ew_binop)op->code, out, in[0], st[0], in[1], st[1], n);
        return SK_OK;
    case BIN_POW: B2(float, float, powf(x, y));
    case BIN_MOD: B2(float, float, modf_py(x, y, fm));
    case BIN_PRELU: B2(float, float, x < 0 ? x * y : x);
    B_COMPARE(float);
    }
    assert(0 && "bad op for float32");
    return SK_EINTERNAL;
}

static sk_status bin_f64(const ew_op *op, void *out, const void *const *in, const int64_t *st,
                         int64_t n, sk_error *err)
{
    (void)err;
    const int fm = (int)op->mode;
    switch (op->code) {
    case BIN_ADD: B2(double, double, x + y);
    case BIN_SUB: B2(double, double, x - y);
    case BIN_MUL: B2(double, double, x * y);
    case BIN_DIV: B2(double, double, x / y);
    case BIN_MIN: B2(double, double, sc_mind(x, y));
    case BIN_MAX: B2(double, double, sc_maxd(x, y));
    case BIN_POW: B2(double, double, pow(x, y));
    case BIN_MOD: B2(double, double, mod_py(x, y, fm));
    case BIN_PRELU: B2(double, double, x < 0 ? x * y : x);
    B_COMPARE(double);
    }
    assert(0 && "bad op for float64");
    return SK_EINTERNAL;
}

/* Integer power by squaring with wrap-around; negative exponents give the
 * truncated result (0 unless the base is 1 or -1). */
static int64_t ipow(int64_t x, int64_t y)
{
    if (y < 0) return x == 1 ? 1 : x == -1 ? ((y & 1) ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)x;
    while (y) {
        if (y & 1) r *= b;
        b *= b;
        y >>= 1;
    }
    return (int64_t)r;
}

static int64_t imod(int64_t x, int64_t y, int fmod_)
{
    if (y == -1) return 0; /* INT64_MIN % -1 overflows in C */
    int64_t r = x % y;
    if (!fmod_ && r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
}

static int64_t idiv(int64_t x, int64_t y)
{
    if (y == -1) return (int64_t)(0 - (uint64_t)x); /* INT64_MIN / -1 wraps */
    return x / y;
}

static int any_zero_i64(const int64_t *b, int64_t sb, int64_t n)
{
    for (int64_t i = 0; i < (sb ? n : 1); i++)
        if (b[i] == 0) return 1;
    return 0;
}

static sk_status bin_i64(const ew_op *op, void *out, const void *const *in, const int64_t *st,
                         int64_t n, sk_error *err)
{
    const int fm = (int)op->mode;
    switch (op->code) {
    case BIN_ADD: B2(int64_t, int64_t, (uint64_t)x + (uint64_t)y);
    case BIN_SUB: B2(int64_t, int64_t, (uint64_t)x - (uint64_t)y);
    case BIN_MUL: B2(int64_t, int64_t, (uint64_t)x * (uint64_t)y);
    case BIN_MIN: B2(int64_t, int64_t, x < y ? x : y);
    case BIN_MAX: B2(int64_t, int64_t, x > y ? x : y);
    case BIN_POW: B2(int64_t, int64_t, ipow(x, y));
    case BIN_PRELU: B2(int64_t, int64_t, x < 0 ? (uint64_t)x * (uint64_t)y : (uint64_t)x);
    case BIN_DIV:
        if (any_zero_i64(in[1], st[1], n)) return sk_error_set(err, SK_EINVAL, "integer division by zero");
        B2(int64_t, int64_t, idiv(x, y));
    case BIN_MOD:
        if (any_zero_i64(in[1], st[1], n)) return sk_error_set(err, SK_EINVAL, "integer modulo by zero");
        B2(int64_t, int64_t, imod(x, y, fm));
    B_COMPARE(int64_t);
    }
    assert(0 && "bad op for int64");
    return SK_EINTERNAL;
}

static sk_status bin_u64(const ew_op *op, void *out, const void *const *in, const int64_t *st,
                         int64_t n, sk_error *err)
{
    switch (op->code) {
    case BIN_ADD: B2(uint64_t, uint64_t, x + y);
    case BIN_SUB: B2(uint64_t, uint64_t, x - y);
    case BIN_MUL: B2(uint64_t, uint64_t, x * y);
    case BIN_MIN: B2(uint64_t, uint64_t, x < y ? x : y);
    case BIN_MAX: B2(uint64_t, uint64_t, x > y ? x : y);
    case BIN_POW: B2(uint64_t, uint64_t, ipow((int64_t)x, (int64_t)y));
    case BIN_PRELU: B2(uint64_t, uint64_t, ((void)y, x));
    case BIN_SHL: B2(uint64_t, uint64_t, y >= 64 ? 0 : x << y);
    case BIN_SHR: B2(uint64_t, uint64_t, y >= 64 ? 0 : x >> y);
    case BIN_DIV: case BIN_MOD:
        if (any_zero_i64(in[1], st[1], n))
            return sk_error_set(err, SK_EINVAL, "integer %s by zero", op->code == BIN_DIV ? "division" : "modulo");
        if (op->code == BIN_DIV) { B2(uint64_t, uint64_t, x / y); }
        B2(uint64_t, uint64_t, x % y);
    B_COMPARE(uint64_t);
    }
    assert(0 && "bad op for uint64");
    return SK_EINTERNAL;
}

static sk_status bin_bool(const ew_op *op, void *out, const void *const *in, const int64_t *st,
                          int64_t n, sk_error *err)
{
    (void)err;
    switch (op->code) {
    case BIN_AND: B2(uint8_t, uint8_t, x && y);
    case BIN_OR: B2(uint8_t, uint8_t, x || y);
    case BIN_XOR: B2(uint8_t, uint8_t, (x != 0) != (y != 0));
    B_COMPARE(uint8_t);
    }
    assert(0 && "bad op for bool");
    return SK_EINTERNAL;
}

static sk_status un_fn(const ew_op *op, void *out, const void *const *in, const int64_t *st,
                       int64_t n, sk_error *err)
{
    (void)err;
    (void)st;
    assert(st[0] == 1 || n == 1);
    const int code = op->code;
    switch (op->in_kind[0]) {
    case K_F32: sk_ew_unary_f32(code, (float)op->alpha, (float)op->beta, out, in[0], n); return SK_OK;
    case K_F64: sk_ew_unary_f64(code, op->alpha, op->beta, out, in[0], n); return SK_OK;
    case K_I64: {
        const int64_t *x = in[0];
        int64_t *o = out;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = x[i];
            switch (code) {
            case SK_EW_NEG: o[i] = (int64_t)(0 - (uint64_t)v); break;
            case SK_EW_ABS: o[i] = v < 0 ? (int64_t)(0 - (uint64_t)v) : v; break;
            case SK_EW_SIGN: o[i] = (v > 0) - (v < 0); break;
            case SK_EW_RELU: o[i] = v < 0 ? 0 : v; break;
            default: o[i] = v; break;
            }
        }
        return SK_OK;
    }
    case K_U64: {
        const uint64_t *x = in[0];
        uint64_t *o = out;
        for (int64_t i = 0; i < n; i++)
            o[i] = code == SK_EW_NEG ? 0 - x[i] : code == SK_EW_SIGN ? x[i] != 0 : x[i];
        return SK_OK;
    }
    }
    assert(0 && "bad kind for unary op");
    return SK_EINTERNAL;
}

enum { PRED_NOT, PRED_ISNAN, PRED_ISINF, PRED_COPY };

/* Bool-producing unary ops (Not, IsNaN, IsInf) and copies in one kind. */
static sk_status pred_fn(const ew_op *op, void *out, const void *const *in, const int64_t *st,
                         int64_t n, sk_error *err)
{
    (void)err;
    (void)st;
    uint8_t *o = out;
    const int pos = (op->mode & 1) != 0, neg = (op->mode & 2) != 0;
    switch (op->code) {
    case PRED_NOT: {
        const uint8_t *x = in[0];
        for (int64_t i = 0; i < n; i++) o[i] = !x[i];
        return SK_OK;
    }
    case PRED_ISNAN: case PRED_ISINF:
        if (op->in_kind[0] == K_F32) {
            const float *x = in[0];
            int64_t i = 0;
            if (op->code == PRED_ISNAN) { /* 4 lanes: x != x, narrowed to bytes */
                typedef uint8_t v4u8 __attribute__((vector_size(4)));
                const v4i one = { 1, 1, 1, 1 };
                for (; i + 4 <= n; i += 4) {
                    v4f v = v4_ld(x + i);
                    v4u8 b = __builtin_convertvector((v != v) & one, v4u8);
                    memcpy(o + i, &b, 4);
                }
            }
            for (; i < n; i++)
                o[i] = op->code == PRED_ISNAN ? isnan(x[i]) : isinf(x[i]) && (x[i] > 0 ? pos : neg);
        } else {
            const double *x = in[0];
            for (int64_t i = 0; i < n; i++)
                o[i] = op->code == PRED_ISNAN ? isnan(x[i]) : isinf(x[i]) && (x[i] > 0 ? pos : neg);
        }
        return SK_OK;
    case PRED_COPY: {
        static const size_t ks[] = { 4, 8, 8, 8, 1 };
        memcpy(out, in[0], (size_t)n * ks[op->in_kind[0]]);
        return SK_OK;
    }
    }
    assert(0 && "bad predicate");
    return SK_EINTERNAL;
}

static sk_status clip_fn(const ew_op *op, void *out, const void *const *in, const int64_t *st,
                         int64_t n, sk_error *err)
{
    (void)err;
    (void)st;
    switch (op->in_kind[0]) {
    case K_F32: sk_ew_clip_f32(out, in[0], n, (float)op->lo, (float)op->hi); return SK_OK;
    case K_F64: {
        const double *x = in[0];
        double *o = out;
        for (int64_t i = 0; i < n; i++) {
            double v = x[i] < op->lo ? op->lo : x[i];
            o[i] = v > op->hi ? op->hi : v;
        }
        return SK_OK;
    }
    case K_I64: {
        const int64_t *x = in[0];
        int64_t *o = out;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = x[i] < op->ilo ? op->ilo : x[i];
            o[i] = v > op->ihi ? op->ihi : v;
        }
        return SK_OK;
    }
    case K_U64: {
        const uint64_t *x = in[0];
        uint64_t *o = out;
        for (int64_t i = 0; i < n; i++) {
            uint64_t v = x[i] < op->ulo ? op->ulo : x[i];
            o[i] = v > op->uhi ? op->uhi : v;
        }
        return SK_OK;
    }
    }
    assert(0 && "bad kind for Clip");
    return SK_EINTERNAL;
}

#define WHERE_LOOP(T)                                                            \
    do {                                                                         \
        const uint8_t *c_ = in[0];                                               \
        const T *x_ = in[1], *y_ = in[2];                                        \
        T *o_ = out;                                                             \
        for (int64_t i_ = 0; i_ < n; i_++)                                       \
            o_[i_] = c_[i_ * st[0]] ? x_[i_ * st[1]] : y_[i_ * st[2]];           \
    } while (0);                                                                 \
    return SK_OK

/* Where on 4-byte elements, 4 lanes at a time: the condition bytes widen to
 * a lane mask. One loop per stride pattern (strides are 0 or 1), so nothing
 * but loads and selects runs inside. */
#define WHERE4_LOOP(SC, SX, SY)                                                   \
    for (; i + 4 <= n; i += 4) {                                                  \
        v4u8 cb;                                                                  \
        v4i xv, yv, m;                                                            \
        if (SC) {                                                                 \
            memcpy(&cb, c + i, 4);                                                \
            m = __builtin_convertvector(cb, v4i) != zero;                         \
        } else {                                                                  \
            m = mc;                                                               \
        }                                                                         \
        if (SX) memcpy(&xv, x + i, 16);                                           \
        else xv = xc;                                                             \
        if (SY) memcpy(&yv, y + i, 16);                                           \
        else yv = yc;                                                             \
        v4i r = (xv & m) | (yv & ~m);                                             \
        memcpy(o + i, &r, 16);                                                    \
    }                                                                             \
    break

static void where4(uint32_t *o, const uint8_t *c, int64_t sc, const uint32_t *x, int64_t sx,
                   const uint32_t *y, int64_t sy, int64_t n)
{
    typedef uint8_t v4u8 __attribute__((vector_size(4)));
    const v4i zero = { 0, 0, 0, 0 };
    const v4i mc = zero - (int32_t)(c[0] != 0), xc = zero + (int32_t)x[0], yc = zero + (int32_t)y[0];
    int64_t i = 0;
    switch ((sc ? 4 : 0) | (sx ? 2 : 0) | (sy ? 1 : 0)) {
    case 0: WHERE4_LOOP(0, 0, 0);
    case 1: WHERE4_LOOP(0, 0, 1);
    case 2: WHERE4_LOOP(0, 1, 0);
    case 3: WHERE4_LOOP(0, 1, 1);
    case 4: WHERE4_LOOP(1, 0, 0);
    case 5: WHERE4_LOOP(1, 0, 1);
    case 6: WHERE4_LOOP(1, 1, 0);
    case 7: WHERE4_LOOP(1, 1, 1);
    }
    for (; i < n; i++) o[i] = c[i * sc] ? x[i * sx] : y[i * sy];
}

static sk_status where_fn(const ew_op *op, void *out, const void *const *in, const int64_t *st,
                          int64_t n, sk_error *err)
{
    (void)err;
    switch (op->elsize) {
    case 1: WHERE_LOOP(uint8_t);
    case 2: WHERE_LOOP(uint16_t);
    case 4: where4(out, in[0], st[0], in[1], st[1], in[2], st[2], n); return SK_OK;
    case 8: WHERE_LOOP(uint64_t);
    }
    assert(0 && "bad element size");
    return SK_EINTERNAL;
}

/* Mean's final step: out = in * alpha. */
static sk_status scale_fn(const ew_op *op, void *out, const void *const *in, const int64_t *st,
                          int64_t n, sk_error *err)
{
    (void)err;
    (void)st;
    if (op->in_kind[0] == K_F32) {
        const float a = (float)op->alpha, *x = in[0];
        float *o = out;
        for (int64_t i = 0; i < n; i++) o[i] = x[i] * a;
    } else {
        const double *x = in[0];
        double *o = out;
        for (int64_t i = 0; i < n; i++) o[i] = x[i] * op->alpha;
    }
    return SK_OK;
}

/* ======================================================================= */
/* kernels                                                                  */
/* ======================================================================= */

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

static sk_status bad_type(const sk_op_ctx *c, const char *what, int dtype)
{
    return sk_error_set(c->err, SK_EUNSUPPORTED, "%s of type %s is not supported", what, sk_dtype_name(dtype));
}

static sk_status same_type(const sk_op_ctx *c, const sk_tensor *a, const sk_tensor *b, size_t ib)
{
    if (a->dtype == b->dtype) return SK_OK;
    return sk_error_set(c->err, SK_EINVAL, "input %zu is %s but input 0 is %s", ib,
                        sk_dtype_name(b->dtype), sk_dtype_name(a->dtype));
}

static sk_status alloc_broadcast(const sk_op_ctx *c, size_t nin, const sk_tensor *const *in,
                                 int dtype, sk_tensor *out)
{
    int r = in[0]->rank;
    int64_t dims[SK_TENSOR_MAX_RANK];
    memcpy(dims, in[0]->dims, sizeof dims);
    for (size_t i = 1; i < nin; i++) {
        int64_t prev[SK_TENSOR_MAX_RANK];
        memcpy(prev, dims, sizeof prev);
        sk_status s = sk_shape_broadcast(r, prev, in[i]->rank, in[i]->dims, &r, dims, c->err);
        if (s) return s;
    }
    return sk_tensor_alloc_uninit(out, dtype, r, dims, c->err);
}

static sk_status binary_run(sk_op_ctx *c, int code)
{
    sk_status s = need_io(c, 2);
    if (s) return s;
    const sk_tensor *in[2] = { input(c, 0), input(c, 1) };
    const int ka = kind_of(in[0]->dtype), kb = kind_of(in[1]->dtype);
    ew_op op = { .nin = 2, .code = code };

    if (code == BIN_POW) {
        if (!is_numeric_kind(ka)) return bad_type(c, "base", in[0]->dtype);
        if (!is_numeric_kind(kb)) return bad_type(c, "exponent", in[1]->dtype);
        int k = (ka == K_F32 && kb == K_F32) ? K_F32
              : (!is_float_kind(ka) && !is_float_kind(kb)) ? K_I64 : K_F64;
        op.in_kind[0] = op.in_kind[1] = op.out_kind = k;
    } else {
        if ((s = same_type(c, in[0], in[1], 1))) return s;
        int ok;
        switch (code) {
        case BIN_AND: case BIN_OR: case BIN_XOR: ok = ka == K_BOOL; break;
        case BIN_SHL: case BIN_SHR: ok = ka == K_U64; break;
        case BIN_EQ: ok = ka >= 0; break;
        default: ok = is_numeric_kind(ka); break;
        }
        if (!ok) return bad_type(c, "input", in[0]->dtype);
        op.in_kind[0] = op.in_kind[1] = ka;
        op.out_kind = bin_is_compare(code) ? K_BOOL : ka;
    }
    switch (op.in_kind[0]) {
    case K_F32: op.fn = bin_f32; break;
    case K_F64: op.fn = bin_f64; break;
    case K_I64: op.fn = bin_i64; break;
    case K_U64: op.fn = bin_u64; break;
    default: op.fn = bin_bool; break;
    }
    if (code == BIN_MOD) {
        op.mode = sk_node_attr_int(c->node, "fmod", 0);
        if (!op.mode && is_float_kind(ka))
            return sk_error_set(c->err, SK_EINVAL, "Mod of floating-point inputs needs fmod=1");
    } else if (code == BIN_SHL) {
        size_t len = 0;
        const char *dir = sk_node_attr_string(c->node, "direction", NULL, &len);
        if (!dir) return sk_error_set(c->err, SK_EINVAL, "attribute direction is missing");
        if (len == 5 && !memcmp(dir, "RIGHT", 5)) op.code = BIN_SHR;
        else if (!(len == 4 && !memcmp(dir, "LEFT", 4)))
            return sk_error_set(c->err, SK_EINVAL, "direction must be LEFT or RIGHT, not '%.*s'", (int)len, dir);
    }
    const int odt = bin_is_compare(code) ? SK_BOOL : in[0]->dtype;
    sk_tensor *out = c->out[0];
    if ((s = alloc_broadcast(c, 2, in, odt, out))) return s;
    return ew_apply(&op, in, out, c->err);
}

static sk_status run_add(sk_op_ctx *c) { return binary_run(c, BIN_ADD); }
static sk_status run_sub(sk_op_ctx *c) { return binary_run(c, BIN_SUB); }
static sk_status run_mul(sk_op_ctx *c) { return binary_run(c, BIN_MUL); }
static sk_status run_div(sk_op_ctx *c) { return binary_run(c, BIN_DIV); }
static sk_status run_pow(sk_op_ctx *c) { return binary_run(c, BIN_POW); }
static sk_status run_mod(sk_op_ctx *c) { return binary_run(c, BIN_MOD); }
static sk_status run_equal(sk_op_ctx *c) { return binary_run(c, BIN_EQ); }
static sk_status run_less(sk_op_ctx *c) { return binary_run(c, BIN_LT); }
static sk_status run_less_equal(sk_op_ctx *c) { return binary_run(c, BIN_LE); }
static sk_status run_greater(sk_op_ctx *c) { return binary_run(c, BIN_GT); }
static sk_status run_greater_equal(sk_op_ctx *c) { return binary_run(c, BIN_GE); }
static sk_status run_and(sk_op_ctx *c) { return binary_run(c, BIN_AND); }
static sk_status run_or(sk_op_ctx *c) { return binary_run(c, BIN_OR); }
static sk_status run_xor(sk_op_ctx *c) { return binary_run(c, BIN_XOR); }
static sk_status run_bitshift(sk_op_ctx *c) { return binary_run(c, BIN_SHL); }

static sk_status run_prelu(sk_op_ctx *c)
{
    sk_status s = need_io(c, 2);
    if (s) return s;
    const sk_tensor *x = input(c, 0), *slope = input(c, 1);
    /* slope broadcasts to x (unidirectionally) */
    int r;
    int64_t dims[SK_TENSOR_MAX_RANK];
    if ((s = sk_shape_broadcast(x->rank, x->dims, slope->rank, slope->dims, &r, dims, c->err))) return s;
    if (r != x->rank || memcmp(dims, x->dims, (size_t)r * sizeof *dims)) {
        char b1[128], b2[128];
        return sk_error_set(c->err, SK_EINVAL, "slope %s does not broadcast to input %s",
                            sk_shape_str(slope->rank, slope->dims, b1, sizeof b1),
                            sk_shape_str(x->rank, x->dims, b2, sizeof b2));
    }
    return binary_run(c, BIN_PRELU);
}

/* Sum, Mean, Min, Max: a fold over any number of inputs. */
static sk_status variadic_run(sk_op_ctx *c, int code, int mean)
{
    if (c->n_in < 1) return sk_error_set(c->err, SK_EINVAL, "needs at least one input");
    sk_status s = need_io(c, c->n_in);
    if (s) return s;
    const sk_tensor *x0 = input(c, 0);
    const int k = kind_of(x0->dtype);
    if (!(code == BIN_ADD ? is_float_kind(k) : is_numeric_kind(k))) return bad_type(c, "input", x0->dtype);
    for (size_t i = 1; i < c->n_in; i++)
        if ((s = same_type(c, x0, input(c, i), i))) return s;
    sk_tensor *out = c->out[0];
    if ((s = alloc_broadcast(c, c->n_in, c->in, x0->dtype, out))) return s;

    ew_op op = { .nin = 2, .code = code, .in_kind = { k, k }, .out_kind = k };
    op.fn = k == K_F32 ? bin_f32 : k == K_F64 ? bin_f64 : k == K_I64 ? bin_i64 : bin_u64;
    if (c->n_in == 1) {
        ew_op cp = { .fn = pred_fn, .nin = 1, .code = PRED_COPY, .in_kind = { k }, .out_kind = k };
        s = ew_apply(&cp, c->in, out, c->err);
    } else {
        s = ew_apply(&op, c->in, out, c->err);
    }
    for (size_t i = 2; i < c->n_in && !s; i++) {
        const sk_tensor *pair[2] = { out, input(c, i) };
        s = ew_apply(&op, pair, out, c->err);
    }
    if (!s && mean && c->n_in > 1) {
        ew_op sc = { .fn = scale_fn, .nin = 1, .in_kind = { k }, .out_kind = k,
                     .alpha = 1.0 / (double)c->n_in };
        const sk_tensor *one[1] = { out };
        s = ew_apply(&sc, one, out, c->err);
    }
    return s;
}

static sk_status run_sum(sk_op_ctx *c) { return variadic_run(c, BIN_ADD, 0); }
static sk_status run_mean(sk_op_ctx *c) { return variadic_run(c, BIN_ADD, 1); }
static sk_status run_min(sk_op_ctx *c) { return variadic_run(c, BIN_MIN, 0); }
static sk_status run_max(sk_op_ctx *c) { return variadic_run(c, BIN_MAX, 0); }

static sk_status run_where(sk_op_ctx *c)
{
    sk_status s = need_io(c, 3);
    if (s) return s;
    const sk_tensor *in[3] = { input(c, 0), input(c, 1), input(c, 2) };
    if (in[0]->dtype != SK_BOOL)
        return sk_error_set(c->err, SK_EINVAL, "condition must be bool, not %s", sk_dtype_name(in[0]->dtype));
    if ((s = same_type(c, in[1], in[2], 2))) return s;
    const size_t es = elsize_of(in[1]->dtype);
    if (es == 0 || es > 8 || in[1]->dtype == SK_STRING) return bad_type(c, "input", in[1]->dtype);
    if ((s = alloc_broadcast(c, 3, in, in[1]->dtype, c->out[0]))) return s;
    ew_op op = { .fn = where_fn, .nin = 3, .in_kind = { K_BOOL, K_RAW, K_RAW }, .out_kind = K_RAW,
                 .elsize = es };
    return ew_apply(&op, in, c->out[0], c->err);
}

/* A unary op from sk_kernels_ew.h: float types always, integers only for the
 * sign-and-magnitude ops. */
static sk_status unary_run(sk_op_ctx *c, sk_ew_unop code, double alpha, double beta)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    const int k = kind_of(x->dtype);
    int ok = is_float_kind(k);
    if (k == K_I64 || k == K_U64)
        ok = code == SK_EW_NEG || code == SK_EW_ABS || code == SK_EW_SIGN || code == SK_EW_RELU;
    if (!ok) return bad_type(c, "input", x->dtype);
    if ((s = sk_tensor_alloc_uninit(c->out[0], x->dtype, x->rank, x->dims, c->err))) return s;
    ew_op op = { .fn = un_fn, .nin = 1, .in_kind = { k }, .out_kind = k, .code = code,
                 .alpha = alpha, .beta = beta };
    return ew_apply(&op, &x, c->out[0], c->err);
}

static double attr_f(const sk_op_ctx *c, const char *name, float def)
{
    return sk_node_attr_float(c->node, name, def);
}

static sk_status run_neg(sk_op_ctx *c) { return unary_run(c, SK_EW_NEG, 0, 0); }
static sk_status run_abs(sk_op_ctx *c) { return unary_run(c, SK_EW_ABS, 0, 0); }
static sk_status run_relu(sk_op_ctx *c) { return unary_run(c, SK_EW_RELU, 0, 0); }
static sk_status run_exp(sk_op_ctx *c) { return unary_run(c, SK_EW_EXP, 0, 0); }
static sk_status run_log(sk_op_ctx *c) { return unary_run(c, SK_EW_LOG, 0, 0); }
static sk_status run_sqrt(sk_op_ctx *c) { return unary_run(c, SK_EW_SQRT, 0, 0); }
static sk_status run_reciprocal(sk_op_ctx *c) { return unary_run(c, SK_EW_RECIPROCAL, 0, 0); }
static sk_status run_sign(sk_op_ctx *c) { return unary_run(c, SK_EW_SIGN, 0, 0); }
static sk_status run_floor(sk_op_ctx *c) { return unary_run(c, SK_EW_FLOOR, 0, 0); }
static sk_status run_ceil(sk_op_ctx *c) { return unary_run(c, SK_EW_CEIL, 0, 0); }
static sk_status run_round(sk_op_ctx *c) { return unary_run(c, SK_EW_ROUND, 0, 0); }
static sk_status run_erf(sk_op_ctx *c) { return unary_run(c, SK_EW_ERF, 0, 0); }
static sk_status run_tanh(sk_op_ctx *c) { return unary_run(c, SK_EW_TANH, 0, 0); }
static sk_status run_sigmoid(sk_op_ctx *c) { return unary_run(c, SK_EW_SIGMOID, 0, 0); }
static sk_status run_hardswish(sk_op_ctx *c) { return unary_run(c, SK_EW_HARDSWISH, 0, 0); }
static sk_status run_softplus(sk_op_ctx *c) { return unary_run(c, SK_EW_SOFTPLUS, 0, 0); }
static sk_status run_softsign(sk_op_ctx *c) { return unary_run(c, SK_EW_SOFTSIGN, 0, 0); }
static sk_status run_mish(sk_op_ctx *c) { return unary_run(c, SK_EW_MISH, 0, 0); }
static sk_status run_sin(sk_op_ctx *c) { return unary_run(c, SK_EW_SIN, 0, 0); }
static sk_status run_cos(sk_op_ctx *c) { return unary_run(c, SK_EW_COS, 0, 0); }
static sk_status run_tan(sk_op_ctx *c) { return unary_run(c, SK_EW_TAN, 0, 0); }
static sk_status run_asin(sk_op_ctx *c) { return unary_run(c, SK_EW_ASIN, 0, 0); }
static sk_status run_acos(sk_op_ctx *c) { return unary_run(c, SK_EW_ACOS, 0, 0); }
static sk_status run_atan(sk_op_ctx *c) { return unary_run(c, SK_EW_ATAN, 0, 0); }
static sk_status run_sinh(sk_op_ctx *c) { return unary_run(c, SK_EW_SINH, 0, 0); }
static sk_status run_cosh(sk_op_ctx *c) { return unary_run(c, SK_EW_COSH, 0, 0); }
static sk_status run_asinh(sk_op_ctx *c) { return unary_run(c, SK_EW_ASINH, 0, 0); }
static sk_status run_acosh(sk_op_ctx *c) { return unary_run(c, SK_EW_ACOSH, 0, 0); }
static sk_status run_atanh(sk_op_ctx *c) { return unary_run(c, SK_EW_ATANH, 0, 0); }
static sk_status run_hardsigmoid(sk_op_ctx *c)
{
    return unary_run(c, SK_EW_HARDSIGMOID, attr_f(c, "alpha", 0.2f), attr_f(c, "beta", 0.5f));
}
static sk_status run_leakyrelu(sk_op_ctx *c) { return unary_run(c, SK_EW_LEAKYRELU, attr_f(c, "alpha", 0.01f), 0); }
static sk_status run_elu(sk_op_ctx *c) { return unary_run(c, SK_EW_ELU, attr_f(c, "alpha", 1.0f), 0); }
static sk_status run_celu(sk_op_ctx *c) { return unary_run(c, SK_EW_CELU, attr_f(c, "alpha", 1.0f), 0); }
static sk_status run_selu(sk_op_ctx *c)
{
    return unary_run(c, SK_EW_SELU, attr_f(c, "alpha", 1.67326319217681884765625f),
                     attr_f(c, "gamma", 1.05070102214813232421875f));
}
static sk_status run_thresholdedrelu(sk_op_ctx *c)
{
    return unary_run(c, SK_EW_THRESHOLDEDRELU, attr_f(c, "alpha", 1.0f), 0);
}
static sk_status run_shrink(sk_op_ctx *c)
{
    return unary_run(c, SK_EW_SHRINK, attr_f(c, "bias", 0.0f), attr_f(c, "lambd", 0.5f));
}

static sk_status run_gelu(sk_op_ctx *c)
{
    size_t len = 0;
    const char *a = sk_node_attr_string(c->node, "approximate", "none", &len);
    if (len == 4 && !memcmp(a, "tanh", 4)) return unary_run(c, SK_EW_GELU_TANH, 0, 0);
    if (len == 4 && !memcmp(a, "none", 4)) return unary_run(c, SK_EW_GELU, 0, 0);
    return sk_error_set(c->err, SK_EINVAL, "approximate must be none or tanh, not '%.*s'", (int)len, a);
}

static sk_status predicate_run(sk_op_ctx *c, int code, int64_t mode)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    const int k = kind_of(x->dtype);
    if (code == PRED_NOT ? k != K_BOOL : !is_float_kind(k)) return bad_type(c, "input", x->dtype);
    if ((s = sk_tensor_alloc_uninit(c->out[0], SK_BOOL, x->rank, x->dims, c->err))) return s;
    ew_op op = { .fn = pred_fn, .nin = 1, .in_kind = { k }, .out_kind = K_BOOL, .code = code, .mode = mode };
    return ew_apply(&op, &x, c->out[0], c->err);
}

static sk_status run_not(sk_op_ctx *c) { return predicate_run(c, PRED_NOT, 0); }
static sk_status run_isnan(sk_op_ctx *c) { return predicate_run(c, PRED_ISNAN, 0); }
static sk_status run_isinf(sk_op_ctx *c)
{
    int64_t pos = sk_node_attr_int(c->node, "detect_positive", 1) != 0;
    int64_t neg = sk_node_attr_int(c->node, "detect_negative", 1) != 0;
    return predicate_run(c, PRED_ISINF, pos | neg << 1);
}

static sk_status clip_run(sk_op_ctx *c, const sk_tensor *lo, const sk_tensor *hi, double flo, double fhi)
{
    const sk_tensor *x = input(c, 0);
    const int k = kind_of(x->dtype);
    sk_status s;
    if (!is_numeric_kind(k)) return bad_type(c, "input", x->dtype);
    ew_op op = { .fn = clip_fn, .nin = 1, .in_kind = { k }, .out_kind = k,
                 .lo = flo, .hi = fhi, .ilo = INT64_MIN, .ihi = INT64_MAX, .ulo = 0, .uhi = UINT64_MAX };
    const sk_tensor *b[2] = { lo, hi };
    for (int i = 0; i < 2; i++) {
        if (!b[i]) continue;
        if ((s = same_type(c, x, b[i], (size_t)i + 1))) return s;
        if (b[i]->numel != 1)
            return sk_error_set(c->err, SK_EINVAL, "%s must be a scalar, not %lld elements",
                                i ? "max" : "min", (long long)b[i]->numel);
        double f = sk_tensor_get_f64(b[i], 0);
        int64_t v = sk_tensor_get_i64(b[i], 0);
        if (i == 0) { op.lo = f; op.ilo = v; op.ulo = (uint64_t)v; }
        else { op.hi = f; op.ihi = v; op.uhi = (uint64_t)v; }
    }
    if ((s = sk_tensor_alloc_uninit(c->out[0], x->dtype, x->rank, x->dims, c->err))) return s;
    return ew_apply(&op, &x, c->out[0], c->err);
}

static sk_status run_clip_1(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    return clip_run(c, NULL, NULL, sk_node_attr_float(c->node, "min", -FLT_MAX),
                    sk_node_attr_float(c->node, "max", FLT_MAX));
}

static sk_status run_clip_11(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    return clip_run(c, input(c, 1), input(c, 2), -INFINITY, INFINITY);
}

/* ---- Cast ---------------------------------------------------------------- */

/* Round half to even and saturate into a 4-bit range. */
static int64_t cast4_f(double v, int is_signed)
{
    double lo = is_signed ? -8 : 0, hi = is_signed ? 7 : 15;
    if (v != v) return 0;
    v = nearbyint(v);
    return (int64_t)(v < lo ? lo : v > hi ? hi : v);
}

/* Casts from or to int4/uint4, one element at a time. */
static sk_status cast_4bit(const sk_op_ctx *c, const sk_tensor *x, int to)
{
    sk_tensor *y = c->out[0];
    sk_status s = sk_tensor_alloc(y, to, x->rank, x->dims, c->err);
    if (s) return s;
    const int src_float = kind_of(x->dtype) == K_F32 || kind_of(x->dtype) == K_F64;
    for (int64_t i = 0; i < x->numel; i++) {
        if (to == SK_INT4 || to == SK_UINT4) {
            int64_t v;
            if (src_float) {
                v = cast4_f(sk_tensor_get_f64(x, i), to == SK_INT4);
            } else {
                v = sk_tensor_get_i64(x, i);
                int64_t lo = to == SK_INT4 ? -8 : 0, hi = to == SK_INT4 ? 7 : 15;
                if (x->dtype == SK_UINT64 && v < 0) v = hi; /* a huge uint64 */
                v = v < lo ? lo : v > hi ? hi : v;
            }
            uint8_t *p = (uint8_t *)y->data + (i >> 1);
            unsigned sh = (unsigned)(i & 1) * 4;
            *p = (uint8_t)((*p & ~(0xfu << sh)) | (((unsigned)v & 0xfu) << sh));
        } else {
            /* from 4-bit: every value is exact in any target type */
            int64_t v = sk_tensor_get_i64(x, i);
            ew_store(to, y->data, i, K_I64, &v, 1);
        }
    }
    return SK_OK;
}

static sk_status cast_run(sk_op_ctx *c, const sk_tensor *x, int to)
{
    sk_tensor *y = c->out[0];
    if (!sk_dtype_valid(to)) return sk_error_set(c->err, SK_EINVAL, "target type %d is not a valid type", to);
    const int kx = kind_of(x->dtype), ky = kind_of(to);
    const int x4 = x->dtype == SK_INT4 || x->dtype == SK_UINT4, y4 = to == SK_INT4 || to == SK_UINT4;
    if ((kx < 0 && !x4)) return bad_type(c, "input", x->dtype);
    if (ky < 0 && !y4) return bad_type(c, "target", to);
    if (x->dtype == to) return sk_tensor_copy(y, x, c->err);
    if (x4 || y4) {
        if ((x4 && ky < 0) || (y4 && kx < 0)) return bad_type(c, "input", x->dtype);
        return cast_4bit(c, x, to);
    }
    sk_status s = sk_tensor_alloc_uninit(y, to, x->rank, x->dims, c->err);
    if (s) return s;
    /* Stage through the source's compute kind; the store converts. */
    ew_op op = { .fn = pred_fn, .nin = 1, .code = PRED_COPY, .in_kind = { kx }, .out_kind = kx };
    return ew_apply(&op, &x, y, c->err);
}

static sk_status run_cast(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const Onnx__AttributeProto *to = sk_node_attr(c->node, "to");
    if (!to) return sk_error_set(c->err, SK_EINVAL, "attribute to is missing");
    int64_t t = sk_node_attr_int(c->node, "to", 0);
    if (t <= 0 || t >= SK_DTYPE_COUNT) return sk_error_set(c->err, SK_EINVAL, "target type %lld is not valid", (long long)t);
    return cast_run(c, input(c, 0), (int)t);
}

static sk_status run_castlike(sk_op_ctx *c)
{
    sk_status s = need_io(c, 2);
    if (s) return s;
    return cast_run(c, input(c, 0), input(c, 1)->dtype);
}

/* ---- Identity, Dropout ----------------------------------------------------- */

static sk_status run_identity(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    return sk_tensor_copy(c->out[0], input(c, 0), c->err);
}

static sk_status dropout_mask(sk_op_ctx *c, const sk_tensor *x, int dtype)
{
    if (c->n_out < 2 || !c->out[1]) return SK_OK;
    sk_tensor *m = c->out[1];
    sk_status s = sk_tensor_alloc(m, dtype, x->rank, x->dims, c->err);
    if (s) return s;
    if (dtype == SK_BOOL) {
        memset(m->data, 1, m->nbytes);
    } else {
        if (kind_of(dtype) < 0) return bad_type(c, "mask", dtype);
        for (int64_t i = 0; i < m->numel; i++) {
            const int64_t one = 1;
            ew_store(dtype, m->data, i, K_I64, &one, 1);
        }
    }
    return SK_OK;
}

/* Dropout is inference's identity, with a mask of ones. The training flags
 * (is_test before opset 7, the training_mode input from 12) are ignored:
 * PyTorch's dynamo exporter sets training_mode to true in eval-mode models,
 * and ONNX Runtime's graph optimizer removes Dropout nodes the same way. */
static sk_status run_dropout(sk_op_ctx *c)
{
    sk_status s = need_io(c, 1);
    if (s) return s;
    const sk_tensor *x = input(c, 0);
    if ((s = sk_tensor_copy(c->out[0], x, c->err))) return s;
    /* the mask is bool from opset 10, the data's type before */
    return dropout_mask(c, x, c->opset >= 10 ? SK_BOOL : x->dtype);
}

const sk_op_def sk_ops_elementwise[] = {
    { "", "Add", 7, run_add },
    { "", "Sub", 7, run_sub },
    { "", "Mul", 7, run_mul },
    { "", "Div", 7, run_div },
    { "", "Pow", 7, run_pow },
    { "", "Mod", 10, run_mod },
    { "", "PRelu", 7, run_prelu },
    { "", "BitShift", 11, run_bitshift },
    { "", "Equal", 7, run_equal },
    { "", "Less", 7, run_less },
    { "", "LessOrEqual", 12, run_less_equal },
    { "", "Greater", 7, run_greater },
    { "", "GreaterOrEqual", 12, run_greater_equal },
    { "", "And", 7, run_and },
    { "", "Or", 7, run_or },
    { "", "Xor", 7, run_xor },
    { "", "Not", 1, run_not },
    { "", "Sum", 6, run_sum },
    { "", "Mean", 6, run_mean },
    { "", "Min", 6, run_min },
    { "", "Max", 6, run_max },
    { "", "Where", 9, run_where },
    { "", "Neg", 1, run_neg },
    { "", "Abs", 1, run_abs },
    { "", "Exp", 1, run_exp },
    { "", "Log", 1, run_log },
    { "", "Sqrt", 1, run_sqrt },
    { "", "Reciprocal", 1, run_reciprocal },
    { "", "Sign", 9, run_sign },
    { "", "Floor", 1, run_floor },
    { "", "Ceil", 1, run_ceil },
    { "", "Round", 11, run_round },
    { "", "Erf", 9, run_erf },
    { "", "Tanh", 1, run_tanh },
    { "", "Sigmoid", 1, run_sigmoid },
    { "", "HardSigmoid", 1, run_hardsigmoid },
    { "", "HardSwish", 14, run_hardswish },
    { "", "Relu", 1, run_relu },
    { "", "LeakyRelu", 1, run_leakyrelu },
    { "", "Elu", 1, run_elu },
    { "", "Selu", 1, run_selu },
    { "", "Celu", 12, run_celu },
    { "", "ThresholdedRelu", 10, run_thresholdedrelu },
    { "", "Shrink", 9, run_shrink },
    { "", "Softplus", 1, run_softplus },
    { "", "Softsign", 1, run_softsign },
    { "", "Gelu", 20, run_gelu },
    { "", "Mish", 18, run_mish },
    { "", "Sin", 7, run_sin },
    { "", "Cos", 7, run_cos },
    { "", "Tan", 7, run_tan },
    { "", "Asin", 7, run_asin },
    { "", "Acos", 7, run_acos },
    { "", "Atan", 7, run_atan },
    { "", "Sinh", 9, run_sinh },
    { "", "Cosh", 9, run_cosh },
    { "", "Asinh", 9, run_asinh },
    { "", "Acosh", 9, run_acosh },
    { "", "Atanh", 9, run_atanh },
    { "", "IsNaN", 9, run_isnan },
    { "", "IsInf", 10, run_isinf },
    { "", "Clip", 1, run_clip_1 },
    { "", "Clip", 11, run_clip_11 },
    { "", "Cast", 6, run_cast },
    { "", "CastLike", 15, run_castlike },
    { "", "Identity", 1, run_identity },
    { "", "Dropout", 1, run_dropout },
    { NULL, NULL, 0, NULL },
};
