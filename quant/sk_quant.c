/* The quantizer's entry point: options, report ownership, dispatch to the
 * modes. */
#include "sk_quant_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void sk_quant_opts_init(sk_quant_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mode = SK_QUANT_DYNAMIC;
    o->block = 32;
    o->calibrator = SK_QUANT_CALIB_PERCENTILE;
    o->percentile = 99.99;
}

sk_quant_report *sk_quant_report_create(void)
{
    return calloc(1, sizeof(sk_quant_report));
}

void sk_quant_report_free(sk_quant_report *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_layers; i++) {
        free(r->layers[i].node);
        free(r->layers[i].op);
        free(r->layers[i].weight);
        free(r->layers[i].output);
    }
    free(r->layers);
    for (size_t i = 0; i < r->n_skipped; i++) {
        free(r->skipped[i].node);
        free(r->skipped[i].reason);
    }
    free(r->skipped);
    for (size_t i = 0; i < r->n_acts; i++) {
        free(r->acts[i].name);
        free(r->acts[i].note);
    }
    free(r->acts);
    for (size_t i = 0; i < r->n_outputs; i++) free(r->outputs[i].name);
    free(r->outputs);
    free(r);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static sk_status check_opts(const sk_quant_opts *o, sk_error *err)
{
    if (o->mode != SK_QUANT_DYNAMIC && o->mode != SK_QUANT_STATIC && o->mode != SK_QUANT_INT4)
        return sk_error_set(err, SK_EINVAL, "unknown quantization mode %d", (int)o->mode);
    int64_t b = o->block ? o->block : 32;
    if (b != 32 && b != 64 && b != 128 && b != 16 && b != 256)
        return sk_error_set(err, SK_EINVAL, "block size %lld is not one of 16, 32, 64, 128, 256", (long long)b);
    if (o->mode == SK_QUANT_STATIC && !o->calib)
        return sk_error_set(err, SK_EINVAL, "static quantization needs calibration samples (--calib DIR)");
    double p = o->percentile ? o->percentile : 99.99;
    if (!(p > 50.0 && p <= 100.0))
        return sk_error_set(err, SK_EINVAL, "percentile %g is not in (50, 100]", p);
    if (o->format == SK_QUANT_FORMAT_QDQ && o->mode != SK_QUANT_INT4)
        return sk_error_set(err, SK_EINVAL, "--format qdq applies to int4 (static mode always writes QDQ)");
    return SK_OK;
}

sk_status sk_quant_model(sk_model *m, const sk_quant_opts *opts, sk_quant_report *rep, sk_error *err)
{
    sk_quant_opts o = *opts;
    if (!o.block) o.block = 32;
    if (!o.percentile) o.percentile = 99.99;
    sk_status s = check_opts(&o, err);
    if (s) return s;
    sk_quant_report *own = NULL;
    if (!rep) {
        rep = own = sk_quant_report_create();
        if (!rep) return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    double t0 = now_s();
    sk_qctx c;
    s = sk_qctx_init(&c, m, &o, rep, err);
    if (!s) {
        switch (o.mode) {
        case SK_QUANT_DYNAMIC:
            snprintf(rep->mode, sizeof rep->mode, "dynamic %s %s", o.weight_uint8 ? "uint8" : "int8",
                     o.per_tensor ? "per-tensor" : "per-channel");
            s = sk_quant_run_dynamic(&c);
            break;
        case SK_QUANT_STATIC:
            snprintf(rep->mode, sizeof rep->mode, "static int8 QDQ %s", o.per_tensor ? "per-tensor" : "per-channel");
            s = sk_quant_run_static(&c);
            break;
        case SK_QUANT_INT4:
            snprintf(rep->mode, sizeof rep->mode, "int4 b%lld %s%s %s", (long long)o.block, o.asym ? "asym" : "sym",
                     o.calib ? " activation-aware" : "", o.format == SK_QUANT_FORMAT_QDQ ? "QDQ" : "MatMulNBits");
            s = sk_quant_run_int4(&c);
            break;
        }
    }
    sk_qctx_free(&c);
    rep->seconds = now_s() - t0;
    sk_quant_report_free(own);
    return s;
}
