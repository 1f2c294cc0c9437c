#include "sk_stats.h"
#include "sk_model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stats_ctx {
    sk_model_stats *st;
    size_t max_largest;
    sk_error *err;
} stats_ctx;

static sk_status add_op(sk_model_stats *st, const sk_node_proto *n)
{
    char name[256];
    const char *d = n->domain ? n->domain : "";
    if (*d && strcmp(d, "ai.onnx")) snprintf(name, sizeof name, "%s:%s", d, n->op_type);
    else snprintf(name, sizeof name, "%s", n->op_type);
    st->n_nodes++;
    for (size_t i = 0; i < st->n_ops; i++)
        if (!strcmp(st->ops[i].op, name)) {
            st->ops[i].count++;
            return SK_OK;
        }
    sk_op_count *a = realloc(st->ops, (st->n_ops + 1) * sizeof *a);
    if (!a) return SK_ENOMEM;
    st->ops = a;
    a[st->n_ops].op = strdup(name);
    if (!a[st->n_ops].op) return SK_ENOMEM;
    a[st->n_ops++].count = 1;
    return SK_OK;
}

static sk_status count_graph(sk_model_stats *st, const sk_graph_proto *g, int depth)
{
    if (!g || depth > 32) return SK_OK;
    for (size_t i = 0; i < g->n_node; i++) {
        const sk_node_proto *n = g->node[i];
        if (add_op(st, n)) return SK_ENOMEM;
        for (size_t a = 0; a < n->n_attribute; a++) {
            if (count_graph(st, n->attribute[a]->g, depth + 1)) return SK_ENOMEM;
            for (size_t k = 0; k < n->attribute[a]->n_graphs; k++)
                if (count_graph(st, n->attribute[a]->graphs[k], depth + 1)) return SK_ENOMEM;
        }
    }
    return SK_OK;
}

static void bucket_add(sk_weight_bucket *b, uint64_t params, uint64_t bytes)
{
    b->tensors++;
    b->params += params;
    b->bytes += bytes;
}

static sk_status visit(sk_model *m, sk_tensor_proto *t, sk_tensor_place place, const sk_node_proto *n, void *arg)
{
    (void)m; (void)n;
    stats_ctx *c = arg;
    sk_model_stats *st = c->st;
    if (place != SK_PLACE_INITIALIZER && place != SK_PLACE_CONSTANT) return SK_OK;
    int64_t numel = sk_tensor_proto_numel(t);
    int64_t nb = t->data_type == SK_STRING ? 0 : sk_tensor_proto_nbytes(t, c->err);
    if (numel < 0 || nb < 0) return SK_EINVAL;
    if (t->data_type == SK_STRING)
        for (size_t i = 0; i < t->n_string_data; i++) nb += (int64_t)t->string_data[i].len;
    bucket_add(&st->total, (uint64_t)numel, (uint64_t)nb);
    if (sk_dtype_valid(t->data_type)) bucket_add(&st->by_dtype[t->data_type], (uint64_t)numel, (uint64_t)nb);
    if (sk_tensor_proto_storage(t) == SK_STORE_EXTERNAL) bucket_add(&st->external, (uint64_t)numel, (uint64_t)nb);
    else if (place == SK_PLACE_INITIALIZER) bucket_add(&st->initializer, (uint64_t)numel, (uint64_t)nb);
    else bucket_add(&st->constant, (uint64_t)numel, (uint64_t)nb);
    /* keep the largest few: insertion into a short sorted array */
    if (c->max_largest == 0) return SK_OK;
    size_t k = st->n_largest;
    if (k == c->max_largest) {
        if (st->largest[k - 1].bytes >= (uint64_t)nb) return SK_OK;
        k--;
    } else {
        st->n_largest++;
    }
    while (k > 0 && st->largest[k - 1].bytes < (uint64_t)nb) {
        st->largest[k] = st->largest[k - 1];
        k--;
    }
    st->largest[k].t = t;
    st->largest[k].bytes = (uint64_t)nb;
    st->largest[k].place = place == SK_PLACE_INITIALIZER ? 0 : 1;
    return SK_OK;
}

static int cmp_ops(const void *a, const void *b)
{
    const sk_op_count *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return strcmp(x->op, y->op);
}

sk_status sk_model_stats_compute(sk_model *m, size_t max_largest, sk_model_stats *st, sk_error *err)
{
    memset(st, 0, sizeof *st);
    st->largest = calloc(max_largest ? max_largest : 1, sizeof *st->largest);
    if (!st->largest) return sk_error_set(err, SK_ENOMEM, "out of memory");
    stats_ctx c = { st, max_largest, err };
    sk_status s = count_graph(st, sk_model_graph(m), 0);
    sk_model_proto *p = sk_model_proto_of(m);
    for (size_t i = 0; !s && i < p->n_functions; i++)
        for (size_t k = 0; !s && k < p->functions[i]->n_node; k++) s = add_op(st, p->functions[i]->node[k]);
    if (s) {
        sk_model_stats_free(st);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    s = sk_model_visit_tensors(m, visit, &c);
    if (s) {
        sk_model_stats_free(st);
        return s;
    }
    if (st->n_ops) qsort(st->ops, st->n_ops, sizeof *st->ops, cmp_ops);
    return SK_OK;
}

void sk_model_stats_free(sk_model_stats *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->n_ops; i++) free(st->ops[i].op);
    free(st->ops);
    free(st->largest);
    memset(st, 0, sizeof *st);
}
