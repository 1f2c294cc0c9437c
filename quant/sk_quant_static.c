/* Static int8 in QDQ form. Every selected node reads its float activations
 * through QuantizeLinear -> DequantizeLinear (uint8, asymmetric, one pair per
 * value shared by its quantized readers) with a range calibrated on samples,
 * and its constant weight (MatMul, Gemm) through DequantizeLinear of int8
 * codes (symmetric, per output channel). ONNX Runtime fuses the groups into
 * integer kernels; skiff's engine runs them as written.
 *
 * Transformers hide traps for a naive range: additive attention masks built
 * from the float minimum or -inf, causal masks, "-10000" paddings. Values
 * derived from such constants (found by propagating from every constant
 * holding a non-finite value or one of magnitude >= 1e4, up to the Softmax
 * that absorbs them) are never quantized, nor is any value whose observed
 * range is not finite or reaches 1e4. */
#include "sk_quant_calib.h"
#include "sk_quant_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HUGE_MAG 1e4

typedef struct st_act {
    char *name;
    int tainted;
    int bounded;           /* output of a bounded function (Softmax, Sigmoid, Tanh): no clipping */
    int kept;              /* 1: stays float */
    const char *note;
    float scale;
    uint8_t zp;
    char *dq;              /* DequantizeLinear output, once emitted */
    size_t stat;           /* index into stats */
} st_act;

typedef struct st_weight {
    sk_qlinear l;
    size_t owner;
    size_t job;
    int8_t *q;
    float *scales;
    char *dq;              /* per owner: name of the DequantizeLinear output */
    int transpose;         /* codes in the consumed layout differ from the stored one */
    int axis_dq;
} st_weight;

typedef struct st_plan {
    int kind;              /* 0 keep, 1 activations only, 2 linear (weight + activation), 3 embedding */
    size_t idx;            /* weights / embeds */
} st_plan;

static sk_status oom(sk_qctx *c)
{
    return sk_error_set(c->err, SK_ENOMEM, "out of memory");
}

static int op_selected(const sk_quant_opts *o, const char *op)
{
    if (!o->n_op_types) return !strcmp(op, "MatMul") || !strcmp(op, "Gemm") || !strcmp(op, "Gather");
    for (size_t i = 0; i < o->n_op_types; i++)
        if (!strcmp(o->op_types[i], op)) return 1;
    return 0;
}

/* Ops whose float inputs may carry QDQ (their meaning is unchanged by it). */
static int qdq_capable(const sk_node_proto *n)
{
    static const char *const ops[] = { "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Softmax", "LayerNormalization",
                                       "Relu", "Sigmoid", "Tanh", "Gelu", "Erf", "Concat", "Transpose",
                                       "Reshape", "AveragePool", "MaxPool", "GlobalAveragePool", "Pow", "Sqrt",
                                       "ReduceMean", "Where", "Resize", NULL };
    for (int i = 0; ops[i]; i++)
        if (sk_qnode_is(n, ops[i])) return 1;
    return 0;
}

/* 1 if the float constant t holds a value that breaks an 8-bit range. */
static int huge_constant(sk_qctx *c, const sk_tensor_proto *t)
{
    if (t->data_type != SK_FLOAT) return 0;
    sk_tensor_view v;
    sk_error e2 = { 0 };
    if (sk_model_tensor_view(c->m, t, &v, &e2)) return 0;
    for (int64_t i = 0; i < v.numel; i++) {
        float x;
        memcpy(&x, (const uint8_t *)v.data + i * 4, 4);
        if (!isfinite(x) || fabsf(x) >= HUGE_MAG) return 1;
    }
    return 0;
}

/* Marks values derived from huge constants (attention-mask arithmetic). */
static sk_status find_tainted(sk_qctx *c, sk_qmap *taint)
{
    sk_graph_proto *g = c->g;
    sk_qmap weights = { 0 }; /* constants read as MatMul/Gemm weights are not masks */
    for (size_t i = 0; i < g->n_node; i++) {
        const sk_node_proto *n = g->node[i];
        if ((sk_qnode_is(n, "MatMul") || sk_qnode_is(n, "Gemm") || sk_qnode_is(n, "Conv")) && n->n_input > 1 &&
            sk_qmap_put(&weights, n->input[1], NULL)) {
            sk_qmap_free(&weights);
            return oom(c);
        }
    }
    sk_status s = SK_OK;
    for (size_t i = 0; !s && i < g->n_initializer; i++) {
        const sk_tensor_proto *t = g->initializer[i];
        int w;
        sk_qmap_get(&weights, t->name ? t->name : "", &w);
        if (!w && t->name && huge_constant(c, t)) s = sk_qmap_put(taint, t->name, NULL);
    }
    for (size_t i = 0; !s && i < g->n_node; i++) {
        const sk_node_proto *n = g->node[i];
        int hit = 0;
        if (sk_qnode_is(n, "Constant") || sk_qnode_is(n, "ConstantOfShape")) {
            const sk_tensor_proto *t = sk_node_attr_tensor(n, "value");
            int w = 0;
            if (n->n_output) sk_qmap_get(&weights, n->output[0], &w);
            if (t && !w && huge_constant(c, t)) hit = 1;
            float fv = sk_node_attr_float(n, "value_float", 0);
            if (!isfinite(fv) || fabsf(fv) >= HUGE_MAG) hit = 1;
        } else if (!sk_qnode_is(n, "Softmax") && !sk_qnode_is(n, "LogSoftmax")) {
            for (size_t k = 0; k < n->n_input && !hit; k++)
                if (n->input[k] && *n->input[k]) sk_qmap_get(taint, n->input[k], &hit);
        }
        for (size_t k = 0; hit && !s && k < n->n_output; k++)
            if (n->output[k] && *n->output[k]) s = sk_qmap_put(taint, n->output[k], NULL);
    }
    sk_qmap_free(&weights);
    return s ? oom(c) : SK_OK;
}

/* Marks values whose range a function bounds (Softmax, Sigmoid, Tanh,
 * through shape-only ops and Where with a bounded or small constant other
 * branch, as in a NaN guard after Softmax). Statistical calibrators clip the
 * rare large values of such a distribution (a few attention weights near 1
 * among thousands near 0), which are the ones that matter most; their
 * observed range is used as is. */
static sk_status find_bounded(sk_qctx *c, sk_qmap *bounded)
{
    static const char *const src[] = { "Softmax", "Sigmoid", "Tanh", "HardSigmoid", NULL };
    static const char *const pass[] = { "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity",
                                        "Expand", "Slice", "Concat", "Where", "Cast", NULL };
    sk_graph_proto *g = c->g;
    for (size_t i = 0; i < g->n_node; i++) {
        const sk_node_proto *n = g->node[i];
        int b = 0;
        for (int k = 0; src[k] && !b; k++) b = sk_qnode_is(n, src[k]);
        for (int k = 0; pass[k] && !b; k++) {
            if (!sk_qnode_is(n, pass[k])) continue;
            /* data inputs: Where's 1 and 2, Concat's all, the others' first */
            size_t k0 = sk_qnode_is(n, "Where") ? 1 : 0, k1 = sk_qnode_is(n, "Concat") || sk_qnode_is(n, "Where") ? n->n_input : 1;
            int all = k1 > k0, any = 0;
            for (size_t j = k0; j < k1 && j < n->n_input; j++) {
                int in_b;
                sk_qmap_get(bounded, n->input[j], &in_b);
                if (in_b) { any = 1; continue; }
                sk_qweight w;
                const char *why;
                int small = !sk_qctx_weight(c, n->input[j], &w, &why) && w.view.numel <= 16;
                for (int64_t e = 0; small && e < w.view.numel; e++) {
                    float x;
                    memcpy(&x, (const uint8_t *)w.view.data + e * 4, 4);
                    small = fabsf(x) <= 1.0f;
                }
                if (!small) all = 0;
            }
            b = all && any;
        }
        for (size_t k = 0; b && k < n->n_output; k++)
            if (sk_qmap_put(bounded, n->output[k], NULL)) return oom(c);
    }
    return SK_OK;
}

/* Emits Q -> DQ for activation a (once) and returns the DQ output. */
static sk_status act_dq(sk_qctx *c, st_act *a)
{
    if (a->dq) return SK_OK;
    char *sn = sk_qctx_unique2(c, a->name, "_scale"), *zn = sk_qctx_unique2(c, a->name, "_zero_point");
    char *qo = sk_qctx_unique2(c, a->name, "_QuantizeLinear_Output");
    char *dqo = sk_qctx_unique2(c, a->name, "_DequantizeLinear_Output");
    char *qn = sk_qctx_unique2(c, a->name, "_QuantizeLinear"), *dn = sk_qctx_unique2(c, a->name, "_DequantizeLinear");
    sk_status s = (!sn || !zn || !qo || !dqo || !qn || !dn) ? oom(c) : SK_OK;
    int64_t none[1] = { 0 };
    if (!s) s = sk_qctx_add_f32(c, sn, 0, none, &a->scale);
    if (!s) s = sk_qctx_add_init(c, zn, SK_UINT8, 0, none, &a->zp, 1, 0);
    if (!s) {
        const char *in[3] = { a->name, sn, zn }, *out[1] = { qo };
        if (!sk_qctx_node(c, "QuantizeLinear", NULL, qn, 3, in, 1, out)) s = SK_ENOMEM;
    }
    if (!s) {
        const char *in[3] = { qo, sn, zn }, *out[1] = { dqo };
        if (!sk_qctx_node(c, "DequantizeLinear", NULL, dn, 3, in, 1, out)) s = SK_ENOMEM;
    }
    free(sn);
    free(zn);
    free(qo);
    free(qn);
    free(dn);
    if (s) free(dqo);
    else a->dq = dqo;
    return s;
}

/* Weight DequantizeLinear of an owner (initializers and the node). */
static sk_status weight_dq(sk_qctx *c, st_weight *w, const sk_qjob *job)
{
    const sk_quant_opts *o = c->o;
    int64_t K = w->l.K, N = w->l.N, nch = o->per_tensor ? 1 : N;
    char *qn = sk_qctx_unique2(c, w->l.w.name, "_quantized"), *sn = sk_qctx_unique2(c, w->l.w.name, "_scale");
    char *zn = sk_qctx_unique2(c, w->l.w.name, "_zero_point");
    char *dqo = sk_qctx_unique2(c, w->l.w.name, "_DequantizeLinear_Output");
    char *dn = sk_qctx_unique2(c, w->l.w.name, "_DequantizeLinear");
    sk_status s = (!qn || !sn || !zn || !dqo || !dn) ? oom(c) : SK_OK;
    const sk_node_proto *n = c->g->node[w->l.node];
    int consumed_nk = w->l.gemm && sk_node_attr_int(n, "transB", 0);
    int64_t qd[2] = { consumed_nk ? N : K, consumed_nk ? K : N }, cd[1] = { nch };
    if (!s) s = sk_qctx_add_init(c, qn, SK_INT8, 2, qd, w->q, (size_t)(K * N), 1);
    w->q = NULL;
    if (!s) s = sk_qctx_add_f32(c, sn, o->per_tensor ? 0 : 1, cd, w->scales);
    if (!s) {
        uint8_t *z = calloc((size_t)nch, 1);
        s = z ? sk_qctx_add_init(c, zn, SK_INT8, o->per_tensor ? 0 : 1, cd, z, (size_t)nch, 1) : oom(c);
    }
    if (!s) {
        const char *in[3] = { qn, sn, zn }, *out[1] = { dqo };
        sk_node_proto *d = sk_qctx_node(c, "DequantizeLinear", NULL, dn, 3, in, 1, out);
        if (!d) s = SK_ENOMEM;
        else if (!o->per_tensor && sk_node_add_attr_int(d, "axis", consumed_nk ? 0 : 1)) s = oom(c);
    }
    if (!s) {
        sk_quant_layer *ly = sk_qctx_layer(c, n, w->l.w.name, w->l.w.view.dims[0], w->l.w.view.dims[1]);
        if (!ly) s = SK_ENOMEM;
        else {
            snprintf(ly->scheme, sizeof ly->scheme, "int8 %s (QDQ)", o->per_tensor ? "per-tensor" : "per-channel");
            ly->sqnr_db = sk_qerr_db(&job->err);
            ly->bytes_before = (uint64_t)(K * N) * 4;
            ly->bytes_after = (uint64_t)(K * N) + (uint64_t)nch * 5;
            c->rep->weight_bytes_before += ly->bytes_before;
            c->rep->weight_bytes_after += ly->bytes_after;
            s = sk_qctx_replaced(c, &w->l.w);
        }
    }
    free(qn);
    free(sn);
    free(zn);
    free(dn);
    if (s) free(dqo);
    else w->dq = dqo;
    return s;
}

static sk_status add_act_report(sk_qctx *c, const st_act *a, const sk_quant_stats *st, double lo, double hi)
{
    sk_quant_report *r = c->rep;
    sk_quant_act *v = realloc(r->acts, (r->n_acts + 1) * sizeof *v);
    if (!v) return oom(c);
    r->acts = v;
    sk_quant_act *x = &v[r->n_acts];
    memset(x, 0, sizeof *x);
    x->name = strdup(a->name);
    x->note = a->note ? strdup(a->note) : NULL;
    if (!x->name || (a->note && !x->note)) {
        free(x->name);
        free(x->note);
        return oom(c);
    }
    x->lo = (float)lo;
    x->hi = (float)hi;
    x->seen_lo = st && st->count ? (float)st->lo : 0;
    x->seen_hi = st && st->count ? (float)st->hi : 0;
    x->kept_float = a->kept;
    r->n_acts++;
    return SK_OK;
}

sk_status sk_quant_run_static(sk_qctx *c)
{
    sk_graph_proto *g = c->g;
    const sk_quant_opts *o = c->o;
    int64_t opset = sk_model_opset(c->m, "");
    if (opset < 10 || (opset < 13 && !o->per_tensor))
        return sk_error_set(c->err, SK_EUNSUPPORTED,
                            "static quantization writes %s DequantizeLinear (opset %d); the model imports opset %lld%s",
                            o->per_tensor ? "" : "per-channel", o->per_tensor ? 10 : 13, (long long)opset,
                            opset >= 10 ? " (--per-tensor needs only opset 10)" : "");
    size_t nn = g->n_node ? g->n_node : 1;
    st_plan *plan = calloc(nn, sizeof *plan);
    st_weight *ws = calloc(nn, sizeof *ws);
    sk_qembed_plan_entry *embeds = calloc(nn, sizeof *embeds);
    size_t *emb_owner = calloc(nn, sizeof *emb_owner);
    st_act *acts = NULL;
    size_t n_acts = 0, cap_acts = 0, n_ws = 0, n_embeds = 0, n_jobs = 0, cap_jobs = 0;
    sk_qjob *jobs = NULL;
    sk_qmap taint = { 0 }, bounded = { 0 }, act_index = { 0 }, owners = { 0 }, emb_owners = { 0 };
    sk_quant_stats *stats = NULL;
    const char **names = NULL;
    sk_status s = (!plan || !ws || !embeds || !emb_owner) ? oom(c) : SK_OK;
    if (!s) s = find_tainted(c, &taint);
    if (!s) s = find_bounded(c, &bounded);
    int any_ms = 0;
    /* 1. which nodes, which activations */
    for (size_t i = 0; !s && i < g->n_node; i++) {
        const sk_node_proto *n = g->node[i];
        const char *op = n->op_type ? n->op_type : "";
        if (!op_selected(o, op)) continue;
        if (sk_qnode_is(n, "Gather")) {
            if (o->embed == SK_QUANT_EMBED_KEEP) continue;
            int bits = o->embed == SK_QUANT_EMBED_INT4 ? 4 : 8;
            int r = sk_qembed_plan(c, i, bits, o->block, o->asym, 0, &embeds[n_embeds], &jobs, &n_jobs, &cap_jobs);
            if (r < 0) { s = SK_ENOMEM; break; }
            if (r == 1) {
                int found;
                size_t own = (size_t)sk_qmap_get(&emb_owners, embeds[n_embeds].w.name, &found);
                emb_owner[n_embeds] = found ? own : n_embeds;
                if (!found && sk_qmap_put(&emb_owners, embeds[n_embeds].w.name, (void *)n_embeds)) { s = oom(c); break; }
                plan[i] = (st_plan){ 3, n_embeds++ };
                any_ms = 1;
            }
            continue;
        }
        if (!qdq_capable(n)) {
            s = sk_qctx_skip(c, n, "no QDQ form for this op type");
            continue;
        }
        sk_qlinear l;
        const char *why;
        int lin = !sk_qlinear_match(c, i, &l, &why);
        if (!lin && why) { /* a weight layer that cannot be quantized, or filtered */
            s = sk_qctx_skip(c, n, why);
            continue;
        }
        if (!lin) {
            const char *f = sk_qctx_filtered(c, n, op);
            if (f) {
                s = sk_qctx_skip(c, n, f);
                continue;
            }
        }
        /* activations: float inputs that are not constants */
        size_t n_in = lin ? 1 : n->n_input;
        if (sk_qnode_is(n, "Reshape") || sk_qnode_is(n, "Resize")) n_in = 1;
        int any = 0;
        for (size_t k = 0; k < n_in; k++) {
            const char *a = n->input[k];
            if (!a || !*a) continue;
            sk_qweight cw;
            const char *w2;
            int is_init;
            sk_qmap_get(&c->inits, a, &is_init);
            if (is_init || !sk_qctx_weight(c, a, &cw, &w2)) continue;
            int found;
            sk_qmap_get(&act_index, a, &found);
            any = 1;
            if (found) continue;
            if (n_acts == cap_acts) {
                size_t cap = cap_acts ? cap_acts * 2 : 64;
                st_act *v = realloc(acts, cap * sizeof *v);
                if (!v) { s = oom(c); break; }
                acts = v;
                cap_acts = cap;
            }
            memset(&acts[n_acts], 0, sizeof acts[n_acts]);
            acts[n_acts].name = strdup(a);
            if (!acts[n_acts].name) { s = oom(c); break; }
            sk_qmap_get(&taint, a, &acts[n_acts].tainted);
            sk_qmap_get(&bounded, a, &acts[n_acts].bounded);
            if (sk_qmap_put(&act_index, a, (void *)(n_acts + 1))) { s = oom(c); break; }
            n_acts++;
        }
        if (s) break;
        if (lin) {
            st_weight *w = &ws[n_ws];
            w->l = l;
            char key[600];
            snprintf(key, sizeof key, "%d|%d|%s", (int)(l.gemm && sk_node_attr_int(n, "transB", 0)), l.w.via_transpose,
                     l.w.name);
            int found;
            size_t own = (size_t)sk_qmap_get(&owners, key, &found);
            if (found) w->owner = own;
            else {
                w->owner = n_ws;
                if (sk_qmap_put(&owners, key, (void *)n_ws)) { s = oom(c); break; }
                int64_t K = l.K, N = l.N, nch = o->per_tensor ? 1 : N;
                w->q = malloc((size_t)(K * N) + 1);
                w->scales = malloc((size_t)nch * sizeof(float));
                if (!w->q || !w->scales) { s = oom(c); break; }
                sk_qjob j;
                memset(&j, 0, sizeof j);
                j.kind = SK_QJOB_Q8;
                j.u.q8 = (sk_q8_job){ l.w.view.data, l.w.view.dims[0], l.w.view.dims[1],
                                      o->per_tensor ? -1 : (l.src_nk ? 0 : 1), l.w.via_transpose, 0, w->q, w->scales,
                                      NULL, 1.0f };
                w->job = sk_qjobs_push(&jobs, &n_jobs, &cap_jobs, &j);
                if (w->job == (size_t)-1) { s = oom(c); break; }
            }
            plan[i] = (st_plan){ 2, n_ws++ };
        } else if (any) {
            plan[i] = (st_plan){ 1, 0 };
        }
    }
    /* 2. calibration */
    if (!s && n_acts) {
        stats = calloc(n_acts, sizeof *stats);
        names = calloc(n_acts, sizeof *names);
        if (!stats || !names) s = oom(c);
        for (size_t k = 0; !s && k < n_acts; k++) names[k] = acts[k].name;
        if (!s)
            s = sk_quant_calib_collect(c->m, o->calib, c->threads, n_acts, names, NULL,
                                       o->calibrator != SK_QUANT_CALIB_MINMAX, stats, &o->progress, c->err);
        c->rep->calib_samples = sk_quant_calib_count(o->calib);
        static const char *const cal_names[] = { "percentile", "minmax", "entropy", "mse" };
        snprintf(c->rep->calibrator, sizeof c->rep->calibrator, "%s", cal_names[o->calibrator]);
    }
    for (size_t k = 0; !s && k < n_acts; k++) {
        st_act *a = &acts[k];
        sk_quant_stats *st = &stats[k];
        double lo = 0, hi = 0;
        if (a->tainted) {
            a->kept = 1;
            a->note = "derived from a huge or infinite constant (attention-mask arithmetic)";
        } else if (!st->count) {
            a->kept = 1; /* an integer value (shapes, indices): nothing to report */
            continue;
        } else if (st->nonfinite) {
            a->kept = 1;
            a->note = "took infinite or NaN values during calibration";
        } else if (fabs(st->lo) >= HUGE_MAG || fabs(st->hi) >= HUGE_MAG) {
            a->kept = 1;
            a->note = "its range reaches 1e4 (a mask or an outlier an 8-bit range cannot hold)";
        } else {
            sk_quant_calib_range(st, a->bounded ? SK_QUANT_CALIB_MINMAX : o->calibrator, o->percentile, &lo, &hi);
            if (a->bounded) a->note = "bounded (Softmax, Sigmoid, Tanh): its observed range is used unclipped";
            double scale = (hi - lo) / 255.0;
            if (!(scale > 0) || !isfinite(scale)) {
                a->scale = 1.0f;
                a->zp = 0;
            } else {
                a->scale = (float)scale;
                double z = nearbyint(-lo / scale);
                a->zp = (uint8_t)(z < 0 ? 0 : z > 255 ? 255 : z);
            }
        }
        s = add_act_report(c, a, st, lo, hi);
    }
    /* 3. weights */
    if (!s) s = sk_qjobs_run(jobs, n_jobs, c->threads, c->err);
    /* 4. rewrite */
    for (size_t i = 0; !s && i < g->n_node; i++) {
        sk_node_proto *n = g->node[i];
        if (plan[i].kind == 3) {
            size_t k = plan[i].idx;
            s = sk_qembed_emit(c, &embeds[k], &embeds[emb_owner[k]], jobs);
            continue;
        }
        if (plan[i].kind == 1 || plan[i].kind == 2) {
            size_t n_in = plan[i].kind == 2 ? 1 : n->n_input;
            for (size_t k = 0; !s && k < n_in; k++) {
                if (!n->input[k] || !*n->input[k]) continue;
                size_t ai = (size_t)sk_qmap_get(&act_index, n->input[k], NULL);
                if (!ai || acts[ai - 1].kept) continue;
                s = act_dq(c, &acts[ai - 1]);
                if (!s) {
                    char *dup = strdup(acts[ai - 1].dq);
                    if (!dup) s = oom(c);
                    else {
                        free(n->input[k]);
                        n->input[k] = dup;
                    }
                }
            }
            if (!s && plan[i].kind == 2) {
                st_weight *w = &ws[plan[i].idx], *own = &ws[w->owner];
                if (!own->dq) s = weight_dq(c, own, &jobs[own->job]);
                if (!s) {
                    char *dup = strdup(own->dq);
                    if (!dup) s = oom(c);
                    else {
                        free(n->input[1]);
                        n->input[1] = dup;
                    }
                }
            }
        }
        if (!s) s = sk_qctx_keep(c, i);
    }
    if (!s && any_ms) s = sk_model_require_opset(c->m, "com.microsoft", 1) ? oom(c) : SK_OK;
    if (!s) s = sk_qctx_commit(c);
    for (size_t k = 0; k < n_acts; k++) {
        free(acts[k].dq);
        free(acts[k].name);
        if (stats) sk_quant_stats_clear(&stats[k]);
    }
    for (size_t k = 0; k < n_ws; k++) {
        free(ws[k].q);
        free(ws[k].scales);
        free(ws[k].dq);
    }
    for (size_t k = 0; k < n_embeds; k++) sk_qembed_entry_free(&embeds[k]);
    free(acts);
    free(stats);
    free(names);
    free(ws);
    free(embeds);
    free(emb_owner);
    free(plan);
    free(jobs);
    sk_qmap_free(&taint);
    sk_qmap_free(&bounded);
    sk_qmap_free(&act_index);
    sk_qmap_free(&owners);
    sk_qmap_free(&emb_owners);
    return s;
}
