/* Weight-only float16: float32 weights are stored as float16 and a Cast back
 * to float32 is inserted after each, so every op still computes in float32,
 * the graph's inputs and outputs keep their types, and the model runs
 * anywhere float32 ran (ONNX Runtime's CPU provider lacks float16 kernels for
 * many ops). Halves the weight bytes. */
#ifndef SK_FP16_H
#define SK_FP16_H

#include "sk_model.h"

typedef struct sk_fp16_opts {
    int64_t min_elems;  /* tensors smaller than this stay float32 (default 1024: biases and norm scales, which cost little and carry the most error, stay exact) */
} sk_fp16_opts;

/* Converts the main graph's float32 initializers and Constant-node tensors.
 * A tensor stays float32 when it is small, holds a value float16 cannot
 * represent (|x| > 65504, inf, nan: attention masks built from the float
 * minimum), or is also a graph input (an overridable default). *converted
 * counts the tensors converted. */
sk_status sk_model_to_fp16(sk_model *m, const sk_fp16_opts *opts, size_t *converted, sk_error *err);

#endif
