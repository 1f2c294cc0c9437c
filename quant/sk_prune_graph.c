#include "sk_prune_graph.h"

#include <stdlib.h>
#include <string.h>

typedef struct vinfo {
    const char *name;
    size_t producer;      /* node position when the index was built, SIZE_MAX if none */
    sk_node_proto *prod;  /* the node itself (stays valid when nodes are inserted) */
    size_t init;          /* initializer position, SIZE_MAX if none */
    size_t c0, cn;        /* consumers: cons[c0 .. c0+cn) */
    int graph_input;
    int escapes;
} vinfo;

struct sk_prune_index {
    sk_model *m;
    sk_graph_proto *g;
    vinfo *v;             /* open addressing table, cap a power of two; name NULL = empty */
    size_t cap, n;
    sk_node_proto **cons;
    size_t n_cons;
    const sk_node_proto **pkeys; /* node pointer -> position, open addressing */
    size_t *pvals;
    size_t pcap;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static uint64_t hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static vinfo *find(const sk_prune_index *ix, const char *name)
{
    if (!name || !*name) return NULL;
    size_t mask = ix->cap - 1;
    for (size_t i = (size_t)hash_str(name) & mask;; i = (i + 1) & mask) {
        if (!ix->v[i].name) return NULL;
        if (!strcmp(ix->v[i].name, name)) return &ix->v[i];
    }
}

static vinfo *add(sk_prune_index *ix, const char *name)
{
    if (!name || !*name) return NULL;
    size_t mask = ix->cap - 1;
    for (size_t i = (size_t)hash_str(name) & mask;; i = (i + 1) & mask) {
        if (!ix->v[i].name) {
            vinfo *e = &ix->v[i];
            e->name = name;
            e->producer = e->init = SIZE_MAX;
            ix->n++;
            return e;
        }
        if (!strcmp(ix->v[i].name, name)) return &ix->v[i];
    }
}

static void mark_subgraph_reads(sk_prune_index *ix, const sk_graph_proto *g)
{
    for (size_t i = 0; i < g->n_node; i++) {
        const sk_node_proto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++) {
            vinfo *e = find(ix, n->input[k]);
            if (e) e->escapes = 1;
        }
        for (size_t a = 0; a < n->n_attribute; a++) {
            if (n->attribute[a]->g) mark_subgraph_reads(ix, n->attribute[a]->g);
            for (size_t k = 0; k < n->attribute[a]->n_graphs; k++) mark_subgraph_reads(ix, n->attribute[a]->graphs[k]);
        }
    }
}

sk_status sk_prune_index_build(sk_model *m, sk_prune_index **out, sk_error *err)
{
    *out = NULL;
    sk_graph_proto *g = sk_model_graph(m);
    size_t names = g->n_input + g->n_output + g->n_initializer;
    for (size_t i = 0; i < g->n_node; i++) names += g->node[i]->n_input + g->node[i]->n_output;
    sk_prune_index *ix = calloc(1, sizeof *ix);
    if (!ix) return sk_error_set(err, SK_ENOMEM, "out of memory");
    ix->m = m;
    ix->g = g;
    ix->cap = 16;
    while (ix->cap < 2 * names + 2) ix->cap *= 2;
    ix->pcap = 16;
    while (ix->pcap < 2 * g->n_node + 2) ix->pcap *= 2;
    ix->v = calloc(ix->cap, sizeof *ix->v);
    ix->pkeys = calloc(ix->pcap, sizeof *ix->pkeys);
    ix->pvals = calloc(ix->pcap, sizeof *ix->pvals);
    if (!ix->v || !ix->pkeys || !ix->pvals) {
        sk_prune_index_free(ix);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < g->n_initializer; i++) {
        vinfo *e = add(ix, g->initializer[i]->name);
        if (e) e->init = i;
    }
    for (size_t i = 0; i < g->n_input; i++) {
        vinfo *e = add(ix, g->input[i]->name);
        if (e) e->graph_input = 1;
    }
    size_t total_cons = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        sk_node_proto *n = g->node[i];
        for (size_t k = 0; k < n->n_output; k++) {
            vinfo *e = add(ix, n->output[k]);
            if (e) {
                e->producer = i;
                e->prod = n;
            }
        }
        for (size_t k = 0; k < n->n_input; k++) {
            vinfo *e = add(ix, n->input[k]);
            if (e) { e->cn++; total_cons++; }
        }
        size_t mask = ix->pcap - 1, j = (size_t)hash_ptr(n) & mask;
        while (ix->pkeys[j]) j = (j + 1) & mask;
        ix->pkeys[j] = n;
        ix->pvals[j] = i;
    }
    ix->cons = calloc(total_cons + 1, sizeof *ix->cons);
    if (!ix->cons) {
        sk_prune_index_free(ix);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    size_t at = 0;
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->v[i].name) {
            ix->v[i].c0 = at;
            at += ix->v[i].cn;
            ix->v[i].cn = 0;
        }
    for (size_t i = 0; i < g->n_node; i++) {
        sk_node_proto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++) {
            vinfo *e = find(ix, n->input[k]);
            if (e) ix->cons[e->c0 + e->cn++] = n;
        }
    }
    ix->n_cons = total_cons;
    for (size_t i = 0; i < g->n_output; i++) {
        vinfo *e = find(ix, g->output[i]->name);
        if (e) e->escapes = 1;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        const sk_node_proto *n = g->node[i];
        for (size_t a = 0; a < n->n_attribute; a++) {
            if (n->attribute[a]->g) mark_subgraph_reads(ix, n->attribute[a]->g);
            for (size_t k = 0; k < n->attribute[a]->n_graphs; k++) mark_subgraph_reads(ix, n->attribute[a]->graphs[k]);
        }
    }
    *out = ix;
    return SK_OK;
}

void sk_prune_index_free(sk_prune_index *ix)
{
    if (!ix) return;
    free(ix->v);
    free(ix->cons);
    free(ix->pkeys);
    free(ix->pvals);
    free(ix);
}

sk_node_proto *sk_prune_index_producer(const sk_prune_index *ix, const char *name, size_t *pos)
{
    const vinfo *e = find(ix, name);
    if (pos) *pos = e ? e->producer : SIZE_MAX;
    return e ? e->prod : NULL;
}

size_t sk_prune_index_pos(const sk_prune_index *ix, const sk_node_proto *n)
{
    size_t mask = ix->pcap - 1;
    for (size_t j = (size_t)hash_ptr(n) & mask; ix->pkeys[j]; j = (j + 1) & mask)
        if (ix->pkeys[j] == n) return ix->pvals[j];
    return SIZE_MAX;
}

size_t sk_prune_index_consumers(const sk_prune_index *ix, const char *name, sk_node_proto *const **out)
{
    const vinfo *e = find(ix, name);
    if (!e) {
        *out = NULL;
        return 0;
    }
    *out = ix->cons + e->c0;
    return e->cn;
}

int sk_prune_index_escapes(const sk_prune_index *ix, const char *name)
{
    const vinfo *e = find(ix, name);
    return e && e->escapes;
}

int sk_prune_index_is_input(const sk_prune_index *ix, const char *name)
{
    const vinfo *e = find(ix, name);
    return e && e->graph_input;
}

static int is_onnx_domain(const sk_node_proto *n)
{
    return !n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx");
}

int sk_prune_index_const(const sk_prune_index *ix, const char *name, sk_prune_const *c)
{
    memset(c, 0, sizeof *c);
    for (int depth = 0; depth < 64; depth++) {
        const vinfo *e = find(ix, name);
        if (!e) return 0;
        if (e->producer == SIZE_MAX) {
            if (e->init == SIZE_MAX) return 0; /* an initializer also declared as an input still counts */
            const sk_tensor_proto *t = ix->g->initializer[e->init];
            sk_tensor_view v;
            sk_error er;
            if (sk_model_tensor_view(ix->m, t, &v, &er) || v.rank > SK_MAX_RANK) return 0;
            c->dtype = v.dtype;
            c->rank = v.rank;
            for (int i = 0; i < v.rank; i++) c->dims[i] = v.dims[i];
            c->numel = v.numel;
            c->data = v.data;
            c->nbytes = v.nbytes;
            c->root = e->name;
            c->tensor = t;
            return 1;
        }
        const sk_node_proto *n = e->prod;
        if (!is_onnx_domain(n)) return 0;
        if (!strcmp(n->op_type, "Identity") && n->n_input == 1) {
            name = n->input[0];
            continue;
        }
        if (strcmp(n->op_type, "Constant") || n->n_output != 1 || n->n_attribute != 1) return 0;
        const sk_attr_proto *a = n->attribute[0];
        c->root = n->output[0];
        if (a->t && !strcmp(a->name, "value")) {
            sk_tensor_view v;
            sk_error er;
            if (sk_model_tensor_view(ix->m, a->t, &v, &er) || v.rank > SK_MAX_RANK) return 0;
            c->dtype = v.dtype;
            c->rank = v.rank;
            for (int i = 0; i < v.rank; i++) c->dims[i] = v.dims[i];
            c->numel = v.numel;
            c->data = v.data;
            c->nbytes = v.nbytes;
            c->tensor = a->t;
            return 1;
        }
        if (!strcmp(a->name, "value_int")) {
            c->dtype = SK_INT64;
            c->numel = 1;
            c->data = &a->i;
            c->nbytes = 8;
            return 1;
        }
        if (!strcmp(a->name, "value_ints")) {
            c->dtype = SK_INT64;
            c->rank = 1;
            c->dims[0] = (int64_t)a->n_ints;
            c->numel = (int64_t)a->n_ints;
            c->data = a->ints;
            c->nbytes = a->n_ints * 8;
            return 1;
        }
        if (!strcmp(a->name, "value_float")) {
            c->dtype = SK_FLOAT;
            c->numel = 1;
            c->data = &a->f;
            c->nbytes = 4;
            return 1;
        }
        if (!strcmp(a->name, "value_floats")) {
            c->dtype = SK_FLOAT;
            c->rank = 1;
            c->dims[0] = (int64_t)a->n_floats;
            c->numel = (int64_t)a->n_floats;
            c->data = a->floats;
            c->nbytes = a->n_floats * 4;
            return 1;
        }
        return 0;
    }
    return 0;
}

static int is_int(int dt)
{
    return dt == SK_INT64 || dt == SK_INT32;
}

int sk_prune_index_int_const(const sk_prune_index *ix, const char *name, sk_prune_const *c, int *as)
{
    if (sk_prune_index_const(ix, name, c)) {
        *as = c->dtype;
        return is_int(c->dtype);
    }
    const sk_node_proto *p = sk_prune_index_producer(ix, name, NULL);
    if (!p || !is_onnx_domain(p) || strcmp(p->op_type, "Cast") || p->n_input != 1) return 0;
    int64_t to = sk_node_attr_int(p, "to", 0);
    if (!is_int((int)to) || !sk_prune_index_const(ix, p->input[0], c) || !is_int(c->dtype)) return 0;
    *as = (int)to;
    return 1;
}

int64_t sk_prune_const_int(const sk_prune_const *c, int64_t i, int64_t def)
{
    if (i < 0 || i >= c->numel || !c->data) return def;
    if (c->dtype == SK_INT64) {
        int64_t v;
        memcpy(&v, (const uint8_t *)c->data + 8 * i, 8);
        return v;
    }
    if (c->dtype == SK_INT32) {
        int32_t v;
        memcpy(&v, (const uint8_t *)c->data + 4 * i, 4);
        return v;
    }
    return def;
}

sk_status sk_prune_set_input(sk_node_proto *n, size_t k, const char *value, sk_error *err)
{
    char *s = strdup(value);
    if (!s) return sk_error_set(err, SK_ENOMEM, "out of memory");
    free(n->input[k]);
    n->input[k] = s;
    return SK_OK;
}

sk_status sk_prune_add_const(sk_model *m, sk_node_proto *n, size_t k, const char *base, int dtype, int rank,
                             const int64_t *dims, const void *data, size_t nbytes, sk_error *err)
{
    char *name = sk_model_unique_name(m, base);
    if (!name) return sk_error_set(err, SK_ENOMEM, "out of memory");
    sk_tensor_proto *t = sk_tensor_proto_new(name, dtype, rank, dims, data, nbytes);
    if (!t) {
        free(name);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    sk_status s = sk_graph_add_initializer(sk_model_graph(m), t);
    if (s) {
        sk_tensor_proto_free(m, t);
        free(name);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    s = sk_prune_set_input(n, k, name, err);
    free(name);
    return s;
}

sk_status sk_prune_dead_code(sk_model *m, size_t *nodes, size_t *inits, sk_error *err)
{
    sk_graph_proto *g = sk_model_graph(m);
    size_t removed_nodes = 0, removed_inits = 0;
    for (;;) {
        sk_prune_index *ix;
        sk_status s = sk_prune_index_build(m, &ix, err);
        if (s) return s;
        size_t before = removed_nodes;
        /* back to front, so a chain dies in one sweep */
        for (size_t i = g->n_node; i-- > 0;) {
            const sk_node_proto *n = g->node[i];
            int used = 0;
            for (size_t k = 0; k < n->n_output && !used; k++) {
                sk_node_proto *const *c;
                if (!*n->output[k]) continue;
                used = sk_prune_index_consumers(ix, n->output[k], &c) > 0 || sk_prune_index_escapes(ix, n->output[k]);
            }
            if (used) continue;
            /* the index still lists this node as a reader of its inputs; a
             * later (earlier-positioned) node stays alive for that sweep and
             * dies in the next one */
            sk_graph_remove_node(m, g, i);
            removed_nodes++;
        }
        sk_prune_index_free(ix);
        if (removed_nodes == before) break;
    }
    sk_prune_index *ix;
    sk_status s = sk_prune_index_build(m, &ix, err);
    if (s) return s;
    char **dead = calloc(g->n_initializer + 1, sizeof *dead);
    size_t n_dead = 0;
    if (!dead) {
        sk_prune_index_free(ix);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < g->n_initializer; i++) {
        const char *name = g->initializer[i]->name;
        sk_node_proto *const *c;
        if (!name || sk_prune_index_consumers(ix, name, &c) || sk_prune_index_escapes(ix, name)) continue;
        dead[n_dead++] = g->initializer[i]->name;
    }
    sk_prune_index_free(ix);
    for (size_t d = 0; d < n_dead; d++) {
        for (size_t i = 0; i < g->n_input; i++)
            if (g->input[i]->name && !strcmp(g->input[i]->name, dead[d])) {
                Onnx__ValueInfoProto *vi = g->input[i];
                memmove(g->input + i, g->input + i + 1, (g->n_input - i - 1) * sizeof *g->input);
                g->n_input--;
                protobuf_c_message_free_unpacked(&vi->base, NULL);
                break;
            }
        char *name = strdup(dead[d]);
        if (!name) {
            free(dead);
            return sk_error_set(err, SK_ENOMEM, "out of memory");
        }
        /* dead[d] points into the tensor being freed: compare with a copy */
        removed_inits += (size_t)sk_graph_remove_initializer(m, g, name);
        free(name);
    }
    free(dead);
    if (nodes) *nodes = removed_nodes;
    if (inits) *inits = removed_inits;
    return SK_OK;
}

void sk_prune_drop_value_info(sk_model *m, size_t n, const char *const *names)
{
    sk_graph_proto *g = sk_model_graph(m);
    size_t w = 0;
    for (size_t i = 0; i < g->n_value_info; i++) {
        Onnx__ValueInfoProto *vi = g->value_info[i];
        int drop = 0;
        for (size_t k = 0; k < n && !drop; k++) drop = vi->name && names[k] && !strcmp(vi->name, names[k]);
        if (drop) protobuf_c_message_free_unpacked(&vi->base, NULL);
        else g->value_info[w++] = vi;
    }
    g->n_value_info = w;
}
