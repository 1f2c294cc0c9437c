/* Post-training quantization of ONNX models (the library behind skiff-quant).
 *
 * Three modes rewrite a loaded model in place:
 *
 *  - SK_QUANT_DYNAMIC: int8 weights (symmetric, per output channel unless
 *    per_tensor), activations quantized at run time. MatMul and Gemm with a
 *    constant weight become DynamicQuantizeLinear + MatMulInteger + Cast +
 *    Mul (+ Add for a Gemm bias), the pattern ONNX Runtime's quantize_dynamic
 *    emits, so ONNX Runtime (CPU, web/wasm) fuses and runs it (models
 *    importing an opset below 11 get com.microsoft DynamicQuantizeMatMul
 *    instead). Large embedding tables read by Gather become com.microsoft
 *    GatherBlockQuantized (uint8 codes, bits 8).
 *  - SK_QUANT_STATIC: a QDQ model. Weights are int8 behind DequantizeLinear;
 *    activations entering quantized nodes get QuantizeLinear +
 *    DequantizeLinear (uint8, asymmetric) with ranges measured by running the
 *    float model on calibration samples in skiff's engine. Values derived
 *    from huge constants (attention masks built from the float minimum or
 *    -inf, causal masks) and values whose observed range is huge or not
 *    finite stay float.
 *  - SK_QUANT_INT4: weight-only 4-bit, block-wise along the input dimension.
 *    Each block's scale (and zero point with asym) is searched to minimise
 *    the block's reconstruction error, weighted by the calibration
 *    magnitudes of the input channels when calibration samples are given.
 *    Emitted as com.microsoft MatMulNBits (default) or as opset-21 blocked
 *    int4 DequantizeLinear + MatMul (format SK_QUANT_FORMAT_QDQ).
 *
 * The library never prints. Every failure is an sk_status with one sentence
 * in err naming the node or tensor. On failure the model may be partly
 * rewritten: free it, do not save it. */
#ifndef SK_QUANT_H
#define SK_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"
#include "sk_progress.h"
#include "sk_model.h"

typedef enum sk_quant_mode {
    SK_QUANT_DYNAMIC = 0,
    SK_QUANT_STATIC,
    SK_QUANT_INT4
} sk_quant_mode;

typedef enum sk_quant_calibrator {
    SK_QUANT_CALIB_PERCENTILE = 0, /* default: clip at the opts.percentile of |x| (two-sided) */
    SK_QUANT_CALIB_MINMAX,
    SK_QUANT_CALIB_ENTROPY,        /* KL divergence between float and quantized histograms (TensorRT's method) */
    SK_QUANT_CALIB_MSE             /* range minimising the expected squared quantization error over the histogram */
} sk_quant_calibrator;

typedef enum sk_quant_embed {
    SK_QUANT_EMBED_DEFAULT = 0, /* int8 (all modes) */
    SK_QUANT_EMBED_INT8,
    SK_QUANT_EMBED_INT4,
    SK_QUANT_EMBED_KEEP
} sk_quant_embed;

typedef enum sk_quant_format {
    SK_QUANT_FORMAT_DEFAULT = 0, /* int4: com.microsoft MatMulNBits */
    SK_QUANT_FORMAT_QDQ          /* int4: opset-21 blocked DequantizeLinear (int4/uint4) + MatMul */
} sk_quant_format;

typedef struct sk_quant_calib sk_quant_calib; /* calibration samples, sk_quant_calib.h */

typedef struct sk_quant_opts {
    sk_quant_mode mode;
    int per_tensor;             /* int8 weights: one scale per tensor instead of per output channel */
    int weight_uint8;           /* int8 weights as uint8 with zero points (ONNX Runtime's QUInt8) */
    int64_t block;              /* int4 block size: 32 (default when 0), 64 or 128 */
    int asym;                   /* int4: asymmetric blocks with zero points */
    sk_quant_format format;
    sk_quant_embed embed;
    int64_t embed_min_elems;    /* tables smaller than this stay float (0: 4096) */
    const char *const *exclude; /* node names (shell globs) to leave alone */
    size_t n_exclude;
    const char *const *op_types; /* if n_op_types > 0: only these op types are quantized */
    size_t n_op_types;
    int keep_io_float;          /* nodes reading a graph input or writing a graph output stay float */
    const sk_quant_calib *calib; /* required for static; optional for int4 (activation-aware) */
    sk_quant_calibrator calibrator;
    double percentile;          /* for SK_QUANT_CALIB_PERCENTILE, in (50, 100]; 0 means 99.99 */
    int threads;                /* worker threads for the weight math and calibration; 0: all cores */
    sk_progress progress;       /* calibration passes and weight math report here */
} sk_quant_opts;

/* Sets the defaults (dynamic mode, per channel, block 32, ...). */
void sk_quant_opts_init(sk_quant_opts *o);

/* ---- report ------------------------------------------------------------- */

typedef struct sk_quant_layer {
    char *node;          /* node label */
    char *op;            /* MatMul, Gemm, Gather */
    char *weight;        /* the float weight's name */
    int64_t rows, cols;  /* the weight's shape as stored ([K, N] for MatMul) */
    char scheme[48];     /* "int8 per-channel", "int4 b32 sym", ... */
    double sqnr_db;      /* 10 log10(sum w^2 / sum (w - dequant(w))^2); 200 when exact */
    uint64_t bytes_before, bytes_after; /* weight bytes, scales and zero points included after */
    char *output;        /* the layer's output value (same name in both models) */
    double out_sqnr_db;  /* SQNR of that output against the float model's over the evaluation
                            samples (errors of earlier layers included); NAN until sk_quant_eval */
} sk_quant_layer;

typedef struct sk_quant_skip {
    char *node;
    char *reason;        /* "excluded by --exclude", "weight is not a constant", ... */
} sk_quant_skip;

typedef struct sk_quant_act {
    char *name;          /* activation value */
    float lo, hi;        /* range used (static mode) */
    float seen_lo, seen_hi; /* min and max observed during calibration */
    int kept_float;      /* 1: not quantized */
    char *note;          /* why it stays float, or NULL */
} sk_quant_act;

typedef struct sk_quant_output_agreement {
    char *name;
    double cosine_min, cosine_mean; /* per sample cosine of the flattened output */
    double max_abs;                 /* over all samples */
    double top1;                    /* share of rows (last axis) whose argmax agrees, -1 if not float */
    uint64_t rows;
} sk_quant_output_agreement;

typedef struct sk_quant_report {
    char mode[64];                  /* "dynamic int8", "int4 b32 sym MatMulNBits", ... */
    sk_quant_layer *layers;
    size_t n_layers;
    sk_quant_skip *skipped;
    size_t n_skipped;
    sk_quant_act *acts;
    size_t n_acts;
    size_t calib_samples;
    char calibrator[32];
    uint64_t weight_bytes_before, weight_bytes_after; /* quantized layers only */
    uint64_t file_bytes_before, file_bytes_after;     /* set by the caller (sizes of the files) */
    double seconds;                 /* quantization time, set by sk_quant_model */
    /* end-to-end agreement (sk_quant_eval) */
    size_t eval_samples;
    char eval_source[16];           /* "calib" or "eval" */
    sk_quant_output_agreement *outputs;
    size_t n_outputs;
} sk_quant_report;

sk_quant_report *sk_quant_report_create(void);
void sk_quant_report_free(sk_quant_report *r); /* NULL is a no-op */

/* ---- quantization ------------------------------------------------------- */

/* Quantizes m in place as opts says. rep (may be NULL) receives the per-layer
 * details. Fails with SK_EINVAL for bad options, a missing calibration set in
 * static mode, or a model the mode cannot handle (named in err), and with
 * SK_EUNSUPPORTED when the model's opset is too old for the ops the mode emits.
 * Nodes that cannot be quantized (weight not constant, wrong dtype, ...) are
 * left float and listed in rep->skipped. */
sk_status sk_quant_model(sk_model *m, const sk_quant_opts *opts, sk_quant_report *rep, sk_error *err);

/* Runs the float model and the quantized one in skiff's engine on every sample
 * of set and fills rep's end-to-end agreement (cosine, max abs error, top-1 per
 * output) and, for every layer of rep, the SQNR of its output against the
 * float model's (in graph order, a drop shows where the error comes from).
 * source is "calib" or "eval". */
sk_status sk_quant_eval(sk_model *fp32, sk_model *quant, const sk_quant_calib *set, int threads, const char *source,
                        sk_quant_report *rep, sk_error *err);

/* Writes the report as JSON / as one self-contained HTML page (inline SVG plot
 * of per-layer SQNR, no external resources), atomically. */
sk_status sk_quant_report_write_json(const sk_quant_report *r, const char *path, sk_error *err);
sk_status sk_quant_report_write_html(const sk_quant_report *r, const char *path, sk_error *err);

/* 1 if the shell glob pattern matches name ('*', '?', '[...]'; '/' is an
 * ordinary character, so "/m/bert/encoder/..." with a star matches every node below it). */
int sk_quant_glob_match(const char *pattern, const char *name);

#endif
