/* Weight-only 4-bit: blocks of bs weights along the input dimension K, one
 * scale (and zero point with asym) per block, the scale searched per block
 * to minimise the reconstruction error, weighted by the calibration mean
 * squares of the input channels when samples are given.
 *
 * Default output: com.microsoft MatMulNBits(A, B, scales[, zero_points])
 * with B uint8 [N, n_blocks, bs/2] (codes low nibble first), scales float
 * [N, n_blocks], packed uint8 zero points [N, ceil(n_blocks/2)]; symmetric
 * blocks omit the zero points (MatMulNBits' default zero point is 8). A Gemm
 * becomes MatMulNBits + Add (alpha folded into the scales, beta into the
 * bias). With the QDQ format the weight becomes an opset-21 blocked
 * DequantizeLinear (int4, or uint4 with zero points) feeding the original
 * MatMul or Gemm. */
#include "sk_quant_internal.h"
#include "sk_quant_calib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct q4_layer {
    sk_qlinear l;
    size_t owner;
    size_t job;
    uint8_t *codes;
    float *scales;
    uint8_t *zps;
    float *imp;           /* borrowed from the imp table */
    char *qname, *sname, *zname;
} q4_layer;

typedef struct q4_plan {
    int kind;             /* 0 keep, 1 linear, 2 embedding */
    size_t idx;
} q4_plan;

static sk_status oom(sk_qctx *c)
{
    return sk_error_set(c->err, SK_ENOMEM, "out of memory");
}

/* Initializers of an owner layer. */
static sk_status make_weight(sk_qctx *c, q4_layer *d, const sk_qjob *job, int qdq)
{
    int64_t K = d->l.K, N = d->l.N, bs = c->o->block, nb = (K + bs - 1) / bs;
    int asym = c->o->asym;
    d->qname = sk_qctx_unique2(c, d->l.w.name, "_q4");
    d->sname = sk_qctx_unique2(c, d->l.w.name, "_scales");
    d->zname = asym ? sk_qctx_unique2(c, d->l.w.name, "_zero_points") : NULL;
    if (!d->qname || !d->sname || (asym && !d->zname)) return oom(c);
    uint64_t after = 0;
    sk_status s;
    if (!qdq) {
        size_t blob = (size_t)bs / 2, nbytes = (size_t)(N * nb) * blob;
        int64_t bd[3] = { N, nb, (int64_t)blob }, sd[2] = { N, nb };
        s = sk_qctx_add_init(c, d->qname, SK_UINT8, 3, bd, d->codes, nbytes, 1); /* the job's layout already */
        d->codes = NULL;
        after += nbytes;
        if (!s) s = sk_qctx_add_f32(c, d->sname, 2, sd, d->scales);
        after += (uint64_t)(N * nb) * 4;
        if (!s && asym) {
            int64_t zc = (nb + 1) / 2, zd[2] = { N, zc };
            uint8_t *z = malloc((size_t)(N * zc) + 1);
            if (!z) return oom(c);
            for (int64_t r = 0; r < N; r++) sk_quant_pack4(d->zps + r * nb, (size_t)nb, z + r * zc);
            s = sk_qctx_add_init(c, d->zname, SK_UINT8, 2, zd, z, (size_t)(N * zc), 1);
            after += (uint64_t)(N * zc);
        }
    } else {
        /* the layout the node consumes: [K, N] blocked along axis 0, or [N, K]
         * (Gemm transB=1) blocked along axis 1 */
        const sk_node_proto *n = c->g->node[d->l.node];
        int nk = d->l.gemm && sk_node_attr_int(n, "transB", 0);
        int64_t R = nk ? N : K, C = nk ? K : N;
        size_t cnt = (size_t)(R * C);
        uint8_t *lin = malloc(cnt + 1), *p = malloc(cnt / 2 + 2);
        float *sc = malloc((size_t)(N * nb) * sizeof *sc + 1);
        uint8_t *zl = asym ? malloc((size_t)(N * nb) + 1) : NULL;
        if (!lin || !p || !sc || (asym && !zl)) {
            free(lin);
            free(p);
            free(sc);
            free(zl);
            return oom(c);
        }
        for (int64_t r = 0; r < N; r++)
            for (int64_t k = 0; k < K; k++) {
                uint8_t q = sk_quant_nibble(d->codes, (size_t)((r * nb) * bs + k)); /* [r][b][j]: j + b bs = k */
                if (!asym) q = (uint8_t)((q - 8) & 15);
                lin[nk ? r * K + k : k * N + r] = q;
            }
        for (int64_t r = 0; r < N; r++)
            for (int64_t b = 0; b < nb; b++) {
                int64_t o = nk ? r * nb + b : b * N + r;
                sc[o] = d->scales[r * nb + b];
                if (asym) zl[o] = d->zps[r * nb + b];
            }
        sk_quant_pack4(lin, cnt, p);
        free(lin);
        int64_t dd[2] = { R, C }, sd[2] = { nk ? N : nb, nk ? nb : N };
        s = sk_qctx_add_init(c, d->qname, asym ? SK_UINT4 : SK_INT4, 2, dd, p, (cnt + 1) / 2, 1);
        after += (cnt + 1) / 2;
        if (!s) s = sk_qctx_add_f32(c, d->sname, 2, sd, sc);
        after += (uint64_t)(N * nb) * 4;
        free(sc);
        if (!s && asym) {
            uint8_t *z = malloc((size_t)(N * nb + 1) / 2 + 1);
            if (!z) {
                free(zl);
                return oom(c);
            }
            sk_quant_pack4(zl, (size_t)(N * nb), z);
            s = sk_qctx_add_init(c, d->zname, SK_UINT4, 2, sd, z, (size_t)(N * nb + 1) / 2, 1);
            after += (uint64_t)(N * nb + 1) / 2;
        }
        free(zl);
    }
    if (s) return s;
    const sk_node_proto *n = c->g->node[d->l.node];
    sk_quant_layer *ly = sk_qctx_layer(c, n, d->l.w.name, d->l.w.view.dims[0], d->l.w.view.dims[1]);
    if (!ly) return SK_ENOMEM;
    snprintf(ly->scheme, sizeof ly->scheme, "int4 b%lld %s%s", (long long)bs, asym ? "asym" : "sym",
             d->imp ? " act-aware" : "");
    ly->sqnr_db = sk_qerr_db(&job->err);
    ly->bytes_before = (uint64_t)(K * N) * 4;
    ly->bytes_after = after;
    c->rep->weight_bytes_before += ly->bytes_before;
    c->rep->weight_bytes_after += after;
    return sk_qctx_replaced(c, &d->l.w);
}

/* beta * C for a Gemm bias: the value name to add (may be C itself). */
static sk_status gemm_bias(sk_qctx *c, const sk_qlinear *l, const char *base, char **out)
{
    *out = NULL;
    if (l->beta == 1.0f) {
        *out = strdup(l->bias);
        return *out ? SK_OK : oom(c);
    }
    char *scaled = sk_qctx_unique2(c, l->bias, "_beta");
    if (!scaled) return oom(c);
    sk_qweight cw;
    const char *why;
    sk_status s = SK_OK;
    if (!sk_qctx_weight(c, l->bias, &cw, &why) && !cw.via_transpose) {
        float *copy, *v = malloc(cw.view.nbytes + 4);
        const float *src = sk_qview_f32(&cw.view, &copy);
        if (!v || !src) s = oom(c);
        else {
            for (int64_t k = 0; k < cw.view.numel; k++) v[k] = src[k] * l->beta;
            s = sk_qctx_add_init(c, scaled, SK_FLOAT, cw.view.rank, cw.view.dims, v, cw.view.nbytes, 1);
            v = NULL;
        }
        free(v);
        free(copy);
    } else {
        char *bn = sk_qctx_unique2(c, scaled, "_value"), *mn = sk_qctx_unique2(c, base, "_beta_mul");
        float beta = l->beta;
        int64_t none[1] = { 0 };
        s = !bn || !mn ? oom(c) : sk_qctx_add_f32(c, bn, 0, none, &beta);
        if (!s) {
            const char *in[2] = { l->bias, bn }, *o[1] = { scaled };
            if (!sk_qctx_node(c, "Mul", NULL, mn, 2, in, 1, o)) s = SK_ENOMEM;
        }
        free(bn);
        free(mn);
    }
    if (s) free(scaled);
    else *out = scaled;
    return s;
}

static sk_status emit_nbits(sk_qctx *c, const q4_layer *d, const q4_layer *own)
{
    const sk_node_proto *n = c->g->node[d->l.node];
    char lbl[64];
    const char *base = sk_qnode_label(n, lbl, sizeof lbl);
    int bias = d->l.bias && d->l.beta != 0;
    char *pre = bias ? sk_qctx_unique2(c, n->output[0], "_matmul") : NULL;
    if (bias && !pre) return oom(c);
    const char *in[4] = { n->input[0], own->qname, own->sname, own->zname };
    const char *out[1] = { bias ? pre : n->output[0] };
    sk_node_proto *q = sk_qctx_node_exact(c, "MatMulNBits", "com.microsoft", n->name, own->zname ? 4 : 3, in, 1, out);
    sk_status s = q ? SK_OK : SK_ENOMEM;
    if (!s && (sk_node_add_attr_int(q, "K", d->l.K) || sk_node_add_attr_int(q, "N", d->l.N) ||
               sk_node_add_attr_int(q, "bits", 4) || sk_node_add_attr_int(q, "block_size", c->o->block)))
        s = oom(c);
    if (!s && bias) {
        char *b = NULL, *an = sk_qctx_unique2(c, base, "_bias_add");
        s = an ? gemm_bias(c, &d->l, base, &b) : oom(c);
        if (!s) {
            const char *ain[2] = { pre, b }, *aout[1] = { n->output[0] };
            if (!sk_qctx_node(c, "Add", NULL, an, 2, ain, 1, aout)) s = SK_ENOMEM;
        }
        free(b);
        free(an);
    }
    free(pre);
    if (!s) sk_qctx_replace(c, d->l.node);
    return s;
}

static sk_status emit_qdq(sk_qctx *c, const q4_layer *d, const q4_layer *own)
{
    const sk_node_proto *n = c->g->node[d->l.node];
    int nk = d->l.gemm && sk_node_attr_int(n, "transB", 0);
    char *dq = sk_qctx_unique2(c, own->qname, "_dq");
    if (!dq) return oom(c);
    const char *in[3] = { own->qname, own->sname, own->zname }, *out[1] = { dq };
    sk_node_proto *q = sk_qctx_node(c, "DequantizeLinear", NULL, NULL, own->zname ? 3 : 2, in, 1, out);
    sk_status s = q ? SK_OK : SK_ENOMEM;
    if (!s && (sk_node_add_attr_int(q, "axis", nk ? 1 : 0) || sk_node_add_attr_int(q, "block_size", c->o->block)))
        s = oom(c);
    if (!s) {
        /* the original node, reading the dequantized weight */
        sk_node_proto *orig = c->g->node[d->l.node];
        free(orig->input[1]);
        orig->input[1] = dq;
        dq = NULL;
        s = sk_qctx_keep(c, d->l.node);
    }
    free(dq);
    return s;
}

/* Mean squares per input channel of every activation feeding a planned
 * layer, from the calibration samples. imps[i] belongs to layers[i]. */
static sk_status collect_imp(sk_qctx *c, q4_layer *layers, size_t n_layers, float ***imps_out, size_t *n_imps)
{
    *imps_out = NULL;
    *n_imps = 0;
    const char **names = calloc(n_layers ? n_layers : 1, sizeof *names);
    int *chan = calloc(n_layers ? n_layers : 1, sizeof *chan);
    sk_quant_stats *st = calloc(n_layers ? n_layers : 1, sizeof *st);
    float **imps = calloc(n_layers ? n_layers : 1, sizeof *imps);
    size_t *slot = calloc(n_layers ? n_layers : 1, sizeof *slot);
    size_t n = 0;
    sk_status s = (!names || !chan || !st || !imps || !slot) ? oom(c) : SK_OK;
    for (size_t i = 0; !s && i < n_layers; i++) {
        const char *a = c->g->node[layers[i].l.node]->input[0];
        size_t k = 0;
        while (k < n && strcmp(names[k], a)) k++;
        if (k == n) {
            names[n] = a;
            chan[n] = 1;
            n++;
        }
        slot[i] = k;
    }
    if (!s && n) s = sk_quant_calib_collect(c->m, c->o->calib, c->threads, n, names, chan, 0, st, &c->o->progress, c->err);
    for (size_t k = 0; !s && k < n; k++) {
        if (!st[k].chan_ms) continue;
        float *v = malloc((size_t)st[k].chans * sizeof *v + 1);
        if (!v) { s = oom(c); break; }
        double mean = 0;
        for (int64_t j = 0; j < st[k].chans; j++) mean += st[k].chan_ms[j];
        mean = st[k].chans ? mean / (double)st[k].chans : 0;
        /* a floor keeps channels the samples never excited from being ignored */
        for (int64_t j = 0; j < st[k].chans; j++) v[j] = (float)(st[k].chan_ms[j] + 0.01 * mean);
        imps[k] = v;
    }
    for (size_t i = 0; !s && i < n_layers; i++) {
        size_t k = slot[i];
        if (imps[k] && st[k].chans == layers[i].l.K) layers[i].imp = imps[k];
    }
    for (size_t k = 0; k < n; k++) sk_quant_stats_clear(&st[k]);
    free(st);
    free(names);
    free(chan);
    free(slot);
    if (s) {
        for (size_t k = 0; k < n; k++) free(imps[k]);
        free(imps);
        return s;
    }
    *imps_out = imps;
    *n_imps = n;
    return SK_OK;
}

sk_status sk_quant_run_int4(sk_qctx *c)
{
    sk_graph_proto *g = c->g;
    const sk_quant_opts *o = c->o;
    int qdq = o->format == SK_QUANT_FORMAT_QDQ;
    int64_t bs = o->block;
    if (qdq) {
        sk_status s = sk_quant_upgrade_opset21(c);
        if (s) return s;
    }
    q4_plan *plan = calloc(g->n_node ? g->n_node : 1, sizeof *plan);
    q4_layer *layers = calloc(g->n_node ? g->n_node : 1, sizeof *layers);
    sk_qembed_plan_entry *embeds = calloc(g->n_node ? g->n_node : 1, sizeof *embeds);
    size_t *emb_owner = calloc(g->n_node ? g->n_node : 1, sizeof *emb_owner);
    size_t n_layers = 0, n_embeds = 0, n_jobs = 0, cap_jobs = 0, n_imps = 0;
    sk_qjob *jobs = NULL;
    float **imps = NULL;
    sk_qmap owners = { 0 }, emb_owners = { 0 };
    sk_status s = (!plan || !layers || !embeds || !emb_owner) ? oom(c) : SK_OK;
    int embed_bits = o->embed == SK_QUANT_EMBED_KEEP ? 0 : o->embed == SK_QUANT_EMBED_INT4 ? 4 : 8;
    int any_ms = 0;
    for (size_t i = 0; !s && i < g->n_node; i++) {
        const sk_node_proto *n = g->node[i];
        sk_qlinear l;
        const char *why;
        if (!sk_qlinear_match(c, i, &l, &why)) {
            if (l.K < 16) {
                s = sk_qctx_skip(c, n, "the input dimension is below 16");
                continue;
            }
            q4_layer *d = &layers[n_layers];
            d->l = l;
            char key[600];
            snprintf(key, sizeof key, "%d|%a|%s", l.src_nk, (double)l.alpha, l.w.name);
            int found;
            size_t own = (size_t)sk_qmap_get(&owners, key, &found);
            if (found) d->owner = own;
            else {
                d->owner = n_layers;
                if (sk_qmap_put(&owners, key, (void *)n_layers)) { s = oom(c); break; }
            }
            plan[i] = (q4_plan){ 1, n_layers++ };
            continue;
        }
        if (why) {
            s = sk_qctx_skip(c, n, why);
            continue;
        }
        if (embed_bits && sk_qnode_is(n, "Gather")) {
            int r = sk_qembed_plan(c, i, embed_bits, bs, o->asym, qdq, &embeds[n_embeds], &jobs, &n_jobs, &cap_jobs);
            if (r < 0) { s = SK_ENOMEM; break; }
            if (r == 1) {
                int found;
                size_t own = (size_t)sk_qmap_get(&emb_owners, embeds[n_embeds].w.name, &found);
                emb_owner[n_embeds] = found ? own : n_embeds;
                if (!found && sk_qmap_put(&emb_owners, embeds[n_embeds].w.name, (void *)n_embeds)) { s = oom(c); break; }
                plan[i] = (q4_plan){ 2, n_embeds++ };
                any_ms |= !qdq;
            }
        }
    }
    if (!s && o->calib && n_layers) s = collect_imp(c, layers, n_layers, &imps, &n_imps);
    for (size_t i = 0; !s && i < n_layers; i++) {
        q4_layer *d = &layers[i];
        if (d->owner != i) continue;
        int64_t K = d->l.K, N = d->l.N, nb = (K + bs - 1) / bs;
        d->codes = malloc((size_t)(N * nb * bs) / 2 + 1);
        d->scales = malloc((size_t)(N * nb) * sizeof(float) + 1);
        d->zps = o->asym ? malloc((size_t)(N * nb) + 1) : NULL;
        const void *wf = d->l.w.view.data;
        if (!d->codes || !d->scales || (o->asym && !d->zps)) { s = oom(c); break; }
        sk_qjob j;
        memset(&j, 0, sizeof j);
        j.kind = SK_QJOB_Q4;
        /* the alpha of a Gemm folds into MatMulNBits' scales; a QDQ Gemm keeps it */
        j.u.q4 = (sk_q4_job){ wf, N, K, bs, !d->l.src_nk, o->asym, d->imp, d->codes, d->scales, d->zps,
                              qdq ? 1.0f : d->l.alpha };
        d->job = sk_qjobs_push(&jobs, &n_jobs, &cap_jobs, &j);
        if (d->job == (size_t)-1) s = oom(c);
    }
    if (!s) s = sk_qjobs_run(jobs, n_jobs, c->threads, c->err);
    for (size_t i = 0; !s && i < g->n_node; i++) {
        if (plan[i].kind == 1) {
            q4_layer *d = &layers[plan[i].idx], *own = &layers[d->owner];
            if (!own->qname) s = make_weight(c, own, &jobs[own->job], qdq);
            if (!s) s = qdq ? emit_qdq(c, d, own) : emit_nbits(c, d, own);
            any_ms |= !qdq;
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
        free(layers[i].codes);
        free(layers[i].scales);
        free(layers[i].zps);
        free(layers[i].qname);
        free(layers[i].sname);
        free(layers[i].zname);
    }
    for (size_t i = 0; i < n_embeds; i++) sk_qembed_entry_free(&embeds[i]);
    for (size_t k = 0; k < n_imps; k++) free(imps[k]);
    free(imps);
    free(layers);
    free(embeds);
    free(emb_owner);
    free(plan);
    free(jobs);
    sk_qmap_free(&owners);
    sk_qmap_free(&emb_owners);
    return s;
}

/* ---- opset 21 for the QDQ format ---------------------------------------------------- */

static int is_reduce18(const sk_node_proto *n)
{
    static const char *const ops[] = { "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
                                       "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare", NULL };
    for (int i = 0; ops[i]; i++)
        if (sk_qnode_is(n, ops[i])) return 1;
    return 0;
}

/* Checks (and for Reduce* rewrites) the nodes of g for an upgrade from
 * version v to 21. */
static sk_status upgrade_graph(sk_qctx *c, sk_graph_proto *g, int64_t v)
{
    for (size_t i = 0; i < g->n_node; i++) {
        sk_node_proto *n = g->node[i];
        char lbl[64];
        const char *bad = NULL;
        if (v < 16 && sk_qnode_is(n, "RoiAlign")) bad = "RoiAlign";
        if (v < 20 && (sk_qnode_is(n, "GridSample") || sk_qnode_is(n, "DFT"))) bad = n->op_type;
        if (v < 21 && sk_qnode_is(n, "GroupNormalization")) bad = "GroupNormalization";
        if (bad)
            return sk_error_set(c->err, SK_EUNSUPPORTED,
                                "--format qdq needs opset 21, and node '%s' (%s) changes meaning between opset %lld "
                                "and 21; use the default MatMulNBits format",
                                sk_qnode_label(n, lbl, sizeof lbl), bad, (long long)v);
        if (v < 18 && is_reduce18(n)) {
            size_t na = SIZE_MAX;
            for (size_t a = 0; a < n->n_attribute; a++)
                if (n->attribute[a]->name && !strcmp(n->attribute[a]->name, "axes")) na = a;
            if (na != SIZE_MAX) {
                sk_attr_proto *at = n->attribute[na];
                int64_t cnt = (int64_t)at->n_ints;
                char *nm = sk_qctx_unique2(c, n->name && *n->name ? n->name : n->output[0], "_axes");
                if (!nm) return oom(c);
                sk_status s = sk_qctx_add_init(c, nm, SK_INT64, 1, &cnt, at->ints, (size_t)cnt * 8, 0);
                char **in = s ? NULL : realloc(n->input, (n->n_input + 2) * sizeof *in);
                if (s || !in) {
                    free(nm);
                    return s ? s : oom(c);
                }
                n->input = in;
                if (n->n_input == 0) return sk_error_set(c->err, SK_EINVAL, "node '%s' has no input", sk_qnode_label(n, lbl, sizeof lbl));
                in[n->n_input++] = nm;
                protobuf_c_message_free_unpacked(&at->base, NULL);
                memmove(n->attribute + na, n->attribute + na + 1, (n->n_attribute - na - 1) * sizeof *n->attribute);
                n->n_attribute--;
            }
        }
        for (size_t a = 0; a < n->n_attribute; a++) {
            sk_attr_proto *at = n->attribute[a];
            if (at->g) {
                sk_status s = upgrade_graph(c, at->g, v);
                if (s) return s;
            }
            for (size_t k = 0; k < at->n_graphs; k++) {
                sk_status s = upgrade_graph(c, at->graphs[k], v);
                if (s) return s;
            }
        }
    }
    return SK_OK;
}

sk_status sk_quant_upgrade_opset21(sk_qctx *c)
{
    int64_t v = sk_model_opset(c->m, "");
    if (v < 13)
        return sk_error_set(c->err, SK_EUNSUPPORTED,
                            "--format qdq needs opset 21 and the model imports opset %lld (below 13, too old to "
                            "upgrade here); use the default MatMulNBits format",
                            (long long)v);
    if (v < 21) {
        sk_status s = upgrade_graph(c, c->g, v);
        if (s) return s;
        if (sk_model_require_opset(c->m, "", 21)) return oom(c);
    }
    sk_model_proto *p = sk_model_proto_of(c->m);
    if (p->ir_version < 10) { /* int4 types and opset 21 */
        p->ir_version = 10;
        p->has_ir_version = 1;
    }
    return SK_OK;
}
