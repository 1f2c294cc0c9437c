/* Summary numbers of a model for skiff-inspect and reports: op histogram and
 * weight counts by dtype and by storage, largest tensors. */
#ifndef SK_STATS_H
#define SK_STATS_H

#include "sk_model.h"

typedef struct sk_op_count {
    char *op;         /* op_type, prefixed "domain:" outside the ONNX domain */
    uint64_t count;
} sk_op_count;

typedef struct sk_weight_bucket {
    uint64_t tensors, params, bytes;
} sk_weight_bucket;

typedef struct sk_tensor_entry {
    const sk_tensor_proto *t;
    uint64_t bytes;
    int place;        /* 0 initializer, 1 Constant node, 2 other attribute */
} sk_tensor_entry;

typedef struct sk_model_stats {
    sk_op_count *ops;            /* sorted by count, then name */
    size_t n_ops;
    uint64_t n_nodes;
    sk_weight_bucket total;      /* initializers + Constant-node tensors */
    sk_weight_bucket by_dtype[SK_DTYPE_COUNT];
    sk_weight_bucket initializer, constant, external;
    sk_tensor_entry *largest;    /* the n_largest biggest weight tensors, largest first */
    size_t n_largest;
} sk_model_stats;

/* Fills st (free with sk_model_stats_free). max_largest is how many of the
 * largest tensors to keep. */
sk_status sk_model_stats_compute(sk_model *m, size_t max_largest, sk_model_stats *st, sk_error *err);
void sk_model_stats_free(sk_model_stats *st);

#endif
