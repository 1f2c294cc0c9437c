/* Finding attention blocks (quant/sk_attn.c): small graphs built in memory
 * (separate and fused projections, a graph without attention, attention
 * whose query has no projection), and the exporters' graphs in
 * ../shared/models when present. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sk_attn.h"
#include "sk_model.h"

#define SHARED "../shared/models"

/* ---- building graphs -------------------------------------------------------- */

static Onnx__ValueInfoProto *value_info(const char *name, int rank, const int64_t *dims)
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

static void push_vi(size_t *n, Onnx__ValueInfoProto ***arr, Onnx__ValueInfoProto *v)
{
    *arr = realloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = v;
}

static sk_node_proto *node(sk_graph_proto *g, const char *op, const char *name, const char *a, const char *b,
                           const char *c, const char *out)
{
    const char *ins[3] = { a, b, c };
    size_t n = c ? 3 : b ? 2 : 1;
    sk_node_proto *nd = sk_node_proto_new(op, NULL, name, n, ins, 1, &out);
    assert_non_null(nd);
    assert_int_equal(sk_graph_insert_node(g, SIZE_MAX, nd), SK_OK);
    return nd;
}

static void init_f(sk_graph_proto *g, const char *name, int rank, const int64_t *dims, unsigned *seed)
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

static void init_i(sk_graph_proto *g, const char *name, int64_t n, const int64_t *v)
{
    int64_t dims[1] = { n };
    sk_tensor_proto *t = sk_tensor_proto_new(name, SK_INT64, 1, dims, v, (size_t)n * 8);
    assert_non_null(t);
    assert_int_equal(sk_graph_add_initializer(g, t), SK_OK);
}

static sk_model *wrap(sk_graph_proto *g)
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

static int with_head_bias; /* the next attention_model adds a per-head constant to the scores */

/* x [1,S,E] -> multi-head self-attention (H heads of D) -> y [1,S,E].
 * fused: one [E,3E] projection cut by a Split (1), or reshaped to
 * [1,S,3,H,D] and indexed per part (2). q_from_input: the query is the
 * graph input itself (no projection). */
static sk_model *attention_model(int64_t H, int64_t D, int fused, int q_from_input)
{
    int64_t E = H * D, S = 5;
    unsigned seed = 42;
    sk_graph_proto *g = malloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup("attn");
    int64_t xd[3] = { 1, S, E };
    push_vi(&g->n_input, &g->input, value_info("x", 3, xd));
    push_vi(&g->n_output, &g->output, value_info("y", 3, xd));
    int64_t ee[2] = { E, E }, e1[1] = { E }, e3[2] = { E, 3 * E }, e31[1] = { 3 * E };
    int64_t split_shape[4] = { 1, -1, H, D }, merge_shape[3] = { 1, -1, E }, sizes[3] = { E, E, E };
    init_i(g, "split_shape", 4, split_shape);
    init_i(g, "merge_shape", 3, merge_shape);
    if (fused) {
        init_f(g, "wqkv", 2, e3, &seed);
        init_f(g, "bqkv", 1, e31, &seed);
        node(g, "MatMul", "qkv_proj", "x", "wqkv", NULL, "qkv0");
        node(g, "Add", "qkv_bias", "qkv0", "bqkv", NULL, "qkv1");
    }
    if (fused == 1) { /* GPT-2: a Split */
        init_i(g, "qkv_sizes", 3, sizes);
        const char *ins[2] = { "qkv1", "qkv_sizes" }, *outs[3] = { "q1", "k1", "v1" };
        sk_node_proto *sp = sk_node_proto_new("Split", NULL, "qkv_split", 2, ins, 3, outs);
        assert_int_equal(sk_node_add_attr_int(sp, "axis", 2), SK_OK);
        assert_int_equal(sk_graph_insert_node(g, SIZE_MAX, sp), SK_OK);
    } else if (fused == 2) { /* timm: [1,S,3,H,D], parts first, one Gather per part */
        static const int64_t p20314[5] = { 2, 0, 3, 1, 4 }, p0132[4] = { 0, 1, 3, 2 };
        int64_t parts_shape[5] = { 1, -1, 3, H, D };
        init_i(g, "parts_shape", 5, parts_shape);
        node(g, "Reshape", "qkv_parts", "qkv1", "parts_shape", NULL, "qkv2");
        assert_int_equal(sk_node_add_attr_ints(node(g, "Transpose", "qkv_tr", "qkv2", NULL, NULL, "qkv3"), "perm", 5, p20314),
                         SK_OK);
        const char *r[3] = { "q", "k", "v" };
        for (int64_t i = 0; i < 3; i++) {
            char idx[8], out[8], gname[16];
            snprintf(idx, sizeof idx, "i%s", r[i]);
            snprintf(out, sizeof out, "%s3%s", r[i], i == 1 ? "t" : "");
            snprintf(gname, sizeof gname, "%s_part", r[i]);
            sk_tensor_proto *t = sk_tensor_proto_new(idx, SK_INT64, 0, NULL, &i, 8);
            assert_int_equal(sk_graph_add_initializer(g, t), SK_OK);
            assert_int_equal(sk_node_add_attr_int(node(g, "Gather", gname, "qkv3", idx, NULL, out), "axis", 0), SK_OK);
        }
        assert_int_equal(sk_node_add_attr_ints(node(g, "Transpose", "k_tr", "k3t", NULL, NULL, "k3"), "perm", 4, p0132), SK_OK);
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
            init_f(g, w, 2, ee, &seed);
            init_f(g, b, 1, e1, &seed);
            if (i == 0 && q_from_input) {
                node(g, "Identity", "q_id", "x", NULL, NULL, "q1");
                continue;
            }
            node(g, "MatMul", mm, "x", w, NULL, o0);
            node(g, "Add", ad, b, o0, NULL, o1); /* bias first, as TorchScript writes it */
        }
    }
    init_f(g, "wo", 2, ee, &seed);
    init_f(g, "bo", 1, e1, &seed);
    float scale = 0.35f;
    sk_tensor_proto *sc = sk_tensor_proto_new("scale", SK_FLOAT, 0, NULL, &scale, 4);
    assert_int_equal(sk_graph_add_initializer(g, sc), SK_OK);
    static const int64_t p0213[4] = { 0, 2, 1, 3 }, p0231[4] = { 0, 2, 3, 1 };
    if (fused != 2) {
        node(g, "Reshape", "q_split", "q1", "split_shape", NULL, "q2");
        assert_int_equal(sk_node_add_attr_ints(node(g, "Transpose", "q_tr", "q2", NULL, NULL, "q3"), "perm", 4, p0213), SK_OK);
        node(g, "Reshape", "k_split", "k1", "split_shape", NULL, "k2");
        assert_int_equal(sk_node_add_attr_ints(node(g, "Transpose", "k_tr", "k2", NULL, NULL, "k3"), "perm", 4, p0231), SK_OK);
        node(g, "Reshape", "v_split", "v1", "split_shape", NULL, "v2");
        assert_int_equal(sk_node_add_attr_ints(node(g, "Transpose", "v_tr", "v2", NULL, NULL, "v3"), "perm", 4, p0213), SK_OK);
    }
    node(g, "MatMul", "scores", "q3", "k3", NULL, "s0");
    node(g, "Mul", "scale_mul", "s0", "scale", NULL, "s1");
    if (with_head_bias) { /* a relative position bias: one [S,S] table per head */
        int64_t hb[4] = { 1, H, S, S };
        init_f(g, "head_bias", 4, hb, &seed);
        node(g, "Add", "head_bias_add", "s1", "head_bias", NULL, "s1b");
    }
    assert_int_equal(sk_node_add_attr_int(node(g, "Softmax", "softmax", with_head_bias ? "s1b" : "s1", NULL, NULL, "p"),
                                          "axis", -1), SK_OK);
    node(g, "MatMul", "context", "p", "v3", NULL, "c0");
    assert_int_equal(sk_node_add_attr_ints(node(g, "Transpose", "c_tr", "c0", NULL, NULL, "c1"), "perm", 4, p0213), SK_OK);
    node(g, "Reshape", "c_merge", "c1", "merge_shape", NULL, "c2");
    node(g, "MatMul", "o_proj", "c2", "wo", NULL, "o0");
    node(g, "Add", "o_bias", "o0", "bo", NULL, "y");
    return wrap(g);
}

/* ---- tests ---------------------------------------------------------------------- */

static size_t count_dim(const sk_attn_block *b, sk_attn_dim d)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n_refs; i++) n += b->refs[i].dim == d;
    return n;
}

static void test_separate(void **state)
{
    (void)state;
    sk_model *m = attention_model(4, 8, 0, 0);
    sk_attn_info *info;
    sk_error err;
    assert_int_equal(sk_attn_find(m, &info, &err), SK_OK);
    assert_int_equal(info->n_blocks, 1);
    assert_int_equal(info->n_misses, 0);
    const sk_attn_block *b = &info->blocks[0];
    assert_int_equal(b->kind, SK_ATTN_GRAPH);
    assert_int_equal(b->heads, 4);
    assert_int_equal(b->kv_heads, 4);
    assert_int_equal(b->head_size, 8);
    assert_int_equal(b->v_head_size, 8);
    assert_int_equal(b->hidden, 32);
    assert_string_equal(b->q.weight, "wq");
    assert_string_equal(b->k.weight, "wk");
    assert_string_equal(b->v.weight, "wv");
    assert_string_equal(b->o.weight, "wo");
    assert_string_equal(b->q.bias, "bq");
    assert_string_equal(b->o.bias, "bo");
    assert_string_equal(b->q.output, "q1");
    assert_string_equal(b->o.output, "y");
    assert_string_equal(b->context, "c2");
    assert_string_equal(b->core->name, "softmax");
    assert_int_equal(b->o.col, 0);
    assert_int_equal(b->o.width, 32);
    assert_null(b->split);
    /* split_shape [1,-1,4,8]: heads for Q, kv heads for K and V; merge_shape [1,-1,32] */
    assert_int_equal(count_dim(b, SK_ATTN_DIM_HEADS), 1);
    assert_int_equal(count_dim(b, SK_ATTN_DIM_KV_HEADS), 2);
    assert_int_equal(count_dim(b, SK_ATTN_DIM_VWIDTH), 1);
    for (size_t i = 0; i < b->n_refs; i++) {
        if (b->refs[i].dim == SK_ATTN_DIM_VWIDTH) assert_int_equal(b->refs[i].elem, 2);
        else assert_int_equal(b->refs[i].elem, 2); /* [1,-1,H,D]: H at 2 */
    }
    assert_int_equal(sk_attn_block_params(b), 3 * (32 * 32 + 32) + 32 * 32);
    assert_int_equal(sk_attn_kv_of(b, 3), 3);
    sk_attn_info_free(info);
    sk_model_free(m);
}

static void test_fused(void **state)
{
    (void)state;
    sk_model *m = attention_model(2, 16, 1, 0);
    sk_attn_info *info;
    sk_error err;
    assert_int_equal(sk_attn_find(m, &info, &err), SK_OK);
    assert_int_equal(info->n_blocks, 1);
    const sk_attn_block *b = &info->blocks[0];
    assert_int_equal(b->heads, 2);
    assert_int_equal(b->head_size, 16);
    assert_ptr_equal(b->q.node, b->k.node);
    assert_ptr_equal(b->k.node, b->v.node);
    assert_string_equal(b->q.weight, "wqkv");
    assert_int_equal(b->q.col, 0);
    assert_int_equal(b->k.col, 32);
    assert_int_equal(b->v.col, 64);
    assert_int_equal(b->v.bias_col, 64);
    assert_int_equal(b->q.width, 32);
    assert_non_null(b->split);
    assert_int_equal(count_dim(b, SK_ATTN_DIM_SPLIT), 1);
    sk_attn_info_free(info);
    sk_model_free(m);
}

/* timm's and Paddle's fused QKV: [.., 3, H, D] and one index per part */
static void test_fused_parts(void **state)
{
    (void)state;
    sk_model *m = attention_model(3, 8, 2, 0);
    sk_attn_info *info;
    sk_error err;
    assert_int_equal(sk_attn_find(m, &info, &err), SK_OK);
    assert_int_equal(info->n_blocks, 1);
    const sk_attn_block *b = &info->blocks[0];
    assert_int_equal(b->heads, 3); /* as many heads as parts: the parts count must not be taken for a head count */
    assert_int_equal(b->head_size, 8);
    assert_null(b->split);
    assert_int_equal(b->q.col, 0);
    assert_int_equal(b->k.col, 24);
    assert_int_equal(b->v.col, 48);
    assert_int_equal(b->q.width, 24);
    /* [1,-1,3,H,D]: H at 3 (from Q, K and V), never the 3 at 2 */
    size_t heads = 0;
    for (size_t i = 0; i < b->n_refs; i++) {
        if (b->refs[i].dim == SK_ATTN_DIM_HEADS || b->refs[i].dim == SK_ATTN_DIM_KV_HEADS) {
            assert_int_equal(b->refs[i].elem, 3);
            heads++;
        }
    }
    assert_true(heads >= 1);
    sk_attn_info_free(info);
    sk_model_free(m);
}

static void test_head_bias(void **state)
{
    (void)state;
    with_head_bias = 1;
    sk_model *m = attention_model(4, 8, 0, 0);
    with_head_bias = 0;
    sk_attn_info *info;
    sk_error err;
    assert_int_equal(sk_attn_find(m, &info, &err), SK_OK);
    assert_int_equal(info->n_blocks, 1);
    const sk_attn_block *b = &info->blocks[0];
    assert_int_equal(b->n_headwise, 1);
    assert_string_equal(b->headwise[0].node->name, "head_bias_add");
    assert_int_equal(b->headwise[0].input, 1);
    assert_int_equal(b->headwise[0].axis, -3);
    sk_attn_info_free(info);
    sk_model_free(m);
}

static void test_no_attention(void **state)
{
    (void)state;
    sk_graph_proto *g = malloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup("add");
    int64_t d[1] = { 4 };
    push_vi(&g->n_input, &g->input, value_info("a", 1, d));
    push_vi(&g->n_output, &g->output, value_info("b", 1, d));
    node(g, "Add", "add", "a", "a", NULL, "b");
    assert_int_equal(sk_node_add_attr_int(node(g, "Softmax", "sm", "b", NULL, NULL, "c"), "axis", 0), SK_OK);
    sk_model *m = wrap(g);
    sk_attn_info *info;
    sk_error err;
    assert_int_equal(sk_attn_find(m, &info, &err), SK_OK);
    assert_int_equal(info->n_blocks, 0);
    assert_int_equal(info->n_misses, 0); /* a Softmax not between MatMuls is not a near miss */
    sk_attn_info_free(info);
    sk_model_free(m);
}

static void test_query_without_projection(void **state)
{
    (void)state;
    sk_model *m = attention_model(4, 8, 0, 1);
    sk_attn_info *info;
    sk_error err;
    assert_int_equal(sk_attn_find(m, &info, &err), SK_OK);
    assert_int_equal(info->n_blocks, 0);
    assert_int_equal(info->n_misses, 1);
    assert_non_null(strstr(info->misses[0].node, "softmax"));
    assert_non_null(strstr(info->misses[0].reason, "projection"));
    sk_attn_info_free(info);
    sk_model_free(m);
}

/* ---- exporters' graphs ------------------------------------------------------------- */

static sk_attn_info *find_file(const char *path, sk_model **m)
{
    if (access(path, R_OK)) return NULL;
    sk_error err;
    assert_int_equal(sk_model_load(path, NULL, m, &err), SK_OK);
    sk_attn_info *info;
    assert_int_equal(sk_attn_find(*m, &info, &err), SK_OK);
    return info;
}

static void test_bert_classifier(void **state)
{
    (void)state;
    sk_model *m;
    sk_attn_info *info = find_file(SHARED "/bert_bytes_cls/model.onnx", &m);
    if (!info) {
        print_message("skipped: bert_bytes_cls (" SHARED " is absent)\n");
        skip();
    }
    assert_int_equal(info->n_blocks, 4);
    for (size_t i = 0; i < 4; i++) {
        const sk_attn_block *b = &info->blocks[i];
        assert_int_equal(b->layer, (int64_t)i);
        assert_int_equal(b->heads, 8);
        assert_int_equal(b->head_size, 32);
        assert_int_equal(b->hidden, 256);
        assert_non_null(b->q.bias);
        assert_non_null(strstr(b->q.bias, "query.bias"));
        assert_non_null(strstr(b->o.bias, "output.dense.bias"));
        assert_non_null(strstr(b->core->name, "Softmax"));
    }
    sk_attn_info_free(info);
    sk_model_free(m);
}

static void test_exports(void **state)
{
    (void)state;
    static const struct { const char *name; int64_t heads, kv; int fused; } want[] = {
        { "bert_legacy", 4, 4, 0 }, { "bert_dynamo", 4, 4, 0 }, { "distilbert_legacy", 4, 4, 0 },
        { "distilbert_dynamo", 4, 4, 0 }, { "gpt2_dynamo", 4, 4, 1 }, { "llama_dynamo", 4, 2, 0 },
        { "vit_legacy", 4, 4, 0 },
    };
    int seen = 0;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char path[512];
        snprintf(path, sizeof path, SHARED "/exports/%s/model.onnx", want[i].name);
        sk_model *m;
        sk_attn_info *info = find_file(path, &m);
        if (!info) continue;
        seen++;
        assert_int_equal(info->n_blocks, 2);
        assert_int_equal(info->n_misses, 0);
        for (size_t b = 0; b < 2; b++) {
            const sk_attn_block *blk = &info->blocks[b];
            assert_int_equal(blk->heads, want[i].heads);
            assert_int_equal(blk->kv_heads, want[i].kv);
            assert_int_equal(blk->head_size, 16);
            assert_int_equal(blk->split != NULL, want[i].fused);
            if (want[i].fused) {
                /* GPT-2: c_attn [64,192] cut into Q, K, V; the [1,-1,192] before the Split is fused width */
                assert_int_equal(blk->k.col, 64);
                assert_int_equal(blk->v.col, 128);
                assert_int_equal(count_dim(blk, SK_ATTN_DIM_FUSED), 1);
                assert_int_equal(count_dim(blk, SK_ATTN_DIM_VWIDTH), 1); /* [-1, 64] before c_proj */
            }
            if (want[i].kv != want[i].heads) {
                /* LLaMA: K/V repeated by Unsqueeze-Expand-Reshape */
                assert_non_null(blk->rep_k.unsqueeze);
                assert_non_null(blk->rep_v.unsqueeze);
                assert_int_equal(count_dim(blk, SK_ATTN_DIM_GROUP), 2);
                assert_int_equal(sk_attn_kv_of(blk, 3), 1);
                assert_int_equal(blk->k.width, 32);
            }
        }
        sk_attn_info_free(info);
        sk_model_free(m);
    }
    if (!seen) {
        print_message("skipped: exports (" SHARED "/exports is absent)\n");
        skip();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separate),
        cmocka_unit_test(test_fused),
        cmocka_unit_test(test_fused_parts),
        cmocka_unit_test(test_head_bias),
        cmocka_unit_test(test_no_attention),
        cmocka_unit_test(test_query_without_projection),
        cmocka_unit_test(test_bert_classifier),
        cmocka_unit_test(test_exports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
