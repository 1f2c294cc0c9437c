/* Private to quant/sk_prune*.c: the plan a selection produces, the engine
 * hook that simulates a plan on the unpruned model, and the parallel loop
 * over calibration samples. */
#ifndef SK_PRUNE_INTERNAL_H
#define SK_PRUNE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sk_attn.h"
#include "sk_engine.h"
#include "sk_prune.h"
#include "sk_prune_graph.h"
#include "sk_quant_calib.h"

/* What happens to one block. */
typedef struct sk_prune_plan {
    uint8_t *drop;         /* [heads] 1: the query head is removed */
    int64_t *keep;         /* kept query heads, ascending */
    int64_t n_keep;
    int64_t *kv_keep;      /* kept key/value heads, ascending */
    int64_t n_kv_keep;
    int uneven;            /* grouped-query attention with kept groups of different sizes: the repeat
                              becomes a Gather of one key/value head per kept query head */
    float *alpha;          /* [heads] scale of each kept head's context, or NULL (all 1) */
    float *bias;           /* [o.out] the output projection's new bias, or NULL (unchanged) */
} sk_prune_plan;

void sk_prune_plan_clear(sk_prune_plan *p);
/* Fills keep/kv_keep/uneven from drop. */
sk_status sk_prune_plan_finish(const sk_attn_block *b, sk_prune_plan *p, sk_error *err);

/* The hook state of one engine. Blocks b with mask[b] set have their
 * context columns of head h multiplied by mask[b][h]; add[b] (length
 * o.out) is added to the output projection's result. ablate_block/head zero
 * one head. Statistics are collected into the per-sample arrays when the
 * pointers are set. */
typedef struct sk_prune_hook {
    const sk_attn_info *info;
    float *const *mask;           /* [n_blocks], entries may be NULL */
    float *const *add;            /* [n_blocks], entries may be NULL */
    int64_t ablate_block, ablate_head; /* -1: none */
    /* statistics, for the block stat_block (or every block when -1) */
    int64_t stat_block;
    double **ctx_sum;             /* [n_blocks][W]: column sums of the context (unmasked) */
    double **head_ss;             /* [n_blocks][heads]: sums of squares of each head's slice */
    double **out_sum;             /* [n_blocks][o.out]: column sums of the projection output */
    uint64_t *ctx_rows, *out_rows;
    sk_tensor *ctx_copy;          /* if set: copy of stat_block's context (masked) */
    sk_tensor *out_copy;          /* if set: copy of stat_block's projection output */
    /* early stop: after the context (stop_at_out 0) or the projection output
     * (1) of block stop_block (-1: never) the run ends with stopped set */
    int64_t stop_block;
    int stop_at_out;
    int stopped;
    sk_error err;                 /* why the hook failed */
} sk_prune_hook;

sk_status sk_prune_hook_fn(void *user, const char *value_name, const Onnx__NodeProto *producer, sk_tensor *t);
/* Resets h to "do nothing" for info. */
void sk_prune_hook_reset(sk_prune_hook *h, const sk_attn_info *info);
/* sk_engine_run that treats an early stop of h as success (outputs empty). */
sk_status sk_prune_run(sk_engine *e, sk_prune_hook *h, const sk_quant_sample *in, sk_tensor *outs, sk_error *err);

/* Runs fn for every sample i < n of c, on `threads` workers, each with its
 * own engine on m (created before any runs, so m is read only). fn gets the
 * worker index, the sample, its engine (whose hook it may set) and the
 * loaded inputs. The first error stops the loop. */
typedef sk_status (*sk_prune_sample_fn)(void *arg, size_t worker, size_t sample, sk_engine *e,
                                        const sk_quant_sample *in, sk_error *err);
sk_status sk_prune_foreach_sample(sk_model *m, const sk_quant_calib *c, size_t n, int threads, sk_prune_sample_fn fn,
                                  void *arg, sk_error *err);
/* The same, reporting each finished sample to progress (may be NULL) as
 * step. */
sk_status sk_prune_foreach_sample_p(sk_model *m, const sk_quant_calib *c, size_t n, int threads, sk_prune_sample_fn fn,
                                    void *arg, const sk_progress *progress, const char *step, sk_error *err);

/* Number of workers sk_prune_foreach_sample uses for n samples. */
size_t sk_prune_workers(int threads, size_t n);

/* Scores every query head (scores[b][h]) with the given method. metric gets
 * a description of what ablation compares. */
sk_status sk_prune_score_heads(sk_model *m, const sk_prune_index *ix, const sk_attn_info *info, const sk_prune_opts *o,
                               double **scores, char *metric, size_t metric_cap, sk_error *err);

/* Fits the compensation (plan[b].bias, and plan[b].alpha for LSQ) block by
 * block on the samples. */
sk_status sk_prune_compensate(sk_model *m, const sk_prune_index *ix, const sk_attn_info *info, const sk_prune_opts *o,
                              sk_prune_comp mode, sk_prune_plan *plan, sk_error *err);

/* Mean over the samples of the change of the outputs (the ablation metric)
 * between the unpruned model and each of the n plans simulated by hooks. */
sk_status sk_prune_plan_divergence(sk_model *m, const sk_prune_index *ix, const sk_attn_info *info,
                                   const sk_prune_opts *o, sk_prune_plan *const *plans, size_t n, double *div,
                                   sk_error *err);

/* The outputs of the unpruned model with the plan simulated by hooks, on
 * sample 0 (n_out tensors, owned, freed by the caller). */
sk_status sk_prune_simulate(sk_model *m, const sk_prune_index *ix, const sk_attn_info *info, const sk_prune_opts *o,
                            const sk_prune_plan *plan, sk_tensor **outs, size_t *n_out, sk_error *err);

/* Runs m (already pruned) on sample 0: n_out outputs, owned. */
sk_status sk_prune_run_first(sk_model *m, const sk_prune_opts *o, sk_tensor **outs, size_t *n_out, sk_error *err);

/* Largest relative L2 distance between two lists of outputs (float ones),
 * or -1 when a shape differs (the name goes to *which). */
double sk_prune_outputs_diff(const sk_tensor *a, const sk_tensor *b, size_t n, size_t *which);

/* Rewrites m: slices the weights and changes the constants of every block
 * with dropped heads. */
sk_status sk_prune_rewrite(sk_model *m, const sk_prune_index *ix, const sk_attn_info *info, const sk_prune_plan *plan,
                           sk_error *err);

/* Current bias of block b's output projection as float ([o.out], zeros when
 * it has none) into out. */
sk_status sk_prune_read_obias(const sk_prune_index *ix, const sk_attn_block *b, float *out, sk_error *err);
/* Block b's output projection weight as float [W, out] (row h*Dv+d is
 * context feature h*Dv+d), malloc'd into *w. */
sk_status sk_prune_read_oweight(const sk_prune_index *ix, const sk_attn_block *b, float **w, sk_error *err);

/* Element i of raw data of dtype (float32, float16, bfloat16, float64) as float. */
float sk_prune_elem_f(const void *data, int dtype, int64_t i);

/* The part of a model downstream of one value, as a model whose inputs are
 * the values its nodes read from upstream (the value itself among them).
 * It borrows m's nodes and initializers: m must outlive it, unchanged. */
typedef struct sk_prune_tail {
    sk_model *model;
    char **inputs;          /* the tail's inputs, by name */
    size_t n_inputs;
    int *from_sample;       /* 1: a graph input of m */
    size_t *out_map;        /* tail output i is m's output out_map[i] */
    size_t n_out;
    sk_tensor_proto **proxies; /* the tail's stand-ins for m's external initializers: raw_data that
                                  points into m's mapping of the file (so engines on m and on the
                                  tail see the same bytes at the same address and share their
                                  aligned copies); every field borrowed */
    size_t n_proxies;
} sk_prune_tail;

/* SK_EUNSUPPORTED (err untouched) when the downstream part has subgraphs or
 * reaches no output. */
sk_status sk_prune_tail_build(sk_model *m, const sk_prune_index *ix, const char *value, sk_prune_tail *t, sk_error *err);
void sk_prune_tail_clear(sk_prune_tail *t);

double sk_prune_now(void);

#endif
