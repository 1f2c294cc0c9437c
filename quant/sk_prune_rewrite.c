/* The graph rewrite of head pruning: slices weights and biases, changes the
 * constants that encode head counts and widths, inserts what grouped-query
 * attention and compensation need, then removes what became unused. */
#include "sk_prune_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rw {
    sk_model *m;
    sk_graph_proto *g;
    const sk_prune_index *ix;
    sk_error *err;
    /* clones of small constants: (original root, bytes) -> new name */
    struct cached {
        char *root;
        int dtype;
        uint8_t *bytes;
        size_t n;
        char *name;
    } *cache;
    size_t n_cache;
} rw;

static void rw_free(rw *w)
{
    for (size_t i = 0; i < w->n_cache; i++) {
        free(w->cache[i].root);
        free(w->cache[i].bytes);
        free(w->cache[i].name);
    }
    free(w->cache);
}

static size_t node_pos(const sk_graph_proto *g, const sk_node_proto *n)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (g->node[i] == n) return i;
    return g->n_node;
}

static size_t elem_size(int dt)
{
    int64_t n = sk_dtype_nbytes(dt, 1);
    return n > 0 ? (size_t)n : 0;
}

static void set_elem_f(void *data, int dtype, int64_t i, float v)
{
    uint8_t *p = data;
    switch (dtype) {
    case SK_FLOAT: memcpy(p + 4 * i, &v, 4); break;
    case SK_FLOAT16: {
        uint16_t h = sk_float_to_half(v);
        memcpy(p + 2 * i, &h, 2);
        break;
    }
    case SK_BFLOAT16: {
        uint16_t h = sk_float_to_bf16(v);
        memcpy(p + 2 * i, &h, 2);
        break;
    }
    case SK_DOUBLE: {
        double d = v;
        memcpy(p + 8 * i, &d, 8);
        break;
    }
    default: break;
    }
}

/* Gives input k of node n the new constant data (malloc'd, taken). The
 * initializer is changed in place when n is its only reader; otherwise a new
 * initializer is added (small ones shared between identical copies). */
static sk_status replace_const(rw *w, sk_node_proto *n, size_t k, int dtype, int rank, const int64_t *dims, void *data,
                               size_t nbytes, int allow_in_place)
{
    const char *v = n->input[k];
    sk_prune_const c;
    int as;
    if (!sk_prune_index_const(w->ix, v, &c) && !sk_prune_index_int_const(w->ix, v, &c, &as)) {
        free(data);
        return sk_error_set(w->err, SK_EINTERNAL, "'%s' is no longer a constant", v);
    }
    if (c.dtype == dtype && c.rank == rank && c.nbytes == nbytes && !memcmp(c.data, data, nbytes)) {
        int same = 1;
        for (int i = 0; i < rank; i++) same &= c.dims[i] == dims[i];
        if (same) { /* nothing changes */
            free(data);
            return SK_OK;
        }
    }
    sk_node_proto *const *cons;
    size_t nc = sk_prune_index_consumers(w->ix, v, &cons);
    sk_tensor_proto *t = sk_prune_index_producer(w->ix, v, NULL) ? NULL : sk_graph_initializer(w->g, v);
    if (allow_in_place && t && nc == 1 && !sk_prune_index_escapes(w->ix, v) && !sk_prune_index_is_input(w->ix, v)) {
        sk_status s = sk_tensor_proto_set_raw(w->m, t, dtype, rank, dims, data, nbytes, 1, w->err);
        if (s) free(data);
        return s;
    }
    int small = nbytes <= 256;
    for (size_t i = 0; small && i < w->n_cache; i++) {
        struct cached *e = &w->cache[i];
        if (e->dtype == dtype && e->n == nbytes && !strcmp(e->root, c.root) && !memcmp(e->bytes, data, nbytes)) {
            free(data);
            return sk_prune_set_input(n, k, e->name, w->err);
        }
    }
    char base[600];
    snprintf(base, sizeof base, "%.500s_pruned", c.root);
    sk_status s = sk_prune_add_const(w->m, n, k, base, dtype, rank, dims, data, nbytes, w->err);
    if (!s && small) {
        struct cached *a = realloc(w->cache, (w->n_cache + 1) * sizeof *a);
        if (a) {
            w->cache = a;
            struct cached *e = &a[w->n_cache];
            e->root = strdup(c.root);
            e->name = strdup(n->input[k]);
            e->dtype = dtype;
            e->n = nbytes;
            e->bytes = malloc(nbytes ? nbytes : 1);
            if (e->root && e->name && e->bytes) {
                memcpy(e->bytes, data, nbytes);
                w->n_cache++;
            } else {
                free(e->root);
                free(e->name);
                free(e->bytes);
            }
        }
    }
    free(data);
    return s;
}

/* Keeps the entries sel[0..n) of axis `axis` of constant c (any dtype of
 * whole bytes), scaling entry i by scale[i] when scale is set (float types). */
static sk_status gather_const(rw *w, sk_node_proto *node, size_t k, int axis, const int64_t *sel, int64_t n,
                              const float *scale, int allow_in_place)
{
    sk_prune_const c;
    if (!sk_prune_index_const(w->ix, node->input[k], &c) || axis < 0 || axis >= c.rank)
        return sk_error_set(w->err, SK_EINTERNAL, "'%s' cannot be sliced", node->input[k]);
    size_t es = elem_size(c.dtype);
    if (!es || sk_dtype_table[c.dtype].bits % 8)
        return sk_error_set(w->err, SK_EUNSUPPORTED, "'%s' is %s; only whole-byte types can be sliced", c.root,
                            sk_dtype_name(c.dtype));
    int64_t outer = 1, inner = 1, len = c.dims[axis];
    for (int i = 0; i < axis; i++) outer *= c.dims[i];
    for (int i = axis + 1; i < c.rank; i++) inner *= c.dims[i];
    for (int64_t i = 0; i < n; i++)
        if (sel[i] < 0 || sel[i] >= len)
            return sk_error_set(w->err, SK_EINTERNAL, "index %" PRId64 " out of range slicing '%s'", sel[i], c.root);
    size_t nbytes = (size_t)(outer * n * inner) * es;
    uint8_t *out = malloc(nbytes ? nbytes : 1);
    if (!out) return sk_error_set(w->err, SK_ENOMEM, "out of memory");
    const uint8_t *src = c.data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < n; i++)
            memcpy(out + (size_t)((o * n + i) * inner) * es, src + (size_t)((o * len + sel[i]) * inner) * es,
                   (size_t)inner * es);
    if (scale) {
        if (c.dtype != SK_FLOAT && c.dtype != SK_FLOAT16 && c.dtype != SK_BFLOAT16 && c.dtype != SK_DOUBLE) {
            free(out);
            return sk_error_set(w->err, SK_EUNSUPPORTED, "'%s' is %s and cannot be rescaled", c.root, sk_dtype_name(c.dtype));
        }
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < n; i++)
                if (scale[i] != 1.0f)
                    for (int64_t j = 0; j < inner; j++) {
                        int64_t at = (o * n + i) * inner + j;
                        set_elem_f(out, c.dtype, at, scale[i] * sk_prune_elem_f(out, c.dtype, at));
                    }
    }
    int64_t dims[SK_MAX_RANK];
    for (int i = 0; i < c.rank; i++) dims[i] = c.dims[i];
    dims[axis] = n;
    return replace_const(w, node, k, c.dtype, c.rank, dims, out, nbytes, allow_in_place);
}

/* ---- projections ----------------------------------------------------------------------- */

typedef struct role_sel {
    const sk_attn_proj *p;
    int64_t *cols;      /* absolute weight columns kept */
    int64_t n;
} role_sel;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Slices the weights and biases of the Q/K/V projections. */
static sk_status slice_projections(rw *w, const sk_attn_block *b, const sk_prune_plan *p)
{
    role_sel r[3];
    memset(r, 0, sizeof r);
    const sk_attn_proj *pr[3] = { &b->q, &b->k, &b->v };
    sk_status s = SK_OK;
    for (size_t i = 0; i < 3 && !s; i++) {
        int kv = i > 0;
        int64_t D = i == 2 ? b->v_head_size : b->head_size;
        int64_t nh = kv ? p->n_kv_keep : p->n_keep;
        const int64_t *heads = kv ? p->kv_keep : p->keep;
        if (b->kind != SK_ATTN_GRAPH) { /* fused ops: key/value heads follow the query heads */
            nh = p->n_keep;
            heads = p->keep;
        }
        r[i].p = pr[i];
        r[i].cols = malloc((size_t)(nh * D + 1) * sizeof *r[i].cols);
        if (!r[i].cols) {
            s = sk_error_set(w->err, SK_ENOMEM, "out of memory");
            break;
        }
        for (int64_t k = 0; k < nh; k++)
            for (int64_t d = 0; d < D; d++) r[i].cols[r[i].n++] = heads[k] * D + d; /* relative to the role */
    }
    /* weights: one gather per distinct (node, input) */
    for (size_t i = 0; i < 3 && !s; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++) seen |= pr[j]->node == pr[i]->node && pr[j]->w_input == pr[i]->w_input;
        if (seen) continue;
        int64_t total = 0;
        for (size_t j = i; j < 3; j++)
            if (pr[j]->node == pr[i]->node && pr[j]->w_input == pr[i]->w_input) total += r[j].n;
        int64_t *sel = malloc((size_t)(total + 1) * sizeof *sel), n = 0;
        if (!sel) {
            s = sk_error_set(w->err, SK_ENOMEM, "out of memory");
            break;
        }
        for (size_t j = i; j < 3; j++)
            if (pr[j]->node == pr[i]->node && pr[j]->w_input == pr[i]->w_input)
                for (int64_t k = 0; k < r[j].n; k++) sel[n++] = pr[j]->col + r[j].cols[k];
        qsort(sel, (size_t)n, sizeof *sel, cmp_i64);
        s = gather_const(w, pr[i]->node, pr[i]->w_input, pr[i]->transposed ? 0 : 1, sel, n, NULL, 1);
        free(sel);
    }
    /* biases */
    for (size_t i = 0; i < 3 && !s; i++) {
        if (!pr[i]->bias) continue;
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= pr[j]->bias && pr[j]->bias_node == pr[i]->bias_node && pr[j]->bias_input == pr[i]->bias_input;
        if (seen) continue;
        int64_t total = 0;
        for (size_t j = i; j < 3; j++)
            if (pr[j]->bias && pr[j]->bias_node == pr[i]->bias_node && pr[j]->bias_input == pr[i]->bias_input)
                total += r[j].n;
        int64_t *sel = malloc((size_t)(total + 1) * sizeof *sel), n = 0;
        if (!sel) {
            s = sk_error_set(w->err, SK_ENOMEM, "out of memory");
            break;
        }
        for (size_t j = i; j < 3; j++)
            if (pr[j]->bias && pr[j]->bias_node == pr[i]->bias_node && pr[j]->bias_input == pr[i]->bias_input)
                for (int64_t k = 0; k < r[j].n; k++) sel[n++] = pr[j]->bias_col + r[j].cols[k];
        qsort(sel, (size_t)n, sizeof *sel, cmp_i64);
        sk_prune_const c;
        if (!sk_prune_index_const(w->ix, pr[i]->bias_node->input[pr[i]->bias_input], &c)) {
            free(sel);
            s = sk_error_set(w->err, SK_EINTERNAL, "the bias '%s' is no longer a constant", pr[i]->bias);
            break;
        }
        s = gather_const(w, pr[i]->bias_node, pr[i]->bias_input, c.rank - 1, sel, n, NULL, 1);
        free(sel);
    }
    for (size_t i = 0; i < 3; i++) free(r[i].cols);
    return s;
}

/* Keeps the kept heads' rows of the output projection (scaled by alpha) and
 * writes the new bias. */
static sk_status slice_output(rw *w, const sk_attn_block *b, const sk_prune_plan *p)
{
    const sk_attn_proj *o = &b->o;
    int64_t Dv = b->v_head_size, n = p->n_keep * Dv;
    int64_t *sel = malloc((size_t)(n + 1) * sizeof *sel);
    float *scale = malloc((size_t)(n + 1) * sizeof *scale);
    if (!sel || !scale) {
        free(sel);
        free(scale);
        return sk_error_set(w->err, SK_ENOMEM, "out of memory");
    }
    int any_scale = 0;
    for (int64_t k = 0; k < p->n_keep; k++)
        for (int64_t d = 0; d < Dv; d++) {
            sel[k * Dv + d] = o->col + p->keep[k] * Dv + d;
            scale[k * Dv + d] = p->alpha ? p->alpha[p->keep[k]] : 1.0f;
            any_scale |= scale[k * Dv + d] != 1.0f;
        }
    sk_status s = gather_const(w, o->node, o->w_input, o->transposed ? 1 : 0, sel, n, any_scale ? scale : NULL, 1);
    free(sel);
    free(scale);
    if (s || !p->bias) return s;
    /* the bias, in the weight's type; Gemm multiplies C by beta */
    sk_prune_const wc;
    int dt = sk_prune_index_const(w->ix, o->weight, &wc) ? wc.dtype : SK_FLOAT;
    size_t es = elem_size(dt);
    int is_gemm = !strcmp(o->node->op_type, "Gemm");
    float beta = is_gemm ? sk_node_attr_float(o->node, "beta", 1.0f) : 1.0f;
    int gemm_c = is_gemm && (!o->bias || o->bias_node == o->node);
    if (gemm_c && beta == 0)
        return sk_error_set(w->err, SK_EUNSUPPORTED, "the output projection is a Gemm with beta 0; its bias cannot be refitted");
    uint8_t *data = malloc((size_t)o->out * es + 1);
    if (!data) return sk_error_set(w->err, SK_ENOMEM, "out of memory");
    for (int64_t j = 0; j < o->out; j++) set_elem_f(data, dt, j, p->bias[j] / (gemm_c ? beta : 1.0f));
    int64_t dims[1] = { o->out };
    if (o->bias) return replace_const(w, o->bias_node, o->bias_input, dt, 1, dims, data, (size_t)o->out * es, 1);
    char base[600];
    snprintf(base, sizeof base, "%.500s_bias", o->weight);
    if (is_gemm) { /* Gemm without C: add one */
        if (o->node->n_input < 3) {
            char **in = realloc(o->node->input, 3 * sizeof *in);
            if (!in) {
                free(data);
                return sk_error_set(w->err, SK_ENOMEM, "out of memory");
            }
            o->node->input = in;
            if (!(in[2] = strdup(""))) {
                free(data);
                return sk_error_set(w->err, SK_ENOMEM, "out of memory");
            }
            o->node->n_input = 3;
        }
        s = sk_prune_add_const(w->m, o->node, 2, base, dt, 1, dims, data, (size_t)o->out * es, w->err);
        free(data);
        return s;
    }
    /* MatMul: Y = MatMul(x, W) becomes Y' = MatMul(x, W); Y = Add(Y', bias) */
    char yb[600];
    snprintf(yb, sizeof yb, "%.500s_nobias", o->node->output[0]);
    char *ynew = sk_model_unique_name(w->m, yb);
    char *bname = sk_model_unique_name(w->m, base);
    sk_tensor_proto *t = bname ? sk_tensor_proto_new(bname, dt, 1, dims, data, (size_t)o->out * es) : NULL;
    free(data);
    if (!ynew || !bname || !t) {
        free(ynew);
        free(bname);
        sk_tensor_proto_free(w->m, t);
        return sk_error_set(w->err, SK_ENOMEM, "out of memory");
    }
    const char *ins[2] = { ynew, bname }, *outs[1] = { o->node->output[0] };
    char an[600];
    snprintf(an, sizeof an, "%.500s_bias_add", o->node->name && *o->node->name ? o->node->name : o->node->output[0]);
    char *aname = sk_model_unique_name(w->m, an);
    sk_node_proto *add = aname ? sk_node_proto_new("Add", NULL, aname, 2, ins, 1, outs) : NULL;
    free(aname);
    if (!add || sk_graph_add_initializer(w->g, t)) {
        sk_node_proto_free(w->m, add);
        sk_tensor_proto_free(w->m, t);
        free(ynew);
        free(bname);
        return sk_error_set(w->err, SK_ENOMEM, "out of memory");
    }
    free(o->node->output[0]);
    o->node->output[0] = ynew;
    free(bname);
    s = sk_graph_insert_node(w->g, node_pos(w->g, o->node) + 1, add);
    if (s) {
        sk_node_proto_free(w->m, add);
        return sk_error_set(w->err, SK_ENOMEM, "out of memory");
    }
    return SK_OK;
}

/* ---- shape constants ----------------------------------------------------------------- */

static int64_t new_value(const sk_attn_block *b, const sk_prune_plan *p, const sk_attn_ref *r)
{
    int64_t kv = b->kind == SK_ATTN_GRAPH ? p->n_kv_keep : p->n_keep;
    switch (r->dim) {
    case SK_ATTN_DIM_HEADS: return p->n_keep;
    case SK_ATTN_DIM_KV_HEADS: return r->repeat && p->uneven ? p->n_keep : kv;
    case SK_ATTN_DIM_GROUP: return p->uneven ? 1 : kv ? p->n_keep / kv : 1;
    case SK_ATTN_DIM_QWIDTH: return p->n_keep * b->head_size;
    case SK_ATTN_DIM_VWIDTH: return p->n_keep * b->v_head_size;
    case SK_ATTN_DIM_KVWIDTH: return kv * b->head_size;
    case SK_ATTN_DIM_KVVWIDTH: return kv * b->v_head_size;
    case SK_ATTN_DIM_FUSED: return p->n_keep * b->head_size + kv * (b->head_size + b->v_head_size);
    case SK_ATTN_DIM_SPLIT: return 0;
    }
    return 0;
}

/* New Q, K, V widths in the order of their columns (split outputs). */
static void split_widths(const sk_attn_block *b, const sk_prune_plan *p, int64_t *out)
{
    int64_t kv = b->kind == SK_ATTN_GRAPH ? p->n_kv_keep : p->n_keep;
    struct { int64_t col, w; } r[3] = { { b->q.col, p->n_keep * b->head_size },
                                         { b->k.col, kv * b->head_size },
                                         { b->v.col, kv * b->v_head_size } };
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (r[j].col < r[i].col) {
                int64_t c = r[i].col, w = r[i].w;
                r[i] = r[j];
                r[j].col = c;
                r[j].w = w;
            }
    for (int i = 0; i < 3; i++) out[i] = r[i].w;
}

static sk_status set_attr_ints(sk_node_proto *n, const char *name, size_t count, const int64_t *v, sk_error *err)
{
    for (size_t i = 0; i < n->n_attribute; i++) {
        sk_attr_proto *a = n->attribute[i];
        if (!a->name || strcmp(a->name, name)) continue;
        int64_t *c = malloc((count ? count : 1) * sizeof *c);
        if (!c) return sk_error_set(err, SK_ENOMEM, "out of memory");
        memcpy(c, v, count * sizeof *c);
        free(a->ints);
        a->ints = c;
        a->n_ints = count;
        return SK_OK;
    }
    return sk_error_set(err, SK_EINTERNAL, "no attribute %s", name);
}

static sk_status set_attr_int(sk_node_proto *n, const char *name, int64_t v, sk_error *err)
{
    for (size_t i = 0; i < n->n_attribute; i++) {
        sk_attr_proto *a = n->attribute[i];
        if (!a->name || strcmp(a->name, name)) continue;
        a->i = v;
        a->has_i = 1;
        return SK_OK;
    }
    return sk_error_set(err, SK_EINTERNAL, "no attribute %s", name);
}

/* The constant input k of node n with entries changed by the refs of one
 * user, as a new malloc'd copy. */
static sk_status edited_copy(rw *w, const sk_attn_block *b, const sk_prune_plan *p, sk_node_proto *n, size_t k,
                             const sk_attn_ref *user, void **data, sk_prune_const *c)
{
    int as;
    if (!sk_prune_index_int_const(w->ix, n->input[k], c, &as))
        return sk_error_set(w->err, SK_EINTERNAL, "'%s' is not an integer constant", n->input[k]);
    /* in the type the reader gets (a Cast in between goes away) */
    size_t es = as == SK_INT64 ? 8 : 4;
    uint8_t *d = malloc((size_t)c->numel * es + 1);
    if (!d) return sk_error_set(w->err, SK_ENOMEM, "out of memory");
    for (int64_t e = 0; e < c->numel; e++) {
        int64_t v = sk_prune_const_int(c, e, 0);
        if (es == 8) memcpy(d + 8 * e, &v, 8);
        else {
            int32_t v32 = (int32_t)v;
            memcpy(d + 4 * e, &v32, 4);
        }
    }
    c->dtype = as;
    c->nbytes = (size_t)c->numel * es;
    for (size_t i = 0; i < b->n_refs; i++) {
        const sk_attn_ref *r = &b->refs[i];
        if (r->node != n || r->input != k || r->attr) continue;
        if (r->user != user->user || r->user_input != user->user_input) continue;
        if (r->dim == SK_ATTN_DIM_SPLIT) {
            int64_t wd[3];
            split_widths(b, p, wd);
            for (int64_t e = 0; e < c->numel && e < 3; e++) {
                if (es == 8) memcpy(d + 8 * e, &wd[e], 8);
                else {
                    int32_t v32 = (int32_t)wd[e];
                    memcpy(d + 4 * e, &v32, 4);
                }
            }
            continue;
        }
        if (r->elem < 0 || r->elem >= c->numel) continue;
        int64_t v = new_value(b, p, r);
        if (es == 8) memcpy(d + 8 * r->elem, &v, 8);
        else {
            int32_t v32 = (int32_t)v;
            memcpy(d + 4 * r->elem, &v32, 4);
        }
    }
    *data = d;
    return SK_OK;
}

static sk_status rewrite_refs(rw *w, const sk_attn_block *b, const sk_prune_plan *p)
{
    sk_status s = SK_OK;
    for (size_t i = 0; i < b->n_refs && !s; i++) {
        const sk_attn_ref *r = &b->refs[i];
        /* once per user (and attribute) */
        int seen = 0;
        for (size_t j = 0; j < i; j++) {
            const sk_attn_ref *q = &b->refs[j];
            int same_attr = (!q->attr && !r->attr) || (q->attr && r->attr && !strcmp(q->attr, r->attr));
            seen |= q->user == r->user && q->user_input == r->user_input && same_attr;
        }
        if (seen) continue;
        if (r->attr) {
            if (!strcmp(r->attr, "num_heads")) s = set_attr_int(r->node, "num_heads", p->n_keep, w->err);
            else {
                int64_t wd[3];
                if (!strcmp(r->attr, "qkv_hidden_sizes")) {
                    wd[0] = p->n_keep * b->head_size;
                    wd[1] = p->n_keep * b->head_size;
                    wd[2] = p->n_keep * b->v_head_size;
                } else {
                    split_widths(b, p, wd);
                }
                s = set_attr_ints(r->node, r->attr, 3, wd, w->err);
            }
            continue;
        }
        if (r->node == r->user) {
            void *d;
            sk_prune_const c;
            s = edited_copy(w, b, p, r->node, r->input, r, &d, &c);
            if (!s) s = replace_const(w, r->node, r->input, c.dtype, c.rank, c.dims, d, c.nbytes, 0);
            continue;
        }
        /* a piece of a Concat: give the user its own copy of the Concat */
        sk_node_proto *cat = r->node;
        char base[600];
        snprintf(base, sizeof base, "%.500s_pruned", cat->output[0]);
        char *out = sk_model_unique_name(w->m, base);
        char cbase[700];
        snprintf(cbase, sizeof cbase, "%.500s_pruned", cat->name && *cat->name ? cat->name : cat->output[0]);
        char *cname = sk_model_unique_name(w->m, cbase);
        sk_node_proto *nc = out && cname ? sk_node_proto_new("Concat", NULL, cname, cat->n_input,
                                                             (const char *const *)cat->input, 1, (const char *const *)&out)
                                         : NULL;
        free(out);
        free(cname);
        if (!nc || sk_node_add_attr_int(nc, "axis", sk_node_attr_int(cat, "axis", 0))) {
            sk_node_proto_free(w->m, nc);
            return sk_error_set(w->err, SK_ENOMEM, "out of memory");
        }
        for (size_t k = 0; k < cat->n_input && !s; k++) {
            int edited = 0;
            for (size_t j = 0; j < b->n_refs; j++)
                edited |= b->refs[j].node == cat && b->refs[j].input == k && b->refs[j].user == r->user &&
                          b->refs[j].user_input == r->user_input;
            if (!edited) continue;
            void *d;
            sk_prune_const c;
            /* edit the original Concat's piece, attach the result to the clone */
            s = edited_copy(w, b, p, cat, k, r, &d, &c);
            if (!s) s = replace_const(w, nc, k, c.dtype, c.rank, c.dims, d, c.nbytes, 0);
        }
        if (!s) s = sk_graph_insert_node(w->g, node_pos(w->g, cat) + 1, nc);
        if (s) {
            sk_node_proto_free(w->m, nc);
            return s;
        }
        s = sk_prune_set_input(r->user, r->user_input, nc->output[0], w->err);
    }
    return s;
}

/* ---- grouped-query attention: one key/value head per kept query head ----------- */

static sk_status insert_kv_gather(rw *w, const sk_attn_block *b, const sk_prune_plan *p, const sk_attn_repeat *rep)
{
    sk_node_proto *u = rep->unsqueeze;
    int64_t *idx = malloc((size_t)(p->n_keep + 1) * sizeof *idx);
    if (!idx) return sk_error_set(w->err, SK_ENOMEM, "out of memory");
    for (int64_t k = 0; k < p->n_keep; k++) {
        int64_t g = sk_attn_kv_of(b, p->keep[k]);
        idx[k] = 0;
        for (int64_t j = 0; j < p->n_kv_keep; j++)
            if (p->kv_keep[j] == g) idx[k] = j;
    }
    char base[600];
    snprintf(base, sizeof base, "%.500s_kv_index", u->input[0]);
    char *iname = sk_model_unique_name(w->m, base);
    snprintf(base, sizeof base, "%.500s_kv_gathered", u->input[0]);
    char *oname = sk_model_unique_name(w->m, base);
    int64_t dims[1] = { p->n_keep };
    sk_tensor_proto *t = iname ? sk_tensor_proto_new(iname, SK_INT64, 1, dims, idx, (size_t)p->n_keep * 8) : NULL;
    free(idx);
    const char *ins[2] = { u->input[0], iname }, *outs[1] = { oname };
    char gbase[700];
    snprintf(gbase, sizeof gbase, "%.500s_kv_gather", u->name && *u->name ? u->name : u->output[0]);
    char *gname = sk_model_unique_name(w->m, gbase);
    sk_node_proto *gn = t && oname && gname ? sk_node_proto_new("Gather", NULL, gname, 2, ins, 1, outs) : NULL;
    free(gname);
    sk_status s = SK_OK;
    if (!gn || sk_node_add_attr_int(gn, "axis", rep->axis - 1) || sk_graph_add_initializer(w->g, t)) {
        sk_node_proto_free(w->m, gn);
        sk_tensor_proto_free(w->m, t);
        s = sk_error_set(w->err, SK_ENOMEM, "out of memory");
    } else {
        s = sk_graph_insert_node(w->g, node_pos(w->g, u), gn);
        if (s) {
            sk_node_proto_free(w->m, gn);
            s = sk_error_set(w->err, SK_ENOMEM, "out of memory");
        } else {
            s = sk_prune_set_input(u, 0, oname, w->err);
        }
    }
    free(iname);
    free(oname);
    return s;
}

/* ---- per-head constants ---------------------------------------------------------------- */

static sk_status slice_headwise(rw *w, const sk_attn_block *b, const sk_prune_plan *p)
{
    for (size_t i = 0; i < b->n_headwise; i++) {
        const sk_attn_headwise *hw = &b->headwise[i];
        sk_prune_const c;
        if (!sk_prune_index_const(w->ix, hw->node->input[hw->input], &c)) continue;
        sk_status s = gather_const(w, hw->node, hw->input, c.rank + (int)hw->axis, p->keep, p->n_keep, NULL, 0);
        if (s) return s;
    }
    return SK_OK;
}

sk_status sk_prune_rewrite(sk_model *m, const sk_prune_index *ix, const sk_attn_info *info, const sk_prune_plan *plan,
                           sk_error *err)
{
    rw w;
    memset(&w, 0, sizeof w);
    w.m = m;
    w.g = sk_model_graph(m);
    w.ix = ix;
    w.err = err;
    sk_status s = SK_OK;
    for (size_t bi = 0; bi < info->n_blocks && !s; bi++) {
        const sk_attn_block *b = &info->blocks[bi];
        const sk_prune_plan *p = &plan[bi];
        if (!p->drop || p->n_keep == b->heads) continue;
        s = slice_projections(&w, b, p);
        if (!s) s = slice_output(&w, b, p);
        if (!s) s = rewrite_refs(&w, b, p);
        if (!s) s = slice_headwise(&w, b, p);
        if (!s && p->uneven && b->kind == SK_ATTN_GRAPH) {
            if (!b->rep_k.unsqueeze || !b->rep_v.unsqueeze)
                s = sk_error_set(err, SK_EINTERNAL, "layer %" PRId64 ": uneven key/value groups without a head repeat",
                                 b->layer);
            if (!s) s = insert_kv_gather(&w, b, p, &b->rep_k);
            if (!s) s = insert_kv_gather(&w, b, p, &b->rep_v);
        }
        if (!s && p->drop) sk_prune_drop_value_info(m, b->n_values, (const char *const *)b->values);
        if (s) sk_error_prefix(err, "layer %" PRId64 ": ", b->layer);
    }
    rw_free(&w);
    return s;
}
