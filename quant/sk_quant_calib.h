/* Calibration and evaluation samples: a folder with one sub-folder per
 * sample (sorted by name), each holding the model's inputs as NumPy files
 * named <input name>.npy, or as ONNX TensorProto files input_N.pb (the
 * layout of ONNX's test_data_set_N folders: bound by the tensor's name when
 * it names an input, else to the N-th input). A folder that holds tensor
 * files itself is one sample. When a sample has both kinds, the .npy files
 * are used.
 *
 * Samples are read when used, one at a time, so a large set costs the memory
 * of one sample. */
#ifndef SK_QUANT_CALIB_H
#define SK_QUANT_CALIB_H

#include <stddef.h>

#include "sk_engine.h"
#include "sk_error.h"
#include "sk_quant.h"
#include "sk_tensor.h"

/* Lists the samples of dir (at most max_samples when it is not 0). Fails when
 * dir cannot be read or holds no sample. */
sk_status sk_quant_calib_open(const char *dir, size_t max_samples, sk_quant_calib **out, sk_error *err);
void sk_quant_calib_free(sk_quant_calib *c); /* NULL is a no-op */

size_t sk_quant_calib_count(const sk_quant_calib *c);
/* The sample's folder, for messages. */
const char *sk_quant_calib_path(const sk_quant_calib *c, size_t i);

/* One loaded sample, bound to an engine's inputs. */
typedef struct sk_quant_sample {
    size_t n;
    const char **names;   /* the engine's input names (borrowed from the engine) */
    sk_tensor *tensors;   /* owned */
    const sk_tensor **ptrs;
} sk_quant_sample;

/* Reads sample i for e: every input e requires must be there (an error names
 * the sample and the input), inputs e does not know are an error, and a
 * tensor whose element type differs from the declared one is converted
 * between integer types or between float types. */
sk_status sk_quant_calib_load(const sk_quant_calib *c, size_t i, const sk_engine *e, sk_quant_sample *s,
                              sk_error *err);
void sk_quant_sample_free(sk_quant_sample *s);

/* Activation statistics collected by running the float model over the set:
 * for each value in names (all of them when n_names is 0 is not allowed):
 * min, max, and a histogram of SK_QUANT_HIST_BINS bins over [min, max] (second
 * pass; fine enough that a window holding the bulk of the values still spans
 * hundreds of bins when a few outliers stretch the range); and,
 * for values whose name is in channel_names, the mean square per index of the
 * last axis (for activation-aware int4). */
typedef struct sk_quant_stats {
    char *name;
    double lo, hi;         /* observed range (finite values) */
    int nonfinite;         /* 1 if inf or nan was seen */
    uint64_t count;
    uint64_t *hist;        /* 2048 bins over [hlo, hhi], or NULL */
    double hlo, hhi;
    double *chan_ms;       /* mean square per channel, or NULL */
    int64_t chans;
} sk_quant_stats;

#define SK_QUANT_HIST_BINS 16384

/* Runs m over every sample (threads for the kernels) and collects stats for
 * (progress, may be NULL, counts sample runs over all passes)
 * the n values named; want_hist asks for the second (histogram) pass;
 * chan[i] != 0 asks for per-channel mean squares of value i. stats must
 * have n entries (zeroed); free each with sk_quant_stats_clear. */
sk_status sk_quant_calib_collect(sk_model *m, const sk_quant_calib *c, int threads, size_t n, const char *const *names,
                                 const int *chan, int want_hist, sk_quant_stats *stats, const sk_progress *progress,
                                 sk_error *err);
void sk_quant_stats_clear(sk_quant_stats *s);

/* The quantization range [lo, hi] (0 included) a calibrator picks from the
 * stats of one value for 8-bit asymmetric codes. */
void sk_quant_calib_range(const sk_quant_stats *s, sk_quant_calibrator method, double percentile, double *lo,
                          double *hi);

#endif
