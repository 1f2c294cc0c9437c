/* Finding multi-head attention in ONNX graphs as exporters write them.
 *
 * Two shapes are recognised:
 *
 *  - attention written out in ONNX ops (PyTorch's TorchScript and dynamo
 *    exporters: BERT, DistilBERT, ViT, GPT-2, LLaMA): a Softmax whose input
 *    comes from MatMul(Q, K^T) and whose output feeds MatMul(P, V). Q, K and V
 *    are traced back through layout ops (Reshape, Transpose, scaling,
 *    rotary embeddings, the Unsqueeze-Expand-Reshape that repeats key/value
 *    heads for grouped-query attention) to their projections: MatMul or Gemm
 *    with a constant weight, optionally followed by an Add of a constant bias,
 *    or one fused projection cut by a Split (GPT-2's c_attn) or reshaped to
 *    [.., 3, heads, head size] and indexed per part (timm, Paddle). The context
 *    (P V, heads merged back by Transpose + Reshape) is traced forward to the
 *    output projection.
 *  - ONNX Runtime's fused com.microsoft Attention (QKV projection inside the
 *    op) and MultiHeadAttention (projections outside, traced as above).
 *
 * The head count comes from the graph: the reshape that splits the query
 * into heads (its last entry is the head size; heads = query width / head
 * size, or the entry before when the last is not constant), the split sizes of
 * a fused projection, and the fused op's num_heads. Grouped-query attention
 * (fewer key/value heads than query heads) is recognised by the key/value
 * width and the head-repeat pattern; query head h uses key/value head
 * h / (heads / kv_heads).
 *
 * Along the way every constant that encodes a head count or an attention
 * width (reshape targets, expand targets, split sizes, num_heads) is
 * recorded, so a rewrite can change them (sk_prune.h).
 *
 * Node pointers point into the model's graph: they stay valid while nodes
 * are only added (not removed) and the model lives. */
#ifndef SK_ATTN_H
#define SK_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"
#include "sk_model.h"

typedef enum sk_attn_kind {
    SK_ATTN_GRAPH = 0,     /* MatMul / Softmax / MatMul in ONNX ops */
    SK_ATTN_MS_ATTENTION,  /* com.microsoft Attention */
    SK_ATTN_MS_MHA         /* com.microsoft MultiHeadAttention */
} sk_attn_kind;

/* One linear map y = x W (+ b) whose outputs [col, col + width) belong to
 * this role (all of them unless the projection is fused). The weight is
 * [in, out] (MatMul, Gemm transB=0, Attention's weights) or [out, in]
 * (transposed: Gemm transB=1). For the output projection, [col, col+width)
 * are its input features (weight rows, or columns when transposed). */
typedef struct sk_attn_proj {
    sk_node_proto *node;       /* MatMul, Gemm or the fused Attention node */
    size_t w_input;            /* which input of node is the weight */
    char *weight;              /* the weight's constant (initializer or Constant output, Identity resolved) */
    int transposed;
    int64_t in, out;           /* the weight as a map: in features -> out features */
    int64_t col, width;
    sk_node_proto *bias_node;  /* node reading the bias as input bias_input (Add, Gemm's C, Attention,
                                  MultiHeadAttention), or NULL when there is no bias */
    size_t bias_input;
    char *bias;                /* the bias constant, or NULL */
    int64_t bias_col;          /* where this role's entries start in the bias */
    char *output;              /* value the projection produces, after its bias Add if any */
} sk_attn_proj;

/* What an integer in a shape constant stands for. */
typedef enum sk_attn_dim {
    SK_ATTN_DIM_HEADS = 0,    /* query heads */
    SK_ATTN_DIM_KV_HEADS,     /* key/value heads */
    SK_ATTN_DIM_GROUP,        /* query heads per key/value head (repeat count) */
    SK_ATTN_DIM_QWIDTH,       /* heads * head_size */
    SK_ATTN_DIM_VWIDTH,       /* heads * v_head_size (the context) */
    SK_ATTN_DIM_KVWIDTH,      /* kv_heads * head_size */
    SK_ATTN_DIM_KVVWIDTH,     /* kv_heads * v_head_size */
    SK_ATTN_DIM_FUSED,        /* width of a fused QKV projection */
    SK_ATTN_DIM_SPLIT         /* the whole constant: Split sizes (Q, K, V widths) */
} sk_attn_dim;

/* One element of a constant read by node as input (or, with attr set, an
 * integer attribute) that a rewrite must change. */
typedef struct sk_attn_ref {
    sk_node_proto *node;       /* Reshape, Expand, Split, Concat (one piece of a target), Attention, ... */
    size_t input;              /* which input holds the constant */
    const char *attr;          /* NULL, or an attribute name ("num_heads", "qkv_hidden_sizes", "split") */
    int64_t elem;              /* element index in the constant (ignored for SK_ATTN_DIM_SPLIT) */
    sk_attn_dim dim;
    sk_node_proto *user;       /* the node whose shape input this is (node itself unless node is a Concat) */
    size_t user_input;
    int repeat;                /* 1: on the Expand that repeats key/value heads */
} sk_attn_ref;

/* A constant operand with one entry per query head on axis (counted from the
 * end: -3 for [.., heads, q, k] scores): ALiBi slopes, relative position
 * biases, head masks. */
typedef struct sk_attn_headwise {
    sk_node_proto *node;
    size_t input;
    int64_t axis;              /* negative */
} sk_attn_headwise;

/* Key/value head repetition for grouped-query attention: Unsqueeze(axis)
 * of the [.., kv_heads, seq, head_size] keys or values, Expand, Reshape. */
typedef struct sk_attn_repeat {
    sk_node_proto *unsqueeze;  /* NULL: none */
    int64_t axis;              /* the new axis; kv heads sit at axis - 1 */
} sk_attn_repeat;

typedef struct sk_attn_block {
    sk_attn_kind kind;
    int64_t layer;             /* 0, 1, ... in graph order */
    sk_node_proto *core;       /* the Softmax, or the fused node */
    int64_t heads, kv_heads, head_size, v_head_size;
    int64_t hidden;            /* input features of the Q projection */
    sk_attn_proj q, k, v;      /* may share node and weight (fused) */
    sk_attn_proj o;            /* output projection; col/width: the context features */
    sk_node_proto *split;      /* Split of a fused projection, or NULL */
    char *context;             /* value read by the output projection: last axis is heads * v_head_size,
                                  head h at [h * v_head_size, (h + 1) * v_head_size) */
    sk_attn_ref *refs;
    size_t n_refs;
    sk_attn_headwise *headwise;
    size_t n_headwise;
    sk_attn_repeat rep_k, rep_v;
    char **values;             /* values whose shape depends on the head count (for value_info cleanup) */
    size_t n_values;
} sk_attn_block;

/* A Softmax that looked like attention but could not be resolved. */
typedef struct sk_attn_miss {
    char *node;                /* label of the node */
    char *reason;
} sk_attn_miss;

typedef struct sk_attn_info {
    sk_attn_block *blocks;
    size_t n_blocks;
    sk_attn_miss *misses;
    size_t n_misses;
} sk_attn_info;

/* Finds the attention blocks of m's main graph. A graph without attention
 * gives an info with no blocks (not an error). Fails only on memory. */
sk_status sk_attn_find(sk_model *m, sk_attn_info **out, sk_error *err);
void sk_attn_info_free(sk_attn_info *info); /* NULL is a no-op */

/* "graph", "com.microsoft.Attention", "com.microsoft.MultiHeadAttention". */
const char *sk_attn_kind_name(sk_attn_kind k);

/* Key/value head of query head h. */
int64_t sk_attn_kv_of(const sk_attn_block *b, int64_t h);

/* Number of parameters that carry heads: Q/K/V weight columns and biases,
 * output projection rows. */
int64_t sk_attn_block_params(const sk_attn_block *b);

#endif
