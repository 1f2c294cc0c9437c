/* Validation of a loaded model: everything read from the file is checked here
 * before any other code trusts it. */
#include "sk_model_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A set of names (not owned), open addressing. */
typedef struct strset {
    const char **slot;
    size_t *val;
    size_t n, cap;
} strset;

static size_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* 64-bit FNV-1a, also where size_t is 32 bits */
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return (size_t)h;
}

static void strset_free(strset *s)
{
    free(s->slot);
    free(s->val);
}

static int strset_init(strset *s, size_t expect)
{
    size_t cap = 16;
    while (cap < expect * 2 + 2) cap *= 2;
    s->slot = calloc(cap, sizeof *s->slot);
    s->val = calloc(cap, sizeof *s->val);
    s->n = 0;
    s->cap = cap;
    return s->slot && s->val ? 0 : -1;
}

/* Returns the slot index of key, inserting it with value v if absent and
 * insert is set; SIZE_MAX when absent (or on allocation failure). */
static size_t strset_find(strset *s, const char *key)
{
    size_t h = str_hash(key) & (s->cap - 1);
    while (s->slot[h]) {
        if (!strcmp(s->slot[h], key)) return h;
        h = (h + 1) & (s->cap - 1);
    }
    return SIZE_MAX;
}

static int strset_add(strset *s, const char *key, size_t v)
{
    if ((s->n + 1) * 2 > s->cap) {
        strset bigger;
        if (strset_init(&bigger, s->cap)) return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) strset_add(&bigger, s->slot[i], s->val[i]);
        strset_free(s);
        *s = bigger;
    }
    size_t h = str_hash(key) & (s->cap - 1);
    while (s->slot[h]) {
        if (!strcmp(s->slot[h], key)) { s->val[h] = v; return 1; }
        h = (h + 1) & (s->cap - 1);
    }
    s->slot[h] = key;
    s->val[h] = v;
    s->n++;
    return 0;
}

typedef struct scope {
    strset *names;
    const struct scope *parent;
} scope;

static int scope_has(const scope *sc, const char *name)
{
    for (; sc; sc = sc->parent)
        if (strset_find(sc->names, name) != SIZE_MAX) return 1;
    return 0;
}

/* ---- tensors ------------------------------------------------------------ */

static sk_status check_tensor(sk_model *m, sk_tensor_proto *t, sk_tensor_place place, const sk_node_proto *n, void *arg)
{
    sk_error *err = arg;
    const char *name = t->name ? t->name : "";
    if (place == SK_PLACE_INITIALIZER && !*name)
        return sk_error_set(err, SK_EINVAL, "an initializer has no name");
    int64_t nb = sk_tensor_proto_nbytes(t, err);
    if (nb < 0) goto fail;
    if (t->data_type == SK_STRING) {
        int64_t numel = sk_tensor_proto_numel(t);
        if (sk_tensor_proto_storage(t) != SK_STORE_TYPED || (int64_t)t->n_string_data != numel) {
            sk_error_set(err, SK_EINVAL, "string tensor '%s' has %zu strings but its shape needs %" PRId64,
                         name, t->n_string_data, numel);
            goto fail;
        }
        return SK_OK;
    }
    if (m->no_external && sk_tensor_proto_storage(t) == SK_STORE_EXTERNAL) {
        const char *loc; uint64_t off, len; int hl;
        return sk_tensor_external_info(t, &loc, &off, &len, &hl, err);
    }
    sk_tensor_view v;
    if (sk_model_tensor_view(m, t, &v, err)) goto fail;
    /* the converted copy of a typed tensor is rebuilt on demand; don't keep
     * all of them alive just because we checked them */
    if (v.storage == SK_STORE_TYPED) sk_model_cache_drop(m, t);
    return SK_OK;
fail:
    if (n && place != SK_PLACE_INITIALIZER) {
        char lb[128];
        sk_error_prefix(err, "node %s: ", sk_node_label(n, lb, sizeof lb));
    }
    return err ? err->code : SK_EINVAL;
}

static sk_status check_value_info(const sk_value_info *vi, const char *what, sk_error *err)
{
    if (!vi->name || !*vi->name) return sk_error_set(err, SK_EINVAL, "a graph %s has no name", what);
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) return SK_OK;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0 && !sk_dtype_valid(tt->elem_type))
        return sk_error_set(err, SK_EINVAL, "%s '%s' has unknown element type %d", what, vi->name, tt->elem_type);
    if (!tt->shape) return SK_OK;
    if (tt->shape->n_dim > SK_MAX_RANK)
        return sk_error_set(err, SK_EINVAL, "%s '%s' has rank %zu (max %d)", what, vi->name, tt->shape->n_dim, SK_MAX_RANK);
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            (d->dim_value < 0 || d->dim_value > SK_MAX_DIM))
            return sk_error_set(err, SK_EINVAL, "%s '%s' has an invalid dim %" PRId64, what, vi->name, d->dim_value);
    }
    return SK_OK;
}

/* ---- graphs ------------------------------------------------------------- */

static sk_status check_graph(const sk_graph_proto *g, const scope *outer, int depth, sk_error *err);

static sk_status check_subgraphs(const sk_node_proto *n, const scope *sc, int depth, sk_error *err)
{
    for (size_t a = 0; a < n->n_attribute; a++) {
        const Onnx__AttributeProto *at = n->attribute[a];
        sk_status s = SK_OK;
        if (at->g) s = check_graph(at->g, sc, depth + 1, err);
        for (size_t k = 0; !s && k < at->n_graphs; k++) s = check_graph(at->graphs[k], sc, depth + 1, err);
        if (s) {
            char lb[128];
            sk_error_prefix(err, "in the subgraph of node %s: ", sk_node_label(n, lb, sizeof lb));
            return s;
        }
    }
    return SK_OK;
}

static sk_status check_graph(const sk_graph_proto *g, const scope *outer, int depth, sk_error *err)
{
    char lb[128];
    if (depth > 32) return sk_error_set(err, SK_EINVAL, "subgraphs nested too deeply");
    sk_status s = SK_OK;
    strset names = { 0 }, producer = { 0 };
    size_t *pending = NULL, *queue = NULL, *edges = NULL, *first = NULL;
    size_t n_node = g->n_node;
    if (strset_init(&names, g->n_input + g->n_initializer + n_node * 2) || strset_init(&producer, n_node * 2)) {
        s = sk_error_set(err, SK_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < g->n_input; i++) {
        if ((s = check_value_info(g->input[i], "input", err))) goto done;
        strset_add(&names, g->input[i]->name, 0);
    }
    for (size_t i = 0; i < g->n_output; i++)
        if ((s = check_value_info(g->output[i], "output", err))) goto done;
    for (size_t i = 0; i < g->n_value_info; i++)
        if ((s = check_value_info(g->value_info[i], "value", err))) goto done;
    for (size_t i = 0; i < g->n_initializer; i++)
        strset_add(&names, g->initializer[i]->name, 0);
    for (size_t i = 0; i < g->n_sparse_initializer; i++) {
        const Onnx__SparseTensorProto *sp = g->sparse_initializer[i];
        if (sp->values && sp->values->name) strset_add(&names, sp->values->name, 0);
    }
    for (size_t i = 0; i < n_node; i++) {
        const sk_node_proto *n = g->node[i];
        if (!n->op_type || !*n->op_type) {
            s = sk_error_set(err, SK_EINVAL, "node #%zu has no op_type", i);
            goto done;
        }
        for (size_t o = 0; o < n->n_output; o++) {
            const char *out = n->output[o];
            if (!out || !*out) continue;
            if (strset_find(&producer, out) != SIZE_MAX) {
                s = sk_error_set(err, SK_EINVAL, "value '%s' is produced by two nodes (the second is %s)", out,
                                 sk_node_label(n, lb, sizeof lb));
                goto done;
            }
            if (strset_add(&producer, out, i) < 0 || strset_add(&names, out, 0) < 0) {
                s = sk_error_set(err, SK_ENOMEM, "out of memory");
                goto done;
            }
        }
    }
    scope sc = { &names, outer };
    /* Kahn's algorithm over node -> node edges; edges[] is a CSR list of consumers */
    pending = calloc(n_node + 1, sizeof *pending);
    first = calloc(n_node + 2, sizeof *first);
    queue = malloc((n_node + 1) * sizeof *queue);
    size_t n_edges = 0;
    for (size_t i = 0; i < n_node; i++) n_edges += g->node[i]->n_input;
    edges = malloc((n_edges + 1) * sizeof *edges);
    if (!pending || !first || !queue || !edges) {
        s = sk_error_set(err, SK_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_node; i++) {
        const sk_node_proto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++) {
            const char *in = n->input[k];
            if (!in || !*in) continue;
            size_t h = strset_find(&producer, in);
            if (h != SIZE_MAX) {
                first[producer.val[h] + 1]++;
                pending[i]++;
            } else if (!scope_has(&sc, in)) {
                s = sk_error_set(err, SK_EINVAL, "node %s: input '%s' is not produced by any node, graph input or initializer",
                                 sk_node_label(n, lb, sizeof lb), in);
                goto done;
            }
        }
    }
    for (size_t i = 0; i < n_node; i++) first[i + 1] += first[i];
    {
        size_t *fill = calloc(n_node + 1, sizeof *fill);
        if (!fill) {
            s = sk_error_set(err, SK_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < n_node; i++) {
            const sk_node_proto *n = g->node[i];
            for (size_t k = 0; k < n->n_input; k++) {
                const char *in = n->input[k];
                if (!in || !*in) continue;
                size_t h = strset_find(&producer, in);
                if (h != SIZE_MAX) {
                    size_t p = producer.val[h];
                    edges[first[p] + fill[p]++] = i;
                }
            }
        }
        free(fill);
    }
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n_node; i++)
        if (!pending[i]) queue[tail++] = i;
    while (head < tail) {
        size_t p = queue[head++];
        for (size_t e = first[p]; e < first[p + 1]; e++)
            if (--pending[edges[e]] == 0) queue[tail++] = edges[e];
    }
    if (tail < n_node) {
        size_t bad = 0;
        while (bad < n_node && !pending[bad]) bad++;
        s = sk_error_set(err, SK_EINVAL, "the graph has a cycle (through node %s)", sk_node_label(g->node[bad], lb, sizeof lb));
        goto done;
    }
    for (size_t i = 0; i < g->n_output; i++)
        if (!scope_has(&sc, g->output[i]->name)) {
            s = sk_error_set(err, SK_EINVAL, "graph output '%s' is not produced by any node, input or initializer",
                             g->output[i]->name);
            goto done;
        }
    for (size_t i = 0; i < n_node && !s; i++) s = check_subgraphs(g->node[i], &sc, depth, err);
done:
    strset_free(&names);
    strset_free(&producer);
    free(pending);
    free(queue);
    free(edges);
    free(first);
    return s;
}

sk_status sk_model_check(sk_model *m, sk_error *err)
{
    if (!m->proto->graph) return sk_error_set(err, SK_EINVAL, "not an ONNX model: no graph");
    for (size_t i = 0; i < m->proto->n_opset_import; i++)
        if (m->proto->opset_import[i]->version < 0)
            return sk_error_set(err, SK_EINVAL, "negative opset version");
    sk_status s = sk_model_visit_tensors(m, check_tensor, err);
    if (s) return s;
    return check_graph(m->proto->graph, NULL, 0, err);
}
