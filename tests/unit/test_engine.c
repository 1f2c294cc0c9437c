/* The engine (lib/sk_engine.c) on small graphs built in memory, with a private
 * op table (domain "test") so the tests depend on no kernel but the control
 * ops; and the tensor files of lib/sk_npy.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sk_engine.h"
#include "sk_model.h"
#include "sk_npy.h"

/* ---- test ops --------------------------------------------------------- */

static char order_log[512];

static sk_status t_add(sk_op_ctx *ctx)
{
    const sk_tensor *a = ctx->in[0], *b = ctx->in[1];
    if (a->dtype != SK_FLOAT || b->dtype != SK_FLOAT) return sk_error_set(ctx->err, SK_EINVAL, "float only");
    if (a->numel != b->numel) return sk_error_set(ctx->err, SK_EINVAL, "shapes differ");
    sk_status s = sk_tensor_alloc(ctx->out[0], SK_FLOAT, a->rank, a->dims, ctx->err);
    if (s) return s;
    for (int64_t i = 0; i < a->numel; i++)
        ((float *)ctx->out[0]->data)[i] = ((const float *)a->data)[i] + ((const float *)b->data)[i];
    return SK_OK;
}

static sk_status t_relu(sk_op_ctx *ctx)
{
    const sk_tensor *a = ctx->in[0];
    sk_status s = sk_tensor_alloc(ctx->out[0], SK_FLOAT, a->rank, a->dims, ctx->err);
    if (s) return s;
    for (int64_t i = 0; i < a->numel; i++) {
        float v = ((const float *)a->data)[i];
        ((float *)ctx->out[0]->data)[i] = v > 0 ? v : 0;
    }
    return SK_OK;
}

static sk_status t_neg(sk_op_ctx *ctx)
{
    const sk_tensor *a = ctx->in[0];
    sk_status s = sk_tensor_alloc(ctx->out[0], SK_FLOAT, a->rank, a->dims, ctx->err);
    if (s) return s;
    for (int64_t i = 0; i < a->numel; i++) ((float *)ctx->out[0]->data)[i] = -((const float *)a->data)[i];
    return SK_OK;
}

/* Copies input 0 and appends the node's name to order_log. */
static sk_status t_log(sk_op_ctx *ctx)
{
    size_t l = strlen(order_log);
    snprintf(order_log + l, sizeof order_log - l, "%s%s", l ? "," : "", ctx->node->name);
    return sk_tensor_copy(ctx->out[0], ctx->in[0], ctx->err);
}

static sk_status t_fail(sk_op_ctx *ctx)
{
    return sk_error_set(ctx->err, SK_EINVAL, "boom");
}

/* Claims 10 elements but allocates 4. */
static sk_status t_bad(sk_op_ctx *ctx)
{
    int64_t d = 4;
    sk_status s = sk_tensor_alloc(ctx->out[0], SK_FLOAT, 1, &d, ctx->err);
    ctx->out[0]->numel = 10;
    return s;
}

/* Writes every one of its outputs, named or not (like Dropout's mask). */
static sk_status t_two(sk_op_ctx *ctx)
{
    for (size_t j = 0; j < ctx->n_out; j++) {
        sk_status s = sk_tensor_copy(ctx->out[j], ctx->in[0], ctx->err);
        if (s) return s;
    }
    return SK_OK;
}

static const sk_op_def test_ops[] = {
    { "test", "Add", 1, t_add },
    { "test", "Relu", 1, t_relu },
    { "test", "Neg", 1, t_neg },
    { "test", "Log", 1, t_log },
    { "test", "Fail", 1, t_fail },
    { "test", "Bad", 1, t_bad },
    { "test", "Two", 1, t_two },
    { NULL, NULL, 0, NULL },
};

static const sk_engine_opts test_opts = { .threads = 1, .extra_ops = test_ops };

/* ---- building graphs -------------------------------------------------- */

/* dims[i] < 0 with params[i] set: symbolic dim; dims NULL: no shape. */
static Onnx__ValueInfoProto *vi_new(const char *name, int dtype, int rank, const int64_t *dims,
                                    const char *const *params)
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
            Onnx__TensorShapeProto__Dimension *d = malloc(sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            if (params && params[i]) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = strdup(params[i]);
            } else if (dims && dims[i] >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            }
            sh->dim[i] = d;
        }
        v->type->tensor_type->shape = sh;
    }
    return v;
}

static Onnx__GraphProto *graph_new(const char *name)
{
    Onnx__GraphProto *g = malloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup(name);
    return g;
}

static void add_vi(size_t *n, Onnx__ValueInfoProto ***arr, Onnx__ValueInfoProto *v)
{
    *arr = realloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = v;
}

static void g_input(Onnx__GraphProto *g, const char *name, int dtype, int rank, const int64_t *dims,
                    const char *const *params)
{
    add_vi(&g->n_input, &g->input, vi_new(name, dtype, rank, dims, params));
}

static void g_output(Onnx__GraphProto *g, const char *name, int dtype)
{
    add_vi(&g->n_output, &g->output, vi_new(name, dtype, -1, NULL, NULL));
}

/* ins / outs: comma-separated names ("" entries allowed: "a,,b"). */
static size_t split(const char *s, char names[8][32], const char *ptrs[8])
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

static Onnx__NodeProto *g_node(Onnx__GraphProto *g, const char *op, const char *domain, const char *name,
                               const char *ins, const char *outs)
{
    char in_names[8][32], out_names[8][32];
    const char *ip[8], *op_[8];
    size_t ni = split(ins, in_names, ip), no = split(outs, out_names, op_);
    Onnx__NodeProto *n = sk_node_proto_new(op, domain, name, ni, ip, no, op_);
    assert_non_null(n);
    assert_int_equal(sk_graph_insert_node(g, SIZE_MAX, n), SK_OK);
    return n;
}

static void g_init_f32(Onnx__GraphProto *g, const char *name, int rank, const int64_t *dims, const float *v,
                       size_t nbytes)
{
    sk_tensor_proto *t = sk_tensor_proto_new(name, SK_FLOAT, 0, NULL, v, 4);
    assert_non_null(t);
    /* set dims by hand so a test can make them disagree with the data */
    free(t->dims);
    t->n_dims = (size_t)rank;
    t->dims = malloc(((size_t)rank + 1) * sizeof *t->dims);
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    free(t->raw_data.data);
    t->raw_data.data = malloc(nbytes ? nbytes : 1);
    memcpy(t->raw_data.data, v, nbytes);
    t->raw_data.len = nbytes;
    assert_int_equal(sk_graph_add_initializer(g, t), SK_OK);
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

static sk_tensor f32(int rank, const int64_t *dims, const float *v)
{
    sk_tensor t = { 0 };
    assert_int_equal(sk_tensor_alloc(&t, SK_FLOAT, rank, dims, NULL), SK_OK);
    if (v) memcpy(t.data, v, t.nbytes);
    return t;
}

static float at(const sk_tensor *t, int64_t i)
{
    return ((const float *)t->data)[i];
}

/* ---- tests ------------------------------------------------------------ */

/* Nodes listed out of order run in dependency order; a cycle is an error. */
static void test_order(void **state)
{
    (void)state;
    const int64_t d2[] = { 2 };
    Onnx__GraphProto *g = graph_new("order");
    g_input(g, "x", SK_FLOAT, 1, d2, NULL);
    g_node(g, "Log", "test", "C", "b", "y");
    g_node(g, "Log", "test", "A", "x", "a");
    g_node(g, "Log", "test", "B", "a", "b");
    g_output(g, "y", SK_FLOAT);
    sk_model *m = model_of(g);
    sk_engine *e;
    sk_error err;
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    sk_tensor x = f32(1, d2, (const float[]){ 1, 2 }), y = { 0 };
    const sk_tensor *in[] = { &x };
    const char *names[] = { "x" };
    order_log[0] = 0;
    assert_int_equal(sk_engine_run(e, 1, names, in, &y, &err), SK_OK);
    assert_string_equal(order_log, "A,B,C");
    assert_int_equal(sk_engine_node_runs(e), 3);
    assert_float_equal(at(&y, 1), 2, 0);
    sk_tensor_free(&y);
    sk_engine_free(e);
    sk_model_free(m);

    /* a -> b -> a */
    g = graph_new("cycle");
    g_input(g, "x", SK_FLOAT, 1, d2, NULL);
    g_node(g, "Add", "test", "P", "x,b", "a");
    g_node(g, "Relu", "test", "Q", "a", "b");
    g_output(g, "b", SK_FLOAT);
    m = model_of(g);
    err.msg[0] = 0;
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_EINVAL);
    assert_null(e);
    assert_non_null(strstr(err.msg, "cycle"));
    sk_model_free(m);
    sk_tensor_free(&x);
}

/* A chain x -> a -> b -> c -> y of 4000-byte tensors keeps at most two alive;
 * a value read by a later node stays alive until then. */
static void test_peak_memory(void **state)
{
    (void)state;
    const int64_t d[] = { 1000 };
    Onnx__GraphProto *g = graph_new("chain");
    g_input(g, "x", SK_FLOAT, 1, d, NULL);
    g_node(g, "Relu", "test", "r1", "x", "a");
    g_node(g, "Relu", "test", "r2", "a", "b");
    g_node(g, "Relu", "test", "r3", "b", "c");
    g_node(g, "Relu", "test", "r4", "c", "y");
    g_output(g, "y", SK_FLOAT);
    sk_model *m = model_of(g);
    sk_engine *e;
    sk_error err;
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    sk_tensor x = f32(1, d, NULL), y = { 0 };
    for (int i = 0; i < 1000; i++) ((float *)x.data)[i] = (float)(i % 7) - 3;
    const sk_tensor *in[] = { &x };
    const char *names[] = { "x" };
    assert_int_equal(sk_engine_run(e, 1, names, in, &y, &err), SK_OK);
    assert_int_equal(sk_engine_peak_bytes(e), 8000);
    assert_float_equal(at(&y, 0), 0, 0);
    assert_float_equal(at(&y, 6), 3, 0);
    sk_tensor_free(&y);
    sk_engine_free(e);
    sk_model_free(m);

    /* a is read by the last node: a, b, c, y alive at the end */
    g = graph_new("fan");
    g_input(g, "x", SK_FLOAT, 1, d, NULL);
    g_node(g, "Relu", "test", "r1", "x", "a");
    g_node(g, "Relu", "test", "r2", "a", "b");
    g_node(g, "Relu", "test", "r3", "b", "c");
    g_node(g, "Add", "test", "r4", "c,a", "y");
    g_output(g, "y", SK_FLOAT);
    m = model_of(g);
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    assert_int_equal(sk_engine_run(e, 1, names, in, &y, &err), SK_OK);
    assert_int_equal(sk_engine_peak_bytes(e), 12000);
    assert_float_equal(at(&y, 6), 6, 0);
    sk_tensor_free(&y);
    sk_engine_free(e);
    sk_model_free(m);
    sk_tensor_free(&x);
}

typedef struct hook_state {
    int calls;
    char names[256];
    int replace;
} hook_state;

static sk_status hook(void *user, const char *value_name, const Onnx__NodeProto *producer, sk_tensor *t)
{
    hook_state *hs = user;
    hs->calls++;
    size_t l = strlen(hs->names);
    snprintf(hs->names + l, sizeof hs->names - l, "%s%s<%s", l ? "," : "", value_name, producer->name);
    if (hs->replace && !strcmp(value_name, "a")) {
        /* a new, larger tensor: later nodes must see it */
        int64_t d = 3;
        sk_status s = sk_tensor_alloc(t, SK_FLOAT, 1, &d, NULL);
        if (s) return s;
        for (int i = 0; i < 3; i++) ((float *)t->data)[i] = 10.0f + (float)i;
    }
    if (hs->replace == 2 && !strcmp(value_name, "y")) return SK_EINVAL;
    return SK_OK;
}

static void test_hook(void **state)
{
    (void)state;
    const int64_t d2[] = { 2 };
    Onnx__GraphProto *g = graph_new("hook");
    g_input(g, "x", SK_FLOAT, 1, d2, NULL);
    g_node(g, "Neg", "test", "n1", "x", "a");
    g_node(g, "Relu", "test", "n2", "a", "y");
    g_output(g, "y", SK_FLOAT);
    sk_model *m = model_of(g);
    sk_engine *e;
    sk_error err;
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    sk_tensor x = f32(1, d2, (const float[]){ 1, -2 }), y = { 0 };
    const sk_tensor *in[] = { &x };
    const char *names[] = { "x" };

    hook_state hs = { 0 };
    sk_engine_set_hook(e, hook, &hs);
    assert_int_equal(sk_engine_run(e, 1, names, in, &y, &err), SK_OK);
    assert_int_equal(hs.calls, 2);
    assert_string_equal(hs.names, "a<n1,y<n2");
    assert_int_equal(y.numel, 2);
    assert_float_equal(at(&y, 0), 0, 0);
    assert_float_equal(at(&y, 1), 2, 0);

    hs = (hook_state){ .replace = 1 };
    assert_int_equal(sk_engine_run(e, 1, names, in, &y, &err), SK_OK);
    assert_int_equal(y.numel, 3);
    assert_float_equal(at(&y, 2), 12, 0);

    /* a failing hook stops the run, naming the value; outputs stay empty */
    hs = (hook_state){ .replace = 2 };
    err.msg[0] = 0;
    assert_int_equal(sk_engine_run(e, 1, names, in, &y, &err), SK_EINVAL);
    assert_string_equal(err.msg, "node 'n2' (Relu): value 'y': the hook failed (invalid input)");
    assert_null(y.data);

    sk_engine_set_hook(e, NULL, NULL);
    sk_engine_free(e);
    sk_model_free(m);
    sk_tensor_free(&x);
}

/* A missing op is reported at create (op, domain, node), before any node runs. */
static void test_missing_op(void **state)
{
    (void)state;
    const int64_t d2[] = { 2 };
    Onnx__GraphProto *g = graph_new("missing");
    g_input(g, "x", SK_FLOAT, 1, d2, NULL);
    g_node(g, "Log", "test", "first", "x", "a");
    g_node(g, "NoSuchOp", "", "the_node", "a", "b");
    g_node(g, "Frob", "com.example", "other", "b", "y");
    g_output(g, "y", SK_FLOAT);
    sk_model *m = model_of(g);
    sk_engine *e = (sk_engine *)1;
    sk_error err = { 0 };
    order_log[0] = 0;
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_EUNSUPPORTED);
    assert_null(e);
    assert_non_null(strstr(err.msg, "NoSuchOp"));
    assert_non_null(strstr(err.msg, "ai.onnx"));
    assert_non_null(strstr(err.msg, "the_node"));
    assert_non_null(strstr(err.msg, "1 more"));
    assert_string_equal(order_log, "");
    assert_false(sk_engine_op_supported(&test_opts, "", "NoSuchOp", 17));
    assert_true(sk_engine_op_supported(&test_opts, "test", "Log", 1));
    assert_true(sk_engine_op_supported(NULL, "ai.onnx", "If", 17));
    assert_true(sk_engine_op_supported(NULL, "", "Constant", 1));
    sk_model_free(m);
}

/* Inputs are checked against the declared types; symbolic dims must agree. */
static void test_input_checks(void **state)
{
    (void)state;
    const int64_t dx[] = { 2, -1 };
    const char *px[] = { NULL, "N" };
    const char *pz[] = { "N" };
    Onnx__GraphProto *g = graph_new("inputs");
    g_input(g, "x", SK_FLOAT, 2, dx, px);
    g_input(g, "z", SK_FLOAT, 1, NULL, pz);
    g_node(g, "Relu", "test", "r", "x", "y");
    g_node(g, "Relu", "test", "r2", "z", "w");
    g_output(g, "y", SK_FLOAT);
    g_output(g, "w", SK_FLOAT);
    sk_model *m = model_of(g);
    sk_engine *e;
    sk_error err;
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    assert_int_equal(sk_engine_input_count(e), 2);
    assert_string_equal(sk_engine_input_name(e, 1), "z");
    int dt, rank;
    int64_t dims[SK_TENSOR_MAX_RANK];
    sk_engine_input_info(e, 0, &dt, &rank, dims);
    assert_int_equal(dt, SK_FLOAT);
    assert_int_equal(rank, 2);
    assert_int_equal(dims[0], 2);
    assert_int_equal(dims[1], -1);
    assert_int_equal(sk_engine_output_count(e), 2);
    assert_string_equal(sk_engine_output_name(e, 1), "w");

    const int64_t s23[] = { 2, 3 }, s33[] = { 3, 3 }, s3[] = { 3 }, s4[] = { 4 }, s6[] = { 6 };
    sk_tensor x = f32(2, s23, NULL), z = f32(1, s3, NULL), out[2] = { { 0 } };
    sk_tensor xi = { 0 }, x33 = f32(2, s33, NULL), x6 = f32(1, s6, NULL), z4 = f32(1, s4, NULL);
    assert_int_equal(sk_tensor_alloc(&xi, SK_INT64, 2, s23, NULL), SK_OK);
    const char *names[] = { "x", "z" };
    const sk_tensor *ok[] = { &x, &z };
    assert_int_equal(sk_engine_run(e, 2, names, ok, out, &err), SK_OK);
    assert_int_equal(out[0].rank, 2);
    assert_int_equal(out[1].numel, 3);

    struct { const sk_tensor *x, *z; const char *msg; } bad[] = {
        { &xi, &z, "int64 but the model declares float32" },
        { &x6, &z, "rank 1" },
        { &x33, &z, "dim 0 to be 2" },
        { &x, &z4, "'N'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const sk_tensor *in[] = { bad[i].x, bad[i].z };
        err.msg[0] = 0;
        assert_int_equal(sk_engine_run(e, 2, names, in, out, &err), SK_EINVAL);
        assert_non_null(strstr(err.msg, bad[i].msg));
        assert_null(out[0].data);
    }
    /* missing, unknown and repeated inputs */
    err.msg[0] = 0;
    assert_int_equal(sk_engine_run(e, 1, names, ok, out, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "missing model input 'z'"));
    const char *unk[] = { "x", "nope" };
    assert_int_equal(sk_engine_run(e, 2, unk, ok, out, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "'nope'"));
    const char *twice[] = { "x", "x" };
    assert_int_equal(sk_engine_run(e, 2, twice, ok, out, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "twice"));
    sk_tensor broken = x;
    broken.numel = 99;
    const sk_tensor *bi[] = { &broken, &z };
    assert_int_equal(sk_engine_run(e, 2, names, bi, out, &err), SK_EINVAL);

    sk_tensor_free(&x);
    sk_tensor_free(&z);
    sk_tensor_free(&xi);
    sk_tensor_free(&x33);
    sk_tensor_free(&x6);
    sk_tensor_free(&z4);
    sk_engine_free(e);
    sk_model_free(m);
}

/* Data that disagrees with shapes is an error, never an out-of-bounds read. */
static void test_bad_shapes(void **state)
{
    (void)state;
    const int64_t d2[] = { 2 }, d4[] = { 4 };
    /* initializer claims [4] floats but holds 8 bytes */
    Onnx__GraphProto *g = graph_new("short");
    g_input(g, "x", SK_FLOAT, 1, d4, NULL);
    g_init_f32(g, "w", 1, d4, (const float[]){ 1, 2 }, 8);
    g_node(g, "Add", "test", "add", "x,w", "y");
    g_output(g, "y", SK_FLOAT);
    sk_model *m = model_of(g);
    sk_engine *e;
    sk_error err = { 0 };
    assert_int_not_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    assert_null(e);
    assert_non_null(strstr(err.msg, "'w'"));
    sk_model_free(m);

    /* a kernel that finds its inputs' shapes disagree: error wrapped with node and op */
    g = graph_new("mismatch");
    g_input(g, "x", SK_FLOAT, 1, d4, NULL);
    g_init_f32(g, "w", 1, d2, (const float[]){ 1, 2 }, 8);
    g_node(g, "Add", "test", "add", "x,w", "y");
    g_output(g, "y", SK_FLOAT);
    m = model_of(g);
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    sk_tensor x = f32(1, d4, NULL), y = { 0 };
    const sk_tensor *in[] = { &x };
    const char *names[] = { "x" };
    assert_int_equal(sk_engine_run(e, 1, names, in, &y, &err), SK_EINVAL);
    assert_string_equal(err.msg, "node 'add' (Add): shapes differ");
    sk_engine_free(e);
    sk_model_free(m);

    /* a failing op and an op producing an inconsistent tensor */
    g = graph_new("fail");
    g_input(g, "x", SK_FLOAT, 1, d4, NULL);
    g_node(g, "Fail", "test", "", "x", "y");
    g_output(g, "y", SK_FLOAT);
    m = model_of(g);
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    assert_int_equal(sk_engine_run(e, 1, names, in, &y, &err), SK_EINVAL);
    assert_string_equal(err.msg, "node 'Fail #0' (Fail): boom");
    sk_engine_free(e);
    sk_model_free(m);

    g = graph_new("bad");
    g_input(g, "x", SK_FLOAT, 1, d4, NULL);
    g_node(g, "Bad", "test", "b", "x", "y");
    g_output(g, "y", SK_FLOAT);
    m = model_of(g);
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    assert_int_equal(sk_engine_run(e, 1, names, in, &y, &err), SK_EINTERNAL);
    assert_non_null(strstr(err.msg, "inconsistent"));
    sk_engine_free(e);
    sk_model_free(m);

    /* an output declared float32 that comes out int64 */
    g = graph_new("dtype");
    g_input(g, "x", SK_INT64, 1, d4, NULL);
    g_node(g, "Log", "test", "l", "x", "y");
    g_output(g, "y", SK_FLOAT);
    m = model_of(g);
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    sk_tensor xi = { 0 };
    assert_int_equal(sk_tensor_alloc(&xi, SK_INT64, 1, d4, NULL), SK_OK);
    const sk_tensor *ini[] = { &xi };
    assert_int_equal(sk_engine_run(e, 1, names, ini, &y, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "declares float32"));
    sk_tensor_free(&xi);
    sk_engine_free(e);
    sk_model_free(m);

    /* undefined input names and duplicate producers */
    g = graph_new("undefined");
    g_input(g, "x", SK_FLOAT, 1, d4, NULL);
    g_node(g, "Add", "test", "add", "x,ghost", "y");
    g_output(g, "y", SK_FLOAT);
    m = model_of(g);
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "'ghost'"));
    sk_model_free(m);
    g = graph_new("dup");
    g_input(g, "x", SK_FLOAT, 1, d4, NULL);
    g_node(g, "Relu", "test", "r1", "x", "y");
    g_node(g, "Relu", "test", "r2", "x", "y");
    g_output(g, "y", SK_FLOAT);
    m = model_of(g);
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "already defined"));
    sk_model_free(m);
    sk_tensor_free(&x);
}

/* Constants, initializers as inputs' defaults, outputs that are inputs or
 * initializers or listed twice, unnamed optional outputs. */
static void test_values(void **state)
{
    (void)state;
    const int64_t d2[] = { 2 };
    Onnx__GraphProto *g = graph_new("values");
    g_input(g, "x", SK_FLOAT, 1, d2, NULL);
    g_input(g, "bias", SK_FLOAT, 1, d2, NULL);
    g_init_f32(g, "bias", 1, d2, (const float[]){ 100, 200 }, 8);
    g_init_f32(g, "w", 1, d2, (const float[]){ 5, 6 }, 8);
    Onnx__NodeProto *c = g_node(g, "Constant", "", "k", NULL, "kv");
    sk_node_add_attr_float(c, "value_float", 0.5f);
    Onnx__NodeProto *c2 = g_node(g, "Constant", "", "k2", NULL, "kv2");
    int64_t iv[] = { 3, 4 };
    sk_node_add_attr_ints(c2, "value_ints", 2, iv);
    g_node(g, "Add", "test", "a1", "x,bias", "s");
    g_node(g, "Two", "test", "t", "s", "s2,");
    g_output(g, "s2", SK_FLOAT);
    g_output(g, "x", SK_FLOAT);
    g_output(g, "w", SK_FLOAT);
    g_output(g, "s2", SK_FLOAT);
    g_output(g, "kv", SK_FLOAT);
    g_output(g, "kv2", SK_INT64);
    sk_model *m = model_of(g);
    sk_engine *e;
    sk_error err;
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    assert_int_equal(sk_engine_input_count(e), 1); /* bias has a default */
    assert_int_equal(sk_engine_input_find(e, "bias"), 1);
    sk_tensor x = f32(1, d2, (const float[]){ 1, 2 }), out[6] = { { 0 } };
    const sk_tensor *in[] = { &x };
    const char *names[] = { "x" };
    assert_int_equal(sk_engine_run(e, 1, names, in, out, &err), SK_OK);
    assert_float_equal(at(&out[0], 1), 202, 0);
    assert_float_equal(at(&out[1], 0), 1, 0);
    assert_ptr_not_equal(out[1].data, x.data);
    assert_float_equal(at(&out[2], 1), 6, 0);
    assert_true(out[2].owned);
    assert_ptr_not_equal(out[3].data, out[0].data);
    assert_float_equal(at(&out[3], 0), 101, 0);
    assert_int_equal(out[4].rank, 0);
    assert_float_equal(at(&out[4], 0), 0.5, 0);
    assert_int_equal(out[5].dtype, SK_INT64);
    assert_int_equal(((int64_t *)out[5].data)[1], 4);

    /* override the initializer-backed input */
    sk_tensor b = f32(1, d2, (const float[]){ -1, -1 });
    const sk_tensor *in2[] = { &b, &x };
    const char *names2[] = { "bias", "x" };
    assert_int_equal(sk_engine_run(e, 2, names2, in2, out, &err), SK_OK);
    assert_float_equal(at(&out[0], 1), 1, 0);
    for (int i = 0; i < 6; i++) sk_tensor_free(&out[i]);
    sk_tensor_free(&x);
    sk_tensor_free(&b);
    sk_engine_free(e);
    sk_model_free(m);
}

/* If whose branches read an outer value that nothing else reads (it must
 * stay alive until the If runs), inside a Loop. */
static void test_subgraphs(void **state)
{
    (void)state;
    const int64_t d2[] = { 2 };
    Onnx__GraphProto *then_g = graph_new("then");
    g_node(then_g, "Relu", "test", "tr", "hidden", "t_out");
    g_output(then_g, "t_out", SK_FLOAT);
    Onnx__GraphProto *else_g = graph_new("else");
    g_node(else_g, "Neg", "test", "en", "hidden", "e_out");
    g_output(else_g, "e_out", SK_FLOAT);

    Onnx__GraphProto *g = graph_new("main");
    g_input(g, "x", SK_FLOAT, 1, d2, NULL);
    g_input(g, "c", SK_BOOL, 0, NULL, NULL);
    g_node(g, "Neg", "test", "n", "x", "hidden");
    Onnx__NodeProto *nif = g_node(g, "If", "", "the_if", "c", "y");
    g_output(g, "y", SK_FLOAT);
    nif->attribute = calloc(2, sizeof *nif->attribute);
    for (int i = 0; i < 2; i++) {
        Onnx__AttributeProto *a = malloc(sizeof *a);
        onnx__attribute_proto__init(a);
        a->name = strdup(i ? "else_branch" : "then_branch");
        a->has_type = 1;
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
        a->g = i ? else_g : then_g;
        nif->attribute[nif->n_attribute++] = a;
    }
    sk_model *m = model_of(g);
    sk_engine *e;
    sk_error err;
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_OK);
    sk_tensor x = f32(1, d2, (const float[]){ 3, -4 }), c = { 0 }, y = { 0 };
    assert_int_equal(sk_tensor_alloc(&c, SK_BOOL, 0, NULL, NULL), SK_OK);
    const sk_tensor *in[] = { &x, &c };
    const char *names[] = { "x", "c" };
    ((uint8_t *)c.data)[0] = 1;
    assert_int_equal(sk_engine_run(e, 2, names, in, &y, &err), SK_OK);
    assert_float_equal(at(&y, 0), 0, 0);
    assert_float_equal(at(&y, 1), 4, 0);
    assert_int_equal(sk_engine_node_runs(e), 3);
    ((uint8_t *)c.data)[0] = 0;
    assert_int_equal(sk_engine_run(e, 2, names, in, &y, &err), SK_OK);
    assert_float_equal(at(&y, 0), 3, 0);
    assert_float_equal(at(&y, 1), -4, 0);
    sk_tensor_free(&y);
    sk_engine_free(e);
    sk_model_free(m);

    /* a missing op inside a branch is found at create */
    then_g = graph_new("then");
    g_node(then_g, "Nope", "", "inner", "x", "t_out");
    g_output(then_g, "t_out", SK_FLOAT);
    g = graph_new("main");
    g_input(g, "x", SK_FLOAT, 1, d2, NULL);
    g_input(g, "c", SK_BOOL, 0, NULL, NULL);
    nif = g_node(g, "If", "", "if2", "c", "y");
    g_output(g, "y", SK_FLOAT);
    nif->attribute = calloc(1, sizeof *nif->attribute);
    Onnx__AttributeProto *a = malloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = strdup("then_branch");
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    a->g = then_g;
    nif->attribute[nif->n_attribute++] = a;
    m = model_of(g);
    assert_int_equal(sk_engine_create(m, &test_opts, &e, &err), SK_EUNSUPPORTED);
    assert_string_equal(err.msg, "node 'if2' (If), attribute then_branch: node 'inner' (Nope): op Nope of domain "
                                 "'ai.onnx' (opset 17) is not implemented");
    sk_model_free(m);
    sk_tensor_free(&x);
    sk_tensor_free(&c);
}

/* Scan with a state and a scan output, from ONNX's node tests
 * when they are installed (the If/Loop/Scan kernels are run by conformance.sh
 * on all of them). */
static void test_scan_node_test(void **state)
{
    (void)state;
    const char *dir = "/usr/share/libonnx-testdata/data/node/test_scan9_sum";
    char path[512];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (access(path, R_OK)) {
        print_message("skipped: %s is not installed\n", path);
        skip();
    }
    sk_model *m;
    sk_error err;
    assert_int_equal(sk_model_load(path, NULL, &m, &err), SK_OK);
    sk_engine *e;
    sk_engine_opts o = test_opts;
    o.profile = 1;
    if (sk_engine_create(m, &o, &e, &err) == SK_EUNSUPPORTED) { /* Add not implemented yet */
        print_message("skipped: %s\n", err.msg);
        sk_model_free(m);
        skip();
    }
    sk_tensor in[2], want[2], out[2] = { { 0 } };
    const char *names[2];
    for (int i = 0; i < 2; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/test_data_set_0/input_%d.pb", dir, i);
        assert_int_equal(sk_npy_load_pb(p, &in[i], NULL, &err), SK_OK);
        snprintf(p, sizeof p, "%s/test_data_set_0/output_%d.pb", dir, i);
        assert_int_equal(sk_npy_load_pb(p, &want[i], NULL, &err), SK_OK);
        names[i] = sk_engine_input_name(e, (size_t)i);
    }
    const sk_tensor *ip[] = { &in[0], &in[1] };
    assert_int_equal(sk_engine_run(e, 2, names, ip, out, &err), SK_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(out[i].nbytes, want[i].nbytes);
        assert_memory_equal(out[i].data, want[i].data, want[i].nbytes);
        sk_tensor_free(&in[i]);
        sk_tensor_free(&want[i]);
        sk_tensor_free(&out[i]);
    }
    sk_engine_free(e);
    sk_model_free(m);
}

/* ---- tensor files ----------------------------------------------------- */

static char tmpdir[128];

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-test-engine-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A .npy file: magic, version, header dict padded with spaces and '\n'. */
static size_t npy_buf(int version, const char *dict, const void *data, size_t data_len, uint8_t *buf)
{
    size_t pre = version == 1 ? 10 : 12, dl = strlen(dict);
    size_t hl = dl + 1 + (64 - (pre + dl + 1) % 64) % 64;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)version;
    buf[7] = 0;
    buf[8] = (uint8_t)hl;
    buf[9] = (uint8_t)(hl >> 8);
    if (version > 1) buf[10] = buf[11] = 0;
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', hl - dl - 1);
    buf[pre + hl - 1] = '\n';
    memcpy(buf + pre + hl, data, data_len);
    return pre + hl + data_len;
}

static void test_npy_roundtrip(void **state)
{
    (void)state;
    const int dts[] = { SK_FLOAT, SK_FLOAT16, SK_DOUBLE, SK_INT8, SK_INT16, SK_INT32, SK_INT64,
                        SK_UINT8, SK_UINT16, SK_UINT32, SK_UINT64, SK_BOOL };
    const int64_t shapes[][3] = { { 2, 3, 5 }, { 7, 0, 0 }, { 0, 0, 0 } };
    const int ranks[] = { 3, 1, 0 };
    char path[256];
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        for (size_t s = 0; s < 3; s++) {
            sk_tensor t = { 0 }, r = { 0 };
            sk_error err;
            assert_int_equal(sk_tensor_alloc(&t, dts[i], ranks[s], shapes[s], NULL), SK_OK);
            for (size_t b = 0; b < t.nbytes; b++) ((uint8_t *)t.data)[b] = dts[i] == SK_BOOL ? b & 1 : (uint8_t)(b * 37 + 1);
            snprintf(path, sizeof path, "%s/t.npy", tmpdir);
            assert_int_equal(sk_npy_save(path, &t, &err), SK_OK);
            assert_int_equal(sk_npy_load(path, &r, &err), SK_OK);
            assert_int_equal(r.dtype, t.dtype);
            assert_int_equal(r.rank, t.rank);
            assert_memory_equal(r.dims, t.dims, (size_t)t.rank * sizeof t.dims[0]);
            assert_memory_equal(r.data, t.data, t.nbytes);
            sk_tensor_free(&r);
            char *name = NULL;
            snprintf(path, sizeof path, "%s/t.pb", tmpdir);
            assert_int_equal(sk_npy_save_pb(path, &t, "tname", &err), SK_OK);
            assert_int_equal(sk_npy_load_any(path, &r, &name, &err), SK_OK);
            assert_string_equal(name, "tname");
            free(name);
            assert_int_equal(r.dtype, t.dtype);
            assert_memory_equal(r.data, t.data, t.nbytes);
            sk_tensor_free(&r);
            sk_tensor_free(&t);
        }
    }
    /* numpy's own header layouts: version 1 and 2, double quotes, no spaces */
    uint8_t buf[256];
    int32_t vals[2] = { 7, -9 };
    size_t len = npy_buf(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", vals, 8, buf);
    sk_tensor r = { 0 };
    sk_error err;
    assert_int_equal(sk_npy_parse(buf, len, "v1", &r, &err), SK_OK);
    assert_int_equal(r.dtype, SK_INT32);
    assert_int_equal(((int32_t *)r.data)[1], -9);
    sk_tensor_free(&r);
    len = npy_buf(2, "{\"descr\":\"|u1\",\"fortran_order\":False,\"shape\":(1, 3)}", "\x01\x02\x03", 3, buf);
    assert_int_equal(sk_npy_parse(buf, len, "v2", &r, &err), SK_OK);
    assert_int_equal(r.rank, 2);
    assert_int_equal(r.dims[1], 3);
    assert_int_equal(((uint8_t *)r.data)[2], 3);
    sk_tensor_free(&r);
}

static sk_status parse_hdr(const char *dict, size_t data_len, sk_error *err)
{
    uint8_t buf[600];
    size_t dl = strlen(dict);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)dl;
    buf[9] = (uint8_t)(dl >> 8);
    memcpy(buf + 10, dict, dl);
    memset(buf + 10 + dl, 0, data_len);
    sk_tensor t;
    sk_status s = sk_npy_parse(buf, 10 + dl + data_len, "bad.npy", &t, err);
    if (!s) sk_tensor_free(&t);
    return s;
}

static void test_npy_bad(void **state)
{
    (void)state;
    sk_error err;
    struct { const char *dict; size_t data; sk_status want; const char *msg; } cases[] = {
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, SK_OK, NULL },
        { "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, SK_EUNSUPPORTED, "Fortran" },
        { "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, SK_EUNSUPPORTED, "big-endian" },
        { "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16, SK_EUNSUPPORTED, "object" },
        { "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", 24, SK_EUNSUPPORTED, "dtype" },
        { "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, SK_EUNSUPPORTED, "structured" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8, SK_EINVAL, "needs 12" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 8, SK_EINVAL, "needs 4" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0, SK_EINVAL, "overflows" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0, SK_EINVAL, "too large" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), }", 4, SK_EINVAL,
          "dimensions" },
        { "{'descr': '<f4', 'shape': (1,), }", 4, SK_EINVAL, "lacks" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4, SK_EINVAL, "unexpected key" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 4, SK_EINVAL, "malformed" },
        { "{'descr': '<f4' 'fortran_order': False}", 4, SK_EINVAL, "malformed" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", 4, SK_EINVAL, "malformed" },
        { "{'descr", 0, SK_EINVAL, "malformed" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err.msg[0] = 0;
        sk_status s = parse_hdr(cases[i].dict, cases[i].data, &err);
        if (s != cases[i].want) fail_msg("case %zu: status %d, want %d (%s)", i, s, cases[i].want, err.msg);
        if (cases[i].msg && !strstr(err.msg, cases[i].msg)) fail_msg("case %zu: message '%s'", i, err.msg);
        if (cases[i].msg) assert_non_null(strstr(err.msg, "bad.npy"));
    }
    /* truncated files and bad magic / versions */
    sk_tensor t;
    assert_int_equal(sk_npy_parse("\x93NUMPY\x01\x00\xff\x00{", 11, "x", &t, &err), SK_EINVAL);
    assert_int_equal(sk_npy_parse("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12, "x", &t, &err), SK_EINVAL);
    assert_int_equal(sk_npy_parse("\x93NUMPX\x01\x00\x00\x00", 10, "x", &t, &err), SK_EINVAL);
    assert_int_equal(sk_npy_parse("\x93NUMPY\x09\x00\x00\x00", 10, "x", &t, &err), SK_EUNSUPPORTED);
    assert_int_equal(sk_npy_parse("\x93NUMPY", 6, "x", &t, &err), SK_EINVAL);
    /* every prefix of a valid file fails cleanly */
    sk_tensor v = { 0 };
    int64_t d = 3;
    uint8_t *buf;
    size_t len;
    assert_int_equal(sk_tensor_alloc(&v, SK_INT16, 1, &d, NULL), SK_OK);
    assert_int_equal(sk_npy_format(&v, &buf, &len, &err), SK_OK);
    assert_int_equal((len - 6) % 64, 0); /* data starts 64-byte aligned, as numpy does */
    for (size_t l = 0; l < len; l++) assert_int_not_equal(sk_npy_parse(buf, l, "x", &t, &err), SK_OK);
    assert_int_equal(sk_npy_parse(buf, len, "x", &t, &err), SK_OK);
    sk_tensor_free(&t);
    /* random byte changes in the header: an error or a consistent tensor */
    uint8_t *mut = malloc(len);
    uint32_t rng = 12345;
    for (int it = 0; it < 20000; it++) {
        memcpy(mut, buf, len);
        for (int k = 0; k < 3; k++) {
            rng = rng * 1103515245u + 12345u;
            size_t pos = (rng >> 8) % 64;
            rng = rng * 1103515245u + 12345u;
            static const char alphabet[] = "0123456789(),: '<>|fiub\"{}TrueFals\x00\xff";
            mut[pos] = (uint8_t)alphabet[(rng >> 8) % (sizeof alphabet - 1)];
        }
        if (sk_npy_parse(mut, len, "m", &t, &err) == SK_OK) {
            assert_int_equal(sk_dtype_nbytes(t.dtype, t.numel), (int64_t)t.nbytes);
            assert_true(t.nbytes <= len);
            sk_tensor_free(&t);
        }
    }
    free(mut);
    free(buf);
    sk_tensor_free(&v);
    /* no numpy dtype */
    assert_int_equal(sk_tensor_alloc(&v, SK_BFLOAT16, 1, &d, NULL), SK_OK);
    assert_int_equal(sk_npy_format(&v, &buf, &len, &err), SK_EUNSUPPORTED);
    sk_tensor_free(&v);
    assert_int_equal(sk_npy_load("/nonexistent/x.npy", &t, &err), SK_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/x.npy"));
}

static void test_pb_typed(void **state)
{
    (void)state;
    sk_error err;
    sk_tensor t;
    Onnx__TensorProto tp;
    int64_t dims[] = { 3 };
    /* float16 in int32_data, int4 packed two per entry, uint32 in uint64_data */
    int32_t h[] = { 0x3c00, 0xc000, 0x0000 };
    onnx__tensor_proto__init(&tp);
    tp.n_dims = 1;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = SK_FLOAT16;
    tp.n_int32_data = 3;
    tp.int32_data = h;
    assert_int_equal(sk_npy_from_proto(&tp, NULL, &t, &err), SK_OK);
    assert_float_equal(sk_tensor_get_f64(&t, 1), -2, 0);
    sk_tensor_free(&t);
    int32_t q[] = { 0x9f, 0x05 };
    tp.data_type = SK_INT4;
    tp.n_int32_data = 2;
    tp.int32_data = q;
    assert_int_equal(sk_npy_from_proto(&tp, NULL, &t, &err), SK_OK);
    assert_int_equal(sk_tensor_get_i64(&t, 0), -1);
    assert_int_equal(sk_tensor_get_i64(&t, 1), -7);
    assert_int_equal(sk_tensor_get_i64(&t, 2), 5);
    sk_tensor_free(&t);
    tp.n_int32_data = 3; /* wrong count */
    assert_int_equal(sk_npy_from_proto(&tp, "q", &t, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "needs 2"));
    uint64_t u[] = { 1, 4000000000u, 3 };
    tp.n_int32_data = 0;
    tp.data_type = SK_UINT32;
    tp.n_uint64_data = 3;
    tp.uint64_data = u;
    assert_int_equal(sk_npy_from_proto(&tp, NULL, &t, &err), SK_OK);
    assert_int_equal(((uint32_t *)t.data)[1], 4000000000u);
    sk_tensor_free(&t);
    /* raw data of the wrong length, bad dtype, negative dim */
    tp.n_uint64_data = 0;
    tp.data_type = SK_FLOAT;
    tp.has_raw_data = 1;
    tp.raw_data.len = 8;
    tp.raw_data.data = (uint8_t *)"12345678";
    assert_int_equal(sk_npy_from_proto(&tp, "r", &t, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "raw_data"));
    tp.data_type = 99;
    assert_int_equal(sk_npy_from_proto(&tp, "r", &t, &err), SK_EINVAL);
    tp.data_type = SK_FLOAT;
    dims[0] = -2;
    assert_int_equal(sk_npy_from_proto(&tp, "r", &t, &err), SK_EINVAL);
    tp.data_type = SK_STRING;
    dims[0] = 1;
    assert_int_equal(sk_npy_from_proto(&tp, "r", &t, &err), SK_EUNSUPPORTED);
    /* garbage is not a TensorProto */
    assert_int_equal(sk_npy_parse_pb("\xff\xff\xff\xff", 4, "g.pb", &t, NULL, &err), SK_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_peak_memory),
        cmocka_unit_test(test_hook),
        cmocka_unit_test(test_missing_op),
        cmocka_unit_test(test_input_checks),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_subgraphs),
        cmocka_unit_test(test_scan_node_test),
        cmocka_unit_test_setup_teardown(test_npy_roundtrip, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_npy_bad),
        cmocka_unit_test(test_pb_typed),
    };
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
