/* com.microsoft Attention and MultiHeadAttention (lib/sk_ops_attention.c),
 * called through sk_op_find with a hand-filled sk_op_ctx:
 *  - Attention against a plain double-precision loop written here (2-D key
 *    mask, [B] end positions, unidirectional, qkv_hidden_sizes with a narrower
 *    V, attention_bias, float16);
 *  - MultiHeadAttention fed the projections Attention computes inside gives
 *    Attention's result, separate and packed QKV alike;
 *  - every shape and argument error gives its status and a message naming
 *    what is wrong; unimplemented features give SK_EUNSUPPORTED naming them.
 * tests/oracle/attention-ort.sh checks both ops against ONNX Runtime. */
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

static uint32_t rs = 12345;
static float rnd(void)
{
    rs = rs * 1664525u + 1013904223u;
    return (float)((rs >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static Onnx__NodeProto *mk_node(const char *op, size_t n_in, size_t n_out, int64_t heads)
{
    static const char *const ins[] = { "i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8", "i9" };
    static const char *const outs[] = { "o0", "o1", "o2", "o3" };
    Onnx__NodeProto *n = sk_node_proto_new(op, "com.microsoft", "attn", n_in, ins, n_out, outs);
    assert_non_null(n);
    if (heads) assert_int_equal(sk_node_add_attr_int(n, "num_heads", heads), SK_OK);
    return n;
}

static void t_rand(sk_tensor *t, int rank, const int64_t *dims)
{
    assert_int_equal(sk_tensor_alloc(t, SK_FLOAT, rank, dims, NULL), SK_OK);
    for (int64_t i = 0; i < t->numel; i++) ((float *)t->data)[i] = rnd();
}

static void t_i32(sk_tensor *t, int rank, const int64_t *dims, const int32_t *v)
{
    assert_int_equal(sk_tensor_alloc(t, SK_INT32, rank, dims, NULL), SK_OK);
    memcpy(t->data, v, t->nbytes);
}

static sk_status run(const Onnx__NodeProto *node, const sk_tensor *const *in, size_t n_in, sk_tensor *const *out,
                     size_t n_out, sk_error *err)
{
    const sk_op_def *def = sk_op_find(node->domain, node->op_type, 1);
    assert_non_null(def);
    err->code = SK_OK;
    err->msg[0] = 0;
    sk_op_ctx ctx = { .node = node, .opset = 1, .n_in = n_in, .in = in, .n_out = n_out, .out = out, .threads = 1, .err = err };
    return def->run(&ctx);
}

/* Reference Attention: x [B,S,E], w [E,Wt], bias [Wt], key mask [B,S] (0/1,
 * or NULL), attention_bias [1,N,S,S] or NULL. */
static void ref_attention(const float *x, const float *w, const float *bias, const int32_t *mask, const float *ab,
                          int64_t B, int64_t S, int64_t E, int64_t N, int64_t Dq, int64_t Dv, int causal, float *out)
{
    int64_t Wt = 2 * Dq + Dv, Dh = Dq / N, Dvh = Dv / N;
    double *p = malloc((size_t)(B * S * Wt) * sizeof *p), *sc = malloc((size_t)S * sizeof *sc);
    assert_non_null(p);
    assert_non_null(sc);
    for (int64_t r = 0; r < B * S; r++)
        for (int64_t j = 0; j < Wt; j++) {
            double a = bias ? bias[j] : 0;
            for (int64_t e = 0; e < E; e++) a += (double)x[r * E + e] * w[e * Wt + j];
            p[r * Wt + j] = a;
        }
    for (int64_t b = 0; b < B; b++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < S; j++) {
                    double d = 0;
                    for (int64_t h = 0; h < Dh; h++)
                        d += p[(b * S + i) * Wt + n * Dh + h] * p[(b * S + j) * Wt + Dq + n * Dh + h];
                    d /= sqrt((double)Dh);
                    if (mask && !mask[b * S + j]) d += -10000.0;
                    if (causal && j > i) d += -3.4e38;
                    if (ab) d += ab[(n * S + i) * S + j];
                    sc[j] = d;
                    if (d > mx) mx = d;
                }
                for (int64_t j = 0; j < S; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int64_t h = 0; h < Dvh; h++) {
                    double a = 0;
                    for (int64_t j = 0; j < S; j++) a += sc[j] / sum * p[(b * S + j) * Wt + 2 * Dq + n * Dvh + h];
                    out[(b * S + i) * Dv + n * Dvh + h] = (float)a;
                }
            }
    free(p);
    free(sc);
}

static void expect_close(const sk_tensor *got, const float *want, int64_t n, double tol)
{
    assert_int_equal(got->numel, n);
    for (int64_t i = 0; i < n; i++) {
        double g = got->dtype == SK_FLOAT ? ((const float *)got->data)[i] : sk_tensor_get_f64(got, i);
        if (fabs(g - want[i]) > tol * (1 + fabs(want[i]))) {
            fprintf(stderr, "element %lld: got %g, want %g\n", (long long)i, g, (double)want[i]);
            fail();
        }
    }
}

typedef struct acase {
    int64_t B, S, E, N, Dq, Dv;
    int mask;       /* 0 none, 1 [B,S] key mask, 2 [B] end positions */
    int causal, abias, qkv_sizes, f16;
} acase;

static void check_attention(const acase *c)
{
    int64_t Wt = 2 * c->Dq + c->Dv;
    sk_tensor x = { 0 }, w = { 0 }, b = { 0 }, m = { 0 }, ab = { 0 }, y = { 0 }, xh = { 0 }, wh = { 0 }, bh = { 0 };
    int64_t xd[3] = { c->B, c->S, c->E }, wd[2] = { c->E, Wt }, abd[4] = { 1, c->N, c->S, c->S };
    t_rand(&x, 3, xd);
    t_rand(&w, 2, wd);
    t_rand(&b, 1, &Wt);
    int32_t *km = calloc((size_t)(c->B * c->S), sizeof *km), *ends = calloc((size_t)c->B, sizeof *ends);
    assert_non_null(km);
    assert_non_null(ends);
    for (int64_t bb = 0; bb < c->B; bb++) {
        ends[bb] = (int32_t)(c->S - bb % c->S);
        for (int64_t j = 0; j < c->S; j++) km[bb * c->S + j] = j < ends[bb];
    }
    if (c->mask == 1) {
        int64_t md[2] = { c->B, c->S };
        t_i32(&m, 2, md, km);
    } else if (c->mask == 2) {
        t_i32(&m, 1, &c->B, ends);
    }
    if (c->abias) t_rand(&ab, 4, abd);
    float *want = malloc((size_t)(c->B * c->S * c->Dv) * sizeof *want);
    assert_non_null(want);
    if (c->f16) { /* round the inputs to half first so both sides see the same values */
        sk_tensor *src[3] = { &x, &w, &b }, *dst[3] = { &xh, &wh, &bh };
        for (int i = 0; i < 3; i++) {
            assert_int_equal(sk_tensor_alloc(dst[i], SK_FLOAT16, src[i]->rank, src[i]->dims, NULL), SK_OK);
            for (int64_t k = 0; k < src[i]->numel; k++) {
                uint16_t h = sk_float_to_half(((float *)src[i]->data)[k]);
                ((uint16_t *)dst[i]->data)[k] = h;
                ((float *)src[i]->data)[k] = sk_half_to_float(h);
            }
        }
    }
    ref_attention(x.data, w.data, b.data, c->mask ? km : NULL, c->abias ? ab.data : NULL, c->B, c->S, c->E, c->N, c->Dq,
                  c->Dv, c->causal, want);
    Onnx__NodeProto *node = mk_node("Attention", c->abias ? 6 : 4, 1, c->N);
    if (c->causal) assert_int_equal(sk_node_add_attr_int(node, "unidirectional", 1), SK_OK);
    if (c->qkv_sizes) {
        int64_t sz[3] = { c->Dq, c->Dq, c->Dv };
        assert_int_equal(sk_node_add_attr_ints(node, "qkv_hidden_sizes", 3, sz), SK_OK);
    }
    const sk_tensor *in[6] = { c->f16 ? &xh : &x, c->f16 ? &wh : &w, c->f16 ? &bh : &b, c->mask ? &m : NULL, NULL,
                               c->abias ? &ab : NULL };
    sk_tensor *out[1] = { &y };
    sk_error err;
    sk_status s = run(node, in, c->abias ? 6 : 4, out, 1, &err);
    if (s) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(s, SK_OK);
    assert_int_equal(y.dtype, c->f16 ? SK_FLOAT16 : SK_FLOAT);
    assert_int_equal(y.rank, 3);
    assert_int_equal(y.dims[2], c->Dv);
    expect_close(&y, want, c->B * c->S * c->Dv, c->f16 ? 2e-3 : 2e-5);
    sk_tensor *all[] = { &x, &w, &b, &m, &ab, &y, &xh, &wh, &bh };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sk_tensor_free(all[i]);
    free(km);
    free(ends);
    free(want);
    sk_node_proto_free(NULL, node);
}

static void test_attention_reference(void **state)
{
    (void)state;
    static const acase cases[] = {
        { 2, 5, 12, 3, 12, 12, 0, 0, 0, 0, 0 },
        { 3, 7, 16, 4, 16, 16, 1, 0, 0, 0, 0 },
        { 3, 7, 16, 4, 16, 16, 2, 0, 0, 0, 0 },
        { 2, 6, 16, 4, 16, 16, 1, 1, 0, 0, 0 },
        { 2, 6, 10, 2, 12, 6, 1, 0, 0, 1, 0 },
        { 2, 5, 15, 5, 15, 15, 0, 0, 1, 0, 0 },
        { 1, 1, 9, 3, 9, 9, 0, 0, 0, 0, 0 },
        { 2, 4, 8, 2, 8, 8, 1, 0, 0, 0, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_attention(&cases[i]);
}

/* MultiHeadAttention on the projections equals Attention, in every layout. */
static void test_mha_matches_attention(void **state)
{
    (void)state;
    int64_t B = 2, S = 5, E = 12, N = 3, H = 4, D = N * H, Wt = 3 * D;
    sk_tensor x = { 0 }, w = { 0 }, bias = { 0 }, m = { 0 }, y = { 0 };
    int64_t xd[3] = { B, S, E }, wd[2] = { E, Wt }, md[2] = { B, S };
    t_rand(&x, 3, xd);
    t_rand(&w, 2, wd);
    t_rand(&bias, 1, &Wt);
    int32_t km[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 };
    t_i32(&m, 2, md, km);
    sk_error err;
    Onnx__NodeProto *an = mk_node("Attention", 4, 1, N);
    const sk_tensor *ain[4] = { &x, &w, &bias, &m };
    sk_tensor *aout[1] = { &y };
    assert_int_equal(run(an, ain, 4, aout, 1, &err), SK_OK);
    /* projections without bias: P = x w, [B, S, 3D] */
    sk_tensor q = { 0 }, k = { 0 }, v = { 0 }, pk = { 0 }, z = { 0 };
    int64_t pd[3] = { B, S, D }, packd[5] = { B, S, N, 3, H };
    assert_int_equal(sk_tensor_alloc(&q, SK_FLOAT, 3, pd, NULL), SK_OK);
    assert_int_equal(sk_tensor_alloc(&k, SK_FLOAT, 3, pd, NULL), SK_OK);
    assert_int_equal(sk_tensor_alloc(&v, SK_FLOAT, 3, pd, NULL), SK_OK);
    assert_int_equal(sk_tensor_alloc(&pk, SK_FLOAT, 5, packd, NULL), SK_OK);
    float *qp[3] = { q.data, k.data, v.data };
    for (int64_t r = 0; r < B * S; r++)
        for (int64_t j = 0; j < Wt; j++) {
            double a = 0;
            for (int64_t e = 0; e < E; e++) a += (double)((float *)x.data)[r * E + e] * ((float *)w.data)[e * Wt + j];
            int64_t part = j / D, col = j % D;
            qp[part][r * D + col] = (float)a;
            ((float *)pk.data)[((r * N + col / H) * 3 + part) * H + col % H] = (float)a + ((float *)bias.data)[j];
        }
    Onnx__NodeProto *mn = mk_node("MultiHeadAttention", 5, 1, N);
    const sk_tensor *min[5] = { &q, &k, &v, &bias, &m };
    sk_tensor *mout[1] = { &z };
    assert_int_equal(run(mn, min, 5, mout, 1, &err), SK_OK);
    expect_close(&z, y.data, y.numel, 1e-5);
    /* packed QKV [B, S, N, 3, H] with the bias already in */
    const sk_tensor *pin[5] = { &pk, NULL, NULL, NULL, &m };
    assert_int_equal(run(mn, pin, 5, mout, 1, &err), SK_OK);
    expect_close(&z, y.data, y.numel, 1e-5);
    sk_tensor *all[] = { &x, &w, &bias, &m, &y, &q, &k, &v, &pk, &z };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sk_tensor_free(all[i]);
    sk_node_proto_free(NULL, an);
    sk_node_proto_free(NULL, mn);
}

/* ---- errors ---------------------------------------------------------------------- */

typedef struct bad_case {
    const char *what;
    sk_status status;
    const char *msg;      /* substring of the message */
} bad_case;

static void expect_fail(const Onnx__NodeProto *node, const sk_tensor *const *in, size_t n_in, size_t n_out,
                        sk_status status, const char *msg)
{
    sk_tensor o[4] = { { 0 } };
    sk_tensor *out[4] = { &o[0], &o[1], &o[2], &o[3] };
    sk_error err;
    sk_status s = run(node, in, n_in, out, n_out, &err);
    if (s != status || !strstr(err.msg, msg)) {
        fprintf(stderr, "want status %d with '%s', got %d: %s\n", status, msg, s, err.msg);
        fail();
    }
    for (int i = 0; i < 4; i++) {
        assert_null(o[i].data);
        sk_tensor_free(&o[i]);
    }
}

static void test_attention_errors(void **state)
{
    (void)state;
    int64_t B = 2, S = 3, E = 8;
    sk_tensor x = { 0 }, x2 = { 0 }, w = { 0 }, w7 = { 0 }, wrow = { 0 }, b = { 0 }, b5 = { 0 }, m = { 0 }, mf = { 0 },
              m3 = { 0 }, mbad = { 0 }, ab = { 0 }, past = { 0 }, psl = { 0 }, wh = { 0 };
    int64_t xd[3] = { B, S, E }, x2d[2] = { B * S, E }, wd[2] = { E, 24 }, w7d[2] = { E, 7 }, wrd[2] = { E + 1, 24 },
            md[2] = { B, S }, m3n = 3 * B + 2, mbd[2] = { B, S + 1 }, abd[4] = { 1, 2, S, S + 1 }, pastd[5] = { 2, B, 3, 1, 4 },
            n24 = 24, n5 = 5, one = 1;
    t_rand(&x, 3, xd);
    t_rand(&x2, 2, x2d);
    t_rand(&w, 2, wd);
    t_rand(&w7, 2, w7d);
    t_rand(&wrow, 2, wrd);
    t_rand(&b, 1, &n24);
    t_rand(&b5, 1, &n5);
    t_rand(&mf, 2, md);
    int32_t ones[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    t_i32(&m, 2, md, ones);
    t_i32(&m3, 1, &m3n, ones);
    t_i32(&mbad, 2, mbd, ones);
    t_i32(&psl, 1, &one, ones);
    t_rand(&ab, 4, abd);
    t_rand(&past, 5, pastd);
    assert_int_equal(sk_tensor_alloc(&wh, SK_FLOAT16, 2, wd, NULL), SK_OK);

    Onnx__NodeProto *ok = mk_node("Attention", 7, 1, 2), *noh = mk_node("Attention", 3, 1, 0),
                    *h3 = mk_node("Attention", 3, 1, 3), *rot = mk_node("Attention", 3, 1, 2),
                    *share = mk_node("Attention", 3, 1, 2), *qkv2 = mk_node("Attention", 3, 1, 2),
                    *qkvbad = mk_node("Attention", 3, 1, 2);
    assert_int_equal(sk_node_add_attr_int(rot, "do_rotary", 1), SK_OK);
    assert_int_equal(sk_node_add_attr_int(share, "past_present_share_buffer", 1), SK_OK);
    int64_t two[2] = { 8, 8 }, uneq[3] = { 8, 4, 12 };
    assert_int_equal(sk_node_add_attr_ints(qkv2, "qkv_hidden_sizes", 2, two), SK_OK);
    assert_int_equal(sk_node_add_attr_ints(qkvbad, "qkv_hidden_sizes", 3, uneq), SK_OK);

    const sk_tensor *in_ok[3] = { &x, &w, &b };
    expect_fail(noh, in_ok, 3, 1, SK_EINVAL, "num_heads is missing");
    expect_fail(h3, in_ok, 3, 1, SK_EINVAL, "not multiples of num_heads");
    expect_fail(rot, in_ok, 3, 1, SK_EUNSUPPORTED, "do_rotary");
    expect_fail(share, in_ok, 3, 1, SK_EUNSUPPORTED, "past_present_share_buffer");
    expect_fail(qkv2, in_ok, 3, 1, SK_EINVAL, "qkv_hidden_sizes has 2 entries");
    expect_fail(qkvbad, in_ok, 3, 1, SK_EINVAL, "Q and K must be equal");
    const sk_tensor *in_noweights[2] = { &x, NULL };
    expect_fail(ok, in_noweights, 2, 1, SK_EINVAL, "weights input is missing");
    const sk_tensor *in_rank2[3] = { &x2, &w, &b };
    expect_fail(ok, in_rank2, 3, 1, SK_EINVAL, "input has shape [6,8]");
    const sk_tensor *in_rows[3] = { &x, &wrow, &b };
    expect_fail(ok, in_rows, 3, 1, SK_EINVAL, "weights have shape [9,24]");
    const sk_tensor *in_w7[3] = { &x, &w7, NULL };
    expect_fail(ok, in_w7, 3, 1, SK_EINVAL, "not three equal parts");
    const sk_tensor *in_b5[3] = { &x, &w, &b5 };
    expect_fail(ok, in_b5, 3, 1, SK_EINVAL, "bias has shape [5]");
    const sk_tensor *in_f16[3] = { &x, &wh, &b };
    expect_fail(ok, in_f16, 3, 1, SK_EINVAL, "same float type");
    const sk_tensor *in_mf[4] = { &x, &w, &b, &mf };
    expect_fail(ok, in_mf, 4, 1, SK_EINVAL, "mask_index is float32");
    const sk_tensor *in_m3[4] = { &x, &w, &b, &m3 };
    expect_fail(ok, in_m3, 4, 1, SK_EUNSUPPORTED, "3 x batch + 2");
    const sk_tensor *in_mbad[4] = { &x, &w, &b, &mbad };
    expect_fail(ok, in_mbad, 4, 1, SK_EINVAL, "mask_index has shape [2,4]");
    const sk_tensor *in_ab[6] = { &x, &w, &b, &m, NULL, &ab };
    expect_fail(ok, in_ab, 6, 1, SK_EINVAL, "attention_bias has shape [1,2,3,4]");
    const sk_tensor *in_past[5] = { &x, &w, &b, NULL, &past };
    expect_fail(ok, in_past, 5, 2, SK_EINVAL, "past has shape [2,2,3,1,4]");
    const sk_tensor *in_psl[7] = { &x, &w, &b, &m, NULL, NULL, &psl };
    expect_fail(ok, in_psl, 7, 1, SK_EUNSUPPORTED, "past_sequence_length");

    sk_tensor *all[] = { &x, &x2, &w, &w7, &wrow, &b, &b5, &m, &mf, &m3, &mbad, &ab, &past, &psl, &wh };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sk_tensor_free(all[i]);
    Onnx__NodeProto *nodes[] = { ok, noh, h3, rot, share, qkv2, qkvbad };
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) sk_node_proto_free(NULL, nodes[i]);
}

static void test_mha_errors(void **state)
{
    (void)state;
    int64_t B = 2, S = 3, L = 4, N = 2, H = 4, D = N * H;
    sk_tensor q = { 0 }, k = { 0 }, v = { 0 }, k2 = { 0 }, packed = { 0 }, kb = { 0 }, vb = { 0 }, bias = { 0 },
              pk = { 0 }, m4 = { 0 }, ci = { 0 }, vi = { 0 };
    int64_t qd[3] = { B, S, D }, kd[3] = { B, L, D }, k2d[2] = { B, D }, pd[5] = { B, S, N, 3, H }, kbd[4] = { B, N, L, H },
            nb = 3 * D, pkd[4] = { B, N, 1, H }, m4d[4] = { B, 1, L, L }, one = 1;
    t_rand(&q, 3, qd);
    t_rand(&k, 3, kd);
    t_rand(&v, 3, kd);
    t_rand(&k2, 2, k2d);
    t_rand(&packed, 5, pd);
    t_rand(&kb, 4, kbd);
    t_rand(&vb, 4, kbd);
    t_rand(&bias, 1, &nb);
    t_rand(&pk, 4, pkd);
    int32_t ones[64];
    for (int i = 0; i < 64; i++) ones[i] = 1;
    t_i32(&m4, 4, m4d, ones);
    t_i32(&ci, 1, &one, ones);
    assert_int_equal(sk_tensor_alloc(&vi, SK_INT32, 3, kd, NULL), SK_OK);
    Onnx__NodeProto *n = mk_node("MultiHeadAttention", 10, 4, N);
    const sk_tensor *no_key[1] = { &q };
    expect_fail(n, no_key, 1, 1, SK_EINVAL, "key input is missing");
    const sk_tensor *no_value[2] = { &q, &k };
    expect_fail(n, no_value, 2, 1, SK_EINVAL, "value input is missing");
    const sk_tensor *packed_key[2] = { &packed, &k };
    expect_fail(n, packed_key, 2, 1, SK_EINVAL, "comes with key or value");
    const sk_tensor *rank2[3] = { &q, &k2, &v };
    expect_fail(n, rank2, 3, 1, SK_EINVAL, "key has shape [2,8]");
    const sk_tensor *mixed[3] = { &q, &k, &vb };
    expect_fail(n, mixed, 3, 1, SK_EINVAL, "do not fit query");
    const sk_tensor *vint[3] = { &q, &k, &vi };
    expect_fail(n, vint, 3, 1, SK_EINVAL, "value is int32");
    const sk_tensor *bnsh_bias[4] = { &q, &kb, &vb, &bias };
    expect_fail(n, bnsh_bias, 4, 1, SK_EUNSUPPORTED, "bias with key and value split into heads");
    const sk_tensor *bad_bias[4] = { &q, &k, &v, &pk };
    expect_fail(n, bad_bias, 4, 1, SK_EINVAL, "bias has shape [2,2,1,4]");
    const sk_tensor *half_past[7] = { &q, &k, &v, NULL, NULL, NULL, &pk };
    expect_fail(n, half_past, 7, 1, SK_EINVAL, "must be given together");
    const sk_tensor *mask4[5] = { &q, &k, &v, NULL, &m4 };
    expect_fail(n, mask4, 5, 1, SK_EINVAL, "key_padding_mask has shape [2,1,4,4]");
    const sk_tensor *cache[10] = { &q, &k, &v, NULL, NULL, NULL, NULL, NULL, NULL, &ci };
    expect_fail(n, cache, 10, 1, SK_EUNSUPPORTED, "cache_indirection");
    const sk_tensor *plain[3] = { &q, &k, &v };
    expect_fail(n, plain, 3, 4, SK_EUNSUPPORTED, "qk output");
    sk_tensor *all[] = { &q, &k, &v, &k2, &packed, &kb, &vb, &bias, &pk, &m4, &ci, &vi };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sk_tensor_free(all[i]);
    sk_node_proto_free(NULL, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_reference),
        cmocka_unit_test(test_mha_matches_attention),
        cmocka_unit_test(test_attention_errors),
        cmocka_unit_test(test_mha_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
