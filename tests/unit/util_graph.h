/* Graph-building helpers for unit tests (tests/unit/util_graph.c). */
#ifndef UTIL_GRAPH_H
#define UTIL_GRAPH_H

#include "sk_model.h"

/* A float32 graph input/output; rank -1: no shape. */
Onnx__ValueInfoProto *ut_value_info(const char *name, int rank, const int64_t *dims);
/* Appends v to the array *arr of *n entries. */
void ut_push_vi(size_t *n, Onnx__ValueInfoProto ***arr, Onnx__ValueInfoProto *v);
/* Appends a node with inputs a (b, c may be NULL) and one output. */
sk_node_proto *ut_node(sk_graph_proto *g, const char *op, const char *name, const char *a, const char *b,
                       const char *c, const char *out);
/* A float32 initializer of pseudo-random values in [-0.3, 0.3) from *seed. */
void ut_init_f(sk_graph_proto *g, const char *name, int rank, const int64_t *dims, unsigned *seed);
/* An int64 vector initializer. */
void ut_init_i(sk_graph_proto *g, const char *name, int64_t n, const int64_t *v);
/* Wraps g in an opset-17 ModelProto and an sk_model (which owns it). */
sk_model *ut_wrap(sk_graph_proto *g);

/* x [1,5,H*D] -> multi-head self-attention (H heads of D) -> y (tests of
 * sk_attn and sk_prune; util_graph.c says more). */
/* 1: the next ut_attention_model adds a per-head constant to the scores. */
extern int ut_attention_head_bias;
sk_model *ut_attention_model(int64_t H, int64_t D, int fused, int q_from_input, const int *zero_heads);

#endif
