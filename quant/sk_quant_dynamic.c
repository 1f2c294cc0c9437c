/* Dynamic int8: MatMul and Gemm with constant weights become
 *   DynamicQuantizeLinear(A) -> A_q, A_scale, A_zp      (one per activation)
 *   MatMulInteger(A_q, W_q, A_zp, W_zp) -> int32
 *   Cast(float) ; Mul(A_scale, W_scale) ; Mul           (+ Add for a Gemm bias)
 * as ONNX Runtime's quantize_dynamic writes MatMul (its graph optimizer fuses
 * the chain into MatMulIntegerToFloat / DynamicQuantizeMatMul). Gemm, which
 * ONNX Runtime's dynamic quantizer leaves float, gets the same chain with
 * alpha folded into the weight scales and beta into the bias. A model
 * importing an opset below 11 (no DynamicQuantizeLinear) gets the one-node
 * com.microsoft DynamicQuantizeMatMul instead. Large embedding tables become
 * GatherBlockQuantized. */
#include "sk_quant_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dyn_layer {
    sk_qlinear l;
    size_t owner;          /* plan index holding the quantized weight (itself when first) */
    size_t job;
    void *q;
    float *scales;
    uint8_t *zps;
    char *qname, *sname, *zname;
} dyn_layer;

typedef struct dyn_plan {
    int kind;              /* 0 none, 1 linear, 2 embedding */
    size_t idx;            /* into layers / embeds */
} dyn_plan;

static sk_status oom(sk_qctx *c)
{
    return sk_error_set(c->err, SK_ENOMEM, "out of memory");
}

/* Key of a quantized weight variant: the same constant read the same way is
 * quantized once. */
static void weight_key(const sk_qlinear *l, char *buf, size_t cap)
{
    snprintf(buf, cap, "%d|%a|%s", l->src_nk, (double)l->alpha, l->w.name);
}

/* Creates the weight initializers of an owner layer. */
static sk_status make_weight(sk_qctx *c, dyn_layer *d, const sk_qjob *job)
{
    const sk_quant_opts *o = c->o;
    int64_t K = d->l.K, N = d->l.N, nch = o->per_tensor ? 1 : N;
    d->qname = sk_qctx_unique2(c, d->l.w.name, "_quantized");
    d->sname = sk_qctx_unique2(c, d->l.w.name, "_scale");
    d->zname = sk_qctx_unique2(c, d->l.w.name, "_zero_point");
    if (!d->qname || !d->sname || !d->zname) return oom(c);
    int64_t qd[2] = { K, N }, cd[1] = { nch };
    int qt = o->weight_uint8 ? SK_UINT8 : SK_INT8;
    sk_status s = sk_qctx_add_init(c, d->qname, qt, 2, qd, d->q, (size_t)(K * N), 1);
    d->q = NULL;
    if (!s) s = sk_qctx_add_f32(c, d->sname, o->per_tensor ? 0 : 1, cd, d->scales);
    if (!s) {
        uint8_t *z = calloc((size_t)nch, 1);
        if (!z) return oom(c);
        if (o->weight_uint8) memcpy(z, d->zps, (size_t)nch);
        s = sk_qctx_add_init(c, d->zname, qt, o->per_tensor ? 0 : 1, cd, z, (size_t)nch, 1);
    }
    if (s) return s;
    const sk_node_proto *n = c->g->node[d->l.node];
    sk_quant_layer *ly = sk_qctx_layer(c, n, d->l.w.name, d->l.w.view.dims[0], d->l.w.view.dims[1]);
    if (!ly) return SK_ENOMEM;
    snprintf(ly->scheme, sizeof ly->scheme, "%s %s", o->weight_uint8 ? "uint8" : "int8",
             o->per_tensor ? "per-tensor" : "per-channel");
    ly->sqnr_db = sk_qerr_db(&job->err);
    ly->bytes_before = (uint64_t)(K * N) * 4;
    ly->bytes_after = (uint64_t)(K * N) + (uint64_t)nch * 5;
    c->rep->weight_bytes_before += ly->bytes_before;
    c->rep->weight_bytes_after += ly->bytes_after;
    return sk_qctx_replaced(c, &d->l.w);
}

/* The DynamicQuantizeLinear outputs for activation a (made once, before the
 * first layer reading it). out[0..2]: quantized, scale, zero point. */
static sk_status dql_for(sk_qctx *c, sk_qmap *cache, const char *a, char ***out)
{
    char **names = sk_qmap_get(cache, a, NULL);
    if (names) {
        *out = names;
        return SK_OK;
    }
    names = calloc(3, sizeof *names);
    if (!names) return oom(c);
    names[0] = sk_qctx_unique2(c, a, "_quantized");
    names[1] = sk_qctx_unique2(c, a, "_scale");
    names[2] = sk_qctx_unique2(c, a, "_zero_point");
    if (!names[0] || !names[1] || !names[2] || sk_qmap_put(cache, a, names)) {
        for (int i = 0; i < 3; i++) free(names[i]);
        free(names);
        return oom(c);
    }
    char *nm = sk_qctx_unique2(c, a, "_QuantizeLinear");
    if (!nm) return oom(c);
    const char *in[1] = { a };
    sk_node_proto *n = sk_qctx_node(c, "DynamicQuantizeLinear", NULL, nm, 1, in, 3, (const char *const *)names);
    free(nm);
    if (!n) return SK_ENOMEM;
    *out = names;
    return SK_OK;
}

/* beta * C for a Gemm bias, added after the product: emits the nodes. */
static sk_status emit_bias(sk_qctx *c, const dyn_layer *d, const char *base, const char *pre, const char *y);

/* Models importing an opset below 11 (no DynamicQuantizeLinear): the one-node
 * com.microsoft DynamicQuantizeMatMul, which ONNX Runtime (CPU, wasm) and
 * skiff run at any ONNX opset. */
static sk_status emit_layer_contrib(sk_qctx *c, dyn_layer *d, const dyn_layer *own)
{
    const sk_node_proto *n = c->g->node[d->l.node];
    char lbl[64];
    const char *base = sk_qnode_label(n, lbl, sizeof lbl);
    const char *y = n->output[0];
    int bias = d->l.bias && d->l.beta != 0;
    char *pre = bias ? sk_qctx_unique2(c, y, "_before_bias") : NULL;
    if (bias && !pre) return oom(c);
    const char *in[4] = { n->input[0], own->qname, own->sname, own->zname }, *out[1] = { pre ? pre : y };
    sk_status s = sk_qctx_node_exact(c, "DynamicQuantizeMatMul", "com.microsoft", n->name, 4, in, 1, out) ? SK_OK : SK_ENOMEM;
    if (!s && bias) s = emit_bias(c, d, base, pre, y);
    free(pre);
    if (!s) sk_qctx_replace(c, d->l.node);
    return s;
}

static sk_status emit_layer(sk_qctx *c, sk_qmap *cache, dyn_layer *d, const dyn_layer *own)
{
    const sk_node_proto *n = c->g->node[d->l.node];
    char lbl[64];
    const char *base = sk_qnode_label(n, lbl, sizeof lbl);
    const char *y = n->output[0];
    char **dq = NULL;
    sk_status s = dql_for(c, cache, n->input[0], &dq);
    if (s) return s;
    char *mm = sk_qctx_unique2(c, y, "_MatMulInteger_output");
    char *cast = sk_qctx_unique2(c, y, "_cast_output");
    char *sc = sk_qctx_unique2(c, y, "_scales_mul_output");
    char *pre = d->l.bias && d->l.beta != 0 ? sk_qctx_unique2(c, y, "_before_bias") : NULL;
    char *nm_cast = sk_qctx_unique2(c, base, "_cast");
    char *nm_smul = sk_qctx_unique2(c, base, "_scales_mul");
    char *nm_mul = sk_qctx_unique2(c, base, "_output_scale_mul");
    s = (!mm || !cast || !sc || !nm_cast || !nm_smul || !nm_mul || (d->l.bias && d->l.beta != 0 && !pre)) ? oom(c) : SK_OK;
    if (!s) {
        const char *in[4] = { dq[0], own->qname, dq[2], own->zname };
        const char *out[1] = { mm };
        if (!sk_qctx_node_exact(c, "MatMulInteger", NULL, n->name, 4, in, 1, out)) s = SK_ENOMEM;
    }
    if (!s) {
        const char *in[1] = { mm }, *out[1] = { cast };
        sk_node_proto *k = sk_qctx_node(c, "Cast", NULL, nm_cast, 1, in, 1, out);
        if (!k) s = SK_ENOMEM;
        else if (sk_node_add_attr_int(k, "to", SK_FLOAT)) s = oom(c);
    }
    if (!s) {
        const char *in[2] = { dq[1], own->sname }, *out[1] = { sc };
        if (!sk_qctx_node(c, "Mul", NULL, nm_smul, 2, in, 1, out)) s = SK_ENOMEM;
    }
    if (!s) {
        const char *in[2] = { cast, sc }, *out[1] = { pre ? pre : y };
        if (!sk_qctx_node(c, "Mul", NULL, nm_mul, 2, in, 1, out)) s = SK_ENOMEM;
    }
    if (!s && pre) s = emit_bias(c, d, base, pre, y);
    free(mm);
    free(cast);
    free(sc);
    free(pre);
    free(nm_cast);
    free(nm_smul);
    free(nm_mul);
    if (!s) sk_qctx_replace(c, d->l.node);
    return s;
}

static sk_status emit_bias(sk_qctx *c, const dyn_layer *d, const char *base, const char *pre, const char *y)
{
    sk_status s = SK_OK;
    const char *bias = d->l.bias;
    char *scaled = NULL;
    if (d->l.beta != 1.0f) {
        sk_qweight cw;
        const char *why;
        scaled = sk_qctx_unique2(c, bias, "_beta");
        if (!scaled) s = oom(c);
        else if (!sk_qctx_weight(c, bias, &cw, &why) && !cw.via_transpose) {
            float *copy, *v = malloc(cw.view.nbytes + 4);
            const float *src = sk_qview_f32(&cw.view, &copy);
            if (!v || !src) s = oom(c);
            else {
                for (int64_t k = 0; k < cw.view.numel; k++) v[k] = src[k] * d->l.beta;
                s = sk_qctx_add_init(c, scaled, SK_FLOAT, cw.view.rank, cw.view.dims, v, cw.view.nbytes, 1);
                v = NULL;
            }
            free(v);
            free(copy);
        } else {
            char *bn = sk_qctx_unique2(c, scaled, "_value");
            char *mn = sk_qctx_unique2(c, base, "_beta_mul");
            float beta = d->l.beta;
            int64_t none[1] = { 0 };
            s = !bn || !mn ? oom(c) : sk_qctx_add_f32(c, bn, 0, none, &beta);
            if (!s) {
                const char *in[2] = { bias, bn }, *out[1] = { scaled };
                if (!sk_qctx_node(c, "Mul", NULL, mn, 2, in, 1, out)) s = SK_ENOMEM;
            }
            free(bn);
            free(mn);
        }
        bias = scaled;
    }
    if (!s) {
        char *an = sk_qctx_unique2(c, base, "_bias_add");
        const char *in[2] = { pre, bias }, *out[1] = { y };
        if (!an) s = oom(c);
        else if (!sk_qctx_node(c, "Add", NULL, an, 2, in, 1, out)) s = SK_ENOMEM;
        free(an);
    }
    free(scaled);
    return s;
}

static void free_dql_cache(sk_qmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys && m->keys[i]) {
            char **v = m->vals[i];
            for (int k = 0; v && k < 3; k++) free(v[k]);
            free(v);
        }
    sk_qmap_free(m);
}

sk_status sk_quant_run_dynamic(sk_qctx *c)
{
    sk_graph_proto *g = c->g;
    const sk_quant_opts *o = c->o;
    int contrib = sk_model_opset(c->m, "") < 11;
    dyn_plan *plan = calloc(g->n_node ? g->n_node : 1, sizeof *plan);
    dyn_layer *layers = calloc(g->n_node ? g->n_node : 1, sizeof *layers);
    sk_qembed_plan_entry *embeds = calloc(g->n_node ? g->n_node : 1, sizeof *embeds);
    size_t *emb_owner = calloc(g->n_node ? g->n_node : 1, sizeof *emb_owner);
    size_t n_layers = 0, n_embeds = 0, n_jobs = 0, cap_jobs = 0;
    sk_qjob *jobs = NULL;
    sk_qmap owners = { 0 }, cache = { 0 }, emb_owners = { 0 };
    sk_status s = (!plan || !layers || !embeds || !emb_owner) ? oom(c) : SK_OK;
    int embed_bits = o->embed == SK_QUANT_EMBED_KEEP ? 0 : o->embed == SK_QUANT_EMBED_INT4 ? 4 : 8;
    int64_t bs4 = o->block > 0 ? o->block : 32;
    int any_ms = 0;
    for (size_t i = 0; !s && i < g->n_node; i++) {
        const sk_node_proto *n = g->node[i];
        sk_qlinear l;
        const char *why;
        if (!sk_qlinear_match(c, i, &l, &why)) {
            dyn_layer *d = &layers[n_layers];
            d->l = l;
            char key[600];
            weight_key(&l, key, sizeof key);
            int found;
            size_t own = (size_t)sk_qmap_get(&owners, key, &found);
            if (found) {
                d->owner = own;
            } else {
                d->owner = n_layers;
                if (sk_qmap_put(&owners, key, (void *)n_layers)) { s = oom(c); break; }
                int64_t K = l.K, N = l.N, nch = o->per_tensor ? 1 : N;
                d->q = malloc((size_t)(K * N) + 1);
                d->scales = malloc((size_t)nch * sizeof(float));
                d->zps = o->weight_uint8 ? malloc((size_t)nch) : NULL;
                const void *wf = l.w.view.data;
                if (!d->q || !d->scales || (o->weight_uint8 && !d->zps)) { s = oom(c); break; }
                sk_qjob j;
                memset(&j, 0, sizeof j);
                j.kind = SK_QJOB_Q8;
                j.u.q8 = (sk_q8_job){ wf, l.w.view.dims[0], l.w.view.dims[1], o->per_tensor ? -1 : (l.src_nk ? 0 : 1),
                                      l.src_nk, o->weight_uint8, d->q, d->scales, d->zps, l.alpha };
                d->job = sk_qjobs_push(&jobs, &n_jobs, &cap_jobs, &j);
                if (d->job == (size_t)-1) { s = oom(c); break; }
            }
            plan[i] = (dyn_plan){ 1, n_layers++ };
            continue;
        }
        if (why) {
            s = sk_qctx_skip(c, n, why);
            continue;
        }
        if (embed_bits && sk_qnode_is(n, "Gather")) {
            int r = sk_qembed_plan(c, i, embed_bits, bs4, o->asym, 0, &embeds[n_embeds], &jobs, &n_jobs, &cap_jobs);
            if (r < 0) { s = SK_ENOMEM; break; }
            if (r == 1) {
                char key[600];
                snprintf(key, sizeof key, "%s", embeds[n_embeds].w.name);
                int found;
                size_t own = (size_t)sk_qmap_get(&emb_owners, key, &found);
                if (found) { /* same table: drop this job's work by reusing the owner */
                    emb_owner[n_embeds] = own;
                } else {
                    emb_owner[n_embeds] = n_embeds;
                    if (sk_qmap_put(&emb_owners, key, (void *)n_embeds)) { s = oom(c); break; }
                }
                plan[i] = (dyn_plan){ 2, n_embeds++ };
                any_ms = 1;
            }
        }
    }
    if (!s) s = sk_qjobs_run(jobs, n_jobs, c->threads, c->err);
    for (size_t i = 0; !s && i < g->n_node; i++) {
        if (plan[i].kind == 1) {
            dyn_layer *d = &layers[plan[i].idx], *own = &layers[d->owner];
            if (!own->qname) s = make_weight(c, own, &jobs[own->job]);
            if (!s) s = contrib ? emit_layer_contrib(c, d, own) : emit_layer(c, &cache, d, own);
            any_ms |= contrib;
        } else if (plan[i].kind == 2) {
            size_t k = plan[i].idx;
            s = sk_qembed_emit(c, &embeds[k], &embeds[emb_owner[k]], jobs);
        } else {
            s = sk_qctx_keep(c, i);
        }
    }
    if (!s && any_ms) s = sk_model_require_opset(c->m, "com.microsoft", 1) ? oom(c) : SK_OK;
    if (!s) s = sk_qctx_commit(c);
    for (size_t i = 0; i < n_layers; i++) {
        free(layers[i].q);
        free(layers[i].scales);
        free(layers[i].zps);
        free(layers[i].qname);
        free(layers[i].sname);
        free(layers[i].zname);
    }
    for (size_t i = 0; i < n_embeds; i++) sk_qembed_entry_free(&embeds[i]);
    free(layers);
    free(embeds);
    free(emb_owner);
    free(plan);
    free(jobs);
    sk_qmap_free(&owners);
    sk_qmap_free(&emb_owners);
    free_dql_cache(&cache);
    return s;
}
