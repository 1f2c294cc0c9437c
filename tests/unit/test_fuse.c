/* The fusion pass (lib/sk_fuse.c): every group runs the same graph fused and
 * unfused (sk_engine_set_fusion) and must give the same bits, on the fast
 * paths (sk_fuse_fallback_count unchanged) and on the fallbacks; the plan
 * must really be fused (fewer steps); views must keep their input alive;
 * hooks see the plain plan; errors name the same node. Also the pieces the
 * fused kernels rely on: the packed int8 GEMM against the reference, and the
 * dynamic quantization against a scalar transcription of ONNX's formula,
 * ties and near-ties included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_engine.h"
#include "sk_fuse.h"
#include "sk_model.h"
#include "sk_qgemm.h"

/* ---- building graphs -------------------------------------------------- */

static uint32_t rng_state = 12345;

static float frand(float lo, float hi)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(rng_state >> 8) / 16777216.0f;
}

static Onnx__ValueInfoProto *vi_new(const char *name, int dtype)
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
    return v;
}

static void add_vi(size_t *n, Onnx__ValueInfoProto ***arr, Onnx__ValueInfoProto *v)
{
    *arr = realloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = v;
}

static Onnx__GraphProto *graph_new(void)
{
    Onnx__GraphProto *g = malloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup("fuse");
    return g;
}

/* Inputs and outputs without shapes: any shape binds at run time. */
static void g_input(Onnx__GraphProto *g, const char *name, int dtype)
{
    add_vi(&g->n_input, &g->input, vi_new(name, dtype));
}

static void g_output(Onnx__GraphProto *g, const char *name, int dtype)
{
    add_vi(&g->n_output, &g->output, vi_new(name, dtype));
}

/* ins / outs: comma-separated names ("" entries allowed: "a,,b"). */
static size_t split(const char *s, char names[8][48], const char *ptrs[8])
{
    size_t n = 0;
    if (!s) return 0;
    for (const char *p = s;; n++) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        memcpy(names[n], p, l);
        names[n][l] = 0;
        ptrs[n] = names[n];
        if (!c) return n + 1;
        p = c + 1;
    }
}

static Onnx__NodeProto *g_node(Onnx__GraphProto *g, const char *op, const char *name, const char *ins,
                               const char *outs)
{
    char in_names[8][48], out_names[8][48];
    const char *ip[8], *op_[8];
    size_t ni = split(ins, in_names, ip), no = split(outs, out_names, op_);
    Onnx__NodeProto *n = sk_node_proto_new(op, "", name, ni, ip, no, op_);
    assert_non_null(n);
    assert_int_equal(sk_graph_insert_node(g, SIZE_MAX, n), SK_OK);
    return n;
}

static void g_init(Onnx__GraphProto *g, const char *name, int dtype, int rank, const int64_t *dims, const void *v)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    size_t es = dtype == SK_INT64 ? 8 : dtype == SK_FLOAT ? 4 : 1;
    sk_tensor_proto *t = sk_tensor_proto_new(name, dtype, rank, dims, v, (size_t)n * es);
    assert_non_null(t);
    assert_int_equal(sk_graph_add_initializer(g, t), SK_OK);
}

static void g_scalar(Onnx__GraphProto *g, const char *name, float v)
{
    g_init(g, name, SK_FLOAT, 0, NULL, &v);
}

static sk_model *model_of(Onnx__GraphProto *g)
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
    mp->opset_import[0]->version = 17;
    mp->graph = g;
    sk_model *m;
    sk_error err;
    assert_int_equal(sk_model_wrap(mp, NULL, &m, &err), SK_OK);
    return m;
}

static sk_tensor rand_f32(int rank, const int64_t *dims, float lo, float hi)
{
    sk_tensor t = { 0 };
    assert_int_equal(sk_tensor_alloc(&t, SK_FLOAT, rank, dims, NULL), SK_OK);
    for (int64_t i = 0; i < t.numel; i++) ((float *)t.data)[i] = frand(lo, hi);
    return t;
}

/* ---- running both plans ----------------------------------------------- */

#define MAX_OUT 4

typedef struct both {
    sk_tensor fused[MAX_OUT], plain[MAX_OUT];
    uint64_t fallbacks; /* fused steps that ran their nodes one by one (fused runs only) */
    size_t steps_fused, steps_plain, n_out;
    sk_status s_fused, s_plain;
    sk_error e_fused, e_plain;
} both;

static void run_both(sk_model *m, size_t n_in, const char *const *names, const sk_tensor *const *in, both *r)
{
    sk_engine *e;
    sk_error err;
    memset(r, 0, sizeof *r);
    assert_int_equal(sk_engine_create(m, NULL, &e, &err), SK_OK);
    r->n_out = sk_engine_output_count(e);
    assert_true(r->n_out <= MAX_OUT);
    r->steps_fused = sk_engine_step_count(e, 1);
    r->steps_plain = sk_engine_step_count(e, 0);
    uint64_t f0 = sk_fuse_fallback_count();
    for (int rep = 0; rep < 2; rep++) /* twice: the second run uses kept state (packed weights) */
        r->s_fused = sk_engine_run(e, n_in, names, in, r->fused, &r->e_fused);
    r->fallbacks = sk_fuse_fallback_count() - f0;
    sk_engine_set_fusion(e, 0);
    r->s_plain = sk_engine_run(e, n_in, names, in, r->plain, &r->e_plain);
    sk_engine_free(e);
}

static void both_free(both *r)
{
    for (size_t i = 0; i < MAX_OUT; i++) {
        sk_tensor_free(&r->fused[i]);
        sk_tensor_free(&r->plain[i]);
    }
}

/* Both plans succeeded with the same bits in every output. */
static void assert_same(const both *r)
{
    if (r->s_fused || r->s_plain) fail_msg("fused: %s / plain: %s", r->e_fused.msg, r->e_plain.msg);
    for (size_t i = 0; i < r->n_out; i++) {
        const sk_tensor *a = &r->fused[i], *b = &r->plain[i];
        assert_int_equal(a->dtype, b->dtype);
        assert_int_equal(a->rank, b->rank);
        assert_memory_equal(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims);
        assert_int_equal(a->nbytes, b->nbytes);
        if (memcmp(a->data, b->data, a->nbytes)) {
            for (int64_t j = 0; j < a->numel && a->dtype == SK_FLOAT; j++)
                if (memcmp((const float *)a->data + j, (const float *)b->data + j, 4))
                    fail_msg("output %zu differs at %lld: fused %.9g plain %.9g", i, (long long)j,
                             ((const float *)a->data)[j], ((const float *)b->data)[j]);
            fail_msg("output %zu differs", i);
        }
    }
}

/* ---- gelu ----------------------------------------------------------------- */

/* The four ways exporters write erf-gelu; x is a graph input. */
static void build_gelu(Onnx__GraphProto *g, int form, const char *x, const char *y)
{
    char o[5][48];
    for (int i = 0; i < 5; i++) snprintf(o[i], sizeof o[i], "%s_g%d", y, i);
    char ins[128];
    switch (form) {
    case 0: /* ((x * (erf(x / sqrt2) + 1)) * 0.5 */
        snprintf(ins, sizeof ins, "%s,c_sqrt2", x);
        g_node(g, "Div", "div", ins, o[0]);
        break;
    default: /* x * (1 / sqrt2), constant first for form 3 */
        snprintf(ins, sizeof ins, form == 3 ? "c_isqrt2,%s" : "%s,c_isqrt2", x);
        g_node(g, "Mul", "div", ins, o[0]);
        break;
    }
    g_node(g, "Erf", "erf", o[0], o[1]);
    snprintf(ins, sizeof ins, "c_one,%s", o[1]);
    g_node(g, "Add", "add1", ins, o[2]);
    if (form == 0 || form == 3) {
        snprintf(ins, sizeof ins, "%s,%s", x, o[2]);
        g_node(g, "Mul", "mulx", ins, o[3]);
        snprintf(ins, sizeof ins, "%s,c_half", o[3]);
        g_node(g, "Mul", "mulh", ins, y);
    } else if (form == 1) { /* ((1 + erf) * 0.5) * x */
        snprintf(ins, sizeof ins, "%s,c_half", o[2]);
        g_node(g, "Mul", "mulh", ins, o[3]);
        snprintf(ins, sizeof ins, "%s,%s", o[3], x);
        g_node(g, "Mul", "mulx", ins, y);
    } else { /* (x * 0.5) * (1 + erf) */
        snprintf(ins, sizeof ins, "%s,c_half", x);
        g_node(g, "Mul", "mulh", ins, o[3]);
        snprintf(ins, sizeof ins, "%s,%s", o[3], o[2]);
        g_node(g, "Mul", "mulx", ins, y);
    }
}

static void gelu_consts(Onnx__GraphProto *g)
{
    g_scalar(g, "c_sqrt2", 1.4142135381698608f);
    g_scalar(g, "c_isqrt2", 0.7071067690849304f);
    g_scalar(g, "c_one", 1.0f);
    g_scalar(g, "c_half", 0.5f);
}

static void test_gelu(void **state)
{
    (void)state;
    for (int form = 0; form < 4; form++) {
        Onnx__GraphProto *g = graph_new();
        g_input(g, "x", SK_FLOAT);
        gelu_consts(g);
        build_gelu(g, form, "x", "y");
        g_output(g, "y", SK_FLOAT);
        sk_model *m = model_of(g);
        const int64_t d[] = { 3, 45 };
        sk_tensor x = rand_f32(2, d, -7, 7);
        const float sp[] = { 0.0f, -0.0f, NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 1e-30f, -3.5f, 10.0f };
        memcpy(x.data, sp, sizeof sp);
        const char *names[] = { "x" };
        const sk_tensor *in[] = { &x };
        both r;
        run_both(m, 1, names, in, &r);
        assert_int_equal(r.steps_plain, 5);
        assert_int_equal(r.steps_fused, 1);
        assert_same(&r);
        assert_int_equal(r.fallbacks, 0);
        both_free(&r);
        sk_tensor_free(&x);
        sk_model_free(m);
    }
}

/* A group's intermediate that is also a graph output stays unfused, and so
 * does a gelu whose x is a constant. */
static void test_gelu_not_fused(void **state)
{
    (void)state;
    Onnx__GraphProto *g = graph_new();
    g_input(g, "x", SK_FLOAT);
    gelu_consts(g);
    build_gelu(g, 0, "x", "y");
    g_output(g, "y", SK_FLOAT);
    g_output(g, "y_g1", SK_FLOAT); /* the Erf output */
    sk_model *m = model_of(g);
    const int64_t d[] = { 17 };
    sk_tensor x = rand_f32(1, d, -3, 3);
    const char *names[] = { "x" };
    const sk_tensor *in[] = { &x };
    both r;
    run_both(m, 1, names, in, &r);
    assert_int_equal(r.steps_fused, r.steps_plain);
    assert_same(&r);
    assert_int_equal(r.fallbacks, 0);
    both_free(&r);
    sk_tensor_free(&x);
    sk_model_free(m);
}

/* ---- MatMul epilogues -------------------------------------------------- */

enum { EP_BIAS = 1, EP_GELU = 2, EP_RES = 4, EP_LN = 8, EP_BIAS_FIRST = 16, EP_INPUTS = 32 };

/* y = LN(gelu(A B + bias) + r) with the stages in ep; A is input "a", the
 * residual input "r". Returns the number of nodes. */
static size_t build_matmul(Onnx__GraphProto *g, int ep, int64_t K, int64_t N)
{
    float *w = malloc((size_t)(K * N) * sizeof *w), *b = malloc((size_t)N * sizeof *b);
    float *s = malloc((size_t)N * sizeof *s), *t = malloc((size_t)N * sizeof *t);
    for (int64_t i = 0; i < K * N; i++) w[i] = frand(-0.5f, 0.5f);
    for (int64_t i = 0; i < N; i++) {
        b[i] = frand(-1, 1);
        s[i] = frand(0.5f, 1.5f);
        t[i] = frand(-0.2f, 0.2f);
    }
    const int64_t dw[] = { K, N }, dn[] = { N };
    g_init(g, "w", SK_FLOAT, 2, dw, w);
    g_init(g, "bias", SK_FLOAT, 1, dn, b);
    g_init(g, "ln_s", SK_FLOAT, 1, dn, s);
    g_init(g, "ln_b", SK_FLOAT, 1, dn, t);
    gelu_consts(g);
    free(w);
    free(b);
    free(s);
    free(t);
    size_t nodes = 1;
    g_node(g, "MatMul", "mm", "a,w", "v0");
    const char *cur = "v0";
    if (ep & EP_BIAS) {
        g_node(g, "Add", "bias_add", ep & EP_BIAS_FIRST ? "bias,v0" : "v0,bias", "v1");
        cur = "v1";
        nodes++;
    }
    if (ep & EP_GELU) {
        build_gelu(g, 0, cur, "v2");
        cur = "v2";
        nodes += 5;
    }
    if (ep & EP_RES) {
        char ins[64];
        snprintf(ins, sizeof ins, "r,%s", cur);
        g_node(g, "Add", "res_add", ins, "v3");
        cur = "v3";
        nodes++;
    }
    if (ep & EP_LN) {
        char ins[64];
        snprintf(ins, sizeof ins, "%s,ln_s,ln_b", cur);
        Onnx__NodeProto *n = g_node(g, "LayerNormalization", "ln", ins, "v4");
        assert_int_equal(sk_node_add_attr_float(n, "epsilon", 1e-5f), SK_OK);
        cur = "v4";
        nodes++;
    }
    g_node(g, "Identity", "out", cur, "y");
    return nodes + 1;
}

static void test_matmul_epilogues(void **state)
{
    (void)state;
    const int eps[] = { EP_BIAS, EP_BIAS | EP_BIAS_FIRST, EP_BIAS | EP_GELU, EP_RES, EP_BIAS | EP_RES | EP_LN,
                        EP_BIAS | EP_GELU | EP_RES | EP_LN, EP_LN, EP_GELU, EP_BIAS | EP_RES | EP_LN | EP_INPUTS };
    for (size_t i = 0; i < sizeof eps / sizeof *eps; i++) {
        const int64_t K = 24, N = 40;
        Onnx__GraphProto *g = graph_new();
        g_input(g, "a", SK_FLOAT);
        g_input(g, "r", SK_FLOAT);
        if (eps[i] & EP_INPUTS) { /* initializers kept as inputs, as old exporters did: not constants */
            g_input(g, "bias", SK_FLOAT);
            g_input(g, "ln_s", SK_FLOAT);
            g_input(g, "ln_b", SK_FLOAT);
        }
        size_t nodes = build_matmul(g, eps[i], K, N);
        g_output(g, "y", SK_FLOAT);
        sk_model *m = model_of(g);
        const int64_t da[] = { 2, 5, K }, dr[] = { 2, 5, N };
        sk_tensor a = rand_f32(3, da, -2, 2), res = rand_f32(3, dr, -1, 1);
        const char *names[] = { "a", "r" };
        const sk_tensor *in[] = { &a, &res };
        both r;
        run_both(m, 2, names, in, &r);
        assert_int_equal(r.steps_plain, nodes);
        assert_int_equal(r.steps_fused, 2); /* the group and the Identity */
        assert_same(&r);
        assert_int_equal(r.fallbacks, 0);
        both_free(&r);
        /* shapes off the fast path: a 1-D A, a residual that broadcasts over
         * rows in groups ([2, 1, N]); one row for all ([1, N]) is on it */
        const int64_t d1[] = { K }, dr1[] = { 1, N }, dr2[] = { 2, 1, N };
        sk_tensor a1 = rand_f32(1, d1, -2, 2), r1 = rand_f32(2, dr1, -1, 1), r2 = rand_f32(3, dr2, -1, 1);
        const sk_tensor *in1[] = { &a1, &r1 };
        run_both(m, 2, names, in1, &r);
        assert_same(&r);
        assert_int_equal(r.fallbacks, 2); /* two runs, the members one by one */
        both_free(&r);
        const sk_tensor *in2[] = { &a, &r2 };
        run_both(m, 2, names, in2, &r);
        assert_same(&r);
        assert_int_equal(r.fallbacks, eps[i] & EP_RES ? 2 : 0);
        both_free(&r);
        const sk_tensor *in3[] = { &a, &r1 };
        run_both(m, 2, names, in3, &r);
        assert_same(&r);
        assert_int_equal(r.fallbacks, 0);
        both_free(&r);
        sk_tensor_free(&a1);
        sk_tensor_free(&r1);
        sk_tensor_free(&r2);
        sk_tensor_free(&a);
        sk_tensor_free(&res);
        sk_model_free(m);
    }
}

/* A value the epilogue would swallow is read elsewhere too: the group stops
 * before it (MatMul + bias), and the gelu after it fuses on its own. */
static void test_matmul_partial(void **state)
{
    (void)state;
    Onnx__GraphProto *g = graph_new();
    g_input(g, "a", SK_FLOAT);
    g_input(g, "r", SK_FLOAT);
    build_matmul(g, EP_BIAS | EP_GELU, 16, 8);
    g_node(g, "Identity", "also", "v1", "y2"); /* the pre-gelu value */
    g_output(g, "y", SK_FLOAT);
    g_output(g, "y2", SK_FLOAT);
    sk_model *m = model_of(g);
    const int64_t da[] = { 3, 16 };
    sk_tensor a = rand_f32(2, da, -2, 2), res = rand_f32(2, da, -1, 1);
    const char *names[] = { "a", "r" };
    const sk_tensor *in[] = { &a, &res };
    both r;
    run_both(m, 2, names, in, &r);
    assert_int_equal(r.steps_plain, 9);
    assert_int_equal(r.steps_fused, 4);
    assert_same(&r);
    assert_int_equal(r.fallbacks, 0);
    both_free(&r);
    sk_tensor_free(&a);
    sk_tensor_free(&res);
    sk_model_free(m);
}

/* A bad shape fails with the unfused plan's message, naming the node. */
static void test_matmul_error(void **state)
{
    (void)state;
    Onnx__GraphProto *g = graph_new();
    g_input(g, "a", SK_FLOAT);
    g_input(g, "r", SK_FLOAT);
    build_matmul(g, EP_BIAS | EP_GELU, 24, 40);
    g_output(g, "y", SK_FLOAT);
    sk_model *m = model_of(g);
    const int64_t da[] = { 3, 23 }, dr[] = { 3, 40 };
    sk_tensor a = rand_f32(2, da, -2, 2), res = rand_f32(2, dr, -1, 1);
    const char *names[] = { "a", "r" };
    const sk_tensor *in[] = { &a, &res };
    both r;
    run_both(m, 2, names, in, &r);
    assert_int_equal(r.s_fused, SK_EINVAL);
    assert_int_equal(r.s_plain, SK_EINVAL);
    assert_string_equal(r.e_fused.msg, r.e_plain.msg);
    assert_non_null(strstr(r.e_fused.msg, "node 'mm' (MatMul)"));
    assert_null(r.fused[0].data);
    both_free(&r);
    sk_tensor_free(&a);
    sk_tensor_free(&res);
    sk_model_free(m);
}

/* ---- int8 products ------------------------------------------------------ */

/* DynamicQuantizeLinear(x) -> n_mm x (MatMulInteger -> Cast -> Mul(scale) ->
 * Add bias [-> gelu]) as skiff-quant --mode dynamic writes them. B is int8
 * (symmetric, zero points 0) or, with b_uint8, uint8 with per-column zero
 * points. */
static void build_qmm(Onnx__GraphProto *g, int n_mm, int64_t K, int64_t N, int b_uint8, int gelu)
{
    uint8_t *w = malloc((size_t)(K * N)), *z = malloc((size_t)N);
    float *ws = malloc((size_t)N * sizeof *ws), *b = malloc((size_t)N * sizeof *b);
    g_node(g, "DynamicQuantizeLinear", "dql", "x", "xq,xs,xz");
    gelu_consts(g);
    for (int k = 0; k < n_mm; k++) {
        for (int64_t i = 0; i < K * N; i++) w[i] = (uint8_t)(int)frand(0, 256);
        for (int64_t i = 0; i < N; i++) {
            z[i] = b_uint8 ? (uint8_t)(int)frand(100, 156) : 0;
            ws[i] = frand(0.001f, 0.02f);
            b[i] = frand(-1, 1);
        }
        char nm[8][48];
        const char *suf[] = { "w", "wz", "ws", "b", "mi", "c", "sm", "y" };
        for (int i = 0; i < 8; i++) snprintf(nm[i], sizeof nm[i], "%s%d", suf[i], k);
        const int64_t dw[] = { K, N }, dn[] = { N };
        g_init(g, nm[0], b_uint8 ? SK_UINT8 : SK_INT8, 2, dw, w);
        g_init(g, nm[1], b_uint8 ? SK_UINT8 : SK_INT8, 1, dn, z);
        g_init(g, nm[2], SK_FLOAT, 1, dn, ws);
        g_init(g, nm[3], SK_FLOAT, 1, dn, b);
        char ins[128], out[48];
        snprintf(ins, sizeof ins, "xq,%s,xz,%s", nm[0], nm[1]);
        g_node(g, "MatMulInteger", "mmi", ins, nm[4]);
        Onnx__NodeProto *c = g_node(g, "Cast", "cast", nm[4], nm[5]);
        assert_int_equal(sk_node_add_attr_int(c, "to", SK_FLOAT), SK_OK);
        snprintf(ins, sizeof ins, "xs,%s", nm[2]);
        snprintf(out, sizeof out, "scales%d", k);
        g_node(g, "Mul", "scales", ins, out);
        snprintf(ins, sizeof ins, "%s,%s", nm[5], out);
        g_node(g, "Mul", "mulsc", ins, nm[6]);
        snprintf(ins, sizeof ins, "%s,%s", nm[3], nm[6]);
        g_node(g, "Add", "bias", ins, gelu ? "pre_gelu" : nm[7]);
        if (gelu) build_gelu(g, 0, "pre_gelu", nm[7]);
        g_output(g, nm[7], SK_FLOAT);
    }
    free(w);
    free(z);
    free(ws);
    free(b);
}

static void test_qmatmul(void **state)
{
    (void)state;
    const struct { int n_mm, b_uint8, gelu; int64_t K, N; size_t fused; } cases[] = {
        { 1, 0, 0, 20, 33, 1 },  /* DynamicQuantizeMatMul + bias */
        { 1, 1, 1, 67, 70, 1 },  /* uint8 B, zero points per column, odd K, gelu */
        { 2, 0, 0, 64, 48, 3 },  /* shared DynamicQuantizeLinear: two MatMulIntegerToFloat */
        { 3, 1, 0, 300, 5, 4 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Onnx__GraphProto *g = graph_new();
        g_input(g, "x", SK_FLOAT);
        build_qmm(g, cases[i].n_mm, cases[i].K, cases[i].N, cases[i].b_uint8, cases[i].gelu);
        sk_model *m = model_of(g);
        const int64_t dx[] = { 1, 9, cases[i].K };
        sk_tensor x = rand_f32(3, dx, -3, 2);
        const char *names[] = { "x" };
        const sk_tensor *in[] = { &x };
        both r;
        run_both(m, 1, names, in, &r);
        assert_int_equal(r.steps_fused, cases[i].fused);
        assert_true(r.steps_plain >= 1 + 5 * (size_t)cases[i].n_mm);
        assert_same(&r);
        assert_int_equal(r.fallbacks, 0);
        both_free(&r);
        /* a 1-D x is off the fast path */
        const int64_t d1[] = { cases[i].K };
        sk_tensor x1 = rand_f32(1, d1, -3, 2);
        const sk_tensor *in1[] = { &x1 };
        run_both(m, 1, names, in1, &r);
        assert_same(&r);
        assert_true(r.fallbacks > 0);
        both_free(&r);
        sk_tensor_free(&x1);
        sk_tensor_free(&x);
        sk_model_free(m);
    }
}

/* ---- softmax ------------------------------------------------------------ */

static void test_softmax(void **state)
{
    (void)state;
    for (int form = 0; form < 4; form++) {
        Onnx__GraphProto *g = graph_new();
        g_input(g, "s", SK_FLOAT);
        g_input(g, "mask", SK_FLOAT);
        g_scalar(g, "zero", 0.0f);
        /* form 0: s + mask; 1: mask + s; 2: no Add; 3: axis 1 (not last) */
        if (form != 2) g_node(g, "Add", "add", form == 1 ? "mask,s" : "s,mask", "t");
        Onnx__NodeProto *sm = g_node(g, "Softmax", "softmax", form == 2 ? "s" : "t", "p");
        if (form == 3) assert_int_equal(sk_node_add_attr_int(sm, "axis", 1), SK_OK);
        g_node(g, "IsNaN", "isnan", "p", "n");
        g_node(g, "Where", "where", "n,zero,p", "y");
        g_output(g, "y", SK_FLOAT);
        if (form == 2) g_output(g, "mask", SK_FLOAT); /* keeps the input used */
        sk_model *m = model_of(g);
        const int64_t ds[] = { 2, 3, 5, 7 }, dm[] = { 2, 1, 5, 7 };
        sk_tensor s = rand_f32(4, ds, -5, 5), mask = rand_f32(4, dm, -1, 0);
        for (int j = 0; j < 7; j++) ((float *)mask.data)[7 + j] = -INFINITY; /* a fully masked row: NaN */
        ((float *)s.data)[3] = NAN;
        const char *names[] = { "s", "mask" };
        const sk_tensor *in[] = { &s, &mask };
        both r;
        run_both(m, 2, names, in, &r);
        assert_int_equal(r.steps_fused, 1);
        assert_same(&r);
        assert_int_equal(r.fallbacks, form == 3 ? 2 : 0);
        if (form == 0) { /* the masked rows came out as 0, not NaN */
            const float *y = r.fused[0].data;
            for (int j = 0; j < 7; j++) assert_true(y[7 + j] == 0.0f);
        }
        both_free(&r);
        /* the mask as the full operand, s broadcast */
        if (form < 2) {
            const int64_t d1[] = { 5, 7 };
            sk_tensor s1 = rand_f32(2, d1, -5, 5), m1 = rand_f32(4, ds, -1, 0);
            const sk_tensor *in1[] = { &s1, &m1 };
            run_both(m, 2, names, in1, &r);
            assert_same(&r);
            assert_int_equal(r.fallbacks, 0);
            both_free(&r);
            sk_tensor_free(&s1);
            sk_tensor_free(&m1);
        }
        sk_tensor_free(&s);
        sk_tensor_free(&mask);
        sk_model_free(m);
    }
}

/* ---- views -------------------------------------------------------------- */

/* Reshape, Unsqueeze, Squeeze and Flatten borrow their input's bytes: the
 * input must stay alive as long as the view. Abs runs after the Relu output's
 * last reader in the plain plan and would reuse its buffer if the engine freed
 * it too early. */
static void test_views(void **state)
{
    (void)state;
    Onnx__GraphProto *g = graph_new();
    g_input(g, "x", SK_FLOAT);
    g_input(g, "shape", SK_INT64);
    const int64_t d1[] = { 1 }, d2[] = { 2 };
    g_init(g, "ax0", SK_INT64, 1, d1, (const int64_t[]){ 0 });
    g_init(g, "ax02", SK_INT64, 1, d2, (const int64_t[]){ 0, -1 });
    g_node(g, "Relu", "relu", "x", "r");
    g_node(g, "Reshape", "reshape", "r,shape", "v1");
    g_node(g, "Unsqueeze", "unsq", "v1,ax02", "v2");
    g_node(g, "Squeeze", "sq", "v2,ax02", "v3");
    g_node(g, "Flatten", "flat", "v3", "v4");
    g_node(g, "Unsqueeze", "unsq2", "x,ax0", "xv"); /* a view of a graph input */
    g_node(g, "Abs", "abs", "x", "t");
    g_node(g, "Reshape", "reshape2", "t,shape", "t2");
    g_node(g, "Flatten", "flat2", "t2", "t3");
    g_node(g, "Add", "add", "v4,t3", "y");
    g_node(g, "Flatten", "flat3", "xv", "y2");
    g_output(g, "y", SK_FLOAT);
    g_output(g, "y2", SK_FLOAT);
    sk_model *m = model_of(g);
    const int64_t dx[] = { 4, 6 }, ds[] = { 3 };
    sk_tensor x = rand_f32(2, dx, -2, 2), sh = { 0 };
    assert_int_equal(sk_tensor_alloc(&sh, SK_INT64, 1, ds, NULL), SK_OK);
    memcpy(sh.data, (const int64_t[]){ 2, -1, 3 }, 24);
    const char *names[] = { "x", "shape" };
    const sk_tensor *in[] = { &x, &sh };
    both r;
    run_both(m, 2, names, in, &r);
    assert_int_equal(r.steps_plain, 11);
    assert_int_equal(r.steps_fused, 11); /* one step each, the views borrowing */
    assert_same(&r);
    assert_int_equal(r.fallbacks, 0);
    both_free(&r);
    /* a shape the Reshape kernel rejects: its message, from the fused plan too */
    memcpy(sh.data, (const int64_t[]){ 5, -1, 7 }, 24);
    run_both(m, 2, names, in, &r);
    assert_int_equal(r.s_fused, SK_EINVAL);
    assert_string_equal(r.e_fused.msg, r.e_plain.msg);
    assert_non_null(strstr(r.e_fused.msg, "node 'reshape' (Reshape)"));
    both_free(&r);
    sk_tensor_free(&sh);
    sk_tensor_free(&x);
    sk_model_free(m);
}

/* ---- hooks see the plain plan ---------------------------------------------- */

static sk_status count_hook(void *user, const char *name, const Onnx__NodeProto *producer, sk_tensor *t)
{
    (void)producer;
    (void)t;
    if (!strcmp(name, "y_g1")) ++*(int *)user;
    return SK_OK;
}

static void test_hook_sees_every_value(void **state)
{
    (void)state;
    Onnx__GraphProto *g = graph_new();
    g_input(g, "x", SK_FLOAT);
    gelu_consts(g);
    build_gelu(g, 0, "x", "y");
    g_output(g, "y", SK_FLOAT);
    sk_model *m = model_of(g);
    sk_engine *e;
    sk_error err;
    assert_int_equal(sk_engine_create(m, NULL, &e, &err), SK_OK);
    assert_int_equal(sk_engine_step_count(e, 1), 1);
    const int64_t d[] = { 8 };
    sk_tensor x = rand_f32(1, d, -3, 3), y = { 0 };
    const char *names[] = { "x" };
    const sk_tensor *in[] = { &x };
    int seen = 0;
    sk_engine_set_hook(e, count_hook, &seen);
    assert_int_equal(sk_engine_run(e, 1, names, in, &y, &err), SK_OK);
    assert_int_equal(seen, 1); /* the Erf output exists only in the plain plan */
    assert_int_equal(sk_engine_node_runs(e), 5);
    sk_engine_set_hook(e, NULL, NULL);
    assert_int_equal(sk_engine_run(e, 1, names, in, &y, &err), SK_OK);
    assert_int_equal(sk_engine_node_runs(e), 1);
    sk_tensor_free(&y);
    sk_tensor_free(&x);
    sk_engine_free(e);
    sk_model_free(m);
}

/* ---- the kernels the fused steps rely on -------------------------------------- */

/* sk_quantize_dynamic_u8 (vectorised, AVX-512 where the CPU has it) against
 * ONNX's formula written out in scalar C. */
static void test_dynamic_quantize(void **state)
{
    (void)state;
    const size_t sizes[] = { 1, 5, 16, 63, 64, 65, 1000, 4099, 9000 };
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t n = sizes[si];
        float *x = malloc(n * sizeof *x);
        uint8_t *y = malloc(n), *ref = malloc(n);
        for (size_t i = 0; i < n; i++) x[i] = frand(-4, 3);
        if (n > 20) {
            x[1] = -0.0f;
            x[2] = 0.0f;
            x[3] = NAN;
            /* the range is [-4, 3]; values (k + 0.5) * scale are ties, rounded to even */
            x[0] = -4.0f;
            x[n - 1] = 3.0f;
            const float s0 = (3.0f - -4.0f) / 255.0f;
            for (int k = 0; k < 8; k++) x[10 + k] = ((float)k + 0.5f) * s0;
            /* around ties, one ulp either side, positive and negative (the
             * fast path multiplies by 1 / scale and must divide here) */
            size_t at = 20;
            for (int k = 0; k < 254; k++) { /* every tie of the range [-4, 3], and 16 ulp around it */
                float lo_ = ((float)k - 144.5f) * s0, hi_ = lo_;
                for (int u = 0; u < 16; u++) {
                    lo_ = nextafterf(lo_, -INFINITY);
                    hi_ = nextafterf(hi_, INFINITY);
                }
                for (float t = lo_; t <= hi_ && at < n - 1; t = nextafterf(t, INFINITY)) x[at++] = t;
            }
        }
        float scale;
        uint8_t zp;
        sk_quantize_dynamic_u8(x, n, &scale, &zp, y);
        float mn = 0, mx = 0;
        for (size_t i = 0; i < n; i++) {
            if (x[i] < mn) mn = x[i];
            if (x[i] > mx) mx = x[i];
        }
        float s = (mx - mn) / 255.0f;
        float z = s != 0 ? nearbyintf(0.0f - mn / s) : 0.0f;
        z = z < 0 ? 0 : z > 255 ? 255 : z;
        assert_true(scale == s);
        assert_int_equal(zp, (uint8_t)z);
        for (size_t i = 0; i < n; i++) {
            float v = x[i] / s;
            float q = x[i] != x[i] ? 0 : nearbyintf(v) + z;
            ref[i] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
        }
        for (size_t i = 0; i < n; i++)
            if (y[i] != ref[i])
                fail_msg("n=%zu at %zu: x %.9g scale %.9g zp %d: %d, expected %d", n, i, x[i], scale, zp, y[i], ref[i]);
        free(x);
        free(y);
        free(ref);
    }
}

/* sk_qgemm_packed_run against the reference for odd shapes, both signs and
 * zero points, and after switching kernels under a pack. */
static void test_qgemm_packed(void **state)
{
    (void)state;
    const size_t Ms[] = { 1, 7, 20 }, Ks[] = { 1, 3, 4, 17, 67, 300 }, Ns[] = { 1, 5, 32, 33, 70, 300 };
    for (int variant = 0; variant < 2; variant++)
        for (size_t mi = 0; mi < 3; mi++)
            for (size_t ki = 0; ki < 6; ki++)
                for (size_t ni = 0; ni < 6; ni++) {
                    size_t M = Ms[mi], K = Ks[ki], N = Ns[ni];
                    int as = (int)((mi + ki) & 1), bs = (int)((ki + ni) & 1), zper = (int)(ni & 1);
                    uint8_t *a = malloc(M * K), *b = malloc(K * N);
                    int32_t *c = malloc(M * N * sizeof *c), *r = malloc(M * N * sizeof *r);
                    int32_t za = (int32_t)(as ? frand(-20, 20) : frand(0, 255)), *zb = malloc(N * sizeof *zb);
                    for (size_t i = 0; i < M * K; i++) a[i] = (uint8_t)(int)frand(0, 256);
                    for (size_t i = 0; i < K * N; i++) b[i] = (uint8_t)(int)frand(0, 256);
                    for (size_t i = 0; i < N; i++) zb[i] = (int32_t)(bs ? frand(-10, 10) : frand(100, 150));
                    int32_t *zkeep = malloc(N * sizeof *zkeep);
                    memcpy(zkeep, zb, N * sizeof *zb);
                    sk_qmat A = { a, K, as, &za, 1 }, B = { b, N, bs, zb, zper ? N : 1 };
                    sk_qgemm_packed *p;
                    sk_error err;
                    assert_int_equal(sk_qgemm_pack(K, N, &B, &p, &err), SK_OK);
                    memset(zb, 0x55, N * sizeof *zb); /* the pack keeps its own copy */
                    if (variant) assert_int_equal(sk_qgemm_select("generic"), 0); /* packed under another kernel */
                    assert_int_equal(sk_qgemm_packed_run(M, &A, p, c, N, &err), SK_OK);
                    sk_qgemm_select(NULL);
                    sk_qgemm_packed_free(p);
                    memcpy(zb, zkeep, N * sizeof *zb);
                    free(zkeep);
                    sk_qgemm_ref(M, N, K, &A, &B, r, N);
                    if (memcmp(c, r, M * N * sizeof *c))
                        fail_msg("M=%zu K=%zu N=%zu signed %d/%d per-column %d: packed differs", M, K, N, as, bs, zper);
                    free(a);
                    free(b);
                    free(c);
                    free(r);
                    free(zb);
                }
    sk_qgemm_packed_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_gelu_not_fused),
        cmocka_unit_test(test_matmul_epilogues),
        cmocka_unit_test(test_matmul_partial),
        cmocka_unit_test(test_matmul_error),
        cmocka_unit_test(test_qmatmul),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_hook_sees_every_value),
        cmocka_unit_test(test_dynamic_quantize),
        cmocka_unit_test(test_qgemm_packed),
    };
    return cmocka_run_group_tests_name("fuse", tests, NULL, NULL);
}
