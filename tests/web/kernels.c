/* The wasm32 kernels against the reference ones, in V8 (node): built by
 * tests/web/run.sh with the flags `make wasm` uses for them. The browser
 * tests check whole models; this checks the shapes a model may never have:
 * int8 products (sk_qgemm, and with B packed beforehand) of every ragged
 * size around the 4 x 8 tiles, signed and unsigned, with and without zero
 * points, bit for bit; float products (sk_gemm_f32, both transposes, alpha
 * and beta) within 1e-5 relative of the double-accumulating reference; the
 * 4-bit product (sk_nbits_gemm) against its reference within 1e-4. Prints
 * one ok:/FAIL: line per kind and exits 1 on a mismatch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_gemm.h"
#include "sk_qgemm.h"

static unsigned seed = 1;
static unsigned rnd(void) { return (seed = seed * 1103515245u + 12345u) >> 16; }

static int test_int8(void)
{
    static const size_t Ms[] = { 1, 3, 4, 5, 17, 130 }, Ns[] = { 1, 7, 8, 9, 33, 260 },
                        Ks[] = { 1, 2, 3, 15, 16, 17, 33, 258 };
    int bad = 0, cases = 0;
    for (int sa = 0; sa < 2; sa++)
        for (int sb = 0; sb < 2; sb++)
            for (int zz = 0; zz < 3; zz++)
                for (size_t im = 0; im < 6; im++)
                    for (size_t in = 0; in < 6; in++)
                        for (size_t ik = 0; ik < 8; ik++) {
                            size_t M = Ms[im], N = Ns[in], K = Ks[ik];
                            uint8_t *a = malloc(M * K), *b = malloc(K * N);
                            int32_t *c0 = malloc(M * N * 4), *c1 = malloc(M * N * 4), *c2 = malloc(M * N * 4);
                            int32_t za[130], zb[260];
                            if (!a || !b || !c0 || !c1 || !c2) return 1;
                            for (size_t i = 0; i < M * K; i++) a[i] = (uint8_t)rnd();
                            for (size_t i = 0; i < K * N; i++) b[i] = (uint8_t)rnd();
                            for (int i = 0; i < 130; i++) za[i] = sa ? (int8_t)rnd() : (uint8_t)rnd();
                            for (int i = 0; i < 260; i++) zb[i] = sb ? (int8_t)rnd() : (uint8_t)rnd();
                            sk_qmat A = { a, K, sa, zz ? za : NULL, zz == 1 ? 1 : M };
                            sk_qmat B = { b, N, sb, zz ? zb : NULL, zz == 1 ? 1 : N };
                            sk_error err;
                            sk_qgemm_packed *P = NULL;
                            sk_qgemm_ref(M, N, K, &A, &B, c0, N);
                            if (sk_qgemm(M, N, K, &A, &B, c1, N, &err) || sk_qgemm_pack(K, N, &B, &P, &err) ||
                                sk_qgemm_packed_run(M, &A, P, c2, N, &err) || memcmp(c0, c1, M * N * 4) ||
                                memcmp(c0, c2, M * N * 4)) {
                                if (!bad) printf("  int8 %zux%zux%zu signed %d/%d zero points %d differs\n", M, N, K, sa, sb, zz);
                                bad++;
                            }
                            cases++;
                            sk_qgemm_packed_free(P);
                            free(a), free(b), free(c0), free(c1), free(c2);
                        }
    printf("%s: wasm int8 products equal the reference bit for bit (%d shapes, %d differ; %s)\n", bad ? "FAIL" : "ok",
           cases, bad, sk_qgemm_variant());
    return bad != 0;
}

static int test_f32(void)
{
    static const size_t Ms[] = { 1, 4, 5, 13, 100 }, Ns[] = { 1, 8, 9, 31, 300 }, Ks[] = { 1, 7, 64, 300 };
    int bad = 0, cases = 0;
    double worst = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t im = 0; im < 5; im++)
                for (size_t in = 0; in < 5; in++)
                    for (size_t ik = 0; ik < 4; ik++) {
                        size_t M = Ms[im], N = Ns[in], K = Ks[ik], lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1;
                        float *a = malloc((ta ? K : M) * lda * 4), *b = malloc((tb ? N : K) * ldb * 4);
                        float *c0 = malloc(M * N * 4), *c1 = malloc(M * N * 4);
                        if (!a || !b || !c0 || !c1) return 1;
                        for (size_t i = 0; i < (ta ? K : M) * lda; i++) a[i] = (float)(rnd() % 2001) / 1000.0f - 1;
                        for (size_t i = 0; i < (tb ? N : K) * ldb; i++) b[i] = (float)(rnd() % 2001) / 1000.0f - 1;
                        for (size_t i = 0; i < M * N; i++) c0[i] = c1[i] = (float)(rnd() % 100) / 50.0f;
                        float alpha = cases % 3 ? 1.0f : 0.5f, beta = cases % 2 ? 0.0f : 0.25f;
                        sk_error err;
                        sk_gemm_f32_ref(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c0, N);
                        int fail = sk_gemm_f32(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c1, N, 1, &err) != SK_OK;
                        for (size_t i = 0; i < M * N && !fail; i++) {
                            double e = fabs((double)c0[i] - c1[i]) / (1 + fabs((double)c0[i]));
                            if (e > worst) worst = e;
                            fail = e > 1e-5;
                        }
                        if (fail && !bad) printf("  f32 %zux%zux%zu trans %d/%d differs\n", M, N, K, ta, tb);
                        bad += fail;
                        cases++;
                        free(a), free(b), free(c0), free(c1);
                    }
    printf("%s: wasm float products match the reference (%d shapes, %d differ, worst %.1e relative; %s)\n",
           bad ? "FAIL" : "ok", cases, bad, worst, sk_gemm_kernel_name());
    return bad != 0;
}

static int test_int4(void)
{
    static const size_t Ms[] = { 1, 3, 5, 64 }, Ns[] = { 1, 9, 40 }, Ks[] = { 16, 32, 33, 100 };
    int bad = 0, cases = 0;
    for (size_t im = 0; im < 4; im++)
        for (size_t in = 0; in < 3; in++)
            for (size_t ik = 0; ik < 4; ik++) {
                size_t M = Ms[im], N = Ns[in], K = Ks[ik], bs = 16, nb = (K + bs - 1) / bs;
                float *a = malloc(M * K * 4), *y0 = malloc(M * N * 4), *y1 = malloc(M * N * 4), *sc = malloc(N * nb * 4);
                float *bias = malloc(N * 4);
                uint8_t *w4 = malloc(N * nb * bs / 2);
                if (!a || !y0 || !y1 || !sc || !bias || !w4) return 1;
                for (size_t i = 0; i < M * K; i++) a[i] = (float)(rnd() % 2001) / 1000.0f - 1;
                for (size_t i = 0; i < N * nb * bs / 2; i++) w4[i] = (uint8_t)rnd();
                for (size_t i = 0; i < N * nb; i++) sc[i] = (float)(rnd() % 100 + 1) / 1000.0f;
                for (size_t i = 0; i < N; i++) bias[i] = (float)(rnd() % 100) / 100.0f;
                sk_nbits_weight w = { .K = K, .N = N, .block_size = bs, .bits = 4, .b = w4, .scales = sc };
                sk_error err;
                sk_nbits_gemm_ref(M, a, K, &w, bias, y0, N);
                int fail = sk_nbits_gemm(M, a, K, &w, bias, y1, N, 1, &err) != SK_OK;
                for (size_t i = 0; i < M * N && !fail; i++) fail = fabs((double)y0[i] - y1[i]) > 1e-4 * (1 + fabs((double)y0[i]));
                if (fail && !bad) printf("  int4 %zux%zux%zu differs\n", M, N, K);
                bad += fail;
                cases++;
                free(a), free(y0), free(y1), free(sc), free(bias), free(w4);
            }
    printf("%s: wasm 4-bit products match the reference (%d shapes, %d differ)\n", bad ? "FAIL" : "ok", cases, bad);
    return bad != 0;
}

int main(void)
{
    int bad = test_int8();
    bad |= test_f32();
    bad |= test_int4();
    return bad;
}
