/* Kernels of the elementwise and shape ops (lib/sk_ops_elementwise.c,
 * lib/sk_ops_shape.c), exported for their tests and for other kernels that
 * need them (softmax needs exp, fused activations need gelu, attention needs
 * transpose). Private to lib/ and tests.
 *
 * Every kernel has a plain reference (the _ref function: a scalar loop over the
 * C library's math) and a fast path vectorised with GCC vector extensions
 * (SSE2 / NEON / wasm SIMD128). The fast path must agree with the reference:
 * exactly for arithmetic, min/max, relu, neg, abs and clip; for exp, tanh, erf
 * and sigmoid (polynomial approximations) within 5e-7 relative; for the two
 * gelus within 3e-6 relative where |y| >= 1e-6 and 2e-5 relative down to
 * |y| = 1e-30 (float32 rounding of the exponent's argument, -x^2/2 ~ -60).
 * Fast exp flushes results below 2^-125 (x < -86.5) to zero. The references
 * of the gelus are computed in double precision. The tests check all of this. */
#ifndef SK_KERNELS_EW_H
#define SK_KERNELS_EW_H

#include <stddef.h>
#include <stdint.h>

typedef enum sk_ew_binop {
    SK_EW_ADD, SK_EW_SUB, SK_EW_MUL, SK_EW_DIV, SK_EW_MIN, SK_EW_MAX,
    SK_EW_BINOP_COUNT
} sk_ew_binop;

/* o[i] = a[i*sa] op b[i*sb] for 0 <= i < n. sa and sb are 0 (one value,
 * broadcast) or 1 (contiguous). o may alias a or b when their stride is 1.
 * Min and Max return NaN when either operand is NaN (numpy's minimum/maximum). */
void sk_ew_binary_f32(sk_ew_binop op, float *o, const float *a, int64_t sa,
                      const float *b, int64_t sb, int64_t n);
void sk_ew_binary_f32_ref(sk_ew_binop op, float *o, const float *a, int64_t sa,
                          const float *b, int64_t sb, int64_t n);

/* Unary float ops. The parameters are named after ONNX's attributes; unused
 * ones are ignored. */
typedef enum sk_ew_unop {
    SK_EW_IDENTITY,
    SK_EW_NEG, SK_EW_ABS, SK_EW_RELU,
    SK_EW_EXP, SK_EW_TANH, SK_EW_ERF, SK_EW_SIGMOID,
    SK_EW_GELU,        /* 0.5 x (1 + erf(x / sqrt 2)) */
    SK_EW_GELU_TANH,   /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    SK_EW_LOG, SK_EW_SQRT, SK_EW_RECIPROCAL, SK_EW_SIGN,
    SK_EW_FLOOR, SK_EW_CEIL, SK_EW_ROUND, /* Round: half to even */
    SK_EW_HARDSIGMOID, /* max(0, min(1, alpha x + beta)) */
    SK_EW_HARDSWISH,
    SK_EW_LEAKYRELU,   /* alpha */
    SK_EW_ELU,         /* alpha */
    SK_EW_SELU,        /* alpha, gamma in beta */
    SK_EW_CELU,        /* alpha */
    SK_EW_THRESHOLDEDRELU, /* alpha */
    SK_EW_SHRINK,      /* bias in alpha, lambd in beta */
    SK_EW_SOFTPLUS, SK_EW_SOFTSIGN, SK_EW_MISH,
    SK_EW_SIN, SK_EW_COS, SK_EW_TAN, SK_EW_ASIN, SK_EW_ACOS, SK_EW_ATAN,
    SK_EW_SINH, SK_EW_COSH, SK_EW_ASINH, SK_EW_ACOSH, SK_EW_ATANH,
    SK_EW_UNOP_COUNT
} sk_ew_unop;

/* o[i] = op(x[i]) for 0 <= i < n; o may alias x. */
void sk_ew_unary_f32(sk_ew_unop op, float alpha, float beta, float *o, const float *x, int64_t n);
void sk_ew_unary_f32_ref(sk_ew_unop op, float alpha, float beta, float *o, const float *x, int64_t n);
/* The same op in double precision (the reference for float64 tensors). */
void sk_ew_unary_f64(sk_ew_unop op, double alpha, double beta, double *o, const double *x, int64_t n);

/* o[i] = min(max(x[i], lo), hi); NaN stays NaN. o may alias x. */
void sk_ew_clip_f32(float *o, const float *x, int64_t n, float lo, float hi);
void sk_ew_clip_f32_ref(float *o, const float *x, int64_t n, float lo, float hi);

/* Name of an op for messages and tests ("Exp"). */
const char *sk_ew_unop_name(sk_ew_unop op);

/* dst = src with its axes permuted: dst's dim i is src's dim perm[i]. Both are
 * dense and row-major; es is the element size in bytes (1 to 16); perm is a
 * permutation of 0..rank-1 and rank <= SK_TENSOR_MAX_RANK (the caller checks).
 * The fast version coalesces axes that stay together, copies whole rows when
 * the innermost axis stays innermost, and transposes in cache-sized tiles
 * otherwise; the reference walks dst one element at a time. */
void sk_transpose(void *dst, const void *src, size_t es, int rank, const int64_t *dims, const int *perm);
void sk_transpose_ref(void *dst, const void *src, size_t es, int rank, const int64_t *dims, const int *perm);

#endif
