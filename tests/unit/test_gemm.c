/* The float32 GEMM fast path (lib/sk_gemm.c) against its reference loop:
 * every micro-kernel the CPU can run, odd sizes that hit every packing and
 * tiling edge, all transpose combinations, alpha/beta, row strides, threads.
 * With SK_GEMM_BENCH=1 in the environment it also prints single-thread
 * GFLOP/s at BERT's shapes next to a naive triple loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sk_gemm.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float frnd(void) { return (float)(rnd() % 20001) / 10000.0f - 1.0f; }

/* One case for the currently selected kernel. Strides are padded so that a
 * kernel writing past a row would be caught, and the padding must survive. */
static void check_case(int ta, int tb, size_t M, size_t N, size_t K, float alpha, float beta, int threads)
{
    size_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    size_t lda = ac + 3, ldb = bc + 1, ldc = N + 2;
    float *A = malloc((ar * lda + 1) * sizeof *A), *B = malloc((br * ldb + 1) * sizeof *B);
    float *C0 = malloc((M * ldc + 1) * sizeof *C0), *C1 = malloc((M * ldc + 1) * sizeof *C1);
    float *C2 = malloc((M * ldc + 1) * sizeof *C2);
    assert_non_null(A);
    assert_non_null(B);
    assert_non_null(C0);
    assert_non_null(C1);
    assert_non_null(C2);
    for (size_t i = 0; i < ar * lda + 1; i++) A[i] = frnd();
    for (size_t i = 0; i < br * ldb + 1; i++) B[i] = frnd();
    for (size_t i = 0; i < M * ldc + 1; i++) C0[i] = frnd();
    if (beta == 0) /* beta 0 must ignore C, NaN included */
        for (size_t i = 0; i < M; i++) C0[i * ldc] = NAN;
    memcpy(C1, C0, (M * ldc + 1) * sizeof *C0);
    memcpy(C2, C0, (M * ldc + 1) * sizeof *C0);
    sk_gemm_f32_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc);
    sk_error err = { 0 };
    assert_int_equal(sk_gemm_f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc, threads, &err), SK_OK);
    for (size_t i = 0; i < M; i++) {
        for (size_t j = 0; j < N; j++) {
            /* bound: float rounding of a K-term dot product of values in [-1, 1] */
            double tol = 1e-6 * (double)(K + 4) * fabs(alpha) + 1e-6 * fabs(beta) + 1e-6;
            double d = fabs((double)C1[i * ldc + j] - (double)C2[i * ldc + j]);
            if (!(d <= tol)) {
                fprintf(stderr, "gemm[%s] ta %d tb %d %zux%zux%zu alpha %g beta %g threads %d: C[%zu][%zu] = %g, ref %g\n",
                        sk_gemm_kernel_name(), ta, tb, M, N, K, (double)alpha, (double)beta, threads, i, j,
                        (double)C2[i * ldc + j], (double)C1[i * ldc + j]);
                fail();
            }
        }
        for (size_t j = N; j < ldc && i + 1 < M; j++) assert_true(C2[i * ldc + j] == C0[i * ldc + j]);
    }
    assert_true(C2[M * ldc] == C0[M * ldc]);
    free(A);
    free(B);
    free(C0);
    free(C1);
    free(C2);
}

static void test_gemm_odd_sizes(void **state)
{
    (void)state;
    static const size_t sz[] = { 1, 3, 17, 65, 129 };
    size_t ns = sizeof sz / sizeof sz[0];
    for (size_t k = 0; k < sk_gemm_kernel_count(); k++) {
        const char *id = sk_gemm_kernel_id(k);
        if (sk_gemm_select(id)) {
            printf("skipped: gemm kernel %s (this CPU lacks it)\n", id);
            continue;
        }
        for (size_t a = 0; a < ns; a++)
            for (size_t b = 0; b < ns; b++)
                for (size_t c = 0; c < ns; c++)
                    for (int t = 0; t < 4; t++)
                        check_case(t & 1, t >> 1, sz[a], sz[b], sz[c], 1.0f, 0.0f, 1);
    }
    sk_gemm_select(NULL);
}

static void test_gemm_alpha_beta(void **state)
{
    (void)state;
    for (size_t k = 0; k < sk_gemm_kernel_count(); k++) {
        if (sk_gemm_select(sk_gemm_kernel_id(k))) continue;
        for (int t = 0; t < 4; t++) {
            check_case(t & 1, t >> 1, 33, 47, 29, 0.5f, 1.0f, 1);
            check_case(t & 1, t >> 1, 33, 47, 29, -2.0f, 0.25f, 1);
            check_case(t & 1, t >> 1, 2, 47, 29, 1.5f, -1.0f, 1); /* small-M path */
            check_case(t & 1, t >> 1, 9, 5, 0, 1.0f, 0.5f, 1);    /* K = 0: C = beta C */
            check_case(t & 1, t >> 1, 9, 5, 7, 0.0f, 2.0f, 1);    /* alpha 0 */
        }
    }
    sk_gemm_select(NULL);
}

/* Sizes past every cache block (mc, kc, nc) of every kernel. */
static void test_gemm_blocks(void **state)
{
    (void)state;
    for (size_t k = 0; k < sk_gemm_kernel_count(); k++) {
        if (sk_gemm_select(sk_gemm_kernel_id(k))) continue;
        check_case(0, 0, 200, 70, 600, 1.0f, 1.0f, 1);
        check_case(1, 1, 97, 2200, 33, 1.0f, 0.0f, 1);
        check_case(0, 1, 130, 300, 520, 0.75f, 0.0f, 1);
    }
    sk_gemm_select(NULL);
}

static void test_gemm_threads(void **state)
{
    (void)state;
    check_case(0, 0, 128, 256, 256, 1.0f, 0.0f, 2);
    check_case(0, 1, 128, 20, 1000, 1.0f, 1.0f, 3); /* narrow N: split over M */
    check_case(1, 0, 300, 515, 64, 1.0f, 0.5f, 4);
    check_case(0, 0, 5, 7, 3, 1.0f, 0.0f, 8);        /* too small to split */
}

static void test_gemm_bad_stride(void **state)
{
    (void)state;
    float a[4] = { 0 }, b[4] = { 0 }, c[4] = { 0 };
    sk_error err = { 0 };
    assert_int_equal(sk_gemm_f32(0, 0, 2, 2, 2, 1, a, 1, b, 2, 0, c, 2, 1, &err), SK_EINVAL);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(sk_gemm_select("no-such-kernel"), -1);
    assert_non_null(sk_gemm_kernel_name());
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void naive(size_t M, size_t N, size_t K, const float *A, const float *B, float *C)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            float s = 0;
            for (size_t k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
            C[i * N + j] = s;
        }
}

/* Fastest single call over about 0.3 s of calls (the machine may be
 * shared; the fastest call is the one nothing else interrupted). */
static double gflops(int which, int tb, size_t M, size_t N, size_t K, const float *A, const float *B, float *C)
{
    double best = 1e30, start = now();
    do {
        double t0 = now();
        if (which) sk_gemm_f32(0, tb, M, N, K, 1, A, K, B, tb ? K : N, 0, C, N, 1, NULL);
        else naive(M, N, K, A, B, C);
        double t = now() - t0;
        if (t < best) best = t;
    } while (now() - start < 0.3);
    return 2.0 * (double)M * (double)N * (double)K / best / 1e9;
}

static void test_gemm_bench(void **state)
{
    (void)state;
    const char *env = getenv("SK_GEMM_BENCH");
    if (!env || !*env || *env == '0') {
        printf("skipped: gemm benchmark (set SK_GEMM_BENCH=1)\n");
        return;
    }
    static const size_t shapes[][3] = { { 128, 256, 256 }, { 128, 1024, 256 }, { 128, 256, 1024 }, { 128, 128, 32 },
                                        { 128, 32, 128 } };
    for (size_t k = 0; k < sk_gemm_kernel_count(); k++) {
        if (sk_gemm_select(sk_gemm_kernel_id(k))) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            size_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *A = malloc(M * K * sizeof *A), *B = malloc(K * N * sizeof *B), *C = malloc(M * N * sizeof *C);
            assert_non_null(A);
            assert_non_null(B);
            assert_non_null(C);
            for (size_t i = 0; i < M * K; i++) A[i] = frnd();
            for (size_t i = 0; i < K * N; i++) B[i] = frnd();
            double gf = gflops(1, 0, M, N, K, A, B, C), gt = gflops(1, 1, M, N, K, A, B, C);
            double gn = k == 0 ? gflops(0, 0, M, N, K, A, B, C) : 0;
            printf("gemm %-14s M=%4zu N=%4zu K=%4zu  %6.1f GFLOP/s (B^T %6.1f)", sk_gemm_kernel_name(), M, N, K, gf, gt);
            if (k == 0) printf("  naive loop %5.2f GFLOP/s", gn);
            printf("\n");
            free(A);
            free(B);
            free(C);
        }
    }
    sk_gemm_select(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_odd_sizes),
        cmocka_unit_test(test_gemm_alpha_beta),
        cmocka_unit_test(test_gemm_blocks),
        cmocka_unit_test(test_gemm_threads),
        cmocka_unit_test(test_gemm_bad_stride),
        cmocka_unit_test(test_gemm_bench),
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
