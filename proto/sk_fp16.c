#include "sk_fp16.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_graph_input(const sk_graph_proto *g, const char *name)
{
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && !strcmp(g->input[i]->name, name)) return 1;
    return 0;
}

/* Converts v to float16 into a new buffer, or returns NULL when a value does
 * not fit (the tensor then stays float32). */
static uint16_t *to_half(const sk_tensor_view *v)
{
    const float *src = v->data;
    uint16_t *h = malloc(v->numel ? (size_t)v->numel * 2 : 2);
    if (!h) return NULL;
    for (int64_t i = 0; i < v->numel; i++) {
        float x;
        memcpy(&x, src + i, 4);
        if (!isfinite(x) || fabsf(x) > 65504.0f) {
            free(h);
            return NULL;
        }
        h[i] = sk_float_to_half(x);
    }
    return h;
}

/* Gives the tensor a new name, stores it as float16, and inserts a Cast to
 * float32 named as the tensor was, at position pos. */
static sk_status convert_one(sk_model *m, sk_graph_proto *g, sk_tensor_proto *t, const char *orig, size_t pos,
                             const sk_tensor_view *v, uint16_t *half, sk_node_proto **renamed_const, sk_error *err)
{
    char base[512];
    snprintf(base, sizeof base, "%s_fp16", orig);
    char *nn = sk_model_unique_name(m, base);
    if (!nn) return sk_error_set(err, SK_ENOMEM, "out of memory");
    int64_t dims[SK_MAX_RANK];
    memcpy(dims, v->dims, (size_t)v->rank * sizeof *dims);
    sk_status s = sk_tensor_proto_set_raw(m, t, SK_FLOAT16, v->rank, dims, half, (size_t)v->numel * 2, 1, err);
    if (s) {
        free(half);
        free(nn);
        return s;
    }
    const char *in[1] = { nn }, *out[1] = { orig };
    char cname[600];
    snprintf(cname, sizeof cname, "%s_cast", nn);
    sk_node_proto *cast = sk_node_proto_new("Cast", NULL, cname, 1, in, 1, out);
    if (!cast || sk_node_add_attr_int(cast, "to", SK_FLOAT)) {
        sk_node_proto_free(m, cast);
        free(nn);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    if (renamed_const) { /* the Constant node now produces the float16 value */
        free((*renamed_const)->output[0]);
        (*renamed_const)->output[0] = nn;
    } else {
        free(t->name);
        t->name = nn;
    }
    s = sk_graph_insert_node(g, pos, cast);
    if (s) {
        sk_node_proto_free(m, cast);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    return SK_OK;
}

sk_status sk_model_to_fp16(sk_model *m, const sk_fp16_opts *opts, size_t *converted, sk_error *err)
{
    int64_t min = opts && opts->min_elems ? opts->min_elems : 1024;
    sk_graph_proto *g = sk_model_graph(m);
    *converted = 0;
    /* initializers: Casts go first in the graph, in initializer order */
    size_t pos = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        sk_tensor_proto *t = g->initializer[i];
        if (t->data_type != SK_FLOAT || !t->name || is_graph_input(g, t->name)) continue;
        sk_tensor_view v;
        sk_status s = sk_model_tensor_view(m, t, &v, err);
        if (s) return s;
        if (v.numel < min) continue;
        uint16_t *half = to_half(&v);
        if (!half) continue;
        char *orig = strdup(t->name);
        if (!orig) { free(half); return sk_error_set(err, SK_ENOMEM, "out of memory"); }
        s = convert_one(m, g, t, orig, pos++, &v, half, NULL, err);
        free(orig);
        if (s) return s;
        (*converted)++;
    }
    /* Constant nodes: the Cast goes right after the Constant */
    for (size_t i = 0; i < g->n_node; i++) {
        sk_node_proto *n = g->node[i];
        if (strcmp(n->op_type, "Constant") || (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) || n->n_output != 1)
            continue;
        sk_tensor_proto *t = (sk_tensor_proto *)sk_node_attr_tensor(n, "value");
        if (!t || t->data_type != SK_FLOAT) continue;
        sk_tensor_view v;
        sk_status s = sk_model_tensor_view(m, t, &v, err);
        if (s) return s;
        if (v.numel < min) continue;
        uint16_t *half = to_half(&v);
        if (!half) continue;
        char *orig = strdup(n->output[0]);
        if (!orig) { free(half); return sk_error_set(err, SK_ENOMEM, "out of memory"); }
        s = convert_one(m, g, t, orig, i + 1, &v, half, &n, err);
        free(orig);
        if (s) return s;
        (*converted)++;
        i++; /* skip the Cast just inserted */
    }
    return SK_OK;
}
