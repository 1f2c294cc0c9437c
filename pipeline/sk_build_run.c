/* skiff build: the stages in one run (sk_build.h). */
#include "sk_build.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sk_engine.h"
#include "sk_stats.h"

static const char *quant_names[] = { "none", "int8", "int8-static", "int4" };

const char *sk_build_quant_name(sk_build_quant q)
{
    return (unsigned)q < 4 ? quant_names[q] : "?";
}

int sk_build_quant_from_name(const char *s, sk_build_quant *q)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, quant_names[i])) {
            *q = (sk_build_quant)i;
            return 0;
        }
    if (!strcmp(s, "dynamic")) { *q = SK_BUILD_QUANT_INT8; return 0; }
    if (!strcmp(s, "static")) { *q = SK_BUILD_QUANT_INT8_STATIC; return 0; }
    return -1;
}

void sk_build_opts_init(sk_build_opts *o)
{
    memset(o, 0, sizeof *o);
    o->prune_percent = -1;
    o->prune_score = SK_PRUNE_SCORE_ABLATION;
    o->prune_comp = SK_PRUNE_COMP_AUTO;
    o->min_heads = 1;
    o->quant = SK_BUILD_QUANT_NONE;
    o->max_accuracy_drop = NAN;
    o->min_cosine = NAN;
    o->shard_size = SK_PACK_DEFAULT_SHARD_SIZE;
    o->codec = SK_CODEC_BROTLI;
    o->level = -1;
    o->external_min = SK_PACK_DEFAULT_EXTERNAL_MIN;
}

void sk_build_opts_free(sk_build_opts *o)
{
    free(o->model);
    free(o->output);
    free(o->name);
    free(o->prune_calib);
    free(o->quant_calib);
    for (size_t i = 0; i < o->n_exclude; i++) free(o->exclude[i]);
    free(o->exclude);
    free(o->eval_samples);
    free(o->eval_labels);
    free(o->eval_output);
    free(o->key_path);
    memset(o, 0, sizeof *o);
}

sk_status sk_build_set(char **field, const char *value, sk_error *err)
{
    char *c = NULL;
    if (value && !(c = strdup(value))) return sk_error_set(err, SK_ENOMEM, "out of memory");
    free(*field);
    *field = c;
    return SK_OK;
}

void sk_build_result_free(sk_build_result *r)
{
    sk_prune_report_free(r->prune);
    sk_quant_report_free(r->quant);
    r->prune = NULL;
    r->quant = NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void note(const sk_build_opts *o, const char *stage, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(const sk_build_opts *o, const char *stage, const char *fmt, ...)
{
    if (!o->note) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->note(o->note_user, stage, line);
}

static uint64_t params_of(sk_model *m)
{
    sk_model_stats st;
    sk_error e = { 0 };
    if (sk_model_stats_compute(m, 0, &st, &e)) return 0;
    uint64_t n = st.total.params;
    sk_model_stats_free(&st);
    return n;
}

/* Removes a folder holding only regular files (a package). */
static void remove_flat(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(path);
}

/* "dir/.name.build.PID" next to output. */
static char *sibling(const char *output, const char *tag)
{
    size_t n = strlen(output);
    while (n > 1 && output[n - 1] == '/') n--;
    const char *base = output;
    for (size_t i = 0; i < n; i++)
        if (output[i] == '/') base = output + i + 1;
    size_t dl = (size_t)(base - output), bl = n - dl, cap = n + 64;
    char *p = malloc(cap);
    if (p) snprintf(p, cap, "%.*s.%.*s.%s.%ld", (int)dl, output, (int)bl, base, tag, (long)getpid());
    return p;
}

/* The unpacked package, loaded back, gives exactly m's outputs on one sample. */
static sk_status check_package(const char *pkg, sk_model *m, const sk_quant_calib *samples, const sk_pack_verify_opts *vo,
                               int threads, sk_error *err)
{
    char *tmp = sibling(pkg, "check");
    if (!tmp) return sk_error_set(err, SK_ENOMEM, "out of memory");
    sk_pack_report rep;
    memset(&rep, 0, sizeof rep);
    sk_status s = sk_pack_unpack(pkg, tmp, vo, 1, &rep, err);
    sk_pack_report_free(&rep);
    sk_model *u = NULL;
    char *path = NULL;
    size_t plen = strlen(tmp) + sizeof "/model.onnx";
    if (!s && !(path = malloc(plen))) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    if (!s) snprintf(path, plen, "%s/model.onnx", tmp);
    if (!s) s = sk_model_load(path, NULL, &u, err);
    sk_engine_opts eo = { threads > 0 ? threads : 0, NULL, 0 };
    sk_engine *ea = NULL, *eb = NULL;
    if (!s) s = sk_engine_create(m, &eo, &ea, err);
    if (!s) s = sk_engine_create(u, &eo, &eb, err);
    size_t na = ea ? sk_engine_output_count(ea) : 0;
    sk_tensor *oa = calloc(na + 1, sizeof *oa), *ob = calloc(na + 1, sizeof *ob);
    if (!s && (!oa || !ob)) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    if (!s && sk_engine_output_count(eb) != na) s = sk_error_set(err, SK_EINTERNAL, "the package has other outputs");
    if (!s && samples) {
        sk_quant_sample smp;
        s = sk_quant_calib_load(samples, 0, ea, &smp, err);
        if (!s) s = sk_engine_run(ea, smp.n, smp.names, smp.ptrs, oa, err);
        if (!s) s = sk_engine_run(eb, smp.n, smp.names, smp.ptrs, ob, err);
        if (!s) sk_quant_sample_free(&smp);
        for (size_t k = 0; !s && k < na; k++) {
            int64_t bytes = sk_dtype_nbytes(oa[k].dtype, oa[k].numel);
            if (oa[k].dtype != ob[k].dtype || oa[k].numel != ob[k].numel || bytes < 0 ||
                (bytes && memcmp(oa[k].data, ob[k].data, (size_t)bytes)))
                s = sk_error_set(err, SK_EINTERNAL, "output '%s' of the package differs from the evaluated model's",
                                 sk_engine_output_name(ea, k));
        }
    }
    for (size_t k = 0; oa && ob && k < na; k++) {
        sk_tensor_free(&oa[k]);
        sk_tensor_free(&ob[k]);
    }
    free(oa);
    free(ob);
    sk_engine_free(ea);
    sk_engine_free(eb);
    sk_model_free(u);
    free(path);
    remove_flat(tmp);
    free(tmp);
    return s ? sk_error_prefix(err, "checking the written package: ") : SK_OK;
}

/* mkdir -p of path's parent folder. */
static sk_status make_parents(const char *path, sk_error *err)
{
    char *p = strdup(path);
    if (!p) return sk_error_set(err, SK_ENOMEM, "out of memory");
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;
    char *slash = strrchr(p, '/');
    sk_status s = SK_OK;
    if (slash && slash != p) {
        *slash = 0;
        for (char *c = p + 1; !s; c++) {
            if (*c && *c != '/') continue;
            char keep = *c;
            *c = 0;
            if (mkdir(p, 0755) && errno != EEXIST) s = sk_error_set(err, SK_EIO, "%s: %s", p, strerror(errno));
            *c = keep;
            if (!keep) break;
        }
    }
    free(p);
    return s;
}

static uint64_t dir_bytes(const char *path)
{
    uint64_t total = 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")))
            if (!fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode)) total += (uint64_t)st.st_size;
    closedir(d);
    return total;
}

sk_status sk_build_run(const sk_build_opts *o, sk_build_result *r, sk_error *err)
{
    memset(r, 0, sizeof *r);
    double t0 = now(), t;
    if (!o->model) return sk_error_set(err, SK_EINVAL, "no model given");
    if (!o->output) return sk_error_set(err, SK_EINVAL, "no package folder given");
    if (o->prune && !o->prune_calib) return sk_error_set(err, SK_EINVAL, "pruning needs calibration samples (prune.calib, --calib)");
    if (o->quant == SK_BUILD_QUANT_INT8_STATIC && !o->quant_calib)
        return sk_error_set(err, SK_EINVAL, "int8-static quantization needs calibration samples (quant.calib, --calib)");
    const char *eval_dir = o->eval_samples ? o->eval_samples : o->quant_calib ? o->quant_calib : o->prune_calib;
    int gated = !isnan(o->max_accuracy_drop) || !isnan(o->min_cosine);
    if (gated && !eval_dir)
        return sk_error_set(err, SK_EINVAL, "the quality thresholds need evaluation samples (eval.samples, --eval)");
    if (o->eval_labels && !eval_dir) return sk_error_set(err, SK_EINVAL, "labels without evaluation samples");
    struct stat st;
    if (!o->force && lstat(o->output, &st) == 0)
        return sk_error_set(err, SK_EINVAL, "%s already exists (force replaces it)", o->output);

    sk_model *m = NULL, *ref = NULL;
    sk_quant_calib *pc = NULL, *qc = NULL, *ec = NULL;
    int64_t *labels = NULL;
    size_t n_labels = 0;
    char *tmp = NULL, *old = NULL, *name = NULL;
    sk_status s = sk_model_load(o->model, NULL, &m, err);
    /* open every input before the long stages, so a typo fails in a second */
    if (!s && o->prune) s = sk_quant_calib_open(o->prune_calib, 0, &pc, err);
    if (!s && o->quant_calib && o->quant != SK_BUILD_QUANT_NONE) s = sk_quant_calib_open(o->quant_calib, 0, &qc, err);
    if (!s && eval_dir) s = sk_quant_calib_open(eval_dir, 0, &ec, err);
    if (!s && o->eval_labels) s = sk_eval_load_labels(o->eval_labels, &labels, &n_labels, err);
    if (!s) {
        r->params_before = params_of(m);
        r->t_load = now() - t0;
        note(o, "load", "%s: %llu parameters", o->model, (unsigned long long)r->params_before);
    }

    if (!s && o->prune) {
        t = now();
        sk_prune_opts po;
        sk_prune_opts_init(&po);
        po.percent = o->prune_percent;
        po.heads = o->prune_heads;
        po.min_heads = o->min_heads;
        po.score = o->prune_score;
        po.compensate = o->prune_comp;
        po.calib = pc;
        po.threads = o->threads;
        po.progress = o->progress;
        r->prune = sk_prune_report_create();
        s = r->prune ? sk_prune_model(m, &po, r->prune, err) : sk_error_set(err, SK_ENOMEM, "out of memory");
        if (s) sk_error_prefix(err, "prune: ");
        r->t_prune = now() - t;
        if (!s)
            note(o, "prune", "%lld of %lld heads removed (%s scores on %zu samples, compensation %s) in %.1f s",
                 (long long)r->prune->heads_removed, (long long)r->prune->heads_total, r->prune->score,
                 r->prune->samples, r->prune->compensate, r->t_prune);
    }

    if (!s && o->quant != SK_BUILD_QUANT_NONE) {
        t = now();
        sk_quant_opts qo;
        sk_quant_opts_init(&qo);
        qo.mode = o->quant == SK_BUILD_QUANT_INT4 ? SK_QUANT_INT4
                  : o->quant == SK_BUILD_QUANT_INT8_STATIC ? SK_QUANT_STATIC : SK_QUANT_DYNAMIC;
        if (o->block) qo.block = o->block;
        qo.exclude = (const char *const *)o->exclude;
        qo.n_exclude = o->n_exclude;
        qo.calib = qc;
        qo.threads = o->threads;
        qo.progress = o->progress;
        r->quant = sk_quant_report_create();
        s = r->quant ? sk_quant_model(m, &qo, r->quant, err) : sk_error_set(err, SK_ENOMEM, "out of memory");
        if (s) sk_error_prefix(err, "quantize: ");
        r->t_quant = now() - t;
        if (!s)
            note(o, "quantize", "%s: %zu layers quantized, %zu left float, in %.1f s", r->quant->mode,
                 r->quant->n_layers, r->quant->n_skipped, r->t_quant);
    }
    if (!s) r->params_after = params_of(m);

    if (!s && ec) {
        t = now();
        s = sk_model_load(o->model, NULL, &ref, err);
        sk_eval_opts eo = { ec, o->eval_output, labels, n_labels, o->threads, o->progress };
        if (!s) s = sk_eval_compare(ref, m, &eo, &r->eval, err);
        if (s) sk_error_prefix(err, "evaluate: ");
        r->t_eval = now() - t;
        sk_model_free(ref);
        ref = NULL;
        if (!s) {
            r->evaluated = 1;
            const sk_eval_result *e = &r->eval;
            if (e->has_labels)
                note(o, "evaluate", "%s on %zu samples: accuracy %.4f -> %.4f (drop %+.4f), cosine mean %.5f min %.5f, "
                     "top-1 agreement %.4f", e->output, e->samples, e->acc_ref, e->acc_model, e->accuracy_drop,
                     e->cosine_mean, e->cosine_min, e->agreement);
            else
                note(o, "evaluate", "%s on %zu samples: cosine mean %.5f min %.5f, top-1 agreement %.4f (no labels: "
                     "accuracy drop at most %.4f)", e->output, e->samples, e->cosine_mean, e->cosine_min,
                     e->agreement, e->accuracy_drop);
            if (!isnan(o->max_accuracy_drop) && e->accuracy_drop > o->max_accuracy_drop + 1e-12) {
                r->gate_failed = 1;
                snprintf(r->gate, sizeof r->gate, "accuracy drop %.4f%s is above max_accuracy_drop %.4f",
                         e->accuracy_drop, e->has_labels ? "" : " (1 - top-1 agreement, no labels)", o->max_accuracy_drop);
            } else if (!isnan(o->min_cosine) && e->cosine_mean < o->min_cosine) {
                r->gate_failed = 1;
                snprintf(r->gate, sizeof r->gate, "mean cosine %.5f is below min_cosine %.5f (worst sample: %s, %.5f)",
                         e->cosine_mean, o->min_cosine, sk_quant_calib_path(ec, e->cosine_min_sample), e->cosine_min);
            }
        }
    }
    if (!s && r->gate_failed) goto done;

    if (!s) {
        t = now();
        sk_pack_opts po;
        sk_pack_opts_init(&po);
        po.shard_size = o->shard_size;
        po.external_min = o->external_min;
        po.codec = o->codec;
        po.level = o->level >= 0 ? o->level : sk_codec_default_level(o->codec);
        if (o->level >= 0) po.float_level = o->level; /* an explicit level is every tensor's, as in skiff-pack */
        po.version = o->version;
        po.created = o->created;
        po.threads = o->threads > 0 ? (unsigned)o->threads : 0;
        po.key = o->key;
        po.progress = o->progress;
        name = o->name ? strdup(o->name) : sk_manifest_default_name(o->model);
        po.name = name;
        tmp = sibling(o->output, "build");
        if (!name || !tmp) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        if (!s) s = make_parents(o->output, err);
        if (!s) s = sk_pack_write(m, tmp, &po, &r->pack, err);
        if (s) sk_error_prefix(err, "pack: ");
        r->t_pack = now() - t;
        r->is_signed = o->key != NULL;
        if (!s) {
            r->package_bytes = dir_bytes(tmp);
            note(o, "pack", "%s version %llu: %zu shards, %llu bytes (%s)%s in %.1f s", name,
                 (unsigned long long)r->pack.version, r->pack.n_shards, (unsigned long long)r->package_bytes,
                 sk_codec_name(o->codec), r->is_signed ? ", signed" : ", NOT signed", r->t_pack);
        }
    }
    if (!s) {
        t = now();
        sk_key_pub pub;
        sk_pack_verify_opts vo;
        memset(&vo, 0, sizeof vo);
        if (o->key) {
            sk_key_sec_public(o->key, &pub);
            vo.pub = &pub;
        }
        vo.name = name;
        sk_pack_report rep;
        memset(&rep, 0, sizeof rep);
        s = sk_pack_verify(tmp, &vo, &rep, err);
        sk_pack_report_free(&rep);
        if (s) sk_error_prefix(err, "verify: ");
        if (!s) s = check_package(tmp, m, ec ? ec : qc ? qc : pc, &vo, o->threads, err);
        r->t_verify = now() - t;
        if (!s)
            note(o, "verify", "%s, every file's size and SHA-256%s; the unpacked package gives the evaluated outputs",
                 o->key ? "signature" : "no signature (unsigned)", ec || qc || pc ? "" : " (no sample to run)");
    }
    if (!s) {
        /* install: rename into place; an existing package moves aside first */
        if (lstat(o->output, &st) == 0) {
            if (!o->force) s = sk_error_set(err, SK_EINVAL, "%s appeared during the build", o->output);
            else if (!(old = sibling(o->output, "old"))) s = sk_error_set(err, SK_ENOMEM, "out of memory");
            else if (rename(o->output, old))
                s = sk_error_set(err, SK_EIO, "%s: cannot move the old package aside: %s", o->output, strerror(errno));
        }
        if (!s && rename(tmp, o->output)) {
            s = sk_error_set(err, SK_EIO, "%s: %s", o->output, strerror(errno));
            if (old) rename(old, o->output);
        }
        if (!s && old) remove_flat(old);
    }
done:
    if (tmp && (s || r->gate_failed)) remove_flat(tmp);
    free(tmp);
    free(old);
    free(name);
    free(labels);
    sk_model_free(m);
    sk_quant_calib_free(pc);
    sk_quant_calib_free(qc);
    sk_quant_calib_free(ec);
    r->t_total = now() - t0;
    return s;
}
