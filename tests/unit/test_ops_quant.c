/* Quantized ops (lib/sk_ops_quant.c), called through sk_op_find with a
 * hand-filled sk_op_ctx:
 *  - ONNX's node tests for every op implemented (ONNX_NODE_DIR, default
 *    /usr/share/libonnx-testdata/data/node), one-node models with inputs and
 *    expected outputs as TensorProto files;
 *  - known-answer cases for MatMulNBits and GatherBlockQuantized, which have no
 *    ONNX node tests, checked against a plain loop written here;
 *  - with SK_QUANT_CASES=DIR, every case folder under DIR (same layout as the
 *    node tests; tests/oracle/quant-ort.sh makes them with ONNX Runtime's
 *    outputs) must match to 1e-4 relative. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sk_model.h"
#include "sk_npy.h"
#include "sk_op.h"
#include "sk_qgemm.h"

/* ---- TensorProto files --------------------------------------------------- */

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = n > 0 ? (size_t)n : 0;
    if (!*buf || fread(*buf, 1, *len, f) != *len) {
        fclose(f);
        free(*buf);
        return -1;
    }
    fclose(f);
    return 0;
}

/* TensorProto (raw_data or typed fields) into an owned sk_tensor. */
static int proto_to_tensor(const Onnx__TensorProto *tp, sk_tensor *t)
{
    int64_t dims[SK_TENSOR_MAX_RANK];
    if (tp->n_dims > SK_TENSOR_MAX_RANK) return -1;
    for (size_t i = 0; i < tp->n_dims; i++) dims[i] = tp->dims[i];
    if (sk_tensor_alloc(t, tp->data_type, (int)tp->n_dims, dims, NULL)) return -1;
    if (tp->has_raw_data) {
        if (tp->raw_data.len != t->nbytes) return -1;
        memcpy(t->data, tp->raw_data.data, t->nbytes);
        return 0;
    }
    size_t n = (size_t)t->numel;
    uint8_t *p = t->data;
    switch (t->dtype) {
    case SK_FLOAT:
        if (tp->n_float_data != n) return -1;
        memcpy(p, tp->float_data, n * 4);
        return 0;
    case SK_INT64:
        if (tp->n_int64_data != n) return -1;
        memcpy(p, tp->int64_data, n * 8);
        return 0;
    case SK_DOUBLE:
        if (tp->n_double_data != n) return -1;
        memcpy(p, tp->double_data, n * 8);
        return 0;
    case SK_INT4: case SK_UINT4:
        if (tp->n_int32_data != (n + 1) / 2) return -1;
        for (size_t i = 0; i < (n + 1) / 2; i++) p[i] = (uint8_t)tp->int32_data[i];
        return 0;
    default: {
        unsigned bytes = sk_dtype_table[t->dtype].bits / 8;
        if (tp->n_int32_data != n || bytes == 0 || bytes > 4) return -1;
        for (size_t i = 0; i < n; i++) {
            int32_t v = tp->int32_data[i];
            memcpy(p + i * bytes, &v, bytes); /* little-endian low bytes */
        }
        return 0;
    }
    }
}

static int load_pb(const char *path, sk_tensor *t)
{
    uint8_t *buf;
    size_t len;
    if (read_file(path, &buf, &len)) return -1;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!tp) return -1;
    int r = proto_to_tensor(tp, t);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return r;
}

/* ---- running one node ---------------------------------------------------- */

#define MAX_IO 16

/* Runs node with inputs in[] (NULL: absent) into out[]; returns the status. */
static sk_status run_node(const Onnx__NodeProto *node, int64_t opset, const sk_tensor *const *in, size_t n_in,
                          sk_tensor *const *out, size_t n_out, sk_error *err)
{
    const sk_op_def *def = sk_op_find(node->domain ? node->domain : "", node->op_type, opset);
    if (!def) return sk_error_set(err, SK_EUNSUPPORTED, "no kernel for %s", node->op_type);
    sk_op_ctx ctx = { .node = node, .opset = opset, .n_in = n_in, .in = in, .n_out = n_out, .out = out, .threads = 1, .err = err };
    return def->run(&ctx);
}

/* Compares got with want: exact for integers, |d| <= atol + rtol * |want| for
 * floats. Prints the first mismatch; returns 0 when equal. */
static int compare(const char *what, const sk_tensor *got, const sk_tensor *want, double rtol, double atol)
{
    char b1[128], b2[128];
    if (got->dtype != want->dtype || got->rank != want->rank ||
        memcmp(got->dims, want->dims, (size_t)got->rank * sizeof *got->dims)) {
        fprintf(stderr, "%s: got %s %s, want %s %s\n", what, sk_dtype_name(got->dtype),
                sk_shape_str(got->rank, got->dims, b1, sizeof b1), sk_dtype_name(want->dtype),
                sk_shape_str(want->rank, want->dims, b2, sizeof b2));
        return -1;
    }
    int is_f = got->dtype == SK_FLOAT || got->dtype == SK_FLOAT16 || got->dtype == SK_DOUBLE ||
               got->dtype == SK_BFLOAT16;
    for (int64_t i = 0; i < got->numel; i++) {
        if (is_f) {
            double g = sk_tensor_get_f64(got, i), w = sk_tensor_get_f64(want, i);
            if (isnan(w) && isnan(g)) continue;
            if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
                fprintf(stderr, "%s: element %lld is %.9g, want %.9g\n", what, (long long)i, g, w);
                return -1;
            }
        } else if (sk_tensor_get_i64(got, i) != sk_tensor_get_i64(want, i)) {
            fprintf(stderr, "%s: element %lld is %lld, want %lld\n", what, (long long)i,
                    (long long)sk_tensor_get_i64(got, i), (long long)sk_tensor_get_i64(want, i));
            return -1;
        }
    }
    return 0;
}

/* One case folder: model.onnx (nodes in topological order, all ours),
 * test_data_set_0/input_N.pb for the graph inputs in order, and the expected
 * outputs as test_data_set_0/output_N.pb or ort/<name>.npy (ONNX Runtime's,
 * from ort-run.mjs --output-dir). Returns 0 on a match, 1 on a mismatch or
 * failure, 2 when an op is not ours. */
#define MAX_VALS 64

typedef struct value_table {
    sk_tensor t[MAX_VALS];
    const char *name[MAX_VALS];
    size_t n;
} value_table;

static sk_tensor *vt_find(value_table *vt, const char *name)
{
    for (size_t j = 0; j < vt->n; j++)
        if (!strcmp(vt->name[j], name)) return &vt->t[j];
    return NULL;
}

static int run_case_dir(const char *dir, double rtol, double atol)
{
    char path[1024], what[1100];
    sk_error err = { 0 };
    sk_model *m = NULL;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    sk_load_opts lo = { 1, 0 };
    if (sk_model_load(path, &lo, &m, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    sk_graph_proto *g = sk_model_graph(m);
    int rc = 1;
    value_table *vt = calloc(1, sizeof *vt);
    sk_tensor want = { 0 };
    if (!vt) goto done;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *node = g->node[i];
        int64_t opset = sk_model_opset(m, node->domain ? node->domain : "");
        if (!sk_op_find(node->domain ? node->domain : "", node->op_type, opset)) {
            rc = 2;
            goto done;
        }
    }
    for (size_t i = 0; i < g->n_input && vt->n < MAX_VALS; i++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%zu.pb", dir, i);
        if (load_pb(path, &vt->t[vt->n])) {
            fprintf(stderr, "%s: cannot read\n", path);
            goto done;
        }
        vt->name[vt->n++] = g->input[i]->name;
    }
    for (size_t i = 0; i < g->n_initializer && vt->n < MAX_VALS; i++) {
        sk_tensor_view v;
        if (sk_model_tensor_view(m, g->initializer[i], &v, &err)) {
            fprintf(stderr, "%s: %s\n", dir, err.msg);
            goto done;
        }
        if (sk_tensor_alloc(&vt->t[vt->n], v.dtype, v.rank, v.dims, NULL)) goto done;
        memcpy(vt->t[vt->n].data, v.data, v.nbytes);
        vt->name[vt->n++] = g->initializer[i]->name;
    }
    for (size_t ni = 0; ni < g->n_node; ni++) {
        const Onnx__NodeProto *node = g->node[ni];
        int64_t opset = sk_model_opset(m, node->domain ? node->domain : "");
        const sk_tensor *in[MAX_IO] = { 0 };
        sk_tensor *out[MAX_IO];
        if (node->n_input > MAX_IO || node->n_output > MAX_IO || vt->n + node->n_output > MAX_VALS) goto done;
        for (size_t i = 0; i < node->n_input; i++) {
            if (!node->input[i][0]) continue;
            if (!(in[i] = vt_find(vt, node->input[i]))) {
                fprintf(stderr, "%s: input '%s' not found\n", dir, node->input[i]);
                goto done;
            }
        }
        for (size_t i = 0; i < node->n_output; i++) {
            out[i] = &vt->t[vt->n];
            vt->name[vt->n++] = node->output[i];
        }
        if (run_node(node, opset, in, node->n_input, out, node->n_output, &err)) {
            fprintf(stderr, "%s: %s failed: %s\n", dir, node->op_type, err.msg);
            goto done;
        }
    }
    rc = 0;
    for (size_t i = 0; i < g->n_output; i++) {
        sk_tensor *got = vt_find(vt, g->output[i]->name);
        snprintf(path, sizeof path, "%s/test_data_set_0/output_%zu.pb", dir, i);
        int got_want = got && load_pb(path, &want) == 0;
        if (!got_want && got) { /* ONNX Runtime's output, as ort-run.mjs --output-dir names it */
            char safe[256];
            size_t k = 0;
            for (const char *c = g->output[i]->name; *c && k + 1 < sizeof safe; c++, k++)
                safe[k] = (isalnum((unsigned char)*c) || *c == '.' || *c == '_' || *c == '-') ? *c : '_';
            safe[k] = 0;
            snprintf(path, sizeof path, "%s/ort/%s.npy", dir, safe);
            got_want = sk_npy_load(path, &want, NULL) == SK_OK;
        }
        if (!got_want) {
            fprintf(stderr, "%s: cannot read expected output %zu\n", dir, i);
            rc = 1;
            continue;
        }
        snprintf(what, sizeof what, "%s output %zu", dir, i);
        if (compare(what, got, &want, rtol, atol)) rc = 1;
        sk_tensor_free(&want);
    }
done:
    if (vt)
        for (size_t i = 0; i < vt->n; i++) sk_tensor_free(&vt->t[i]);
    free(vt);
    sk_model_free(m);
    return rc;
}

/* ---- ONNX node tests ----------------------------------------------------- */

static const char *node_dir(void)
{
    const char *d = getenv("ONNX_NODE_DIR");
    return d && *d ? d : "/usr/share/libonnx-testdata/data/node";
}

static void test_onnx_node_tests(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "test_quantizelinear", "test_quantizelinear_axis", "test_dequantizelinear", "test_dequantizelinear_axis",
        "test_dynamicquantizelinear", "test_dynamicquantizelinear_max_adjusted",
        "test_dynamicquantizelinear_min_adjusted", "test_matmulinteger", "test_qlinearmatmul_2D",
        "test_qlinearmatmul_3D", "test_basic_convinteger", "test_convinteger_with_padding",
        "test_convinteger_without_padding", "test_qlinearconv",
        /* newer ONNX releases add these; run when present */
        "test_quantizelinear_blocked_asymmetric", "test_quantizelinear_blocked_symmetric",
        "test_dequantizelinear_blocked", "test_quantizelinear_int4", "test_quantizelinear_uint4",
        "test_dequantizelinear_int4", "test_dequantizelinear_uint4", "test_quantizelinear_int16",
        "test_quantizelinear_uint16", "test_dequantizelinear_int16", "test_dequantizelinear_uint16",
        "test_quantizelinear_e4m3fn", "test_quantizelinear_e5m2", "test_dequantizelinear_e4m3fn",
        "test_dequantizelinear_e5m2", "test_dequantizelinear_e4m3fn_float16",
        "test_qlinearmatmul_2D_int8_float32", "test_qlinearmatmul_3D_int8_float32",
        "test_qlinearmatmul_2D_uint8_float32", "test_qlinearmatmul_3D_uint8_float32",
    };
    struct stat st;
    if (stat(node_dir(), &st)) {
        printf("skipped: ONNX node tests (%s not found)\n", node_dir());
        skip();
    }
    int passed = 0, failed = 0, absent = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", node_dir(), cases[i]);
        if (stat(dir, &st)) {
            absent++;
            continue;
        }
        int rc = run_case_dir(dir, 1e-3, 1e-6);
        if (rc == 0) passed++;
        else failed++;
        printf("  %-48s %s\n", cases[i], rc == 0 ? "ok" : rc == 2 ? "NO KERNEL" : "FAILED");
    }
    printf("ONNX node tests: %d passed, %d failed (%d not in this ONNX release; the _expanded variants need other ops)\n",
           passed, failed, absent);
    assert_int_equal(failed, 0);
    assert_true(passed >= 14);
}

/* ---- oracle cases (SK_QUANT_CASES) ---------------------------------------- */

static void test_oracle_cases(void **state)
{
    (void)state;
    const char *root = getenv("SK_QUANT_CASES");
    if (!root || !*root) {
        printf("skipped: ONNX Runtime cases (set SK_QUANT_CASES; tests/oracle/quant-ort.sh does)\n");
        skip();
    }
    DIR *d = opendir(root);
    assert_non_null(d);
    struct dirent *e;
    int passed = 0, failed = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char dir[1024], p[1100];
        struct stat st;
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        snprintf(p, sizeof p, "%s/ort", dir);
        if (stat(p, &st)) {
            snprintf(p, sizeof p, "%s/test_data_set_0/output_0.pb", dir);
            if (stat(p, &st)) continue;
        }
        int rc = run_case_dir(dir, 1e-4, 1e-5);
        if (rc == 0) passed++;
        else {
            failed++;
            printf("  %s FAILED\n", e->d_name);
        }
    }
    closedir(d);
    printf("ONNX Runtime cases: %d passed, %d failed\n", passed, failed);
    assert_int_equal(failed, 0);
    assert_true(passed > 0);
}

/* ---- hand-built nodes ---------------------------------------------------- */

static uint64_t rs = 88172645463325252ull;
static uint32_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (uint32_t)(rs >> 11);
}

static Onnx__NodeProto *mk_node(const char *op, const char *domain, size_t n_in)
{
    static const char *const ins[] = { "i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8" };
    static const char *const outs[] = { "o0", "o1", "o2" };
    Onnx__NodeProto *n = sk_node_proto_new(op, domain, "n", n_in, ins, 1, outs);
    assert_non_null(n);
    return n;
}

static void t_alloc(sk_tensor *t, int dt, int rank, const int64_t *dims)
{
    assert_int_equal(sk_tensor_alloc(t, dt, rank, dims, NULL), SK_OK);
}

/* MatMulNBits against dequantize-then-matmul written out here, including
 * float16 A and scales, float zero points and g_idx. */
static void check_matmul_nbits(int64_t M, int64_t K, int64_t N, int64_t bs, int zp_mode, int f16, int use_bias,
                               int gidx)
{
    int64_t nb = (K + bs - 1) / bs, blob = bs / 2;
    Onnx__NodeProto *node = mk_node("MatMulNBits", "com.microsoft", 6);
    sk_node_add_attr_int(node, "K", K);
    sk_node_add_attr_int(node, "N", N);
    sk_node_add_attr_int(node, "bits", 4);
    sk_node_add_attr_int(node, "block_size", bs);
    int fdt = f16 ? SK_FLOAT16 : SK_FLOAT;
    sk_tensor A = { 0 }, B = { 0 }, S = { 0 }, Z = { 0 }, G = { 0 }, Bi = { 0 }, Y = { 0 };
    int64_t ad[3] = { 1, M, K }, bd[3] = { N, nb, blob }, sd[1] = { N * nb }, zd[1] = { N * ((nb + 1) / 2) };
    int64_t nd[1] = { N }, kd[1] = { K };
    t_alloc(&A, fdt, 3, ad);
    t_alloc(&B, SK_UINT8, 3, bd);
    t_alloc(&S, fdt, 1, sd);
    for (int64_t i = 0; i < A.numel; i++) {
        float v = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
        if (f16) ((uint16_t *)A.data)[i] = sk_float_to_half(v);
        else ((float *)A.data)[i] = v;
    }
    for (size_t i = 0; i < B.nbytes; i++) ((uint8_t *)B.data)[i] = (uint8_t)rnd();
    for (int64_t i = 0; i < S.numel; i++) {
        float v = (float)(rnd() % 100 + 1) / 1024.0f;
        if (f16) ((uint16_t *)S.data)[i] = sk_float_to_half(v);
        else ((float *)S.data)[i] = v;
    }
    if (zp_mode == 1) {
        t_alloc(&Z, SK_UINT8, 1, zd);
        for (size_t i = 0; i < Z.nbytes; i++) ((uint8_t *)Z.data)[i] = (uint8_t)rnd();
    } else if (zp_mode == 2) {
        t_alloc(&Z, fdt, 1, sd);
        for (int64_t i = 0; i < Z.numel; i++) {
            float v = (float)(rnd() % 64) / 4.0f;
            if (f16) ((uint16_t *)Z.data)[i] = sk_float_to_half(v);
            else ((float *)Z.data)[i] = v;
        }
    }
    if (gidx) {
        t_alloc(&G, SK_INT32, 1, kd);
        for (int64_t k = 0; k < K; k++) ((int32_t *)G.data)[k] = (int32_t)((k * 7 + 3) % nb);
    }
    if (use_bias) {
        t_alloc(&Bi, fdt, 1, nd);
        for (int64_t i = 0; i < N; i++) {
            float v = (float)i / 8.0f - 1.0f;
            if (f16) ((uint16_t *)Bi.data)[i] = sk_float_to_half(v);
            else ((float *)Bi.data)[i] = v;
        }
    }
    const sk_tensor *in[6] = { &A, &B, &S, zp_mode ? &Z : NULL, gidx ? &G : NULL, use_bias ? &Bi : NULL };
    sk_tensor *out[1] = { &Y };
    sk_error err = { 0 };
    sk_status st = run_node(node, 1, in, 6, out, 1, &err);
    if (st) fprintf(stderr, "MatMulNBits: %s\n", err.msg);
    assert_int_equal(st, SK_OK);
    assert_int_equal(Y.dtype, fdt);
    assert_int_equal(Y.rank, 3);
    assert_int_equal(Y.dims[2], N);
    const uint8_t *bp = B.data;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double acc = use_bias ? sk_tensor_get_f64(&Bi, n) : 0;
            for (int64_t k = 0; k < K; k++) {
                int64_t j = gidx ? ((int32_t *)G.data)[k] : k / bs, jj = k / bs, i = k % bs;
                int q = (bp[(n * nb + jj) * blob + i / 2] >> ((i & 1) * 4)) & 15;
                double z = 8;
                if (zp_mode == 1) z = (((uint8_t *)Z.data)[n * ((nb + 1) / 2) + j / 2] >> ((j & 1) * 4)) & 15;
                if (zp_mode == 2) z = sk_tensor_get_f64(&Z, n * nb + j);
                acc += sk_tensor_get_f64(&A, m * K + k) * (q - z) * sk_tensor_get_f64(&S, n * nb + j);
            }
            double got = sk_tensor_get_f64(&Y, m * N + n);
            double tol = f16 ? 2e-2 * (1 + fabs(acc)) : 1e-4 * (1 + fabs(acc));
            if (!(fabs(got - acc) <= tol)) {
                fprintf(stderr, "MatMulNBits M=%lld K=%lld N=%lld bs=%lld zp=%d f16=%d: [%lld][%lld] %g != %g\n",
                        (long long)M, (long long)K, (long long)N, (long long)bs, zp_mode, f16, (long long)m,
                        (long long)n, got, acc);
                fail();
            }
        }
    sk_tensor_free(&A);
    sk_tensor_free(&B);
    sk_tensor_free(&S);
    sk_tensor_free(&Z);
    sk_tensor_free(&G);
    sk_tensor_free(&Bi);
    sk_tensor_free(&Y);
    sk_node_proto_free(NULL, node);
}

static void test_matmul_nbits(void **state)
{
    (void)state;
    static const int64_t bss[] = { 16, 32, 64, 128 };
    for (size_t b = 0; b < 4; b++)
        for (int zp = 0; zp < 3; zp++) {
            check_matmul_nbits(1, 200, 33, bss[b], zp, 0, zp == 1, 0);
            check_matmul_nbits(7, 2 * bss[b] + 3, 20, bss[b], zp, 0, 1, 0);
            check_matmul_nbits(2, 96, 9, bss[b], zp, 1, 1, 0);
        }
    check_matmul_nbits(3, 100, 17, 32, 1, 0, 0, 1); /* g_idx */
    check_matmul_nbits(6, 64, 5, 16, 2, 0, 1, 1);
}

static void test_matmul_nbits_errors(void **state)
{
    (void)state;
    Onnx__NodeProto *node = mk_node("MatMulNBits", "com.microsoft", 3);
    sk_node_add_attr_int(node, "K", 32);
    sk_node_add_attr_int(node, "N", 4);
    sk_node_add_attr_int(node, "bits", 4);
    sk_node_add_attr_int(node, "block_size", 32);
    sk_tensor A = { 0 }, B = { 0 }, S = { 0 }, Y = { 0 };
    int64_t ad[2] = { 1, 31 }, bd[3] = { 4, 1, 16 }, sd[1] = { 4 };
    t_alloc(&A, SK_FLOAT, 2, ad);
    t_alloc(&B, SK_UINT8, 3, bd);
    t_alloc(&S, SK_FLOAT, 1, sd);
    const sk_tensor *in[3] = { &A, &B, &S };
    sk_tensor *out[1] = { &Y };
    sk_error err = { 0 };
    assert_int_equal(run_node(node, 1, in, 3, out, 1, &err), SK_EINVAL); /* A has 31 columns, K is 32 */
    assert_non_null(strstr(err.msg, "K=32"));
    sk_tensor_free(&A);
    sk_tensor_free(&B);
    sk_tensor_free(&S);
    sk_tensor_free(&Y);
    sk_node_proto_free(NULL, node);
}

/* GatherBlockQuantized: int4 data [6, 40] quantized along axis 1 in blocks of
 * 16, gathered on axis 0; and uint8 data with 4-bit packing. */
static void test_gather_block_quantized(void **state)
{
    (void)state;
    for (int variant = 0; variant < 4; variant++) {
        int u8 = variant >= 2, with_zp = variant & 1;
        int64_t R = 6, Cl = 64, bs = 16, nblk = Cl / bs;
        Onnx__NodeProto *node = mk_node("GatherBlockQuantized", "com.microsoft", with_zp ? 4 : 3);
        sk_node_add_attr_int(node, "block_size", bs);
        sk_node_add_attr_int(node, "gather_axis", 0);
        sk_node_add_attr_int(node, "quantize_axis", 1);
        sk_node_add_attr_int(node, "bits", 4);
        sk_tensor D = { 0 }, I = { 0 }, S = { 0 }, Z = { 0 }, Y = { 0 };
        int64_t dd[2] = { R, u8 ? Cl / 2 : Cl }, id[2] = { 2, 2 }, sd[2] = { R, nblk };
        int64_t zd[2] = { R, u8 ? (nblk + 1) / 2 : nblk };
        t_alloc(&D, u8 ? SK_UINT8 : SK_INT4, 2, dd);
        t_alloc(&I, SK_INT64, 2, id);
        t_alloc(&S, SK_FLOAT, 2, sd);
        for (size_t i = 0; i < D.nbytes; i++) ((uint8_t *)D.data)[i] = (uint8_t)rnd();
        int64_t idx[4] = { 5, -1, 0, 7 }; /* 7 is out of range: zeros */
        memcpy(I.data, idx, sizeof idx);
        for (int64_t i = 0; i < S.numel; i++) ((float *)S.data)[i] = (float)(i + 1) * 0.5f;
        if (with_zp) {
            t_alloc(&Z, u8 ? SK_UINT8 : SK_INT4, 2, zd);
            for (size_t i = 0; i < Z.nbytes; i++) ((uint8_t *)Z.data)[i] = (uint8_t)rnd();
        }
        const sk_tensor *in[4] = { &D, &I, &S, with_zp ? &Z : NULL };
        sk_tensor *out[1] = { &Y };
        sk_error err = { 0 };
        sk_status st = run_node(node, 1, in, 4, out, 1, &err);
        if (st) fprintf(stderr, "GatherBlockQuantized: %s\n", err.msg);
        assert_int_equal(st, SK_OK);
        assert_int_equal(Y.rank, 3);
        assert_int_equal(Y.dims[0], 2);
        assert_int_equal(Y.dims[1], 2);
        assert_int_equal(Y.dims[2], Cl);
        const uint8_t *dp = D.data, *zp = Z.data;
        for (int64_t g = 0; g < 4; g++)
            for (int64_t c = 0; c < Cl; c++) {
                float want = 0, got = ((float *)Y.data)[g * Cl + c];
                if (idx[g] < R) {
                    int64_t r = idx[g] < 0 ? idx[g] + R : idx[g], e = r * Cl + c, b = c / bs;
                    int q = (dp[e >> 1] >> ((e & 1) * 4)) & 15;
                    if (!u8 && q >= 8) q -= 16;
                    int z = u8 ? 8 : 0;
                    if (with_zp) {
                        int64_t zi = u8 ? r * ((nblk + 1) / 2) * 2 + b : r * nblk + b;
                        z = (zp[zi >> 1] >> ((zi & 1) * 4)) & 15;
                        if (!u8 && z >= 8) z -= 16;
                    }
                    want = (float)(q - z) * ((float *)S.data)[r * nblk + b];
                }
                if (got != want) {
                    fprintf(stderr, "GatherBlockQuantized variant %d [%lld][%lld]: %g != %g\n", variant, (long long)g,
                            (long long)c, got, want);
                    fail();
                }
            }
        sk_tensor_free(&D);
        sk_tensor_free(&I);
        sk_tensor_free(&S);
        sk_tensor_free(&Z);
        sk_tensor_free(&Y);
        sk_node_proto_free(NULL, node);
    }
}

/* QuantizeLinear/DequantizeLinear opset 21: blocked int4 round trip, half to
 * even, saturation. */
static void test_quantize_blocked_int4(void **state)
{
    (void)state;
    Onnx__NodeProto *q = mk_node("QuantizeLinear", NULL, 3), *dq = mk_node("DequantizeLinear", NULL, 3);
    sk_node_add_attr_int(q, "axis", 1);
    sk_node_add_attr_int(q, "block_size", 2);
    sk_node_add_attr_int(dq, "axis", 1);
    sk_node_add_attr_int(dq, "block_size", 2);
    sk_tensor X = { 0 }, S = { 0 }, Z = { 0 }, Y = { 0 }, X2 = { 0 };
    int64_t xd[2] = { 2, 5 }, sd[2] = { 2, 3 };
    t_alloc(&X, SK_FLOAT, 2, xd);
    t_alloc(&S, SK_FLOAT, 2, sd);
    t_alloc(&Z, SK_INT4, 2, sd);
    float xv[10] = { 0.5f, 1.5f, 2.5f, -2.5f, 100.f, -0.5f, 3.0f, -100.f, 7.0f, 1.0f };
    float sv[6] = { 1, 1, 1, 0.5f, 2, 1 };
    int zv[6] = { 0, 1, -1, 0, 2, -8 };
    memcpy(X.data, xv, sizeof xv);
    memcpy(S.data, sv, sizeof sv);
    for (int i = 0; i < 6; i++) {
        uint8_t *p = Z.data;
        p[i >> 1] = (uint8_t)(p[i >> 1] | ((zv[i] & 15) << ((i & 1) * 4)));
    }
    const sk_tensor *in[3] = { &X, &S, &Z };
    sk_tensor *out[1] = { &Y };
    sk_error err = { 0 };
    assert_int_equal(run_node(q, 21, in, 3, out, 1, &err), SK_OK);
    assert_int_equal(Y.dtype, SK_INT4);
    /* row 0: blocks (0.5,1.5|zp0) (2.5,-2.5|zp1) (100|zp-1); row 1: s .5 zp 0, s 2 zp 2, s 1 zp -8 */
    int want[10] = { 0, 2, 3, -1, 7, -1, 6, -8, 6, -7 };
    for (int i = 0; i < 10; i++) assert_int_equal(sk_tensor_get_i64(&Y, i), want[i]);
    const sk_tensor *in2[3] = { &Y, &S, &Z };
    sk_tensor *out2[1] = { &X2 };
    assert_int_equal(run_node(dq, 21, in2, 3, out2, 1, &err), SK_OK);
    float back[10] = { 0, 2, 2, -2, 8, -0.5f, 3, -20, 8, 1 };
    for (int i = 0; i < 10; i++) assert_true(((float *)X2.data)[i] == back[i]);
    /* scale shape that does not match the blocks */
    sk_tensor S2 = { 0 };
    int64_t bad[2] = { 2, 2 };
    t_alloc(&S2, SK_FLOAT, 2, bad);
    const sk_tensor *in3[3] = { &X, &S2, NULL };
    assert_int_equal(run_node(q, 21, in3, 3, out, 1, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "block_size"));
    sk_tensor_free(&X);
    sk_tensor_free(&S);
    sk_tensor_free(&S2);
    sk_tensor_free(&Z);
    sk_tensor_free(&Y);
    sk_tensor_free(&X2);
    sk_node_proto_free(NULL, q);
    sk_node_proto_free(NULL, dq);
}

/* QuantizeLinear float -> 8 bit per tensor (the vector path): ties to even,
 * saturation, every length remainder; NaN becomes the low end. */
static void test_quantize_ties(void **state)
{
    (void)state;
    static const float xv[] = { 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 1e30f, -1e30f, 254.5f, 127.5f, -128.5f, 3.49999f, 7.0f };
    for (int sg = 0; sg < 2; sg++)
        for (int64_t n = 1; n <= 40; n++) {
            Onnx__NodeProto *q = mk_node("QuantizeLinear", NULL, 3);
            sk_tensor X = { 0 }, S = { 0 }, Z = { 0 }, Y = { 0 };
            int64_t xd[1] = { n };
            t_alloc(&X, SK_FLOAT, 1, xd);
            t_alloc(&S, SK_FLOAT, 0, NULL);
            t_alloc(&Z, sg ? SK_INT8 : SK_UINT8, 0, NULL);
            for (int64_t i = 0; i < n; i++) ((float *)X.data)[i] = xv[i % 12] * (i >= 12 ? -1.0f : 1.0f);
            if (n == 40) ((float *)X.data)[39] = NAN;
            *(float *)S.data = 1;
            *(uint8_t *)Z.data = sg ? 0 : 1;
            const sk_tensor *in[3] = { &X, &S, &Z };
            sk_tensor *out[1] = { &Y };
            assert_int_equal(run_node(q, 13, in, 3, out, 1, NULL), SK_OK);
            for (int64_t i = 0; i < n; i++) {
                double x = ((float *)X.data)[i], lo = sg ? -128 : 0, hi = sg ? 127 : 255;
                double v = isnan(x) ? lo : nearbyint(x) + (sg ? 0 : 1);
                v = v < lo ? lo : v > hi ? hi : v;
                assert_int_equal(sk_tensor_get_i64(&Y, i), (int64_t)v);
            }
            sk_tensor_free(&X);
            sk_tensor_free(&S);
            sk_tensor_free(&Z);
            sk_tensor_free(&Y);
            sk_node_proto_free(NULL, q);
        }
}

/* float8 round trip through QuantizeLinear/DequantizeLinear (opset 19). */
static void test_float8(void **state)
{
    (void)state;
    static const int types[] = { SK_FLOAT8E4M3FN, SK_FLOAT8E4M3FNUZ, SK_FLOAT8E5M2, SK_FLOAT8E5M2FNUZ };
    static const float maxv[] = { 448.f, 240.f, 57344.f, 57344.f };
    for (int t = 0; t < 4; t++) {
        Onnx__NodeProto *q = mk_node("QuantizeLinear", NULL, 3), *dq = mk_node("DequantizeLinear", NULL, 3);
        sk_tensor X = { 0 }, S = { 0 }, Z = { 0 }, Y = { 0 }, X2 = { 0 };
        int64_t xd[1] = { 8 };
        t_alloc(&X, SK_FLOAT, 1, xd);
        t_alloc(&S, SK_FLOAT, 0, NULL);
        t_alloc(&Z, types[t], 0, NULL);
        float xv[8] = { 0, 1, -2, 0.75f, 1e9f, -1e9f, 3.0f, 1.0f / 64 };
        memcpy(X.data, xv, sizeof xv);
        *(float *)S.data = 1;
        const sk_tensor *in[3] = { &X, &S, &Z };
        sk_tensor *out[1] = { &Y };
        sk_error err = { 0 };
        assert_int_equal(run_node(q, 19, in, 3, out, 1, &err), SK_OK);
        assert_int_equal(Y.dtype, types[t]);
        const sk_tensor *in2[3] = { &Y, &S, &Z };
        sk_tensor *out2[1] = { &X2 };
        assert_int_equal(run_node(dq, 19, in2, 3, out2, 1, &err), SK_OK);
        float *b = X2.data;
        assert_true(b[0] == 0 && b[1] == 1 && b[2] == -2 && b[3] == 0.75f && b[6] == 3.0f && b[7] == 1.0f / 64);
        assert_true(b[4] == maxv[t] && b[5] == -maxv[t]); /* saturated */
        sk_tensor_free(&X);
        sk_tensor_free(&S);
        sk_tensor_free(&Z);
        sk_tensor_free(&Y);
        sk_tensor_free(&X2);
        sk_node_proto_free(NULL, q);
        sk_node_proto_free(NULL, dq);
    }
}

/* MatMulInteger with per-row / per-column zero points and broadcast batches,
 * against the reference GEMM; DynamicQuantizeMatMul against its definition. */
static void test_matmul_integer_batched(void **state)
{
    (void)state;
    Onnx__NodeProto *node = mk_node("MatMulInteger", NULL, 4);
    sk_tensor A = { 0 }, B = { 0 }, ZA = { 0 }, ZB = { 0 }, Y = { 0 };
    int64_t ad[3] = { 3, 5, 7 }, bd[3] = { 1, 7, 6 }, zad[1] = { 5 }, zbd[1] = { 6 };
    t_alloc(&A, SK_UINT8, 3, ad);
    t_alloc(&B, SK_INT8, 3, bd);
    t_alloc(&ZA, SK_UINT8, 1, zad);
    t_alloc(&ZB, SK_INT8, 1, zbd);
    for (size_t i = 0; i < A.nbytes; i++) ((uint8_t *)A.data)[i] = (uint8_t)rnd();
    for (size_t i = 0; i < B.nbytes; i++) ((uint8_t *)B.data)[i] = (uint8_t)rnd();
    for (size_t i = 0; i < ZA.nbytes; i++) ((uint8_t *)ZA.data)[i] = (uint8_t)rnd();
    for (size_t i = 0; i < ZB.nbytes; i++) ((uint8_t *)ZB.data)[i] = (uint8_t)rnd();
    const sk_tensor *in[4] = { &A, &B, &ZA, &ZB };
    sk_tensor *out[1] = { &Y };
    sk_error err = { 0 };
    assert_int_equal(run_node(node, 10, in, 4, out, 1, &err), SK_OK);
    assert_int_equal(Y.rank, 3);
    assert_int_equal(Y.dims[0], 3);
    for (int64_t b = 0; b < 3; b++)
        for (int64_t m = 0; m < 5; m++)
            for (int64_t n = 0; n < 6; n++) {
                int32_t acc = 0;
                for (int64_t k = 0; k < 7; k++)
                    acc += (((uint8_t *)A.data)[(b * 5 + m) * 7 + k] - ((uint8_t *)ZA.data)[m]) *
                           (((int8_t *)B.data)[k * 6 + n] - ((int8_t *)ZB.data)[n]);
                assert_int_equal(((int32_t *)Y.data)[(b * 5 + m) * 6 + n], acc);
            }
    sk_tensor_free(&Y);
    /* incompatible zero point */
    int64_t bad[1] = { 4 };
    sk_tensor ZB2 = { 0 };
    t_alloc(&ZB2, SK_INT8, 1, bad);
    const sk_tensor *in2[4] = { &A, &B, NULL, &ZB2 };
    assert_int_equal(run_node(node, 10, in2, 4, out, 1, &err), SK_EUNSUPPORTED);
    sk_tensor_free(&ZB2);
    sk_node_proto_free(NULL, node);

    /* DynamicQuantizeMatMul: float A quantized to uint8 on the fly */
    node = mk_node("DynamicQuantizeMatMul", "com.microsoft", 5);
    sk_tensor Af = { 0 }, Sb = { 0 }, Bias = { 0 };
    int64_t afd[2] = { 4, 7 }, sbd[1] = { 6 };
    t_alloc(&Af, SK_FLOAT, 2, afd);
    t_alloc(&Sb, SK_FLOAT, 1, sbd);
    t_alloc(&Bias, SK_FLOAT, 1, sbd);
    float mn = 0, mx = 0;
    for (int64_t i = 0; i < Af.numel; i++) {
        float v = (float)((int)(rnd() % 2001) - 700) / 500.0f;
        ((float *)Af.data)[i] = v;
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    for (int64_t i = 0; i < 6; i++) {
        ((float *)Sb.data)[i] = 0.01f * (float)(i + 1);
        ((float *)Bias.data)[i] = (float)i;
    }
    int64_t b2d[2] = { 7, 6 };
    sk_tensor B2 = { 0 };
    assert_int_equal(sk_tensor_borrow(&B2, SK_INT8, 2, b2d, B.data, B.nbytes, NULL), SK_OK);
    const sk_tensor *in3[5] = { &Af, &B2, &Sb, &ZB, &Bias };
    assert_int_equal(run_node(node, 1, in3, 5, out, 1, &err), SK_OK);
    float sa = (mx - mn) / 255.0f, za = nearbyintf(-mn / sa);
    for (int64_t m = 0; m < 4; m++)
        for (int64_t n = 0; n < 6; n++) {
            int32_t acc = 0;
            for (int64_t k = 0; k < 7; k++) {
                float q = nearbyintf(((float *)Af.data)[m * 7 + k] / sa) + za;
                q = q < 0 ? 0 : q > 255 ? 255 : q;
                acc += ((int32_t)q - (int32_t)za) * (((int8_t *)B.data)[k * 6 + n] - ((int8_t *)ZB.data)[n]);
            }
            float want = (float)acc * (sa * ((float *)Sb.data)[n]) + (float)n;
            assert_true(fabsf(((float *)Y.data)[m * 6 + n] - want) <= 1e-5f * (1 + fabsf(want)));
        }
    sk_tensor_free(&Af);
    sk_tensor_free(&Sb);
    sk_tensor_free(&Bias);
    sk_tensor_free(&A);
    sk_tensor_free(&B);
    sk_tensor_free(&ZA);
    sk_tensor_free(&ZB);
    sk_tensor_free(&Y);
    sk_node_proto_free(NULL, node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onnx_node_tests),
        cmocka_unit_test(test_matmul_nbits),
        cmocka_unit_test(test_matmul_nbits_errors),
        cmocka_unit_test(test_gather_block_quantized),
        cmocka_unit_test(test_quantize_blocked_int4),
        cmocka_unit_test(test_quantize_ties),
        cmocka_unit_test(test_float8),
        cmocka_unit_test(test_matmul_integer_batched),
        cmocka_unit_test(test_oracle_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
