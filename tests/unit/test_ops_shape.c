/* Tests of lib/sk_ops_shape.c: the tiled transpose against its reference, and
 * each shape op's semantics and edge cases through the op table (kernels
 * called directly with a hand-made node): negative axes, empty tensors, rank 0,
 * clamping, and out-of-range or overflowing indices, which must be SK_EINVAL
 * and never an out-of-bounds access (run this under ASan: make asan). ONNX's
 * node tests for these ops run in test_ops_elementwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_kernels_ew.h"
#include "sk_model.h"
#include "sk_op.h"

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static sk_tensor mk(int dtype, int rank, const int64_t *dims, const void *data)
{
    sk_tensor t = { 0 };
    sk_error err = { 0 };
    if (sk_tensor_alloc(&t, dtype, rank, dims, &err)) fail_msg("alloc: %s", err.msg);
    if (data) memcpy(t.data, data, t.nbytes);
    return t;
}
/* MK(dtype, data or NULL, dims...): a tensor of that shape holding a copy of data. */
#define MK(dt, data, ...) \
    mk(dt, (int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)), (int64_t[]){ __VA_ARGS__ }, data)
/* A 1-D int64 tensor of the given values. */
#define I64(...) \
    mk(SK_INT64, 1, (int64_t[]){ (int64_t)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)) }, (int64_t[]){ __VA_ARGS__ })
/* A float tensor 0, 1, 2, ... of the given shape. */
static sk_tensor iota(int rank, const int64_t *dims)
{
    sk_tensor t = mk(SK_FLOAT, rank, dims, NULL);
    for (int64_t i = 0; i < t.numel; i++) ((float *)t.data)[i] = (float)i;
    return t;
}
#define IOTA(...) iota((int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)), (int64_t[]){ __VA_ARGS__ })

static sk_node_proto *node(const char *op)
{
    const char *out[] = { "y" };
    sk_node_proto *n = sk_node_proto_new(op, "", "test", 0, NULL, 1, out);
    assert_non_null(n);
    return n;
}

/* Runs op at opset on in[0..nin) into out[0..nout) through the op table. */
static sk_status run_op(const char *op, int64_t opset, const sk_node_proto *n, size_t nin,
                        const sk_tensor *const *in, size_t nout, sk_tensor *out, sk_error *err)
{
    const sk_op_def *d = sk_op_find("", op, opset);
    if (!d) fail_msg("op %s is not in the table at opset %lld", op, (long long)opset);
    sk_node_proto *own = n ? NULL : node(op);
    sk_tensor *outs[8] = { NULL };
    for (size_t i = 0; i < nout && i < 8; i++) outs[i] = &out[i];
    sk_op_ctx c = { .node = n ? n : own, .opset = opset, .n_in = nin, .in = in, .n_out = nout,
                    .out = outs, .threads = 1, .err = err };
    sk_status s = d->run(&c);
    sk_node_proto_free(NULL, own);
    return s;
}

/* RUN(op, opset, node, &y, inputs...) -> status; err holds the message. */
#define RUN(op, opset, n, y, ...)                                                              \
    run_op(op, opset, n, sizeof((const sk_tensor *[]){ __VA_ARGS__ }) / sizeof(sk_tensor *), \
           (const sk_tensor *[]){ __VA_ARGS__ }, 1, y, &err)
#define OK(op, opset, n, y, ...)                                                     \
    do {                                                                             \
        if (RUN(op, opset, n, y, __VA_ARGS__)) fail_msg("%s: %s", op, err.msg);      \
    } while (0)

static void check_dims(const sk_tensor *t, int rank, const int64_t *dims)
{
    assert_int_equal(t->rank, rank);
    for (int i = 0; i < rank; i++) assert_int_equal(t->dims[i], dims[i]);
}
#define DIMS(t, ...) check_dims(t, (int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)), (int64_t[]){ __VA_ARGS__ })
#define FLOATS(t, ...)                                                                        \
    do {                                                                                      \
        const float w_[] = { __VA_ARGS__ };                                                   \
        assert_int_equal((t)->numel, sizeof w_ / sizeof *w_);                                 \
        for (size_t i_ = 0; i_ < sizeof w_ / sizeof *w_; i_++)                                \
            if (((const float *)(t)->data)[i_] != w_[i_])                                     \
                fail_msg("element %zu: %g, want %g", i_, ((const float *)(t)->data)[i_], w_[i_]); \
    } while (0)
#define INTS(t, ...)                                                                          \
    do {                                                                                      \
        const int64_t w_[] = { __VA_ARGS__ };                                                 \
        assert_int_equal((t)->numel, sizeof w_ / sizeof *w_);                                 \
        for (size_t i_ = 0; i_ < sizeof w_ / sizeof *w_; i_++)                                \
            assert_int_equal(((const int64_t *)(t)->data)[i_], w_[i_]);                      \
    } while (0)

static void free_all(sk_tensor *t, size_t n)
{
    for (size_t i = 0; i < n; i++) sk_tensor_free(&t[i]);
}
#define FREE(...)                                                               \
    do {                                                                        \
        sk_tensor *l_[] = { __VA_ARGS__ };                                      \
        for (size_t k_ = 0; k_ < sizeof l_ / sizeof *l_; k_++) sk_tensor_free(l_[k_]); \
    } while (0)

/* ---- transpose --------------------------------------------------------------- */

static void test_transpose_fast_matches_ref(void **state)
{
    (void)state;
    const size_t sizes[] = { 1, 2, 4, 8, 3, 16 };
    for (int iter = 0; iter < 600; iter++) {
        int rank = 1 + (int)(rnd() % 6), perm[6];
        int64_t dims[6], n = 1;
        for (int d = 0; d < rank; d++) {
            dims[d] = 1 + rnd() % (rank > 3 ? 5 : 40);
            if (rnd() % 25 == 0) dims[d] = 0;
            n *= dims[d];
            perm[d] = d;
        }
        for (int d = rank - 1; d > 0; d--) {
            int j = (int)(rnd() % (unsigned)(d + 1)), t = perm[d];
            perm[d] = perm[j];
            perm[j] = t;
        }
        const size_t es = sizes[iter % 6];
        unsigned char *src = malloc((size_t)n * es + 1), *a = malloc((size_t)n * es + 1), *b = malloc((size_t)n * es + 1);
        assert_true(src && a && b);
        for (size_t i = 0; i < (size_t)n * es; i++) src[i] = (unsigned char)rnd();
        sk_transpose(a, src, es, rank, dims, perm);
        sk_transpose_ref(b, src, es, rank, dims, perm);
        assert_memory_equal(a, b, (size_t)n * es);
        free(src);
        free(a);
        free(b);
    }
    /* the permutations attention uses, at BERT-like sizes */
    const int perms[3][4] = { { 0, 2, 1, 3 }, { 0, 1, 3, 2 }, { 0, 2, 3, 1 } };
    const int64_t dims[4] = { 2, 37, 8, 64 };
    sk_tensor x = iota(4, dims);
    float *a = malloc((size_t)x.numel * 4), *b = malloc((size_t)x.numel * 4);
    assert_true(a && b);
    for (int p = 0; p < 3; p++) {
        sk_transpose(a, x.data, 4, 4, dims, perms[p]);
        sk_transpose_ref(b, x.data, 4, 4, dims, perms[p]);
        assert_memory_equal(a, b, (size_t)x.numel * 4);
    }
    free(a);
    free(b);
    sk_tensor_free(&x);
}

static void test_transpose_op(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor x = IOTA(2, 3), y = { 0 };
    OK("Transpose", 13, NULL, &y, &x); /* default: reverse */
    DIMS(&y, 3, 2);
    FLOATS(&y, 0, 3, 1, 4, 2, 5);
    sk_tensor_free(&y);
    sk_node_proto *n = node("Transpose");
    sk_node_add_attr_ints(n, "perm", 2, (int64_t[]){ 1, 1 });
    assert_int_equal(RUN("Transpose", 13, n, &y, &x), SK_EINVAL);
    sk_node_proto_free(NULL, n);
    n = node("Transpose");
    sk_node_add_attr_ints(n, "perm", 1, (int64_t[]){ 0 });
    assert_int_equal(RUN("Transpose", 13, n, &y, &x), SK_EINVAL);
    sk_node_proto_free(NULL, n);
    sk_tensor s = mk(SK_FLOAT, 0, NULL, (float[]){ 7 });
    OK("Transpose", 13, NULL, &y, &s);
    assert_int_equal(y.rank, 0);
    FLOATS(&y, 7);
    FREE(&x, &y, &s);
}

/* ---- reshaping ops ------------------------------------------------------------- */

static void test_reshape_family(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor x = IOTA(2, 3, 4), y = { 0 };
    sk_tensor s1 = I64(0, -1), s2 = I64(-1, -1), s3 = I64(5, -1), s4 = I64(5, 0, 2), s5 = I64(0, 4);
    OK("Reshape", 14, NULL, &y, &x, &s1);
    DIMS(&y, 2, 12);
    sk_tensor_free(&y);
    assert_int_equal(RUN("Reshape", 14, NULL, &y, &x, &s2), SK_EINVAL);
    assert_int_equal(RUN("Reshape", 14, NULL, &y, &x, &s3), SK_EINVAL);
    assert_int_equal(RUN("Reshape", 14, NULL, &y, &x, &s4), SK_EINVAL); /* 0 copies dim 1: 5*3*2 is not 24 */
    sk_tensor_free(&y);
    /* allowzero: 0 is a real zero-size dim */
    sk_tensor e = IOTA(0, 4);
    sk_node_proto *n = node("Reshape");
    sk_node_add_attr_int(n, "allowzero", 1);
    OK("Reshape", 14, n, &y, &e, &s5);
    DIMS(&y, 0, 4);
    sk_tensor_free(&y);
    assert_int_equal(RUN("Reshape", 14, n, &y, &x, &s5), SK_EINVAL);
    sk_node_proto_free(NULL, n);
    /* Flatten, negative axis, axis = rank */
    n = node("Flatten");
    sk_node_add_attr_int(n, "axis", -1);
    OK("Flatten", 13, n, &y, &x);
    DIMS(&y, 6, 4);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    n = node("Flatten");
    sk_node_add_attr_int(n, "axis", 3);
    OK("Flatten", 13, n, &y, &x);
    DIMS(&y, 24, 1);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    n = node("Flatten");
    sk_node_add_attr_int(n, "axis", 4);
    assert_int_equal(RUN("Flatten", 13, n, &y, &x), SK_EINVAL);
    sk_node_proto_free(NULL, n);
    /* Squeeze/Unsqueeze: input form from opset 13, attribute form before */
    sk_tensor one = IOTA(1, 3, 1), ax = I64(-1), ax2 = I64(1);
    OK("Squeeze", 13, NULL, &y, &one, &ax);
    DIMS(&y, 1, 3);
    sk_tensor_free(&y);
    OK("Squeeze", 13, NULL, &y, &one);
    DIMS(&y, 3);
    sk_tensor_free(&y);
    assert_int_equal(RUN("Squeeze", 13, NULL, &y, &one, &ax2), SK_EINVAL); /* size 3 */
    n = node("Squeeze");
    sk_node_add_attr_ints(n, "axes", 1, (int64_t[]){ 0 });
    OK("Squeeze", 11, n, &y, &one);
    DIMS(&y, 3, 1);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    sk_tensor ua = I64(-1, 0), dup = I64(0, -5), far = I64(5);
    OK("Unsqueeze", 13, NULL, &y, &x, &ua);
    DIMS(&y, 1, 2, 3, 4, 1);
    sk_tensor_free(&y);
    assert_int_equal(RUN("Unsqueeze", 13, NULL, &y, &x, &dup), SK_EINVAL);
    assert_int_equal(RUN("Unsqueeze", 13, NULL, &y, &x, &far), SK_EINVAL);
    assert_int_equal(RUN("Unsqueeze", 13, NULL, &y, &x), SK_EINVAL); /* axes are required */
    n = node("Unsqueeze");
    sk_node_add_attr_ints(n, "axes", 2, (int64_t[]){ 0, -1 });
    sk_tensor s = mk(SK_FLOAT, 0, NULL, (float[]){ 5 });
    OK("Unsqueeze", 11, n, &y, &s);
    DIMS(&y, 1, 1);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    /* shape-only ops take int4 tensors */
    sk_tensor q4 = MK(SK_INT4, NULL, 3, 3), s9 = I64(9);
    OK("Reshape", 14, NULL, &y, &q4, &s9);
    DIMS(&y, 9);
    assert_int_equal(y.nbytes, 5);
    sk_tensor_free(&y);
    assert_int_equal(RUN("Transpose", 13, NULL, &y, &q4), SK_EUNSUPPORTED);
    FREE(&y, &x, &s1, &s2, &s3, &s4, &s5, &e, &one, &ax, &ax2, &ua, &dup, &far, &s, &q4, &s9);
}

/* ---- Concat, Split ----------------------------------------------------------- */

static void test_concat_split(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor a = IOTA(2, 2), b = IOTA(2, 1), e = IOTA(2, 0), y = { 0 };
    sk_node_proto *n = node("Concat");
    sk_node_add_attr_int(n, "axis", -1);
    OK("Concat", 13, n, &y, &a, &e, &b);
    DIMS(&y, 2, 3);
    FLOATS(&y, 0, 1, 0, 2, 3, 1);
    sk_tensor_free(&y);
    sk_tensor c = IOTA(3, 2);
    assert_int_equal(RUN("Concat", 13, n, &y, &a, &c), SK_EINVAL); /* dim 0 differs */
    sk_tensor i = MK(SK_INT64, NULL, 2, 2);
    assert_int_equal(RUN("Concat", 13, n, &y, &a, &i), SK_EINVAL);
    sk_node_proto_free(NULL, n);
    assert_int_equal(RUN("Concat", 13, NULL, &y, &a, &b), SK_EINVAL); /* axis is required */

    /* Split: attribute, input, equal parts, num_outputs with a smaller last part */
    sk_tensor x = IOTA(7), parts[4] = { { 0 } };
    sk_tensor sp = I64(2, 5), bad = I64(2, 4), neg = I64(8, -1);
    const sk_tensor *in[2] = { &x, &sp };
    assert_int_equal(run_op("Split", 13, NULL, 2, in, 2, parts, &err), SK_OK);
    FLOATS(&parts[0], 0, 1);
    FLOATS(&parts[1], 2, 3, 4, 5, 6);
    free_all(parts, 4);
    in[1] = &bad;
    assert_int_equal(run_op("Split", 13, NULL, 2, in, 2, parts, &err), SK_EINVAL);
    in[1] = &neg;
    assert_int_equal(run_op("Split", 13, NULL, 2, in, 2, parts, &err), SK_EINVAL);
    assert_int_equal(run_op("Split", 13, NULL, 2, in, 3, parts, &err), SK_EINVAL); /* 2 sizes, 3 outputs */
    free_all(parts, 4);
    assert_int_equal(run_op("Split", 13, NULL, 1, in, 2, parts, &err), SK_EINVAL); /* 7 into 2 */
    n = node("Split");
    sk_node_add_attr_int(n, "num_outputs", 3);
    assert_int_equal(run_op("Split", 18, n, 1, in, 3, parts, &err), SK_OK);
    DIMS(&parts[0], 3);
    DIMS(&parts[1], 3);
    DIMS(&parts[2], 1);
    FLOATS(&parts[2], 6);
    free_all(parts, 4);
    assert_int_equal(run_op("Split", 18, n, 1, in, 2, parts, &err), SK_EINVAL); /* num_outputs mismatch */
    sk_node_proto_free(NULL, n);
    n = node("Split");
    sk_node_add_attr_ints(n, "split", 3, (int64_t[]){ 0, 7, 0 });
    assert_int_equal(run_op("Split", 11, n, 1, in, 3, parts, &err), SK_OK);
    DIMS(&parts[0], 0);
    DIMS(&parts[1], 7);
    free_all(parts, 4);
    sk_node_proto_free(NULL, n);
    FREE(&y, &a, &b, &e, &c, &i, &x, &sp, &bad, &neg);
}

/* ---- Slice ------------------------------------------------------------------------ */

static void test_slice(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor x = IOTA(3, 4), y = { 0 };
    /* negative steps, ends clamped, INT64 extremes */
    sk_tensor st = I64(-1, INT64_MAX), en = I64(INT64_MIN, INT64_MIN), ax = I64(0, 1), sp = I64(-1, -2);
    OK("Slice", 13, NULL, &y, &x, &st, &en, &ax, &sp);
    DIMS(&y, 3, 2);
    FLOATS(&y, 11, 9, 7, 5, 3, 1);
    sk_tensor_free(&y);
    sk_tensor st2 = I64(1), en2 = I64(INT64_MAX), ax2 = I64(-1), sp2 = I64(INT64_MAX);
    OK("Slice", 13, NULL, &y, &x, &st2, &en2, &ax2, &sp2);
    DIMS(&y, 3, 1);
    FLOATS(&y, 1, 5, 9);
    sk_tensor_free(&y);
    sk_tensor spmin = I64(INT64_MIN), stm = I64(INT64_MAX), enm = I64(-100);
    OK("Slice", 13, NULL, &y, &x, &stm, &enm, &ax2, &spmin);
    DIMS(&y, 3, 1);
    FLOATS(&y, 3, 7, 11);
    sk_tensor_free(&y);
    /* empty results, out-of-range starts */
    sk_tensor st3 = I64(10), en3 = I64(20);
    OK("Slice", 13, NULL, &y, &x, &st3, &en3, &ax2);
    DIMS(&y, 3, 0);
    sk_tensor_free(&y);
    /* errors: zero step, repeated axis, bad axis, mismatched lengths */
    sk_tensor zero = I64(0), rep = I64(1, -1), two = I64(0, 0), bad_ax = I64(2);
    assert_int_equal(RUN("Slice", 13, NULL, &y, &x, &st2, &en2, &ax2, &zero), SK_EINVAL);
    assert_int_equal(RUN("Slice", 13, NULL, &y, &x, &two, &two, &rep), SK_EINVAL);
    assert_int_equal(RUN("Slice", 13, NULL, &y, &x, &st2, &en2, &bad_ax), SK_EINVAL);
    assert_int_equal(RUN("Slice", 13, NULL, &y, &x, &st2, &two), SK_EINVAL);
    /* opset 1 attribute form */
    sk_node_proto *n = node("Slice");
    sk_node_add_attr_ints(n, "starts", 2, (int64_t[]){ 1, -2 });
    sk_node_add_attr_ints(n, "ends", 2, (int64_t[]){ 1000, 1000 });
    OK("Slice", 1, n, &y, &x);
    DIMS(&y, 2, 2);
    FLOATS(&y, 6, 7, 10, 11);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    /* int32 starts/ends */
    sk_tensor s32 = mk(SK_INT32, 1, (int64_t[]){ 1 }, (int32_t[]){ -3 }), e32 = mk(SK_INT32, 1, (int64_t[]){ 1 }, (int32_t[]){ -1 });
    OK("Slice", 13, NULL, &y, &x, &s32, &e32);
    DIMS(&y, 2, 4);
    sk_tensor_free(&y);
    FREE(&y, &x, &st, &en, &ax, &sp, &st2, &en2, &ax2, &sp2, &spmin, &stm, &enm, &st3, &en3, &zero, &rep, &two, &bad_ax,
         &s32, &e32);
}

/* ---- Gather family and Scatter family --------------------------------------------- */

static void test_gather_family(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor x = IOTA(3, 2), y = { 0 };
    sk_tensor idx = I64(-1, 0), oob = I64(3), oob2 = I64(-4), big = I64(INT64_MIN), empty = MK(SK_INT64, NULL, 0);
    sk_tensor s = mk(SK_INT64, 0, NULL, (int64_t[]){ 1 });
    OK("Gather", 13, NULL, &y, &x, &idx);
    DIMS(&y, 2, 2);
    FLOATS(&y, 4, 5, 0, 1);
    sk_tensor_free(&y);
    OK("Gather", 13, NULL, &y, &x, &s); /* rank-0 index drops the axis */
    DIMS(&y, 2);
    FLOATS(&y, 2, 3);
    sk_tensor_free(&y);
    OK("Gather", 13, NULL, &y, &x, &empty);
    DIMS(&y, 0, 2);
    sk_tensor_free(&y);
    assert_int_equal(RUN("Gather", 13, NULL, &y, &x, &oob), SK_EINVAL);
    assert_non_null(strstr(err.msg, "out of range"));
    assert_int_equal(RUN("Gather", 13, NULL, &y, &x, &oob2), SK_EINVAL);
    assert_int_equal(RUN("Gather", 13, NULL, &y, &x, &big), SK_EINVAL);
    sk_tensor fidx = MK(SK_FLOAT, NULL, 1);
    assert_int_equal(RUN("Gather", 13, NULL, &y, &x, &fidx), SK_EINVAL);
    sk_node_proto *n = node("Gather");
    sk_node_add_attr_int(n, "axis", -1);
    sk_tensor i32 = mk(SK_INT32, 2, (int64_t[]){ 1, 2 }, (int32_t[]){ 1, -2 });
    OK("Gather", 13, n, &y, &x, &i32);
    DIMS(&y, 3, 1, 2);
    FLOATS(&y, 1, 0, 3, 2, 5, 4);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);

    /* GatherElements */
    sk_tensor ge = MK(SK_INT64, ((int64_t[]){ 2, -3, 1, 0 }), 2, 2), geb = MK(SK_INT64, ((int64_t[]){ 0, 3 }), 1, 2);
    OK("GatherElements", 13, NULL, &y, &x, &ge);
    FLOATS(&y, 4, 1, 2, 1);
    sk_tensor_free(&y);
    assert_int_equal(RUN("GatherElements", 13, NULL, &y, &x, &geb), SK_EINVAL);
    /* GatherND, batch_dims 0 and 1 */
    sk_tensor nd = MK(SK_INT64, ((int64_t[]){ 2, 1, -3, 0 }), 2, 2), ndb = MK(SK_INT64, ((int64_t[]){ 0, 2 }), 1, 2);
    OK("GatherND", 13, NULL, &y, &x, &nd);
    FLOATS(&y, 5, 0);
    sk_tensor_free(&y);
    assert_int_equal(RUN("GatherND", 13, NULL, &y, &x, &ndb), SK_EINVAL);
    n = node("GatherND");
    sk_node_add_attr_int(n, "batch_dims", 1);
    sk_tensor ndi = MK(SK_INT64, ((int64_t[]){ 1, 0, 1 }), 3, 1);
    OK("GatherND", 13, n, &y, &x, &ndi);
    DIMS(&y, 3);
    FLOATS(&y, 1, 2, 5);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    FREE(&y, &x, &idx, &oob, &oob2, &big, &empty, &s, &fidx, &i32, &ge, &geb, &nd, &ndb, &ndi);
}

static void test_scatter_family(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor x = IOTA(4), y = { 0 };
    sk_tensor ind = MK(SK_INT64, ((int64_t[]){ -1, 1 }), 2, 1), upd = MK(SK_FLOAT, ((float[]){ 10, 20 }), 2);
    OK("ScatterND", 13, NULL, &y, &x, &ind, &upd);
    FLOATS(&y, 0, 20, 2, 10);
    sk_tensor_free(&y);
    sk_node_proto *n = node("ScatterND");
    sk_node_add_attr_string(n, "reduction", "mul");
    OK("ScatterND", 16, n, &y, &x, &ind, &upd);
    FLOATS(&y, 0, 20, 2, 30);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    n = node("ScatterND");
    sk_node_add_attr_string(n, "reduction", "avg");
    assert_int_equal(RUN("ScatterND", 16, n, &y, &x, &ind, &upd), SK_EINVAL);
    sk_node_proto_free(NULL, n);
    sk_tensor oob = MK(SK_INT64, ((int64_t[]){ 4, 0 }), 2, 1), upd3 = MK(SK_FLOAT, NULL, 3);
    assert_int_equal(RUN("ScatterND", 13, NULL, &y, &x, &oob, &upd), SK_EINVAL);
    assert_int_equal(RUN("ScatterND", 13, NULL, &y, &x, &ind, &upd3), SK_EINVAL);
    /* ScatterElements with duplicates and add; int64 data */
    sk_tensor xi = MK(SK_INT64, ((int64_t[]){ 1, 2, 3 }), 3), ei = MK(SK_INT64, ((int64_t[]){ 0, 0, -1 }), 3);
    sk_tensor ui = MK(SK_INT64, ((int64_t[]){ INT64_MAX, 5, 7 }), 3);
    n = node("ScatterElements");
    sk_node_add_attr_string(n, "reduction", "add");
    OK("ScatterElements", 16, n, &y, &xi, &ei, &ui);
    INTS(&y, INT64_MIN + 5, 2, 10); /* wraps, no UB */
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    sk_tensor eo = MK(SK_INT64, ((int64_t[]){ 0, 3, 0 }), 3);
    assert_int_equal(RUN("ScatterElements", 13, NULL, &y, &xi, &eo, &ui), SK_EINVAL);
    FREE(&y, &x, &ind, &upd, &oob, &upd3, &xi, &ei, &ui, &eo);
}

/* ---- Expand, Tile, Pad ------------------------------------------------------------ */

static void test_expand_tile_pad(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor s = mk(SK_FLOAT, 0, NULL, (float[]){ 3 }), y = { 0 };
    sk_tensor sh = I64(2, 1, 3), sh0 = I64(0, 3), bad = I64(2, -1);
    OK("Expand", 13, NULL, &y, &s, &sh);
    DIMS(&y, 2, 1, 3);
    FLOATS(&y, 3, 3, 3, 3, 3, 3);
    sk_tensor_free(&y);
    sk_tensor col = IOTA(2, 1);
    OK("Expand", 13, NULL, &y, &col, &sh);
    DIMS(&y, 2, 2, 3);
    FLOATS(&y, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1);
    sk_tensor_free(&y);
    OK("Expand", 13, NULL, &y, &s, &sh0);
    DIMS(&y, 0, 3);
    sk_tensor_free(&y);
    assert_int_equal(RUN("Expand", 13, NULL, &y, &s, &bad), SK_EINVAL);
    sk_tensor three = IOTA(3), sh2 = I64(2);
    assert_int_equal(RUN("Expand", 13, NULL, &y, &three, &sh2), SK_EINVAL);

    sk_tensor x = IOTA(2, 2), rep = I64(1, 2), rep0 = I64(0, 2), repn = I64(-1, 1), rep1 = I64(2);
    OK("Tile", 13, NULL, &y, &x, &rep);
    DIMS(&y, 2, 4);
    FLOATS(&y, 0, 1, 0, 1, 2, 3, 2, 3);
    sk_tensor_free(&y);
    OK("Tile", 13, NULL, &y, &x, &rep0);
    DIMS(&y, 0, 4);
    sk_tensor_free(&y);
    assert_int_equal(RUN("Tile", 13, NULL, &y, &x, &repn), SK_EINVAL);
    assert_int_equal(RUN("Tile", 13, NULL, &y, &x, &rep1), SK_EINVAL);

    /* Pad modes, negative pads (crop), axes, a constant value */
    sk_tensor r = IOTA(4), p = I64(2, 3), cv = mk(SK_FLOAT, 0, NULL, (float[]){ -1 });
    const char *modes[] = { "constant", "reflect", "edge", "wrap" };
    const float want[4][9] = { { -1, -1, 0, 1, 2, 3, -1, -1, -1 },
                               { 2, 1, 0, 1, 2, 3, 2, 1, 0 },
                               { 0, 0, 0, 1, 2, 3, 3, 3, 3 },
                               { 2, 3, 0, 1, 2, 3, 0, 1, 2 } };
    for (int m = 0; m < 4; m++) {
        sk_node_proto *n = node("Pad");
        sk_node_add_attr_string(n, "mode", modes[m]);
        OK("Pad", 19, n, &y, &r, &p, &cv);
        DIMS(&y, 9);
        for (int i = 0; i < 9; i++)
            if (((float *)y.data)[i] != want[m][i]) fail_msg("Pad %s [%d]: %g", modes[m], i, ((float *)y.data)[i]);
        sk_tensor_free(&y);
        sk_node_proto_free(NULL, n);
    }
    sk_tensor crop = I64(-1, 0, 1, -1), ax = I64(0);
    sk_tensor m2 = IOTA(2, 3);
    OK("Pad", 18, NULL, &y, &m2, &crop);
    DIMS(&y, 2, 2);
    FLOATS(&y, 3, 4, 0, 0);
    sk_tensor_free(&y);
    sk_tensor pa = I64(1, 1);
    OK("Pad", 18, NULL, &y, &m2, &pa, &cv, &ax);
    DIMS(&y, 4, 3);
    FLOATS(&y, -1, -1, -1, 0, 1, 2, 3, 4, 5, -1, -1, -1);
    sk_tensor_free(&y);
    sk_tensor over = I64(-5, 0);
    assert_int_equal(RUN("Pad", 18, NULL, &y, &r, &over), SK_EINVAL);
    sk_tensor huge = I64(INT64_MAX, INT64_MAX);
    assert_int_equal(RUN("Pad", 18, NULL, &y, &r, &huge), SK_EINVAL);
    assert_int_equal(RUN("Pad", 18, NULL, &y, &r, &crop), SK_EINVAL); /* 4 pads for rank 1 */
    /* opset 2 attribute form */
    sk_node_proto *n = node("Pad");
    sk_node_add_attr_ints(n, "pads", 2, (int64_t[]){ 1, 0 });
    sk_node_add_attr_float(n, "value", 9);
    OK("Pad", 2, n, &y, &r);
    FLOATS(&y, 9, 0, 1, 2, 3);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    FREE(&y, &s, &sh, &sh0, &bad, &col, &three, &sh2, &x, &rep, &rep0, &repn, &rep1, &r, &p, &cv, &crop, &ax, &m2, &pa, &over,
         &huge);
}

/* ---- generators and queries -------------------------------------------------------- */

static void test_generators(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor y = { 0 }, x = IOTA(2, 3, 4);
    /* Shape with start/end clamping, Size */
    sk_node_proto *n = node("Shape");
    sk_node_add_attr_int(n, "start", -2);
    sk_node_add_attr_int(n, "end", 100);
    OK("Shape", 15, n, &y, &x);
    INTS(&y, 3, 4);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    OK("Size", 13, NULL, &y, &x);
    assert_int_equal(y.rank, 0);
    assert_int_equal(*(int64_t *)y.data, 24);
    sk_tensor_free(&y);
    /* Range: counts without overflow at the int64 extremes */
    sk_tensor a = mk(SK_INT64, 0, NULL, (int64_t[]){ INT64_MIN }), b = mk(SK_INT64, 0, NULL, (int64_t[]){ INT64_MAX });
    sk_tensor d = mk(SK_INT64, 0, NULL, (int64_t[]){ INT64_MAX }), z = mk(SK_INT64, 0, NULL, (int64_t[]){ 0 });
    sk_tensor one = mk(SK_INT64, 0, NULL, (int64_t[]){ 1 });
    OK("Range", 11, NULL, &y, &a, &z, &d);
    INTS(&y, INT64_MIN, -1);
    sk_tensor_free(&y);
    OK("Range", 11, NULL, &y, &a, &b, &d); /* limit - start does not fit int64 */
    INTS(&y, INT64_MIN, -1, INT64_MAX - 1);
    sk_tensor_free(&y);
    sk_tensor dmin = mk(SK_INT64, 0, NULL, (int64_t[]){ INT64_MIN });
    OK("Range", 11, NULL, &y, &b, &a, &dmin);
    INTS(&y, INT64_MAX, -1);
    sk_tensor_free(&y);
    sk_tensor_free(&dmin);
    assert_int_equal(RUN("Range", 11, NULL, &y, &z, &b, &one), SK_EINVAL); /* too many elements */
    assert_int_equal(RUN("Range", 11, NULL, &y, &z, &b, &z), SK_EINVAL); /* delta 0 */
    OK("Range", 11, NULL, &y, &b, &z, &one);
    DIMS(&y, 0);
    sk_tensor_free(&y);
    sk_tensor fa = mk(SK_FLOAT, 0, NULL, (float[]){ 1 }), fb = mk(SK_FLOAT, 0, NULL, (float[]){ 2 });
    sk_tensor fd = mk(SK_FLOAT, 0, NULL, (float[]){ 0.25f });
    OK("Range", 11, NULL, &y, &fa, &fb, &fd);
    FLOATS(&y, 1, 1.25f, 1.5f, 1.75f);
    sk_tensor_free(&y);
    /* ConstantOfShape: default float 0, an int64 value attribute, empty shape = scalar */
    sk_tensor shp = I64(2, 2), none = MK(SK_INT64, NULL, 0);
    OK("ConstantOfShape", 9, NULL, &y, &shp);
    FLOATS(&y, 0, 0, 0, 0);
    sk_tensor_free(&y);
    n = node("ConstantOfShape");
    Onnx__AttributeProto *at = malloc(sizeof *at);
    assert_non_null(at);
    onnx__attribute_proto__init(at);
    at->name = strdup("value");
    at->has_type = 1;
    at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    at->t = sk_tensor_proto_new("", SK_INT64, 1, (int64_t[]){ 1 }, (int64_t[]){ -7 }, 8);
    assert_non_null(at->t);
    n->attribute = realloc(n->attribute, (n->n_attribute + 1) * sizeof *n->attribute);
    n->attribute[n->n_attribute++] = at;
    OK("ConstantOfShape", 9, n, &y, &none);
    assert_int_equal(y.dtype, SK_INT64);
    assert_int_equal(y.rank, 0);
    INTS(&y, -7);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    sk_tensor negs = I64(2, -2);
    assert_int_equal(RUN("ConstantOfShape", 9, NULL, &y, &negs), SK_EINVAL);
    FREE(&y, &x, &a, &b, &d, &z, &one, &fa, &fb, &fd, &shp, &none, &negs);
}

static void test_matrix_ops(void **state)
{
    (void)state;
    sk_error err = { 0 };
    sk_tensor x = IOTA(2, 3), y = { 0 };
    sk_tensor k1 = mk(SK_INT64, 0, NULL, (int64_t[]){ 1 }), kmin = mk(SK_INT64, 0, NULL, (int64_t[]){ INT64_MIN });
    sk_tensor kmax = mk(SK_INT64, 0, NULL, (int64_t[]){ INT64_MAX });
    OK("Trilu", 14, NULL, &y, &x, &k1);
    FLOATS(&y, 0, 1, 2, 0, 0, 5);
    sk_tensor_free(&y);
    OK("Trilu", 14, NULL, &y, &x, &kmin); /* upper with k = -inf keeps everything */
    FLOATS(&y, 0, 1, 2, 3, 4, 5);
    sk_tensor_free(&y);
    sk_node_proto *n = node("Trilu");
    sk_node_add_attr_int(n, "upper", 0);
    OK("Trilu", 14, n, &y, &x, &kmax);
    FLOATS(&y, 0, 1, 2, 3, 4, 5);
    sk_tensor_free(&y);
    OK("Trilu", 14, n, &y, &x);
    FLOATS(&y, 0, 0, 0, 3, 4, 0);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    sk_tensor v = IOTA(3);
    assert_int_equal(RUN("Trilu", 14, NULL, &y, &v), SK_EINVAL);
    /* EyeLike with k and a dtype */
    n = node("EyeLike");
    sk_node_add_attr_int(n, "k", -1);
    sk_node_add_attr_int(n, "dtype", SK_INT32);
    OK("EyeLike", 9, n, &y, &x);
    assert_int_equal(y.dtype, SK_INT32);
    assert_memory_equal(y.data, ((int32_t[]){ 0, 0, 0, 1, 0, 0 }), 24);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    /* OneHot: negative and out-of-range indices, axis 0 */
    sk_tensor ind = I64(1, -1, 5, -4), depth = mk(SK_FLOAT, 0, NULL, (float[]){ 3 });
    sk_tensor vals = MK(SK_FLOAT, ((float[]){ 0, 9 }), 2);
    OK("OneHot", 11, NULL, &y, &ind, &depth, &vals);
    DIMS(&y, 4, 3);
    FLOATS(&y, 0, 9, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0);
    sk_tensor_free(&y);
    n = node("OneHot");
    sk_node_add_attr_int(n, "axis", 0);
    OK("OneHot", 11, n, &y, &ind, &depth, &vals);
    DIMS(&y, 3, 4);
    FLOATS(&y, 0, 0, 0, 0, 9, 0, 0, 0, 0, 9, 0, 0);
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    sk_tensor d0 = mk(SK_INT64, 0, NULL, (int64_t[]){ 0 });
    assert_int_equal(RUN("OneHot", 11, NULL, &y, &ind, &d0, &vals), SK_EINVAL);
    /* NonZero: -0 is zero, NaN is not */
    sk_tensor nz = MK(SK_FLOAT, ((float[]){ 0, -0.0f, 2, NAN }), 2, 2), emp = MK(SK_FLOAT, NULL, 0, 3);
    OK("NonZero", 13, NULL, &y, &nz);
    DIMS(&y, 2, 2);
    INTS(&y, 1, 1, 0, 1);
    sk_tensor_free(&y);
    OK("NonZero", 13, NULL, &y, &emp);
    DIMS(&y, 2, 0);
    sk_tensor_free(&y);
    /* DepthToSpace (both modes) undone by SpaceToDepth (DCR) */
    sk_tensor c4 = IOTA(1, 8, 2, 3), t = { 0 };
    n = node("DepthToSpace");
    sk_node_add_attr_int(n, "blocksize", 2);
    OK("DepthToSpace", 13, n, &y, &c4);
    DIMS(&y, 1, 2, 4, 6);
    assert_true(((float *)y.data)[1] == 12); /* DCR: (0,0,0,1) comes from channel (0*2+1)*2+0 */
    sk_node_proto *m = node("SpaceToDepth");
    sk_node_add_attr_int(m, "blocksize", 2);
    OK("SpaceToDepth", 13, m, &t, &y);
    DIMS(&t, 1, 8, 2, 3);
    assert_memory_equal(t.data, c4.data, c4.nbytes);
    FREE(&y, &t);
    sk_node_add_attr_string(n, "mode", "CRD");
    OK("DepthToSpace", 13, n, &y, &c4);
    assert_true(((float *)y.data)[1] == 6); /* CRD: (0,0,0,1) comes from channel 0*4+1 */
    sk_tensor_free(&y);
    sk_node_proto_free(NULL, n);
    n = node("DepthToSpace");
    sk_node_add_attr_int(n, "blocksize", 3);
    assert_int_equal(RUN("DepthToSpace", 13, n, &y, &c4), SK_EINVAL);
    sk_node_proto_free(NULL, n);
    sk_node_proto_free(NULL, m);
    FREE(&y, &x, &k1, &kmin, &kmax, &v, &ind, &depth, &vals, &d0, &nz, &emp, &c4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transpose_fast_matches_ref),
        cmocka_unit_test(test_transpose_op),
        cmocka_unit_test(test_reshape_family),
        cmocka_unit_test(test_concat_split),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_gather_family),
        cmocka_unit_test(test_scatter_family),
        cmocka_unit_test(test_expand_tile_pad),
        cmocka_unit_test(test_generators),
        cmocka_unit_test(test_matrix_ops),
    };
    return cmocka_run_group_tests_name("ops_shape", tests, NULL, NULL);
}
