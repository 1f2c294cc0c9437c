/* Float32 matrix multiply: C = alpha * op(A) * op(B) + beta * C, row-major.
 *
 * op(A) is M x K: A itself (M rows of stride lda) or, with trans_a, the
 * transpose of a K x M matrix A (K rows of stride lda). Likewise op(B) is
 * K x N: B (K rows of stride ldb) or, with trans_b, the transpose of an N x K
 * matrix. C is M rows of stride ldc. With beta == 0, C is written without
 * being read (NaN or garbage in C does not leak into the result).
 *
 * sk_gemm_f32 is the fast path: packed, cache-blocked, with a register-blocked
 * micro-kernel written with GCC vector extensions (SSE2, NEON or wasm SIMD128
 * from the same source; on x86-64 an AVX2+FMA or AVX-512 instance is picked
 * at run time when the CPU has it). sk_gemm_f32_ref is the reference triple
 * loop (double accumulation) that tests check the fast path against. */
#ifndef SK_GEMM_H
#define SK_GEMM_H

#include <stddef.h>

#include "sk_error.h"

/* threads <= 1 runs on the calling thread; more splits C over N (or M) into
 * that many pthreads when the problem is big enough to pay for them.
 * Packing buffers come from a per-thread cache that grows to the largest job
 * seen (a few MB at most) and is freed when the thread exits, so repeated
 * calls do not allocate. Fails only with SK_ENOMEM (packing buffers) or
 * SK_EINVAL (a stride smaller than its row); C is unspecified after a
 * failure. */
sk_status sk_gemm_f32(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                      const float *A, size_t lda, const float *B, size_t ldb, float beta,
                      float *C, size_t ldc, int threads, sk_error *err);

/* Reference: the plain loop, same contract, never fails. */
void sk_gemm_f32_ref(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                     const float *A, size_t lda, const float *B, size_t ldb, float beta,
                     float *C, size_t ldc);

/* Name of the micro-kernel sk_gemm_f32 uses on this machine ("avx2-fma 6x16",
 * "generic 6x8", ...), for benchmarks and reports. */
const char *sk_gemm_kernel_name(void);

/* The kernels this build has: "generic" everywhere, plus "avx2" and "avx512"
 * on x86-64. sk_gemm_select(id) makes sk_gemm_f32 use one of them (NULL: the
 * best the CPU has, the default); it returns 0, or -1 when id is unknown or
 * the CPU cannot run it. For tests and benchmarks; not thread-safe. */
size_t sk_gemm_kernel_count(void);
const char *sk_gemm_kernel_id(size_t i);
int sk_gemm_select(const char *id);

#endif
