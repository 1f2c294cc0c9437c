/* End-to-end agreement of a quantized model with its float original: both
 * run in skiff's engine on the same samples, outputs compared by name. */
#include "sk_quant_calib.h"
#include "sk_quant_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_model.h"

static int float_type(int dt)
{
    return dt == SK_FLOAT || dt == SK_DOUBLE || dt == SK_FLOAT16 || dt == SK_BFLOAT16;
}

typedef struct acc {
    double cos_min, cos_sum, max_abs;
    uint64_t rows, agree, samples;
    int float_out;
} acc;

/* Per-layer output error: the float run keeps each layer output of the
 * current sample, the quantized run compares with it. */
typedef struct layer_probe {
    sk_qmap index;        /* output value -> layer index + 1 */
    sk_tensor *ref;       /* float outputs of the current sample */
    double *sig, *noise;
    size_t n;
    int quant;            /* 0: recording (float run), 1: comparing */
    sk_error *err;
} layer_probe;

static sk_status probe_hook(void *user, const char *value_name, const Onnx__NodeProto *producer, sk_tensor *t)
{
    (void)producer;
    layer_probe *p = user;
    size_t k = (size_t)sk_qmap_get(&p->index, value_name, NULL);
    if (!k || !float_type(t->dtype)) return SK_OK;
    k--;
    if (!p->quant) return sk_tensor_copy(&p->ref[k], t, p->err);
    const sk_tensor *r = &p->ref[k];
    if (r->numel != t->numel || !r->data) return SK_OK;
    for (int64_t i = 0; i < t->numel; i++) {
        double x = sk_tensor_get_f64(r, i), d = sk_tensor_get_f64(t, i) - x;
        if (!isfinite(d)) continue;
        p->sig[k] += x * x;
        p->noise[k] += d * d;
    }
    return SK_OK;
}

static void compare(const sk_tensor *a, const sk_tensor *b, acc *r)
{
    double dot = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double x = sk_tensor_get_f64(a, i), y = sk_tensor_get_f64(b, i);
        dot += x * y;
        na += x * x;
        nb += y * y;
        double d = fabs(x - y);
        if (d > r->max_abs || isnan(d)) r->max_abs = isnan(d) ? INFINITY : d;
    }
    double cs = na > 0 && nb > 0 ? dot / sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
    if (!isfinite(cs)) cs = 0;
    if (!r->samples || cs < r->cos_min) r->cos_min = cs;
    r->cos_sum += cs;
    r->samples++;
    int64_t C = a->rank ? a->dims[a->rank - 1] : 1;
    if (C > 1) {
        int64_t rows = a->numel / C;
        for (int64_t k = 0; k < rows; k++) {
            int64_t ia = 0, ib = 0;
            for (int64_t j = 1; j < C; j++) {
                if (sk_tensor_get_f64(a, k * C + j) > sk_tensor_get_f64(a, k * C + ia)) ia = j;
                if (sk_tensor_get_f64(b, k * C + j) > sk_tensor_get_f64(b, k * C + ib)) ib = j;
            }
            r->agree += ia == ib;
        }
        r->rows += (uint64_t)rows;
    }
}

sk_status sk_quant_eval(sk_model *fp32, sk_model *quant, const sk_quant_calib *set, int threads, const char *source,
                        sk_quant_report *rep, sk_error *err)
{
    sk_engine_opts eo = { threads > 0 ? threads : sk_quant_cpu_count(), NULL, 0 };
    sk_engine *ef = NULL, *eq = NULL;
    sk_status s = sk_engine_create(fp32, &eo, &ef, err);
    if (s) return sk_error_prefix(err, "evaluation of the float model: ");
    s = sk_engine_create(quant, &eo, &eq, err);
    if (s) {
        sk_engine_free(ef);
        return sk_error_prefix(err, "evaluation of the quantized model: ");
    }
    size_t nf = sk_engine_output_count(ef), nq = sk_engine_output_count(eq);
    sk_tensor *of = calloc(nf + 1, sizeof *of), *oq = calloc(nq + 1, sizeof *oq);
    size_t *map = calloc(nf + 1, sizeof *map);
    acc *ac = calloc(nf + 1, sizeof *ac);
    layer_probe pr;
    memset(&pr, 0, sizeof pr);
    pr.n = rep->n_layers;
    pr.err = err;
    pr.ref = calloc(pr.n + 1, sizeof *pr.ref);
    pr.sig = calloc(pr.n + 1, sizeof *pr.sig);
    pr.noise = calloc(pr.n + 1, sizeof *pr.noise);
    if (!of || !oq || !map || !ac || !pr.ref || !pr.sig || !pr.noise) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    for (size_t k = 0; !s && k < pr.n; k++) {
        int dup;
        const char *o = rep->layers[k].output;
        if (!o || !*o) continue;
        sk_qmap_get(&pr.index, o, &dup);
        if (!dup && sk_qmap_put(&pr.index, o, (void *)(k + 1))) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    if (!s && pr.n) {
        sk_engine_set_hook(ef, probe_hook, &pr);
        sk_engine_set_hook(eq, probe_hook, &pr);
    }
    for (size_t i = 0; !s && i < nf; i++) {
        map[i] = SIZE_MAX;
        for (size_t k = 0; k < nq; k++)
            if (!strcmp(sk_engine_output_name(ef, i), sk_engine_output_name(eq, k))) map[i] = k;
        if (map[i] == SIZE_MAX)
            s = sk_error_set(err, SK_EINVAL, "the quantized model has no output '%s'", sk_engine_output_name(ef, i));
    }
    for (size_t i = 0; !s && i < sk_quant_calib_count(set); i++) {
        sk_quant_sample smp;
        s = sk_quant_calib_load(set, i, ef, &smp, err);
        if (s) break;
        pr.quant = 0;
        s = sk_engine_run(ef, smp.n, smp.names, smp.ptrs, of, err);
        if (!s) {
            pr.quant = 1;
            s = sk_engine_run(eq, smp.n, smp.names, smp.ptrs, oq, err);
            if (s) sk_error_prefix(err, "quantized model on %s: ", sk_quant_calib_path(set, i));
        } else {
            sk_error_prefix(err, "float model on %s: ", sk_quant_calib_path(set, i));
        }
        for (size_t k = 0; !s && k < nf; k++) {
            const sk_tensor *a = &of[k], *b = &oq[map[k]];
            if (!float_type(a->dtype)) continue;
            if (a->numel != b->numel || !float_type(b->dtype)) {
                s = sk_error_set(err, SK_EINVAL, "output '%s' has %lld values (%s) in the float model and %lld (%s) "
                                 "in the quantized one", sk_engine_output_name(ef, k), (long long)a->numel,
                                 sk_dtype_name(a->dtype), (long long)b->numel, sk_dtype_name(b->dtype));
                break;
            }
            ac[k].float_out = 1;
            compare(a, b, &ac[k]);
        }
        for (size_t k = 0; k < nf; k++) sk_tensor_free(&of[k]);
        for (size_t k = 0; k < nq; k++) sk_tensor_free(&oq[k]);
        for (size_t k = 0; k < pr.n; k++) sk_tensor_free(&pr.ref[k]);
        sk_quant_sample_free(&smp);
    }
    for (size_t k = 0; !s && k < pr.n; k++) {
        /* layers sharing an output name (none in practice) take the first's numbers */
        size_t j = (size_t)sk_qmap_get(&pr.index, rep->layers[k].output ? rep->layers[k].output : "", NULL);
        if (!j) continue;
        j--;
        rep->layers[k].out_sqnr_db = pr.noise[j] > 0 ? 10.0 * log10(pr.sig[j] / pr.noise[j])
                                     : pr.sig[j] > 0 ? 200.0 : NAN;
    }
    if (!s) {
        size_t cnt = 0;
        for (size_t k = 0; k < nf; k++) cnt += ac[k].float_out;
        sk_quant_output_agreement *v = calloc(cnt + 1, sizeof *v);
        if (!v) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        size_t w = 0;
        for (size_t k = 0; !s && k < nf; k++) {
            if (!ac[k].float_out) continue;
            v[w].name = strdup(sk_engine_output_name(ef, k));
            if (!v[w].name) { s = sk_error_set(err, SK_ENOMEM, "out of memory"); break; }
            v[w].cosine_min = ac[k].cos_min;
            v[w].cosine_mean = ac[k].samples ? ac[k].cos_sum / (double)ac[k].samples : 0;
            v[w].max_abs = ac[k].max_abs;
            v[w].top1 = ac[k].rows ? (double)ac[k].agree / (double)ac[k].rows : -1;
            v[w].rows = ac[k].rows;
            w++;
        }
        if (s) {
            for (size_t k = 0; k < w; k++) free(v[k].name);
            free(v);
        } else {
            for (size_t k = 0; k < rep->n_outputs; k++) free(rep->outputs[k].name);
            free(rep->outputs);
            rep->outputs = v;
            rep->n_outputs = w;
            rep->eval_samples = sk_quant_calib_count(set);
            snprintf(rep->eval_source, sizeof rep->eval_source, "%s", source ? source : "eval");
        }
    }
    free(of);
    free(oq);
    free(map);
    free(ac);
    for (size_t k = 0; k < pr.n && pr.ref; k++) sk_tensor_free(&pr.ref[k]);
    free(pr.ref);
    free(pr.sig);
    free(pr.noise);
    sk_qmap_free(&pr.index);
    sk_engine_free(ef);
    sk_engine_free(eq);
    return s;
}
