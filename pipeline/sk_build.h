/* The pipeline behind `skiff build`: prune, quantize, evaluate, pack, sign
 * and verify in one run, from a recipe file (docs/recipe.md) or from
 * options set by the caller.
 *
 *   load -> prune (optional) -> quantize (optional) -> evaluate -> gate
 *        -> pack + sign -> verify -> check the package runs -> install
 *
 * The model stays in memory from one stage to the next. Evaluation compares
 * the final model with the original on the evaluation samples
 * (sk_eval.h). The gate stops the run, before anything is written, when the
 * accuracy drop is above max_accuracy_drop or the mean cosine below
 * min_cosine. The package is written into a hidden sibling folder of the
 * output, verified with the public half of the signing key, loaded back and
 * run on one sample (its outputs must equal the in-memory model's exactly),
 * and only then renamed to the output (replacing an existing package when
 * force is set). A failure at any stage leaves the output as it was. */
#ifndef SK_BUILD_H
#define SK_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "sk_codec.h"
#include "sk_error.h"
#include "sk_eval.h"
#include "sk_pack.h"
#include "sk_progress.h"
#include "sk_prune.h"
#include "sk_quant.h"
#include "sk_sign.h"

typedef enum sk_build_quant {
    SK_BUILD_QUANT_NONE = 0,
    SK_BUILD_QUANT_INT8,        /* dynamic int8 (sk_quant SK_QUANT_DYNAMIC) */
    SK_BUILD_QUANT_INT8_STATIC, /* static int8 QDQ, calibrated */
    SK_BUILD_QUANT_INT4         /* weight-only int4 blocks */
} sk_build_quant;

/* Every string is owned by the opts (malloc'd), freed by sk_build_opts_free;
 * set them with sk_build_set. */
typedef struct sk_build_opts {
    char *model;             /* the ONNX model (required) */
    char *output;            /* the package folder (required) */
    char *name;              /* model name; NULL: from the model's file name */
    uint64_t version;        /* 0: the creation time */
    int64_t created;         /* Unix seconds (the caller reads SOURCE_DATE_EPOCH) */
    int force;               /* replace an existing package folder */

    int prune;               /* 1: remove heads */
    double prune_percent;    /* >= 0: share of the heads (0-100); < 0: use prune_heads */
    int64_t prune_heads;
    char *prune_calib;       /* samples for scoring (required with prune) */
    sk_prune_score prune_score;
    sk_prune_comp prune_comp;
    int64_t min_heads;

    sk_build_quant quant;
    char *quant_calib;       /* required for int8-static, optional for int4 */
    int64_t block;           /* int4 block size (0: 32) */
    char **exclude;          /* node name globs left float */
    size_t n_exclude;

    char *eval_samples;      /* NULL: the quantization samples, else the pruning samples */
    char *eval_labels;       /* .npy of classes, one per row */
    char *eval_output;       /* NULL: the first float output */
    double max_accuracy_drop; /* NAN: no gate */
    double min_cosine;        /* NAN: no gate */

    uint64_t shard_size;
    sk_codec codec;
    int level;               /* -1: the codec's default */
    uint64_t external_min;

    const sk_key_sec *key;   /* borrowed; NULL: an unsigned package */
    char *key_path;          /* where the recipe says the key is (the caller loads it) */
    int threads;             /* 0: all cores */
    sk_progress progress;
    /* Called after each stage with a one-line summary ("prune: ..."); may be NULL. */
    void (*note)(void *user, const char *stage, const char *line);
    void *note_user;
} sk_build_opts;

/* Defaults: no pruning, no quantization, no gates, the packer's defaults. */
void sk_build_opts_init(sk_build_opts *o);
void sk_build_opts_free(sk_build_opts *o);

/* Replaces the string *field with a copy of value (NULL clears it). */
sk_status sk_build_set(char **field, const char *value, sk_error *err);

/* Reads a recipe file (docs/recipe.md: a TOML subset) into o, on top of what
 * o holds. Relative paths in the recipe are taken relative to the recipe's
 * folder. Errors name the file and line: unknown sections or keys, values of
 * the wrong type, duplicates, malformed lines. key_path receives [sign] key. */
sk_status sk_build_recipe_load(const char *path, sk_build_opts *o, sk_error *err);

typedef struct sk_build_result {
    uint64_t model_bytes;          /* the input model's file (and external data) */
    uint64_t params_before, params_after; /* float parameters of the original and the final graph */
    sk_prune_report *prune;        /* NULL unless pruned */
    sk_quant_report *quant;        /* NULL unless quantized */
    int evaluated;
    sk_eval_result eval;
    int gate_failed;               /* 1: a threshold was missed; nothing was written */
    char gate[256];                /* which one, with the numbers */
    sk_pack_result pack;
    uint64_t package_bytes;        /* every file of the package as stored */
    int is_signed;
    double t_load, t_prune, t_quant, t_eval, t_pack, t_verify, t_total; /* seconds */
} sk_build_result;

void sk_build_result_free(sk_build_result *r); /* frees the reports, not r */

/* Runs the pipeline. Returns SK_OK with r->gate_failed set when a threshold
 * was missed (nothing written), an error status when a stage fails. */
sk_status sk_build_run(const sk_build_opts *o, sk_build_result *r, sk_error *err);

const char *sk_build_quant_name(sk_build_quant q);
int sk_build_quant_from_name(const char *s, sk_build_quant *q); /* 0 ok, -1 unknown */

#endif
