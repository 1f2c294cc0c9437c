/* Everything skiff-prune runs in the engine: the hook that zeroes, scales or
 * measures heads, the parallel loop over samples, head scoring, the
 * compensation fit and the simulation used by the final check. */
#include "sk_prune_internal.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double sk_prune_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

float sk_prune_elem_f(const void *data, int dtype, int64_t i)
{
    const uint8_t *p = data;
    switch (dtype) {
    case SK_FLOAT: {
        float v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    case SK_FLOAT16: {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return sk_half_to_float(h);
    }
    case SK_BFLOAT16: {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return sk_bf16_to_float(h);
    }
    case SK_DOUBLE: {
        double v;
        memcpy(&v, p + 8 * i, 8);
        return (float)v;
    }
    default:
        return 0;
    }
}

/* ---- weights as float ---------------------------------------------------- */

sk_status sk_prune_read_obias(const sk_prune_index *ix, const sk_attn_block *b, float *out, sk_error *err)
{
    const sk_attn_proj *o = &b->o;
    for (int64_t j = 0; j < o->out; j++) out[j] = 0;
    if (!o->bias) return SK_OK;
    sk_prune_const c;
    if (!sk_prune_index_const(ix, o->bias_node->input[o->bias_input], &c) || c.numel != o->out)
        return sk_error_set(err, SK_EINTERNAL, "the bias '%s' of layer %" PRId64 " cannot be read", o->bias, b->layer);
    float beta = o->bias_node == o->node ? sk_node_attr_float(o->node, "beta", 1.0f) : 1.0f; /* Gemm's C */
    for (int64_t j = 0; j < o->out; j++) out[j] = beta * sk_prune_elem_f(c.data, c.dtype, j);
    return SK_OK;
}

sk_status sk_prune_read_oweight(const sk_prune_index *ix, const sk_attn_block *b, float **w, sk_error *err)
{
    const sk_attn_proj *o = &b->o;
    sk_prune_const c;
    *w = NULL;
    if (!sk_prune_index_const(ix, o->node->input[o->w_input], &c) || c.numel != o->in * o->out)
        return sk_error_set(err, SK_EINTERNAL, "the weight '%s' of layer %" PRId64 " cannot be read", o->weight, b->layer);
    float *m = malloc((size_t)(o->in * o->out) * sizeof *m);
    if (!m) return sk_error_set(err, SK_ENOMEM, "out of memory");
    float alpha = strcmp(o->node->op_type, "Gemm") ? 1.0f : sk_node_attr_float(o->node, "alpha", 1.0f);
    for (int64_t r = 0; r < o->in; r++)
        for (int64_t j = 0; j < o->out; j++)
            m[r * o->out + j] = alpha * sk_prune_elem_f(c.data, c.dtype, o->transposed ? j * o->in + r : r * o->out + j);
    *w = m;
    return SK_OK;
}

/* ---- plan ------------------------------------------------------------------ */

void sk_prune_plan_clear(sk_prune_plan *p)
{
    free(p->drop);
    free(p->keep);
    free(p->kv_keep);
    free(p->alpha);
    free(p->bias);
    memset(p, 0, sizeof *p);
}

sk_status sk_prune_plan_finish(const sk_attn_block *b, sk_prune_plan *p, sk_error *err)
{
    free(p->keep);
    free(p->kv_keep);
    p->keep = malloc((size_t)b->heads * sizeof *p->keep);
    p->kv_keep = malloc((size_t)b->kv_heads * sizeof *p->kv_keep);
    int64_t *per = calloc((size_t)b->kv_heads, sizeof *per);
    if (!p->keep || !p->kv_keep || !per) {
        free(per);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    p->n_keep = p->n_kv_keep = 0;
    for (int64_t h = 0; h < b->heads; h++)
        if (!p->drop[h]) {
            p->keep[p->n_keep++] = h;
            per[sk_attn_kv_of(b, h)]++;
        }
    int64_t want = -1;
    p->uneven = 0;
    for (int64_t g = 0; g < b->kv_heads; g++) {
        if (!per[g]) continue;
        p->kv_keep[p->n_kv_keep++] = g;
        if (want < 0) want = per[g];
        else if (per[g] != want) p->uneven = 1;
    }
    free(per);
    return SK_OK;
}

/* ---- the hook ------------------------------------------------------------- */

void sk_prune_hook_reset(sk_prune_hook *h, const sk_attn_info *info)
{
    memset(h, 0, sizeof *h);
    h->info = info;
    h->ablate_block = h->ablate_head = -1;
    h->stat_block = -1;
    h->stop_block = -1;
}

static int want_stats(const sk_prune_hook *h, size_t b)
{
    return h->stat_block < 0 || (size_t)h->stat_block == b;
}

static sk_status hook_context(sk_prune_hook *h, size_t bi, const sk_attn_block *b, sk_tensor *t)
{
    int64_t W = b->heads * b->v_head_size, Dv = b->v_head_size;
    if (t->dtype != SK_FLOAT)
        return sk_error_set(&h->err, SK_EUNSUPPORTED, "context '%s' of layer %" PRId64 " is %s; scoring and compensation "
                            "need float32 activations", b->context, b->layer, sk_dtype_name(t->dtype));
    if (t->rank < 1 || t->dims[t->rank - 1] != W)
        return sk_error_set(&h->err, SK_EINVAL, "context '%s' of layer %" PRId64 " has %" PRId64 " features, not heads x "
                            "head size = %" PRId64, b->context, b->layer, t->rank ? t->dims[t->rank - 1] : 0, W);
    if (!t->owned) {
        sk_tensor c = { 0 };
        sk_status s = sk_tensor_copy(&c, t, &h->err);
        if (s) return s;
        *t = c;
    }
    float *x = t->data;
    int64_t rows = t->numel / W;
    if (want_stats(h, bi)) {
        if (h->ctx_sum && h->ctx_sum[bi]) {
            double *cs = h->ctx_sum[bi];
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < W; j++) cs[j] += x[r * W + j];
        }
        if (h->head_ss && h->head_ss[bi]) {
            double *ss = h->head_ss[bi];
            for (int64_t r = 0; r < rows; r++)
                for (int64_t hh = 0; hh < b->heads; hh++) {
                    const float *v = x + r * W + hh * Dv;
                    double acc = 0;
                    for (int64_t d = 0; d < Dv; d++) acc += (double)v[d] * v[d];
                    ss[hh] += acc;
                }
        }
        if (h->ctx_rows) h->ctx_rows[bi] += (uint64_t)rows;
    }
    if (h->mask && h->mask[bi]) {
        const float *mk = h->mask[bi];
        for (int64_t r = 0; r < rows; r++)
            for (int64_t hh = 0; hh < b->heads; hh++) {
                if (mk[hh] == 1.0f) continue;
                float *v = x + r * W + hh * Dv;
                for (int64_t d = 0; d < Dv; d++) v[d] *= mk[hh];
            }
    }
    if (h->ablate_block == (int64_t)bi)
        for (int64_t r = 0; r < rows; r++) memset(x + r * W + h->ablate_head * Dv, 0, (size_t)Dv * sizeof *x);
    if (h->ctx_copy && h->stat_block == (int64_t)bi) {
        sk_status s = sk_tensor_copy(h->ctx_copy, t, &h->err);
        if (s) return s;
    }
    if (h->stop_block == (int64_t)bi && !h->stop_at_out) {
        h->stopped = 1;
        return SK_EINTERNAL;
    }
    return SK_OK;
}

static sk_status hook_output(sk_prune_hook *h, size_t bi, const sk_attn_block *b, sk_tensor *t)
{
    int64_t N = b->o.out;
    int touch = (h->add && h->add[bi]) || (want_stats(h, bi) && h->out_sum && h->out_sum[bi]) ||
                (h->out_copy && h->stat_block == (int64_t)bi);
    if (touch) {
        if (t->dtype != SK_FLOAT)
            return sk_error_set(&h->err, SK_EUNSUPPORTED, "output '%s' of layer %" PRId64 " is %s; compensation needs "
                                "float32 activations", b->o.output, b->layer, sk_dtype_name(t->dtype));
        if (t->rank < 1 || t->dims[t->rank - 1] != N)
            return sk_error_set(&h->err, SK_EINVAL, "output '%s' of layer %" PRId64 " does not end in %" PRId64 " features",
                                b->o.output, b->layer, N);
        if (!t->owned) {
            sk_tensor c = { 0 };
            sk_status s = sk_tensor_copy(&c, t, &h->err);
            if (s) return s;
            *t = c;
        }
        float *x = t->data;
        int64_t rows = t->numel / N;
        if (h->add && h->add[bi]) {
            const float *a = h->add[bi];
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < N; j++) x[r * N + j] += a[j];
        }
        if (want_stats(h, bi) && h->out_sum && h->out_sum[bi]) {
            double *os = h->out_sum[bi];
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < N; j++) os[j] += x[r * N + j];
            if (h->out_rows) h->out_rows[bi] += (uint64_t)rows;
        }
        if (h->out_copy && h->stat_block == (int64_t)bi) {
            sk_status s = sk_tensor_copy(h->out_copy, t, &h->err);
            if (s) return s;
        }
    }
    if (h->stop_block == (int64_t)bi && h->stop_at_out) {
        h->stopped = 1;
        return SK_EINTERNAL;
    }
    return SK_OK;
}

sk_status sk_prune_hook_fn(void *user, const char *value_name, const Onnx__NodeProto *producer, sk_tensor *t)
{
    (void)producer;
    sk_prune_hook *h = user;
    const sk_attn_info *info = h->info;
    for (size_t b = 0; b < info->n_blocks; b++) {
        const sk_attn_block *blk = &info->blocks[b];
        if (!strcmp(value_name, blk->context)) return hook_context(h, b, blk, t);
        if (!strcmp(value_name, blk->o.output)) return hook_output(h, b, blk, t);
    }
    return SK_OK;
}

sk_status sk_prune_run(sk_engine *e, sk_prune_hook *h, const sk_quant_sample *in, sk_tensor *outs, sk_error *err)
{
    h->stopped = 0;
    h->err.code = SK_OK;
    h->err.msg[0] = 0;
    sk_status s = sk_engine_run(e, in->n, in->names, in->ptrs, outs, err);
    if (s && h->stopped) return SK_OK;
    if (s && h->err.code) {
        if (err) *err = h->err;
        return h->err.code;
    }
    return s;
}

/* ---- parallel loop over samples --------------------------------------------- */

size_t sk_prune_workers(int threads, size_t n)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t t = threads > 0 ? (size_t)threads : cores > 0 ? (size_t)cores : 1;
    if (t > 64) t = 64;
    if (t > n) t = n;
    return t ? t : 1;
}

typedef struct loop_shared {
    pthread_mutex_t mu;
    size_t next, n;
    int stop;
    size_t err_sample;
    sk_status status;
    sk_error err;
    const sk_quant_calib *calib;
    sk_prune_sample_fn fn;
    void *arg;
    const sk_progress *progress;
    const char *step;
    size_t done;
} loop_shared;

typedef struct loop_worker {
    pthread_t th;
    size_t id;
    sk_engine *e;
    loop_shared *sh;
} loop_worker;

static void *worker_main(void *p)
{
    loop_worker *w = p;
    loop_shared *sh = w->sh;
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        size_t i = sh->next++;
        int stop = sh->stop;
        pthread_mutex_unlock(&sh->mu);
        if (stop || i >= sh->n) break;
        sk_error err = { SK_OK, "" };
        sk_quant_sample smp;
        sk_status s = sk_quant_calib_load(sh->calib, i, w->e, &smp, &err);
        if (!s) {
            s = sh->fn(sh->arg, w->id, i, w->e, &smp, &err);
            sk_quant_sample_free(&smp);
            if (s) sk_error_prefix(&err, "sample %s: ", sk_quant_calib_path(sh->calib, i));
        }
        if (!s && sh->progress && sh->progress->fn) {
            pthread_mutex_lock(&sh->mu);
            sh->done++;
            sk_progress_report(sh->progress, sh->step, sh->done, sh->n);
            pthread_mutex_unlock(&sh->mu);
        }
        if (s) {
            pthread_mutex_lock(&sh->mu);
            sh->stop = 1;
            if (!sh->status || i < sh->err_sample) {
                sh->status = s;
                sh->err = err;
                sh->err_sample = i;
            }
            pthread_mutex_unlock(&sh->mu);
            break;
        }
    }
    return NULL;
}

sk_status sk_prune_foreach_sample(sk_model *m, const sk_quant_calib *c, size_t n, int threads, sk_prune_sample_fn fn,
                                  void *arg, sk_error *err)
{
    return sk_prune_foreach_sample_p(m, c, n, threads, fn, arg, NULL, NULL, err);
}

sk_status sk_prune_foreach_sample_p(sk_model *m, const sk_quant_calib *c, size_t n, int threads, sk_prune_sample_fn fn,
                                    void *arg, const sk_progress *progress, const char *step, sk_error *err)
{
    if (!n) return SK_OK;
    size_t nw = sk_prune_workers(threads, n);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t total = threads > 0 ? (size_t)threads : cores > 0 ? (size_t)cores : 1;
    loop_worker *w = calloc(nw, sizeof *w);
    if (!w) return sk_error_set(err, SK_ENOMEM, "out of memory");
    loop_shared sh;
    memset(&sh, 0, sizeof sh);
    pthread_mutex_init(&sh.mu, NULL);
    sh.n = n;
    sh.calib = c;
    sh.fn = fn;
    sh.arg = arg;
    sh.progress = progress;
    sh.step = step;
    sk_status s = SK_OK;
    sk_engine_opts eo = { (int)(total / nw > 0 ? total / nw : 1), NULL, 0 };
    for (size_t i = 0; i < nw && !s; i++) {
        w[i].id = i;
        w[i].sh = &sh;
        s = sk_engine_create(m, &eo, &w[i].e, err);
    }
    size_t started = 0;
    if (!s) {
        if (nw == 1) {
            worker_main(&w[0]);
        } else {
            for (size_t i = 0; i < nw; i++) {
                if (pthread_create(&w[i].th, NULL, worker_main, &w[i])) break;
                started++;
            }
                    if (started < nw) worker_main(&w[started]); /* a thread failed to start: work here too */
            for (size_t i = 0; i < started; i++) pthread_join(w[i].th, NULL);
        }
        if (sh.status) {
            s = sh.status;
            if (err) *err = sh.err;
        }
    }
    for (size_t i = 0; i < nw; i++) sk_engine_free(w[i].e);
    pthread_mutex_destroy(&sh.mu);
    free(w);
    return s;
}

/* ---- output comparison ---------------------------------------------------------- */

static int is_float_type(int dt)
{
    return dt == SK_FLOAT || dt == SK_FLOAT16 || dt == SK_DOUBLE || dt == SK_BFLOAT16;
}

static int contains_logit(const char *name)
{
    for (const char *p = name; *p; p++) {
        const char *w = "logit";
        size_t k = 0;
        while (w[k] && p[k] && (p[k] | 0x20) == w[k]) k++;
        if (!w[k]) return 1;
    }
    return 0;
}

static double get_f(const sk_tensor *t, int64_t i)
{
    if (t->dtype == SK_FLOAT) return ((const float *)t->data)[i];
    return sk_tensor_get_f64(t, i);
}

/* KL(softmax(a) || softmax(b)) averaged over the rows of the last axis. */
static double kl_rows(const sk_tensor *a, const sk_tensor *b)
{
    int64_t C = a->dims[a->rank - 1];
    if (C <= 0) return 0;
    int64_t rows = a->numel / C;
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        double ma = -INFINITY, mb = -INFINITY;
        for (int64_t j = 0; j < C; j++) {
            double x = get_f(a, r * C + j), y = get_f(b, r * C + j);
            if (x > ma) ma = x;
            if (y > mb) mb = y;
        }
        double sa = 0, sb = 0;
        for (int64_t j = 0; j < C; j++) {
            sa += exp(get_f(a, r * C + j) - ma);
            sb += exp(get_f(b, r * C + j) - mb);
        }
        double la = ma + log(sa), lb = mb + log(sb), kl = 0;
        for (int64_t j = 0; j < C; j++) {
            double lpa = get_f(a, r * C + j) - la, lpb = get_f(b, r * C + j) - lb;
            kl += exp(lpa) * (lpa - lpb);
        }
        if (isfinite(kl)) total += kl > 0 ? kl : 0;
    }
    return rows ? total / (double)rows : 0;
}

static double rel_l2(const sk_tensor *a, const sk_tensor *b)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double x = get_f(a, i), y = get_f(b, i);
        if (!isfinite(x) || !isfinite(y)) continue;
        num += (x - y) * (x - y);
        den += x * x;
    }
    return sqrt(num) / (sqrt(den) + 1e-12);
}

static int same_shape(const sk_tensor *a, const sk_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

double sk_prune_outputs_diff(const sk_tensor *a, const sk_tensor *b, size_t n, size_t *which)
{
    double worst = 0;
    *which = 0;
    for (size_t i = 0; i < n; i++) {
        if (!same_shape(&a[i], &b[i])) {
            *which = i;
            return -1;
        }
        if (!is_float_type(a[i].dtype)) {
            if (a[i].nbytes != b[i].nbytes || memcmp(a[i].data, b[i].data, a[i].nbytes)) {
                *which = i;
                return 1;
            }
            continue;
        }
        double d = rel_l2(&b[i], &a[i]);
        if (d > worst) {
            worst = d;
            *which = i;
        }
    }
    return worst;
}

/* ---- scoring ------------------------------------------------------------------------ */

typedef struct score_ctx {
    const sk_attn_info *info;
    sk_prune_score method;
    size_t total;              /* heads over all blocks */
    size_t *off;               /* first head of block b */
    double *per_sample;        /* [samples][total] */
    double *rows;              /* [samples][n_blocks] (activation) */
    sk_prune_hook *hooks;      /* per worker */
    int *logits;               /* per output: 1 KL, 0 rel. L2, -1 ignored */
    size_t n_out;
    /* ablation runs only the part of the model after the block */
    sk_prune_tail *tails;      /* [n_blocks]; model NULL: run the whole model */
    sk_engine **tail_eng;      /* [workers][n_blocks] */
    const char **cap;          /* values the baseline run keeps for the tails */
    size_t n_cap;
    size_t **slot;             /* [n_blocks][tail inputs]: index in cap, SIZE_MAX from the sample */
} score_ctx;

static double divergence(const score_ctx *sc, const sk_tensor *base, const sk_tensor *abl)
{
    double d = 0;
    for (size_t i = 0; i < sc->n_out; i++) {
        if (sc->logits[i] < 0 || !same_shape(&base[i], &abl[i])) continue;
        d += sc->logits[i] ? kl_rows(&base[i], &abl[i]) : rel_l2(&base[i], &abl[i]);
    }
    return d;
}

static void free_outs(sk_tensor *o, size_t n)
{
    for (size_t i = 0; i < n; i++) sk_tensor_free(&o[i]);
}

typedef struct capture {
    const score_ctx *sc;
    sk_tensor *vals;           /* [n_cap] */
    sk_error err;
} capture;

static sk_status capture_fn(void *user, const char *value_name, const Onnx__NodeProto *producer, sk_tensor *t)
{
    (void)producer;
    capture *c = user;
    for (size_t i = 0; i < c->sc->n_cap; i++)
        if (!strcmp(value_name, c->sc->cap[i])) return sk_tensor_copy(&c->vals[i], t, &c->err);
    return SK_OK;
}

/* Ablates every head of block b on one sample through its tail model. */
static sk_status ablate_tail(score_ctx *sc, size_t worker, size_t b, double *mine, const sk_quant_sample *in,
                             const sk_tensor *cap, const sk_tensor *base, sk_error *err)
{
    const sk_attn_block *blk = &sc->info->blocks[b];
    const sk_prune_tail *tl = &sc->tails[b];
    sk_engine *e = sc->tail_eng[worker * sc->info->n_blocks + b];
    size_t ni = tl->n_inputs;
    const char **names = calloc(ni + 1, sizeof *names);
    const sk_tensor **ptrs = calloc(ni + 1, sizeof *ptrs);
    sk_tensor *touts = calloc(tl->n_out + 1, sizeof *touts), *full = calloc(sc->n_out + 1, sizeof *full);
    sk_tensor scratch = { 0 };
    const sk_tensor *ctx = NULL;
    size_t ctx_at = SIZE_MAX;
    sk_status s = !names || !ptrs || !touts || !full ? sk_error_set(err, SK_ENOMEM, "out of memory") : SK_OK;
    for (size_t i = 0; !s && i < ni; i++) {
        names[i] = tl->inputs[i];
        size_t sl = sc->slot[b][i];
        if (sl == SIZE_MAX) {
            for (size_t k = 0; k < in->n; k++)
                if (!strcmp(in->names[k], tl->inputs[i])) ptrs[i] = in->ptrs[k];
        } else {
            ptrs[i] = &cap[sl];
        }
        if (!ptrs[i] || !ptrs[i]->data)
            s = sk_error_set(err, SK_EINTERNAL, "value '%s' was not seen before layer %" PRId64, tl->inputs[i], blk->layer);
        if (!strcmp(tl->inputs[i], blk->context)) ctx_at = i;
    }
    int64_t W = blk->heads * blk->v_head_size, Dv = blk->v_head_size;
    if (!s && ctx_at == SIZE_MAX) s = sk_error_set(err, SK_EINTERNAL, "layer %" PRId64 ": the context is no tail input", blk->layer);
    if (!s) {
        ctx = ptrs[ctx_at];
        if (ctx->dtype != SK_FLOAT || ctx->rank < 1 || ctx->dims[ctx->rank - 1] != W)
            s = sk_error_set(err, SK_EUNSUPPORTED, "context '%s' of layer %" PRId64 " is not float32 [.., %" PRId64 "]",
                             blk->context, blk->layer, W);
    }
    if (!s) s = sk_tensor_copy(&scratch, ctx, err);
    if (!s) ptrs[ctx_at] = &scratch;
    for (int64_t h = 0; !s && h < blk->heads; h++) {
        memcpy(scratch.data, ctx->data, ctx->nbytes);
        float *x = scratch.data;
        for (int64_t r = 0; r < scratch.numel / W; r++) memset(x + r * W + h * Dv, 0, (size_t)Dv * sizeof *x);
        s = sk_engine_run(e, ni, names, ptrs, touts, err);
        if (s) break;
        for (size_t j = 0; j < sc->n_out; j++) full[j] = base[j]; /* shallow: not freed here */
        for (size_t j = 0; j < tl->n_out; j++) full[tl->out_map[j]] = touts[j];
        mine[sc->off[b] + (size_t)h] = divergence(sc, base, full);
        free_outs(touts, tl->n_out);
    }
    sk_tensor_free(&scratch);
    free(names);
    free(ptrs);
    free(touts);
    free(full);
    return s;
}

static sk_status score_sample(void *arg, size_t worker, size_t sample, sk_engine *e, const sk_quant_sample *in,
                              sk_error *err)
{
    score_ctx *sc = arg;
    sk_prune_hook *h = &sc->hooks[worker];
    const sk_attn_info *info = sc->info;
    sk_prune_hook_reset(h, info);
    sk_engine_set_hook(e, sk_prune_hook_fn, h);
    double *mine = sc->per_sample + sample * sc->total;
    if (sc->method == SK_PRUNE_SCORE_ACTIVATION) {
        double **ss = calloc(info->n_blocks, sizeof *ss);
        uint64_t *rows = calloc(info->n_blocks, sizeof *rows);
        sk_tensor *outs = calloc(sc->n_out + 1, sizeof *outs);
        sk_status s = !ss || !rows || !outs ? sk_error_set(err, SK_ENOMEM, "out of memory") : SK_OK;
        for (size_t b = 0; !s && b < info->n_blocks; b++) ss[b] = mine + sc->off[b];
        if (!s) {
            h->head_ss = ss;
            h->ctx_rows = rows;
            s = sk_prune_run(e, h, in, outs, err);
            free_outs(outs, sc->n_out);
        }
        for (size_t b = 0; !s && b < info->n_blocks; b++) sc->rows[sample * info->n_blocks + b] = (double)rows[b];
        h->head_ss = NULL;
        h->ctx_rows = NULL;
        free(ss);
        free(rows);
        free(outs);
        return s;
    }
    sk_tensor *base = calloc(sc->n_out + 1, sizeof *base), *abl = calloc(sc->n_out + 1, sizeof *abl);
    capture cp = { sc, calloc(sc->n_cap + 1, sizeof(sk_tensor)), { SK_OK, "" } };
    sk_status s = !base || !abl || !cp.vals ? sk_error_set(err, SK_ENOMEM, "out of memory") : SK_OK;
    if (!s) {
        sk_engine_set_hook(e, capture_fn, &cp);
        s = sk_engine_run(e, in->n, in->names, in->ptrs, base, err);
        if (s && cp.err.code && err) *err = cp.err;
        sk_engine_set_hook(e, sk_prune_hook_fn, h);
    }
    for (size_t b = 0; !s && b < info->n_blocks; b++) {
        if (sc->tails[b].model) {
            s = ablate_tail(sc, worker, b, mine, in, cp.vals, base, err);
            continue;
        }
        for (int64_t hh = 0; !s && hh < info->blocks[b].heads; hh++) {
            h->ablate_block = (int64_t)b;
            h->ablate_head = hh;
            s = sk_prune_run(e, h, in, abl, err);
            if (!s) mine[sc->off[b] + (size_t)hh] = divergence(sc, base, abl);
            free_outs(abl, sc->n_out);
        }
    }
    h->ablate_block = h->ablate_head = -1;
    if (base) free_outs(base, sc->n_out);
    if (cp.vals) free_outs(cp.vals, sc->n_cap);
    free(cp.vals);
    free(base);
    free(abl);
    return s;
}

/* Builds the tails, their engines (one per worker and block) and the list
 * of values the baseline run keeps. A block whose tail cannot be built runs
 * the whole model. */
static sk_status tails_setup(score_ctx *sc, sk_model *m, const sk_prune_index *ix, size_t nw, sk_error *err)
{
    size_t nb = sc->info->n_blocks;
    sc->tails = calloc(nb + 1, sizeof *sc->tails);
    sc->tail_eng = calloc(nw * nb + 1, sizeof *sc->tail_eng);
    sc->slot = calloc(nb + 1, sizeof *sc->slot);
    if (!sc->tails || !sc->tail_eng || !sc->slot) return sk_error_set(err, SK_ENOMEM, "out of memory");
    for (size_t b = 0; b < nb; b++) {
        sk_status s = sk_prune_tail_build(m, ix, sc->info->blocks[b].context, &sc->tails[b], err);
        if (s == SK_EUNSUPPORTED) continue;
        if (s) return s;
        sk_prune_tail *t = &sc->tails[b];
        sc->slot[b] = calloc(t->n_inputs + 1, sizeof **sc->slot);
        const char **cap = realloc(sc->cap, (sc->n_cap + t->n_inputs + 1) * sizeof *cap);
        if (!sc->slot[b] || !cap) return sk_error_set(err, SK_ENOMEM, "out of memory");
        sc->cap = cap;
        for (size_t i = 0; i < t->n_inputs; i++) {
            if (t->from_sample[i]) {
                sc->slot[b][i] = SIZE_MAX;
                continue;
            }
            size_t k = 0;
            while (k < sc->n_cap && strcmp(sc->cap[k], t->inputs[i])) k++;
            if (k == sc->n_cap) sc->cap[sc->n_cap++] = t->inputs[i];
            sc->slot[b][i] = k;
        }
        for (size_t w = 0; w < nw; w++) {
            sk_engine_opts eo = { 1, NULL, 0 };
            sk_error e2;
            if (sk_engine_create(t->model, &eo, &sc->tail_eng[w * nb + b], &e2)) {
                /* the tail does not compile on its own: run the whole model instead */
                for (size_t k = 0; k < w; k++) sk_engine_free(sc->tail_eng[k * nb + b]);
                for (size_t k = 0; k < nw; k++) sc->tail_eng[k * nb + b] = NULL;
                sk_prune_tail_clear(t);
                break;
            }
        }
    }
    return SK_OK;
}

static void tails_free(score_ctx *sc, size_t nw)
{
    size_t nb = sc->info->n_blocks;
    if (sc->tail_eng)
        for (size_t i = 0; i < nw * nb; i++) sk_engine_free(sc->tail_eng[i]);
    for (size_t b = 0; sc->slot && b < nb; b++) free(sc->slot[b]);
    for (size_t b = 0; sc->tails && b < nb; b++) sk_prune_tail_clear(&sc->tails[b]);
    free(sc->tail_eng);
    free(sc->slot);
    free(sc->tails);
    free(sc->cap);
}

/* Which outputs ablation compares, decided from the engine's output names
 * and types. */
static sk_status output_kinds(sk_model *m, int **kinds, size_t *n_out, char *metric, size_t cap, sk_error *err)
{
    sk_engine *e;
    sk_status s = sk_engine_create(m, NULL, &e, err);
    if (s) return s;
    size_t n = sk_engine_output_count(e);
    int *k = calloc(n + 1, sizeof *k);
    if (!k) {
        sk_engine_free(e);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    size_t at = 0, used = 0;
    metric[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = sk_engine_output_name(e, i);
        int dt = sk_engine_output_dtype(e, i);
        if (dt && !is_float_type(dt)) {
            k[i] = -1;
            continue;
        }
        k[i] = contains_logit(name) ? 1 : 0;
        if (at < cap)
            at += (size_t)snprintf(metric + at, cap - at, "%s%s(%s)", used ? " + " : "", k[i] ? "KL" : "rel. L2", name);
        used++;
    }
    sk_engine_free(e);
    if (!used) {
        free(k);
        return sk_error_set(err, SK_EINVAL, "the model has no float output to compare when ablating heads");
    }
    *kinds = k;
    *n_out = n;
    return SK_OK;
}

sk_status sk_prune_score_heads(sk_model *m, const sk_prune_index *ix, const sk_attn_info *info, const sk_prune_opts *o,
                               double **scores, char *metric, size_t metric_cap, sk_error *err)
{
    score_ctx sc;
    memset(&sc, 0, sizeof sc);
    sc.info = info;
    sc.method = o->score;
    size_t ns = sk_quant_calib_count(o->calib);
    size_t nw = sk_prune_workers(o->threads, ns);
    sc.off = calloc(info->n_blocks + 1, sizeof *sc.off);
    sk_status s = sc.off ? SK_OK : sk_error_set(err, SK_ENOMEM, "out of memory");
    for (size_t b = 0; !s && b < info->n_blocks; b++) sc.off[b + 1] = sc.off[b] + (size_t)info->blocks[b].heads;
    if (!s) {
        sc.total = sc.off[info->n_blocks];
        sc.per_sample = calloc(ns * sc.total + 1, sizeof *sc.per_sample);
        sc.rows = calloc(ns * info->n_blocks + 1, sizeof *sc.rows);
        sc.hooks = calloc(nw, sizeof *sc.hooks);
        if (!sc.per_sample || !sc.rows || !sc.hooks) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    if (!s && o->score == SK_PRUNE_SCORE_ABLATION) s = output_kinds(m, &sc.logits, &sc.n_out, metric, metric_cap, err);
    if (!s && o->score == SK_PRUNE_SCORE_ACTIVATION) {
        snprintf(metric, metric_cap, "context RMS x output-projection row norm");
        sk_engine *e;
        s = sk_engine_create(m, NULL, &e, err);
        if (!s) {
            sc.n_out = sk_engine_output_count(e);
            sk_engine_free(e);
        }
    }
    if (!s && o->score == SK_PRUNE_SCORE_ABLATION) s = tails_setup(&sc, m, ix, nw, err);
    if (!s) s = sk_prune_foreach_sample_p(m, o->calib, ns, o->threads, score_sample, &sc, &o->progress, "scoring heads", err);
    for (size_t b = 0; !s && b < info->n_blocks; b++) {
        const sk_attn_block *blk = &info->blocks[b];
        float *w = NULL;
        if (o->score == SK_PRUNE_SCORE_ACTIVATION) s = sk_prune_read_oweight(ix, blk, &w, err);
        for (int64_t h = 0; !s && h < blk->heads; h++) {
            double acc = 0;
            for (size_t i = 0; i < ns; i++) {
                double v = sc.per_sample[i * sc.total + sc.off[b] + (size_t)h];
                if (o->score == SK_PRUNE_SCORE_ACTIVATION) {
                    double rows = sc.rows[i * info->n_blocks + b];
                    v = rows > 0 ? sqrt(v / rows) : 0;
                }
                acc += v;
            }
            acc /= (double)ns;
            if (w) {
                double nrm = 0;
                for (int64_t r = h * blk->v_head_size; r < (h + 1) * blk->v_head_size; r++)
                    for (int64_t j = 0; j < blk->o.out; j++) nrm += (double)w[r * blk->o.out + j] * w[r * blk->o.out + j];
                acc *= sqrt(nrm);
            }
            scores[b][h] = acc;
        }
        free(w);
    }
    tails_free(&sc, nw);
    free(sc.off);
    free(sc.per_sample);
    free(sc.rows);
    free(sc.hooks);
    free(sc.logits);
    return s;
}

/* ---- compensation ------------------------------------------------------------------ */

/* masks and additive corrections for the blocks before `upto` (all when
 * upto is n_blocks) from their plans */
typedef struct sim_state {
    float **mask;
    float **add;
    float **old_bias;
    size_t n;
} sim_state;

static void sim_free(sim_state *st)
{
    for (size_t b = 0; b < st->n; b++) {
        if (st->mask) free(st->mask[b]);
        if (st->add) free(st->add[b]);
        if (st->old_bias) free(st->old_bias[b]);
    }
    free(st->mask);
    free(st->add);
    free(st->old_bias);
    memset(st, 0, sizeof *st);
}

static sk_status sim_init(sim_state *st, const sk_prune_index *ix, const sk_attn_info *info, sk_error *err)
{
    memset(st, 0, sizeof *st);
    st->n = info->n_blocks;
    st->mask = calloc(st->n + 1, sizeof *st->mask);
    st->add = calloc(st->n + 1, sizeof *st->add);
    st->old_bias = calloc(st->n + 1, sizeof *st->old_bias);
    if (!st->mask || !st->add || !st->old_bias) return sk_error_set(err, SK_ENOMEM, "out of memory");
    for (size_t b = 0; b < st->n; b++) {
        st->old_bias[b] = malloc((size_t)info->blocks[b].o.out * sizeof(float));
        if (!st->old_bias[b]) return sk_error_set(err, SK_ENOMEM, "out of memory");
        sk_status s = sk_prune_read_obias(ix, &info->blocks[b], st->old_bias[b], err);
        if (s) return s;
    }
    return SK_OK;
}

/* Applies block b's plan (mask, bias change) to the simulation. */
static sk_status sim_apply(sim_state *st, const sk_attn_info *info, const sk_prune_plan *p, size_t b, sk_error *err)
{
    const sk_attn_block *blk = &info->blocks[b];
    if (!p->drop) return SK_OK;
    int any = 0;
    for (int64_t h = 0; h < blk->heads; h++) any |= p->drop[h];
    if (!any && !p->bias) return SK_OK;
    if (!st->mask[b] && !(st->mask[b] = malloc((size_t)blk->heads * sizeof(float))))
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    for (int64_t h = 0; h < blk->heads; h++) st->mask[b][h] = p->drop[h] ? 0.0f : p->alpha ? p->alpha[h] : 1.0f;
    if (p->bias) {
        if (!st->add[b] && !(st->add[b] = malloc((size_t)blk->o.out * sizeof(float))))
            return sk_error_set(err, SK_ENOMEM, "out of memory");
        for (int64_t j = 0; j < blk->o.out; j++) st->add[b][j] = p->bias[j] - st->old_bias[b][j];
    }
    return SK_OK;
}

typedef struct comp_ctx {
    const sk_attn_info *info;
    sim_state *sim;
    sk_prune_hook *hooks;
    size_t n_out;
    size_t block;              /* the block being fitted */
    int pass;                  /* 0: unpruned means of every output, 1: masked context means, 2: LSQ */
    /* pass 0 */
    double *out_sum;           /* [samples][sum of o.out] */
    double *out_rows;          /* [samples][n_blocks] */
    size_t *out_off;
    /* pass 1 */
    double *ctx_sum;           /* [samples][W of block] */
    double *ctx_rows;          /* [samples] */
    /* pass 2 (LSQ), per sample: G [K*K], r [K], zs [K*N], ts [N], rows */
    int64_t K;                 /* kept heads */
    const int64_t *keep;
    const float *w;            /* output weight [W, N] */
    double *lsq;               /* [samples][stride] */
    size_t lsq_stride;
} comp_ctx;

static sk_status comp_sample(void *arg, size_t worker, size_t sample, sk_engine *e, const sk_quant_sample *in,
                             sk_error *err)
{
    comp_ctx *cc = arg;
    const sk_attn_info *info = cc->info;
    sk_prune_hook *h = &cc->hooks[worker];
    sk_prune_hook_reset(h, info);
    sk_engine_set_hook(e, sk_prune_hook_fn, h);
    sk_tensor *outs = calloc(cc->n_out + 1, sizeof *outs);
    if (!outs) return sk_error_set(err, SK_ENOMEM, "out of memory");
    sk_status s = SK_OK;
    size_t nb = info->n_blocks;
    if (cc->pass == 0) {
        double **os = calloc(nb, sizeof *os);
        uint64_t *rows = calloc(nb, sizeof *rows);
        if (!os || !rows) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        for (size_t b = 0; !s && b < nb; b++) os[b] = cc->out_sum + sample * cc->out_off[nb] + cc->out_off[b];
        if (!s) {
            h->out_sum = os;
            h->out_rows = rows;
            h->stop_block = (int64_t)nb - 1;
            h->stop_at_out = 1;
            s = sk_prune_run(e, h, in, outs, err);
        }
        for (size_t b = 0; !s && b < nb; b++) cc->out_rows[sample * nb + b] = (double)rows[b];
        free(os);
        free(rows);
    } else if (cc->pass == 1) {
        size_t b = cc->block;
        double **cs = calloc(nb, sizeof *cs);
        uint64_t *rows = calloc(nb, sizeof *rows);
        if (!cs || !rows) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        if (!s) {
            int64_t W = info->blocks[b].heads * info->blocks[b].v_head_size;
            cs[b] = cc->ctx_sum + sample * (size_t)W;
            h->ctx_sum = cs;
            h->ctx_rows = rows;
            h->stat_block = (int64_t)b;
            h->mask = cc->sim->mask;
            h->add = cc->sim->add;
            h->stop_block = (int64_t)b;
            h->stop_at_out = 0;
            s = sk_prune_run(e, h, in, outs, err);
        }
        if (!s) cc->ctx_rows[sample] = (double)rows[b];
        free(cs);
        free(rows);
    } else {
        /* LSQ: the unpruned output of the block, then the pruned context */
        size_t b = cc->block;
        const sk_attn_block *blk = &info->blocks[b];
        sk_tensor target = { 0 }, ctx = { 0 };
        h->stat_block = (int64_t)b;
        h->out_copy = &target;
        h->stop_block = (int64_t)b;
        h->stop_at_out = 1;
        s = sk_prune_run(e, h, in, outs, err);
        free_outs(outs, cc->n_out);
        if (!s) {
            sk_prune_hook_reset(h, info);
            h->stat_block = (int64_t)b;
            h->ctx_copy = &ctx;
            h->mask = cc->sim->mask;
            h->add = cc->sim->add;
            h->stop_block = (int64_t)b;
            h->stop_at_out = 0;
            s = sk_prune_run(e, h, in, outs, err);
        }
        int64_t N = blk->o.out, W = blk->heads * blk->v_head_size, Dv = blk->v_head_size, K = cc->K;
        if (!s && (!target.data || !ctx.data || target.numel / N != ctx.numel / W))
            s = sk_error_set(err, SK_EINTERNAL, "layer %" PRId64 ": the block's output and context were not seen",
                             blk->layer);
        double *acc = cc->lsq + sample * cc->lsq_stride;
        double *G = acc, *r = G + K * K, *zs = r + K, *ts = zs + K * N, *nrow = ts + N;
        float *z = !s ? malloc((size_t)(K * N) * sizeof *z) : NULL;
        if (!s && !z) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        int64_t rows = !s ? ctx.numel / W : 0;
        for (int64_t row = 0; row < rows; row++) {
            const float *c = (const float *)ctx.data + row * W;
            const float *t = (const float *)target.data + row * N;
            for (int64_t k = 0; k < K; k++) {
                float *zk = z + k * N;
                for (int64_t j = 0; j < N; j++) zk[j] = 0;
                int64_t hh = cc->keep[k];
                for (int64_t d = 0; d < Dv; d++) {
                    float cv = c[hh * Dv + d];
                    if (cv == 0) continue;
                    const float *wr = cc->w + (hh * Dv + d) * N;
                    for (int64_t j = 0; j < N; j++) zk[j] += cv * wr[j];
                }
            }
            for (int64_t k = 0; k < K; k++) {
                const float *zk = z + k * N;
                for (int64_t l = k; l < K; l++) {
                    const float *zl = z + l * N;
                    double dot = 0;
                    for (int64_t j = 0; j < N; j++) dot += (double)zk[j] * zl[j];
                    G[k * K + l] += dot;
                }
                double dt = 0;
                for (int64_t j = 0; j < N; j++) {
                    dt += (double)zk[j] * t[j];
                    zs[k * N + j] += zk[j];
                }
                r[k] += dt;
            }
            for (int64_t j = 0; j < N; j++) ts[j] += t[j];
            nrow[0] += 1;
        }
        free(z);
        sk_tensor_free(&target);
        sk_tensor_free(&ctx);
    }
    free_outs(outs, cc->n_out);
    free(outs);
    h->mask = h->add = NULL;
    return s;
}

/* Solves (A + lambda I) x = y + lambda * 1 for symmetric positive A (K x K,
 * upper triangle filled), by Cholesky. Returns -1 if not positive. */
static int solve_ridge(double *A, double *y, int64_t K, double *x)
{
    double tr = 0;
    for (int64_t k = 0; k < K; k++) tr += A[k * K + k];
    double lambda = 1e-3 * (tr > 0 ? tr / (double)K : 1.0);
    for (int64_t k = 0; k < K; k++) {
        for (int64_t l = 0; l < k; l++) A[k * K + l] = A[l * K + k];
        A[k * K + k] += lambda;
        y[k] += lambda;
    }
    for (int64_t j = 0; j < K; j++) {
        double d = A[j * K + j];
        for (int64_t k = 0; k < j; k++) d -= A[j * K + k] * A[j * K + k];
        if (!(d > 0)) return -1;
        A[j * K + j] = sqrt(d);
        for (int64_t i = j + 1; i < K; i++) {
            double v = A[i * K + j];
            for (int64_t k = 0; k < j; k++) v -= A[i * K + k] * A[j * K + k];
            A[i * K + j] = v / A[j * K + j];
        }
    }
    for (int64_t i = 0; i < K; i++) {
        double v = y[i];
        for (int64_t k = 0; k < i; k++) v -= A[i * K + k] * x[k];
        x[i] = v / A[i * K + i];
    }
    for (int64_t i = K; i-- > 0;) {
        double v = x[i];
        for (int64_t k = i + 1; k < K; k++) v -= A[k * K + i] * x[k];
        x[i] = v / A[i * K + i];
    }
    return 0;
}

sk_status sk_prune_compensate(sk_model *m, const sk_prune_index *ix, const sk_attn_info *info, const sk_prune_opts *o,
                              sk_prune_comp mode, sk_prune_plan *plan, sk_error *err)
{
    size_t ns = sk_quant_calib_count(o->calib), nb = info->n_blocks;
    size_t nw = sk_prune_workers(o->threads, ns);
    comp_ctx cc;
    memset(&cc, 0, sizeof cc);
    cc.info = info;
    sim_state sim;
    sk_status s = sim_init(&sim, ix, info, err);
    cc.sim = &sim;
    cc.hooks = calloc(nw, sizeof *cc.hooks);
    cc.out_off = calloc(nb + 1, sizeof *cc.out_off);
    if (!s && (!cc.hooks || !cc.out_off)) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    for (size_t b = 0; !s && b < nb; b++) cc.out_off[b + 1] = cc.out_off[b] + (size_t)info->blocks[b].o.out;
    if (!s) {
        sk_engine *e;
        s = sk_engine_create(m, NULL, &e, err);
        if (!s) {
            cc.n_out = sk_engine_output_count(e);
            sk_engine_free(e);
        }
    }
    /* the unpruned model's mean block outputs */
    if (!s) {
        cc.out_sum = calloc(ns * cc.out_off[nb] + 1, sizeof *cc.out_sum);
        cc.out_rows = calloc(ns * nb + 1, sizeof *cc.out_rows);
        if (!cc.out_sum || !cc.out_rows) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    if (!s && mode == SK_PRUNE_COMP_BIAS) {
        cc.pass = 0;
        s = sk_prune_foreach_sample(m, o->calib, ns, o->threads, comp_sample, &cc, err);
    }
    for (size_t b = 0; !s && b < nb; b++) {
        const sk_attn_block *blk = &info->blocks[b];
        sk_prune_plan *p = &plan[b];
        int any = 0;
        for (int64_t h = 0; p->drop && h < blk->heads; h++) any |= p->drop[h];
        if (!any) continue;
        int64_t N = blk->o.out, W = blk->heads * blk->v_head_size, Dv = blk->v_head_size;
        float *w = NULL;
        s = sk_prune_read_oweight(ix, blk, &w, err);
        if (!s && !(p->bias = malloc((size_t)N * sizeof *p->bias))) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        if (!s && mode == SK_PRUNE_COMP_BIAS) {
            cc.pass = 1;
            cc.block = b;
            cc.ctx_sum = calloc(ns * (size_t)W + 1, sizeof *cc.ctx_sum);
            cc.ctx_rows = calloc(ns + 1, sizeof *cc.ctx_rows);
            if (!cc.ctx_sum || !cc.ctx_rows) s = sk_error_set(err, SK_ENOMEM, "out of memory");
            if (!s) s = sk_prune_foreach_sample(m, o->calib, ns, o->threads, comp_sample, &cc, err);
            if (!s) {
                double rows_o = 0, rows_c = 0;
                for (size_t i = 0; i < ns; i++) {
                    rows_o += cc.out_rows[i * nb + b];
                    rows_c += cc.ctx_rows[i];
                }
                for (int64_t j = 0; j < N; j++) {
                    double t = 0;
                    for (size_t i = 0; i < ns; i++) t += cc.out_sum[i * cc.out_off[nb] + cc.out_off[b] + (size_t)j];
                    t = rows_o > 0 ? t / rows_o : 0;
                    double z = 0;
                    for (int64_t k = 0; k < p->n_keep; k++)
                        for (int64_t d = 0; d < Dv; d++) {
                            int64_t col = p->keep[k] * Dv + d;
                            double c = 0;
                            for (size_t i = 0; i < ns; i++) c += cc.ctx_sum[i * (size_t)W + (size_t)col];
                            z += (rows_c > 0 ? c / rows_c : 0) * w[col * N + j];
                        }
                    p->bias[j] = (float)(t - z);
                }
            }
            free(cc.ctx_sum);
            free(cc.ctx_rows);
            cc.ctx_sum = cc.ctx_rows = NULL;
        } else if (!s) {
            int64_t K = p->n_keep;
            cc.pass = 2;
            cc.block = b;
            cc.K = K;
            cc.keep = p->keep;
            cc.w = w;
            cc.lsq_stride = (size_t)(K * K + K + K * N + N + 1);
            cc.lsq = calloc(ns * cc.lsq_stride + 1, sizeof *cc.lsq);
            double *tot = calloc(cc.lsq_stride, sizeof *tot);
            double *x = calloc((size_t)K + 1, sizeof *x);
            if (!cc.lsq || !tot || !x) s = sk_error_set(err, SK_ENOMEM, "out of memory");
            if (!s) s = sk_prune_foreach_sample(m, o->calib, ns, o->threads, comp_sample, &cc, err);
            if (!s) {
                for (size_t i = 0; i < ns; i++)
                    for (size_t k = 0; k < cc.lsq_stride; k++) tot[k] += cc.lsq[i * cc.lsq_stride + k];
                double *G = tot, *r = G + K * K, *zs = r + K, *ts = zs + K * N, n = ts[N];
                if (n <= 0) s = sk_error_set(err, SK_EINTERNAL, "layer %" PRId64 ": no rows seen", blk->layer);
                /* centre: G - n zbar zbar^T, r - n zbar . tbar */
                for (int64_t k = 0; !s && k < K; k++) {
                    for (int64_t l = k; l < K; l++) {
                        double d = 0;
                        for (int64_t j = 0; j < N; j++) d += zs[k * N + j] * zs[l * N + j];
                        G[k * K + l] -= d / n;
                    }
                    double d = 0;
                    for (int64_t j = 0; j < N; j++) d += zs[k * N + j] * ts[j];
                    r[k] -= d / n;
                }
                if (!s && solve_ridge(G, r, K, x)) {
                    for (int64_t k = 0; k < K; k++) x[k] = 1.0;
                }
                if (!s && !(p->alpha = malloc((size_t)blk->heads * sizeof *p->alpha)))
                    s = sk_error_set(err, SK_ENOMEM, "out of memory");
                for (int64_t h = 0; !s && h < blk->heads; h++) p->alpha[h] = p->drop[h] ? 0.0f : 1.0f;
                for (int64_t k = 0; !s && k < K; k++) {
                    double a = x[k];
                    if (!isfinite(a) || a < 0.25 || a > 4) a = a < 0.25 ? 0.25 : a > 4 ? 4 : 1;
                    x[k] = a;
                    p->alpha[p->keep[k]] = (float)a;
                }
                for (int64_t j = 0; !s && j < N; j++) {
                    double v = ts[j] / n;
                    for (int64_t k = 0; k < K; k++) v -= x[k] * zs[k * N + j] / n;
                    p->bias[j] = (float)v;
                }
            }
            free(cc.lsq);
            cc.lsq = NULL;
            free(tot);
            free(x);
        }
        free(w);
        if (!s) s = sim_apply(&sim, info, p, b, err);
    }
    sim_free(&sim);
    free(cc.hooks);
    free(cc.out_off);
    free(cc.out_sum);
    free(cc.out_rows);
    return s;
}

/* ---- choosing a compensation ------------------------------------------------------ */

typedef struct div_ctx {
    const sk_attn_info *info;
    sim_state *sims;           /* [n] */
    size_t n;
    sk_prune_hook *hooks;      /* per worker */
    score_ctx sc;              /* output kinds for divergence() */
    double *per_sample;        /* [samples][n] */
} div_ctx;

static sk_status div_sample(void *arg, size_t worker, size_t sample, sk_engine *e, const sk_quant_sample *in,
                            sk_error *err)
{
    div_ctx *dc = arg;
    sk_prune_hook *h = &dc->hooks[worker];
    size_t no = dc->sc.n_out;
    sk_tensor *base = calloc(no + 1, sizeof *base), *sim = calloc(no + 1, sizeof *sim);
    sk_status s = !base || !sim ? sk_error_set(err, SK_ENOMEM, "out of memory") : SK_OK;
    sk_prune_hook_reset(h, dc->info);
    sk_engine_set_hook(e, sk_prune_hook_fn, h);
    if (!s) s = sk_prune_run(e, h, in, base, err);
    for (size_t k = 0; !s && k < dc->n; k++) {
        h->mask = dc->sims[k].mask;
        h->add = dc->sims[k].add;
        s = sk_prune_run(e, h, in, sim, err);
        if (!s) dc->per_sample[sample * dc->n + k] = divergence(&dc->sc, base, sim);
        free_outs(sim, no);
    }
    h->mask = h->add = NULL;
    if (base) free_outs(base, no);
    free(base);
    free(sim);
    return s;
}

sk_status sk_prune_plan_divergence(sk_model *m, const sk_prune_index *ix, const sk_attn_info *info,
                                   const sk_prune_opts *o, sk_prune_plan *const *plans, size_t n, double *div,
                                   sk_error *err)
{
    size_t ns = sk_quant_calib_count(o->calib), nw = sk_prune_workers(o->threads, ns);
    div_ctx dc;
    memset(&dc, 0, sizeof dc);
    dc.info = info;
    dc.n = n;
    dc.sims = calloc(n + 1, sizeof *dc.sims);
    dc.hooks = calloc(nw, sizeof *dc.hooks);
    dc.per_sample = calloc(ns * n + 1, sizeof *dc.per_sample);
    char metric[64];
    sk_status s = !dc.sims || !dc.hooks || !dc.per_sample ? sk_error_set(err, SK_ENOMEM, "out of memory") : SK_OK;
    for (size_t k = 0; !s && k < n; k++) {
        s = sim_init(&dc.sims[k], ix, info, err);
        for (size_t b = 0; !s && b < info->n_blocks; b++) s = sim_apply(&dc.sims[k], info, &plans[k][b], b, err);
    }
    if (!s) s = output_kinds(m, &dc.sc.logits, &dc.sc.n_out, metric, sizeof metric, err);
    if (!s) s = sk_prune_foreach_sample(m, o->calib, ns, o->threads, div_sample, &dc, err);
    for (size_t k = 0; !s && k < n; k++) {
        double acc = 0;
        for (size_t i = 0; i < ns; i++) acc += dc.per_sample[i * n + k];
        div[k] = ns ? acc / (double)ns : 0;
    }
    for (size_t k = 0; dc.sims && k < n; k++) sim_free(&dc.sims[k]);
    free(dc.sims);
    free(dc.hooks);
    free(dc.per_sample);
    free(dc.sc.logits);
    return s;
}

/* ---- simulation and the check ------------------------------------------------------- */

typedef struct one_ctx {
    sk_prune_hook hook;
    int use_hook;
    sk_tensor *outs;
    size_t n_out;
} one_ctx;

static sk_status one_sample(void *arg, size_t worker, size_t sample, sk_engine *e, const sk_quant_sample *in,
                            sk_error *err)
{
    (void)worker;
    (void)sample;
    one_ctx *oc = arg;
    if (oc->use_hook) sk_engine_set_hook(e, sk_prune_hook_fn, &oc->hook);
    oc->n_out = sk_engine_output_count(e);
    oc->outs = calloc(oc->n_out + 1, sizeof *oc->outs);
    if (!oc->outs) return sk_error_set(err, SK_ENOMEM, "out of memory");
    return oc->use_hook ? sk_prune_run(e, &oc->hook, in, oc->outs, err)
                        : sk_engine_run(e, in->n, in->names, in->ptrs, oc->outs, err);
}

sk_status sk_prune_simulate(sk_model *m, const sk_prune_index *ix, const sk_attn_info *info, const sk_prune_opts *o,
                            const sk_prune_plan *plan, sk_tensor **outs, size_t *n_out, sk_error *err)
{
    sim_state sim;
    sk_status s = sim_init(&sim, ix, info, err);
    for (size_t b = 0; !s && b < info->n_blocks; b++) s = sim_apply(&sim, info, &plan[b], b, err);
    one_ctx oc;
    memset(&oc, 0, sizeof oc);
    sk_prune_hook_reset(&oc.hook, info);
    oc.hook.mask = sim.mask;
    oc.hook.add = sim.add;
    oc.use_hook = 1;
    if (!s) s = sk_prune_foreach_sample(m, o->calib, 1, 1, one_sample, &oc, err);
    sim_free(&sim);
    if (s) {
        if (oc.outs) free_outs(oc.outs, oc.n_out);
        free(oc.outs);
        return s;
    }
    *outs = oc.outs;
    *n_out = oc.n_out;
    return SK_OK;
}

sk_status sk_prune_run_first(sk_model *m, const sk_prune_opts *o, sk_tensor **outs, size_t *n_out, sk_error *err)
{
    one_ctx oc;
    memset(&oc, 0, sizeof oc);
    sk_status s = sk_prune_foreach_sample(m, o->calib, 1, 1, one_sample, &oc, err);
    if (s) {
        if (oc.outs) free_outs(oc.outs, oc.n_out);
        free(oc.outs);
        return s;
    }
    *outs = oc.outs;
    *n_out = oc.n_out;
    return SK_OK;
}
