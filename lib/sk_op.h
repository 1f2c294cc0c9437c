/* The interface between the engine and its kernels. Every op is one row of a
 * table (sk_op_def): domain, name, the opset range it implements, and a run
 * function. Each ops file exports its own table, terminated by a row whose name
 * is NULL; lib/sk_ops.c lists the tables. Each op has a plain reference
 * implementation; fast paths live beside it and are checked against it in
 * tests. */
#ifndef SK_OP_H
#define SK_OP_H

#include "onnx.pb-c.h"
#include "sk_tensor.h"

typedef struct sk_op_ctx sk_op_ctx;

/* What a kernel sees when it runs one node. Inputs are read-only; an absent
 * optional input (empty name, or past the end) is NULL. Outputs are empty
 * tensors (rank 0, no data) that the kernel fills with sk_tensor_alloc. On
 * failure the kernel returns an error and sets err with what is wrong (the
 * engine prefixes the node's name and op). */
struct sk_op_ctx {
    const Onnx__NodeProto *node;
    int64_t opset;                 /* version imported for the node's domain */
    size_t n_in;
    const sk_tensor *const *in;
    size_t n_out;
    sk_tensor *const *out;
    int threads;                   /* >= 1 */
    sk_error *err;
    /* Runs a subgraph (If/Loop/Scan): set by the engine, NULL elsewhere. */
    void *engine;
    /* Per-node state kept across runs (prepacked weights and the like). The
     * kernel may set *state and *state_free (called with *state when the
     * engine is freed). NULL when the caller keeps no state (unit tests):
     * kernels must work without it. */
    void **state;
    void (**state_free)(void *state);
    /* Bit j (j < 64) set: input j is a constant of the model (an initializer
     * the caller did not override, or a Constant node's value): the same
     * tensor, same data pointer, at every run, so work derived from it alone
     * can be cached in *state. */
    uint64_t const_inputs;
};

typedef sk_status (*sk_op_run_fn)(sk_op_ctx *ctx);

typedef struct sk_op_def {
    const char *domain;   /* "" for ONNX, "com.microsoft", ... */
    const char *name;     /* op_type; NULL ends a table */
    int since;            /* first opset version this row handles */
    sk_op_run_fn run;
} sk_op_def;

/* Tables, one per ops file. */
extern const sk_op_def sk_ops_elementwise[];  /* lib/sk_ops_elementwise.c: unary, binary, compare, logic, Where, Cast, Clip... */
extern const sk_op_def sk_ops_shape[];        /* lib/sk_ops_shape.c: Reshape, Transpose, Concat, Gather, Slice, Expand, Range, ... */
extern const sk_op_def sk_ops_reduce[];       /* lib/sk_ops_reduce.c: Reduce*, ArgMax/Min, CumSum, Softmax, LayerNorm, ... */
extern const sk_op_def sk_ops_nn[];           /* lib/sk_ops_nn.c: MatMul, Gemm, Conv, pooling, Resize, Einsum, ... */
extern const sk_op_def sk_ops_quant[];        /* lib/sk_ops_quant.c: QuantizeLinear, MatMulInteger, MatMulNBits, ... */
extern const sk_op_def sk_ops_control[];      /* lib/sk_ops_control.c: If, Loop, Scan, Identity-likes needing the engine */

/* Finds the row for (domain, name) with the highest since <= opset; NULL when
 * the engine lacks the op. domain "ai.onnx" is the same as "". */
const sk_op_def *sk_op_find(const char *domain, const char *name, int64_t opset);

/* Calls fn(def, arg) for every row of every table (docs/ops.md generation). */
void sk_op_foreach(void (*fn)(const sk_op_def *def, void *arg), void *arg);

#endif
