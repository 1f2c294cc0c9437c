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
    sk_model *m = ut_attention_model(4, 8, 0, 0, NULL);
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
    sk_model *m = ut_attention_model(2, 16, 1, 0, NULL);
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
    sk_model *m = ut_attention_model(3, 8, 2, 0, NULL);
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
    ut_attention_head_bias = 1;
    sk_model *m = ut_attention_model(4, 8, 0, 0, NULL);
    ut_attention_head_bias = 0;
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
    sk_model *m = ut_attention_model(4, 8, 0, 1, NULL);
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
