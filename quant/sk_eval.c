/* The quality gate: a model against its original, on the same samples. */
#include "sk_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_engine.h"
#include "sk_npy.h"
#include "sk_quant_internal.h"

static int is_float(int dt)
{
    return dt == SK_FLOAT || dt == SK_DOUBLE || dt == SK_FLOAT16 || dt == SK_BFLOAT16;
}

/* Index of output name in e, or the first float output when name is NULL;
 * SIZE_MAX when there is none. */
static size_t find_output(const sk_engine *e, const char *name)
{
    for (size_t i = 0; i < sk_engine_output_count(e); i++) {
        if (name ? !strcmp(sk_engine_output_name(e, i), name) : is_float(sk_engine_output_dtype(e, i))) return i;
    }
    return SIZE_MAX;
}

static int64_t argmax_row(const sk_tensor *t, int64_t row, int64_t C)
{
    int64_t best = 0;
    double bv = sk_tensor_get_f64(t, row * C);
    for (int64_t j = 1; j < C; j++) {
        double v = sk_tensor_get_f64(t, row * C + j);
        if (v > bv || (isnan(bv) && !isnan(v))) best = j, bv = v;
    }
    return best;
}

sk_status sk_eval_compare(sk_model *ref, sk_model *m, const sk_eval_opts *o, sk_eval_result *r, sk_error *err)
{
    memset(r, 0, sizeof *r);
    if (!o->samples) return sk_error_set(err, SK_EINVAL, "evaluation needs samples");
    sk_engine_opts eo = { o->threads > 0 ? o->threads : sk_quant_cpu_count(), NULL, 0 };
    sk_engine *er = NULL, *em = NULL;
    sk_status s = sk_engine_create(ref, &eo, &er, err);
    if (s) return sk_error_prefix(err, "evaluation, original model: ");
    s = sk_engine_create(m, &eo, &em, err);
    if (s) {
        sk_engine_free(er);
        return sk_error_prefix(err, "evaluation, compressed model: ");
    }
    size_t nr = sk_engine_output_count(er), nm = sk_engine_output_count(em);
    size_t kr = find_output(er, o->output), km = SIZE_MAX;
    sk_tensor *outr = calloc(nr + 1, sizeof *outr), *outm = calloc(nm + 1, sizeof *outm);
    if (!outr || !outm) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    else if (kr == SIZE_MAX && o->output) s = sk_error_set(err, SK_EINVAL, "the model has no output '%s'", o->output);
    else if (kr == SIZE_MAX) s = sk_error_set(err, SK_EINVAL, "the model has no float output to evaluate");
    if (!s) {
        snprintf(r->output, sizeof r->output, "%s", sk_engine_output_name(er, kr));
        km = find_output(em, r->output);
        if (km == SIZE_MAX) s = sk_error_set(err, SK_EINVAL, "the compressed model has no output '%s'", r->output);
        else if (!is_float(sk_engine_output_dtype(er, kr)))
            s = sk_error_set(err, SK_EINVAL, "output '%s' is %s, not float: it cannot be scored", r->output,
                             sk_dtype_name(sk_engine_output_dtype(er, kr)));
    }
    size_t n = sk_quant_calib_count(o->samples);
    uint64_t agree = 0, right_ref = 0, right_m = 0;
    double cos_sum = 0;
    r->cosine_min = 1;
    for (size_t i = 0; !s && i < n; i++) {
        sk_progress_report(&o->progress, "evaluating", i, n);
        sk_quant_sample smp;
        s = sk_quant_calib_load(o->samples, i, er, &smp, err);
        if (s) break;
        s = sk_engine_run(er, smp.n, smp.names, smp.ptrs, outr, err);
        if (s) sk_error_prefix(err, "original model on %s: ", sk_quant_calib_path(o->samples, i));
        if (!s) {
            s = sk_engine_run(em, smp.n, smp.names, smp.ptrs, outm, err);
            if (s) sk_error_prefix(err, "compressed model on %s: ", sk_quant_calib_path(o->samples, i));
        }
        sk_quant_sample_free(&smp);
        const sk_tensor *a = &outr[kr], *b = &outm[km];
        if (!s && (a->numel != b->numel || !is_float(b->dtype)))
            s = sk_error_set(err, SK_EINVAL, "output '%s' has %lld values in the original model and %lld (%s) in the "
                             "compressed one", r->output, (long long)a->numel, (long long)b->numel,
                             sk_dtype_name(b->dtype));
        if (!s) {
            double dot = 0, na = 0, nb = 0;
            for (int64_t j = 0; j < a->numel; j++) {
                double x = sk_tensor_get_f64(a, j), y = sk_tensor_get_f64(b, j), d = fabs(x - y);
                dot += x * y;
                na += x * x;
                nb += y * y;
                if (!(d <= r->max_abs)) r->max_abs = isnan(d) ? INFINITY : d;
            }
            double c = na > 0 && nb > 0 ? dot / sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
            if (!isfinite(c)) c = 0;
            cos_sum += c;
            if (c < r->cosine_min || i == 0) r->cosine_min = c, r->cosine_min_sample = i;
            int64_t C = a->rank ? a->dims[a->rank - 1] : 1;
            int64_t rows = C > 0 ? a->numel / C : 0;
            if (o->labels && C < 2)
                s = sk_error_set(err, SK_EINVAL, "output '%s' has %lld class%s per row: labels need at least 2",
                                 r->output, (long long)C, C == 1 ? "" : "es");
            for (int64_t k = 0; !s && k < rows; k++) {
                int64_t pa = argmax_row(a, k, C), pb = argmax_row(b, k, C);
                agree += pa == pb;
                if (o->labels) {
                    if (r->rows >= o->n_labels) {
                        s = sk_error_set(err, SK_EINVAL, "%zu labels for more rows than that (sample %s)",
                                         o->n_labels, sk_quant_calib_path(o->samples, i));
                        break;
                    }
                    int64_t want = o->labels[r->rows];
                    if (want < 0 || want >= C) {
                        s = sk_error_set(err, SK_EINVAL, "label %lld of row %llu is not a class of '%s' (0 to %lld)",
                                         (long long)want, (unsigned long long)r->rows, r->output, (long long)C - 1);
                        break;
                    }
                    right_ref += pa == want;
                    right_m += pb == want;
                }
                r->rows++;
            }
        }
        for (size_t k = 0; k < nr; k++) sk_tensor_free(&outr[k]);
        for (size_t k = 0; k < nm; k++) sk_tensor_free(&outm[k]);
        r->samples = i + 1;
    }
    if (!s && o->labels && r->rows != o->n_labels)
        s = sk_error_set(err, SK_EINVAL, "%zu labels for %llu rows of '%s' in %zu samples", o->n_labels,
                         (unsigned long long)r->rows, r->output, r->samples);
    if (!s) {
        sk_progress_report(&o->progress, "evaluating", n, n);
        r->cosine_mean = r->samples ? cos_sum / (double)r->samples : 0;
        r->agreement = r->rows ? (double)agree / (double)r->rows : 1;
        r->has_labels = o->labels != NULL;
        if (r->has_labels && r->rows) {
            r->acc_ref = (double)right_ref / (double)r->rows;
            r->acc_model = (double)right_m / (double)r->rows;
            r->accuracy_drop = r->acc_ref - r->acc_model;
        } else {
            r->accuracy_drop = 1 - r->agreement;
        }
    }
    free(outr);
    free(outm);
    sk_engine_free(er);
    sk_engine_free(em);
    return s;
}

sk_status sk_eval_load_labels(const char *path, int64_t **out, size_t *n, sk_error *err)
{
    *out = NULL;
    *n = 0;
    sk_tensor t = { 0 };
    sk_status s = sk_npy_load(path, &t, err);
    if (s) return s;
    int integer = t.dtype == SK_INT64 || t.dtype == SK_INT32 || t.dtype == SK_INT16 || t.dtype == SK_INT8 ||
                  t.dtype == SK_UINT8 || t.dtype == SK_UINT16 || t.dtype == SK_UINT32;
    if (!integer) s = sk_error_set(err, SK_EINVAL, "%s: labels must be integers, not %s", path, sk_dtype_name(t.dtype));
    else if (t.rank != 1 && !(t.rank == 2 && t.dims[1] == 1))
        s = sk_error_set(err, SK_EINVAL, "%s: labels must have shape [N] or [N, 1]", path);
    else if (t.numel == 0) s = sk_error_set(err, SK_EINVAL, "%s: no labels", path);
    int64_t *v = s ? NULL : malloc((size_t)t.numel * sizeof *v);
    if (!s && !v) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    for (int64_t i = 0; !s && i < t.numel; i++) v[i] = sk_tensor_get_i64(&t, i);
    size_t count = (size_t)t.numel;
    sk_tensor_free(&t);
    if (s) {
        free(v);
        return s;
    }
    *out = v;
    *n = count;
    return SK_OK;
}
