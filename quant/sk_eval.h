/* Evaluation of a compressed model against its original: both run in
 * skiff's engine on the same samples (sk_quant_calib.h folders), and one
 * output is compared sample by sample. The quality gate of `skiff build`.
 *
 * Measures, for the scored output:
 *  - cosine of the flattened output with the original's, per sample (mean
 *    and worst);
 *  - the largest absolute difference;
 *  - top-1 agreement: the share of rows (the output's last axis holds the
 *    classes; every other axis makes rows) whose argmax is the same;
 *  - with labels (one class per row, in sample order, rows of each sample
 *    in order): the accuracy of both models, and the drop between them.
 * Without labels the accuracy drop cannot be measured; it is bounded by the
 * share of rows whose argmax changed, 1 - agreement, which is what
 * accuracy_drop holds then (has_labels 0). */
#ifndef SK_EVAL_H
#define SK_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"
#include "sk_model.h"
#include "sk_progress.h"
#include "sk_quant_calib.h"

typedef struct sk_eval_opts {
    const sk_quant_calib *samples;
    const char *output;    /* name of the output to score; NULL: the first float output */
    const int64_t *labels; /* expected class per row, or NULL */
    size_t n_labels;       /* must equal the number of rows when labels are given */
    int threads;           /* kernel threads (0: all cores) */
    sk_progress progress;
} sk_eval_opts;

typedef struct sk_eval_result {
    char output[256];      /* the output scored */
    size_t samples;
    uint64_t rows;
    double cosine_mean, cosine_min;
    size_t cosine_min_sample; /* index of the worst sample */
    double max_abs;
    double agreement;      /* top-1 agreement, in [0, 1] */
    int has_labels;
    double acc_ref, acc_model; /* with labels: accuracy of the original and of the model */
    double accuracy_drop;  /* acc_ref - acc_model with labels, else 1 - agreement */
} sk_eval_result;

/* Runs ref and m over every sample and fills r. SK_EINVAL when the output
 * is missing from either model, is not float, differs in size between them,
 * has fewer than 2 classes while labels are given, or when the number of
 * labels differs from the number of rows, or a label is out of range. */
sk_status sk_eval_compare(sk_model *ref, sk_model *m, const sk_eval_opts *o, sk_eval_result *r, sk_error *err);

/* Reads labels from a NumPy file of integers, shape [N] or [N, 1]. *out is
 * malloc'd. */
sk_status sk_eval_load_labels(const char *path, int64_t **out, size_t *n, sk_error *err);

#endif
