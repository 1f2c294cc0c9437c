/* The fusion pass: groups of nodes of a compiled plan that one fused kernel
 * runs in a single step, without writing the intermediate tensors the
 * unfused nodes would allocate, fill and read back.
 *
 * The pass never changes the model. The engine (lib/sk_engine.c) compiles
 * every graph twice over: the plain plan, one step per node, and a fused plan
 * where each group found here is one step at the position of the group's
 * last node. It runs the fused plan unless a hook is set (a hook must see
 * every intermediate value) or fusion was turned off with
 * sk_engine_set_fusion.
 *
 * Groups (all float32 on the fast paths):
 *   Gelu          Div(x, sqrt 2) (or Mul by 1/sqrt 2) -> Erf -> Add 1 -> Mul x
 *                 -> Mul 0.5, in any of the orders exporters write it: one
 *                 pass that does the same float operations (sk_ew_gelu_graph_f32).
 *   MatMul        MatMul(A, B) with B a constant 2-D float32 matrix, then any
 *                 of: Add (a bias: its other operand a constant, or a graph
 *                 input when an exporter kept initializers as inputs), the Gelu
 *                 above, Add (a residual), LayerNormalization over the last
 *                 dim: one GEMM, then one epilogue pass per row while the row
 *                 is in cache. The Adds' operands may be the output's shape, one
 *                 row, or one value (checked at run time).
 *   int8 MatMul   [DynamicQuantizeLinear ->] MatMulInteger(A, B const) ->
 *                 Cast(float) -> Mul(scale), the scale a Mul of A's scale and
 *                 the weight's or any [N] vector (ONNX Runtime's
 *                 DynamicQuantizeMatMul / MatMulIntegerToFloat), then the same
 *                 epilogue; B is packed once and kept across runs.
 *   Softmax       [Add(x, mask) ->] Softmax(last axis) [-> IsNaN -> Where(nan,
 *                 c, softmax)], the attention pattern of PyTorch's exporter.
 *   views         Reshape, Squeeze, Unsqueeze, Flatten on their own: the output
 *                 borrows the input's bytes instead of copying them (not in
 *                 the wasm build, for its size budget).
 *
 * Each fused kernel checks at run time that the tensors fit its fast path
 * (dtypes, shapes, broadcasting) and otherwise runs the group's nodes one
 * after the other with their own kernels, so results and error messages
 * outside the fast path are those of the unfused plan. On the fast paths the
 * fused kernels call the same row kernels, in the same order, as the nodes'
 * own kernels do, so the results have the same bits as the plain plan's.
 * tests/unit/test_fuse.c checks every group both ways. Private to lib/ and
 * tests. */
#ifndef SK_FUSE_H
#define SK_FUSE_H

#include <stddef.h>
#include <stdint.h>

#include "sk_op.h"

/* What the pass sees of one value of a graph (indexed like the engine's
 * slots). */
typedef struct sk_fuse_value {
    const sk_tensor *cst; /* a constant's tensor (initializer nobody may override, Constant node), else NULL */
    int producer;         /* the step producing it, -1 for inputs, constants and outer values */
    int n_uses;           /* reads by steps (each input position counts once) and by subgraphs */
    int keep;             /* a graph output: must be produced as is */
} sk_fuse_value;

/* What the pass sees of one step (a node with its kernel), in run order. */
typedef struct sk_fuse_step {
    const Onnx__NodeProto *node;
    size_t index;         /* position of the node in its graph (messages: "Erf #12") */
    const sk_op_def *def; /* the node's kernel; NULL when the engine lacks it */
    int64_t opset;
    size_t n_in, n_out;
    const int *in, *out;  /* value indices, -1 where absent */
    int has_subgraphs;    /* steps with graph attributes are never fused */
} sk_fuse_step;

#define SK_FUSE_MAX_MEMBERS 16
#define SK_FUSE_MAX_IN 12

/* One group: its members' outputs other than the anchor's are read only
 * inside the group, so the group runs as one step where the anchor was. */
typedef struct sk_fuse_group {
    size_t n_members;
    size_t members[SK_FUSE_MAX_MEMBERS]; /* step indices, ascending; the last is the anchor */
    const sk_op_def *def;                /* the fused kernel (domain "skiff") */
    size_t n_in;
    int in[SK_FUSE_MAX_IN];              /* value indices of the fused step's inputs */
    /* The fused step's outputs are the anchor's. Its kernel reads its
     * parameters from the per-node state the engine passes it
     * (sk_op_ctx.state): the engine stores state here and calls state_free
     * when it frees the plan. */
    void *state;
    void (*state_free)(void *state);
    /* 1: a one-node group whose output 0 is, on the fast path, a view of its
     * input 0 (sk_tensor_borrow: Reshape, Squeeze, Unsqueeze, Flatten): the
     * engine must keep input 0's storage alive as long as output 0. Such
     * outputs are never graph outputs. */
    int view;
} sk_fuse_group;

/* Finds the groups of a graph of n_steps steps and n_values values. On
 * success *groups (malloc'd, NULL when none; the caller frees the array, and
 * each group's state with its state_free unless it hands it to a step) has
 * *n_groups non-overlapping groups. Fails only with SK_ENOMEM. */
sk_status sk_fuse_find(const sk_fuse_step *steps, size_t n_steps, const sk_fuse_value *values, size_t n_values,
                       sk_fuse_group **groups, size_t *n_groups, sk_error *err);

/* Number of times, in this process, that a fused step ran its nodes one by
 * one because the tensors did not fit its fast path: for tests, and for
 * finding out why a model is not as fast as it should be. */
uint64_t sk_fuse_fallback_count(void);

/* Frees groups[0..n) and their states (for callers that did not take them). */
void sk_fuse_groups_free(sk_fuse_group *groups, size_t n);

/* The gelu pattern in the graph's own arithmetic: u = x / k (pre_div) or
 * x * k, e = erf(u) + one, then (x * e) * half (order 0), (e * half) * x
 * (order 1) or (x * half) * e (order 2): the same float operations, in the
 * same order, with the same erf kernel as the unfused Div, Erf, Add and Mul
 * nodes, so the result has the same bits. In lib/sk_ops_elementwise.c. */
typedef struct sk_ew_gelu_graph {
    int pre_div, order;
    float k, one, half;
} sk_ew_gelu_graph;
void sk_ew_gelu_graph_f32(float *o, const float *x, int64_t n, const sk_ew_gelu_graph *g);

typedef struct sk_engine sk_engine;

/* Turns the fused plan on (the default) or off for later runs of e: for tests
 * that compare both and for benchmarks of what fusion buys.
 * (Declared here while sk_engine.h is frozen; implemented in sk_engine.c.) */
void sk_engine_set_fusion(sk_engine *e, int on);

/* Number of steps (kernel calls of the root graph) of e's plan with and
 * without fusion: tests check that a pattern was fused. */
size_t sk_engine_step_count(const sk_engine *e, int fused);

#endif
