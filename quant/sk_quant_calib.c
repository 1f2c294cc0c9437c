/* Calibration samples (reading and binding them), activation statistics
 * collected by running the float model in skiff's engine, and the range
 * calibrators: minmax, percentile, entropy (KL) and mse. */
#include "sk_quant_calib.h"
#include "sk_quant_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sk_model.h"
#include "sk_npy.h"

struct sk_quant_calib {
    char **paths;   /* one folder per sample */
    size_t n;
};

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir (hidden entries left out). */
static sk_status list_dir(const char *dir, char ***out, size_t *n, sk_error *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return sk_error_set(err, SK_EIO, "%s: cannot open the folder: %s", dir, strerror(errno));
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *de;
    sk_status s = SK_OK;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **a = realloc(v, nc * sizeof *a);
            if (!a) { s = SK_ENOMEM; break; }
            v = a;
            cap = nc;
        }
        if (!(v[cnt] = strdup(de->d_name))) { s = SK_ENOMEM; break; }
        cnt++;
    }
    closedir(d);
    if (s) {
        for (size_t i = 0; i < cnt; i++) free(v[i]);
        free(v);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    if (cnt) qsort(v, cnt, sizeof *v, cmp_str);
    *out = v;
    *n = cnt;
    return SK_OK;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", a, b);
    return s;
}

static int is_tensor_file(const char *name)
{
    return has_suffix(name, ".npy") || has_suffix(name, ".pb");
}

sk_status sk_quant_calib_open(const char *dir, size_t max_samples, sk_quant_calib **out, sk_error *err)
{
    *out = NULL;
    if (!is_dir(dir)) return sk_error_set(err, SK_EIO, "%s: not a folder of samples", dir);
    char **names;
    size_t n;
    sk_status s = list_dir(dir, &names, &n, err);
    if (s) return s;
    sk_quant_calib *c = calloc(1, sizeof *c);
    if (!c) {
        free_list(names, n);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    c->paths = calloc(n + 1, sizeof *c->paths);
    int files_here = 0;
    for (size_t i = 0; c->paths && i < n; i++) {
        char *p = join(dir, names[i]);
        if (!p) { s = SK_ENOMEM; break; }
        if (is_dir(p)) {
            if (!max_samples || c->n < max_samples) c->paths[c->n++] = p;
            else free(p);
        } else {
            files_here |= is_tensor_file(names[i]);
            free(p);
        }
    }
    free_list(names, n);
    if (!c->paths || s) {
        sk_quant_calib_free(c);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    if (!c->n && files_here) { /* the folder is one sample */
        c->paths[0] = strdup(dir);
        if (!c->paths[0]) {
            sk_quant_calib_free(c);
            return sk_error_set(err, SK_ENOMEM, "out of memory");
        }
        c->n = 1;
    }
    if (!c->n) {
        sk_quant_calib_free(c);
        return sk_error_set(err, SK_EINVAL, "%s: no samples (expected one sub-folder per sample with <input>.npy or "
                            "input_N.pb files)", dir);
    }
    *out = c;
    return SK_OK;
}

void sk_quant_calib_free(sk_quant_calib *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) free(c->paths[i]);
    free(c->paths);
    free(c);
}

size_t sk_quant_calib_count(const sk_quant_calib *c)
{
    return c ? c->n : 0;
}

const char *sk_quant_calib_path(const sk_quant_calib *c, size_t i)
{
    return c && i < c->n ? c->paths[i] : "";
}

void sk_quant_sample_free(sk_quant_sample *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) sk_tensor_free(&s->tensors[i]);
    free(s->tensors);
    free(s->names);
    free(s->ptrs);
    memset(s, 0, sizeof *s);
}

static int is_int_type(int dt)
{
    return dt == SK_INT8 || dt == SK_UINT8 || dt == SK_INT16 || dt == SK_UINT16 || dt == SK_INT32 || dt == SK_INT64 ||
           dt == SK_UINT32 || dt == SK_UINT64 || dt == SK_BOOL;
}

static int is_float_type(int dt)
{
    return dt == SK_FLOAT || dt == SK_DOUBLE || dt == SK_FLOAT16 || dt == SK_BFLOAT16;
}

/* Converts t in place to dtype want (integer <-> integer, float <-> float). */
static sk_status convert(sk_tensor *t, int want, const char *what, sk_error *err)
{
    if (t->dtype == want) return SK_OK;
    int ok = (is_int_type(t->dtype) && is_int_type(want)) || (is_float_type(t->dtype) && is_float_type(want));
    if (!ok)
        return sk_error_set(err, SK_EINVAL, "%s is %s but the model wants %s", what, sk_dtype_name(t->dtype),
                            sk_dtype_name(want));
    sk_tensor n = { 0 };
    sk_status s = sk_tensor_alloc(&n, want, t->rank, t->dims, err);
    if (s) return s;
    for (int64_t i = 0; i < t->numel; i++) {
        switch (want) {
        case SK_FLOAT: { float v = (float)sk_tensor_get_f64(t, i); memcpy((float *)n.data + i, &v, 4); break; }
        case SK_DOUBLE: ((double *)n.data)[i] = sk_tensor_get_f64(t, i); break;
        case SK_FLOAT16: ((uint16_t *)n.data)[i] = sk_float_to_half((float)sk_tensor_get_f64(t, i)); break;
        case SK_BFLOAT16: ((uint16_t *)n.data)[i] = sk_float_to_bf16((float)sk_tensor_get_f64(t, i)); break;
        case SK_INT8: ((int8_t *)n.data)[i] = (int8_t)sk_tensor_get_i64(t, i); break;
        case SK_UINT8: case SK_BOOL: ((uint8_t *)n.data)[i] = (uint8_t)sk_tensor_get_i64(t, i); break;
        case SK_INT16: ((int16_t *)n.data)[i] = (int16_t)sk_tensor_get_i64(t, i); break;
        case SK_UINT16: ((uint16_t *)n.data)[i] = (uint16_t)sk_tensor_get_i64(t, i); break;
        case SK_INT32: ((int32_t *)n.data)[i] = (int32_t)sk_tensor_get_i64(t, i); break;
        case SK_UINT32: ((uint32_t *)n.data)[i] = (uint32_t)sk_tensor_get_i64(t, i); break;
        case SK_INT64: ((int64_t *)n.data)[i] = sk_tensor_get_i64(t, i); break;
        case SK_UINT64: ((uint64_t *)n.data)[i] = (uint64_t)sk_tensor_get_i64(t, i); break;
        default: sk_tensor_free(&n); return sk_error_set(err, SK_EUNSUPPORTED, "%s: cannot convert to %s", what, sk_dtype_name(want));
        }
    }
    sk_tensor_free(t);
    *t = n;
    return SK_OK;
}

sk_status sk_quant_calib_load(const sk_quant_calib *c, size_t i, const sk_engine *e, sk_quant_sample *smp,
                              sk_error *err)
{
    memset(smp, 0, sizeof *smp);
    const char *dir = c->paths[i];
    size_t n_req = sk_engine_input_count(e);
    char **files;
    size_t nf;
    sk_status s = list_dir(dir, &files, &nf, err);
    if (s) return s;
    int any_npy = 0;
    for (size_t k = 0; k < nf; k++) any_npy |= has_suffix(files[k], ".npy");
    size_t cap = nf + 1;
    smp->names = calloc(cap, sizeof *smp->names);
    smp->tensors = calloc(cap, sizeof *smp->tensors);
    smp->ptrs = calloc(cap, sizeof *smp->ptrs);
    uint8_t *bound = calloc(n_req + 1, 1);
    if (!smp->names || !smp->tensors || !smp->ptrs || !bound) {
        free(bound);
        free_list(files, nf);
        sk_quant_sample_free(smp);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    for (size_t k = 0; !s && k < nf; k++) {
        const char *f = files[k];
        int npy = has_suffix(f, ".npy"), pb = has_suffix(f, ".pb");
        if (!(npy || (pb && !any_npy))) continue;
        if (pb && strncmp(f, "input_", 6)) continue; /* output_N.pb of a test_data_set */
        char *path = join(dir, f);
        if (!path) { s = sk_error_set(err, SK_ENOMEM, "out of memory"); break; }
        sk_tensor t = { 0 };
        char *tname = NULL;
        s = npy ? sk_npy_load(path, &t, err) : sk_npy_load_pb(path, &t, &tname, err);
        int64_t idx = -1;
        if (!s) {
            if (npy) {
                char stem[1024];
                snprintf(stem, sizeof stem, "%.*s", (int)(strlen(f) - 4), f);
                idx = sk_engine_input_find(e, stem);
                if (idx < 0) s = sk_error_set(err, SK_EINVAL, "%s: the model has no input named '%s'", path, stem);
            } else {
                if (tname && *tname) idx = sk_engine_input_find(e, tname);
                if (idx < 0) {
                    char *end;
                    unsigned long pos = strtoul(f + 6, &end, 10);
                    if (end == f + 6 || strcmp(end, ".pb") || pos >= n_req)
                        s = sk_error_set(err, SK_EINVAL, "%s: names no input of the model (it has %zu inputs)", path, n_req);
                    else idx = (int64_t)pos;
                }
            }
        }
        if (!s) {
            for (size_t b = 0; b < smp->n; b++)
                if (!strcmp(smp->names[b], sk_engine_input_name(e, (size_t)idx)))
                    s = sk_error_set(err, SK_EINVAL, "%s: input '%s' is given twice", path,
                                     sk_engine_input_name(e, (size_t)idx));
        }
        if (!s && (size_t)idx < n_req) {
            int dt, rank;
            sk_engine_input_info(e, (size_t)idx, &dt, &rank, NULL);
            char what[1200];
            snprintf(what, sizeof what, "%s", path);
            if (dt) s = convert(&t, dt, what, err);
            bound[idx] = 1;
        }
        if (!s) {
            smp->names[smp->n] = sk_engine_input_name(e, (size_t)idx);
            smp->tensors[smp->n] = t;
            smp->ptrs[smp->n] = &smp->tensors[smp->n];
            smp->n++;
        } else {
            sk_tensor_free(&t);
        }
        free(tname);
        free(path);
    }
    free_list(files, nf);
    for (size_t k = 0; !s && k < n_req; k++)
        if (!bound[k])
            s = sk_error_set(err, SK_EINVAL, "%s: no value for the model's input '%s' (expected %s.npy or input_%zu.pb)",
                             dir, sk_engine_input_name(e, k), sk_engine_input_name(e, k), k);
    free(bound);
    if (s) {
        /* names are borrowed; free only what is ours */
        sk_quant_sample_free(smp);
        return s;
    }
    for (size_t k = 0; k < smp->n; k++) smp->ptrs[k] = &smp->tensors[k];
    return SK_OK;
}

/* ---- statistics -------------------------------------------------------------------------- */

typedef struct collect_ctx {
    sk_qmap index;          /* value name -> index + 1 */
    sk_quant_stats *st;
    const int *chan;
    int pass;               /* 1: range, 2: histogram */
    double **chan_sum;      /* per value: sum of squares per channel */
    uint64_t *chan_rows;
    int *chan_bad;
} collect_ctx;

static void observe(collect_ctx *cc, size_t k, const sk_tensor *t)
{
    if (t->dtype != SK_FLOAT || !t->numel) return;
    sk_quant_stats *s = &cc->st[k];
    const float *x = t->data;
    int64_t n = t->numel;
    if (cc->pass == 1) {
        double lo = s->count ? s->lo : INFINITY, hi = s->count ? s->hi : -INFINITY;
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            if (!isfinite(v)) {
                s->nonfinite = 1;
                continue;
            }
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        if (lo <= hi) {
            s->lo = lo;
            s->hi = hi;
        }
        s->count += (uint64_t)n;
        if (cc->chan && cc->chan[k] && !cc->chan_bad[k] && t->rank >= 1) {
            int64_t C = t->dims[t->rank - 1];
            if (C <= 0) return;
            if (!cc->chan_sum[k]) {
                cc->chan_sum[k] = calloc((size_t)C, sizeof(double));
                if (!cc->chan_sum[k]) { cc->chan_bad[k] = 1; return; }
                s->chans = C;
            } else if (s->chans != C) {
                cc->chan_bad[k] = 1;
                return;
            }
            double *acc = cc->chan_sum[k];
            int64_t rows = n / C;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < C; j++) {
                    float v = x[r * C + j];
                    if (isfinite(v)) acc[j] += (double)v * v;
                }
            cc->chan_rows[k] += (uint64_t)rows;
        }
    } else if (s->hist) {
        double w = s->hhi - s->hlo, sc = w > 0 ? SK_QUANT_HIST_BINS / w : 0;
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            if (!isfinite(v)) continue;
            int64_t b = (int64_t)((v - s->hlo) * sc);
            if (b < 0) b = 0;
            if (b >= SK_QUANT_HIST_BINS) b = SK_QUANT_HIST_BINS - 1;
            s->hist[b]++;
        }
    }
}

static sk_status hook(void *user, const char *value_name, const Onnx__NodeProto *producer, sk_tensor *t)
{
    (void)producer;
    collect_ctx *cc = user;
    size_t k = (size_t)sk_qmap_get(&cc->index, value_name, NULL);
    if (k) observe(cc, k - 1, t);
    return SK_OK;
}

sk_status sk_quant_calib_collect(sk_model *m, const sk_quant_calib *c, int threads, size_t n, const char *const *names,
                                 const int *chan, int want_hist, sk_quant_stats *stats, const sk_progress *progress,
                                 sk_error *err)
{
    collect_ctx cc;
    memset(&cc, 0, sizeof cc);
    cc.st = stats;
    cc.chan = chan;
    cc.chan_sum = calloc(n ? n : 1, sizeof *cc.chan_sum);
    cc.chan_rows = calloc(n ? n : 1, sizeof *cc.chan_rows);
    cc.chan_bad = calloc(n ? n : 1, sizeof *cc.chan_bad);
    sk_status s = (!cc.chan_sum || !cc.chan_rows || !cc.chan_bad) ? sk_error_set(err, SK_ENOMEM, "out of memory") : SK_OK;
    for (size_t k = 0; !s && k < n; k++) {
        stats[k].name = strdup(names[k]);
        if (!stats[k].name || sk_qmap_put(&cc.index, names[k], (void *)(k + 1)))
            s = sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    sk_engine *e = NULL;
    sk_engine_opts eo = { threads > 0 ? threads : 1, NULL, 0 };
    if (!s) {
        s = sk_engine_create(m, &eo, &e, err);
        if (s) sk_error_prefix(err, "calibration: ");
    }
    size_t n_out = e ? sk_engine_output_count(e) : 0;
    sk_tensor *outs = calloc(n_out + 1, sizeof *outs);
    if (!s && !outs) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    if (!s) sk_engine_set_hook(e, hook, &cc);
    int passes = want_hist ? 2 : 1;
    for (int pass = 1; !s && pass <= passes; pass++) {
        cc.pass = pass;
        if (pass == 2)
            for (size_t k = 0; k < n; k++) {
                sk_quant_stats *st = &stats[k];
                if (!st->count) continue;
                st->hlo = st->lo < 0 ? st->lo : 0;
                st->hhi = st->hi > 0 ? st->hi : 0;
                st->hist = calloc(SK_QUANT_HIST_BINS, sizeof *st->hist);
                if (!st->hist) { s = sk_error_set(err, SK_ENOMEM, "out of memory"); break; }
            }
        size_t ns = sk_quant_calib_count(c);
        for (size_t i = 0; !s && i < ns; i++) {
            sk_progress_report(progress, "calibrating", (uint64_t)((size_t)(pass - 1) * ns + i), (uint64_t)(passes * ns));
            sk_quant_sample smp;
            s = sk_quant_calib_load(c, i, e, &smp, err);
            if (s) break;
            /* graph inputs are never a node's output: observe them here */
            for (size_t k = 0; k < smp.n; k++) {
                size_t idx = (size_t)sk_qmap_get(&cc.index, smp.names[k], NULL);
                if (idx) observe(&cc, idx - 1, &smp.tensors[k]);
            }
            s = sk_engine_run(e, smp.n, smp.names, smp.ptrs, outs, err);
            if (s) sk_error_prefix(err, "calibration sample %s: ", sk_quant_calib_path(c, i));
            for (size_t k = 0; k < n_out; k++) sk_tensor_free(&outs[k]);
            sk_quant_sample_free(&smp);
        }
    }
    if (!s) sk_progress_report(progress, "calibrating", 1, 1);
    for (size_t k = 0; k < n; k++) {
        if (!s && cc.chan_sum[k] && !cc.chan_bad[k] && cc.chan_rows[k]) {
            stats[k].chan_ms = malloc((size_t)stats[k].chans * sizeof(double));
            if (!stats[k].chan_ms) s = sk_error_set(err, SK_ENOMEM, "out of memory");
            else
                for (int64_t j = 0; j < stats[k].chans; j++)
                    stats[k].chan_ms[j] = cc.chan_sum[k][j] / (double)cc.chan_rows[k];
        }
        free(cc.chan_sum[k]);
        if (cc.chan_bad[k]) stats[k].chans = 0;
    }
    free(outs);
    free(cc.chan_sum);
    free(cc.chan_rows);
    free(cc.chan_bad);
    sk_qmap_free(&cc.index);
    sk_engine_free(e);
    return s;
}

void sk_quant_stats_clear(sk_quant_stats *s)
{
    if (!s) return;
    free(s->name);
    free(s->hist);
    free(s->chan_ms);
    memset(s, 0, sizeof *s);
}

/* ---- range calibrators -------------------------------------------------------------------- */

static double bin_lo(const sk_quant_stats *s, int64_t b)
{
    return s->hlo + (s->hhi - s->hlo) * (double)b / SK_QUANT_HIST_BINS;
}

/* Value below which a share q of the histogram's mass lies. */
static double quantile(const sk_quant_stats *s, const uint64_t *cum, double q)
{
    uint64_t total = cum[SK_QUANT_HIST_BINS - 1];
    double target = q * (double)total;
    int64_t b = 0;
    while (b < SK_QUANT_HIST_BINS - 1 && (double)cum[b] < target) b++;
    /* interpolate inside the bin */
    uint64_t before = b ? cum[b - 1] : 0, in = cum[b] - before;
    double f = in ? (target - (double)before) / (double)in : 0;
    if (f < 0) f = 0;
    if (f > 1) f = 1;
    return bin_lo(s, b) + f * (bin_lo(s, b + 1) - bin_lo(s, b));
}

/* Expected squared error of 8-bit asymmetric codes over [lo, hi]. */
static double range_mse(const sk_quant_stats *s, double lo, double hi)
{
    double step = (hi - lo) / 255.0, noise = step * step / 12.0, e = 0;
    for (int64_t b = 0; b < SK_QUANT_HIST_BINS; b++) {
        uint64_t c = s->hist[b];
        if (!c) continue;
        double x = 0.5 * (bin_lo(s, b) + bin_lo(s, b + 1));
        double d = x < lo ? lo - x : x > hi ? x - hi : 0;
        e += (double)c * (d > 0 ? d * d : noise);
    }
    return e;
}

/* KL divergence between the histogram clipped to [lo, hi] (outliers folded
 * into the edge bins) and its 256-level quantized version (TensorRT's
 * entropy calibration, on a signed range). */
static double range_kl(const sk_quant_stats *s, double lo, double hi)
{
    int64_t b0 = (int64_t)floor((lo - s->hlo) / (s->hhi - s->hlo) * SK_QUANT_HIST_BINS);
    int64_t b1 = (int64_t)ceil((hi - s->hlo) / (s->hhi - s->hlo) * SK_QUANT_HIST_BINS);
    if (b0 < 0) b0 = 0;
    if (b1 > SK_QUANT_HIST_BINS) b1 = SK_QUANT_HIST_BINS;
    int64_t nb = b1 - b0;
    if (nb < 256) return INFINITY; /* narrower than the code grid: never chosen */
    double *p = malloc((size_t)nb * sizeof *p);
    if (!p) return INFINITY;
    double total = 0;
    for (int64_t b = 0; b < nb; b++) p[b] = (double)s->hist[b0 + b];
    for (int64_t b = 0; b < b0; b++) p[0] += (double)s->hist[b];
    for (int64_t b = b1; b < SK_QUANT_HIST_BINS; b++) p[nb - 1] += (double)s->hist[b];
    for (int64_t b = 0; b < nb; b++) total += p[b];
    if (total <= 0) {
        free(p);
        return INFINITY;
    }
    double kl = 0;
    for (int q = 0; q < 256; q++) {
        int64_t a = nb * q / 256, z = nb * (q + 1) / 256;
        double sum = 0;
        int64_t nz = 0;
        for (int64_t b = a; b < z; b++) {
            sum += (double)s->hist[b0 + b]; /* the unfolded counts form Q */
            nz += s->hist[b0 + b] != 0;
        }
        for (int64_t b = a; b < z; b++) {
            if (p[b] <= 0) continue;
            double qv = s->hist[b0 + b] && nz ? sum / (double)nz : 0;
            double pn = p[b] / total, qn = qv / total;
            if (qn <= 0) qn = 1e-12; /* an outlier bin folded into an empty edge */
            kl += pn * log(pn / qn);
        }
    }
    free(p);
    return kl;
}

void sk_quant_calib_range(const sk_quant_stats *s, sk_quant_calibrator method, double percentile, double *lo,
                          double *hi)
{
    double mn = s->count ? s->lo : 0, mx = s->count ? s->hi : 0;
    *lo = mn < 0 ? mn : 0;
    *hi = mx > 0 ? mx : 0;
    if (method == SK_QUANT_CALIB_MINMAX || !s->hist || !(s->hhi > s->hlo)) return;
    uint64_t *cum = malloc(SK_QUANT_HIST_BINS * sizeof *cum);
    if (!cum) return; /* out of memory: the minmax range */
    uint64_t run = 0;
    for (int64_t b = 0; b < SK_QUANT_HIST_BINS; b++) cum[b] = run += s->hist[b];
    if (!run) {
        free(cum);
        return;
    }
    if (method == SK_QUANT_CALIB_PERCENTILE) {
        double p = (percentile > 50 && percentile <= 100 ? percentile : 99.99) / 100.0;
        double l = quantile(s, cum, 1.0 - p), h = quantile(s, cum, p);
        *lo = l < 0 ? l : 0;
        *hi = h > 0 ? h : 0;
        free(cum);
        return;
    }
    /* mse and entropy: search pairs of tail cuts */
    static const double tails[] = { 0, 1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2 };
    const int nt = (int)(sizeof tails / sizeof *tails);
    double best = INFINITY, bl = *lo, bh = *hi;
    for (int i = 0; i < nt; i++) {
        double l = tails[i] == 0 ? *lo : quantile(s, cum, tails[i]);
        if (l > 0) l = 0;
        for (int j = 0; j < nt; j++) {
            double h = tails[j] == 0 ? *hi : quantile(s, cum, 1.0 - tails[j]);
            if (h < 0) h = 0;
            if (!(h > l)) continue;
            double e = method == SK_QUANT_CALIB_MSE ? range_mse(s, l, h) : range_kl(s, l, h);
            if (e < best) {
                best = e;
                bl = l;
                bh = h;
            }
        }
    }
    free(cum);
    *lo = bl;
    *hi = bh;
}
