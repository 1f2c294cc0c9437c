/* Embedding tables read by Gather: 8- or 4-bit blocks along the embedding
 * dimension, emitted as com.microsoft GatherBlockQuantized (uint8 codes) or,
 * for the int4 QDQ format, as a blocked DequantizeLinear + Gather. */
#include "sk_quant_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t pow2_floor(int64_t x)
{
    int64_t p = 1;
    while (p * 2 <= x) p *= 2;
    return p;
}

int sk_qembed_plan(sk_qctx *c, size_t i, int bits, int64_t bs, int asym, int qdq, sk_qembed_plan_entry *e,
                   sk_qjob **jobs, size_t *n_jobs, size_t *cap_jobs)
{
    const sk_node_proto *n = c->g->node[i];
    memset(e, 0, sizeof *e);
    if (!sk_qnode_is(n, "Gather") || n->n_input < 2 || n->n_output < 1) return 0;
    const char *why;
    sk_qweight w;
    if (sk_qctx_weight(c, n->input[0], &w, &why) || w.via_transpose) return 0; /* not reading a constant table */
    int64_t min = c->o->embed_min_elems > 0 ? c->o->embed_min_elems : 4096;
    if (w.view.rank != 2 || w.view.numel < min) return 0;
    int64_t V = w.view.dims[0], D = w.view.dims[1];
    const char *reason = sk_qctx_filtered(c, n, "Gather");
    if (!reason && sk_node_attr_int(n, "axis", 0) != 0) reason = "gathers along an axis other than 0";
    if (!reason && D < 16) reason = "the embedding dimension is below 16";
    if (!reason && bits == 4 && D % 2) reason = "the embedding dimension is odd (4-bit codes come in pairs)";
    if (reason) {
        if (sk_qctx_skip(c, n, reason)) return -1;
        return 0;
    }
    if (bits == 8) bs = pow2_floor(D < 128 ? D : 128);
    else if (bs > D) bs = pow2_floor(D);
    int64_t nb = (D + bs - 1) / bs;
    e->node = i;
    e->w = w;
    e->bits = bits;
    e->bs = bs;
    e->qdq = qdq;
    size_t ncodes = (size_t)V * (size_t)(bits == 8 ? D : nb * bs / 2);
    e->codes = malloc(ncodes ? ncodes : 1);
    e->scales = malloc((size_t)(V * nb) * sizeof(float) + 1);
    if (asym && bits == 4) e->zps = malloc((size_t)(V * nb) + 1);
    if (!e->codes || !e->scales || (asym && bits == 4 && !e->zps)) {
        sk_qembed_entry_free(e);
        sk_error_set(c->err, SK_ENOMEM, "out of memory");
        return -1;
    }
    const void *wf = w.view.data;
    sk_qjob j;
    memset(&j, 0, sizeof j);
    if (bits == 8) {
        j.kind = SK_QJOB_QB8;
        j.u.qb8 = (sk_qb8_job){ wf, V, D, bs, e->codes, e->scales };
    } else {
        j.kind = SK_QJOB_Q4;
        j.u.q4 = (sk_q4_job){ wf, V, D, bs, 0, asym && bits == 4, NULL, e->codes, e->scales, e->zps, 1.0f };
    }
    e->job = sk_qjobs_push(jobs, n_jobs, cap_jobs, &j);
    if (e->job == (size_t)-1) {
        sk_qembed_entry_free(e);
        sk_error_set(c->err, SK_ENOMEM, "out of memory");
        return -1;
    }
    return 1;
}

void sk_qembed_entry_free(sk_qembed_plan_entry *e)
{
    if (!e) return;
    free(e->codes);
    free(e->scales);
    free(e->zps);
    free(e->qname);
    free(e->sname);
    free(e->zname);
    e->sname = e->zname = NULL;
    e->codes = NULL;
    e->scales = NULL;
    e->zps = NULL;
    e->qname = NULL;
}

/* Creates the initializers of a planned table (once per table). */
static sk_status make_inits(sk_qctx *c, sk_qembed_plan_entry *e, sk_qjob *jobs)
{
    int64_t V = e->w.view.dims[0], D = e->w.view.dims[1], bs = e->bs, nb = (D + bs - 1) / bs;
    int asym = e->zps != NULL;
    e->qname = sk_qctx_unique2(c, e->w.name, e->bits == 8 ? "_q8" : "_q4");
    char *sname = sk_qctx_unique2(c, e->w.name, "_scale");
    char *zname = asym ? sk_qctx_unique2(c, e->w.name, "_zp") : NULL;
    if (!e->qname || !sname || (asym && !zname)) {
        free(sname);
        free(zname);
        return sk_error_set(c->err, SK_ENOMEM, "out of memory");
    }
    e->sname = sname;
    e->zname = zname;
    uint64_t after = 0;
    sk_status s;
    int64_t sd[2] = { V, nb };
    if (e->bits == 8) {
        int64_t dd[2] = { V, D };
        if (e->qdq) /* int8 codes: q + 128 back to signed */
            for (int64_t k = 0; k < V * D; k++) e->codes[k] = (uint8_t)(int8_t)((int)e->codes[k] - 128);
        s = sk_qctx_add_init(c, e->qname, e->qdq ? SK_INT8 : SK_UINT8, 2, dd, e->codes, (size_t)(V * D), 1);
        e->codes = NULL;
        after += (uint64_t)(V * D);
    } else {
        /* rows of D codes, packed two per byte */
        size_t rowb = (size_t)(D / 2);
        uint8_t *p = malloc((size_t)V * rowb + 1);
        if (!p) return sk_error_set(c->err, SK_ENOMEM, "out of memory");
        for (int64_t r = 0; r < V; r++) {
            const uint8_t *src = e->codes + r * nb * bs / 2; /* the first D codes of the row's blocks */
            uint8_t *dst = p + (size_t)r * rowb;
            if (e->qdq && !asym) /* int4: code - 8, two's complement nibbles */
                for (size_t k = 0; k < rowb; k++) dst[k] = (uint8_t)(src[k] ^ 0x88);
            else
                memcpy(dst, src, rowb);
        }
        if (e->qdq) {
            int64_t dd[2] = { V, D };
            s = sk_qctx_add_init(c, e->qname, asym ? SK_UINT4 : SK_INT4, 2, dd, p, (size_t)V * rowb, 1);
        } else {
            int64_t dd[2] = { V, D / 2 };
            s = sk_qctx_add_init(c, e->qname, SK_UINT8, 2, dd, p, (size_t)V * rowb, 1);
        }
        after += (uint64_t)V * rowb;
    }
    if (!s) s = sk_qctx_add_f32(c, sname, 2, sd, e->scales);
    after += (uint64_t)(V * nb) * 4;
    if (!s && asym) {
        int64_t zc = (nb + 1) / 2;
        uint8_t *zp = malloc((size_t)(V * zc) + 1);
        if (!zp) return sk_error_set(c->err, SK_ENOMEM, "out of memory");
        for (int64_t r = 0; r < V; r++) sk_quant_pack4(e->zps + r * nb, (size_t)nb, zp + r * zc);
        if (e->qdq) { /* uint4 zero points, same shape as the scales */
            uint8_t *z2 = malloc((size_t)((V * nb + 1) / 2) + 1);
            if (!z2) {
                free(zp);
                return sk_error_set(c->err, SK_ENOMEM, "out of memory");
            }
            sk_quant_pack4(e->zps, (size_t)(V * nb), z2);
            free(zp);
            s = sk_qctx_add_init(c, zname, SK_UINT4, 2, sd, z2, (size_t)((V * nb + 1) / 2), 1);
            after += (uint64_t)((V * nb + 1) / 2);
        } else {
            int64_t zd[2] = { V, zc };
            s = sk_qctx_add_init(c, zname, SK_UINT8, 2, zd, zp, (size_t)(V * zc), 1);
            after += (uint64_t)(V * zc);
        }
    }
    if (s) return s;
    const sk_node_proto *n = c->g->node[e->node];
    sk_quant_layer *l = sk_qctx_layer(c, n, e->w.name, V, D);
    if (!l) return SK_ENOMEM;
    snprintf(l->scheme, sizeof l->scheme, "int%d b%lld %s%s", e->bits, (long long)bs,
             e->bits == 4 ? (asym ? "asym " : "sym ") : "", e->qdq ? "(DequantizeLinear)" : "(GatherBlockQuantized)");
    l->sqnr_db = sk_qerr_db(&jobs[e->job].err);
    l->bytes_before = (uint64_t)(V * D) * 4;
    l->bytes_after = after;
    c->rep->weight_bytes_before += l->bytes_before;
    c->rep->weight_bytes_after += after;
    e->owner = 1;
    return sk_qctx_replaced(c, &e->w);
}

sk_status sk_qembed_emit(sk_qctx *c, sk_qembed_plan_entry *e, sk_qembed_plan_entry *owner, sk_qjob *jobs)
{
    if (!owner->qname) {
        sk_status s = make_inits(c, owner, jobs);
        if (s) return s;
    }
    const sk_node_proto *n = c->g->node[e->node];
    if (e->qdq) {
        char *dq = sk_qctx_unique2(c, owner->qname, "_dq");
        if (!dq) return sk_error_set(c->err, SK_ENOMEM, "out of memory");
        const char *in[3] = { owner->qname, owner->sname, owner->zname };
        const char *out[1] = { dq };
        sk_node_proto *d = sk_qctx_node(c, "DequantizeLinear", NULL, NULL, owner->zname ? 3 : 2, in, 1, out);
        if (!d || sk_node_add_attr_int(d, "axis", 1) || sk_node_add_attr_int(d, "block_size", owner->bs)) {
            free(dq);
            return d ? sk_error_set(c->err, SK_ENOMEM, "out of memory") : SK_ENOMEM;
        }
        const char *gin[2] = { dq, n->input[1] };
        const char *gout[1] = { n->output[0] };
        sk_node_proto *gn = sk_qctx_node_exact(c, "Gather", NULL, n->name, 2, gin, 1, gout);
        free(dq);
        if (!gn) return SK_ENOMEM;
    } else {
        const char *in[4] = { owner->qname, n->input[1], owner->sname, owner->zname };
        const char *out[1] = { n->output[0] };
        sk_node_proto *q = sk_qctx_node_exact(c, "GatherBlockQuantized", "com.microsoft", n->name, owner->zname ? 4 : 3, in,
                                              1, out);
        if (!q) return SK_ENOMEM;
        if (sk_node_add_attr_int(q, "bits", owner->bits) || sk_node_add_attr_int(q, "block_size", owner->bs) ||
            sk_node_add_attr_int(q, "gather_axis", 0) || sk_node_add_attr_int(q, "quantize_axis", 1))
            return sk_error_set(c->err, SK_ENOMEM, "out of memory");
    }
    sk_qctx_replace(c, e->node);
    return SK_OK;
}
