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
#include "util_graph.h"

#define SHARED "../shared/models"

/* ---- building graphs -------------------------------------------------------- */

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
    if (with_head_bias) { /* a relative position bias: one [S,S] table per head */
        int64_t hb[4] = { 1, H, S, S };
        ut_init_f(g, "head_bias", 4, hb, &seed);
        ut_node(g, "Add", "head_bias_add", "s1", "head_bias", NULL, "s1b");
    }
    assert_int_equal(sk_node_add_attr_int(ut_node(g, "Softmax", "softmax", with_head_bias ? "s1b" : "s1", NULL, NULL, "p"),
                                          "axis", -1), SK_OK);
    ut_node(g, "MatMul", "context", "p", "v3", NULL, "c0");
    assert_int_equal(sk_node_add_attr_ints(ut_node(g, "Transpose", "c_tr", "c0", NULL, NULL, "c1"), "perm", 4, p0213), SK_OK);
    ut_node(g, "Reshape", "c_merge", "c1", "merge_shape", NULL, "c2");
    ut_node(g, "MatMul", "o_proj", "c2", "wo", NULL, "o0");
    ut_node(g, "Add", "o_bias", "o0", "bo", NULL, "y");
    return ut_wrap(g);
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
    ut_push_vi(&g->n_input, &g->input, ut_value_info("a", 1, d));
    ut_push_vi(&g->n_output, &g->output, ut_value_info("b", 1, d));
    ut_node(g, "Add", "add", "a", "a", NULL, "b");
    assert_int_equal(sk_node_add_attr_int(ut_node(g, "Softmax", "sm", "b", NULL, NULL, "c"), "axis", 0), SK_OK);
    sk_model *m = ut_wrap(g);
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
