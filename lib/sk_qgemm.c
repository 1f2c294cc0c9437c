/* 8-bit GEMM and N-bit block-quantized GEMM (see sk_qgemm.h).
 *
 * The portable kernels are written once, below the "kernel template" line, in
 * terms of a vector width VB and a few macros, and this file includes itself
 * to instantiate them: with 16-byte vectors everywhere (SSE2 on x86-64, SIMD128
 * on wasm32, plain C elsewhere through GCC's generic vector lowering) and, on
 * x86-64 with GCC, with 32-byte vectors under target("avx2,fma"). On x86-64 an
 * AVX-512 VNNI int8 kernel (intrinsics) comes first when the CPU has it. The
 * choice is made at run time (sk_qgemm_select forces one for tests). On
 * wasm32 the int8 product has its own path (the "wasm32 SIMD128" section),
 * the same arithmetic as the 16-byte kernels laid out for V8.
 *
 * int8, portable: zero points are subtracted while packing and both operands
 * widened to int16 (differences of 8-bit values fit, and so do pairs of their
 * products in int32). B is packed in panels of QNR columns where each k-pair
 * of a column sits in one 32-bit lane, A in blocks of QMR rows where each
 * k-pair of a row is one 32-bit word, so the inner step is a broadcast of A's
 * pair and a pairwise multiply-add (pmaddwd, i32x4.dot_i16x8_s) into int32.
 *
 * int8, VNNI: vpdpbusd on bytes (four k per lane), zero points applied after
 * the product with row and column sums (see the section below).
 *
 * N-bit: for a few rows, the packed values are decoded a block at a time and
 * dotted with each row directly (scale applied once per block, zero point
 * through the block sums of A); otherwise chunks of columns are dequantized
 * (128K floats at a time, so they stay in L2) and multiplied with
 * sk_gemm_f32. Either way the packed weights are read once per call. */
#ifndef SK_QGEMM_TEMPLATE

#include "sk_qgemm.h"
#include "sk_gemm.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SK_QGEMM_X86_AVX2 1
#include <immintrin.h>
#endif

typedef uint8_t v16u8 __attribute__((vector_size(16)));
typedef int16_t v8i16 __attribute__((vector_size(16)));
typedef int32_t v4i32 __attribute__((vector_size(16)));
typedef uint32_t v4u32 __attribute__((vector_size(16)));
typedef uint64_t v2u64 __attribute__((vector_size(16)));
typedef float v4f __attribute__((vector_size(16)));
#ifdef SK_QGEMM_X86_AVX2
typedef int16_t v16i16 __attribute__((vector_size(32)));
typedef int32_t v8i32 __attribute__((vector_size(32)));
typedef float v8f __attribute__((vector_size(32)));
#endif

/* Kernel variant forced by sk_qgemm_select: 0 best available, 1 the 16-byte
 * kernels, 2 at most AVX2, 3 AVX-512 VNNI. */
static int forced_variant;

#define NBITS_GEMV_ROWS 4               /* up to this many rows: column at a time */
#define NBITS_CHUNK_FLOATS (1u << 17)   /* dequantized floats per sk_gemm_f32 call */

/* Scratch memory: 64-byte aligned, size rounded up as aligned_alloc needs. */
static void *scratch_alloc(size_t n, size_t elem)
{
    size_t bytes;
    if (sk_mul_size(n, elem, &bytes) || bytes > SIZE_MAX - 64) return NULL;
    bytes = (bytes + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}

struct sk_qgemm_packed {
    size_t K, N;
    sk_qmat B;          /* the caller's B, zero points copied into zb */
    int32_t *zb;
    int vnni;           /* 1: data holds the VNNI blocks */
    int need_cb;        /* some column has cb != 0 */
    int8_t *data;
    int32_t *colsum;    /* per column: sum over k of b' */
    int32_t *cb;        /* per column: 128 * unsignedB - zb */
    int16_t *w16;       /* wasm32: B as the int16 panels of qgemm_wasm (zero points applied) */
};

/* ---- reference kernels ------------------------------------------------- */

static inline int32_t qget(const sk_qmat *q, size_t r, size_t c)
{
    uint8_t v = q->data[r * q->ld + c];
    return q->is_signed ? (int32_t)(int8_t)v : (int32_t)v;
}

static inline int32_t qzp(const sk_qmat *q, size_t i)
{
    if (!q->zp) return 0;
    return q->zp_count == 1 ? q->zp[0] : q->zp[i];
}

void sk_qgemm_ref(size_t M, size_t N, size_t K, const sk_qmat *A, const sk_qmat *B, int32_t *C, size_t ldc)
{
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            uint32_t acc = 0; /* wraps like int32 hardware accumulation */
            int32_t za = qzp(A, m), zb = qzp(B, n);
            for (size_t k = 0; k < K; k++)
                acc += (uint32_t)((qget(A, m, k) - za) * (qget(B, k, n) - zb));
            C[m * ldc + n] = (int32_t)acc;
        }
}

void sk_sgemm_naive(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb,
                    float *Y, size_t ldy)
{
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            float acc = 0;
            for (size_t k = 0; k < K; k++) acc += A[m * lda + k] * B[k * ldb + n];
            Y[m * ldy + n] = acc;
        }
}

/* ---- N-bit weights ------------------------------------------------------ */

static size_t nbits_blocks(const sk_nbits_weight *w) { return (w->K + w->block_size - 1) / w->block_size; }
static size_t nbits_blob(const sk_nbits_weight *w) { return w->block_size * (size_t)w->bits / 8; }

sk_status sk_nbits_check(const sk_nbits_weight *w, sk_error *err)
{
    if (w->bits != 2 && w->bits != 4 && w->bits != 8)
        return sk_error_set(err, SK_EUNSUPPORTED, "bits=%d is not supported (2, 4 or 8)", w->bits);
    if (w->block_size < 16 || (w->block_size & (w->block_size - 1)) || w->block_size > ((size_t)1 << 24))
        return sk_error_set(err, SK_EINVAL, "block_size %zu is not a power of two >= 16", w->block_size);
    if (w->K == 0 || w->N == 0) return SK_OK;
    size_t nb = nbits_blocks(w), t;
    if (sk_mul_size(w->N, nb, &t) || sk_mul_size(t, nbits_blob(w), &t) || sk_mul_size(nb, w->block_size, &t))
        return sk_error_set(err, SK_EINVAL, "weight of K=%zu N=%zu is too large", w->K, w->N);
    return SK_OK;
}

static inline int nbits_zp(const sk_nbits_weight *w, size_t n, size_t j, size_t nb, float *zf)
{
    if (w->zp_float) {
        *zf = w->zp_float[n * nb + j];
        return 1;
    }
    if (w->zp_packed) {
        size_t per = 8 / (size_t)w->bits, row = (nb + per - 1) / per;
        uint8_t byte = w->zp_packed[n * row + j / per];
        *zf = (float)((byte >> ((j % per) * (size_t)w->bits)) & ((1u << w->bits) - 1));
        return 1;
    }
    *zf = (float)(1u << (w->bits - 1));
    return 0;
}

static inline unsigned nbits_q(const uint8_t *blob, size_t i, int bits)
{
    switch (bits) {
    case 4: return (blob[i >> 1] >> ((i & 1) * 4)) & 15;
    case 2: return (blob[i >> 2] >> ((i & 3) * 2)) & 3;
    default: return blob[i];
    }
}

void sk_nbits_dequant_column(const sk_nbits_weight *w, size_t n, float *out)
{
    size_t nb = nbits_blocks(w), blob = nbits_blob(w);
    for (size_t k = 0; k < w->K; k++) {
        size_t j = w->g_idx ? (size_t)w->g_idx[k] : k / w->block_size;
        size_t i = k % w->block_size;
        size_t jj = k / w->block_size; /* data stays in place; g_idx moves scale and zero point */
        float z;
        nbits_zp(w, n, j, nb, &z);
        unsigned q = nbits_q(w->b + (n * nb + jj) * blob, i, w->bits);
        out[k] = ((float)q - z) * w->scales[n * nb + j];
    }
}

void sk_nbits_gemm_ref(size_t M, const float *A, size_t lda, const sk_nbits_weight *w, const float *bias,
                       float *Y, size_t ldy)
{
    float *col = malloc((w->K ? w->K : 1) * sizeof *col);
    if (!col) { /* reference kernel for tests: fall back to per-element decode */
        for (size_t m = 0; m < M; m++)
            for (size_t n = 0; n < w->N; n++) Y[m * ldy + n] = bias ? bias[n] : 0.f;
        return;
    }
    for (size_t n = 0; n < w->N; n++) {
        sk_nbits_dequant_column(w, n, col);
        for (size_t m = 0; m < M; m++) {
            float acc = 0;
            for (size_t k = 0; k < w->K; k++) acc += A[m * lda + k] * col[k];
            Y[m * ldy + n] = acc + (bias ? bias[n] : 0.f);
        }
    }
    free(col);
}

/* 16 small unsigned bytes to 16 floats v + 2^23 (the bits of 2^23 or-ed with
 * v), through unpacks with zero that every SIMD flavour has. */
static inline void nib_to_float(v16u8 e, v4f *f)
{
    const v16u8 z8 = { 0 };
    const v8i16 z16 = { 0 };
    const v4u32 expo = (v4u32){ 0, 0, 0, 0 } + 0x4B000000u;
    v8i16 w0 = (v8i16)__builtin_shufflevector(e, z8, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    v8i16 w1 = (v8i16)__builtin_shufflevector(e, z8, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    f[0] = (v4f)((v4u32)__builtin_shufflevector(w0, z16, 0, 8, 1, 9, 2, 10, 3, 11) | expo);
    f[1] = (v4f)((v4u32)__builtin_shufflevector(w0, z16, 4, 12, 5, 13, 6, 14, 7, 15) | expo);
    f[2] = (v4f)((v4u32)__builtin_shufflevector(w1, z16, 0, 8, 1, 9, 2, 10, 3, 11) | expo);
    f[3] = (v4f)((v4u32)__builtin_shufflevector(w1, z16, 4, 12, 5, 13, 6, 14, 7, 15) | expo);
}

static inline v4f ld4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The same as exact small floats, converted from the 32-bit lanes. */
static inline void nib_to_q(v16u8 e, v4f *f)
{
    const v16u8 z8 = { 0 };
    const v8i16 z16 = { 0 };
    v8i16 w0 = (v8i16)__builtin_shufflevector(e, z8, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    v8i16 w1 = (v8i16)__builtin_shufflevector(e, z8, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    f[0] = __builtin_convertvector((v4i32)__builtin_shufflevector(w0, z16, 0, 8, 1, 9, 2, 10, 3, 11), v4f);
    f[1] = __builtin_convertvector((v4i32)__builtin_shufflevector(w0, z16, 4, 12, 5, 13, 6, 14, 7, 15), v4f);
    f[2] = __builtin_convertvector((v4i32)__builtin_shufflevector(w1, z16, 0, 8, 1, 9, 2, 10, 3, 11), v4f);
    f[3] = __builtin_convertvector((v4i32)__builtin_shufflevector(w1, z16, 4, 12, 5, 13, 6, 14, 7, 15), v4f);
}

/* Dequantizes blocks j0 .. j0+nblk-1 of column n into out (nblk * block_size
 * floats; entries past K are zero). 4-bit blocks go through 16-byte vectors:
 * nibbles are split, re-interleaved into element order, spread into 32-bit
 * lanes and turned into floats by or-ing in the exponent of 2^23. */
static void nbits_dequant_blocks(const sk_nbits_weight *w, size_t n, size_t j0, size_t nblk, float *out)
{
    size_t nb = nbits_blocks(w), blob = nbits_blob(w), bs = w->block_size;
    for (size_t jb = 0; jb < nblk; jb++) {
        size_t j = j0 + jb;
        const uint8_t *src = w->b + (n * nb + j) * blob;
        float *dst = out + jb * bs;
        float z, s = w->scales[n * nb + j];
        nbits_zp(w, n, j, nb, &z);
        if (w->bits == 4) {
            const v4f magic = (v4f){ 0, 0, 0, 0 } + 8388608.0f, zv = (v4f){ 0, 0, 0, 0 } + z;
            const v4f sv = (v4f){ 0, 0, 0, 0 } + s;
            const v16u8 mask = (v16u8){ 0 } + 15;
            for (size_t i = 0; i < blob; i += 16) {
                v16u8 x;
                size_t cnt = 8; /* vectors of 4 floats out */
                if (blob - i >= 16) {
                    memcpy(&x, src + i, 16);
                } else {
                    uint64_t u;
                    memcpy(&u, src + i, 8);
                    x = (v16u8)(v2u64){ u, 0 };
                    cnt = 4;
                }
                v16u8 lo = x & mask, hi = (x >> 4) & mask;
                v4f f[8];
                nib_to_float(__builtin_shufflevector(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), f);
                nib_to_float(__builtin_shufflevector(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31),
                             f + 4);
                for (size_t t = 0; t < cnt; t++) {
                    v4f y = (f[t] - magic - zv) * sv;
                    memcpy(dst + 2 * i + 4 * t, &y, sizeof y);
                }
            }
        } else {
            for (size_t i = 0; i < bs; i++) dst[i] = ((float)nbits_q(src, i, w->bits) - z) * s;
        }
    }
    size_t k0 = j0 * bs, kend = (j0 + nblk) * bs;
    if (kend > w->K) memset(out + (w->K > k0 ? w->K - k0 : 0), 0, (kend - (w->K > k0 ? w->K : k0)) * sizeof *out);
}

/* ---- pairwise int16 multiply-add, 16 bytes ------------------------------ */

static inline v4i32 madd16(v8i16 a, v8i16 b)
{
#if defined(__SSE2__)
    return (v4i32)_mm_madd_epi16((__m128i)a, (__m128i)b);
#elif defined(__wasm_simd128__)
    return (v4i32)wasm_i32x4_dot_i16x8((v128_t)a, (v128_t)b);
#else
    v4i32 r;
    for (int i = 0; i < 4; i++) r[i] = a[2 * i] * b[2 * i] + a[2 * i + 1] * b[2 * i + 1];
    return r;
#endif
}

static inline v4f fmadd16(v4f acc, v4f a, v4f b) { return acc + a * b; }

/* Widens columns c..c+7 of two rows of 8-bit values into 16 int16 words
 * (b[k][c] - z[c], b[k+1][c] - z[c], b[k][c+1] - z[c+1], ...): a byte is
 * duplicated into both halves of a 16-bit lane and shifted down, arithmetically
 * for signed data; zp holds the 16 zero points in the same order. */
static inline void qinterleave8(const uint8_t *r0, const uint8_t *r1, int sg, const int16_t *zp, int16_t *d)
{
    uint64_t u0, u1;
    memcpy(&u0, r0, 8);
    memcpy(&u1, r1, 8);
    v16u8 a = (v16u8)(v2u64){ u0, 0 }, b = (v16u8)(v2u64){ u1, 0 };
    v16u8 x = __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    v8i16 t0 = (v8i16)__builtin_shufflevector(x, x, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    v8i16 t1 = (v8i16)__builtin_shufflevector(x, x, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    if (sg) {
        t0 >>= 8;
        t1 >>= 8;
    } else {
        t0 &= 0xff;
        t1 &= 0xff;
    }
    v8i16 z0, z1;
    memcpy(&z0, zp, 16);
    memcpy(&z1, zp + 8, 16);
    t0 -= z0;
    t1 -= z1;
    memcpy(d, &t0, 16);
    memcpy(d + 8, &t1, 16);
}

/* Instantiate the kernels. */
#define SK_QGEMM_TEMPLATE 1
#define VB 16
#define SFX(x) x##_v16
#if defined(__wasm_simd128__)
#define TGT __attribute__((unused)) /* wasm32 has its own int8 path (qgemm_wasm) */
#else
#define TGT
#endif
#define VI16 v8i16
#define VI32 v4i32
#define VF v4f
#define MADD(a, b) madd16(a, b)
#define FMADD(acc, a, b) fmadd16(acc, a, b)
#define FMADD4(acc, a, b) fmadd16(acc, a, b)
#include "sk_qgemm.c"
#undef VB
#undef SFX
#undef TGT
#undef VI16
#undef VI32
#undef VF
#undef MADD
#undef FMADD
#undef FMADD4

#ifdef SK_QGEMM_X86_AVX2
#define VB 32
#define SFX(x) x##_avx2
#define TGT __attribute__((target("avx2,fma")))
#define VI16 v16i16
#define VI32 v8i32
#define VF v8f
#define MADD(a, b) ((v8i32)_mm256_madd_epi16((__m256i)(a), (__m256i)(b)))
#define FMADD(acc, a, b) ((v8f)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(acc)))
#define FMADD4(acc, a, b) ((v4f)_mm_fmadd_ps((__m128)(a), (__m128)(b), (__m128)(acc)))
#include "sk_qgemm.c"

static int cpu_has_avx2_raw(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}

/* ---- x86 AVX-512 VNNI int8 path ----------------------------------------
 * vpdpbusd multiplies unsigned bytes by signed bytes and adds groups of four
 * into int32 lanes, exactly. Operands are shifted into that form (a' = a or
 * a + 128, b' = b or b - 128, by flipping the top bit) and the product
 *   sum (a' + ca[m]) (b' + cb[n]),  ca = -128*signedA - za, cb = 128*unsignedB - zb
 * is P + cb[n] * rowsum(a')[m] + ca[m] * colsum(b')[n] + K ca[m] cb[n],
 * with P = A'B' from the kernel and the sums taken while packing. */
#define VNR 32      /* columns of a B panel: two zmm of 16 int32 lanes */
#define VMR 8       /* rows per micro-kernel call */
#define VKC 256     /* k per pass (multiple of 4) */
#define VNC 256     /* columns per B block: 64 KB packed, below malloc's mmap threshold */

__attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline)) static inline void vnni_kernel_mr(
    size_t kq, const uint8_t *a, size_t lda, const int8_t *bp, int32_t *c, size_t ldc, size_t nr, int add, const int mr)
{
    __m512i acc[VMR][2];
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (size_t q = 0; q < kq; q++) {
        __m512i b0 = _mm512_loadu_si512((const void *)bp), b1 = _mm512_loadu_si512((const void *)(bp + 64));
        bp += 128;
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            int32_t w;
            memcpy(&w, a + (size_t)r * lda + 4 * q, 4);
            __m512i av = _mm512_set1_epi32(w);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], av, b1);
        }
    }
    __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        int32_t *cr = c + (size_t)r * ldc;
        __m512i v0 = acc[r][0], v1 = acc[r][1];
        if (add) {
            v0 = _mm512_add_epi32(v0, _mm512_maskz_loadu_epi32(m0, cr));
            v1 = _mm512_add_epi32(v1, _mm512_maskz_loadu_epi32(m1, cr + 16));
        }
        _mm512_mask_storeu_epi32(cr, m0, v0);
        _mm512_mask_storeu_epi32(cr + 16, m1, v1);
    }
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void vnni_kernel(
    size_t kq, const uint8_t *a, size_t lda, const int8_t *bp, int32_t *c, size_t ldc, size_t mr, size_t nr, int add)
{
    switch (mr) {
    case 1: vnni_kernel_mr(kq, a, lda, bp, c, ldc, nr, add, 1); break;
    case 2: vnni_kernel_mr(kq, a, lda, bp, c, ldc, nr, add, 2); break;
    case 3: vnni_kernel_mr(kq, a, lda, bp, c, ldc, nr, add, 3); break;
    case 4: vnni_kernel_mr(kq, a, lda, bp, c, ldc, nr, add, 4); break;
    case 5: vnni_kernel_mr(kq, a, lda, bp, c, ldc, nr, add, 5); break;
    case 6: vnni_kernel_mr(kq, a, lda, bp, c, ldc, nr, add, 6); break;
    case 7: vnni_kernel_mr(kq, a, lda, bp, c, ldc, nr, add, 7); break;
    default: vnni_kernel_mr(kq, a, lda, bp, c, ldc, nr, add, VMR); break;
    }
}

/* Packs rows k0..k0+kc of B (kc a multiple of 4 except at the end of K),
 * columns n0..n0+nc, as panels of VNR columns: for each quad of k, VNR lanes
 * of the four bytes b'(k..k+3, n), missing entries zero. Adds each column's
 * sum of b' to colsum when given. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void vnni_pack_b(
    const sk_qmat *B, size_t k0, size_t kc, size_t n0, size_t nc, int8_t *dst, int32_t *colsum)
{
    size_t kq = (kc + 3) / 4;
    const uint8_t flip = B->is_signed ? 0 : 0x80;
    const __m128i fv = _mm_set1_epi8((char)flip);
    const __m512i ones = _mm512_set1_epi8(1);
    for (size_t p0 = 0; p0 < nc; p0 += VNR) {
        int8_t *d = dst + (p0 / VNR) * kq * VNR * 4;
        size_t w = nc - p0 < VNR ? nc - p0 : VNR;
        __m512i cs0 = _mm512_setzero_si512(), cs1 = _mm512_setzero_si512();
        for (size_t q = 0; q < kq; q++, d += VNR * 4) {
            size_t k = k0 + 4 * q;
            const uint8_t *r0 = B->data + k * B->ld + n0 + p0;
            if (w == VNR && 4 * q + 4 <= kc) {
                for (size_t h = 0; h < VNR; h += 16) {
                    __m128i x0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r0 + h)), fv);
                    __m128i x1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r0 + B->ld + h)), fv);
                    __m128i x2 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r0 + 2 * B->ld + h)), fv);
                    __m128i x3 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r0 + 3 * B->ld + h)), fv);
                    __m128i t0 = _mm_unpacklo_epi8(x0, x1), t1 = _mm_unpackhi_epi8(x0, x1);
                    __m128i t2 = _mm_unpacklo_epi8(x2, x3), t3 = _mm_unpackhi_epi8(x2, x3);
                    _mm_storeu_si128((__m128i *)(d + 4 * h), _mm_unpacklo_epi16(t0, t2));
                    _mm_storeu_si128((__m128i *)(d + 4 * h + 16), _mm_unpackhi_epi16(t0, t2));
                    _mm_storeu_si128((__m128i *)(d + 4 * h + 32), _mm_unpacklo_epi16(t1, t3));
                    _mm_storeu_si128((__m128i *)(d + 4 * h + 48), _mm_unpackhi_epi16(t1, t3));
                }
            } else {
                for (size_t c = 0; c < VNR; c++)
                    for (size_t j = 0; j < 4; j++)
                        d[4 * c + j] = (c < w && 4 * q + j < kc) ? (int8_t)(r0[j * B->ld + c] ^ flip) : 0;
            }
            if (colsum) {
                cs0 = _mm512_dpbusd_epi32(cs0, ones, _mm512_loadu_si512((const void *)d));
                cs1 = _mm512_dpbusd_epi32(cs1, ones, _mm512_loadu_si512((const void *)(d + 64)));
            }
        }
        if (colsum) {
            int32_t t[VNR];
            _mm512_storeu_si512((void *)t, cs0);
            _mm512_storeu_si512((void *)(t + 16), cs1);
            for (size_t c = 0; c < w; c++) colsum[p0 + c] = (int32_t)((uint32_t)colsum[p0 + c] + (uint32_t)t[c]);
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static sk_status qgemm_vnni(
    size_t M, size_t N, size_t K, const sk_qmat *A, const sk_qmat *B, int32_t *C, size_t ldc)
{
    size_t Kp = (K + 3) & ~(size_t)3, kc_max = Kp < VKC ? Kp : VKC, nc_max = N < VNC ? N : VNC;
    size_t npan = (nc_max + VNR - 1) / VNR;
    int need_ca = A->is_signed || (A->zp != NULL), need_cb = !B->is_signed || (B->zp != NULL);
    int copy_a = A->is_signed || K % 4 != 0;
    uint8_t *ap = copy_a ? scratch_alloc(M, Kp ? Kp : 4) : NULL;
    int8_t *bp = scratch_alloc(npan * ((kc_max + 3) / 4) * VNR * 4 + 1, 1);
    int32_t *rowsum = scratch_alloc(M, sizeof *rowsum), *colsum = scratch_alloc(N, sizeof *colsum);
    if ((copy_a && !ap) || !bp || !rowsum || !colsum) {
        free(ap);
        free(bp);
        free(rowsum);
        free(colsum);
        return SK_ENOMEM;
    }
    /* A' rows, zero-padded to a multiple of 4, and their sums; unsigned A with
     * K a multiple of 4 is used in place */
    const uint8_t aflip = A->is_signed ? 0x80 : 0;
    const __m512i fv = _mm512_set1_epi8((char)aflip);
    const uint8_t *abase = ap ? ap : A->data;
    size_t alda = ap ? Kp : A->ld;
    for (size_t m = 0; m < M; m++) {
        const uint8_t *src = A->data + m * A->ld;
        uint8_t *d = ap ? ap + m * Kp : NULL;
        __m512i acc = _mm512_setzero_si512();
        size_t k = 0;
        for (; k + 64 <= K; k += 64) {
            __m512i v = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + k)), fv);
            if (d) _mm512_storeu_si512((void *)(d + k), v);
            acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, _mm512_setzero_si512()));
        }
        uint32_t s = (uint32_t)_mm512_reduce_add_epi64(acc);
        for (; k < K; k++) {
            uint8_t v = (uint8_t)(src[k] ^ aflip);
            if (d) d[k] = v;
            s += v;
        }
        for (; d && k < Kp; k++) d[k] = 0;
        rowsum[m] = (int32_t)s;
    }
    memset(colsum, 0, N * sizeof *colsum);
    if (K == 0)
        for (size_t m = 0; m < M; m++) memset(C + m * ldc, 0, N * sizeof *C);
    for (size_t n0 = 0; n0 < N; n0 += VNC) {
        size_t nc = N - n0 < VNC ? N - n0 : VNC;
        for (size_t k0 = 0; k0 < K; k0 += VKC) {
            size_t kc = K - k0 < VKC ? K - k0 : VKC, kq = (kc + 3) / 4;
            vnni_pack_b(B, k0, kc, n0, nc, bp, need_ca ? colsum + n0 : NULL);
            for (size_t m0 = 0; m0 < M; m0 += VMR) {
                size_t mr = M - m0 < VMR ? M - m0 : VMR;
                for (size_t p0 = 0; p0 < nc; p0 += VNR) {
                    size_t nr = nc - p0 < VNR ? nc - p0 : VNR;
                    vnni_kernel(kq, abase + m0 * alda + k0, alda, bp + (p0 / VNR) * kq * VNR * 4,
                                C + m0 * ldc + n0 + p0, ldc, mr, nr, k0 > 0);
                }
            }
        }
    }
    if (need_ca || need_cb) {
        /* c += cb[n] * (rowsum[m] + K ca[m]) + ca[m] * colsum[n] */
        int32_t *cbv = scratch_alloc(N, sizeof *cbv);
        if (!cbv) {
            free(ap);
            free(bp);
            free(rowsum);
            free(colsum);
            return SK_ENOMEM;
        }
        for (size_t n = 0; n < N; n++) cbv[n] = (int32_t)((uint32_t)(B->is_signed ? 0 : 128) - (uint32_t)qzp(B, n));
        for (size_t m = 0; m < M; m++) {
            uint32_t ca = (uint32_t)(A->is_signed ? -128 : 0) - (uint32_t)qzp(A, m);
            uint32_t rk = (uint32_t)rowsum[m] + (uint32_t)K * ca;
            const __m512i vca = _mm512_set1_epi32((int32_t)ca), vrk = _mm512_set1_epi32((int32_t)rk);
            int32_t *c = C + m * ldc;
            size_t n = 0;
            for (; n + 16 <= N; n += 16) {
                __m512i v = _mm512_loadu_si512((const void *)(c + n));
                v = _mm512_add_epi32(v, _mm512_mullo_epi32(_mm512_loadu_si512((const void *)(cbv + n)), vrk));
                v = _mm512_add_epi32(v, _mm512_mullo_epi32(_mm512_loadu_si512((const void *)(colsum + n)), vca));
                _mm512_storeu_si512((void *)(c + n), v);
            }
            for (; n < N; n++) c[n] = (int32_t)((uint32_t)c[n] + (uint32_t)cbv[n] * rk + ca * (uint32_t)colsum[n]);
        }
        free(cbv);
    }
    free(ap);
    free(bp);
    free(rowsum);
    free(colsum);
    return SK_OK;
}

/* The same product with B packed beforehand (sk_qgemm_pack): the blocks of
 * qgemm_vnni one after the other, n-block major, and the column sums of b'. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static sk_status qgemm_vnni_packed(
    size_t M, const sk_qmat *A, const sk_qgemm_packed *P, int32_t *C, size_t ldc)
{
    size_t N = P->N, K = P->K, Kp = (K + 3) & ~(size_t)3;
    int need_ca = A->is_signed || (A->zp != NULL);
    int copy_a = A->is_signed || K % 4 != 0;
    uint8_t *ap = copy_a ? scratch_alloc(M, Kp ? Kp : 4) : NULL;
    int32_t *rowsum = scratch_alloc(M, sizeof *rowsum);
    if ((copy_a && !ap) || !rowsum) {
        free(ap);
        free(rowsum);
        return SK_ENOMEM;
    }
    const uint8_t aflip = A->is_signed ? 0x80 : 0;
    const __m512i fv = _mm512_set1_epi8((char)aflip);
    const uint8_t *abase = ap ? ap : A->data;
    size_t alda = ap ? Kp : A->ld;
    for (size_t m = 0; m < M; m++) {
        const uint8_t *src = A->data + m * A->ld;
        uint8_t *d = ap ? ap + m * Kp : NULL;
        __m512i acc = _mm512_setzero_si512();
        size_t k = 0;
        for (; k + 64 <= K; k += 64) {
            __m512i v = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + k)), fv);
            if (d) _mm512_storeu_si512((void *)(d + k), v);
            acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, _mm512_setzero_si512()));
        }
        uint32_t s = (uint32_t)_mm512_reduce_add_epi64(acc);
        for (; k < K; k++) {
            uint8_t v = (uint8_t)(src[k] ^ aflip);
            if (d) d[k] = v;
            s += v;
        }
        for (; d && k < Kp; k++) d[k] = 0;
        rowsum[m] = (int32_t)s;
    }
    if (K == 0)
        for (size_t m = 0; m < M; m++) memset(C + m * ldc, 0, N * sizeof *C);
    const int8_t *bp = P->data;
    for (size_t n0 = 0; n0 < N; n0 += VNC) {
        size_t nc = N - n0 < VNC ? N - n0 : VNC;
        for (size_t k0 = 0; k0 < K; k0 += VKC) {
            size_t kc = K - k0 < VKC ? K - k0 : VKC, kq = (kc + 3) / 4;
            for (size_t m0 = 0; m0 < M; m0 += VMR) {
                size_t mr = M - m0 < VMR ? M - m0 : VMR;
                for (size_t p0 = 0; p0 < nc; p0 += VNR) {
                    size_t nr = nc - p0 < VNR ? nc - p0 : VNR;
                    vnni_kernel(kq, abase + m0 * alda + k0, alda, bp + (p0 / VNR) * kq * VNR * 4,
                                C + m0 * ldc + n0 + p0, ldc, mr, nr, k0 > 0);
                }
            }
            bp += ((nc + VNR - 1) / VNR) * kq * VNR * 4;
        }
    }
    /* c += cb[n] * (rowsum[m] + K ca[m]) + ca[m] * colsum[n]; cb is P->cb */
    if (need_ca || P->need_cb) {
        for (size_t m = 0; m < M; m++) {
            uint32_t ca = (uint32_t)(A->is_signed ? -128 : 0) - (uint32_t)qzp(A, m);
            uint32_t rk = (uint32_t)rowsum[m] + (uint32_t)K * ca;
            const __m512i vca = _mm512_set1_epi32((int32_t)ca), vrk = _mm512_set1_epi32((int32_t)rk);
            int32_t *c = C + m * ldc;
            size_t n = 0;
            if (P->need_cb) {
                for (; n + 16 <= N; n += 16) {
                    __m512i v = _mm512_loadu_si512((const void *)(c + n));
                    v = _mm512_add_epi32(v, _mm512_mullo_epi32(_mm512_loadu_si512((const void *)(P->cb + n)), vrk));
                    v = _mm512_add_epi32(v, _mm512_mullo_epi32(_mm512_loadu_si512((const void *)(P->colsum + n)), vca));
                    _mm512_storeu_si512((void *)(c + n), v);
                }
            } else if (ca) {
                for (; n + 16 <= N; n += 16) {
                    __m512i v = _mm512_loadu_si512((const void *)(c + n));
                    v = _mm512_add_epi32(v, _mm512_mullo_epi32(_mm512_loadu_si512((const void *)(P->colsum + n)), vca));
                    _mm512_storeu_si512((void *)(c + n), v);
                }
            } else {
                n = N;
            }
            for (; n < N; n++)
                c[n] = (int32_t)((uint32_t)c[n] + (uint32_t)P->cb[n] * rk + ca * (uint32_t)P->colsum[n]);
        }
    }
    free(ap);
    free(rowsum);
    return SK_OK;
}

static int cpu_has_avx2(void) { return forced_variant != 1 && cpu_has_avx2_raw(); }

static int cpu_has_vnni_raw(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vnni");
    }
    return cached;
}

static int cpu_has_vnni(void) { return (forced_variant == 0 || forced_variant == 3) && cpu_has_vnni_raw(); }
#endif

const char *sk_qgemm_variant(void)
{
#ifdef SK_QGEMM_X86_AVX2
    if (cpu_has_vnni() && cpu_has_avx2()) return "vnni";
    if (cpu_has_avx2()) return "avx2";
#endif
#if defined(__SSE2__)
    return "sse2";
#elif defined(__wasm_simd128__)
    return "wasm-simd128";
#else
    return "generic";
#endif
}

int sk_qgemm_select(const char *id)
{
    if (!id) {
        forced_variant = 0;
        return 0;
    }
    if (!strcmp(id, "generic")) {
        forced_variant = 1;
        return 0;
    }
#ifdef SK_QGEMM_X86_AVX2
    if (!strcmp(id, "avx2") && cpu_has_avx2_raw()) {
        forced_variant = 2;
        return 0;
    }
    if (!strcmp(id, "vnni") && cpu_has_vnni_raw() && cpu_has_avx2_raw()) {
        forced_variant = 3;
        return 0;
    }
#endif
    return -1;
}

#if defined(__wasm_simd128__)
/* ---- wasm32 SIMD128 int8 path ------------------------------------------
 * The same arithmetic as the 16-byte template (int16 operands with the zero
 * points subtracted, i32x4.dot_i16x8_s into int32, so the same bits), laid
 * out for V8: B's panels of 8 columns span all of K (32 bytes per k-pair, a
 * panel of K = 1024 is 16 KB and stays in L1) and are packed once for a
 * constant weight (sk_qgemm_pack); A is packed once per call, vectorised,
 * instead of once per column block; the 4 x 8 kernel broadcasts A with
 * v128.load32_splat (one load, no shuffle in V8) and stores whole tiles of
 * C. Measured in V8 (bench/web/kernels.sh, 128 rows): 50-56 GMAC/s for the
 * whole product, where the template's qgemm_v16 reached 19. */
#define WMR 4 /* rows of an A block */
#define WNR 8 /* columns of a B panel */

static size_t wasm_panels_b(size_t K, size_t N) { return (N + WNR - 1) / WNR * ((K + 1) / 2) * WNR * 2; }

/* B into panels of WNR columns over all of K (qpack_b's layout with kc = K). */
static void wasm_pack_b(const sk_qmat *B, size_t K, size_t N, int16_t *dst) { qpack_b_v16(B, K, 0, K, 0, N, dst); }

/* Rows m0..m0+3 of A (rows past M are zero) as WMR words per k-pair:
 * (a[m][k] - za[m], a[m][k+1] - za[m]) as int16; a missing k is zero. */
static void wasm_pack_a_block(const sk_qmat *A, size_t M, size_t K, size_t m0, int32_t *d)
{
    size_t kp = (K + 1) / 2, rows = M - m0 < WMR ? M - m0 : WMR, k = 0;
    const int sg = A->is_signed;
    if (rows == WMR) {
        const uint8_t *r0 = A->data + m0 * A->ld, *r1 = r0 + A->ld, *r2 = r1 + A->ld, *r3 = r2 + A->ld;
        const v128_t z0 = wasm_i16x8_splat((int16_t)qzp(A, m0)), z1 = wasm_i16x8_splat((int16_t)qzp(A, m0 + 1));
        const v128_t z2 = wasm_i16x8_splat((int16_t)qzp(A, m0 + 2)), z3 = wasm_i16x8_splat((int16_t)qzp(A, m0 + 3));
        for (; k + 16 <= K; k += 16, d += 8 * WMR) {
            v128_t x[4] = { wasm_v128_load(r0 + k), wasm_v128_load(r1 + k), wasm_v128_load(r2 + k),
                            wasm_v128_load(r3 + k) };
            const v128_t z[4] = { z0, z1, z2, z3 };
            v128_t lo[4], hi[4];
            for (int r = 0; r < 4; r++) {
                lo[r] = wasm_i16x8_sub(sg ? wasm_i16x8_extend_low_i8x16(x[r]) : wasm_u16x8_extend_low_u8x16(x[r]), z[r]);
                hi[r] = wasm_i16x8_sub(sg ? wasm_i16x8_extend_high_i8x16(x[r]) : wasm_u16x8_extend_high_u8x16(x[r]), z[r]);
            }
            /* 4 x 4 transposes of 32-bit k-pairs: rows become lanes */
            for (int h = 0; h < 2; h++) {
                const v128_t *v = h ? hi : lo;
                v128_t t0 = wasm_i32x4_shuffle(v[0], v[1], 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(v[0], v[1], 2, 6, 3, 7);
                v128_t t2 = wasm_i32x4_shuffle(v[2], v[3], 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(v[2], v[3], 2, 6, 3, 7);
                int32_t *o = d + h * 4 * WMR;
                wasm_v128_store(o, wasm_i64x2_shuffle(t0, t2, 0, 2));
                wasm_v128_store(o + WMR, wasm_i64x2_shuffle(t0, t2, 1, 3));
                wasm_v128_store(o + 2 * WMR, wasm_i64x2_shuffle(t1, t3, 0, 2));
                wasm_v128_store(o + 3 * WMR, wasm_i64x2_shuffle(t1, t3, 1, 3));
            }
        }
    }
    for (size_t i = k / 2; i < kp; i++, d += WMR)
        for (size_t r = 0; r < WMR; r++) {
            if (r >= rows) {
                d[r] = 0;
                continue;
            }
            const uint8_t *a = A->data + (m0 + r) * A->ld;
            int32_t z = qzp(A, m0 + r);
            uint16_t lo = (uint16_t)((sg ? (int8_t)a[2 * i] : a[2 * i]) - z);
            uint16_t hi = 2 * i + 1 < K ? (uint16_t)((sg ? (int8_t)a[2 * i + 1] : a[2 * i + 1]) - z) : 0;
            d[r] = (int32_t)((uint32_t)lo | (uint32_t)hi << 16);
        }
}

/* C tile (mr x nr of WMR x WNR) = A block * B panel over kp k-pairs. */
static void wasm_qkernel(size_t kp, const int32_t *a, const int16_t *b, int32_t *c, size_t ldc, size_t mr, size_t nr)
{
    v128_t c00 = wasm_i32x4_splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (size_t i = 0; i < kp; i++, a += WMR, b += 2 * WNR) {
        const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 8);
        v128_t a0 = wasm_v128_load32_splat(a), a1 = wasm_v128_load32_splat(a + 1);
        c00 = wasm_i32x4_add(c00, wasm_i32x4_dot_i16x8(a0, b0));
        c01 = wasm_i32x4_add(c01, wasm_i32x4_dot_i16x8(a0, b1));
        c10 = wasm_i32x4_add(c10, wasm_i32x4_dot_i16x8(a1, b0));
        c11 = wasm_i32x4_add(c11, wasm_i32x4_dot_i16x8(a1, b1));
        v128_t a2 = wasm_v128_load32_splat(a + 2), a3 = wasm_v128_load32_splat(a + 3);
        c20 = wasm_i32x4_add(c20, wasm_i32x4_dot_i16x8(a2, b0));
        c21 = wasm_i32x4_add(c21, wasm_i32x4_dot_i16x8(a2, b1));
        c30 = wasm_i32x4_add(c30, wasm_i32x4_dot_i16x8(a3, b0));
        c31 = wasm_i32x4_add(c31, wasm_i32x4_dot_i16x8(a3, b1));
    }
    if (mr == WMR && nr == WNR) {
        wasm_v128_store(c, c00);
        wasm_v128_store(c + 4, c01);
        wasm_v128_store(c + ldc, c10);
        wasm_v128_store(c + ldc + 4, c11);
        wasm_v128_store(c + 2 * ldc, c20);
        wasm_v128_store(c + 2 * ldc + 4, c21);
        wasm_v128_store(c + 3 * ldc, c30);
        wasm_v128_store(c + 3 * ldc + 4, c31);
        return;
    }
    int32_t t[WMR][WNR];
    wasm_v128_store(t[0], c00);
    wasm_v128_store(t[0] + 4, c01);
    wasm_v128_store(t[1], c10);
    wasm_v128_store(t[1] + 4, c11);
    wasm_v128_store(t[2], c20);
    wasm_v128_store(t[2] + 4, c21);
    wasm_v128_store(t[3], c30);
    wasm_v128_store(t[3] + 4, c31);
    for (size_t r = 0; r < mr; r++) memcpy(c + r * ldc, t[r], nr * sizeof **t);
}

/* C = A * B with B in wasm panels (bp). SK_ENOMEM only. */
static sk_status qgemm_wasm(size_t M, size_t N, size_t K, const sk_qmat *A, const int16_t *bp, int32_t *C,
                            size_t ldc)
{
    if (K == 0) {
        for (size_t m = 0; m < M; m++) memset(C + m * ldc, 0, N * sizeof *C);
        return SK_OK;
    }
    size_t kp = (K + 1) / 2, blk = kp * WMR, mb = (M + WMR - 1) / WMR;
    int32_t *ap = scratch_alloc(mb, blk * sizeof *ap); /* blk * 4 < SIZE_MAX: K was checked by the caller */
    if (!ap) return SK_ENOMEM;
    for (size_t j = 0; j < mb; j++) wasm_pack_a_block(A, M, K, j * WMR, ap + j * blk);
    for (size_t p0 = 0; p0 < N; p0 += WNR) {
        const int16_t *panel = bp + p0 * kp * 2;
        size_t nr = N - p0 < WNR ? N - p0 : WNR;
        for (size_t j = 0; j < mb; j++) {
            size_t m0 = j * WMR;
            wasm_qkernel(kp, ap + j * blk, panel, C + m0 * ldc + p0, ldc, M - m0 < WMR ? M - m0 : WMR, nr);
        }
    }
    free(ap);
    return SK_OK;
}

/* The same with B packed here. */
static sk_status qgemm_wasm_unpacked(size_t M, size_t N, size_t K, const sk_qmat *A, const sk_qmat *B, int32_t *C,
                                     size_t ldc)
{
    if (K > SIZE_MAX / 8 || N > SIZE_MAX / 8 || (K && N > SIZE_MAX / 8 / K)) return SK_ENOMEM;
    int16_t *bp = scratch_alloc(wasm_panels_b(K, N) + 1, sizeof *bp);
    if (!bp) return SK_ENOMEM;
    wasm_pack_b(B, K, N, bp);
    sk_status s = qgemm_wasm(M, N, K, A, bp, C, ldc);
    free(bp);
    return s;
}
#endif

/* ---- entry points -------------------------------------------------------- */

sk_status sk_qgemm(size_t M, size_t N, size_t K, const sk_qmat *A, const sk_qmat *B, int32_t *C, size_t ldc,
                   sk_error *err)
{
    if (M == 0 || N == 0) return SK_OK;
    sk_status s;
#ifdef SK_QGEMM_X86_AVX2
    if (cpu_has_vnni())
        s = qgemm_vnni(M, N, K, A, B, C, ldc);
    else if (cpu_has_avx2())
        s = qgemm_avx2(M, N, K, A, B, C, ldc);
    else
#endif
#if defined(__wasm_simd128__)
        s = qgemm_wasm_unpacked(M, N, K, A, B, C, ldc);
#else
        s = qgemm_v16(M, N, K, A, B, C, ldc);
#endif
    if (s) return sk_error_set(err, s, "out of memory for an %zux%zux%zu integer matrix product", M, N, K);
    return SK_OK;
}

sk_status sk_qgemm_pack(size_t K, size_t N, const sk_qmat *B, sk_qgemm_packed **out, sk_error *err)
{
    *out = NULL;
    sk_qgemm_packed *p = NULL;
    if (K > SIZE_MAX / 8 || N > SIZE_MAX / 8 || (K && N > SIZE_MAX / 8 / K)) goto oom; /* sizes below stay in range */
    if (!(p = calloc(1, sizeof *p))) goto oom;
    p->K = K;
    p->N = N;
    p->B = *B;
    if (B->zp) {
        size_t nz = B->zp_count == 1 ? 1 : N;
        if (!(p->zb = scratch_alloc(nz, sizeof *p->zb))) goto oom;
        memcpy(p->zb, B->zp, nz * sizeof *p->zb);
        p->B.zp = p->zb;
        p->B.zp_count = nz;
    }
#ifdef SK_QGEMM_X86_AVX2
    if (cpu_has_vnni() && cpu_has_avx2()) {
        size_t Kp = (K + 3) & ~(size_t)3, total = 0;
        for (size_t n0 = 0; n0 < N; n0 += VNC) {
            size_t nc = N - n0 < VNC ? N - n0 : VNC;
            total += ((nc + VNR - 1) / VNR) * Kp * VNR; /* every k block rounds up to quads */
        }
        p->data = scratch_alloc(total + 1, 1);
        p->colsum = scratch_alloc(N + 1, sizeof *p->colsum);
        p->cb = scratch_alloc(N + 1, sizeof *p->cb);
        if (!p->data || !p->colsum || !p->cb) goto oom;
        memset(p->colsum, 0, N * sizeof *p->colsum);
        int8_t *d = p->data;
        for (size_t n0 = 0; n0 < N; n0 += VNC) {
            size_t nc = N - n0 < VNC ? N - n0 : VNC;
            for (size_t k0 = 0; k0 < K; k0 += VKC) {
                size_t kc = K - k0 < VKC ? K - k0 : VKC;
                vnni_pack_b(&p->B, k0, kc, n0, nc, d, p->colsum + n0);
                d += ((nc + VNR - 1) / VNR) * ((kc + 3) / 4) * VNR * 4;
            }
        }
        for (size_t n = 0; n < N; n++) {
            p->cb[n] = (int32_t)((uint32_t)(B->is_signed ? 0 : 128) - (uint32_t)qzp(&p->B, n));
            p->need_cb |= p->cb[n] != 0;
        }
        p->vnni = 1;
    }
#endif
#if defined(__wasm_simd128__)
    if (!(p->w16 = scratch_alloc(wasm_panels_b(K, N) + 1, sizeof *p->w16))) goto oom;
    wasm_pack_b(&p->B, K, N, p->w16);
#endif
    *out = p;
    return SK_OK;
oom:
    sk_qgemm_packed_free(p);
    return sk_error_set(err, SK_ENOMEM, "out of memory packing a %zux%zu integer matrix", K, N);
}

void sk_qgemm_packed_free(sk_qgemm_packed *p)
{
    if (!p) return;
    free(p->zb);
    free(p->data);
    free(p->colsum);
    free(p->cb);
    free(p->w16);
    free(p);
}

sk_status sk_qgemm_packed_run(size_t M, const sk_qmat *A, const sk_qgemm_packed *B, int32_t *C, size_t ldc,
                              sk_error *err)
{
    if (M == 0 || B->N == 0) return SK_OK;
#ifdef SK_QGEMM_X86_AVX2
    if (B->vnni && cpu_has_vnni() && cpu_has_avx2()) {
        if (qgemm_vnni_packed(M, A, B, C, ldc))
            return sk_error_set(err, SK_ENOMEM, "out of memory for an %zux%zux%zu integer matrix product", M, B->N,
                                B->K);
        return SK_OK;
    }
#endif
#if defined(__wasm_simd128__)
    if (B->w16) {
        if (qgemm_wasm(M, B->N, B->K, A, B->w16, C, ldc))
            return sk_error_set(err, SK_ENOMEM, "out of memory for an %zux%zux%zu integer matrix product", M, B->N,
                                B->K);
        return SK_OK;
    }
#endif
    return sk_qgemm(M, B->N, B->K, A, &B->B, C, ldc, err);
}

/* Many rows: chunks of columns are dequantized, each column's K values in a
 * row of buf, and multiplied with sk_gemm_f32 (transposed B). */
static sk_status nbits_gemm_chunks(size_t M, const float *A, size_t lda, const sk_nbits_weight *w, const float *bias,
                                   float *Y, size_t ldy, int threads, sk_error *err)
{
    size_t K = w->K, N = w->N, nb = nbits_blocks(w), Kp = nb * w->block_size;
    size_t nc = (NBITS_CHUNK_FLOATS / Kp) & ~(size_t)15;
    if (nc < 16) nc = 16;
    if (nc > N) nc = N;
    float *buf = scratch_alloc(nc, Kp * sizeof(float));
    if (!buf) return sk_error_set(err, SK_ENOMEM, "out of memory for a %zux%zux%zu %d-bit matrix product", M, N, K, w->bits);
    sk_status s = SK_OK;
    for (size_t n0 = 0; n0 < N && !s; n0 += nc) {
        size_t cur = N - n0 < nc ? N - n0 : nc;
        for (size_t c = 0; c < cur; c++) nbits_dequant_blocks(w, n0 + c, 0, nb, buf + c * Kp);
        s = sk_gemm_f32(0, 1, M, cur, K, 1.0f, A, lda, buf, Kp, 0.0f, Y + n0, ldy, threads, err);
    }
    free(buf);
    if (!s && bias)
        for (size_t m = 0; m < M; m++)
            for (size_t n = 0; n < N; n++) Y[m * ldy + n] += bias[n];
    return s;
}

sk_status sk_nbits_gemm(size_t M, const float *A, size_t lda, const sk_nbits_weight *w, const float *bias,
                        float *Y, size_t ldy, int threads, sk_error *err)
{
    sk_status s = sk_nbits_check(w, err);
    if (s) return s;
    if (w->g_idx) return sk_error_set(err, SK_EUNSUPPORTED, "g_idx is only handled by the reference kernel");
    if (M == 0 || w->N == 0) return SK_OK;
    if (M > NBITS_GEMV_ROWS) return nbits_gemm_chunks(M, A, lda, w, bias, Y, ldy, threads, err);
#ifdef SK_QGEMM_X86_AVX2
    if (cpu_has_avx2())
        s = nbits_gemv_avx2(M, A, lda, w, bias, Y, ldy);
    else
#endif
        s = nbits_gemv_v16(M, A, lda, w, bias, Y, ldy);
    if (s) return sk_error_set(err, s, "out of memory for a %zux%zux%zu %d-bit matrix product", M, w->N, w->K, w->bits);
    return SK_OK;
}

#else /* ======================== kernel template ======================== */

/* Per instantiation: VB (vector bytes), SFX(name), TGT (function attributes),
 * VI16/VI32/VF (vector types), MADD (pairwise int16 multiply-add into int32),
 * FMADD (acc + a * b). */
#define CPV (VB / 4)     /* 32-bit lanes per vector */
#define QNR (2 * CPV)    /* columns of an int8 B panel */
#define QMR 4            /* rows of an int8 A block */
#define QKC 256          /* k values per int8 pass (even) */
#define QNC 192          /* columns per int8 B block: 96 KB of int16, below the mmap threshold */
#define QMC 96           /* rows per int8 A block (multiple of QMR) */

/* Packs rows k0..k0+kc of B, columns n0..n0+nc, into panels of QNR columns:
 * panel p holds, for each k-pair, QNR lanes of (b[k][n] - zb[n], b[k+1][n] -
 * zb[n]) as int16; missing rows and columns are zero. Returns the int16 count
 * of one panel. */
static TGT size_t SFX(qpack_b)(const sk_qmat *B, size_t K, size_t k0, size_t kc, size_t n0, size_t nc,
                               int16_t *dst)
{
    size_t kp = (kc + 1) / 2, panel = kp * QNR * 2;
    int sg = B->is_signed;
    int16_t zp[QNR * 2];
    for (size_t p0 = 0; p0 < nc; p0 += QNR) {
        int16_t *d = dst + (p0 / QNR) * panel;
        size_t w = nc - p0 < QNR ? nc - p0 : QNR;
        for (size_t c = 0; c < QNR; c++) zp[2 * c] = zp[2 * c + 1] = (int16_t)(c < w ? qzp(B, n0 + p0 + c) : 0);
        for (size_t i = 0; i < kp; i++, d += QNR * 2) {
            size_t k = k0 + 2 * i;
            const uint8_t *r0 = B->data + k * B->ld + n0 + p0;
            const uint8_t *r1 = k + 1 < K && 2 * i + 1 < kc ? r0 + B->ld : NULL;
            if (w == QNR && r1) {
                for (size_t c = 0; c < QNR; c += 8) qinterleave8(r0 + c, r1 + c, sg, zp + 2 * c, d + 2 * c);
            } else {
                for (size_t c = 0; c < QNR; c++) {
                    int16_t v0 = 0, v1 = 0;
                    if (c < w) {
                        v0 = (int16_t)((sg ? (int8_t)r0[c] : r0[c]) - zp[2 * c]);
                        if (r1) v1 = (int16_t)((sg ? (int8_t)r1[c] : r1[c]) - zp[2 * c]);
                    }
                    d[2 * c] = v0;
                    d[2 * c + 1] = v1;
                }
            }
        }
    }
    return panel;
}

/* Packs rows m0..m0+mc of A, k0..k0+kc, into blocks of QMR rows: for each
 * k-pair, QMR words holding (a[m][k] - za[m], a[m][k+1] - za[m]) as int16;
 * missing rows and the k past the end are zero. */
static TGT void SFX(qpack_a)(const sk_qmat *A, size_t K, size_t m0, size_t mc, size_t k0, size_t kc, int32_t *dst)
{
    size_t kp = (kc + 1) / 2;
    int sg = A->is_signed;
    for (size_t r0 = 0; r0 < mc; r0 += QMR) {
        int32_t *d = dst + (r0 / QMR) * kp * QMR;
        for (size_t r = 0; r < QMR; r++) {
            if (r0 + r >= mc) {
                for (size_t i = 0; i < kp; i++) d[i * QMR + r] = 0;
                continue;
            }
            const uint8_t *a = A->data + (m0 + r0 + r) * A->ld + k0;
            int32_t z = qzp(A, m0 + r0 + r);
            size_t i = 0;
            for (; 2 * i + 1 < kc && k0 + 2 * i + 1 < K; i++) {
                uint16_t lo = (uint16_t)((sg ? (int8_t)a[2 * i] : a[2 * i]) - z);
                uint16_t hi = (uint16_t)((sg ? (int8_t)a[2 * i + 1] : a[2 * i + 1]) - z);
                d[i * QMR + r] = (int32_t)((uint32_t)lo | (uint32_t)hi << 16);
            }
            for (; i < kp; i++) d[i * QMR + r] = (int32_t)(uint32_t)(uint16_t)((sg ? (int8_t)a[2 * i] : a[2 * i]) - z);
        }
    }
}

/* acc tile (mr x QNR) += A block * B panel over kp k-pairs; then added to or
 * stored in C (mr x nr valid). */
static inline __attribute__((always_inline)) TGT void SFX(qkernel_mr)(
    size_t kp, const int32_t *ap, const int16_t *bp, int32_t *C, size_t ldc, size_t nr, int add, const int mr)
{
    VI32 acc[QMR][2];
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = (VI32){ 0 };
    for (size_t i = 0; i < kp; i++) {
        VI16 b0, b1;
        memcpy(&b0, bp, VB);
        memcpy(&b1, bp + VB / 2, VB);
        bp += VB;
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            VI32 a = (VI32){ 0 } + ap[r];
            acc[r][0] += MADD((VI16)a, b0);
            acc[r][1] += MADD((VI16)a, b1);
        }
        ap += QMR;
    }
    for (int r = 0; r < mr; r++) {
        int32_t t[QNR];
        memcpy(t, &acc[r][0], VB);
        memcpy(t + CPV, &acc[r][1], VB);
        int32_t *c = C + (size_t)r * ldc;
        if (nr == QNR && add) {
            for (int j = 0; j < QNR; j++) c[j] = (int32_t)((uint32_t)c[j] + (uint32_t)t[j]);
        } else if (nr == QNR) {
            memcpy(c, t, sizeof t);
        } else {
            for (size_t j = 0; j < nr; j++) c[j] = add ? (int32_t)((uint32_t)c[j] + (uint32_t)t[j]) : t[j];
        }
    }
}

static TGT void SFX(qkernel)(size_t kp, const int32_t *ap, const int16_t *bp, int32_t *C, size_t ldc, size_t mr,
                             size_t nr, int add)
{
    switch (mr) {
    case 1: SFX(qkernel_mr)(kp, ap, bp, C, ldc, nr, add, 1); break;
    case 2: SFX(qkernel_mr)(kp, ap, bp, C, ldc, nr, add, 2); break;
    case 3: SFX(qkernel_mr)(kp, ap, bp, C, ldc, nr, add, 3); break;
    default: SFX(qkernel_mr)(kp, ap, bp, C, ldc, nr, add, QMR); break;
    }
}

/* The whole product, zero points included (they are subtracted while packing:
 * differences of 8-bit values fit int16, and pairs of their products int32). */
static TGT sk_status SFX(qgemm)(size_t M, size_t N, size_t K, const sk_qmat *A, const sk_qmat *B, int32_t *C,
                                size_t ldc)
{
    size_t kc_max = K < QKC ? K : QKC, kp_max = (kc_max + 1) / 2;
    size_t nc_max = N < QNC ? N : QNC, mc_max = M < QMC ? M : QMC;
    size_t npan = (nc_max + QNR - 1) / QNR, mblk = (mc_max + QMR - 1) / QMR;
    int16_t *bp = scratch_alloc(npan * kp_max * QNR * 2 + 1, sizeof *bp);
    int32_t *ap = scratch_alloc(mblk * kp_max * QMR + 1, sizeof *ap);
    if (!bp || !ap) {
        free(bp);
        free(ap);
        return SK_ENOMEM;
    }
    if (K == 0)
        for (size_t m = 0; m < M; m++) memset(C + m * ldc, 0, N * sizeof *C);
    for (size_t n0 = 0; n0 < N; n0 += QNC) {
        size_t nc = N - n0 < QNC ? N - n0 : QNC;
        for (size_t k0 = 0; k0 < K; k0 += QKC) {
            size_t kc = K - k0 < QKC ? K - k0 : QKC, kp = (kc + 1) / 2;
            size_t panel = SFX(qpack_b)(B, K, k0, kc, n0, nc, bp);
            for (size_t m0 = 0; m0 < M; m0 += QMC) {
                size_t mc = M - m0 < QMC ? M - m0 : QMC;
                SFX(qpack_a)(A, K, m0, mc, k0, kc, ap);
                for (size_t p0 = 0; p0 < nc; p0 += QNR) {
                    size_t nr = nc - p0 < QNR ? nc - p0 : QNR;
                    for (size_t r0 = 0; r0 < mc; r0 += QMR) {
                        size_t mr = mc - r0 < QMR ? mc - r0 : QMR;
                        SFX(qkernel)(kp, ap + (r0 / QMR) * kp * QMR, bp + (p0 / QNR) * panel,
                                     C + (m0 + r0) * ldc + n0 + p0, ldc, mr, nr, k0 > 0);
                    }
                }
            }
        }
    }
    free(bp);
    free(ap);
    return SK_OK;
}

/* ---- float micro-kernel and N-bit GEMM ---- */

static TGT float SFX(sdot)(const float *a, const float *b, size_t n)
{
    VF s0 = { 0 }, s1 = { 0 };
    size_t i = 0;
    for (; i + 2 * CPV <= n; i += 2 * CPV) {
        VF a0, a1, b0, b1;
        memcpy(&a0, a + i, VB);
        memcpy(&a1, a + i + CPV, VB);
        memcpy(&b0, b + i, VB);
        memcpy(&b1, b + i + CPV, VB);
        s0 = FMADD(s0, a0, b0);
        s1 = FMADD(s1, a1, b1);
    }
    s0 += s1;
    float r = 0;
    for (int j = 0; j < CPV; j++) r += s0[j];
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

/* A few rows: one column of the weight at a time, dequantized into a K-float
 * buffer and dotted with every row. */
static TGT sk_status SFX(nbits_gemv_any)(size_t M, const float *A, size_t lda, const sk_nbits_weight *w,
                                         const float *bias, float *Y, size_t ldy)
{
    size_t K = w->K, N = w->N, nb = nbits_blocks(w);
    float *col = scratch_alloc(nb * w->block_size, sizeof *col);
    if (!col) return SK_ENOMEM;
    for (size_t n = 0; n < N; n++) {
        nbits_dequant_blocks(w, n, 0, nb, col);
        for (size_t m = 0; m < M; m++) Y[m * ldy + n] = SFX(sdot)(A + m * lda, col, K) + (bias ? bias[n] : 0.f);
    }
    free(col);
    return SK_OK;
}

#if VB == 32
/* The same with 256-bit vectors: 16 bytes of nibbles widen straight to eight
 * int32 lanes at a time (vpmovzxbd) and convert to floats. */
static inline __attribute__((always_inline)) TGT void SFX(gemv4_rows)(const float *ap, const float *asum, size_t Kp,
                                                                       const sk_nbits_weight *w, const float *bias,
                                                                       float *Y, size_t ldy, const size_t M)
{
    size_t N = w->N, bs = w->block_size, nb = nbits_blocks(w), blob = bs / 2;
    const __m128i mask = _mm_set1_epi8(15);
    for (size_t n = 0; n < N; n++) {
        __m256 acc[NBITS_GEMV_ROWS];
        float corr[NBITS_GEMV_ROWS];
#pragma GCC unroll 4
        for (size_t m = 0; m < M; m++) {
            acc[m] = _mm256_setzero_ps();
            corr[m] = bias ? bias[n] : 0.f;
        }
        const uint8_t *src = w->b + n * nb * blob;
        for (size_t j = 0; j < nb; j++, src += blob) {
            float s = w->scales[n * nb + j], z;
            nbits_zp(w, n, j, nb, &z);
            __m256 blk[NBITS_GEMV_ROWS];
#pragma GCC unroll 4
            for (size_t m = 0; m < M; m++) blk[m] = _mm256_setzero_ps();
            const float *a = ap + j * bs;
            for (size_t i = 0; i < blob; i += 16, a += 32) {
                __m128i x = blob - i >= 16 ? _mm_loadu_si128((const __m128i *)(src + i))
                                           : _mm_loadl_epi64((const __m128i *)(src + i));
                __m128i lo = _mm_and_si128(x, mask), hi = _mm_and_si128(_mm_srli_epi16(x, 4), mask);
                __m128i e0 = _mm_unpacklo_epi8(lo, hi), e1 = _mm_unpackhi_epi8(lo, hi);
                __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(e0));
                __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(e0, 8)));
                if (blob - i >= 16) {
                    __m256 f2 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(e1));
                    __m256 f3 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(e1, 8)));
#pragma GCC unroll 4
                    for (size_t m = 0; m < M; m++) {
                        const float *ar = a + m * Kp;
                        __m256 p0 = _mm256_mul_ps(_mm256_loadu_ps(ar), f0);
                        __m256 p1 = _mm256_mul_ps(_mm256_loadu_ps(ar + 8), f1);
                        p0 = _mm256_fmadd_ps(_mm256_loadu_ps(ar + 16), f2, p0);
                        p1 = _mm256_fmadd_ps(_mm256_loadu_ps(ar + 24), f3, p1);
                        blk[m] = _mm256_add_ps(blk[m], _mm256_add_ps(p0, p1));
                    }
                } else {
#pragma GCC unroll 4
                    for (size_t m = 0; m < M; m++) {
                        const float *ar = a + m * Kp;
                        __m256 p0 = _mm256_mul_ps(_mm256_loadu_ps(ar), f0);
                        p0 = _mm256_fmadd_ps(_mm256_loadu_ps(ar + 8), f1, p0);
                        blk[m] = _mm256_add_ps(blk[m], p0);
                    }
                }
            }
            const __m256 sv = _mm256_set1_ps(s);
#pragma GCC unroll 4
            for (size_t m = 0; m < M; m++) {
                acc[m] = _mm256_fmadd_ps(blk[m], sv, acc[m]);
                corr[m] -= s * z * asum[m * nb + j];
            }
        }
#pragma GCC unroll 4
        for (size_t m = 0; m < M; m++) {
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[m]), _mm256_extractf128_ps(acc[m], 1));
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
            Y[m * ldy + n] = _mm_cvtss_f32(h) + corr[m];
        }
    }
}
#else
/* 4-bit, up to NBITS_GEMV_ROWS rows, straight from the nibbles: per block,
 * sum a[k] * q[k] in vectors, then scale once and subtract z * s * sum(a) of
 * the block (precomputed). ap holds the rows zero-padded to whole blocks. */
static inline __attribute__((always_inline)) TGT void SFX(gemv4_rows)(const float *ap, const float *asum, size_t Kp,
                                                                       const sk_nbits_weight *w, const float *bias,
                                                                       float *Y, size_t ldy, const size_t M)
{
    size_t N = w->N, bs = w->block_size, nb = nbits_blocks(w), blob = bs / 2;
    const v16u8 mask = (v16u8){ 0 } + 15;
    for (size_t n = 0; n < N; n++) {
        v4f acc[NBITS_GEMV_ROWS];
        float corr[NBITS_GEMV_ROWS];
#pragma GCC unroll 4
        for (size_t m = 0; m < M; m++) {
            acc[m] = (v4f){ 0, 0, 0, 0 };
            corr[m] = bias ? bias[n] : 0.f;
        }
        const uint8_t *src = w->b + n * nb * blob;
        for (size_t j = 0; j < nb; j++, src += blob) {
            float s = w->scales[n * nb + j], z;
            nbits_zp(w, n, j, nb, &z);
            v4f blk[NBITS_GEMV_ROWS][2];
#pragma GCC unroll 4
            for (size_t m = 0; m < M; m++) blk[m][0] = blk[m][1] = (v4f){ 0, 0, 0, 0 };
            const float *a = ap + j * bs;
            size_t i = 0;
            for (; i + 16 <= blob; i += 16, a += 32) {
                v16u8 x;
                memcpy(&x, src + i, 16);
                v16u8 lo = x & mask, hi = (x >> 4) & mask;
                v4f f[8];
                nib_to_q(__builtin_shufflevector(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), f);
                nib_to_q(__builtin_shufflevector(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), f + 4);
#pragma GCC unroll 4
                for (size_t m = 0; m < M; m++) {
                    const float *ar = a + m * Kp;
                    v4f p0 = ld4(ar) * f[0], p1 = ld4(ar + 4) * f[1], p2 = ld4(ar + 8) * f[2], p3 = ld4(ar + 12) * f[3];
                    p0 = FMADD4(p0, ld4(ar + 16), f[4]);
                    p1 = FMADD4(p1, ld4(ar + 20), f[5]);
                    p2 = FMADD4(p2, ld4(ar + 24), f[6]);
                    p3 = FMADD4(p3, ld4(ar + 28), f[7]);
                    blk[m][0] += (p0 + p1) + (p2 + p3);
                }
            }
            if (i < blob) { /* block_size 16: 8 bytes */
                uint64_t u;
                memcpy(&u, src + i, 8);
                v16u8 x = (v16u8)(v2u64){ u, 0 };
                v16u8 lo = x & mask, hi = (x >> 4) & mask;
                v4f f[4];
                nib_to_q(__builtin_shufflevector(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), f);
#pragma GCC unroll 4
                for (size_t m = 0; m < M; m++) {
                    const float *ar = a + m * Kp;
                    v4f p0 = ld4(ar) * f[0], p1 = ld4(ar + 4) * f[1];
                    p0 = FMADD4(p0, ld4(ar + 8), f[2]);
                    p1 = FMADD4(p1, ld4(ar + 12), f[3]);
                    blk[m][1] += p0 + p1;
                }
            }
            const v4f sv = (v4f){ 0, 0, 0, 0 } + s;
#pragma GCC unroll 4
            for (size_t m = 0; m < M; m++) {
                acc[m] = FMADD4(acc[m], blk[m][0] + blk[m][1], sv);
                corr[m] -= s * z * asum[m * nb + j];
            }
        }
#pragma GCC unroll 4
        for (size_t m = 0; m < M; m++) Y[m * ldy + n] = (acc[m][0] + acc[m][1]) + (acc[m][2] + acc[m][3]) + corr[m];
    }
}

#endif

static TGT sk_status SFX(nbits_gemv)(size_t M, const float *A, size_t lda, const sk_nbits_weight *w,
                                     const float *bias, float *Y, size_t ldy)
{
    if (w->bits != 4) return SFX(nbits_gemv_any)(M, A, lda, w, bias, Y, ldy);
    size_t K = w->K, bs = w->block_size, nb = nbits_blocks(w), Kp = nb * bs;
    float *ap = scratch_alloc(M * Kp + M * nb, sizeof *ap);
    if (!ap) return SK_ENOMEM;
    float *asum = ap + M * Kp;
    for (size_t m = 0; m < M; m++) {
        memcpy(ap + m * Kp, A + m * lda, K * sizeof *ap);
        memset(ap + m * Kp + K, 0, (Kp - K) * sizeof *ap);
        for (size_t j = 0; j < nb; j++) {
            float t = 0;
            for (size_t i = 0; i < bs; i++) t += ap[m * Kp + j * bs + i];
            asum[m * nb + j] = t;
        }
    }
    switch (M) {
    case 1: SFX(gemv4_rows)(ap, asum, Kp, w, bias, Y, ldy, 1); break;
    case 2: SFX(gemv4_rows)(ap, asum, Kp, w, bias, Y, ldy, 2); break;
    case 3: SFX(gemv4_rows)(ap, asum, Kp, w, bias, Y, ldy, 3); break;
    default: SFX(gemv4_rows)(ap, asum, Kp, w, bias, Y, ldy, NBITS_GEMV_ROWS); break;
    }
    free(ap);
    return SK_OK;
}

#undef CPV
#undef QNR
#undef QMR
#undef QKC
#undef QNC
#undef QMC

#endif
