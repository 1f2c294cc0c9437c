#include "sk_prune.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_prune_internal.h"

void sk_prune_opts_init(sk_prune_opts *o)
{
    memset(o, 0, sizeof *o);
    o->percent = 25;
    o->min_heads = 1;
    o->score = SK_PRUNE_SCORE_ABLATION;
    o->compensate = SK_PRUNE_COMP_AUTO;
}

sk_prune_report *sk_prune_report_create(void)
{
    sk_prune_report *r = calloc(1, sizeof *r);
    if (r) r->check_rel_err = r->auto_div_bias = r->auto_div_lsq = -1;
    return r;
}

static void report_blocks_free(sk_prune_report *r)
{
    for (size_t i = 0; i < r->n_blocks; i++) {
        free(r->blocks[i].core);
        free(r->blocks[i].scores);
        free(r->blocks[i].pruned);
        free(r->blocks[i].alpha);
    }
    free(r->blocks);
    r->blocks = NULL;
    r->n_blocks = 0;
}

void sk_prune_report_free(sk_prune_report *r)
{
    if (!r) return;
    report_blocks_free(r);
    free(r);
}

typedef struct ranked {
    double score;
    size_t block;
    int64_t head;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    if (x->block != y->block) return x->block < y->block ? -1 : 1;
    return x->head < y->head ? -1 : x->head > y->head;
}

/* New parameter count of the head-carrying weights of b under plan p. */
static int64_t params_after(const sk_attn_block *b, const sk_prune_plan *p)
{
    int64_t kv = b->kind == SK_ATTN_GRAPH ? p->n_kv_keep : p->n_keep;
    int64_t wq = p->n_keep * b->head_size, wk = kv * b->head_size, wv = kv * b->v_head_size;
    int64_t n = b->q.in * wq + b->k.in * wk + b->v.in * wv + p->n_keep * b->v_head_size * b->o.out;
    if (b->q.bias) n += wq;
    if (b->k.bias) n += wk;
    if (b->v.bias) n += wv;
    return n;
}

static sk_status fill_report(sk_prune_report *rep, const sk_attn_info *info, double **scores, const sk_prune_plan *plan)
{
    report_blocks_free(rep);
    rep->blocks = calloc(info->n_blocks + 1, sizeof *rep->blocks);
    if (!rep->blocks) return SK_ENOMEM;
    rep->n_blocks = info->n_blocks;
    rep->heads_total = rep->heads_removed = 0;
    rep->head_params_before = rep->head_params_after = 0;
    for (size_t b = 0; b < info->n_blocks; b++) {
        const sk_attn_block *blk = &info->blocks[b];
        sk_prune_block_report *br = &rep->blocks[b];
        char lb[300];
        br->layer = blk->layer;
        br->core = strdup(sk_node_label(blk->core, lb, sizeof lb));
        snprintf(br->kind, sizeof br->kind, "%s", sk_attn_kind_name(blk->kind));
        br->heads = blk->heads;
        br->kv_heads = blk->kv_heads;
        br->head_size = blk->head_size;
        br->scores = malloc((size_t)blk->heads * sizeof *br->scores);
        br->pruned = calloc((size_t)blk->heads, 1);
        if (!br->core || !br->scores || !br->pruned) return SK_ENOMEM;
        for (int64_t h = 0; h < blk->heads; h++) {
            br->scores[h] = scores ? scores[b][h] : NAN;
            br->pruned[h] = plan[b].drop ? plan[b].drop[h] : 0;
            rep->heads_removed += br->pruned[h];
        }
        br->kept = plan[b].n_keep;
        br->kv_kept = blk->kind == SK_ATTN_GRAPH ? plan[b].n_kv_keep : plan[b].n_keep;
        if (plan[b].alpha) {
            br->alpha = malloc((size_t)blk->heads * sizeof *br->alpha);
            if (!br->alpha) return SK_ENOMEM;
            for (int64_t h = 0; h < blk->heads; h++) br->alpha[h] = plan[b].alpha[h];
        }
        br->bias_added = plan[b].bias && !blk->o.bias;
        rep->heads_total += blk->heads;
        rep->head_params_before += sk_attn_block_params(blk);
        rep->head_params_after += params_after(blk, &plan[b]);
    }
    return SK_OK;
}

static sk_status select_heads(const sk_attn_info *info, const sk_prune_opts *o, double **scores, sk_prune_plan *plan,
                              sk_error *err)
{
    int64_t min_heads = o->min_heads > 0 ? o->min_heads : 1;
    int64_t total = 0, removable = 0;
    for (size_t b = 0; b < info->n_blocks; b++) {
        total += info->blocks[b].heads;
        if (info->blocks[b].heads > min_heads) removable += info->blocks[b].heads - min_heads;
    }
    if (o->n_picks) {
        for (size_t i = 0; i < o->n_picks; i++) {
            const sk_prune_pick *pk = &o->picks[i];
            if (pk->layer < 0 || (size_t)pk->layer >= info->n_blocks)
                return sk_error_set(err, SK_EINVAL, "head %" PRId64 ":%" PRId64 ": the model has %zu attention layers",
                                    pk->layer, pk->head, info->n_blocks);
            const sk_attn_block *b = &info->blocks[pk->layer];
            if (pk->head < 0 || pk->head >= b->heads)
                return sk_error_set(err, SK_EINVAL, "head %" PRId64 ":%" PRId64 ": layer %" PRId64 " has %" PRId64 " heads",
                                    pk->layer, pk->head, pk->layer, b->heads);
            plan[pk->layer].drop[pk->head] = 1;
        }
        for (size_t b = 0; b < info->n_blocks; b++) {
            int64_t kept = 0;
            for (int64_t h = 0; h < info->blocks[b].heads; h++) kept += !plan[b].drop[h];
            if (kept < min_heads)
                return sk_error_set(err, SK_EINVAL, "layer %zu would keep %" PRId64 " head%s, fewer than the minimum of %" PRId64,
                                    b, kept, kept == 1 ? "" : "s", min_heads);
        }
        return SK_OK;
    }
    int64_t want = o->percent >= 0 ? (int64_t)llround(o->percent / 100.0 * (double)total) : o->heads;
    if (want < 0) want = 0;
    if (want > removable)
        return sk_error_set(err, SK_EINVAL, "cannot remove %" PRId64 " of the %" PRId64 " heads: with at least %" PRId64
                            " head%s per layer, at most %" PRId64 " can go", want, total, min_heads, min_heads == 1 ? "" : "s",
                            removable);
    ranked *r = malloc((size_t)(total + 1) * sizeof *r);
    if (!r) return sk_error_set(err, SK_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t b = 0; b < info->n_blocks; b++)
        for (int64_t h = 0; h < info->blocks[b].heads; h++) r[n++] = (ranked){ scores[b][h], b, h };
    qsort(r, n, sizeof *r, cmp_ranked);
    int64_t *kept = malloc((info->n_blocks + 1) * sizeof *kept);
    if (!kept) {
        free(r);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    for (size_t b = 0; b < info->n_blocks; b++) kept[b] = info->blocks[b].heads;
    int64_t done = 0;
    for (size_t i = 0; i < n && done < want; i++) {
        if (kept[r[i].block] <= min_heads) continue;
        plan[r[i].block].drop[r[i].head] = 1;
        kept[r[i].block]--;
        done++;
    }
    free(kept);
    free(r);
    return SK_OK;
}

/* Fits both compensations and keeps the one whose outputs stay closer to the
 * unpruned model's on the samples. */
static sk_status compensate_auto(sk_model *m, const sk_prune_index *ix, const sk_attn_info *info, const sk_prune_opts *o,
                                 sk_prune_plan *plan, sk_prune_report *rep, sk_error *err)
{
    size_t nb = info->n_blocks;
    sk_prune_plan *alt = calloc(nb + 1, sizeof *alt);
    sk_status s = alt ? SK_OK : sk_error_set(err, SK_ENOMEM, "out of memory");
    for (size_t b = 0; !s && b < nb; b++) {
        alt[b].drop = malloc((size_t)info->blocks[b].heads);
        if (!alt[b].drop) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        else memcpy(alt[b].drop, plan[b].drop, (size_t)info->blocks[b].heads);
        if (!s) s = sk_prune_plan_finish(&info->blocks[b], &alt[b], err);
    }
    if (!s) s = sk_prune_compensate(m, ix, info, o, SK_PRUNE_COMP_BIAS, plan, err);
    if (!s) s = sk_prune_compensate(m, ix, info, o, SK_PRUNE_COMP_LSQ, alt, err);
    double d[2] = { 0, 0 };
    sk_prune_plan *cand[2] = { plan, alt };
    if (!s) s = sk_prune_plan_divergence(m, ix, info, o, cand, 2, d, err);
    int lsq = !s && d[1] < d[0];
    if (lsq)
        for (size_t b = 0; b < nb; b++) {
            sk_prune_plan t = plan[b];
            plan[b] = alt[b];
            alt[b] = t;
        }
    if (!s && rep) {
        snprintf(rep->compensate, sizeof rep->compensate, "auto: %s", lsq ? "lsq" : "bias");
        rep->auto_div_bias = d[0];
        rep->auto_div_lsq = d[1];
    }
    for (size_t b = 0; alt && b < nb; b++) sk_prune_plan_clear(&alt[b]);
    free(alt);
    return s;
}

static int engine_runs(sk_model *m, sk_error *err)
{
    sk_engine *e;
    if (sk_engine_create(m, NULL, &e, err)) return 0;
    sk_engine_free(e);
    return 1;
}

sk_status sk_prune_model(sk_model *m, const sk_prune_opts *opts, sk_prune_report *rep, sk_error *err)
{
    sk_prune_opts o = *opts;
    if (o.min_heads <= 0) o.min_heads = 1;
    int need_calib = !o.n_picks || o.compensate != SK_PRUNE_COMP_NONE;
    if (need_calib && !o.calib)
        return sk_error_set(err, SK_EINVAL, "calibration samples are needed to score heads and to compensate");
    sk_attn_info *info;
    sk_status s = sk_attn_find(m, &info, err);
    if (s) return s;
    if (!info->n_blocks) {
        if (info->n_misses)
            s = sk_error_set(err, SK_EINVAL, "no attention block could be pruned: %s: %s", info->misses[0].node,
                             info->misses[0].reason);
        else
            s = sk_error_set(err, SK_EINVAL, "no recognisable attention (no Softmax between two MatMuls, no com.microsoft "
                             "Attention or MultiHeadAttention)");
        sk_attn_info_free(info);
        return s;
    }
    size_t nb = info->n_blocks;
    sk_prune_plan *plan = calloc(nb, sizeof *plan);
    double **scores = calloc(nb, sizeof *scores);
    sk_prune_index *ix = NULL;
    sk_tensor *want = NULL, *got = NULL;
    size_t n_want = 0, n_got = 0;
    if (!plan || !scores) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    for (size_t b = 0; !s && b < nb; b++) {
        plan[b].drop = calloc((size_t)info->blocks[b].heads, 1);
        scores[b] = malloc((size_t)info->blocks[b].heads * sizeof **scores);
        if (!plan[b].drop || !scores[b]) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        for (int64_t h = 0; !s && h < info->blocks[b].heads; h++) scores[b][h] = NAN;
    }
    if (!s) s = sk_prune_index_build(m, &ix, err);
    if (rep) {
        snprintf(rep->score, sizeof rep->score, "%s",
                 o.n_picks ? "given" : o.score == SK_PRUNE_SCORE_ABLATION ? "ablation" : "activation");
        snprintf(rep->compensate, sizeof rep->compensate, "%s",
                 o.compensate == SK_PRUNE_COMP_BIAS  ? "bias"
                 : o.compensate == SK_PRUNE_COMP_LSQ ? "lsq"
                 : o.compensate == SK_PRUNE_COMP_AUTO ? "auto"
                                                      : "none");
        rep->samples = o.calib ? sk_quant_calib_count(o.calib) : 0;
    }
    /* the engine must run the model for scoring, compensation and the check */
    int can_run = 0;
    if (!s && o.calib) {
        sk_error e2 = { SK_OK, "" };
        can_run = engine_runs(m, &e2);
        if (!can_run && need_calib) {
            s = e2.code ? e2.code : SK_EUNSUPPORTED;
            if (err) *err = e2;
            sk_error_prefix(err, "skiff's engine cannot run the model: ");
        }
    }
    double t0 = sk_prune_now();
    if (!s && !o.n_picks) {
        char metric[64] = "";
        s = sk_prune_score_heads(m, ix, info, &o, scores, metric, sizeof metric, err);
        if (rep) snprintf(rep->metric, sizeof rep->metric, "%s", metric);
    }
    double t1 = sk_prune_now();
    if (!s) s = select_heads(info, &o, o.n_picks ? NULL : scores, plan, err);
    for (size_t b = 0; !s && b < nb; b++) s = sk_prune_plan_finish(&info->blocks[b], &plan[b], err);
    if (!s && o.compensate == SK_PRUNE_COMP_AUTO) s = compensate_auto(m, ix, info, &o, plan, rep, err);
    else if (!s && o.compensate != SK_PRUNE_COMP_NONE) s = sk_prune_compensate(m, ix, info, &o, o.compensate, plan, err);
    double t2 = sk_prune_now();
    int check = !s && !o.no_check && o.calib && can_run;
    if (check) s = sk_prune_simulate(m, ix, info, &o, plan, &want, &n_want, err);
    if (!s && rep) s = fill_report(rep, info, o.n_picks ? NULL : scores, plan) ? sk_error_set(err, SK_ENOMEM, "out of memory") : SK_OK;
    if (!s) s = sk_prune_rewrite(m, ix, info, plan, err);
    sk_prune_index_free(ix);
    ix = NULL;
    size_t dn, di;
    if (!s) s = sk_prune_dead_code(m, &dn, &di, err);
    double t3 = sk_prune_now();
    if (check && !s) {
        s = sk_prune_run_first(m, &o, &got, &n_got, err);
        if (s) sk_error_prefix(err, "the pruned model does not run (a bug in skiff-prune): ");
        size_t which;
        double d = !s && n_got == n_want ? sk_prune_outputs_diff(got, want, n_got, &which) : -1;
        if (!s && (d < 0 || d > 1e-3))
            s = sk_error_set(err, SK_EINTERNAL, "the pruned model's output %zu differs from the simulated pruning (%s %.3g); "
                             "this is a bug in skiff-prune", which, d < 0 ? "shape differs" : "relative error", d);
        if (rep) rep->check_rel_err = d;
    }
    if (rep) {
        rep->score_seconds = t1 - t0;
        rep->comp_seconds = t2 - t1;
        rep->rewrite_seconds = t3 - t2;
    }
    for (size_t i = 0; want && i < n_want; i++) sk_tensor_free(&want[i]);
    for (size_t i = 0; got && i < n_got; i++) sk_tensor_free(&got[i]);
    free(want);
    free(got);
    for (size_t b = 0; plan && b < nb; b++) sk_prune_plan_clear(&plan[b]);
    for (size_t b = 0; scores && b < nb; b++) free(scores[b]);
    free(plan);
    free(scores);
    sk_prune_index_free(ix);
    sk_attn_info_free(info);
    return s;
}
