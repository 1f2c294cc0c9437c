/* Float32 GEMM: packed, cache-blocked (Goto/BLIS loop order), with an MR x NR
 * register-blocked micro-kernel written once with GCC vector extensions and
 * instantiated per instruction set. See sk_gemm.h for the contract. */
#include "sk_gemm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(SK_NO_THREADS) && !(defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__))
#define SK_GEMM_THREADS 1
#include <pthread.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(SK_NO_DISPATCH)
#define SK_GEMM_X86 1
#endif

/* GCC in -std=c11 mode does not contract a*b+c into an FMA; ask for it on the
 * kernels whose instruction set has one. Clang contracts by default. */
#if defined(__clang__)
#define SK_CONTRACT
#else
#define SK_CONTRACT __attribute__((optimize("fp-contract=fast")))
#endif

typedef void (*sk_gemm_kernel_fn)(size_t kc, const float *restrict a, const float *restrict b, size_t ldb,
                                  float *restrict c, size_t ldc, size_t m, size_t n, int acc);

typedef struct sk_gemm_kernel {
    const char *id;
    const char *name;
    size_t mr, nr;          /* register block */
    size_t mc, kc, nc;      /* cache blocks: A block mc x kc (L2), B panel kc x nc */
    sk_gemm_kernel_fn run;
} sk_gemm_kernel;

/* One micro-kernel: c[0..m)[0..n) (+)= sum_k a[k*MR+i] * b[k*ldb+j] over kc,
 * with a packed (zero-padded to MR rows) and b either packed (ldb = NR) or
 * the caller's own rows: NR readable floats from each. acc 0 stores, 1
 * accumulates. VT is a float vector of VW lanes; NR = NV * VW. */
#define SK_GEMM_DEFINE_KERNEL(NAME, ATTR, VT, VW, MR, NV)                                       \
    ATTR static void NAME(size_t kc, const float *restrict a, const float *restrict b, size_t ldb, \
                          float *restrict c, size_t ldc, size_t m, size_t n, int acc)             \
    {                                                                                            \
        VT r[MR][NV];                                                                            \
        _Pragma("GCC unroll 32") for (int i = 0; i < MR; i++)                                   \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) r[i][v] = (VT){ 0 };           \
        for (size_t k = 0; k < kc; k++) {                                                        \
            VT bv[NV];                                                                           \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)                                 \
                memcpy(&bv[v], b + v * VW, sizeof(VT));                                         \
            _Pragma("GCC unroll 32") for (int i = 0; i < MR; i++) {                             \
                VT av = a[i] - (VT){ 0 };                                                        \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) r[i][v] += av * bv[v];     \
            }                                                                                    \
            a += MR;                                                                             \
            b += ldb;                                                                            \
        }                                                                                        \
        if (m == MR && n == NV * VW) {                                                           \
            _Pragma("GCC unroll 32") for (int i = 0; i < MR; i++)                               \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                          \
                    float *p = c + (size_t)i * ldc + v * VW;                                     \
                    VT x = r[i][v];                                                              \
                    if (acc) {                                                                   \
                        VT y;                                                                    \
                        memcpy(&y, p, sizeof y);                                                 \
                        x += y;                                                                  \
                    }                                                                            \
                    memcpy(p, &x, sizeof x);                                                     \
                }                                                                                \
        } else {                                                                                 \
            float t[MR][NV * VW];                                                                \
            memcpy(t, r, sizeof t);                                                              \
            for (size_t i = 0; i < m; i++)                                                       \
                for (size_t j = 0; j < n; j++)                                                   \
                    c[i * ldc + j] = acc ? c[i * ldc + j] + t[i][j] : t[i][j];                   \
        }                                                                                        \
    }

typedef float sk_v4f __attribute__((vector_size(16)));
#if !defined(__wasm_simd128__)
SK_GEMM_DEFINE_KERNEL(kernel_generic_6x8, , sk_v4f, 4, 6, 2)
#endif

#ifdef SK_GEMM_X86
typedef float sk_v8f __attribute__((vector_size(32)));
typedef float sk_v16f __attribute__((vector_size(64)));
SK_GEMM_DEFINE_KERNEL(kernel_avx2_6x16, __attribute__((target("avx2,fma"))) SK_CONTRACT, sk_v8f, 8, 6, 2)
SK_GEMM_DEFINE_KERNEL(kernel_avx512_12x32, __attribute__((target("avx512f,fma"))) SK_CONTRACT, sk_v16f, 16, 12, 2)
#endif

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
/* wasm32: V8 keeps about ten vectors in registers and spills the generic
 * kernel's twelve accumulators (16 GMAC/s in the kernel alone); MR x NR =
 * WASM_MR x 8 keeps eight, and A is broadcast with v128.load32_splat, one
 * load in V8 instead of a load and a shuffle. */
#define WASM_MR 4 /* the name in kernels[] says 4x8 */
#define WASM_NV 2
static void kernel_wasm(size_t kc, const float *restrict a, const float *restrict b, size_t ldb, float *restrict c,
                        size_t ldc, size_t m, size_t n, int acc)
{
    v128_t r[WASM_MR][WASM_NV];
#pragma GCC unroll 8
    for (int i = 0; i < WASM_MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < WASM_NV; v++) r[i][v] = wasm_f32x4_splat(0);
    for (size_t k = 0; k < kc; k++, a += WASM_MR, b += ldb) {
        v128_t bv[WASM_NV];
#pragma GCC unroll 4
        for (int v = 0; v < WASM_NV; v++) bv[v] = wasm_v128_load(b + 4 * v);
#pragma GCC unroll 8
        for (int i = 0; i < WASM_MR; i++) {
            v128_t av = wasm_v128_load32_splat(a + i);
#pragma GCC unroll 4
            for (int v = 0; v < WASM_NV; v++) r[i][v] = wasm_f32x4_add(r[i][v], wasm_f32x4_mul(av, bv[v]));
        }
    }
    if (m == WASM_MR && n == 4 * WASM_NV) {
#pragma GCC unroll 8
        for (int i = 0; i < WASM_MR; i++)
#pragma GCC unroll 4
            for (int v = 0; v < WASM_NV; v++) {
                float *p = c + (size_t)i * ldc + 4 * v;
                wasm_v128_store(p, acc ? wasm_f32x4_add(r[i][v], wasm_v128_load(p)) : r[i][v]);
            }
        return;
    }
    float t[WASM_MR][4 * WASM_NV];
#pragma GCC unroll 8
    for (int i = 0; i < WASM_MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < WASM_NV; v++) wasm_v128_store(t[i] + 4 * v, r[i][v]);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) c[i * ldc + j] = acc ? c[i * ldc + j] + t[i][j] : t[i][j];
}
#endif

/* kernels[0] runs everywhere; the others when cpu_has says so. */
static const sk_gemm_kernel kernels[] = {
#if defined(__wasm_simd128__)
    { "wasm", "wasm-simd128 4x8", WASM_MR, 4 * WASM_NV, 96, 256, 2048, kernel_wasm },
#else
    { "generic", "generic 6x8", 6, 8, 96, 256, 2048, kernel_generic_6x8 },
#endif
#ifdef SK_GEMM_X86
    { "avx2", "avx2-fma 6x16", 6, 16, 96, 256, 2048, kernel_avx2_6x16 },
    { "avx512", "avx512f 12x32", 12, 32, 96, 256, 2048, kernel_avx512_12x32 },
#endif
};
#define N_KERNELS (sizeof kernels / sizeof kernels[0])

static const sk_gemm_kernel *selected;

static int cpu_has(const sk_gemm_kernel *k)
{
#ifdef SK_GEMM_X86
    __builtin_cpu_init();
    if (!strcmp(k->id, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!strcmp(k->id, "avx512")) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#endif
    (void)k;
    return 1;
}

static const sk_gemm_kernel *pick_kernel(void)
{
    if (selected) return selected;
    for (size_t i = N_KERNELS; i-- > 1;)
        if (cpu_has(&kernels[i])) return &kernels[i];
    return &kernels[0];
}

size_t sk_gemm_kernel_count(void)
{
    return N_KERNELS;
}

const char *sk_gemm_kernel_id(size_t i)
{
    return i < N_KERNELS ? kernels[i].id : NULL;
}

int sk_gemm_select(const char *id)
{
    if (!id) {
        selected = NULL;
        return 0;
    }
    for (size_t i = 0; i < N_KERNELS; i++)
        if (!strcmp(kernels[i].id, id)) {
            if (!cpu_has(&kernels[i])) return -1;
            selected = &kernels[i];
            return 0;
        }
    return -1;
}

const char *sk_gemm_kernel_name(void)
{
    return pick_kernel()->name;
}

/* ---- reference --------------------------------------------------------- */

void sk_gemm_f32_ref(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                     const float *A, size_t lda, const float *B, size_t ldb, float beta,
                     float *C, size_t ldc)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0;
            for (size_t k = 0; k < K; k++) {
                float a = trans_a ? A[k * lda + i] : A[i * lda + k];
                float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                s += (double)a * b;
            }
            float r = alpha * (float)s;
            C[i * ldc + j] = beta == 0 ? r : r + beta * C[i * ldc + j];
        }
}

/* ---- packing ----------------------------------------------------------- */

typedef struct gemm_job {
    int trans_a, trans_b;
    size_t M, N, K;
    float alpha, beta;
    const float *A, *B;
    size_t lda, ldb;
    float *C;
    size_t ldc;
} gemm_job;

/* mc x kc block of alpha*op(A) at (ic, pc), in slivers of mr rows, k-major. */
static void pack_a(float *restrict dst, const gemm_job *g, size_t mr, size_t ic, size_t pc,
                   size_t mc, size_t kc)
{
    float alpha = g->alpha;
    for (size_t s = 0; s < mc; s += mr, dst += mr * kc) {
        size_t m = mc - s < mr ? mc - s : mr;
        if (!g->trans_a) {
            const float *src = g->A + (ic + s) * g->lda + pc;
            size_t lda = g->lda, i = 0;
            for (; i + 4 <= m; i += 4) { /* 4 x 4 blocks: load rows, transpose, store k-slices */
                const float *r = src + i * lda;
                size_t k = 0;
                for (; k + 4 <= kc; k += 4) {
                    sk_v4f r0, r1, r2, r3;
                    memcpy(&r0, r + k, sizeof r0);
                    memcpy(&r1, r + lda + k, sizeof r1);
                    memcpy(&r2, r + 2 * lda + k, sizeof r2);
                    memcpy(&r3, r + 3 * lda + k, sizeof r3);
                    sk_v4f t0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5);
                    sk_v4f t1 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);
                    sk_v4f t2 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5);
                    sk_v4f t3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
                    sk_v4f c0 = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
                    sk_v4f c1 = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
                    sk_v4f c2 = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
                    sk_v4f c3 = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
                    memcpy(dst + k * mr + i, &c0, sizeof c0);
                    memcpy(dst + (k + 1) * mr + i, &c1, sizeof c1);
                    memcpy(dst + (k + 2) * mr + i, &c2, sizeof c2);
                    memcpy(dst + (k + 3) * mr + i, &c3, sizeof c3);
                }
                for (; k < kc; k++)
                    for (size_t j = 0; j < 4; j++) dst[k * mr + i + j] = r[j * lda + k];
            }
            for (; i < m; i++)
                for (size_t k = 0; k < kc; k++) dst[k * mr + i] = src[i * lda + k];
            if (m < mr)
                for (size_t k = 0; k < kc; k++)
                    for (size_t j = m; j < mr; j++) dst[k * mr + j] = 0;
        } else {
            for (size_t k = 0; k < kc; k++) {
                const float *src = g->A + (pc + k) * g->lda + ic + s;
                float *d = dst + k * mr;
                memcpy(d, src, m * sizeof *d);
                for (size_t i = m; i < mr; i++) d[i] = 0;
            }
        }
        if (alpha != 1)
            for (size_t i = 0; i < mr * kc; i++) dst[i] *= alpha;
    }
}

/* kc x n (n <= nr) sliver of op(B) at (pc, j0), k-major, zero-padded to nr
 * columns. */
static void pack_b_sliver(float *restrict dst, const gemm_job *g, size_t nr, size_t pc, size_t j0, size_t kc,
                          size_t n)
{
    if (!g->trans_b) {
        for (size_t k = 0; k < kc; k++) {
            const float *src = g->B + (pc + k) * g->ldb + j0;
            float *d = dst + k * nr;
            size_t j = 0;
            for (; j + 4 <= n; j += 4) {
                sk_v4f v;
                memcpy(&v, src + j, sizeof v);
                memcpy(d + j, &v, sizeof v);
            }
            for (; j < n; j++) d[j] = src[j];
            for (; j < nr; j++) d[j] = 0;
        }
    } else {
        /* B is N x K: read 4 columns of k at a time from each of the n rows */
        const float *src = g->B + j0 * g->ldb + pc;
        size_t k = 0;
        for (; k + 4 <= kc; k += 4) {
            float *d = dst + k * nr;
            for (size_t j = 0; j < n; j++) {
                const float *r = src + j * g->ldb + k;
                d[j] = r[0];
                d[nr + j] = r[1];
                d[2 * nr + j] = r[2];
                d[3 * nr + j] = r[3];
            }
            for (size_t j = n; j < nr; j++) d[j] = d[nr + j] = d[2 * nr + j] = d[3 * nr + j] = 0;
        }
        for (; k < kc; k++) {
            float *d = dst + k * nr;
            for (size_t j = 0; j < n; j++) d[j] = src[j * g->ldb + k];
            for (size_t j = n; j < nr; j++) d[j] = 0;
        }
    }
}

/* ---- small M: no packing, C rows as axpy / dot products ------------------- */

static void gemv_rows(const gemm_job *g)
{
    for (size_t i = 0; i < g->M; i++) {
        float *c = g->C + i * g->ldc;
        if (!g->trans_b) {
            if (g->beta == 0) memset(c, 0, g->N * sizeof *c);
            else if (g->beta != 1)
                for (size_t j = 0; j < g->N; j++) c[j] *= g->beta;
            for (size_t k = 0; k < g->K; k++) {
                float a = g->alpha * (g->trans_a ? g->A[k * g->lda + i] : g->A[i * g->lda + k]);
                const float *b = g->B + k * g->ldb;
                size_t j = 0;
                sk_v4f av = a - (sk_v4f){ 0 };
                for (; j + 4 <= g->N; j += 4) {
                    sk_v4f x, y;
                    memcpy(&x, c + j, sizeof x);
                    memcpy(&y, b + j, sizeof y);
                    x += av * y;
                    memcpy(c + j, &x, sizeof x);
                }
                for (; j < g->N; j++) c[j] += a * b[j];
            }
        } else {
            for (size_t j = 0; j < g->N; j++) {
                const float *b = g->B + j * g->ldb;
                sk_v4f acc = { 0 };
                float s = 0;
                size_t k = 0;
                if (!g->trans_a) {
                    const float *a = g->A + i * g->lda;
                    for (; k + 4 <= g->K; k += 4) {
                        sk_v4f x, y;
                        memcpy(&x, a + k, sizeof x);
                        memcpy(&y, b + k, sizeof y);
                        acc += x * y;
                    }
                    for (; k < g->K; k++) s += a[k] * b[k];
                } else {
                    for (; k < g->K; k++) s += g->A[k * g->lda + i] * b[k];
                }
                s += (acc[0] + acc[1]) + (acc[2] + acc[3]);
                float r = g->alpha * s;
                c[j] = g->beta == 0 ? r : r + g->beta * c[j];
            }
        }
    }
}

/* ---- blocked driver ------------------------------------------------------ */

static size_t round_up(size_t x, size_t m)
{
    return (x + m - 1) / m * m;
}

/* Floats of workspace gemm_blocked needs for a job of this shape. */
static size_t workspace_floats(const sk_gemm_kernel *kn, size_t M, size_t N, size_t K)
{
    size_t mc = round_up(M < kn->mc ? M : kn->mc, kn->mr);
    size_t nc = round_up(N < kn->nc ? N : kn->nc, kn->nr);
    size_t kc = K < kn->kc ? K : kn->kc;
    return round_up(mc * kc, 16) + kc * nc;
}

/* Rows of a non-transposed B at most this far apart (floats) are read in
 * place; farther apart (the pixels of a pointwise convolution) they are
 * packed, and so are rows a multiple of 4 KiB apart (all in the same cache
 * sets) for kernels whose slivers are narrower than 32 floats (measured: the
 * AVX2 kernel loses a third there, the AVX-512 one nothing). */
#define DIRECT_B_MAX_LDB 4096

/* Goto/BLIS loops: panels of B (kc x nc), blocks of A (mc x kc) packed into
 * ws, the micro-kernel over mr x nr tiles of C. A non-transposed B with
 * short rows is read in place (its rows are the nr-wide slivers the kernel
 * wants); only a ragged last sliver is packed, with zero padding. */
static void gemm_blocked(const sk_gemm_kernel *kn, const gemm_job *g, float *ws)
{
    size_t M = g->M, N = g->N, K = g->K;
    if (M == 0 || N == 0) return;
    if (K == 0 || g->alpha == 0) {
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++)
                g->C[i * g->ldc + j] = g->beta == 0 ? 0 : g->beta * g->C[i * g->ldc + j];
        return;
    }
    if (M < 4) {
        gemv_rows(g);
        return;
    }
    size_t mc_max = round_up(M < kn->mc ? M : kn->mc, kn->mr);
    size_t kc_max = K < kn->kc ? K : kn->kc;
    float *pa = ws, *pb = ws + round_up(mc_max * kc_max, 16);
    if (g->beta != 0 && g->beta != 1)
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) g->C[i * g->ldc + j] *= g->beta;
#if defined(__wasm_simd128__)
    /* wasm32: B is always packed. Read in place, a kernel's 32-byte slivers
     * straddle cache lines or not depending on where malloc put B, and rows
     * a multiple of 1 KB apart share a quarter of L1's sets: the same product
     * ran at 8.7 or 25 GMAC/s in V8 depending on the allocations before it
     * (bench/web/kernels.sh); packed, at 20-22 whatever the heap. */
    const int direct = 0;
#else
    int direct = !g->trans_b && g->ldb <= DIRECT_B_MAX_LDB && (g->ldb % 1024 != 0 || kn->nr >= 32);
#endif
    for (size_t jc = 0; jc < N; jc += kn->nc) {
        size_t nc = N - jc < kn->nc ? N - jc : kn->nc;
        size_t nfull = direct ? nc / kn->nr * kn->nr : 0;
        for (size_t pc = 0; pc < K; pc += kn->kc) {
            size_t kc = K - pc < kn->kc ? K - pc : kn->kc;
            int acc = pc > 0 || g->beta != 0;
            for (size_t jr = nfull; jr < nc; jr += kn->nr) /* packed slivers: all (B^T) or the ragged tail */
                pack_b_sliver(pb + (jr - nfull) * kc, g, kn->nr, pc, jc + jr, kc,
                              nc - jr < kn->nr ? nc - jr : kn->nr);
            for (size_t ic = 0; ic < M; ic += kn->mc) {
                size_t mc = M - ic < kn->mc ? M - ic : kn->mc;
                pack_a(pa, g, kn->mr, ic, pc, mc, kc);
                for (size_t jr = 0; jr < nc; jr += kn->nr) {
                    size_t n = nc - jr < kn->nr ? nc - jr : kn->nr;
                    const float *bp = jr < nfull ? g->B + pc * g->ldb + jc + jr : pb + (jr - nfull) * kc;
                    size_t bs = jr < nfull ? g->ldb : kn->nr;
                    float *cp = g->C + ic * g->ldc + jc + jr;
                    for (size_t ir = 0; ir < mc; ir += kn->mr) {
                        size_t m = mc - ir < kn->mr ? mc - ir : kn->mr;
                        kn->run(kc, pa + ir * kc, bp, bs, cp + ir * g->ldc, g->ldc, m, n, acc);
                    }
                }
            }
        }
    }
}

/* ---- per-thread workspace ---------------------------------------------------- */

/* Packing buffers are kept per calling thread and grow as needed, so that
 * repeated calls (every MatMul of a model) do not map and fault in fresh
 * pages. A thread's buffer is freed when the thread exits. */
typedef struct gemm_ws {
    float *buf;
    size_t cap; /* floats */
} gemm_ws;

#ifdef SK_GEMM_THREADS
static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;
static int ws_key_ok;

static void ws_destroy(void *p)
{
    gemm_ws *w = p;
    free(w->buf);
    free(w);
}

static void ws_key_init(void)
{
    ws_key_ok = pthread_key_create(&ws_key, ws_destroy) == 0;
}

static gemm_ws *ws_get(void)
{
    pthread_once(&ws_once, ws_key_init);
    if (!ws_key_ok) return NULL;
    gemm_ws *w = pthread_getspecific(ws_key);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) return NULL;
        if (pthread_setspecific(ws_key, w)) {
            free(w);
            return NULL;
        }
    }
    return w;
}
#else
static gemm_ws ws_static;
static gemm_ws *ws_get(void)
{
    return &ws_static;
}
#endif

/* A 64-byte aligned buffer of at least n floats: the thread's cached one, or
 * (when that cannot grow) a fresh one the caller must free (*owned = 1). */
static float *ws_take(size_t n, int *owned)
{
    size_t bytes;
    *owned = 0;
    if (sk_mul_size(round_up(n ? n : 1, 16), sizeof(float), &bytes)) return NULL;
    gemm_ws *w = ws_get();
    if (w && w->cap >= n) return w->buf;
    float *p = aligned_alloc(64, bytes);
    if (!p) return NULL;
    if (!w) {
        *owned = 1;
        return p;
    }
    free(w->buf);
    w->buf = p;
    w->cap = bytes / sizeof(float);
    return p;
}

#ifdef SK_GEMM_THREADS
typedef struct gemm_task {
    const sk_gemm_kernel *kn;
    gemm_job job;
    float *ws;
} gemm_task;

static void *gemm_thread(void *arg)
{
    gemm_task *t = arg;
    gemm_blocked(t->kn, &t->job, t->ws);
    return NULL;
}
#endif

#ifdef SK_GEMM_THREADS
/* Sub-problem of rows [i0, i0+m) and columns [j0, j0+n) of C. */
static gemm_job sub_job(const gemm_job *g, size_t i0, size_t m, size_t j0, size_t n)
{
    gemm_job s = *g;
    s.M = m;
    s.N = n;
    s.A = g->trans_a ? g->A + i0 : g->A + i0 * g->lda;
    s.B = g->trans_b ? g->B + j0 * g->ldb : g->B + j0;
    s.C = g->C + i0 * g->ldc + j0;
    return s;
}
#endif

sk_status sk_gemm_f32(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                      const float *A, size_t lda, const float *B, size_t ldb, float beta,
                      float *C, size_t ldc, int threads, sk_error *err)
{
    if ((trans_a ? M : K) > lda && M && K)
        return sk_error_set(err, SK_EINVAL, "gemm: lda %zu is smaller than a row of A", lda);
    if ((trans_b ? K : N) > ldb && N && K)
        return sk_error_set(err, SK_EINVAL, "gemm: ldb %zu is smaller than a row of B", ldb);
    if (N > ldc && M)
        return sk_error_set(err, SK_EINVAL, "gemm: ldc %zu is smaller than a row of C", ldc);
    gemm_job g = { trans_a, trans_b, M, N, K, alpha, beta, A, B, lda, ldb, C, ldc };
    const sk_gemm_kernel *kn = pick_kernel();
    size_t parts = 1;
#ifdef SK_GEMM_THREADS
    int by_n = 1;
    enum { MAX_THREADS = 64 };
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > 1 && 2.0 * (double)M * (double)N * (double)K >= 4e6 && M >= 4) {
        by_n = N >= (size_t)threads * kn->nr * 2 || N >= M;
        size_t len = by_n ? N : M, unit = by_n ? kn->nr : kn->mr;
        size_t chunk = round_up((len + (size_t)threads - 1) / (size_t)threads, unit);
        parts = (len + chunk - 1) / chunk;
    }
#else
    (void)threads;
#endif
    size_t per = workspace_floats(kn, M, N, K), total;
    if (sk_mul_size(per, parts, &total))
        return sk_error_set(err, SK_ENOMEM, "gemm: workspace for %zux%zux%zu is too large", M, N, K);
    int owned;
    float *ws = ws_take(total, &owned);
    if (!ws) return sk_error_set(err, SK_ENOMEM, "gemm: out of memory for packing buffers (%zux%zux%zu)", M, N, K);
#ifdef SK_GEMM_THREADS
    if (parts > 1) {
        gemm_task task[MAX_THREADS];
        pthread_t tid[MAX_THREADS];
        int started[MAX_THREADS] = { 0 };
        size_t len = by_n ? N : M, chunk = (len + parts - 1) / parts;
        chunk = round_up(chunk, by_n ? kn->nr : kn->mr);
        size_t nt = 0;
        for (size_t at = 0; at < len && nt < parts; at += chunk, nt++) {
            size_t n = len - at < chunk ? len - at : chunk;
            task[nt].kn = kn;
            task[nt].job = by_n ? sub_job(&g, 0, M, at, n) : sub_job(&g, at, n, 0, N);
            task[nt].ws = ws + nt * per;
        }
        for (size_t t = 1; t < nt; t++)
            started[t] = pthread_create(&tid[t], NULL, gemm_thread, &task[t]) == 0;
        for (size_t t = 0; t < nt; t++)
            if (t == 0 || !started[t]) gemm_blocked(kn, &task[t].job, task[t].ws);
        for (size_t t = 1; t < nt; t++)
            if (started[t]) pthread_join(tid[t], NULL);
    } else
#endif
    {
        gemm_blocked(kn, &g, ws);
    }
    if (owned) free(ws);
    return SK_OK;
}
