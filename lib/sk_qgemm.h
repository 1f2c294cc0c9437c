/* Integer and block-quantized matrix products for the quantized ops
 * (lib/sk_ops_quant.c): an 8-bit GEMM with int32 accumulation (MatMulInteger,
 * ConvInteger, QLinearMatMul, ...) and a GEMM whose right-hand side is stored
 * as N-bit blocks with a scale per block (com.microsoft MatMulNBits).
 *
 * Each product has a plain reference implementation (_ref) and a fast one; the
 * tests check that both agree. The fast kernels are written with GCC vector
 * extensions (16-byte vectors, which also compile to wasm32 SIMD128) and pick
 * wider x86 variants at run time when the CPU has them. Single-threaded. */
#ifndef SK_QGEMM_H
#define SK_QGEMM_H

#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"

/* ---- 8-bit GEMM ------------------------------------------------------- */

/* One 8-bit matrix operand: rows x cols bytes with row stride ld (bytes),
 * signed (int8) or unsigned (uint8), and zero points. zp is either a single
 * value (zp_count 1) or one value per row of A / per column of B (zp_count =
 * M or N); zp NULL means all zero points are 0. */
typedef struct sk_qmat {
    const uint8_t *data;
    size_t ld;
    int is_signed;
    const int32_t *zp;
    size_t zp_count;
} sk_qmat;

/* C[m][n] = sum_k (A[m][k] - za[m]) * (B[k][n] - zb[n]) for an M x K matrix A
 * and a K x N matrix B, into the int32 M x N matrix C (row stride ldc).
 * Accumulation wraps modulo 2^32 like ONNX Runtime's. The fast version works
 * on raw products and corrects for zero points with row and column sums; it
 * allocates scratch and fails only with SK_ENOMEM. */
sk_status sk_qgemm(size_t M, size_t N, size_t K, const sk_qmat *A, const sk_qmat *B,
                   int32_t *C, size_t ldc, sk_error *err);
void sk_qgemm_ref(size_t M, size_t N, size_t K, const sk_qmat *A, const sk_qmat *B,
                  int32_t *C, size_t ldc);

/* B packed once for many products with different A (a constant weight): on
 * CPUs with AVX-512 VNNI the kernel's panels and B's column sums, on wasm32
 * int16 panels (twice B's size), elsewhere just a reference to B. B->data must stay valid and unchanged while the pack
 * exists; its zero points are copied. sk_qgemm_pack fails only with
 * SK_ENOMEM; sk_qgemm_packed_free(NULL) is a no-op. */
typedef struct sk_qgemm_packed sk_qgemm_packed;
sk_status sk_qgemm_pack(size_t K, size_t N, const sk_qmat *B, sk_qgemm_packed **out, sk_error *err);
void sk_qgemm_packed_free(sk_qgemm_packed *p);

/* sk_qgemm with the packed B (K and N as packed): same result. */
sk_status sk_qgemm_packed_run(size_t M, const sk_qmat *A, const sk_qgemm_packed *B, int32_t *C, size_t ldc,
                              sk_error *err);

/* ---- dynamic quantization of activations ------------------------------ */

/* DynamicQuantizeLinear of n floats: *scale = (max(x, 0) - min(x, 0)) / 255,
 * *zp = saturate(round(-min / scale)), y = saturate(round(x / scale) + zp)
 * (round half to even), as ONNX defines it; the same code as the op's kernel
 * (lib/sk_ops_quant.c), so a fused kernel gets identical bytes. */
void sk_quantize_dynamic_u8(const float *x, size_t n, float *scale, uint8_t *zp, uint8_t *y);

/* ---- N-bit block-quantized GEMM (MatMulNBits) ------------------------- */

/* The weight of MatMulNBits in ONNX Runtime's layout: N columns, each of K
 * values split into n_blocks = ceil(K / block_size) blocks; block j of column n
 * is block_size * bits / 8 bytes at b + (n * n_blocks + j) * blob, values packed
 * low bits first. Value q of a block dequantizes to (q - z) * s with s =
 * scales[n * n_blocks + j] and z from zp_packed (bits-wide, packed the same
 * way, rows of ceil(n_blocks * bits / 8) bytes), else zp_float[n * n_blocks +
 * j], else 2^(bits - 1). g_idx (optional, K entries) names the block of each k
 * instead of k / block_size; only the reference kernel handles it. */
typedef struct sk_nbits_weight {
    size_t K, N, block_size;
    int bits;                  /* 2, 4 or 8 */
    const uint8_t *b;
    const float *scales;
    const uint8_t *zp_packed;  /* or NULL */
    const float *zp_float;     /* or NULL */
    const int32_t *g_idx;      /* or NULL */
} sk_nbits_weight;

/* Checks bits, block_size (power of two >= 16) and sizes; SK_EINVAL with a
 * sentence otherwise. */
sk_status sk_nbits_check(const sk_nbits_weight *w, sk_error *err);

/* Y[m][n] = sum_k A[m][k] * W[k][n] + (bias ? bias[n] : 0) for M rows of A
 * (row stride lda floats) into Y (row stride ldy). The fast version
 * dequantizes a chunk of columns at a time into a small buffer and so reads
 * the packed weights once per call; for more than a few rows it multiplies
 * the chunks with sk_gemm_f32 on up to threads threads. Fails only with
 * SK_ENOMEM, or SK_EUNSUPPORTED for g_idx (use the reference). */
sk_status sk_nbits_gemm(size_t M, const float *A, size_t lda, const sk_nbits_weight *w,
                        const float *bias, float *Y, size_t ldy, int threads, sk_error *err);
void sk_nbits_gemm_ref(size_t M, const float *A, size_t lda, const sk_nbits_weight *w,
                       const float *bias, float *Y, size_t ldy);

/* Dequantizes column n of w (K floats) into out. */
void sk_nbits_dequant_column(const sk_nbits_weight *w, size_t n, float *out);

/* ---- single-precision helper ----------------------------------------- */

/* Y[m][n] = sum_k A[m][k] * B[k][n], plain triple loop: the "fp32 naive"
 * baseline benchmarks compare against. */
void sk_sgemm_naive(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B, size_t ldb,
                    float *Y, size_t ldy);

/* Name of the kernel variant the fast paths use ("vnni": AVX-512 VNNI int8
 * and AVX2 4-bit; "avx2"; "sse2" / "wasm-simd128" / "generic": the 16-byte
 * kernels), for benchmarks and reports. */
const char *sk_qgemm_variant(void);

/* Forces a variant: "generic" (the 16-byte kernels), "avx2", "vnni"; NULL
 * restores the best the CPU has. Returns 0, or -1 when this build or CPU
 * lacks it. For tests and benchmarks; not thread-safe. */
int sk_qgemm_select(const char *id);

#endif
