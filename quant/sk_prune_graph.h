/* Graph plumbing shared by the attention finder (sk_attn.c) and the head
 * pruner (sk_prune*.c): who produces and who reads each value of a model's
 * main graph, what constant a value holds (through Identity chains and
 * Constant nodes), and the few edits a rewrite needs (private copies of
 * shared constants, dead-code removal, stale value_info).
 *
 * An index points into the graph it was built from: rebuild it after the
 * graph changes. */
#ifndef SK_PRUNE_GRAPH_H
#define SK_PRUNE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"
#include "sk_model.h"

typedef struct sk_prune_index sk_prune_index;

/* Indexes m's main graph. *out is freed with sk_prune_index_free. */
sk_status sk_prune_index_build(sk_model *m, sk_prune_index **out, sk_error *err);
void sk_prune_index_free(sk_prune_index *ix); /* NULL is a no-op */

/* The node that produces value name, or NULL (graph input, initializer,
 * unknown). *pos (may be NULL) gets the node's position in the graph when
 * the index was built. */
sk_node_proto *sk_prune_index_producer(const sk_prune_index *ix, const char *name, size_t *pos);
/* Position of node n in the graph when the index was built, or SIZE_MAX. */
size_t sk_prune_index_pos(const sk_prune_index *ix, const sk_node_proto *n);
/* The nodes reading value name (a node reading it twice is listed twice);
 * subgraphs are not searched. Returns the count; *out points into the index. */
size_t sk_prune_index_consumers(const sk_prune_index *ix, const char *name, sk_node_proto *const **out);
/* 1 if name is a graph output or is read inside a subgraph (If/Loop/Scan). */
int sk_prune_index_escapes(const sk_prune_index *ix, const char *name);
/* 1 if name is declared as a graph input. */
int sk_prune_index_is_input(const sk_prune_index *ix, const char *name);

/* A constant value, wherever the exporter put it. */
typedef struct sk_prune_const {
    int dtype;
    int rank;
    int64_t dims[SK_MAX_RANK];
    int64_t numel;
    const void *data;            /* raw little-endian layout; valid while the model is unchanged */
    size_t nbytes;
    const char *root;            /* the initializer's or Constant's output name (Identity resolved) */
    const sk_tensor_proto *tensor; /* the tensor holding it, NULL for Constant value_int(s)/value_float(s) */
} sk_prune_const;

/* 1 and *c filled if value name is a constant: an initializer (also when
 * a graph input of the same name could override it), a Constant node's output (value, value_int(s),
 * value_float(s)), or an Identity of one. 0 otherwise (also for data that
 * cannot be viewed). */
int sk_prune_index_const(const sk_prune_index *ix, const char *name, sk_prune_const *c);

/* An integer (int32/int64) constant, also when read through one Cast to an
 * integer type (exporters write Cast(Constant) in shape computations): *c is
 * the stored constant, *as the type the reader gets. */
int sk_prune_index_int_const(const sk_prune_index *ix, const char *name, sk_prune_const *c, int *as);

/* Integer element i of a constant (int32/int64 only), or def. */
int64_t sk_prune_const_int(const sk_prune_const *c, int64_t i, int64_t def);

/* Replaces input k of node n with the name value (copied). */
sk_status sk_prune_set_input(sk_node_proto *n, size_t k, const char *value, sk_error *err);

/* Adds an initializer named after base (made unique) holding data, and
 * rewires input k of node n to it. The data is copied. */
sk_status sk_prune_add_const(sk_model *m, sk_node_proto *n, size_t k, const char *base, int dtype, int rank,
                             const int64_t *dims, const void *data, size_t nbytes, sk_error *err);

/* Removes nodes none of whose outputs is read (by a node, a subgraph or the
 * graph's outputs), repeatedly, then initializers nobody reads (and the
 * graph inputs declaring them). Returns the number of nodes removed in
 * *nodes and initializers in *inits (either may be NULL). */
sk_status sk_prune_dead_code(sk_model *m, size_t *nodes, size_t *inits, sk_error *err);

/* Removes the value_info entries of the n values named. */
void sk_prune_drop_value_info(sk_model *m, size_t n, const char *const *names);

#endif
