/* Structured pruning of attention heads (the library behind skiff-prune).
 *
 * sk_prune_model removes whole heads from the attention blocks sk_attn_find
 * recognises, in place:
 *
 *  1. Scoring, on calibration samples run in skiff's engine:
 *     - SK_PRUNE_SCORE_ABLATION: the change of the model's outputs when the
 *       head's slice of the context (the input of the output projection) is
 *       zeroed, averaged over the samples. Outputs whose name contains
 *       "logit" are compared as distributions over their last axis (KL
 *       divergence of the ablated from the original softmax, averaged over
 *       rows); others by relative L2 distance. One forward pass per sample and
 *       head.
 *     - SK_PRUNE_SCORE_ACTIVATION: the RMS over tokens of the head's context
 *       slice times the Frobenius norm of its rows in the output projection.
 *       One forward pass per sample.
 *  2. Selection: one global ranking across layers, lowest score first;
 *     every block keeps at least min_heads query heads. With grouped-query
 *     attention query heads are dropped within their group, and a key/value
 *     head only when its whole group is.
 *  3. Compensation: block by block in graph order, with the earlier blocks
 *     already pruned, SK_PRUNE_COMP_BIAS refits the output projection's bias
 *     on the samples so the block's mean output equals the unpruned model's (a
 *     bias is added when the projection has none). SK_PRUNE_COMP_LSQ also
 *     rescales each kept head by the least-squares fit of the block's unpruned
 *     output (ridge-regularised towards 1, clamped to [0.25, 4]).
 *     SK_PRUNE_COMP_AUTO (the default) fits both and keeps the one whose
 *     model's outputs differ less from the unpruned model's on the samples
 *     (the ablation metric). SK_PRUNE_COMP_NONE leaves the rest of the block
 *     as it was: the result then equals the original model with those heads'
 *     context zeroed.
 *  4. Rewriting: Q/K/V weight columns and biases (separate or fused), the
 *     output projection's rows, and every constant that encodes a head count
 *     or an attention width (reshape and expand targets, split sizes,
 *     num_heads, per-head constants) are sliced or changed. Constants shared
 *     with other nodes are copied first; what the rewrite leaves unused is
 *     removed, and value_info of the changed values is dropped.
 *  5. Check: the pruned model is run on the first sample and compared with
 *     the original model run with the same heads zeroed (and the same
 *     compensation applied through engine hooks); a difference means the
 *     rewrite is wrong and is reported as SK_EINTERNAL.
 *
 * On failure the model may be partly rewritten: free it, do not save it. */
#ifndef SK_PRUNE_H
#define SK_PRUNE_H

#include <stddef.h>
#include <stdint.h>

#include "sk_attn.h"
#include "sk_error.h"
#include "sk_progress.h"
#include "sk_model.h"
#include "sk_quant.h"

typedef enum sk_prune_score {
    SK_PRUNE_SCORE_ABLATION = 0,
    SK_PRUNE_SCORE_ACTIVATION
} sk_prune_score;

typedef enum sk_prune_comp {
    SK_PRUNE_COMP_AUTO = 0,   /* bias or lsq, whichever changes the outputs less on the samples */
    SK_PRUNE_COMP_BIAS,
    SK_PRUNE_COMP_NONE,
    SK_PRUNE_COMP_LSQ
} sk_prune_comp;

/* One head chosen by the caller: layer (block index) and query head. */
typedef struct sk_prune_pick {
    int64_t layer, head;
} sk_prune_pick;

typedef struct sk_prune_opts {
    int64_t heads;              /* heads to remove; used when percent < 0 */
    double percent;             /* >= 0: share of all query heads to remove, rounded to the nearest head */
    int64_t min_heads;          /* query heads every block keeps (>= 1; 0 means 1) */
    sk_prune_score score;
    sk_prune_comp compensate;
    const sk_quant_calib *calib; /* samples (sk_quant_calib.h); required unless picks are given and
                                    compensate is SK_PRUNE_COMP_NONE */
    const sk_prune_pick *picks; /* if n_picks > 0: remove exactly these heads, no scoring */
    size_t n_picks;
    int threads;                /* worker threads (0: all cores) */
    int no_check;               /* 1: skip the final check run */
    sk_progress progress;       /* scoring and compensation report here */
} sk_prune_opts;

/* Defaults: 25% of the heads, ablation, automatic compensation, min_heads 1. */
void sk_prune_opts_init(sk_prune_opts *o);

typedef struct sk_prune_block_report {
    int64_t layer;
    char *core;                 /* label of the Softmax / fused node */
    char kind[40];
    int64_t heads, kv_heads, head_size;
    double *scores;             /* [heads], in the original head order; NaN when not scored */
    uint8_t *pruned;            /* [heads]: 1 if removed */
    int64_t kept, kv_kept;
    double *alpha;              /* [heads]: scale of each kept head (LSQ), or NULL */
    int bias_added;             /* 1: the output projection got a bias */
} sk_prune_block_report;

typedef struct sk_prune_report {
    char score[16];             /* "ablation", "activation", "given" */
    char metric[64];            /* what ablation compared: "KL(logits)", "rel. L2(out)", ... */
    char compensate[24];        /* "bias", "lsq", "none", "auto: lsq", ... */
    double auto_div_bias, auto_div_lsq; /* with auto: mean output change on the samples of each, else -1 */
    size_t samples;
    sk_prune_block_report *blocks;
    size_t n_blocks;
    int64_t heads_total, heads_removed;
    int64_t head_params_before, head_params_after; /* Q/K/V/O parameters that carry heads */
    double score_seconds, comp_seconds, rewrite_seconds;
    double check_rel_err;       /* largest relative L2 error of the final check, -1 if not run */
    uint64_t params_before, params_after, file_bytes_before, file_bytes_after; /* set by the caller */
} sk_prune_report;

sk_prune_report *sk_prune_report_create(void);
void sk_prune_report_free(sk_prune_report *r); /* NULL is a no-op */

/* Prunes m in place as opts says; rep (may be NULL) receives scores and
 * choices. Fails with SK_EINVAL when m has no recognisable attention (err
 * says why), when a pick names no head, when more heads are asked for than
 * min_heads allows, or when the samples do not fit the model;
 * SK_EUNSUPPORTED when the engine cannot run the model (a missing op). */
sk_status sk_prune_model(sk_model *m, const sk_prune_opts *opts, sk_prune_report *rep, sk_error *err);

/* Writes the report as JSON / as a self-contained HTML page with a heat map
 * of the scores (layer x head), atomically. */
sk_status sk_prune_report_write_json(const sk_prune_report *r, const char *model, const char *path, sk_error *err);
sk_status sk_prune_report_write_html(const sk_prune_report *r, const char *model, const char *path, sk_error *err);

#endif
