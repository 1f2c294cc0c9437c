/* Kernel microbenchmark for the WebAssembly build: the GEMMs behind
 * BERT-style layers (M = batch x seq rows) in fp32 (sk_gemm_f32), int8
 * (sk_qgemm, u8 x s8) and 4-bit (sk_nbits_gemm, block 32), timed in the same
 * binary natively and in V8 (node), so kernel work can be measured without a
 * browser. bench/web/kernels.sh builds and runs it. Prints one line per
 * kernel and shape: median ms of R runs and GMAC/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sk_gemm.h"
#include "sk_qgemm.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define R 21

static void report(const char *what, size_t M, size_t K, size_t N, double *t)
{
    qsort(t, R, sizeof *t, cmp);
    double ms = t[R / 2] * 1e3;
    printf("%-6s M=%-4zu K=%-5zu N=%-5zu %8.3f ms %7.2f GMAC/s\n", what, M, K, N, ms,
           (double)M * (double)K * (double)N / (ms * 1e-3) / 1e9);
}

int main(int argc, char **argv)
{
    size_t M = argc > 1 ? (size_t)atol(argv[1]) : 128;
    static const size_t shapes[][2] = { { 256, 256 }, { 256, 1024 }, { 1024, 256 } };
    sk_error err;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t K = shapes[s][0], N = shapes[s][1];
        float *A = malloc(M * K * sizeof *A), *B = malloc(K * N * sizeof *B), *C = malloc(M * N * sizeof *C);
        uint8_t *qa = malloc(M * K), *qb = malloc(K * N);
        int32_t *qc = malloc(M * N * sizeof *qc);
        size_t nb = K / 32;
        uint8_t *b4 = malloc(N * nb * 16);
        float *sc = malloc(N * nb * sizeof *sc);
        if (!A || !B || !C || !qa || !qb || !qc || !b4 || !sc) return 1;
        for (size_t i = 0; i < M * K; i++) { A[i] = (float)(i % 7) * 0.1f; qa[i] = (uint8_t)(i * 7); }
        for (size_t i = 0; i < K * N; i++) { B[i] = (float)(i % 5) * 0.1f; qb[i] = (uint8_t)(i * 13); }
        for (size_t i = 0; i < N * nb * 16; i++) b4[i] = (uint8_t)(i * 29);
        for (size_t i = 0; i < N * nb; i++) sc[i] = 0.01f;
        double t[R];
        for (int r = -2; r < R; r++) {
            double t0 = now();
            sk_gemm_f32(0, 0, M, N, K, 1, A, K, B, N, 0, C, N, 1, &err);
            if (r >= 0) t[r] = now() - t0;
        }
        report("f32", M, K, N, t);
        sk_qmat a = { qa, K, 0, NULL, 0 }, b = { qb, N, 1, NULL, 0 };
        for (int r = -2; r < R; r++) {
            double t0 = now();
            sk_qgemm(M, N, K, &a, &b, qc, N, &err);
            if (r >= 0) t[r] = now() - t0;
        }
        report("u8s8", M, K, N, t);
        sk_qgemm_packed *pb;
        if (sk_qgemm_pack(K, N, &b, &pb, &err)) return 1;
        for (int r = -2; r < R; r++) {
            double t0 = now();
            sk_qgemm_packed_run(M, &a, pb, qc, N, &err);
            if (r >= 0) t[r] = now() - t0;
        }
        sk_qgemm_packed_free(pb);
        report("u8s8p", M, K, N, t);
        sk_nbits_weight w = { .K = K, .N = N, .block_size = 32, .bits = 4, .b = b4, .scales = sc };
        for (int r = -2; r < R; r++) {
            double t0 = now();
            sk_nbits_gemm(M, A, K, &w, NULL, C, N, 1, &err);
            if (r >= 0) t[r] = now() - t0;
        }
        report("int4", M, K, N, t);
        free(A); free(B); free(C); free(qa); free(qb); free(qc); free(b4); free(sc);
    }
    return 0;
}
