/* lib/sk_ops_nn.c through its op table (sk_op_find + a hand-filled
 * sk_op_ctx): MatMul and Gemm broadcasting, Conv (im2col + GEMM, depthwise,
 * pointwise) and ConvTranspose (GEMM + col2im) against direct loops written
 * here, pooling edge rules, Resize, Einsum's GEMM path against its general
 * loop, and the errors bad shapes give. ONNX's node tests for these ops run
 * through skiff-run in tests/cli/conformance.sh. */
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

static uint64_t rng_state = 0x13198A2E03707344ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float frnd(void) { return (float)(rnd() % 20001) / 10000.0f - 1.0f; }

/* ---- running one node ------------------------------------------------------ */

static Onnx__NodeProto *mk_node(const char *op, const char *domain, size_t n_in, size_t n_out)
{
    static const char *const ins[] = { "i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7" };
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
    sk_tensor *outs[4];
    for (size_t i = 0; i < n_out; i++) outs[i] = &out[i];
    sk_op_ctx ctx = { .node = n, .opset = opset, .n_in = n_in, .in = in, .n_out = n_out, .out = outs, .threads = 1, .err = err };
    return def->run(&ctx);
}

static void rand_tensor(sk_tensor *t, int dtype, int rank, const int64_t *dims)
{
    sk_error err;
    assert_int_equal(sk_tensor_alloc(t, dtype, rank, dims, &err), SK_OK);
    for (int64_t i = 0; i < t->numel; i++) {
        float v = frnd();
        switch (dtype) {
        case SK_FLOAT: ((float *)t->data)[i] = v; break;
        case SK_DOUBLE: ((double *)t->data)[i] = v; break;
        case SK_FLOAT16: ((uint16_t *)t->data)[i] = sk_float_to_half(v); break;
        case SK_INT64: ((int64_t *)t->data)[i] = (int64_t)(rnd() % 21) - 10; break;
        default: fail();
        }
    }
}

static double getd(const sk_tensor *t, int64_t i)
{
    return sk_tensor_get_f64(t, i);
}

/* |got - want| <= atol + rtol |want| everywhere, shapes equal. */
static void expect_close(const sk_tensor *got, const double *want, int rank, const int64_t *dims, double rtol,
                         double atol, const char *what)
{
    assert_int_equal(got->rank, rank);
    for (int i = 0; i < rank; i++) assert_int_equal(got->dims[i], dims[i]);
    for (int64_t i = 0; i < got->numel; i++) {
        double g = getd(got, i), w = want[i];
        if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
            fprintf(stderr, "%s: element %lld is %.8g, expected %.8g\n", what, (long long)i, g, w);
            fail();
        }
    }
}

/* ---- MatMul, Gemm --------------------------------------------------------- */

/* Numpy matmul of a and b into want (rank-1 operands promoted and dropped). */
static void matmul_naive(const sk_tensor *a, const sk_tensor *b, double *want, int *ro, int64_t *od)
{
    int ra = a->rank, rb = b->rank;
    int64_t M = ra >= 2 ? a->dims[ra - 2] : 1, K = a->dims[ra - 1], N = rb >= 2 ? b->dims[rb - 1] : 1;
    int bra = ra > 2 ? ra - 2 : 0, brb = rb > 2 ? rb - 2 : 0, br = bra > brb ? bra : brb;
    int64_t bd[16];
    for (int i = 0; i < br; i++) {
        int ia = i - (br - bra), ib = i - (br - brb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        bd[i] = da > db ? da : db;
    }
    *ro = 0;
    for (int i = 0; i < br; i++) od[(*ro)++] = bd[i];
    if (ra >= 2) od[(*ro)++] = M;
    if (rb >= 2) od[(*ro)++] = N;
    int64_t nb = 1;
    for (int i = 0; i < br; i++) nb *= bd[i];
    for (int64_t bi = 0; bi < nb; bi++) {
        int64_t oa = 0, ob = 0, rem = bi, sa = M * K, sb = K * N;
        for (int i = br - 1; i >= 0; i--) {
            int64_t c = rem % bd[i];
            rem /= bd[i];
            int ia = i - (br - bra), ib = i - (br - brb);
            if (ia >= 0) {
                if (a->dims[ia] != 1) oa += c * sa;
                sa *= a->dims[ia];
            }
            if (ib >= 0) {
                if (b->dims[ib] != 1) ob += c * sb;
                sb *= b->dims[ib];
            }
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += getd(a, oa + i * K + k) * getd(b, ob + k * N + j);
                want[(bi * M + i) * N + j] = s;
            }
    }
}

static void check_matmul(int dtype, int ra, const int64_t *da, int rb, const int64_t *db, double rtol)
{
    sk_tensor a = { 0 }, b = { 0 }, y = { 0 };
    rand_tensor(&a, dtype, ra, da);
    rand_tensor(&b, dtype, rb, db);
    double *want = malloc(4096 * sizeof *want);
    assert_non_null(want);
    int ro;
    int64_t od[16];
    matmul_naive(&a, &b, want, &ro, od);
    Onnx__NodeProto *n = mk_node("MatMul", "", 2, 1);
    const sk_tensor *in[2] = { &a, &b };
    sk_error err = { 0 };
    assert_int_equal(run_node(n, 13, 2, in, 1, &y, &err), SK_OK);
    assert_int_equal(y.dtype, dtype);
    expect_close(&y, want, ro, od, rtol, 1e-5, "MatMul");
    sk_node_proto_free(NULL, n);
    free(want);
    sk_tensor_free(&a);
    sk_tensor_free(&b);
    sk_tensor_free(&y);
}

static void test_matmul(void **state)
{
    (void)state;
    check_matmul(SK_FLOAT, 2, (int64_t[]){ 5, 4 }, 2, (int64_t[]){ 4, 6 }, 1e-5);
    check_matmul(SK_FLOAT, 3, (int64_t[]){ 2, 7, 9 }, 2, (int64_t[]){ 9, 5 }, 1e-5);          /* one GEMM of 14 rows */
    check_matmul(SK_FLOAT, 4, (int64_t[]){ 2, 1, 3, 4 }, 3, (int64_t[]){ 3, 4, 5 }, 1e-5);    /* batch broadcast */
    check_matmul(SK_FLOAT, 2, (int64_t[]){ 3, 4 }, 4, (int64_t[]){ 2, 2, 4, 3 }, 1e-5);       /* A broadcast */
    check_matmul(SK_FLOAT, 1, (int64_t[]){ 4 }, 3, (int64_t[]){ 2, 4, 5 }, 1e-5);             /* 1-D A */
    check_matmul(SK_FLOAT, 3, (int64_t[]){ 2, 3, 4 }, 1, (int64_t[]){ 4 }, 1e-5);             /* 1-D B */
    check_matmul(SK_FLOAT, 1, (int64_t[]){ 6 }, 1, (int64_t[]){ 6 }, 1e-5);                   /* dot product */
    check_matmul(SK_FLOAT, 2, (int64_t[]){ 0, 4 }, 2, (int64_t[]){ 4, 3 }, 1e-5);             /* empty */
    check_matmul(SK_FLOAT, 2, (int64_t[]){ 3, 0 }, 2, (int64_t[]){ 0, 2 }, 1e-5);             /* K = 0 */
    check_matmul(SK_INT64, 3, (int64_t[]){ 2, 3, 5 }, 2, (int64_t[]){ 5, 2 }, 0);
    check_matmul(SK_DOUBLE, 3, (int64_t[]){ 2, 3, 5 }, 3, (int64_t[]){ 1, 5, 2 }, 1e-12);
    check_matmul(SK_FLOAT16, 3, (int64_t[]){ 2, 3, 8 }, 2, (int64_t[]){ 8, 4 }, 4e-3);
}

/* A float16 constant weight is converted once and kept in the node's state;
 * new data at the same input invalidates the copy. */
static void test_matmul_const_cache(void **state)
{
    (void)state;
    sk_tensor a = { 0 }, b = { 0 }, b2 = { 0 }, y = { 0 };
    rand_tensor(&a, SK_FLOAT16, 2, (int64_t[]){ 3, 8 });
    rand_tensor(&b, SK_FLOAT16, 2, (int64_t[]){ 8, 5 });
    rand_tensor(&b2, SK_FLOAT16, 2, (int64_t[]){ 8, 5 });
    Onnx__NodeProto *n = mk_node("MatMul", "", 2, 1);
    const sk_op_def *def = sk_op_find("", "MatMul", 13);
    void *st = NULL;
    void (*st_free)(void *) = NULL;
    sk_error err = { 0 };
    sk_tensor *outs[1] = { &y };
    for (int run = 0; run < 3; run++) {
        const sk_tensor *bw = run == 2 ? &b2 : &b;
        const sk_tensor *in[2] = { &a, bw };
        sk_op_ctx ctx = { .node = n, .opset = 13, .n_in = 2, .in = in, .n_out = 1, .out = outs, .threads = 1,
                          .err = &err, .state = &st, .state_free = &st_free, .const_inputs = 2 };
        assert_int_equal(def->run(&ctx), SK_OK);
        assert_non_null(st);
        assert_non_null(st_free);
        double want[15];
        int ro;
        int64_t od[16];
        matmul_naive(&a, bw, want, &ro, od);
        expect_close(&y, want, ro, od, 4e-3, 1e-3, "MatMul f16 cached");
    }
    st_free(st);
    sk_node_proto_free(NULL, n);
    sk_tensor_free(&a);
    sk_tensor_free(&b);
    sk_tensor_free(&b2);
    sk_tensor_free(&y);
}

static void test_matmul_errors(void **state)
{
    (void)state;
    sk_tensor a = { 0 }, b = { 0 }, y = { 0 };
    rand_tensor(&a, SK_FLOAT, 2, (int64_t[]){ 3, 4 });
    rand_tensor(&b, SK_FLOAT, 2, (int64_t[]){ 5, 2 });
    Onnx__NodeProto *n = mk_node("MatMul", "", 2, 1);
    const sk_tensor *in[2] = { &a, &b };
    sk_error err = { 0 };
    assert_int_equal(run_node(n, 13, 2, in, 1, &y, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "[3,4]"));
    sk_tensor_free(&b);
    rand_tensor(&b, SK_FLOAT, 3, (int64_t[]){ 3, 4, 2 });
    sk_tensor_free(&a);
    rand_tensor(&a, SK_FLOAT, 3, (int64_t[]){ 2, 3, 4 });
    assert_int_equal(run_node(n, 13, 2, in, 1, &y, &err), SK_EINVAL); /* batch 2 vs 3 */
    const sk_tensor *one[2] = { &a, NULL };
    assert_int_equal(run_node(n, 13, 2, one, 1, &y, &err), SK_EINVAL);
    sk_node_proto_free(NULL, n);
    sk_tensor_free(&a);
    sk_tensor_free(&b);
    sk_tensor_free(&y);
}

static void check_gemm(int ta, int tb, float alpha, float beta, int crank, const int64_t *cdims)
{
    int64_t M = 7, N = 5, K = 6;
    sk_tensor a = { 0 }, b = { 0 }, c = { 0 }, y = { 0 };
    rand_tensor(&a, SK_FLOAT, 2, ta ? (int64_t[]){ K, M } : (int64_t[]){ M, K });
    rand_tensor(&b, SK_FLOAT, 2, tb ? (int64_t[]){ N, K } : (int64_t[]){ K, N });
    if (crank >= 0) rand_tensor(&c, SK_FLOAT, crank, cdims);
    double want[35];
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += getd(&a, ta ? k * M + i : i * K + k) * getd(&b, tb ? j * K + k : k * N + j);
            double cv = 0;
            if (crank >= 0) {
                int64_t cr = crank == 2 ? cdims[0] : 1, cc = crank >= 1 ? cdims[crank - 1] : 1;
                cv = getd(&c, (cr == 1 ? 0 : i) * cc + (cc == 1 ? 0 : j));
            }
            want[i * N + j] = alpha * s + beta * cv;
        }
    Onnx__NodeProto *n = mk_node("Gemm", "", crank >= 0 ? 3 : 2, 1);
    sk_node_add_attr_int(n, "transA", ta);
    sk_node_add_attr_int(n, "transB", tb);
    sk_node_add_attr_float(n, "alpha", alpha);
    sk_node_add_attr_float(n, "beta", beta);
    const sk_tensor *in[3] = { &a, &b, &c };
    sk_error err = { 0 };
    assert_int_equal(run_node(n, 13, crank >= 0 ? 3 : 2, in, 1, &y, &err), SK_OK);
    expect_close(&y, want, 2, (int64_t[]){ M, N }, 1e-5, 1e-5, "Gemm");
    sk_node_proto_free(NULL, n);
    sk_tensor_free(&a);
    sk_tensor_free(&b);
    sk_tensor_free(&c);
    sk_tensor_free(&y);
}

static void test_gemm_op(void **state)
{
    (void)state;
    for (int t = 0; t < 4; t++) {
        check_gemm(t & 1, t >> 1, 1.0f, 1.0f, -1, NULL);
        check_gemm(t & 1, t >> 1, 0.5f, 2.0f, 1, (int64_t[]){ 5 });
        check_gemm(t & 1, t >> 1, 1.0f, -1.0f, 2, (int64_t[]){ 7, 1 });
        check_gemm(t & 1, t >> 1, 2.0f, 0.5f, 2, (int64_t[]){ 7, 5 });
        check_gemm(t & 1, t >> 1, 1.0f, 3.0f, 0, NULL);
        check_gemm(t & 1, t >> 1, 1.0f, 0.0f, 2, (int64_t[]){ 1, 5 });
    }
}

/* ---- Conv, ConvTranspose --------------------------------------------------- */

typedef struct conv_case {
    int nd;
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3], pads[6];
    const char *auto_pad; /* NULL: pads */
    int64_t opad[3];      /* ConvTranspose output_padding */
} conv_case;

/* Out size and begin pad of one spatial dim of a Conv, by ONNX's formulas. */
static void conv_dim(const conv_case *c, int i, int64_t *out, int64_t *pb)
{
    int64_t eff = (c->k[i] - 1) * c->d[i] + 1;
    if (c->auto_pad && strcmp(c->auto_pad, "VALID")) {
        *out = (c->in[i] + c->s[i] - 1) / c->s[i];
        int64_t tot = (*out - 1) * c->s[i] + eff - c->in[i];
        if (tot < 0) tot = 0;
        *pb = !strcmp(c->auto_pad, "SAME_UPPER") ? tot / 2 : tot - tot / 2;
    } else if (c->auto_pad) {
        *pb = 0;
        *out = (c->in[i] - eff) / c->s[i] + 1;
    } else {
        *pb = c->pads[i];
        *out = (c->in[i] + c->pads[i] + c->pads[i + c->nd] - eff) / c->s[i] + 1;
    }
}

static Onnx__NodeProto *conv_node(const conv_case *c, const char *op, int has_bias)
{
    Onnx__NodeProto *n = mk_node(op, "", has_bias ? 3 : 2, 1);
    sk_node_add_attr_int(n, "group", c->group);
    sk_node_add_attr_ints(n, "kernel_shape", (size_t)c->nd, c->k);
    sk_node_add_attr_ints(n, "strides", (size_t)c->nd, c->s);
    sk_node_add_attr_ints(n, "dilations", (size_t)c->nd, c->d);
    if (c->auto_pad) sk_node_add_attr_string(n, "auto_pad", c->auto_pad);
    else sk_node_add_attr_ints(n, "pads", 2 * (size_t)c->nd, c->pads);
    if (!strcmp(op, "ConvTranspose")) sk_node_add_attr_ints(n, "output_padding", (size_t)c->nd, c->opad);
    return n;
}

static void check_conv(const conv_case *c, int has_bias)
{
    int nd = c->nd;
    int64_t xd[5] = { c->n, c->c }, wd[5] = { c->m, c->c / c->group }, od[5] = { c->n, c->m }, pb[3];
    for (int i = 0; i < nd; i++) {
        xd[2 + i] = c->in[i];
        wd[2 + i] = c->k[i];
        conv_dim(c, i, &od[2 + i], &pb[i]);
    }
    sk_tensor x = { 0 }, w = { 0 }, b = { 0 }, y = { 0 };
    rand_tensor(&x, SK_FLOAT, nd + 2, xd);
    rand_tensor(&w, SK_FLOAT, nd + 2, wd);
    rand_tensor(&b, SK_FLOAT, 1, (int64_t[]){ c->m });
    int64_t on = 1, ksz = 1, isp = 1, osp = 1;
    for (int i = 0; i < nd + 2; i++) on *= od[i];
    for (int i = 0; i < nd; i++) {
        ksz *= c->k[i];
        isp *= c->in[i];
        osp *= od[2 + i];
    }
    double *want = calloc((size_t)on, sizeof *want);
    assert_non_null(want);
    int64_t cg = c->c / c->group, mg = c->m / c->group;
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t m = 0; m < c->m; m++)
            for (int64_t p = 0; p < osp; p++) {
                int64_t o[3], rem = p;
                for (int i = nd - 1; i >= 0; i--) {
                    o[i] = rem % od[2 + i];
                    rem /= od[2 + i];
                }
                double s = has_bias ? getd(&b, m) : 0;
                int64_t g = m / mg;
                for (int64_t ci = 0; ci < cg; ci++)
                    for (int64_t kk = 0; kk < ksz; kk++) {
                        int64_t kr = kk, off = 0, ok = 1, kidx[3];
                        for (int i = nd - 1; i >= 0; i--) {
                            kidx[i] = kr % c->k[i];
                            kr /= c->k[i];
                        }
                        for (int i = 0; i < nd; i++) {
                            int64_t ii = o[i] * c->s[i] - pb[i] + kidx[i] * c->d[i];
                            if (ii < 0 || ii >= c->in[i]) ok = 0;
                            off = off * c->in[i] + ii;
                        }
                        if (ok)
                            s += getd(&x, (n * c->c + g * cg + ci) * isp + off) * getd(&w, (m * cg + ci) * ksz + kk);
                    }
                want[(n * c->m + m) * osp + p] = s;
            }
    Onnx__NodeProto *node = conv_node(c, "Conv", has_bias);
    const sk_tensor *in[3] = { &x, &w, &b };
    sk_error err = { 0 };
    sk_status st = run_node(node, 11, has_bias ? 3 : 2, in, 1, &y, &err);
    if (st) fprintf(stderr, "Conv: %s\n", err.msg);
    assert_int_equal(st, SK_OK);
    expect_close(&y, want, nd + 2, od, 1e-4, 1e-4, "Conv");
    sk_node_proto_free(NULL, node);
    free(want);
    sk_tensor_free(&x);
    sk_tensor_free(&w);
    sk_tensor_free(&b);
    sk_tensor_free(&y);
}

static void test_conv(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        /* nd  n  c  m  g   in            k           s           d           pads */
        { 2, 1, 3, 4, 1, { 7, 9 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 }, NULL, { 0 } },
        { 2, 2, 4, 6, 2, { 8, 7 }, { 3, 2 }, { 2, 1 }, { 1, 2 }, { 0, 1, 2, 0 }, NULL, { 0 } },
        { 2, 1, 6, 6, 6, { 9, 9 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 }, NULL, { 0 } }, /* depthwise */
        { 2, 1, 4, 4, 4, { 10, 11 }, { 5, 3 }, { 2, 3 }, { 2, 1 }, { 2, 0, 1, 3 }, NULL, { 0 } }, /* depthwise, strided */
        { 2, 1, 4, 4, 4, { 7, 40 }, { 3, 3 }, { 1, 1 }, { 1, 2 }, { 1, 2, 0, 1 }, NULL, { 0 } }, /* depthwise, dilated row */
        { 2, 1, 2, 2, 2, { 12, 45 }, { 9, 9 }, { 1, 1 }, { 1, 1 }, { 4, 4, 4, 4 }, NULL, { 0 } }, /* 81 taps */
        { 2, 1, 3, 3, 3, { 5, 70 }, { 5, 5 }, { 1, 1 }, { 1, 1 }, { 2, 2, 2, 2 }, NULL, { 0 } }, /* wide rows */
        { 2, 1, 4, 8, 4, { 6, 6 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 }, NULL, { 0 } },  /* channel multiplier */
        { 2, 2, 5, 7, 1, { 4, 6 }, { 1, 1 }, { 1, 1 }, { 1, 1 }, { 0, 0, 0, 0 }, NULL, { 0 } },  /* pointwise */
        { 2, 1, 5, 3, 1, { 6, 6 }, { 1, 1 }, { 2, 2 }, { 1, 1 }, { 0, 0, 0, 0 }, NULL, { 0 } },  /* strided 1x1 */
        { 2, 1, 3, 2, 1, { 7, 8 }, { 3, 3 }, { 2, 2 }, { 1, 1 }, { 0 }, "SAME_UPPER", { 0 } },
        { 2, 1, 3, 2, 1, { 7, 8 }, { 4, 4 }, { 2, 3 }, { 1, 1 }, { 0 }, "SAME_LOWER", { 0 } },
        { 2, 1, 3, 2, 1, { 7, 8 }, { 3, 2 }, { 2, 2 }, { 1, 1 }, { 0 }, "VALID", { 0 } },
        { 1, 2, 3, 4, 1, { 11 }, { 3 }, { 2 }, { 2 }, { 1, 2 }, NULL, { 0 } },                  /* 1-D */
        { 1, 1, 4, 4, 4, { 9 }, { 3 }, { 1 }, { 1 }, { 1, 1 }, NULL, { 0 } },                   /* 1-D depthwise */
        { 3, 1, 2, 3, 1, { 4, 5, 6 }, { 2, 3, 2 }, { 1, 2, 1 }, { 1, 1, 2 }, { 1, 0, 1, 0, 1, 1 }, NULL, { 0 } },
        { 3, 1, 2, 2, 2, { 3, 4, 5 }, { 2, 2, 3 }, { 1, 1, 1 }, { 1, 1, 2 }, { 1, 0, 1, 0, 1, 1 }, NULL, { 0 } }, /* 3-D depthwise */
        { 3, 2, 3, 3, 3, { 4, 5, 9 }, { 2, 3, 3 }, { 2, 1, 2 }, { 1, 1, 1 }, { 0, 1, 1, 1, 0, 2 }, NULL, { 0 } },
        { 2, 1, 3, 3, 3, { 9, 20 }, { 3, 5 }, { 2, 3 }, { 1, 2 }, { 1, 4, 1, 3 }, NULL, { 0 } },  /* stride 3 rows */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_conv(&cases[i], 1);
        check_conv(&cases[i], 0);
    }
}

static void check_conv_transpose(const conv_case *c, int has_bias)
{
    int nd = c->nd;
    int64_t xd[5] = { c->n, c->c }, wd[5] = { c->c, c->m / c->group }, od[5] = { c->n, c->m };
    for (int i = 0; i < nd; i++) {
        xd[2 + i] = c->in[i];
        wd[2 + i] = c->k[i];
        od[2 + i] = c->s[i] * (c->in[i] - 1) + c->opad[i] + (c->k[i] - 1) * c->d[i] + 1 - c->pads[i] - c->pads[i + nd];
    }
    sk_tensor x = { 0 }, w = { 0 }, b = { 0 }, y = { 0 };
    rand_tensor(&x, SK_FLOAT, nd + 2, xd);
    rand_tensor(&w, SK_FLOAT, nd + 2, wd);
    rand_tensor(&b, SK_FLOAT, 1, (int64_t[]){ c->m });
    int64_t on = 1, ksz = 1, isp = 1, osp = 1;
    for (int i = 0; i < nd + 2; i++) on *= od[i];
    for (int i = 0; i < nd; i++) {
        ksz *= c->k[i];
        isp *= c->in[i];
        osp *= od[2 + i];
    }
    double *want = calloc((size_t)on, sizeof *want);
    assert_non_null(want);
    int64_t cg = c->c / c->group, mg = c->m / c->group;
    for (int64_t n = 0; n < c->n; n++) /* scatter every input value through the kernel */
        for (int64_t ci = 0; ci < c->c; ci++)
            for (int64_t p = 0; p < isp; p++)
                for (int64_t mm = 0; mm < mg; mm++)
                    for (int64_t kk = 0; kk < ksz; kk++) {
                        int64_t ii[3], kidx[3], rem = p, kr = kk, off = 0, ok = 1;
                        for (int i = nd - 1; i >= 0; i--) {
                            ii[i] = rem % c->in[i];
                            rem /= c->in[i];
                            kidx[i] = kr % c->k[i];
                            kr /= c->k[i];
                        }
                        for (int i = 0; i < nd; i++) {
                            int64_t o = ii[i] * c->s[i] + kidx[i] * c->d[i] - c->pads[i];
                            if (o < 0 || o >= od[2 + i]) ok = 0;
                            off = off * od[2 + i] + o;
                        }
                        int64_t m = (ci / cg) * mg + mm;
                        if (ok)
                            want[(n * c->m + m) * osp + off] +=
                                getd(&x, (n * c->c + ci) * isp + p) * getd(&w, (ci * mg + mm) * ksz + kk);
                    }
    if (has_bias)
        for (int64_t i = 0; i < on; i++) want[i] += getd(&b, (i / osp) % c->m);
    Onnx__NodeProto *node = conv_node(c, "ConvTranspose", has_bias);
    const sk_tensor *in[3] = { &x, &w, &b };
    sk_error err = { 0 };
    sk_status st = run_node(node, 11, has_bias ? 3 : 2, in, 1, &y, &err);
    if (st) fprintf(stderr, "ConvTranspose: %s\n", err.msg);
    assert_int_equal(st, SK_OK);
    expect_close(&y, want, nd + 2, od, 1e-4, 1e-4, "ConvTranspose");
    sk_node_proto_free(NULL, node);
    free(want);
    sk_tensor_free(&x);
    sk_tensor_free(&w);
    sk_tensor_free(&b);
    sk_tensor_free(&y);
}

static void test_conv_transpose(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        { 2, 1, 3, 2, 1, { 4, 5 }, { 2, 2 }, { 2, 2 }, { 1, 1 }, { 0, 0, 0, 0 }, NULL, { 0, 0 } }, /* PaddleOCR det */
        { 2, 2, 4, 6, 2, { 3, 4 }, { 3, 3 }, { 2, 1 }, { 1, 2 }, { 1, 0, 0, 1 }, NULL, { 1, 0 } },
        { 2, 1, 2, 3, 1, { 5, 3 }, { 3, 2 }, { 3, 2 }, { 2, 1 }, { 2, 1, 1, 0 }, NULL, { 2, 1 } },
        { 1, 1, 2, 2, 1, { 6 }, { 3 }, { 2 }, { 1 }, { 1, 1 }, NULL, { 1 } },
        { 3, 1, 2, 2, 2, { 2, 3, 2 }, { 2, 2, 3 }, { 2, 1, 2 }, { 1, 1, 1 }, { 0, 0, 1, 0, 1, 0 }, NULL, { 0, 0, 1 } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_conv_transpose(&cases[i], 1);
        check_conv_transpose(&cases[i], 0);
    }
}

static void test_conv_errors(void **state)
{
    (void)state;
    conv_case c = { 2, 1, 3, 4, 2, { 5, 5 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 0 }, NULL, { 0 } };
    sk_tensor x = { 0 }, w = { 0 }, y = { 0 };
    rand_tensor(&x, SK_FLOAT, 4, (int64_t[]){ 1, 3, 5, 5 });
    rand_tensor(&w, SK_FLOAT, 4, (int64_t[]){ 4, 3, 3, 3 });
    Onnx__NodeProto *n = conv_node(&c, "Conv", 0); /* group 2 does not divide 3 channels */
    const sk_tensor *in[2] = { &x, &w };
    sk_error err = { 0 };
    assert_int_equal(run_node(n, 11, 2, in, 1, &y, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "group"));
    sk_node_proto_free(NULL, n);
    c.group = 1;
    c.k[0] = c.k[1] = 7; /* kernel larger than the input */
    sk_tensor_free(&w);
    rand_tensor(&w, SK_FLOAT, 4, (int64_t[]){ 4, 3, 7, 7 });
    n = conv_node(&c, "Conv", 0);
    assert_int_equal(run_node(n, 11, 2, in, 1, &y, &err), SK_EINVAL);
    sk_node_proto_free(NULL, n);
    sk_tensor_free(&x);
    sk_tensor_free(&w);
    sk_tensor_free(&y);
}

/* ---- pooling ----------------------------------------------------------------- */

static void test_avgpool_rules(void **state)
{
    (void)state;
    /* 1x1x6x6 of ones, kernel 3, stride 2, pads 1, ceil_mode: the last
     * window (rows 5..7) reaches past the padding; count_include_pad counts
     * the padded cells but not those beyond the padding (ONNX Runtime). */
    sk_tensor x = { 0 }, y = { 0 };
    sk_error err = { 0 };
    assert_int_equal(sk_tensor_alloc(&x, SK_FLOAT, 4, (int64_t[]){ 1, 1, 6, 6 }, &err), SK_OK);
    for (int i = 0; i < 36; i++) ((float *)x.data)[i] = 1;
    for (int inc = 0; inc < 2; inc++) {
        for (int ceil_mode = 0; ceil_mode < 2; ceil_mode++) {
            Onnx__NodeProto *n = mk_node("AveragePool", "", 1, 1);
            sk_node_add_attr_ints(n, "kernel_shape", 2, (int64_t[]){ 3, 3 });
            sk_node_add_attr_ints(n, "strides", 2, (int64_t[]){ 2, 2 });
            sk_node_add_attr_ints(n, "pads", 4, (int64_t[]){ 1, 1, 1, 1 });
            sk_node_add_attr_int(n, "ceil_mode", ceil_mode);
            sk_node_add_attr_int(n, "count_include_pad", inc);
            const sk_tensor *in[1] = { &x };
            assert_int_equal(run_node(n, 11, 1, in, 1, &y, &err), SK_OK);
            int64_t o = ceil_mode ? 4 : 3;
            assert_int_equal(y.dims[2], o);
            assert_int_equal(y.dims[3], o);
            const float *yd = y.data;
            assert_float_equal(yd[0], inc ? 4.0f / 9.0f : 1.0f, 1e-6);     /* corner: 4 real cells of 9 */
            assert_float_equal(yd[1], inc ? 6.0f / 9.0f : 1.0f, 1e-6);     /* top edge: 6 of 9 */
            assert_float_equal(yd[o + 1], 1.0f, 1e-6);                      /* inside */
            if (ceil_mode) assert_float_equal(yd[15], inc ? 0.25f : 1.0f, 1e-6); /* 1 real + 3 pad of 4 */
            sk_node_proto_free(NULL, n);
        }
    }
    /* MaxPool on int8 with an Indices output */
    sk_tensor xi = { 0 }, ind = { 0 }, outs[2] = { { 0 } };
    (void)ind;
    assert_int_equal(sk_tensor_alloc(&xi, SK_INT8, 4, (int64_t[]){ 1, 1, 2, 3 }, &err), SK_OK);
    int8_t vals[6] = { -5, 7, 3, 9, -128, 2 };
    memcpy(xi.data, vals, 6);
    Onnx__NodeProto *n = mk_node("MaxPool", "", 1, 2);
    sk_node_add_attr_ints(n, "kernel_shape", 2, (int64_t[]){ 2, 2 });
    const sk_tensor *in[1] = { &xi };
    assert_int_equal(run_node(n, 12, 1, in, 2, outs, &err), SK_OK);
    assert_int_equal(outs[0].dtype, SK_INT8);
    assert_int_equal(((int8_t *)outs[0].data)[0], 9);
    assert_int_equal(((int8_t *)outs[0].data)[1], 7);
    assert_int_equal(((int64_t *)outs[1].data)[0], 3);
    assert_int_equal(((int64_t *)outs[1].data)[1], 1);
    sk_node_proto_free(NULL, n);
    sk_tensor_free(&x);
    sk_tensor_free(&y);
    sk_tensor_free(&xi);
    sk_tensor_free(&outs[0]);
    sk_tensor_free(&outs[1]);
}

/* ---- Resize ---------------------------------------------------------------- */

static void test_resize(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor x = { 0 }, sc = { 0 }, roi = { 0 }, y = { 0 };
    rand_tensor(&x, SK_FLOAT, 4, (int64_t[]){ 1, 2, 3, 4 });
    assert_int_equal(sk_tensor_alloc(&sc, SK_FLOAT, 1, (int64_t[]){ 4 }, &err), SK_OK);
    float s[4] = { 1, 1, 2, 2 };
    memcpy(sc.data, s, sizeof s);
    /* PaddleOCR det: nearest, asymmetric, floor, x2 */
    Onnx__NodeProto *n = mk_node("Resize", "", 3, 1);
    sk_node_add_attr_string(n, "mode", "nearest");
    sk_node_add_attr_string(n, "coordinate_transformation_mode", "asymmetric");
    sk_node_add_attr_string(n, "nearest_mode", "floor");
    const sk_tensor *in[4] = { &x, &roi, &sc, NULL };
    assert_int_equal(run_node(n, 11, 3, in, 1, &y, &err), SK_OK);
    assert_int_equal(y.dims[2], 6);
    assert_int_equal(y.dims[3], 8);
    for (int64_t c = 0; c < 2; c++)
        for (int64_t i = 0; i < 6; i++)
            for (int64_t j = 0; j < 8; j++)
                assert_true(((float *)y.data)[(c * 6 + i) * 8 + j] == ((float *)x.data)[(c * 3 + i / 2) * 4 + j / 2]);
    sk_node_proto_free(NULL, n);
    /* bilinear, half_pixel, x2: separable formula */
    n = mk_node("Resize", "", 3, 1);
    sk_node_add_attr_string(n, "mode", "linear");
    assert_int_equal(run_node(n, 13, 3, in, 1, &y, &err), SK_OK);
    for (int64_t c = 0; c < 2; c++)
        for (int64_t i = 0; i < 6; i++)
            for (int64_t j = 0; j < 8; j++) {
                double yi = fmin(fmax((i + 0.5) / 2 - 0.5, 0), 2), xj = fmin(fmax((j + 0.5) / 2 - 0.5, 0), 3);
                int64_t i0 = (int64_t)yi, j0 = (int64_t)xj, i1 = i0 + 1 < 3 ? i0 + 1 : 2, j1 = j0 + 1 < 4 ? j0 + 1 : 3;
                double fy = yi - i0, fx = xj - j0;
                const float *xc = (const float *)x.data + c * 12;
                double want = (1 - fy) * ((1 - fx) * xc[i0 * 4 + j0] + fx * xc[i0 * 4 + j1]) +
                              fy * ((1 - fx) * xc[i1 * 4 + j0] + fx * xc[i1 * 4 + j1]);
                assert_float_equal(((float *)y.data)[(c * 6 + i) * 8 + j], want, 1e-5);
            }
    /* scales and sizes together is an error */
    sk_tensor sz = { 0 };
    assert_int_equal(sk_tensor_alloc(&sz, SK_INT64, 1, (int64_t[]){ 4 }, &err), SK_OK);
    const sk_tensor *both[4] = { &x, &roi, &sc, &sz };
    assert_int_equal(run_node(n, 13, 4, both, 1, &y, &err), SK_EINVAL);
    sk_node_proto_free(NULL, n);
    sk_tensor_free(&x);
    sk_tensor_free(&sc);
    sk_tensor_free(&sz);
    sk_tensor_free(&y);
}

/* ---- Einsum ------------------------------------------------------------------ */

/* The float32 result (GEMM path where the equation allows it) must match the
 * float64 one (always the general loop). */
static void check_einsum(const char *eq, int nin, int ra, const int64_t *da, int rb, const int64_t *db)
{
    sk_tensor a = { 0 }, b = { 0 }, a64 = { 0 }, b64 = { 0 }, y = { 0 }, y64 = { 0 };
    sk_error err = { 0 };
    rand_tensor(&a, SK_FLOAT, ra, da);
    assert_int_equal(sk_tensor_alloc(&a64, SK_DOUBLE, ra, da, &err), SK_OK);
    for (int64_t i = 0; i < a.numel; i++) ((double *)a64.data)[i] = ((float *)a.data)[i];
    if (nin == 2) {
        rand_tensor(&b, SK_FLOAT, rb, db);
        assert_int_equal(sk_tensor_alloc(&b64, SK_DOUBLE, rb, db, &err), SK_OK);
        for (int64_t i = 0; i < b.numel; i++) ((double *)b64.data)[i] = ((float *)b.data)[i];
    }
    Onnx__NodeProto *n = mk_node("Einsum", "", (size_t)nin, 1);
    sk_node_add_attr_string(n, "equation", eq);
    const sk_tensor *in[2] = { &a, &b }, *in64[2] = { &a64, &b64 };
    sk_status st = run_node(n, 12, (size_t)nin, in, 1, &y, &err);
    if (st) fprintf(stderr, "Einsum '%s': %s\n", eq, err.msg);
    assert_int_equal(st, SK_OK);
    assert_int_equal(run_node(n, 12, (size_t)nin, in64, 1, &y64, &err), SK_OK);
    assert_int_equal(y.rank, y64.rank);
    assert_int_equal(y.numel, y64.numel);
    for (int64_t i = 0; i < y.numel; i++)
        if (fabs(getd(&y, i) - getd(&y64, i)) > 1e-4 * (1 + fabs(getd(&y64, i)))) {
            fprintf(stderr, "Einsum '%s': element %lld is %g, expected %g\n", eq, (long long)i, getd(&y, i), getd(&y64, i));
            fail();
        }
    sk_node_proto_free(NULL, n);
    sk_tensor_free(&a);
    sk_tensor_free(&b);
    sk_tensor_free(&a64);
    sk_tensor_free(&b64);
    sk_tensor_free(&y);
    sk_tensor_free(&y64);
}

static void test_einsum(void **state)
{
    (void)state;
    check_einsum("bij,bjk->bik", 2, 3, (int64_t[]){ 2, 3, 4 }, 3, (int64_t[]){ 2, 4, 5 });
    check_einsum("bhqd,bhkd->bhqk", 2, 4, (int64_t[]){ 1, 2, 5, 3 }, 4, (int64_t[]){ 1, 2, 6, 3 });
    check_einsum("bhqk,bhkd->bhqd", 2, 4, (int64_t[]){ 1, 2, 5, 6 }, 4, (int64_t[]){ 1, 2, 6, 3 });
    check_einsum("ij,kj->ik", 2, 2, (int64_t[]){ 3, 4 }, 2, (int64_t[]){ 5, 4 });
    check_einsum("ji,jk->ik", 2, 2, (int64_t[]){ 4, 3 }, 2, (int64_t[]){ 4, 5 });
    check_einsum("ij,jk->ki", 2, 2, (int64_t[]){ 3, 4 }, 2, (int64_t[]){ 4, 5 });     /* permuted output */
    check_einsum("bid,bjd->bij", 2, 3, (int64_t[]){ 2, 3, 4 }, 3, (int64_t[]){ 2, 5, 4 });
    check_einsum("i,j->ij", 2, 1, (int64_t[]){ 3 }, 1, (int64_t[]){ 4 });
    check_einsum("i,i", 2, 1, (int64_t[]){ 7 }, 1, (int64_t[]){ 7 });
    check_einsum("...ij,...jk->...ik", 2, 4, (int64_t[]){ 2, 3, 4, 5 }, 4, (int64_t[]){ 2, 3, 5, 2 });
    check_einsum("abc,cd->abd", 2, 3, (int64_t[]){ 2, 3, 4 }, 2, (int64_t[]){ 4, 6 });
    check_einsum("ij,ij->i", 2, 2, (int64_t[]){ 3, 4 }, 2, (int64_t[]){ 3, 4 });
    check_einsum("ij,jk", 2, 2, (int64_t[]){ 3, 4 }, 2, (int64_t[]){ 4, 5 });           /* implicit output */
    check_einsum("ij,k->i", 2, 2, (int64_t[]){ 3, 4 }, 1, (int64_t[]){ 5 });            /* one-sided sums */
    check_einsum("ij->ji", 1, 2, (int64_t[]){ 3, 4 }, 0, NULL);
    check_einsum("ii->i", 1, 2, (int64_t[]){ 4, 4 }, 0, NULL);
    check_einsum("...ii ->...i", 1, 3, (int64_t[]){ 2, 3, 3 }, 0, NULL);
    check_einsum("ij->", 1, 2, (int64_t[]){ 3, 4 }, 0, NULL);

    /* malformed equations and rank mismatches */
    sk_tensor a = { 0 }, y = { 0 };
    sk_error err = { 0 };
    rand_tensor(&a, SK_FLOAT, 2, (int64_t[]){ 2, 3 });
    static const char *const bad[] = { "ij,jk->ik", "ijk->i", "i.j->i", "ij->ii", "ij->q" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Onnx__NodeProto *n = mk_node("Einsum", "", 1, 1);
        sk_node_add_attr_string(n, "equation", bad[i]);
        const sk_tensor *in[1] = { &a };
        assert_int_equal(run_node(n, 12, 1, in, 1, &y, &err), SK_EINVAL);
        sk_node_proto_free(NULL, n);
    }
    sk_tensor_free(&a);
    sk_tensor_free(&y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_matmul_const_cache),
        cmocka_unit_test(test_matmul_errors),
        cmocka_unit_test(test_gemm_op),
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_conv_transpose),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_avgpool_rules),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_einsum),
    };
    int failed = cmocka_run_group_tests_name("ops_nn", tests, NULL, NULL);
    sk_tensor_cache_trim(); /* hand the cached buffers back, for leak checkers */
    return failed;
}
