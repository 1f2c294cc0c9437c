/* lib/sk_ops_reduce.c: the vectorised softmax and layer-norm rows against
 * their references, every Reduce* over every axis subset against a brute-force
 * loop, axes as attribute and as input, ArgMax/ArgMin ties, CumSum modes,
 * Softmax's opset-11 flattening, LayerNormalization outputs and broadcast
 * scale, the com.microsoft skip variants, TopK ties, errors. ONNX's node tests
 * for these ops run through skiff-run in tests/cli/conformance.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_model.h"
#include "sk_op.h"

/* Row kernels of lib/sk_ops_reduce.c (fast and reference). */
void sk_softmax_row_ref(const float *x, float *y, int64_t n, int log_softmax);
void sk_softmax_row(const float *x, float *y, int64_t n, int log_softmax);
void sk_softmax_row_generic(const float *x, float *y, int64_t n, int log_softmax);
void sk_layernorm_row_ref(const float *x, float *y, int64_t n, const float *scale, const float *bias, float eps,
                          int rms, float *mean_out, float *rstd_out);
void sk_layernorm_row(const float *x, float *y, int64_t n, const float *scale, const float *bias, float eps, int rms,
                      float *mean_out, float *rstd_out);

static uint64_t rng_state = 0xA4093822299F31D0ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float frnd(void) { return (float)(rnd() % 20001) / 10000.0f - 1.0f; }

static Onnx__NodeProto *mk_node(const char *op, const char *domain, size_t n_in, size_t n_out)
{
    static const char *const ins[] = { "i0", "i1", "i2", "i3", "i4", "i5" };
    static const char *const outs[] = { "o0", "o1", "o2", "o3" };
    Onnx__NodeProto *n = sk_node_proto_new(op, domain, NULL, n_in, ins, n_out, outs);
    assert_non_null(n);
    return n;
}

static sk_status run_node(const Onnx__NodeProto *n, int64_t opset, size_t n_in, const sk_tensor *const *in,
                          size_t n_out, sk_tensor *out, sk_error *err)
{
    const sk_op_def *def = sk_op_find(n->domain, n->op_type, opset);
    assert_non_null(def);
    sk_tensor *outs[4] = { NULL, NULL, NULL, NULL };
    for (size_t i = 0; i < n_out; i++) outs[i] = &out[i];
    sk_op_ctx ctx = { .node = n, .opset = opset, .n_in = n_in, .in = in, .n_out = n_out, .out = outs, .threads = 1, .err = err };
    return def->run(&ctx);
}

static void rand_f32(sk_tensor *t, int rank, const int64_t *dims, float amp)
{
    sk_error err;
    assert_int_equal(sk_tensor_alloc(t, SK_FLOAT, rank, dims, &err), SK_OK);
    for (int64_t i = 0; i < t->numel; i++) ((float *)t->data)[i] = amp * frnd();
}

static void i64_tensor(sk_tensor *t, int64_t n, const int64_t *v)
{
    sk_error err;
    assert_int_equal(sk_tensor_alloc(t, SK_INT64, 1, &n, &err), SK_OK);
    if (n) memcpy(t->data, v, (size_t)n * sizeof *v);
}

/* ---- row kernels --------------------------------------------------------------- */

static void test_softmax_rows(void **state)
{
    (void)state;
    float x[80], y1[80], y2[80];
    for (int64_t n = 1; n <= 70; n++)
        for (int mode = 0; mode < 8; mode++)
            for (int lsm = 0; lsm < 2; lsm++) {
                for (int64_t i = 0; i < n; i++) {
                    x[i] = frnd() * ((mode & 3) == 1 ? 1e4f : 8.0f);
                    if ((mode & 3) == 2 && i % 3 == 1) x[i] = -3.4e38f; /* attention masks */
                    if ((mode & 3) == 3 && i % 4 == 0 && i) x[i] = -INFINITY;
                }
                sk_softmax_row_ref(x, y1, n, lsm);
                if (mode < 4) sk_softmax_row(x, y2, n, lsm); /* widest vectors the CPU has */
                else sk_softmax_row_generic(x, y2, n, lsm);  /* the 128-bit instance */
                for (int64_t i = 0; i < n; i++) {
                    double tol = lsm ? 1e-5 * (1 + fabs(y1[i])) : 2e-6 + 1e-5 * fabs(y1[i]);
                    if (isinf(y1[i]) || y1[i] < -1e30f) {
                        assert_true(y2[i] < -1e30f); /* log of a zero probability */
                        continue;
                    }
                    if (!(fabs(y1[i] - y2[i]) <= tol)) {
                        fprintf(stderr, "softmax n %lld mode %d log %d: [%lld] %.9g vs ref %.9g\n", (long long)n, mode,
                                lsm, (long long)i, y2[i], y1[i]);
                        fail();
                    }
                }
            }
    /* in place */
    for (int i = 0; i < 10; i++) x[i] = (float)i;
    sk_softmax_row_ref(x, y1, 10, 0);
    sk_softmax_row(x, x, 10, 0);
    for (int i = 0; i < 10; i++) assert_float_equal(x[i], y1[i], 1e-6);
}

static void test_layernorm_rows(void **state)
{
    (void)state;
    float x[80], sc[80], bi[80], y1[80], y2[80];
    for (int64_t n = 1; n <= 70; n++)
        for (int v = 0; v < 4; v++) {
            for (int64_t i = 0; i < n; i++) {
                x[i] = 3 + 2 * frnd(); /* offset mean: catches one-pass variance */
                sc[i] = frnd();
                bi[i] = frnd();
            }
            int rms = v & 1, params = v >> 1;
            float m1 = -7, m2 = -7, r1, r2;
            sk_layernorm_row_ref(x, y1, n, params ? sc : NULL, params ? bi : NULL, 1e-5f, rms, &m1, &r1);
            sk_layernorm_row(x, y2, n, params ? sc : NULL, params ? bi : NULL, 1e-5f, rms, &m2, &r2);
            for (int64_t i = 0; i < n; i++) assert_float_equal(y1[i], y2[i], 2e-5 * (1 + fabs(y1[i])));
            assert_float_equal(m1, m2, 1e-5);
            assert_float_equal(r1, r2, 1e-4 * r1);
            if (rms) assert_float_equal(m1, -7, 0);
        }
}

/* ---- Reduce* -------------------------------------------------------------------- */

typedef enum { K_SUM, K_MEAN, K_MAX, K_MIN, K_PROD, K_L1, K_L2, K_SUMSQ, K_LOGSUM, K_LOGSUMEXP, K_COUNT } kind;
static const char *const kind_op[K_COUNT] = { "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                              "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
                                              "ReduceLogSumExp" };

static double brute_reduce(kind k, const sk_tensor *x, unsigned mask, const int64_t *oidx)
{
    double acc = k == K_MAX ? -INFINITY : k == K_MIN ? INFINITY : k == K_PROD ? 1 : 0, m = -INFINITY;
    int64_t cnt = 0;
    for (int pass = k == K_LOGSUMEXP ? 0 : 1; pass < 2; pass++)
        for (int64_t i = 0; i < x->numel; i++) {
            int64_t rem = i, ok = 1;
            for (int d = x->rank - 1; d >= 0; d--) {
                int64_t c = rem % x->dims[d];
                rem /= x->dims[d];
                if (!(mask >> d & 1) && c != oidx[d]) ok = 0;
            }
            if (!ok) continue;
            double v = ((const float *)x->data)[i];
            if (pass == 0) {
                m = fmax(m, v);
                continue;
            }
            cnt++;
            switch (k) {
            case K_MAX: acc = fmax(acc, v); break;
            case K_MIN: acc = fmin(acc, v); break;
            case K_PROD: acc *= v; break;
            case K_L1: acc += fabs(v); break;
            case K_L2: case K_SUMSQ: acc += v * v; break;
            case K_LOGSUMEXP: acc += exp(v - m); break;
            default: acc += v; break;
            }
        }
    switch (k) {
    case K_MEAN: return acc / (double)cnt;
    case K_L2: return sqrt(acc);
    case K_LOGSUM: return log(acc);
    case K_LOGSUMEXP: return m + log(acc);
    default: return acc;
    }
}

static void test_reduce_all_axes(void **state)
{
    (void)state;
    int64_t dims[4] = { 3, 4, 1, 5 };
    sk_tensor x = { 0 }, y = { 0 }, axes = { 0 };
    rand_f32(&x, 4, dims, 1.0f);
    for (int64_t i = 0; i < x.numel; i++) ((float *)x.data)[i] += 1.5f; /* positive: LogSum is defined */
    sk_error err = { 0 };
    for (int k = 0; k < K_COUNT; k++)
        for (unsigned mask = 1; mask < 16; mask++)
            for (int keep = 0; keep < 2; keep++)
                for (int opset = 13; opset <= 18; opset += 5) {
                    int axes_input = opset >= 18 || k == K_SUM;
                    int64_t av[4], na = 0;
                    for (int d = 0; d < 4; d++)
                        if (mask >> d & 1) av[na++] = (d & 1) ? d - 4 : d; /* negative axes too */
                    Onnx__NodeProto *n = mk_node(kind_op[k], "", axes_input ? 2 : 1, 1);
                    sk_node_add_attr_int(n, "keepdims", keep);
                    if (!axes_input) sk_node_add_attr_ints(n, "axes", (size_t)na, av);
                    i64_tensor(&axes, na, av);
                    const sk_tensor *in[2] = { &x, &axes };
                    sk_status st = run_node(n, opset, axes_input ? 2 : 1, in, 1, &y, &err);
                    if (st) fprintf(stderr, "%s: %s\n", kind_op[k], err.msg);
                    assert_int_equal(st, SK_OK);
                    int ro = 0;
                    for (int d = 0; d < 4; d++)
                        if (!(mask >> d & 1)) assert_int_equal(y.dims[ro++], dims[d]);
                        else if (keep) assert_int_equal(y.dims[ro++], 1);
                    assert_int_equal(y.rank, ro);
                    for (int64_t o = 0; o < y.numel; o++) {
                        int64_t oidx[4], rem = o;
                        for (int d = 3; d >= 0; d--) {
                            int64_t od = (mask >> d & 1) ? 1 : dims[d];
                            oidx[d] = rem % od;
                            rem /= od;
                        }
                        double want = brute_reduce((kind)k, &x, mask, oidx), got = ((float *)y.data)[o];
                        if (!(fabs(got - want) <= 1e-5 * (1 + fabs(want)))) {
                            fprintf(stderr, "%s mask %u keep %d opset %d: [%lld] %g, expected %g\n", kind_op[k], mask,
                                    keep, opset, (long long)o, got, want);
                            fail();
                        }
                    }
                    sk_node_proto_free(NULL, n);
                }
    sk_tensor_free(&x);
    sk_tensor_free(&y);
    sk_tensor_free(&axes);
}

static void test_reduce_special(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor x = { 0 }, y = { 0 }, axes = { 0 };
    rand_f32(&x, 2, (int64_t[]){ 3, 4 }, 1.0f);
    /* empty axes: all, or nothing with noop_with_empty_axes */
    for (int noop = 0; noop < 2; noop++) {
        Onnx__NodeProto *n = mk_node("ReduceMean", "", 2, 1);
        sk_node_add_attr_int(n, "noop_with_empty_axes", noop);
        i64_tensor(&axes, 0, NULL);
        const sk_tensor *in[2] = { &x, &axes };
        assert_int_equal(run_node(n, 18, 2, in, 1, &y, &err), SK_OK);
        if (noop) {
            assert_int_equal(y.numel, 12);
            assert_memory_equal(y.data, x.data, 12 * sizeof(float));
        } else {
            double s = 0;
            for (int i = 0; i < 12; i++) s += ((float *)x.data)[i];
            assert_int_equal(y.rank, 2);
            assert_float_equal(((float *)y.data)[0], s / 12, 1e-6);
        }
        sk_node_proto_free(NULL, n);
    }
    /* axis out of range */
    Onnx__NodeProto *n = mk_node("ReduceMax", "", 1, 1);
    sk_node_add_attr_ints(n, "axes", 1, (int64_t[]){ 2 });
    const sk_tensor *in1[1] = { &x };
    assert_int_equal(run_node(n, 13, 1, in1, 1, &y, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "axis"));
    sk_node_proto_free(NULL, n);
    /* int64 sums stay exact past 2^53 */
    sk_tensor xi = { 0 };
    int64_t big[3] = { (int64_t)1 << 60, 3, -1 };
    i64_tensor(&xi, 3, big);
    n = mk_node("ReduceSum", "", 1, 1);
    sk_node_add_attr_int(n, "keepdims", 0);
    const sk_tensor *ini[1] = { &xi };
    assert_int_equal(run_node(n, 13, 1, ini, 1, &y, &err), SK_OK);
    assert_int_equal(y.dtype, SK_INT64);
    assert_int_equal(y.rank, 0);
    assert_int_equal(((int64_t *)y.data)[0], ((int64_t)1 << 60) + 2);
    sk_node_proto_free(NULL, n);
    /* a zero-size reduced dim gives the identity */
    sk_tensor_free(&x);
    rand_f32(&x, 2, (int64_t[]){ 2, 0 }, 1.0f);
    n = mk_node("ReduceSum", "", 2, 1);
    i64_tensor(&axes, 1, (int64_t[]){ 1 });
    const sk_tensor *in2[2] = { &x, &axes };
    assert_int_equal(run_node(n, 13, 2, in2, 1, &y, &err), SK_OK);
    assert_int_equal(y.numel, 2);
    assert_float_equal(((float *)y.data)[1], 0, 0);
    sk_node_proto_free(NULL, n);
    sk_tensor_free(&x);
    sk_tensor_free(&xi);
    sk_tensor_free(&y);
    sk_tensor_free(&axes);
}

/* ---- ArgMax, CumSum, TopK ---------------------------------------------------------- */

static void test_arg_cumsum_topk(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor x = { 0 }, y = { 0 }, ax = { 0 }, outs[2] = { { 0 } };
    float v[8] = { 1, 5, 5, 2, /* row 2 */ 7, 0, 7, 7 };
    assert_int_equal(sk_tensor_alloc(&x, SK_FLOAT, 2, (int64_t[]){ 2, 4 }, &err), SK_OK);
    memcpy(x.data, v, sizeof v);
    for (int last = 0; last < 2; last++) {
        Onnx__NodeProto *n = mk_node("ArgMax", "", 1, 1);
        sk_node_add_attr_int(n, "axis", -1);
        sk_node_add_attr_int(n, "keepdims", 0);
        sk_node_add_attr_int(n, "select_last_index", last);
        const sk_tensor *in[1] = { &x };
        assert_int_equal(run_node(n, 13, 1, in, 1, &y, &err), SK_OK);
        assert_int_equal(y.rank, 1);
        assert_int_equal(((int64_t *)y.data)[0], last ? 2 : 1);
        assert_int_equal(((int64_t *)y.data)[1], last ? 3 : 0);
        sk_node_proto_free(NULL, n);
    }
    Onnx__NodeProto *n = mk_node("ArgMin", "", 1, 1);
    sk_node_add_attr_int(n, "axis", 0);
    const sk_tensor *in1[1] = { &x };
    assert_int_equal(run_node(n, 13, 1, in1, 1, &y, &err), SK_OK);
    assert_int_equal(y.rank, 2);
    assert_int_equal(((int64_t *)y.data)[1], 1);
    sk_node_proto_free(NULL, n);

    /* CumSum along axis 0 of int32, every mode */
    sk_tensor xi = { 0 };
    assert_int_equal(sk_tensor_alloc(&xi, SK_INT32, 2, (int64_t[]){ 3, 2 }, &err), SK_OK);
    int32_t iv[6] = { 1, 2, 3, 4, 5, 6 };
    memcpy(xi.data, iv, sizeof iv);
    static const int32_t want[4][6] = {
        { 1, 2, 4, 6, 9, 12 },  /* plain */
        { 0, 0, 1, 2, 4, 6 },   /* exclusive */
        { 9, 12, 8, 10, 5, 6 }, /* reverse */
        { 8, 10, 5, 6, 0, 0 },  /* reverse exclusive */
    };
    i64_tensor(&ax, 1, (int64_t[]){ 0 });
    for (int m = 0; m < 4; m++) {
        n = mk_node("CumSum", "", 2, 1);
        sk_node_add_attr_int(n, "exclusive", m & 1);
        sk_node_add_attr_int(n, "reverse", m >> 1);
        const sk_tensor *in[2] = { &xi, &ax };
        assert_int_equal(run_node(n, 14, 2, in, 1, &y, &err), SK_OK);
        assert_int_equal(y.dtype, SK_INT32);
        assert_memory_equal(y.data, want[m], sizeof want[m]);
        sk_node_proto_free(NULL, n);
    }

    /* TopK: ties keep the lower index first, for largest and smallest */
    sk_tensor k = { 0 };
    i64_tensor(&k, 1, (int64_t[]){ 3 });
    for (int largest = 0; largest < 2; largest++) {
        n = mk_node("TopK", "", 2, 2);
        sk_node_add_attr_int(n, "largest", largest);
        const sk_tensor *in[2] = { &x, &k };
        assert_int_equal(run_node(n, 11, 2, in, 2, outs, &err), SK_OK);
        const float *tv = outs[0].data;
        const int64_t *ti = outs[1].data;
        assert_int_equal(outs[0].dims[1], 3);
        if (largest) {
            assert_float_equal(tv[0], 5, 0);
            assert_int_equal(ti[0], 1);
            assert_int_equal(ti[1], 2);
            assert_int_equal(ti[2], 3);
            assert_int_equal(ti[3], 0);
            assert_int_equal(ti[4], 2);
            assert_int_equal(ti[5], 3);
        } else {
            assert_float_equal(tv[0], 1, 0);
            assert_int_equal(ti[0], 0);
            assert_int_equal(ti[1], 3);
            assert_int_equal(ti[2], 1);
            assert_int_equal(ti[3], 1);
            assert_int_equal(ti[4], 0);
            assert_int_equal(ti[5], 2);
        }
        sk_node_proto_free(NULL, n);
    }
    i64_tensor(&k, 1, (int64_t[]){ 5 }); /* K larger than the axis */
    n = mk_node("TopK", "", 2, 2);
    const sk_tensor *in2[2] = { &x, &k };
    assert_int_equal(run_node(n, 11, 2, in2, 2, outs, &err), SK_EINVAL);
    sk_node_proto_free(NULL, n);
    sk_tensor_free(&x);
    sk_tensor_free(&xi);
    sk_tensor_free(&y);
    sk_tensor_free(&ax);
    sk_tensor_free(&k);
    sk_tensor_free(&outs[0]);
    sk_tensor_free(&outs[1]);
}

/* ---- Softmax, LayerNormalization --------------------------------------------------- */

static void test_softmax_opsets(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor x = { 0 }, y = { 0 };
    rand_f32(&x, 3, (int64_t[]){ 2, 3, 4 }, 3.0f);
    const float *xd = x.data;
    for (int opset = 11; opset <= 13; opset += 2)
        for (int lsm = 0; lsm < 2; lsm++) {
            Onnx__NodeProto *n = mk_node(lsm ? "LogSoftmax" : "Softmax", "", 1, 1);
            sk_node_add_attr_int(n, "axis", 1);
            const sk_tensor *in[1] = { &x };
            assert_int_equal(run_node(n, opset, 1, in, 1, &y, &err), SK_OK);
            const float *yd = y.data;
            for (int b = 0; b < 2; b++)
                for (int i = 0; i < 12; i++) {
                    /* opset 11: softmax over the 12 values of each batch; 13: over axis 1 only */
                    int j = i % 4;
                    double m = -INFINITY, s = 0;
                    for (int t = 0; t < 12; t++)
                        if (opset == 11 || t % 4 == j) m = fmax(m, xd[b * 12 + t]);
                    for (int t = 0; t < 12; t++)
                        if (opset == 11 || t % 4 == j) s += exp(xd[b * 12 + t] - m);
                    double want = lsm ? xd[b * 12 + i] - m - log(s) : exp(xd[b * 12 + i] - m) / s;
                    assert_float_equal(yd[b * 12 + i], want, 1e-5);
                }
            sk_node_proto_free(NULL, n);
        }
    sk_tensor_free(&x);
    sk_tensor_free(&y);
}

static void test_layernorm_ops(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor x = { 0 }, sc = { 0 }, b = { 0 }, outs[4] = { { 0 } };
    rand_f32(&x, 3, (int64_t[]){ 2, 3, 4 }, 2.0f);
    rand_f32(&sc, 1, (int64_t[]){ 4 }, 1.0f); /* broadcasts over the normalised [3, 4] */
    rand_f32(&b, 2, (int64_t[]){ 3, 1 }, 1.0f);
    Onnx__NodeProto *n = mk_node("LayerNormalization", "", 3, 3);
    sk_node_add_attr_int(n, "axis", 1);
    sk_node_add_attr_float(n, "epsilon", 1e-3f);
    const sk_tensor *in[3] = { &x, &sc, &b };
    assert_int_equal(run_node(n, 17, 3, in, 3, outs, &err), SK_OK);
    const float *xd = x.data, *sd = sc.data, *bd = b.data;
    for (int bb = 0; bb < 2; bb++) {
        double m = 0, v = 0;
        for (int i = 0; i < 12; i++) m += xd[bb * 12 + i];
        m /= 12;
        for (int i = 0; i < 12; i++) v += (xd[bb * 12 + i] - m) * (xd[bb * 12 + i] - m);
        v /= 12;
        double r = 1 / sqrt(v + 1e-3);
        for (int i = 0; i < 12; i++)
            assert_float_equal(((float *)outs[0].data)[bb * 12 + i], (xd[bb * 12 + i] - m) * r * sd[i % 4] + bd[i / 4], 1e-5);
        assert_int_equal(outs[1].rank, 3);
        assert_int_equal(outs[1].dims[0], 2);
        assert_int_equal(outs[1].dims[1], 1);
        assert_float_equal(((float *)outs[1].data)[bb], m, 1e-5);
        assert_float_equal(((float *)outs[2].data)[bb], r, 1e-4 * r);
    }
    sk_node_proto_free(NULL, n);

    /* SkipLayerNormalization: output, mean, inv_std_var, input+skip+bias */
    sk_tensor skip = { 0 }, gamma = { 0 }, beta = { 0 }, bias = { 0 };
    rand_f32(&skip, 2, (int64_t[]){ 3, 4 }, 1.0f); /* broadcast over the batch */
    rand_f32(&gamma, 1, (int64_t[]){ 4 }, 1.0f);
    rand_f32(&beta, 1, (int64_t[]){ 4 }, 1.0f);
    rand_f32(&bias, 1, (int64_t[]){ 4 }, 1.0f);
    for (int simplified = 0; simplified < 2; simplified++) {
        n = mk_node(simplified ? "SkipSimplifiedLayerNormalization" : "SkipLayerNormalization", "com.microsoft",
                    simplified ? 4 : 5, 4);
        sk_node_add_attr_float(n, "epsilon", 1e-5f);
        const sk_tensor *sin[5] = { &x, &skip, &gamma, simplified ? &bias : &beta, &bias };
        sk_status st = run_node(n, 1, simplified ? 4 : 5, sin, 4, outs, &err);
        if (st) fprintf(stderr, "%s\n", err.msg);
        assert_int_equal(st, SK_OK);
        for (int row = 0; row < 6; row++) {
            double s[4], m = 0, v = 0;
            for (int i = 0; i < 4; i++) {
                s[i] = (double)xd[row * 4 + i] + ((float *)skip.data)[(row % 3) * 4 + i] + ((float *)bias.data)[i];
                m += s[i];
                assert_float_equal(((float *)outs[3].data)[row * 4 + i], s[i], 1e-5);
            }
            m = simplified ? 0 : m / 4;
            for (int i = 0; i < 4; i++) v += (s[i] - m) * (s[i] - m);
            double r = 1 / sqrt(v / 4 + 1e-5);
            for (int i = 0; i < 4; i++) {
                double want = (s[i] - m) * r * ((float *)gamma.data)[i] + (simplified ? 0 : ((float *)beta.data)[i]);
                assert_float_equal(((float *)outs[0].data)[row * 4 + i], want, 1e-4);
            }
            assert_float_equal(((float *)outs[2].data)[row], r, 1e-4 * r);
        }
        sk_node_proto_free(NULL, n);
    }

    /* SimplifiedLayerNormalization (RMSNorm) */
    n = mk_node("SimplifiedLayerNormalization", "", 2, 1);
    const sk_tensor *rin[2] = { &x, &gamma };
    assert_int_equal(run_node(n, 1, 2, rin, 1, outs, &err), SK_OK);
    for (int row = 0; row < 6; row++) {
        double q = 0;
        for (int i = 0; i < 4; i++) q += (double)xd[row * 4 + i] * xd[row * 4 + i];
        double r = 1 / sqrt(q / 4 + 1e-5);
        for (int i = 0; i < 4; i++)
            assert_float_equal(((float *)outs[0].data)[row * 4 + i], xd[row * 4 + i] * r * ((float *)gamma.data)[i], 1e-4);
    }
    sk_node_proto_free(NULL, n);

    /* a scale that does not broadcast is an error */
    sk_tensor bad = { 0 };
    rand_f32(&bad, 1, (int64_t[]){ 5 }, 1.0f);
    n = mk_node("LayerNormalization", "", 2, 1);
    const sk_tensor *bin[2] = { &x, &bad };
    assert_int_equal(run_node(n, 17, 2, bin, 1, outs, &err), SK_EINVAL);
    sk_node_proto_free(NULL, n);

    sk_tensor_free(&x);
    sk_tensor_free(&sc);
    sk_tensor_free(&b);
    sk_tensor_free(&skip);
    sk_tensor_free(&gamma);
    sk_tensor_free(&beta);
    sk_tensor_free(&bias);
    sk_tensor_free(&bad);
    for (int i = 0; i < 4; i++) sk_tensor_free(&outs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_rows),
        cmocka_unit_test(test_layernorm_rows),
        cmocka_unit_test(test_reduce_all_axes),
        cmocka_unit_test(test_reduce_special),
        cmocka_unit_test(test_arg_cumsum_topk),
        cmocka_unit_test(test_softmax_opsets),
        cmocka_unit_test(test_layernorm_ops),
    };
    int failed = cmocka_run_group_tests_name("ops_reduce", tests, NULL, NULL);
    sk_tensor_cache_trim(); /* hand the cached buffers back, for leak checkers */
    return failed;
}
