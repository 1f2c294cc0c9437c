/* The quantizer (quant/): weight math (round-trip error bounds, the 4-bit
 * scale search never worse than max-abs scaling, layouts), glob matching,
 * the calibration readers and range calibrators, and whole-model rewrites
 * in every mode checked by running float and quantized models in skiff's
 * engine; determinism (same bytes twice, any thread count); bad options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_engine.h"
#include "sk_model.h"
#include "sk_npy.h"
#include "sk_quant.h"
#include "sk_quant_calib.h"
#include "sk_quant_internal.h"

static uint64_t rng = 0x243F6A8885A308D3ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) % 2000001) / 1000000.0f - 1.0f;
}
static float grand(void) /* roughly normal */
{
    return (frand() + frand() + frand() + frand()) * 0.8f;
}

/* ---- glob ------------------------------------------------------------------------- */

static void test_glob(void **state)
{
    (void)state;
    assert_true(sk_quant_glob_match("*", ""));
    assert_true(sk_quant_glob_match("*", "/m/a/b"));
    assert_true(sk_quant_glob_match("/m/bert/encoder/layer.0/*", "/m/bert/encoder/layer.0/attention/self/MatMul"));
    assert_false(sk_quant_glob_match("/m/bert/encoder/layer.0/*", "/m/bert/encoder/layer.1/x"));
    assert_true(sk_quant_glob_match("*classifier*", "/m/classifier/Gemm"));
    assert_true(sk_quant_glob_match("layer.[0-2]*", "layer.2/MatMul"));
    assert_false(sk_quant_glob_match("layer.[0-2]*", "layer.3/MatMul"));
    assert_true(sk_quant_glob_match("layer.[!0]", "layer.5"));
    assert_false(sk_quant_glob_match("layer.[!0]", "layer.0"));
    assert_true(sk_quant_glob_match("a?c", "abc"));
    assert_false(sk_quant_glob_match("a?c", "ac"));
    assert_true(sk_quant_glob_match("*a*b*c", "xxaxxbxxc"));
    assert_false(sk_quant_glob_match("*a*b*c", "xxaxxcxxb"));
    assert_true(sk_quant_glob_match("x[", "x["));
    assert_false(sk_quant_glob_match("exact", "exactly"));
}

/* ---- weight math -------------------------------------------------------------------- */

static void test_q8_roundtrip(void **state)
{
    (void)state;
    enum { R = 37, C = 29 };
    float w[R * C];
    for (int i = 0; i < R * C; i++) w[i] = grand() * (1 + (i % C)); /* columns of growing scale */
    for (int axis = -1; axis <= 1; axis++)
        for (int tr = 0; tr < 2; tr++)
            for (int u = 0; u < 2; u++) {
                int8_t q[R * C];
                float sc[R > C ? R : C];
                uint8_t zp[R > C ? R : C];
                sk_qjob j;
                memset(&j, 0, sizeof j);
                j.kind = SK_QJOB_Q8;
                j.u.q8 = (sk_q8_job){ w, R, C, axis, tr, u, q, sc, zp, 1.0f };
                assert_int_equal(sk_qjobs_run(&j, 1, 3, NULL), SK_OK);
                for (int r = 0; r < R; r++)
                    for (int k = 0; k < C; k++) {
                        int ch = axis < 0 ? 0 : axis == 1 ? k : r;
                        int o = tr ? k * R + r : r * C + k;
                        float code = u ? (float)((uint8_t *)q)[o] - (float)zp[ch] : (float)q[o];
                        float d = code * sc[ch];
                        assert_true(fabsf(d - w[r * C + k]) <= sc[ch] * 0.5f + 1e-6f);
                    }
                assert_true(sk_qerr_db(&j.err) > 30.0);
            }
}

/* Plain max-abs scaling of a 4-bit block, for comparison. */
static double naive_q4_err(const float *x, int n)
{
    float amax = 0;
    for (int i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    float s = amax / 7.0f;
    double e = 0;
    for (int i = 0; i < n; i++) {
        float q = s > 0 ? rintf(x[i] / s) : 0;
        q = q < -8 ? -8 : q > 7 ? 7 : q;
        e += (double)(x[i] - q * s) * (x[i] - q * s);
    }
    return e;
}

static void test_q4_block_search(void **state)
{
    (void)state;
    double tot_search = 0, tot_naive = 0;
    for (int t = 0; t < 500; t++) {
        float x[32];
        for (int i = 0; i < 32; i++) x[i] = grand();
        if (t % 7 == 0) x[t % 32] *= 6; /* an outlier */
        for (int asym = 0; asym < 2; asym++) {
            uint8_t codes[32], zp;
            float s = sk_quant_q4_block(x, NULL, 32, asym, codes, &zp);
            assert_true(s >= 0);
            if (!asym) assert_int_equal(zp, 8);
            double e = 0;
            for (int i = 0; i < 32; i++) {
                assert_true(codes[i] <= 15);
                float d = x[i] - ((float)codes[i] - (float)zp) * s;
                e += (double)d * d;
            }
            double nv = naive_q4_err(x, 32);
            if (!asym) {
                assert_true(e <= nv * 1.0001 + 1e-12); /* the search includes max-abs/7 */
                tot_search += e;
                tot_naive += nv;
            } else {
                assert_true(e <= nv * 1.05 + 1e-12);
            }
        }
    }
    assert_true(tot_search < tot_naive * 0.9); /* and is clearly better on average */
    /* all zeros: exact */
    float z[16] = { 0 };
    uint8_t c[16], zp;
    assert_true(sk_quant_q4_block(z, NULL, 16, 0, c, &zp) == 0);
    for (int i = 0; i < 16; i++) assert_int_equal(c[i], 8);
}

static void test_q4_importance(void **state)
{
    (void)state;
    /* with one channel weighted heavily, its error shrinks */
    double plain = 0, weighted = 0;
    for (int t = 0; t < 200; t++) {
        float x[32], imp[32];
        for (int i = 0; i < 32; i++) {
            x[i] = grand();
            imp[i] = i == 3 ? 100.0f : 1.0f;
        }
        uint8_t c1[32], c2[32], z1, z2;
        float s1 = sk_quant_q4_block(x, NULL, 32, 0, c1, &z1);
        float s2 = sk_quant_q4_block(x, imp, 32, 0, c2, &z2);
        plain += fabs(x[3] - ((float)c1[3] - 8) * s1);
        weighted += fabs(x[3] - ((float)c2[3] - 8) * s2);
    }
    assert_true(weighted < plain * 0.8);
}

static void test_q4_job_layouts(void **state)
{
    (void)state;
    enum { K = 70, N = 5, BS = 32, NB = 3 };
    float w[K * N], wt[N * K];
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) w[k * N + n] = wt[n * K + k] = grand();
    uint8_t c1[N * NB * BS / 2], c2[N * NB * BS / 2], z1[N * NB], z2[N * NB];
    float s1[N * NB], s2[N * NB];
    sk_qjob j[2];
    memset(j, 0, sizeof j);
    j[0].kind = j[1].kind = SK_QJOB_Q4;
    j[0].u.q4 = (sk_q4_job){ w, N, K, BS, 1, 1, NULL, c1, s1, z1, 1.0f };
    j[1].u.q4 = (sk_q4_job){ wt, N, K, BS, 0, 1, NULL, c2, s2, z2, 1.0f };
    assert_int_equal(sk_qjobs_run(j, 2, 2, NULL), SK_OK);
    assert_memory_equal(c1, c2, sizeof c1);
    assert_memory_equal(s1, s2, sizeof s1);
    assert_memory_equal(z1, z2, sizeof z1);
    /* padding of the last block dequantizes to zero */
    for (int n = 0; n < N; n++)
        for (int i = K - 2 * BS; i < BS; i++)
            assert_int_equal(sk_quant_nibble(c1, (size_t)((n * NB + 2) * BS + i)), z1[n * NB + 2]);
    assert_true(sk_qerr_db(&j[0].err) > 15.0);
    uint8_t p[3];
    const uint8_t codes[5] = { 1, 2, 3, 4, 15 };
    sk_quant_pack4(codes, 5, p);
    assert_int_equal(p[0], 0x21);
    assert_int_equal(p[1], 0x43);
    assert_int_equal(p[2], 0x0f);
}

/* ---- calibration ranges ------------------------------------------------------------------ */

static void test_calib_ranges(void **state)
{
    (void)state;
    sk_quant_stats s;
    memset(&s, 0, sizeof s);
    s.count = 100000;
    s.lo = -50;
    s.hi = 4;
    s.hlo = -50;
    s.hhi = 4;
    s.hist = calloc(SK_QUANT_HIST_BINS, sizeof *s.hist);
    assert_non_null(s.hist);
    /* most mass in [-1, 3], a few far outliers at -50 */
    for (int i = 0; i < 100000; i++) {
        double v = i < 20 ? -50 + frand() * 0.01 : fmin(3.9, fmax(-1.0, grand()));
        int64_t b = (int64_t)((v - s.hlo) / (s.hhi - s.hlo) * SK_QUANT_HIST_BINS);
        if (b < 0) b = 0;
        if (b >= SK_QUANT_HIST_BINS) b = SK_QUANT_HIST_BINS - 1;
        s.hist[b]++;
    }
    double lo, hi;
    sk_quant_calib_range(&s, SK_QUANT_CALIB_MINMAX, 0, &lo, &hi);
    assert_true(lo == -50 && hi == 4);
    sk_quant_calib_range(&s, SK_QUANT_CALIB_PERCENTILE, 99.9, &lo, &hi);
    assert_true(lo > -2 && lo <= 0 && hi > 2 && hi <= 4); /* 20 outliers of 100000 are cut */
    sk_quant_calib_range(&s, SK_QUANT_CALIB_MSE, 0, &lo, &hi);
    assert_true(lo <= -0.9 && hi > 2.5); /* 20 far outliers cost more clipped than kept */
    sk_quant_calib_range(&s, SK_QUANT_CALIB_ENTROPY, 0, &lo, &hi);
    assert_true(lo > -50 && lo <= 0 && hi > 1);
    /* positive-only values still include 0 */
    memset(s.hist, 0, SK_QUANT_HIST_BINS * sizeof *s.hist);
    s.lo = 2;
    s.hi = 3;
    s.hlo = 0;
    s.hhi = 3;
    s.hist[SK_QUANT_HIST_BINS - 1] = 10;
    sk_quant_calib_range(&s, SK_QUANT_CALIB_PERCENTILE, 99.99, &lo, &hi);
    assert_true(lo == 0 && hi > 2.9);
    free(s.hist);
}

/* ---- models ----------------------------------------------------------------------------- */

static Onnx__ValueInfoProto *vi_new(const char *name, int dtype, int rank, const int64_t *dims)
{
    Onnx__ValueInfoProto *v = malloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = strdup(name);
    v->type = malloc(sizeof *v->type);
    onnx__type_proto__init(v->type);
    v->type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    v->type->tensor_type = malloc(sizeof *v->type->tensor_type);
    onnx__type_proto__tensor__init(v->type->tensor_type);
    v->type->tensor_type->has_elem_type = 1;
    v->type->tensor_type->elem_type = dtype;
    if (rank >= 0) {
        Onnx__TensorShapeProto *sh = malloc(sizeof *sh);
        onnx__tensor_shape_proto__init(sh);
        sh->n_dim = (size_t)rank;
        sh->dim = calloc((size_t)rank + 1, sizeof *sh->dim);
        for (int i = 0; i < rank; i++) {
            sh->dim[i] = malloc(sizeof *sh->dim[i]);
            onnx__tensor_shape_proto__dimension__init(sh->dim[i]);
            sh->dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            sh->dim[i]->dim_value = dims[i];
        }
        v->type->tensor_type->shape = sh;
    }
    return v;
}

static void add_vi(size_t *n, Onnx__ValueInfoProto ***arr, Onnx__ValueInfoProto *v)
{
    *arr = realloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = v;
}

static Onnx__NodeProto *node(Onnx__GraphProto *g, const char *op, const char *name, size_t ni, const char *const *in,
                             const char *out)
{
    const char *o[1] = { out };
    Onnx__NodeProto *n = sk_node_proto_new(op, NULL, name, ni, in, 1, o);
    assert_non_null(n);
    assert_int_equal(sk_graph_insert_node(g, SIZE_MAX, n), SK_OK);
    return n;
}

static void init_f32(Onnx__GraphProto *g, const char *name, int rank, const int64_t *dims, float scale)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    float *v = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) v[i] = grand() * scale;
    sk_tensor_proto *t = sk_tensor_proto_new(name, SK_FLOAT, rank, dims, v, (size_t)n * 4);
    free(v);
    assert_non_null(t);
    assert_int_equal(sk_graph_add_initializer(g, t), SK_OK);
}

static sk_model *wrap(Onnx__GraphProto *g, int64_t opset)
{
    Onnx__ModelProto *mp = malloc(sizeof *mp);
    onnx__model_proto__init(mp);
    mp->has_ir_version = 1;
    mp->ir_version = 8;
    mp->n_opset_import = 1;
    mp->opset_import = malloc(sizeof *mp->opset_import);
    mp->opset_import[0] = malloc(sizeof **mp->opset_import);
    onnx__operator_set_id_proto__init(mp->opset_import[0]);
    mp->opset_import[0]->domain = strdup("");
    mp->opset_import[0]->has_version = 1;
    mp->opset_import[0]->version = opset;
    mp->graph = g;
    sk_model *m;
    sk_error err;
    assert_int_equal(sk_model_wrap(mp, NULL, &m, &err), SK_OK);
    return m;
}

/* x [2, 64] -> MatMul W1 [64, 48] -> Relu -> Gemm(W2 [32, 48] transB, C [32],
 * alpha 0.5, beta 2) -> y ; ids [3] -> Gather E [300, 64] -> e ;
 * Transpose(T [40, 48]) feeds MatMul(h, .) -> z (a tied-weight pattern). */
static sk_model *mlp_model(int64_t opset)
{
    Onnx__GraphProto *g = malloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup("mlp");
    int64_t xd[2] = { 2, 64 }, idd[1] = { 3 };
    add_vi(&g->n_input, &g->input, vi_new("x", SK_FLOAT, 2, xd));
    add_vi(&g->n_input, &g->input, vi_new("ids", SK_INT64, 1, idd));
    add_vi(&g->n_output, &g->output, vi_new("y", SK_FLOAT, -1, NULL));
    add_vi(&g->n_output, &g->output, vi_new("e", SK_FLOAT, -1, NULL));
    add_vi(&g->n_output, &g->output, vi_new("z", SK_FLOAT, -1, NULL));
    int64_t w1[2] = { 64, 48 }, w2[2] = { 32, 48 }, c[1] = { 32 }, ed[2] = { 300, 64 }, td[2] = { 40, 48 };
    init_f32(g, "W1", 2, w1, 0.2f);
    init_f32(g, "W2", 2, w2, 0.2f);
    init_f32(g, "C", 1, c, 1.0f);
    init_f32(g, "E", 2, ed, 1.0f);
    init_f32(g, "T", 2, td, 0.3f);
    const char *a[3] = { "x", "W1" };
    node(g, "MatMul", "layer1/MatMul", 2, a, "h0");
    a[0] = "h0";
    node(g, "Relu", "layer1/Relu", 1, a, "h");
    const char *b[3] = { "h", "W2", "C" };
    Onnx__NodeProto *gm = node(g, "Gemm", "layer2/Gemm", 3, b, "y");
    assert_int_equal(sk_node_add_attr_int(gm, "transB", 1), SK_OK);
    assert_int_equal(sk_node_add_attr_float(gm, "alpha", 0.5f), SK_OK);
    assert_int_equal(sk_node_add_attr_float(gm, "beta", 2.0f), SK_OK);
    const char *e[2] = { "E", "ids" };
    node(g, "Gather", "embed/Gather", 2, e, "e");
    const char *t[1] = { "T" };
    Onnx__NodeProto *tn = node(g, "Transpose", "tied/Transpose", 1, t, "Tt");
    int64_t perm[2] = { 1, 0 };
    assert_int_equal(sk_node_add_attr_ints(tn, "perm", 2, perm), SK_OK);
    const char *z[2] = { "h", "Tt" };
    node(g, "MatMul", "tied/MatMul", 2, z, "z");
    return wrap(g, opset);
}

static sk_tensor tensor_f32(int rank, const int64_t *dims)
{
    sk_tensor t = { 0 };
    assert_int_equal(sk_tensor_alloc(&t, SK_FLOAT, rank, dims, NULL), SK_OK);
    for (int64_t i = 0; i < t.numel; i++) ((float *)t.data)[i] = grand();
    return t;
}

/* Runs m on (x, ids) and returns its outputs (3). */
static void run_mlp(sk_model *m, const sk_tensor *x, const sk_tensor *ids, sk_tensor out[3])
{
    sk_engine *e;
    sk_error err = { 0 };
    sk_status s = sk_engine_create(m, NULL, &e, &err);
    if (s) fail_msg("engine: %s", err.msg);
    const char *names[2] = { "x", "ids" };
    const sk_tensor *in[2] = { x, ids };
    assert_int_equal(sk_engine_output_count(e), 3);
    s = sk_engine_run(e, 2, names, in, out, &err);
    if (s) fail_msg("run: %s", err.msg);
    sk_engine_free(e);
}

static double cosine(const sk_tensor *a, const sk_tensor *b)
{
    assert_int_equal(a->numel, b->numel);
    double d = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double x = ((float *)a->data)[i], y = ((float *)b->data)[i];
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    return d / sqrt(na * nb);
}

static int count_op(sk_model *m, const char *op)
{
    sk_graph_proto *g = sk_model_graph(m);
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++) n += !strcmp(g->node[i]->op_type, op);
    return n;
}

static int has_init(sk_model *m, const char *name)
{
    return sk_graph_initializer(sk_model_graph(m), name) != NULL;
}

/* A calibration folder with n samples of x and ids; returns its path (static buffer). */
static const char *calib_dir(int n)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "/tmp/skq-test-calib-%d-XXXXXX", (int)getpid());
    assert_non_null(mkdtemp(dir));
    for (int i = 0; i < n; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/sample_%02d", dir, i);
        assert_int_equal(mkdir(p, 0755), 0);
        int64_t xd[2] = { 2, 64 }, idd[1] = { 3 };
        sk_tensor x = tensor_f32(2, xd), ids = { 0 };
        assert_int_equal(sk_tensor_alloc(&ids, SK_INT64, 1, idd, NULL), SK_OK);
        for (int k = 0; k < 3; k++) ((int64_t *)ids.data)[k] = (k * 97 + i) % 300;
        snprintf(p, sizeof p, "%s/sample_%02d/x.npy", dir, i);
        assert_int_equal(sk_npy_save(p, &x, NULL), SK_OK);
        snprintf(p, sizeof p, "%s/sample_%02d/ids.npy", dir, i);
        assert_int_equal(sk_npy_save(p, &ids, NULL), SK_OK);
        sk_tensor_free(&x);
        sk_tensor_free(&ids);
    }
    return dir;
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Quantizes the MLP with o and checks the outputs against the float model. */
static sk_model *quantize_and_compare(const sk_quant_opts *o, double min_cos, sk_quant_report *rep)
{
    uint64_t seed = rng;
    sk_model *f = mlp_model(17);
    rng = seed;
    sk_model *q = mlp_model(17);
    sk_error err = { 0 };
    sk_status s = sk_quant_model(q, o, rep, &err);
    if (s) fail_msg("quantize: %s", err.msg);
    /* the saved bytes load back and pass the checker */
    uint8_t *buf;
    size_t len;
    assert_int_equal(sk_model_save_buffer(q, &buf, &len, &err), SK_OK);
    sk_model *back;
    s = sk_model_load_buffer(buf, len, NULL, "quantized", NULL, &back, &err);
    if (s) fail_msg("reload: %s", err.msg);
    free(buf);
    int64_t xd[2] = { 2, 64 }, idd[1] = { 3 };
    sk_tensor x = tensor_f32(2, xd), ids = { 0 };
    assert_int_equal(sk_tensor_alloc(&ids, SK_INT64, 1, idd, NULL), SK_OK);
    ((int64_t *)ids.data)[0] = 0;
    ((int64_t *)ids.data)[1] = 299;
    ((int64_t *)ids.data)[2] = 17;
    sk_tensor a[3] = { { 0 } }, b[3] = { { 0 } };
    run_mlp(f, &x, &ids, a);
    run_mlp(back, &x, &ids, b);
    for (int k = 0; k < 3; k++) {
        double cs = cosine(&a[k], &b[k]);
        if (cs < min_cos) fail_msg("output %d: cosine %f < %f", k, cs, min_cos);
        sk_tensor_free(&a[k]);
        sk_tensor_free(&b[k]);
    }
    sk_tensor_free(&x);
    sk_tensor_free(&ids);
    sk_model_free(f);
    sk_model_free(back);
    return q;
}

static void test_dynamic_model(void **state)
{
    (void)state;
    sk_quant_opts o;
    sk_quant_opts_init(&o);
    sk_quant_report *rep = sk_quant_report_create();
    sk_model *q = quantize_and_compare(&o, 0.999, rep);
    assert_int_equal(count_op(q, "MatMulInteger"), 3); /* MatMul, Gemm, tied MatMul */
    assert_int_equal(count_op(q, "DynamicQuantizeLinear"), 2); /* x and h, shared */
    assert_int_equal(count_op(q, "GatherBlockQuantized"), 1);
    assert_int_equal(count_op(q, "MatMul") + count_op(q, "Gemm") + count_op(q, "Gather") + count_op(q, "Transpose"), 0);
    assert_false(has_init(q, "W1") || has_init(q, "W2") || has_init(q, "E") || has_init(q, "T"));
    assert_true(has_init(q, "C")); /* beta folded into a new bias, the old one unread... */
    assert_int_equal(rep->n_layers, 4);
    for (size_t i = 0; i < rep->n_layers; i++) assert_true(rep->layers[i].sqnr_db > 30);
    assert_true(rep->weight_bytes_after * 3 < rep->weight_bytes_before);
    sk_model_free(q);
    sk_quant_report_free(rep);

    /* per-tensor, uint8 weights */
    sk_quant_opts_init(&o);
    o.per_tensor = 1;
    o.weight_uint8 = 1;
    q = quantize_and_compare(&o, 0.995, NULL);
    sk_model_free(q);

    /* exclude and op-types */
    sk_quant_opts_init(&o);
    const char *ex[1] = { "layer2/*" };
    const char *ops[1] = { "MatMul" };
    o.exclude = ex;
    o.n_exclude = 1;
    o.op_types = ops;
    o.n_op_types = 1;
    rep = sk_quant_report_create();
    q = quantize_and_compare(&o, 0.999, rep);
    assert_int_equal(count_op(q, "Gemm"), 1);
    assert_int_equal(count_op(q, "Gather"), 1);
    assert_int_equal(count_op(q, "MatMulInteger"), 2);
    assert_int_equal(rep->n_layers, 2);
    int found = 0;
    for (size_t i = 0; i < rep->n_skipped; i++) found |= !strcmp(rep->skipped[i].node, "layer2/Gemm");
    assert_true(found);
    sk_model_free(q);
    sk_quant_report_free(rep);

    /* keep-io-float: the Gemm writes a graph output, the first MatMul reads one */
    sk_quant_opts_init(&o);
    o.keep_io_float = 1;
    o.embed = SK_QUANT_EMBED_KEEP;
    q = quantize_and_compare(&o, 0.999, NULL);
    assert_int_equal(count_op(q, "MatMulInteger"), 0);
    sk_model_free(q);
}

/* Opset 10 has no DynamicQuantizeLinear: com.microsoft DynamicQuantizeMatMul. */
static void test_dynamic_old_opset(void **state)
{
    (void)state;
    uint64_t seed = rng;
    sk_model *f = mlp_model(10);
    rng = seed;
    sk_model *q = mlp_model(10);
    sk_quant_opts o;
    sk_quant_opts_init(&o);
    sk_error err = { 0 };
    if (sk_quant_model(q, &o, NULL, &err)) fail_msg("%s", err.msg);
    assert_int_equal(count_op(q, "DynamicQuantizeMatMul"), 3);
    assert_int_equal(count_op(q, "DynamicQuantizeLinear"), 0);
    assert_int_equal(sk_model_opset(q, ""), 10);
    int64_t xd[2] = { 2, 64 }, idd[1] = { 3 };
    sk_tensor x = tensor_f32(2, xd), ids = { 0 };
    assert_int_equal(sk_tensor_alloc(&ids, SK_INT64, 1, idd, NULL), SK_OK);
    sk_tensor a[3] = { { 0 } }, b[3] = { { 0 } };
    run_mlp(f, &x, &ids, a);
    run_mlp(q, &x, &ids, b);
    for (int k = 0; k < 3; k++) {
        assert_true(cosine(&a[k], &b[k]) > 0.999);
        sk_tensor_free(&a[k]);
        sk_tensor_free(&b[k]);
    }
    sk_tensor_free(&x);
    sk_tensor_free(&ids);
    sk_model_free(f);
    sk_model_free(q);
}

static void test_int4_model(void **state)
{
    (void)state;
    sk_quant_opts o;
    sk_quant_opts_init(&o);
    o.mode = SK_QUANT_INT4;
    sk_quant_report *rep = sk_quant_report_create();
    sk_model *q = quantize_and_compare(&o, 0.98, rep);
    assert_int_equal(count_op(q, "MatMulNBits"), 3);
    assert_int_equal(count_op(q, "Add"), 1); /* the Gemm's bias */
    assert_int_equal(count_op(q, "GatherBlockQuantized"), 1);
    assert_int_equal(sk_model_opset(q, "com.microsoft"), 1);
    for (size_t i = 0; i < rep->n_layers; i++) assert_true(rep->layers[i].sqnr_db > 15);
    sk_model_free(q);
    sk_quant_report_free(rep);

    sk_quant_opts_init(&o);
    o.mode = SK_QUANT_INT4;
    o.asym = 1;
    o.block = 64;
    o.embed = SK_QUANT_EMBED_INT4;
    q = quantize_and_compare(&o, 0.98, NULL);
    sk_model_free(q);

    /* QDQ: opset 21, int4 DequantizeLinear, the original MatMul/Gemm */
    sk_quant_opts_init(&o);
    o.mode = SK_QUANT_INT4;
    o.format = SK_QUANT_FORMAT_QDQ;
    q = quantize_and_compare(&o, 0.98, NULL);
    assert_int_equal(sk_model_opset(q, ""), 21);
    assert_true(sk_model_proto_of(q)->ir_version >= 10);
    assert_int_equal(count_op(q, "MatMul"), 2);
    assert_int_equal(count_op(q, "Gemm"), 1);
    assert_int_equal(count_op(q, "DequantizeLinear"), 4);
    sk_model_free(q);

    /* activation-aware: needs samples */
    const char *dir = calib_dir(3);
    sk_quant_calib *cal;
    sk_error err = { 0 };
    assert_int_equal(sk_quant_calib_open(dir, 0, &cal, &err), SK_OK);
    sk_quant_opts_init(&o);
    o.mode = SK_QUANT_INT4;
    o.calib = cal;
    rep = sk_quant_report_create();
    q = quantize_and_compare(&o, 0.98, rep);
    assert_non_null(strstr(rep->layers[1].scheme, "act-aware"));
    sk_model_free(q);
    sk_quant_report_free(rep);
    sk_quant_calib_free(cal);
    rm_rf(dir);
}

static void test_static_model(void **state)
{
    (void)state;
    const char *dir = calib_dir(16);
    sk_quant_calib *cal;
    sk_error err = { 0 };
    assert_int_equal(sk_quant_calib_open(dir, 0, &cal, &err), SK_OK);
    assert_int_equal(sk_quant_calib_count(cal), 16);
    static const sk_quant_calibrator cals[] = { SK_QUANT_CALIB_MINMAX, SK_QUANT_CALIB_PERCENTILE,
                                                SK_QUANT_CALIB_ENTROPY, SK_QUANT_CALIB_MSE };
    for (int k = 0; k < 4; k++) {
        sk_quant_opts o;
        sk_quant_opts_init(&o);
        o.mode = SK_QUANT_STATIC;
        o.calib = cal;
        o.calibrator = cals[k];
        sk_quant_report *rep = sk_quant_report_create();
        sk_model *q = quantize_and_compare(&o, 0.99, rep);
        assert_int_equal(count_op(q, "QuantizeLinear"), 2); /* x and h */
        assert_int_equal(count_op(q, "DequantizeLinear"), 2 + 3);
        assert_int_equal(count_op(q, "MatMul"), 2);
        assert_int_equal(count_op(q, "Gemm"), 1);
        assert_int_equal(rep->calib_samples, 16);
        assert_int_equal(rep->n_acts, 2);
        for (size_t i = 0; i < rep->n_acts; i++) assert_false(rep->acts[i].kept_float);
        sk_model_free(q);
        sk_quant_report_free(rep);
    }
    sk_quant_calib_free(cal);
    rm_rf(dir);
}

/* q [1, 4, 8] -> MatMul K -> + mask (0 / -inf, causal) -> Softmax -> MatMul V -> y. */
static sk_model *attn_model(void)
{
    Onnx__GraphProto *g = malloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup("attn");
    int64_t qd[3] = { 1, 4, 8 };
    add_vi(&g->n_input, &g->input, vi_new("q", SK_FLOAT, 3, qd));
    add_vi(&g->n_output, &g->output, vi_new("y", SK_FLOAT, -1, NULL));
    int64_t kd[2] = { 8, 4 }, vd[2] = { 4, 8 }, md[2] = { 4, 4 };
    init_f32(g, "K", 2, kd, 0.5f);
    init_f32(g, "V", 2, vd, 0.5f);
    float mask[16];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) mask[i * 4 + j] = j > i ? -INFINITY : 0.0f;
    sk_tensor_proto *mt = sk_tensor_proto_new("mask", SK_FLOAT, 2, md, mask, sizeof mask);
    assert_int_equal(sk_graph_add_initializer(g, mt), SK_OK);
    const char *a[2] = { "q", "K" };
    node(g, "MatMul", "scores", 2, a, "s");
    const char *b[2] = { "s", "mask" };
    node(g, "Add", "masked", 2, b, "sm");
    const char *c[1] = { "sm" };
    node(g, "Softmax", "softmax", 1, c, "p");
    const char *d[2] = { "p", "V" };
    node(g, "MatMul", "context", 2, d, "y");
    return wrap(g, 17);
}

static sk_tensor run_attn(sk_model *m, const sk_tensor *x)
{
    sk_engine *e;
    sk_error err = { 0 };
    if (sk_engine_create(m, NULL, &e, &err)) fail_msg("engine: %s", err.msg);
    sk_tensor y = { 0 };
    const char *names[1] = { "q" };
    const sk_tensor *in[1] = { x };
    if (sk_engine_run(e, 1, names, in, &y, &err)) fail_msg("run: %s", err.msg);
    sk_engine_free(e);
    return y;
}

/* Quantizing the Add and Softmax inputs too with the most naive range
 * (minmax): the mask-derived values must stay float. */
static void test_static_mask(void **state)
{
    (void)state;
    rng = 7;
    sk_model *f = attn_model();
    rng = 7;
    sk_model *m = attn_model();
    int64_t qd[3] = { 1, 4, 8 };
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/skq-test-mask-%d-XXXXXX", (int)getpid());
    assert_non_null(mkdtemp(dir));
    for (int i = 0; i < 12; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/s%02d", dir, i);
        assert_int_equal(mkdir(p, 0755), 0);
        sk_tensor t = tensor_f32(3, qd);
        snprintf(p, sizeof p, "%s/s%02d/input_0.pb", dir, i); /* test_data_set style, bound by position */
        assert_int_equal(sk_npy_save_pb(p, &t, NULL, NULL), SK_OK);
        sk_tensor_free(&t);
    }
    sk_quant_calib *cal;
    sk_error err = { 0 };
    assert_int_equal(sk_quant_calib_open(dir, 0, &cal, &err), SK_OK);
    sk_quant_opts o;
    sk_quant_opts_init(&o);
    o.mode = SK_QUANT_STATIC;
    o.calib = cal;
    o.calibrator = SK_QUANT_CALIB_MINMAX;
    const char *ops[3] = { "MatMul", "Add", "Softmax" };
    o.op_types = ops;
    o.n_op_types = 3;
    sk_quant_report *rep = sk_quant_report_create();
    if (sk_quant_model(m, &o, rep, &err)) fail_msg("%s", err.msg);
    int kept_sm = 0, quant_s = 0, quant_p = 0;
    for (size_t i = 0; i < rep->n_acts; i++) {
        const sk_quant_act *x = &rep->acts[i];
        assert_string_not_equal(x->name, "mask"); /* a constant: never an activation */
        if (!strcmp(x->name, "sm")) kept_sm = x->kept_float && x->note && strstr(x->note, "mask");
        if (!strcmp(x->name, "s")) quant_s = !x->kept_float;
        if (!strcmp(x->name, "p")) quant_p = !x->kept_float;
    }
    assert_true(kept_sm);
    assert_true(quant_s);
    assert_true(quant_p);
    sk_tensor x = tensor_f32(3, qd);
    sk_tensor y0 = run_attn(f, &x), y1 = run_attn(m, &x);
    double cs = cosine(&y0, &y1);
    if (!(cs > 0.99)) fail_msg("cosine %f", cs);
    sk_tensor_free(&y0);
    sk_tensor_free(&y1);
    sk_tensor_free(&x);
    sk_model_free(f);
    sk_model_free(m);
    sk_quant_report_free(rep);
    sk_quant_calib_free(cal);
    rm_rf(dir);
}

static void test_determinism(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        uint8_t *bufs[2];
        size_t lens[2];
        for (int k = 0; k < 2; k++) {
            uint64_t seed = 42;
            rng = seed;
            sk_model *m = mlp_model(17);
            sk_quant_opts o;
            sk_quant_opts_init(&o);
            o.mode = mode ? SK_QUANT_INT4 : SK_QUANT_DYNAMIC;
            o.threads = k ? 4 : 1;
            sk_error err = { 0 };
            assert_int_equal(sk_quant_model(m, &o, NULL, &err), SK_OK);
            assert_int_equal(sk_model_save_buffer(m, &bufs[k], &lens[k], &err), SK_OK);
            sk_model_free(m);
        }
        assert_int_equal(lens[0], lens[1]);
        assert_memory_equal(bufs[0], bufs[1], lens[0]);
        free(bufs[0]);
        free(bufs[1]);
    }
}

static void test_bad_options(void **state)
{
    (void)state;
    sk_model *m = mlp_model(17);
    sk_quant_opts o;
    sk_error err = { 0 };
    sk_quant_opts_init(&o);
    o.mode = SK_QUANT_STATIC;
    assert_int_equal(sk_quant_model(m, &o, NULL, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "calib"));
    sk_quant_opts_init(&o);
    o.mode = SK_QUANT_INT4;
    o.block = 48;
    assert_int_equal(sk_quant_model(m, &o, NULL, &err), SK_EINVAL);
    sk_quant_opts_init(&o);
    o.percentile = 20;
    assert_int_equal(sk_quant_model(m, &o, NULL, &err), SK_EINVAL);
    sk_model_free(m);
    /* static per-channel needs opset 13 */
    m = mlp_model(12);
    const char *dir = calib_dir(1);
    sk_quant_calib *cal;
    assert_int_equal(sk_quant_calib_open(dir, 0, &cal, &err), SK_OK);
    sk_quant_opts_init(&o);
    o.mode = SK_QUANT_STATIC;
    o.calib = cal;
    assert_int_equal(sk_quant_model(m, &o, NULL, &err), SK_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "opset"));
    sk_quant_calib_free(cal);
    rm_rf(dir);
    sk_model_free(m);
    /* opset 12 is too old for the int4 QDQ upgrade */
    m = mlp_model(12);
    sk_quant_opts_init(&o);
    o.mode = SK_QUANT_INT4;
    o.format = SK_QUANT_FORMAT_QDQ;
    assert_int_equal(sk_quant_model(m, &o, NULL, &err), SK_EUNSUPPORTED);
    sk_model_free(m);
}

static void test_calib_reader(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_quant_calib *c;
    assert_int_equal(sk_quant_calib_open("/nonexistent/skiff", 0, &c, &err), SK_EIO);
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/skq-test-reader-%d-XXXXXX", (int)getpid());
    assert_non_null(mkdtemp(dir));
    assert_int_equal(sk_quant_calib_open(dir, 0, &c, &err), SK_EINVAL); /* empty */
    assert_non_null(strstr(err.msg, "no samples"));
    char p[512];
    int64_t xd[2] = { 2, 64 };
    sk_tensor x = tensor_f32(2, xd);
    snprintf(p, sizeof p, "%s/a", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/a/x.npy", dir);
    assert_int_equal(sk_npy_save(p, &x, NULL), SK_OK);
    snprintf(p, sizeof p, "%s/b", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/b/nope.npy", dir);
    assert_int_equal(sk_npy_save(p, &x, NULL), SK_OK);
    sk_tensor_free(&x);
    assert_int_equal(sk_quant_calib_open(dir, 0, &c, &err), SK_OK);
    assert_int_equal(sk_quant_calib_count(c), 2);
    sk_model *m = mlp_model(17);
    sk_engine *e;
    assert_int_equal(sk_engine_create(m, NULL, &e, &err), SK_OK);
    sk_quant_sample smp;
    assert_int_equal(sk_quant_calib_load(c, 0, e, &smp, &err), SK_EINVAL); /* ids missing */
    assert_non_null(strstr(err.msg, "'ids'"));
    assert_int_equal(sk_quant_calib_load(c, 1, e, &smp, &err), SK_EINVAL); /* unknown input */
    assert_non_null(strstr(err.msg, "'nope'"));
    sk_quant_calib_free(c);
    assert_int_equal(sk_quant_calib_open(dir, 1, &c, &err), SK_OK); /* --calib-samples */
    assert_int_equal(sk_quant_calib_count(c), 1);
    sk_quant_calib_free(c);
    sk_engine_free(e);
    sk_model_free(m);
    rm_rf(dir);
}

static void test_eval(void **state)
{
    (void)state;
    const char *dir = calib_dir(3);
    sk_quant_calib *cal;
    sk_error err = { 0 };
    assert_int_equal(sk_quant_calib_open(dir, 0, &cal, &err), SK_OK);
    uint64_t seed = rng;
    sk_model *f = mlp_model(17);
    rng = seed;
    sk_model *q = mlp_model(17);
    sk_quant_opts o;
    sk_quant_opts_init(&o);
    sk_quant_report *rep = sk_quant_report_create();
    assert_int_equal(sk_quant_model(q, &o, rep, &err), SK_OK);
    for (size_t i = 0; i < rep->n_layers; i++) assert_true(isnan(rep->layers[i].out_sqnr_db));
    if (sk_quant_eval(f, q, cal, 2, "calib", rep, &err)) fail_msg("%s", err.msg);
    assert_int_equal(rep->eval_samples, 3);
    assert_string_equal(rep->eval_source, "calib");
    assert_int_equal(rep->n_outputs, 3);
    for (size_t i = 0; i < rep->n_outputs; i++) {
        assert_true(rep->outputs[i].cosine_min > 0.999 && rep->outputs[i].cosine_mean >= rep->outputs[i].cosine_min);
        assert_true(rep->outputs[i].max_abs >= 0 && rep->outputs[i].max_abs < 1);
        assert_true(rep->outputs[i].top1 >= 0.5);
    }
    for (size_t i = 0; i < rep->n_layers; i++)
        if (!(rep->layers[i].out_sqnr_db > 20 && rep->layers[i].out_sqnr_db < 100))
            fail_msg("layer %s: output SQNR %f", rep->layers[i].node, rep->layers[i].out_sqnr_db);
    /* the model itself as the quantized one: exact agreement */
    sk_quant_report *r2 = sk_quant_report_create();
    assert_int_equal(sk_quant_eval(f, f, cal, 1, "eval", r2, &err), SK_OK);
    for (size_t i = 0; i < r2->n_outputs; i++) {
        assert_true(r2->outputs[i].cosine_min > 0.9999999);
        assert_true(r2->outputs[i].max_abs == 0);
        assert_true(r2->outputs[i].top1 == 1.0);
    }
    sk_quant_report_free(r2);
    sk_quant_report_free(rep);
    sk_model_free(f);
    sk_model_free(q);
    sk_quant_calib_free(cal);
    rm_rf(dir);
}

static void test_report_files(void **state)
{
    (void)state;
    sk_quant_opts o;
    sk_quant_opts_init(&o);
    sk_quant_report *rep = sk_quant_report_create();
    sk_model *q = quantize_and_compare(&o, 0.999, rep);
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/skq-test-report-%d-XXXXXX", (int)getpid());
    assert_non_null(mkdtemp(dir));
    char pj[512], ph[512];
    snprintf(pj, sizeof pj, "%s/r.json", dir);
    snprintf(ph, sizeof ph, "%s/r.html", dir);
    rep->layers[0].sqnr_db = INFINITY; /* never written as inf */
    free(rep->layers[1].node);
    rep->layers[1].node = strdup("<script>\"x\"</script>");
    sk_error err = { 0 };
    assert_int_equal(sk_quant_report_write_json(rep, pj, &err), SK_OK);
    assert_int_equal(sk_quant_report_write_html(rep, ph, &err), SK_OK);
    uint8_t *b;
    size_t n;
    assert_int_equal(sk_npy_read_file(pj, 1 << 20, &b, &n, &err), SK_OK);
    b[n - 1] = 0;
    assert_non_null(strstr((char *)b, "\"sqnr_db\": null"));
    assert_null(strstr((char *)b, "inf"));
    assert_non_null(strstr((char *)b, "\\\"x\\\""));
    free(b);
    assert_int_equal(sk_npy_read_file(ph, 1 << 20, &b, &n, &err), SK_OK);
    b[n - 1] = 0;
    assert_null(strstr((char *)b, "<script>"));
    assert_non_null(strstr((char *)b, "<svg"));
    assert_null(strstr((char *)b, "src="));  /* self-contained: nothing fetched */
    assert_null(strstr((char *)b, "<link"));
    free(b);
    /* a folder that does not exist: an error, nothing written */
    assert_int_equal(sk_quant_report_write_json(rep, "/nonexistent/x.json", &err) != SK_OK, 1);
    rm_rf(dir);
    sk_model_free(q);
    sk_quant_report_free(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_q8_roundtrip),
        cmocka_unit_test(test_q4_block_search),
        cmocka_unit_test(test_q4_importance),
        cmocka_unit_test(test_q4_job_layouts),
        cmocka_unit_test(test_calib_ranges),
        cmocka_unit_test(test_dynamic_model),
        cmocka_unit_test(test_dynamic_old_opset),
        cmocka_unit_test(test_int4_model),
        cmocka_unit_test(test_static_model),
        cmocka_unit_test(test_static_mask),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_calib_reader),
        cmocka_unit_test(test_eval),
        cmocka_unit_test(test_report_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
