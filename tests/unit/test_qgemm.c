/* Fast vs reference for the 8-bit and N-bit GEMM kernels (lib/sk_qgemm.c), on
 * odd sizes that exercise every edge of the packing and tiling. With
 * SK_QGEMM_BENCH=1 in the environment it also prints single-thread speeds. */
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
#include "sk_qgemm.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float frnd(void) { return (float)(rnd() % 20001) / 10000.0f - 1.0f; }

static void fill_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd();
}

/* One int8 case: every sign combination and zero-point mode. */
static void check_qgemm(size_t M, size_t N, size_t K)
{
    size_t lda = K + 3, ldb = N + 5, ldc = N + 1;
    uint8_t *a = malloc(M * lda + 1), *b = malloc(K * ldb + 1);
    int32_t *c1 = malloc((M * ldc + 1) * sizeof *c1), *c2 = malloc((M * ldc + 1) * sizeof *c2);
    int32_t *za = malloc((M + 1) * sizeof *za), *zb = malloc((N + 1) * sizeof *zb);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c1);
    assert_non_null(c2);
    assert_non_null(za);
    assert_non_null(zb);
    fill_bytes(a, M * lda + 1);
    fill_bytes(b, K * ldb + 1);
    for (int as = 0; as < 2; as++)
        for (int bs = 0; bs < 2; bs++)
            for (int zmode = 0; zmode < 3; zmode++) {
                for (size_t i = 0; i < M; i++) za[i] = as ? (int8_t)rnd() : (uint8_t)rnd();
                for (size_t i = 0; i < N; i++) zb[i] = bs ? (int8_t)rnd() : (uint8_t)rnd();
                sk_qmat A = { a, lda, as, zmode ? za : NULL, zmode == 1 ? 1 : M };
                sk_qmat B = { b, ldb, bs, zmode ? zb : NULL, zmode == 1 ? 1 : N };
                memset(c1, 0x55, (M * ldc + 1) * sizeof *c1);
                memset(c2, 0x55, (M * ldc + 1) * sizeof *c2);
                sk_qgemm_ref(M, N, K, &A, &B, c1, ldc);
                sk_error err = { 0 };
                assert_int_equal(sk_qgemm(M, N, K, &A, &B, c2, ldc, &err), SK_OK);
                for (size_t m = 0; m < M; m++)
                    for (size_t n = 0; n < N; n++)
                        if (c1[m * ldc + n] != c2[m * ldc + n]) {
                            fprintf(stderr, "qgemm %zux%zux%zu signs %d%d zp %d: [%zu][%zu] %d != %d\n", M, N, K,
                                    as, bs, zmode, m, n, c2[m * ldc + n], c1[m * ldc + n]);
                            fail();
                        }
                /* the padding between rows is untouched */
                for (size_t m = 0; m < M; m++) assert_int_equal(c2[m * ldc + N], 0x55555555);
            }
    free(a);
    free(b);
    free(c1);
    free(c2);
    free(za);
    free(zb);
}

static const char *const variants[] = { "generic", "avx2", "vnni" };
#define FOR_EACH_VARIANT(v)                                                        \
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)              \
        if (sk_qgemm_select(variants[v]) == 0 || (printf("skipped: %s kernels (not on this CPU)\n", variants[v]), 0))

static void test_qgemm_sizes(void **state)
{
    (void)state;
    static const size_t sizes[][3] = {
        { 1, 1, 1 }, { 1, 7, 3 }, { 3, 9, 5 }, { 4, 8, 2 }, { 5, 17, 33 }, { 1, 64, 64 }, { 2, 31, 129 },
        { 7, 40, 1025 }, { 13, 100, 77 }, { 100, 3, 8 }, { 97, 530, 19 }, { 33, 16, 600 },
    };
    FOR_EACH_VARIANT(v)
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) check_qgemm(sizes[i][0], sizes[i][1], sizes[i][2]);
    sk_qgemm_select(NULL);
}

static void test_qgemm_extremes(void **state)
{
    (void)state;
    /* all 255 x 255 and -128 x -128 products: pairwise int16 sums must not saturate */
    size_t M = 6, N = 19, K = 301;
    uint8_t *a = malloc(M * K), *b = malloc(K * N);
    int32_t *c1 = malloc(M * N * sizeof *c1), *c2 = malloc(M * N * sizeof *c2);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c1);
    assert_non_null(c2);
    FOR_EACH_VARIANT(var)
    for (int v = 0; v < 2; v++) {
        memset(a, v ? 0x80 : 0xff, M * K);
        memset(b, v ? 0x80 : 0xff, K * N);
        sk_qmat A = { a, K, v, NULL, 0 }, B = { b, N, v, NULL, 0 };
        sk_qgemm_ref(M, N, K, &A, &B, c1, N);
        assert_int_equal(sk_qgemm(M, N, K, &A, &B, c2, N, NULL), SK_OK);
        assert_memory_equal(c1, c2, M * N * sizeof *c1);
        assert_int_equal(c1[0], v ? 128 * 128 * (int)K : 255 * 255 * (int)K);
    }
    sk_qgemm_select(NULL);
    free(a);
    free(b);
    free(c1);
    free(c2);
}

/* ---- N-bit ---- */

typedef struct nbits_case {
    size_t K, N, block_size;
    int bits;
    int zp; /* 0 none, 1 packed, 2 float */
} nbits_case;

static void check_nbits(const nbits_case *cs, size_t M)
{
    size_t K = cs->K, N = cs->N, bsz = cs->block_size, nb = (K + bsz - 1) / bsz, blob = bsz * (size_t)cs->bits / 8;
    size_t per = 8 / (size_t)cs->bits, zrow = (nb + per - 1) / per;
    uint8_t *b = malloc(N * nb * blob), *zp = malloc(N * zrow);
    float *sc = malloc(N * nb * sizeof *sc), *zf = malloc(N * nb * sizeof *zf), *bias = malloc(N * sizeof *bias);
    size_t lda = K + 1, ldy = N + 2;
    float *A = malloc(M * lda * sizeof *A), *y1 = malloc(M * ldy * sizeof *y1), *y2 = malloc(M * ldy * sizeof *y2);
    assert_true(b && zp && sc && zf && bias && A && y1 && y2);
    fill_bytes(b, N * nb * blob);
    fill_bytes(zp, N * zrow);
    for (size_t i = 0; i < N * nb; i++) {
        sc[i] = frnd() * 0.1f;
        zf[i] = (float)(rnd() % 16) + 0.25f;
    }
    for (size_t i = 0; i < N; i++) bias[i] = frnd();
    for (size_t i = 0; i < M * lda; i++) A[i] = frnd();
    sk_nbits_weight w = { K, N, bsz, cs->bits, b, sc, cs->zp == 1 ? zp : NULL, cs->zp == 2 ? zf : NULL, NULL };
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        for (size_t i = 0; i < M * ldy; i++) y1[i] = y2[i] = -7.0f;
        sk_nbits_gemm_ref(M, A, lda, &w, with_bias ? bias : NULL, y1, ldy);
        sk_error err = { 0 };
        assert_int_equal(sk_nbits_gemm(M, A, lda, &w, with_bias ? bias : NULL, y2, ldy, 1, &err), SK_OK);
        for (size_t m = 0; m < M; m++) {
            for (size_t n = 0; n < N; n++) {
                float r = y1[m * ldy + n], f = y2[m * ldy + n];
                if (!(fabsf(r - f) <= 1e-4f * (1.0f + fabsf(r)) * sqrtf((float)K))) {
                    fprintf(stderr, "nbits M=%zu K=%zu N=%zu bs=%zu bits=%d zp=%d: [%zu][%zu] %g != %g\n", M, K, N,
                            bsz, cs->bits, cs->zp, m, n, f, r);
                    fail();
                }
            }
            assert_true(y2[m * ldy + N] == -7.0f);
        }
    }
    free(b);
    free(zp);
    free(sc);
    free(zf);
    free(bias);
    free(A);
    free(y1);
    free(y2);
}

static void test_nbits(void **state)
{
    (void)state;
    static const size_t blocks[] = { 16, 32, 64, 128 };
    static const size_t Ks[] = { 16, 100, 257, 640 };
    static const size_t Ms[] = { 1, 3, 4, 5, 8, 13 };
    static const int bitss[] = { 4, 2, 8 };
    FOR_EACH_VARIANT(v)
    for (size_t bi = 0; bi < 4; bi++)
        for (size_t ki = 0; ki < 4; ki++)
            for (int zp = 0; zp < 3; zp++)
                for (size_t ti = 0; ti < 3; ti++) {
                    if (bitss[ti] != 4 && (ki & 1)) continue;
                    nbits_case cs = { Ks[ki], 19 + ki * 7, blocks[bi], bitss[ti], zp };
                    for (size_t mi = 0; mi < 6; mi++) check_nbits(&cs, Ms[mi]);
                }
    sk_qgemm_select(NULL);
}

static void test_nbits_dequant_known(void **state)
{
    (void)state;
    /* K=20, block 16: column 0 holds q = k % 16; block 0 scale 0.5 zp 8 (default), block 1 scale 2 */
    uint8_t b[2 * 8];
    for (int k = 0; k < 32; k++) {
        int q = k % 16;
        if (k & 1) b[k / 2] = (uint8_t)(b[k / 2] | q << 4);
        else b[k / 2] = (uint8_t)q;
    }
    float sc[2] = { 0.5f, 2.0f }, out[20];
    sk_nbits_weight w = { 20, 1, 16, 4, b, sc, NULL, NULL, NULL };
    sk_nbits_dequant_column(&w, 0, out);
    for (int k = 0; k < 20; k++) assert_true(out[k] == ((float)(k % 16) - 8.0f) * sc[k / 16]);
    assert_int_equal(sk_nbits_check(&w, NULL), SK_OK);
    w.block_size = 24;
    assert_int_equal(sk_nbits_check(&w, NULL), SK_EINVAL);
    w.block_size = 16;
    w.bits = 3;
    assert_int_equal(sk_nbits_check(&w, NULL), SK_EUNSUPPORTED);
}

/* ---- speed (SK_QGEMM_BENCH=1) ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_shape(size_t M, size_t N, size_t K)
{
    uint8_t *a = malloc(M * K), *b = malloc(K * N), *bq = malloc(N * K / 2);
    int32_t *c = malloc(M * N * sizeof *c), za = 3, zb = 5;
    float *A = malloc(M * K * sizeof *A), *Bf = malloc(K * N * sizeof *Bf), *Y = malloc(M * N * sizeof *Y);
    float *sc = malloc(N * (K / 32) * sizeof *sc);
    fill_bytes(a, M * K);
    fill_bytes(b, K * N);
    fill_bytes(bq, N * K / 2);
    for (size_t i = 0; i < M * K; i++) A[i] = frnd();
    for (size_t i = 0; i < K * N; i++) Bf[i] = frnd();
    for (size_t i = 0; i < N * (K / 32); i++) sc[i] = 0.01f;
    double ops = 2.0 * (double)M * (double)N * (double)K, t, best;
    int reps;
#define TIME(expr)                                                                 \
    best = 1e9;                                                                    \
    reps = (int)(2e8 / ops) + 1;                                                   \
    for (int rep = 0; rep < 5; rep++) {                                            \
        t = now();                                                                 \
        for (int i = 0; i < reps; i++) { expr; }                                   \
        t = (now() - t) / reps;                                                    \
        if (t < best) best = t;                                                    \
    }
    sk_qmat qa = { a, K, 0, &za, 1 }, qb = { b, N, 1, &zb, 1 };
    TIME(sk_qgemm(M, N, K, &qa, &qb, c, N, NULL));
    double q8 = ops / best * 1e-9;
    sk_nbits_weight w = { K, N, 32, 4, bq, sc, NULL, NULL, NULL };
    TIME(sk_nbits_gemm(M, A, K, &w, NULL, Y, N, 1, NULL));
    double q4 = ops / best * 1e-9;
    TIME(sk_sgemm_naive(M, N, K, A, K, Bf, N, Y, N));
    double f32 = ops / best * 1e-9;
    TIME(sk_qgemm_ref(M, N, K, &qa, &qb, c, N));
    double q8ref = ops / best * 1e-9;
    TIME(sk_gemm_f32(0, 0, M, N, K, 1.0f, A, K, Bf, N, 0.0f, Y, N, 1, NULL));
    double f32g = ops / best * 1e-9;
    printf("bench %zux%zux%zu (%s): int8 %.1f GOP/s (ref %.2f), 4-bit b32 %.1f GOP/s, fp32 naive %.2f GOP/s, "
           "fp32 sk_gemm_f32 %.1f GOP/s\n",
           M, K, N, sk_qgemm_variant(), q8, q8ref, q4, f32, f32g);
#undef TIME
    free(a);
    free(b);
    free(bq);
    free(c);
    free(A);
    free(Bf);
    free(Y);
    free(sc);
}

static void test_bench(void **state)
{
    (void)state;
    const char *e = getenv("SK_QGEMM_BENCH");
    if (!e || !*e || *e == '0') {
        printf("skipped: speed measurement (set SK_QGEMM_BENCH=1)\n");
        skip();
    }
    FOR_EACH_VARIANT(v)
    {
        bench_shape(128, 256, 256);
        bench_shape(1, 1024, 256);
        bench_shape(128, 768, 768);
        bench_shape(1, 3072, 768);
    }
    sk_qgemm_select(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qgemm_sizes),
        cmocka_unit_test(test_qgemm_extremes),
        cmocka_unit_test(test_nbits_dequant_known),
        cmocka_unit_test(test_nbits),
        cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
