/* The executor: runs a loaded ONNX graph on concrete inputs.
 *
 * sk_engine_create compiles a plan once: every node is resolved to a kernel
 * (sk_op_find with the opset its domain imports; a missing op is an error
 * naming op, domain and node, before anything runs), nodes are put in
 * topological order, values get integer slots, initializers and Constant
 * nodes become tensors that borrow the model's data (copied only when the data
 * is not 16-byte aligned; one copy shared by every engine of the process
 * that reads the same data, freed with the last of them), and a last-use
 * analysis decides when each
 * intermediate is freed. Subgraphs (If/Loop/Scan attributes) are compiled the
 * same way and see the values of their enclosing graphs.
 *
 * sk_engine_run binds the caller's inputs (dtype and rank checked against the
 * graph's declared inputs; fixed dims must match, symbolic dims bind at run
 * time and must agree wherever the same name appears), runs every node and
 * hands back the graph outputs. An op's failure is reported as
 * "node 'NAME' (OpType): what went wrong".
 *
 * An engine is used by one thread at a time; it keeps a pointer to the model,
 * which must outlive it and not change while it exists. */
#ifndef SK_ENGINE_H
#define SK_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "sk_error.h"
#include "sk_op.h"
#include "sk_tensor.h"

typedef struct sk_model sk_model;
typedef struct sk_engine sk_engine;

/* Called after a node has produced the output value_name (t), before any
 * later node reads it. The hook may read t, change its data in place, or
 * replace it (sk_tensor_alloc/copy into t; the old storage is then freed by
 * those): any dtype and shape, later nodes see the new tensor. t is owned by
 * the engine; copy what you keep. A non-OK return stops the run with that
 * status and "value 'NAME': the hook failed". Called for the nodes of
 * subgraphs too (once per execution); not for graph inputs, initializers or
 * Constant nodes (those are not computed at run time), nor for unnamed
 * outputs. */
typedef sk_status (*sk_engine_hook)(void *user, const char *value_name, const Onnx__NodeProto *producer,
                                    sk_tensor *t);

typedef struct sk_engine_opts {
    int threads;                 /* kernels may use this many threads; 0 means 1 */
    const sk_op_def *extra_ops;  /* optional table (ends with a NULL name) searched before
                                    skiff's own: custom ops, tests */
    int profile;                 /* 1: time every node (sk_engine_profile) */
} sk_engine_opts;

/* Compiles m's main graph. opts may be NULL. On failure *out is NULL and err
 * says what is wrong (a missing op: "node 'X' (Foo): op Foo of domain
 * 'ai.onnx' (opset 13) is not implemented"). */
sk_status sk_engine_create(sk_model *m, const sk_engine_opts *opts, sk_engine **out, sk_error *err);
void sk_engine_free(sk_engine *e); /* NULL is a no-op */

/* Graph inputs the caller must bind (inputs that have an initializer are left
 * out: they may still be bound by name to override the initializer). */
size_t sk_engine_input_count(const sk_engine *e);
const char *sk_engine_input_name(const sk_engine *e, size_t i);
/* Declared type of input i: element type (0 if not declared), rank (-1 if no
 * shape is declared) and up to SK_TENSOR_MAX_RANK dims (-1 where a dim is
 * symbolic or unknown). dims may be NULL. */
void sk_engine_input_info(const sk_engine *e, size_t i, int *dtype, int *rank, int64_t *dims);
/* Index of the bindable input (including initializer-backed ones, which come
 * after the required ones) named name, or -1. */
int64_t sk_engine_input_find(const sk_engine *e, const char *name);

size_t sk_engine_output_count(const sk_engine *e);
const char *sk_engine_output_name(const sk_engine *e, size_t i);
/* Declared element type of output i (0 if not declared). */
int sk_engine_output_dtype(const sk_engine *e, size_t i);

void sk_engine_set_hook(sk_engine *e, sk_engine_hook hook, void *user);

/* Runs the graph. inputs[i] is bound to the graph input named names[i]; the
 * engine reads them during the call only (they stay the caller's). Every
 * required input must be given. outputs must have sk_engine_output_count
 * entries; on success each is an owned tensor the caller frees with
 * sk_tensor_free (whatever they held before is freed first). On failure every
 * output is left empty. */
sk_status sk_engine_run(sk_engine *e, size_t n_in, const char *const *names, const sk_tensor *const *inputs,
                        sk_tensor *outputs, sk_error *err);

/* Largest total size in bytes of the intermediate tensors alive at one time
 * during the last run (graph outputs included, inputs and weights not). */
size_t sk_engine_peak_bytes(const sk_engine *e);

/* Number of kernel calls made by the last run (subgraph nodes included). */
uint64_t sk_engine_node_runs(const sk_engine *e);

/* With opts.profile: time spent per op type over all runs since create, in
 * calls of fn, most expensive first. */
void sk_engine_profile(const sk_engine *e,
                       void (*fn)(void *arg, const char *domain, const char *op, uint64_t calls, double seconds),
                       void *arg);

/* 1 if the engine has a kernel for (domain, op) at opset (Constant included),
 * considering opts->extra_ops when opts is not NULL. */
int sk_engine_op_supported(const sk_engine_opts *opts, const char *domain, const char *op, int64_t opset);

/* For control-flow kernels (lib/sk_ops_control.c): runs the graph held in the
 * attribute attr of the node ctx is running, with inputs in[0..n_in) bound to
 * the subgraph's inputs by position, values of the enclosing graphs visible,
 * and fills out[0..n_out) (owned, caller frees) with its outputs. The counts
 * must match the subgraph's. Errors go to ctx->err. */
sk_status sk_engine_run_subgraph(sk_op_ctx *ctx, const char *attr, size_t n_in, const sk_tensor *const *in,
                                 size_t n_out, sk_tensor *out);

#endif
