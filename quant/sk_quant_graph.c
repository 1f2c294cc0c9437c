/* The rewriting context shared by the quantization modes: name and use maps,
 * weight lookup, node filters, the new node list and the final commit. */
#include "sk_quant_internal.h"
#include "sk_tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sk_status oom(sk_error *err)
{
    return sk_error_set(err, SK_ENOMEM, "out of memory");
}

int sk_qnode_is(const sk_node_proto *n, const char *op)
{
    if (!n->op_type || strcmp(n->op_type, op)) return 0;
    return !n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx");
}

const char *sk_qnode_label(const sk_node_proto *n, char *buf, size_t cap)
{
    if (n->name && *n->name) return n->name;
    snprintf(buf, cap, "%s (unnamed)", n->op_type ? n->op_type : "?");
    return buf;
}

/* ---- maps ------------------------------------------------------------------------ */

static sk_status add_names_graph(sk_qmap *names, sk_qmap *uses, const sk_graph_proto *g)
{
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && sk_qmap_put(names, g->input[i]->name, NULL)) return SK_ENOMEM;
    for (size_t i = 0; i < g->n_output; i++) {
        if (!g->output[i]->name) continue;
        if (sk_qmap_put(names, g->output[i]->name, NULL)) return SK_ENOMEM;
        if (uses && sk_qmap_add(uses, g->output[i]->name, 1)) return SK_ENOMEM;
    }
    for (size_t i = 0; i < g->n_value_info; i++)
        if (g->value_info[i]->name && sk_qmap_put(names, g->value_info[i]->name, NULL)) return SK_ENOMEM;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && sk_qmap_put(names, g->initializer[i]->name, NULL)) return SK_ENOMEM;
    for (size_t i = 0; i < g->n_node; i++) {
        const sk_node_proto *n = g->node[i];
        if (n->name && sk_qmap_put(names, n->name, NULL)) return SK_ENOMEM;
        for (size_t k = 0; k < n->n_input; k++) {
            if (!n->input[k] || !*n->input[k]) continue;
            if (sk_qmap_put(names, n->input[k], NULL)) return SK_ENOMEM;
            if (uses && sk_qmap_add(uses, n->input[k], 1)) return SK_ENOMEM;
        }
        for (size_t k = 0; k < n->n_output; k++)
            if (n->output[k] && *n->output[k] && sk_qmap_put(names, n->output[k], NULL)) return SK_ENOMEM;
        for (size_t a = 0; a < n->n_attribute; a++) {
            const sk_attr_proto *at = n->attribute[a];
            if (at->g && add_names_graph(names, uses, at->g)) return SK_ENOMEM;
            for (size_t k = 0; k < at->n_graphs; k++)
                if (add_names_graph(names, uses, at->graphs[k])) return SK_ENOMEM;
        }
    }
    return SK_OK;
}

sk_status sk_qctx_init(sk_qctx *c, sk_model *m, const sk_quant_opts *o, sk_quant_report *rep, sk_error *err)
{
    memset(c, 0, sizeof *c);
    c->m = m;
    c->g = sk_model_graph(m);
    c->o = o;
    c->rep = rep;
    c->err = err;
    c->threads = o->threads > 0 ? o->threads : sk_quant_cpu_count();
    sk_graph_proto *g = c->g;
    if (add_names_graph(&c->names, &c->uses, g)) return oom(err);
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_output; k++)
            if (g->node[i]->output[k] && *g->node[i]->output[k] &&
                sk_qmap_put(&c->producer, g->node[i]->output[k], (void *)(i + 1)))
                return oom(err);
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && sk_qmap_put(&c->inits, g->initializer[i]->name, g->initializer[i]))
            return oom(err);
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && sk_qmap_put(&c->ginputs, g->input[i]->name, NULL)) return oom(err);
    for (size_t i = 0; i < g->n_output; i++)
        if (g->output[i]->name && sk_qmap_put(&c->goutputs, g->output[i]->name, NULL)) return oom(err);
    c->drop = calloc(g->n_node ? g->n_node : 1, 1);
    c->state = calloc(g->n_node ? g->n_node : 1, 1);
    if (!c->drop || !c->state) return oom(err);
    return SK_OK;
}

void sk_qctx_free(sk_qctx *c)
{
    if (!c) return;
    sk_qmap_free(&c->names);
    sk_qmap_free(&c->producer);
    sk_qmap_free(&c->uses);
    sk_qmap_free(&c->inits);
    sk_qmap_free(&c->ginputs);
    sk_qmap_free(&c->goutputs);
    /* nodes/initializers not committed (failure): free them */
    for (size_t i = 0; i < c->n_new_inits; i++) sk_tensor_proto_free(c->m, c->new_inits[i]);
    free(c->new_inits);
    /* not committed (a failure): the originals still belong to the graph */
    for (size_t i = 0; i < c->n_created; i++) sk_node_proto_free(c->m, c->created[i]);
    free(c->created);
    free(c->nodes);
    free(c->state);
    for (size_t i = 0; i < c->n_replaced; i++) free(c->replaced[i]);
    free(c->replaced);
    free(c->drop);
    memset(c, 0, sizeof *c);
}

char *sk_qctx_unique(sk_qctx *c, const char *base)
{
    size_t cap = strlen(base) + 24;
    char *s = malloc(cap);
    if (!s) return NULL;
    snprintf(s, cap, "%s", base);
    int found;
    for (unsigned long k = 1;; k++) {
        sk_qmap_get(&c->names, s, &found);
        if (!found) break;
        snprintf(s, cap, "%s_%lu", base, k);
    }
    if (sk_qmap_put(&c->names, s, NULL)) {
        free(s);
        return NULL;
    }
    return s;
}

char *sk_qctx_unique2(sk_qctx *c, const char *base, const char *suffix)
{
    size_t n = strlen(base) + strlen(suffix) + 1;
    char *b = malloc(n);
    if (!b) return NULL;
    snprintf(b, n, "%s%s", base, suffix);
    char *s = sk_qctx_unique(c, b);
    free(b);
    return s;
}

static sk_status push_node(sk_qctx *c, sk_node_proto *n)
{
    if (c->n_nodes == c->cap_nodes) {
        size_t cap = c->cap_nodes ? c->cap_nodes * 2 : 256;
        sk_node_proto **a = realloc(c->nodes, cap * sizeof *a);
        if (!a) return oom(c->err);
        c->nodes = a;
        c->cap_nodes = cap;
    }
    c->nodes[c->n_nodes++] = n;
    return SK_OK;
}

sk_status sk_qctx_emit(sk_qctx *c, sk_node_proto *n)
{
    if (c->n_created == c->cap_created) {
        size_t cap = c->cap_created ? c->cap_created * 2 : 256;
        sk_node_proto **a = realloc(c->created, cap * sizeof *a);
        if (!a) {
            sk_node_proto_free(c->m, n);
            return oom(c->err);
        }
        c->created = a;
        c->cap_created = cap;
    }
    c->created[c->n_created++] = n;
    return push_node(c, n);
}

sk_status sk_qctx_keep(sk_qctx *c, size_t i)
{
    return push_node(c, c->g->node[i]);
}

void sk_qctx_replace(sk_qctx *c, size_t i)
{
    c->state[i] = 1;
}

sk_node_proto *sk_qctx_node(sk_qctx *c, const char *op, const char *domain, const char *name, size_t n_in,
                            const char *const *in, size_t n_out, const char *const *out)
{
    char *nm = sk_qctx_unique(c, name ? name : out[0]);
    if (!nm) {
        oom(c->err);
        return NULL;
    }
    sk_node_proto *n = sk_node_proto_new(op, domain, nm, n_in, in, n_out, out);
    free(nm);
    if (!n) {
        oom(c->err);
        return NULL;
    }
    if (sk_qctx_emit(c, n)) return NULL;
    return n;
}

sk_node_proto *sk_qctx_node_exact(sk_qctx *c, const char *op, const char *domain, const char *name, size_t n_in,
                                  const char *const *in, size_t n_out, const char *const *out)
{
    if (!name || !*name) return sk_qctx_node(c, op, domain, NULL, n_in, in, n_out, out);
    sk_node_proto *n = sk_node_proto_new(op, domain, name, n_in, in, n_out, out);
    if (!n) {
        oom(c->err);
        return NULL;
    }
    if (sk_qctx_emit(c, n)) return NULL;
    return n;
}

sk_status sk_qctx_add_init(sk_qctx *c, const char *name, int dtype, int rank, const int64_t *dims, void *data,
                           size_t nbytes, int take)
{
    int64_t zero[1] = { 0 };
    sk_tensor_proto *t = sk_tensor_proto_new(name, dtype, 1, zero, NULL, 0); /* empty, then the data */
    if (!t) {
        if (take) free(data);
        return oom(c->err);
    }
    sk_error e2 = { 0 };
    if (sk_tensor_proto_set_raw(c->m, t, dtype, rank, dims, data, nbytes, take, &e2)) {
        sk_tensor_proto_free(c->m, t);
        return sk_error_set(c->err, e2.code, "%s", e2.msg);
    }
    if (c->n_new_inits == c->cap_new_inits) {
        size_t cap = c->cap_new_inits ? c->cap_new_inits * 2 : 64;
        sk_tensor_proto **a = realloc(c->new_inits, cap * sizeof *a);
        if (!a) {
            sk_tensor_proto_free(c->m, t);
            return oom(c->err);
        }
        c->new_inits = a;
        c->cap_new_inits = cap;
    }
    c->new_inits[c->n_new_inits++] = t;
    return SK_OK;
}

sk_status sk_qctx_add_f32(sk_qctx *c, const char *name, int rank, const int64_t *dims, const float *v)
{
    int64_t n = sk_shape_numel(rank, dims);
    return sk_qctx_add_init(c, name, SK_FLOAT, rank, dims, (void *)v, (size_t)n * 4, 0);
}

sk_status sk_qctx_replaced(sk_qctx *c, const sk_qweight *w)
{
    if (c->n_replaced == c->cap_replaced) {
        size_t cap = c->cap_replaced ? c->cap_replaced * 2 : 64;
        char **a = realloc(c->replaced, cap * sizeof *a);
        if (!a) return oom(c->err);
        c->replaced = a;
        c->cap_replaced = cap;
    }
    c->replaced[c->n_replaced] = strdup(w->name);
    if (!c->replaced[c->n_replaced]) return oom(c->err);
    c->n_replaced++;
    if (w->via_transpose) c->drop[w->transpose_node] = 1;
    if (w->const_node) c->drop[w->const_node - 1] = 1;
    return SK_OK;
}

/* ---- weights and filters -------------------------------------------------------------- */

static int find_const(sk_qctx *c, const char *value, sk_qweight *w, const char **reason)
{
    int found;
    sk_tensor_proto *t = sk_qmap_get(&c->inits, value, &found);
    if (found) {
        sk_qmap_get(&c->ginputs, value, &found);
        if (found) {
            *reason = "the weight is also a graph input (it can be overridden at run time)";
            return 1;
        }
        w->const_node = 0;
    } else {
        size_t p = (size_t)sk_qmap_get(&c->producer, value, NULL);
        if (!p) {
            *reason = "the weight is not a constant";
            return 1;
        }
        const sk_node_proto *n = c->g->node[p - 1];
        t = sk_qnode_is(n, "Constant") ? (sk_tensor_proto *)sk_node_attr_tensor(n, "value") : NULL;
        if (!t) {
            *reason = "the weight is not a constant";
            return 1;
        }
        w->const_node = p;
    }
    if (t->data_type != SK_FLOAT) {
        *reason = t->data_type == SK_FLOAT16 ? "the weight is float16 (only float32 weights are quantized)"
                                             : "the weight is not float32";
        return 1;
    }
    sk_error e2 = { 0 };
    if (sk_model_tensor_view(c->m, t, &w->view, &e2)) {
        *reason = "the weight's data cannot be read";
        return 1;
    }
    w->name = value;
    w->proto = t;
    return 0;
}

int sk_qctx_weight(sk_qctx *c, const char *value, sk_qweight *w, const char **reason)
{
    memset(w, 0, sizeof *w);
    *reason = NULL;
    if (!value || !*value) {
        *reason = "no weight input";
        return 1;
    }
    int found;
    sk_qmap_get(&c->inits, value, &found);
    size_t p = found ? 0 : (size_t)sk_qmap_get(&c->producer, value, NULL);
    if (p && sk_qnode_is(c->g->node[p - 1], "Transpose")) {
        const sk_node_proto *tn = c->g->node[p - 1];
        size_t np;
        const int64_t *perm = sk_node_attr_ints(tn, "perm", &np);
        if (tn->n_input < 1 || (perm && !(np == 2 && perm[0] == 1 && perm[1] == 0))) {
            *reason = "the weight is not a constant";
            return 1;
        }
        if (find_const(c, tn->input[0], w, reason)) return 1;
        if (w->view.rank != 2) {
            *reason = "the weight is not a matrix";
            return 1;
        }
        w->via_transpose = 1;
        w->transpose_node = p - 1;
        return 0;
    }
    return find_const(c, value, w, reason);
}

int sk_quant_glob_match(const char *p, const char *s)
{
    /* iterative matcher with one backtrack point for '*' */
    const char *star = NULL, *ss = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            ss = s;
            continue;
        }
        if (*p == '[') {
            const char *q = p + 1;
            int neg = 0, ok = 0;
            if (*q == '!' || *q == '^') { neg = 1; q++; }
            const char *start = q;
            while (*q && (*q != ']' || q == start)) {
                if (q[1] == '-' && q[2] && q[2] != ']') {
                    if ((unsigned char)*s >= (unsigned char)q[0] && (unsigned char)*s <= (unsigned char)q[2]) ok = 1;
                    q += 3;
                } else {
                    if (*q == *s) ok = 1;
                    q++;
                }
            }
            if (*q == ']' && ok != neg) {
                p = q + 1;
                s++;
                continue;
            }
            if (*q != ']' && *p == *s) { /* unterminated '[': literal */
                p++;
                s++;
                continue;
            }
        } else if (*p == '?' || *p == *s) {
            p++;
            s++;
            continue;
        }
        if (!star) return 0;
        p = star + 1;
        s = ++ss;
    }
    while (*p == '*') p++;
    return !*p;
}

const char *sk_qctx_filtered(sk_qctx *c, const sk_node_proto *n, const char *op)
{
    const sk_quant_opts *o = c->o;
    const char *name = n->name ? n->name : "";
    for (size_t i = 0; i < o->n_exclude; i++)
        if (sk_quant_glob_match(o->exclude[i], name)) return "excluded by --exclude";
    if (o->n_op_types) {
        int ok = 0;
        for (size_t i = 0; i < o->n_op_types && !ok; i++) ok = !strcmp(o->op_types[i], op);
        if (!ok) return "op type not selected (--op-types)";
    }
    if (o->keep_io_float) {
        int found;
        for (size_t k = 0; k < n->n_input; k++) {
            if (!n->input[k] || !*n->input[k]) continue;
            sk_qmap_get(&c->ginputs, n->input[k], &found);
            int init;
            sk_qmap_get(&c->inits, n->input[k], &init);
            if (found && !init) return "reads a graph input (--keep-io-float)";
        }
        for (size_t k = 0; k < n->n_output; k++) {
            sk_qmap_get(&c->goutputs, n->output[k], &found);
            if (found) return "writes a graph output (--keep-io-float)";
        }
    }
    return NULL;
}

int sk_qlinear_match(sk_qctx *c, size_t i, sk_qlinear *l, const char **reason)
{
    const sk_node_proto *n = c->g->node[i];
    memset(l, 0, sizeof *l);
    *reason = NULL;
    int gemm = sk_qnode_is(n, "Gemm");
    if (!gemm && !sk_qnode_is(n, "MatMul")) return 1;
    if (n->n_input < 2 || n->n_output < 1) return 1;
    const char *why;
    if (sk_qctx_weight(c, n->input[1], &l->w, &why)) {
        sk_qweight a;
        const char *why_a;
        if (!sk_qctx_weight(c, n->input[0], &a, &why_a)) {
            *reason = "the constant is the left operand";
            return 1;
        }
        if (!strcmp(why, "the weight is not a constant")) return 1; /* activation x activation */
        *reason = why;
        return 1;
    }
    const char *f = sk_qctx_filtered(c, n, gemm ? "Gemm" : "MatMul");
    if (f) {
        *reason = f;
        return 1;
    }
    if (l->w.view.rank != 2) {
        *reason = "the weight is not a matrix";
        return 1;
    }
    l->node = i;
    l->gemm = gemm;
    l->alpha = l->beta = 1.0f;
    int transb = 0;
    if (gemm) {
        if (sk_node_attr_int(n, "transA", 0)) {
            *reason = "Gemm with transA=1";
            return 1;
        }
        transb = sk_node_attr_int(n, "transB", 0) != 0;
        l->alpha = sk_node_attr_float(n, "alpha", 1.0f);
        l->beta = sk_node_attr_float(n, "beta", 1.0f);
        if (n->n_input > 2 && n->input[2] && *n->input[2]) l->bias = n->input[2];
    }
    l->src_nk = transb ^ l->w.via_transpose;
    l->K = l->w.view.dims[l->src_nk ? 1 : 0];
    l->N = l->w.view.dims[l->src_nk ? 0 : 1];
    if (l->K < 1 || l->N < 1) {
        *reason = "the weight is empty";
        return 1;
    }
    return 0;
}

/* ---- report entries --------------------------------------------------------------------- */

sk_status sk_qctx_skip(sk_qctx *c, const sk_node_proto *n, const char *reason)
{
    sk_quant_report *r = c->rep;
    sk_quant_skip *a = realloc(r->skipped, (r->n_skipped + 1) * sizeof *a);
    if (!a) return oom(c->err);
    r->skipped = a;
    char buf[64];
    a[r->n_skipped].node = strdup(sk_qnode_label(n, buf, sizeof buf));
    a[r->n_skipped].reason = strdup(reason);
    if (!a[r->n_skipped].node || !a[r->n_skipped].reason) {
        free(a[r->n_skipped].node);
        free(a[r->n_skipped].reason);
        return oom(c->err);
    }
    r->n_skipped++;
    return SK_OK;
}

sk_quant_layer *sk_qctx_layer(sk_qctx *c, const sk_node_proto *n, const char *weight, int64_t rows, int64_t cols)
{
    sk_quant_report *r = c->rep;
    sk_quant_layer *a = realloc(r->layers, (r->n_layers + 1) * sizeof *a);
    if (!a) {
        oom(c->err);
        return NULL;
    }
    r->layers = a;
    sk_quant_layer *l = &a[r->n_layers];
    memset(l, 0, sizeof *l);
    char buf[64];
    l->node = strdup(sk_qnode_label(n, buf, sizeof buf));
    l->op = strdup(n->op_type ? n->op_type : "");
    l->weight = strdup(weight);
    l->output = strdup(n->n_output ? n->output[0] : "");
    l->out_sqnr_db = NAN;
    if (!l->node || !l->op || !l->weight || !l->output) {
        free(l->node);
        free(l->op);
        free(l->weight);
        free(l->output);
        oom(c->err);
        return NULL;
    }
    l->rows = rows;
    l->cols = cols;
    r->n_layers++;
    return l;
}

/* ---- commit ------------------------------------------------------------------------------- */

static sk_status count_uses(sk_qctx *c, sk_qmap *uses)
{
    sk_graph_proto *g = c->g;
    for (size_t i = 0; i < g->n_output; i++)
        if (g->output[i]->name && sk_qmap_add(uses, g->output[i]->name, 1)) return SK_ENOMEM;
    for (size_t i = 0; i < c->n_nodes; i++) {
        const sk_node_proto *n = c->nodes[i];
        if (!n) continue;
        for (size_t k = 0; k < n->n_input; k++)
            if (n->input[k] && *n->input[k] && sk_qmap_add(uses, n->input[k], 1)) return SK_ENOMEM;
        for (size_t a = 0; a < n->n_attribute; a++) {
            sk_qmap dummy = { 0 };
            const sk_attr_proto *at = n->attribute[a];
            sk_status s = SK_OK;
            if (at->g) s = add_names_graph(&dummy, uses, at->g);
            for (size_t k = 0; !s && k < at->n_graphs; k++) s = add_names_graph(&dummy, uses, at->graphs[k]);
            sk_qmap_free(&dummy);
            if (s) return s;
        }
    }
    return SK_OK;
}

sk_status sk_qctx_commit(sk_qctx *c)
{
    sk_graph_proto *g = c->g;
    sk_qmap uses = { 0 };
    if (count_uses(c, &uses)) {
        sk_qmap_free(&uses);
        return oom(c->err);
    }
    /* weight producers (Transpose, Constant) nobody reads anymore */
    for (size_t i = 0; i < g->n_node; i++) {
        if (!c->drop[i]) continue;
        sk_node_proto *n = g->node[i];
        int used = 0;
        for (size_t k = 0; k < n->n_output && !used; k++) used = sk_qmap_get(&uses, n->output[k], NULL) != NULL;
        if (used) continue;
        for (size_t j = 0; j < c->n_nodes; j++)
            if (c->nodes[j] == n) {
                c->nodes[j] = NULL;
                /* its inputs lose a use */
                for (size_t k = 0; k < n->n_input; k++)
                    if (n->input[k] && *n->input[k] && sk_qmap_add(&uses, n->input[k], -1)) {
                        sk_qmap_free(&uses);
                        return oom(c->err);
                    }
                sk_node_proto_free(c->m, n);
                break;
            }
    }
    for (size_t i = 0; i < g->n_node; i++)
        if (c->state[i]) sk_node_proto_free(c->m, g->node[i]);
    size_t k = 0;
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i]) c->nodes[k++] = c->nodes[i];
    free(c->created);
    c->created = NULL;
    c->n_created = c->cap_created = 0;
    free(g->node);
    g->node = c->nodes;
    g->n_node = k;
    c->nodes = NULL;
    c->n_nodes = c->cap_nodes = 0;
    for (size_t i = 0; i < c->n_new_inits; i++) {
        if (sk_graph_add_initializer(g, c->new_inits[i])) {
            sk_qmap_free(&uses);
            return oom(c->err);
        }
        c->new_inits[i] = NULL;
    }
    c->n_new_inits = 0;
    for (size_t i = 0; i < c->n_replaced; i++)
        if (!sk_qmap_get(&uses, c->replaced[i], NULL)) sk_graph_remove_initializer(c->m, g, c->replaced[i]);
    /* value_info of values that no longer exist */
    sk_qmap live = { 0 };
    sk_status s = SK_OK;
    for (size_t i = 0; !s && i < g->n_node; i++)
        for (size_t o = 0; !s && o < g->node[i]->n_output; o++)
            s = sk_qmap_put(&live, g->node[i]->output[o], NULL);
    for (size_t i = 0; !s && i < g->n_initializer; i++)
        if (g->initializer[i]->name) s = sk_qmap_put(&live, g->initializer[i]->name, NULL);
    for (size_t i = 0; !s && i < g->n_input; i++)
        if (g->input[i]->name) s = sk_qmap_put(&live, g->input[i]->name, NULL);
    if (!s) {
        size_t w = 0;
        for (size_t i = 0; i < g->n_value_info; i++) {
            int found;
            sk_qmap_get(&live, g->value_info[i]->name ? g->value_info[i]->name : "", &found);
            if (found) g->value_info[w++] = g->value_info[i];
            else protobuf_c_message_free_unpacked(&g->value_info[i]->base, NULL);
        }
        g->n_value_info = w;
    }
    sk_qmap_free(&live);
    sk_qmap_free(&uses);
    return s ? oom(c->err) : SK_OK;
}
