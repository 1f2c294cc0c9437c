/* Private to quant/: string maps, the graph rewriting context shared by the
 * modes, the weight math and the parallel job runner. */
#ifndef SK_QUANT_INTERNAL_H
#define SK_QUANT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sk_quant.h"

/* ---- string map (open addressing; keys are copied) ------------------------ */

typedef struct sk_qmap {
    char **keys;
    void **vals;
    size_t n, cap; /* cap is 0 or a power of two */
} sk_qmap;

/* Inserts or replaces. SK_ENOMEM on failure. */
sk_status sk_qmap_put(sk_qmap *m, const char *key, void *val);
/* Value for key, or NULL; *found (may be NULL) tells a stored NULL apart. */
void *sk_qmap_get(const sk_qmap *m, const char *key, int *found);
/* Adds delta to an integer-valued entry (created at 0). */
sk_status sk_qmap_add(sk_qmap *m, const char *key, intptr_t delta);
void sk_qmap_free(sk_qmap *m);

/* ---- rewriting context ------------------------------------------------------ */

/* A float weight found for a node input: an initializer (not also a graph
 * input) or the output of a Constant node, optionally through a Transpose
 * (perm [1, 0]) of one. */
typedef struct sk_qweight {
    const char *name;         /* the constant's name (initializer or Constant output) */
    sk_tensor_proto *proto;
    sk_tensor_view view;
    int via_transpose;        /* 1: the node reads Transpose(name) */
    size_t transpose_node;    /* index of that Transpose node */
    size_t const_node;        /* index+1 of the Constant node, 0 for an initializer */
} sk_qweight;

typedef struct sk_qctx {
    sk_model *m;
    sk_graph_proto *g;
    const sk_quant_opts *o;
    sk_quant_report *rep;     /* never NULL inside (a private one when the caller gave none) */
    sk_error *err;
    sk_qmap names;            /* every name in the model (values, nodes, initializers) */
    sk_qmap producer;         /* value -> index+1 of the node producing it (main graph) */
    sk_qmap uses;             /* value -> number of reads (node inputs, subgraphs, graph outputs) */
    sk_qmap inits;            /* initializer name -> sk_tensor_proto* */
    sk_qmap ginputs;          /* graph input names */
    sk_qmap goutputs;         /* graph output names */
    /* the new node list, built by the rewrite */
    sk_node_proto **nodes;
    size_t n_nodes, cap_nodes;
    /* initializers created by the rewrite, added to the graph at the end */
    sk_tensor_proto **new_inits;
    size_t n_new_inits, cap_new_inits;
    /* names of float constants the rewrite replaced (removed when unused) */
    char **replaced;
    size_t n_replaced, cap_replaced;
    sk_node_proto **created;  /* nodes made by the rewrite (freed on failure) */
    size_t n_created, cap_created;
    uint8_t *state;           /* per original node: 1 = replaced (freed at commit) */
    /* original nodes to remove when nothing reads them anymore (Transpose/Constant feeding weights) */
    uint8_t *drop;            /* g->n_node flags */
    int threads;
} sk_qctx;

/* Builds the maps for m's main graph. */
sk_status sk_qctx_init(sk_qctx *c, sk_model *m, const sk_quant_opts *o, sk_quant_report *rep, sk_error *err);
void sk_qctx_free(sk_qctx *c);

/* A fresh name derived from base (malloc'd, also recorded as used). NULL on ENOMEM. */
char *sk_qctx_unique(sk_qctx *c, const char *base);
/* Fresh name from base + suffix. */
char *sk_qctx_unique2(sk_qctx *c, const char *base, const char *suffix);

/* Appends a new node to the new node list; on failure frees n. */
sk_status sk_qctx_emit(sk_qctx *c, sk_node_proto *n);
/* Appends original node i unchanged. */
sk_status sk_qctx_keep(sk_qctx *c, size_t i);
/* Marks original node i as replaced (not emitted; freed at commit). */
void sk_qctx_replace(sk_qctx *c, size_t i);
/* Creates node op(inputs) -> outputs and appends it. name may be NULL (derived
 * from the first output). Inputs/outputs are copied. */
sk_node_proto *sk_qctx_node(sk_qctx *c, const char *op, const char *domain, const char *name, size_t n_in,
                            const char *const *in, size_t n_out, const char *const *out);
/* Same, keeping name exactly (the name of the node being replaced). */
sk_node_proto *sk_qctx_node_exact(sk_qctx *c, const char *op, const char *domain, const char *name, size_t n_in,
                                  const char *const *in, size_t n_out, const char *const *out);
/* Adds an initializer named name (copied); data is taken (malloc'd) when
 * take is 1, copied otherwise. */
sk_status sk_qctx_add_init(sk_qctx *c, const char *name, int dtype, int rank, const int64_t *dims, void *data,
                           size_t nbytes, int take);
/* Scalar/1-D helpers. */
sk_status sk_qctx_add_f32(sk_qctx *c, const char *name, int rank, const int64_t *dims, const float *v);
/* Records that the float constant w was replaced (its uses may now be gone). */
sk_status sk_qctx_replaced(sk_qctx *c, const sk_qweight *w);

/* Finds the float32 constant read by value name; returns 0 and fills w, or
 * returns 1 with a reason (static string) when it is not one. */
int sk_qctx_weight(sk_qctx *c, const char *value, sk_qweight *w, const char **reason);

/* A MatMul or Gemm whose B is a constant float32 matrix. */
typedef struct sk_qlinear {
    size_t node;
    int gemm;
    sk_qweight w;
    int64_t K, N;
    int src_nk;          /* the weight is stored [N, K] (Gemm transB, or read through a Transpose) */
    float alpha, beta;   /* Gemm's, 1 for MatMul */
    const char *bias;    /* Gemm's C input, or NULL */
} sk_qlinear;

/* 0 and fills l when node i is such a layer; 1 otherwise with *reason set to
 * why it cannot be quantized, or NULL when it is no weight layer at all (an
 * activation x activation MatMul, another op). Node filters are applied. */
int sk_qlinear_match(sk_qctx *c, size_t i, sk_qlinear *l, const char **reason);

/* Why node i is not to be quantized by the node filters (exclude globs,
 * op-types, keep-io-float), or NULL. op is the op class the mode would treat
 * it as (for op-types). */
const char *sk_qctx_filtered(sk_qctx *c, const sk_node_proto *n, const char *op);

/* Records a skipped node in the report. */
sk_status sk_qctx_skip(sk_qctx *c, const sk_node_proto *n, const char *reason);
/* Adds a layer to the report; returns it (NULL on ENOMEM). */
sk_quant_layer *sk_qctx_layer(sk_qctx *c, const sk_node_proto *n, const char *weight, int64_t rows, int64_t cols);

/* Replaces g's node list with the rewritten one, adds new initializers,
 * drops flagged nodes and removes replaced constants nobody reads anymore. */
sk_status sk_qctx_commit(sk_qctx *c);

/* 1 if n is an ONNX-domain node of type op. */
int sk_qnode_is(const sk_node_proto *n, const char *op);
/* Label for messages (name or "<op> #i"). */
const char *sk_qnode_label(const sk_node_proto *n, char *buf, size_t cap);

/* ---- weight math ------------------------------------------------------------ */

typedef struct sk_qerr {
    double sig, noise; /* sum of w^2 and of (w - dequant(w))^2 */
} sk_qerr;

double sk_qerr_db(const sk_qerr *e);

/* int8 quantization of a [rows, cols] float matrix w (row-major) along
 * channels: axis 1 = one scale per column, axis 0 = one per row, -1 = one for
 * the whole tensor. Symmetric int8 (q in [-127, 127], zero point 0) unless
 * unsigned_ (uint8 with a zero point per channel). q receives the codes in the
 * same layout, or transposed ([cols, rows]) when transpose is 1. scales and
 * zps have one entry per channel (zps only when unsigned_). */
typedef struct sk_q8_job {
    const void *w;         /* float32 data, any alignment */
    int64_t rows, cols;
    int axis;
    int transpose;
    int unsigned_;
    void *q;
    float *scales;
    uint8_t *zps;
    float scale_mul;       /* the stored scale is multiplied by this (Gemm alpha); 1 normally */
} sk_q8_job;

/* 4-bit block quantization of N rows of K values (row-major [N, K], or the
 * transposed [K, N] source when src_kn is 1), blocks of bs along K, codes 0..15.
 * Symmetric: dequant = (q - 8) * scale; asym: (q - zp) * scale. The scale of
 * each block is searched to minimise sum_k imp[k] (w_k - dequant_k)^2 (imp
 * NULL: all 1). Outputs:
 *   codes: N * nb * bs codes packed two per byte, low nibble first, so
 *          [N, nb, bs/2] bytes (padding codes past K are the zero code)
 *   scales: N * nb, zps: N * nb (asym only) */
typedef struct sk_q4_job {
    const void *w;
    int64_t N, K, bs;
    int src_kn;
    int asym;
    const float *imp;
    uint8_t *codes;
    float *scales;
    uint8_t *zps;
    float scale_mul;
} sk_q4_job;

/* 8-bit block quantization of rows (embedding tables): symmetric, codes q + 128
 * in uint8, scales N * nb. */
typedef struct sk_qb8_job {
    const void *w;
    int64_t N, K, bs;
    uint8_t *codes;
    float *scales;
} sk_qb8_job;

typedef enum sk_qjob_kind { SK_QJOB_Q8, SK_QJOB_Q4, SK_QJOB_QB8 } sk_qjob_kind;

typedef struct sk_qjob {
    sk_qjob_kind kind;
    union {
        sk_q8_job q8;
        sk_q4_job q4;
        sk_qb8_job qb8;
    } u;
    sk_qerr err;          /* filled by sk_qjobs_run */
    /* private */
    size_t n_chunks, chunk;
    sk_qerr *parts;
} sk_qjob;

/* Runs every job on up to threads threads (chunks of channels; results do not
 * depend on the thread count). */
sk_status sk_qjobs_run(sk_qjob *jobs, size_t n, int threads, sk_error *err);

/* Quantizes one block (used by tests): n values, codes 0..15. Returns the
 * scale; *zp gets the zero point (8 when symmetric). */
float sk_quant_q4_block(const float *x, const float *imp, int64_t n, int asym, uint8_t *codes, uint8_t *zp);

/* A float weight as an aligned float pointer: v->data itself when aligned,
 * otherwise a malloc'd copy put in *copy (free it). NULL on ENOMEM. */
const float *sk_qview_f32(const sk_tensor_view *v, float **copy);

/* Number of threads for opts->threads == 0. */
int sk_quant_cpu_count(void);

/* ---- modes ------------------------------------------------------------------ */

sk_status sk_quant_run_dynamic(sk_qctx *c);
sk_status sk_quant_run_int4(sk_qctx *c);
sk_status sk_quant_run_static(sk_qctx *c);

/* Embedding plan: call sk_qembed_plan for every node before running jobs, then
 * sk_qembed_emit while rewriting. */
typedef struct sk_qembed_plan_entry {
    size_t node;
    sk_qweight w;
    int bits;
    int64_t bs;
    int qdq;              /* 1: DequantizeLinear (opset 21, int4/int8 blocked) + Gather */
    size_t job;           /* index in the job array */
    uint8_t *codes;
    float *scales;
    uint8_t *zps;
    sk_quant_layer *layer;
    char *qname, *sname, *zname; /* initializers made for the table (owner only) */
    int owner;            /* 1: this entry created the initializers */
} sk_qembed_plan_entry;

/* 1 if node n (ONNX Gather) reads a large float table: fills e (bits/bs/qdq as
 * configured), adds a job to *jobs. 0 if not a candidate, -1 on error. */
int sk_qembed_plan(sk_qctx *c, size_t i, int bits, int64_t bs, int asym, int qdq, sk_qembed_plan_entry *e,
                   sk_qjob **jobs, size_t *n_jobs, size_t *cap_jobs);
/* Emits the nodes for a planned embedding Gather; owner is the entry of the
 * first Gather reading the same table (e itself when first), whose
 * initializers are made on its first emit. */
sk_status sk_qembed_emit(sk_qctx *c, sk_qembed_plan_entry *e, sk_qembed_plan_entry *owner, sk_qjob *jobs);
void sk_qembed_entry_free(sk_qembed_plan_entry *e);

/* Appends to a growable job array; returns the index or (size_t)-1. */
size_t sk_qjobs_push(sk_qjob **jobs, size_t *n, size_t *cap, const sk_qjob *j);

/* Packs codes (one per byte, 0..15) two per byte, low nibble first. */
void sk_quant_pack4(const uint8_t *codes, size_t n, uint8_t *out);
/* Code i of packed 4-bit data. */
static inline uint8_t sk_quant_nibble(const uint8_t *p, size_t i)
{
    return (uint8_t)((p[i >> 1] >> ((i & 1) * 4)) & 15);
}

/* ONNX opset upgrade to 21 for int4 QDQ: rewrites Reduce* axes attributes to
 * inputs when crossing opset 18; fails naming an op whose meaning changed. */
sk_status sk_quant_upgrade_opset21(sk_qctx *c);

#endif
