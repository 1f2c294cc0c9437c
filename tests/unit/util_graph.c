/* Graph-building helpers shared by the unit tests that make small models in
 * memory (test_attn, test_prune). Failures are cmocka assertions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util_graph.h"

Onnx__ValueInfoProto *ut_value_info(const char *name, int rank, const int64_t *dims)
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
    v->type->tensor_type->elem_type = SK_FLOAT;
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

void ut_push_vi(size_t *n, Onnx__ValueInfoProto ***arr, Onnx__ValueInfoProto *v)
{
    *arr = realloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = v;
}

sk_node_proto *ut_node(sk_graph_proto *g, const char *op, const char *name, const char *a, const char *b,
                           const char *c, const char *out)
{
    const char *ins[3] = { a, b, c };
    size_t n = c ? 3 : b ? 2 : 1;
    sk_node_proto *nd = sk_node_proto_new(op, NULL, name, n, ins, 1, &out);
    assert_non_null(nd);
    assert_int_equal(sk_graph_insert_node(g, SIZE_MAX, nd), SK_OK);
    return nd;
}

void ut_init_f(sk_graph_proto *g, const char *name, int rank, const int64_t *dims, unsigned *seed)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        v[i] = ((float)((*seed >> 8) & 0xffff) / 65536.0f - 0.5f) * 0.6f;
    }
    sk_tensor_proto *t = sk_tensor_proto_new(name, SK_FLOAT, rank, dims, v, (size_t)n * 4);
    free(v);
    assert_non_null(t);
    assert_int_equal(sk_graph_add_initializer(g, t), SK_OK);
}

void ut_init_i(sk_graph_proto *g, const char *name, int64_t n, const int64_t *v)
{
    int64_t dims[1] = { n };
    sk_tensor_proto *t = sk_tensor_proto_new(name, SK_INT64, 1, dims, v, (size_t)n * 8);
    assert_non_null(t);
    assert_int_equal(sk_graph_add_initializer(g, t), SK_OK);
}

sk_model *ut_wrap(sk_graph_proto *g)
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

/* x [1,S,E] -> multi-head self-attention (H heads of D) -> y [1,S,E].
 * fused: one [E,3E] projection cut by a Split (1), or reshaped to
 * [1,S,3,H,D] and indexed per part (2). q_from_input: the query is the
 * graph input itself (no projection). zero_heads (may be NULL): heads whose
 * rows of the output projection are zero. */
int ut_attention_head_bias;

sk_model *ut_attention_model(int64_t H, int64_t D, int fused, int q_from_input, const int *zero_heads)
{
    int64_t E = H * D, S = 5;
    unsigned seed = 42;
    sk_graph_proto *g = malloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup("attn");
    int64_t xd[3] = { 1, S, E };
    ut_push_vi(&g->n_input, &g->input, ut_value_info("x", 3, xd));
    ut_push_vi(&g->n_output, &g->output, ut_value_info("y", 3, xd));
    int64_t ee[2] = { E, E }, e1[1] = { E }, e3[2] = { E, 3 * E }, e31[1] = { 3 * E };
    int64_t split_shape[4] = { 1, -1, H, D }, merge_shape[3] = { 1, -1, E }, sizes[3] = { E, E, E };
    ut_init_i(g, "split_shape", 4, split_shape);
    ut_init_i(g, "merge_shape", 3, merge_shape);
    if (fused) {
        ut_init_f(g, "wqkv", 2, e3, &seed);
        ut_init_f(g, "bqkv", 1, e31, &seed);
        ut_node(g, "MatMul", "qkv_proj", "x", "wqkv", NULL, "qkv0");
        ut_node(g, "Add", "qkv_bias", "qkv0", "bqkv", NULL, "qkv1");
    }
    if (fused == 1) { /* GPT-2: a Split */
        ut_init_i(g, "qkv_sizes", 3, sizes);
        const char *ins[2] = { "qkv1", "qkv_sizes" }, *outs[3] = { "q1", "k1", "v1" };
        sk_node_proto *sp = sk_node_proto_new("Split", NULL, "qkv_split", 2, ins, 3, outs);
        assert_int_equal(sk_node_add_attr_int(sp, "axis", 2), SK_OK);
        assert_int_equal(sk_graph_insert_node(g, SIZE_MAX, sp), SK_OK);
    } else if (fused == 2) { /* timm: [1,S,3,H,D], parts first, one Gather per part */
        static const int64_t p20314[5] = { 2, 0, 3, 1, 4 }, p0132[4] = { 0, 1, 3, 2 };
        int64_t parts_shape[5] = { 1, -1, 3, H, D };
        ut_init_i(g, "parts_shape", 5, parts_shape);
        ut_node(g, "Reshape", "qkv_parts", "qkv1", "parts_shape", NULL, "qkv2");
        assert_int_equal(sk_node_add_attr_ints(ut_node(g, "Transpose", "qkv_tr", "qkv2", NULL, NULL, "qkv3"), "perm", 5, p20314),
                         SK_OK);
        const char *r[3] = { "q", "k", "v" };
        for (int64_t i = 0; i < 3; i++) {
            char idx[8], out[8], gname[16];
            snprintf(idx, sizeof idx, "i%s", r[i]);
            snprintf(out, sizeof out, "%s3%s", r[i], i == 1 ? "t" : "");
            snprintf(gname, sizeof gname, "%s_part", r[i]);
            sk_tensor_proto *t = sk_tensor_proto_new(idx, SK_INT64, 0, NULL, &i, 8);
            assert_int_equal(sk_graph_add_initializer(g, t), SK_OK);
            assert_int_equal(sk_node_add_attr_int(ut_node(g, "Gather", gname, "qkv3", idx, NULL, out), "axis", 0), SK_OK);
        }
        assert_int_equal(sk_node_add_attr_ints(ut_node(g, "Transpose", "k_tr", "k3t", NULL, NULL, "k3"), "perm", 4, p0132), SK_OK);
    } else {
        const char *r[3] = { "q", "k", "v" };
        for (int i = 0; i < 3; i++) {
            char w[8], b[8], mm[16], ad[16], o0[8], o1[8];
            snprintf(w, sizeof w, "w%s", r[i]);
            snprintf(b, sizeof b, "b%s", r[i]);
            snprintf(mm, sizeof mm, "%s_proj", r[i]);
            snprintf(ad, sizeof ad, "%s_bias", r[i]);
            snprintf(o0, sizeof o0, "%s0", r[i]);
            snprintf(o1, sizeof o1, "%s1", r[i]);
            ut_init_f(g, w, 2, ee, &seed);
            ut_init_f(g, b, 1, e1, &seed);
            if (i == 0 && q_from_input) {
                ut_node(g, "Identity", "q_id", "x", NULL, NULL, "q1");
                continue;
            }
            ut_node(g, "MatMul", mm, "x", w, NULL, o0);
            ut_node(g, "Add", ad, b, o0, NULL, o1); /* bias first, as TorchScript writes it */
        }
    }
    ut_init_f(g, "wo", 2, ee, &seed);
    if (zero_heads) { /* the reference for pruning without compensation: those heads' rows of wo are 0 */
        sk_tensor_proto *wo = sk_graph_initializer(g, "wo");
        float *w = (float *)wo->raw_data.data;
        for (int64_t h = 0; h < H; h++)
            if (zero_heads[h]) memset(w + h * D * E, 0, (size_t)(D * E) * sizeof *w);
    }
    ut_init_f(g, "bo", 1, e1, &seed);
    float scale = 0.35f;
    sk_tensor_proto *sc = sk_tensor_proto_new("scale", SK_FLOAT, 0, NULL, &scale, 4);
    assert_int_equal(sk_graph_add_initializer(g, sc), SK_OK);
    static const int64_t p0213[4] = { 0, 2, 1, 3 }, p0231[4] = { 0, 2, 3, 1 };
    if (fused != 2) {
        ut_node(g, "Reshape", "q_split", "q1", "split_shape", NULL, "q2");
        assert_int_equal(sk_node_add_attr_ints(ut_node(g, "Transpose", "q_tr", "q2", NULL, NULL, "q3"), "perm", 4, p0213), SK_OK);
        ut_node(g, "Reshape", "k_split", "k1", "split_shape", NULL, "k2");
        assert_int_equal(sk_node_add_attr_ints(ut_node(g, "Transpose", "k_tr", "k2", NULL, NULL, "k3"), "perm", 4, p0231), SK_OK);
        ut_node(g, "Reshape", "v_split", "v1", "split_shape", NULL, "v2");
        assert_int_equal(sk_node_add_attr_ints(ut_node(g, "Transpose", "v_tr", "v2", NULL, NULL, "v3"), "perm", 4, p0213), SK_OK);
    }
    ut_node(g, "MatMul", "scores", "q3", "k3", NULL, "s0");
    ut_node(g, "Mul", "scale_mul", "s0", "scale", NULL, "s1");
    if (ut_attention_head_bias) { /* a relative position bias: one [S,S] table per head */
        int64_t hb[4] = { 1, H, S, S };
        ut_init_f(g, "head_bias", 4, hb, &seed);
        ut_node(g, "Add", "head_bias_add", "s1", "head_bias", NULL, "s1b");
    }
    assert_int_equal(sk_node_add_attr_int(ut_node(g, "Softmax", "softmax", ut_attention_head_bias ? "s1b" : "s1", NULL, NULL, "p"),
                                          "axis", -1), SK_OK);
    ut_node(g, "MatMul", "context", "p", "v3", NULL, "c0");
    assert_int_equal(sk_node_add_attr_ints(ut_node(g, "Transpose", "c_tr", "c0", NULL, NULL, "c1"), "perm", 4, p0213), SK_OK);
    ut_node(g, "Reshape", "c_merge", "c1", "merge_shape", NULL, "c2");
    ut_node(g, "MatMul", "o_proj", "c2", "wo", NULL, "o0");
    ut_node(g, "Add", "o_bias", "o0", "bo", NULL, "y");
    return ut_wrap(g);
}
