/* The part of a graph downstream of one value, as a model of its own: its
 * inputs are that value and whatever else the downstream nodes read from
 * upstream. Ablating a head only changes what follows the head's block, so
 * scoring runs these tails instead of the whole model. The tail borrows the
 * model's nodes and initializers (the model must outlive it). */
#include "sk_prune_internal.h"

#include <stdlib.h>
#include <string.h>

static int is_onnx(const sk_node_proto *n)
{
    return !n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx");
}

static int has_subgraph(const sk_node_proto *n)
{
    for (size_t a = 0; a < n->n_attribute; a++)
        if (n->attribute[a]->g || n->attribute[a]->n_graphs) return 1;
    return 0;
}

void sk_prune_tail_clear(sk_prune_tail *t)
{
    if (t->model) {
        sk_model_proto *mp = sk_model_proto_of(t->model);
        sk_graph_proto *g = mp->graph;
        /* give back what is borrowed before freeing the rest */
        mp->opset_import = NULL;
        mp->n_opset_import = 0;
        free(g->node);
        g->node = NULL;
        g->n_node = 0;
        free(g->initializer);
        g->initializer = NULL;
        g->n_initializer = 0;
        free(g->output);
        g->output = NULL;
        g->n_output = 0;
        sk_model_free(t->model);
    }
    for (size_t i = 0; i < t->n_proxies; i++) free(t->proxies[i]); /* every field borrowed */
    free(t->proxies);
    for (size_t i = 0; i < t->n_inputs; i++) free(t->inputs[i]);
    free(t->inputs);
    free(t->from_sample);
    free(t->out_map);
    memset(t, 0, sizeof *t);
}

/* The initializer the tail uses for m's tensor src: src itself, or, when src
 * is external data, a stand-in whose raw_data borrows m's view of it (an
 * external tensor would otherwise be mapped anew by the tail's model, at
 * another address). NULL when out of memory. */
static sk_tensor_proto *tail_initializer(sk_model *m, sk_prune_tail *t, sk_tensor_proto *src, sk_error *err)
{
    if (sk_tensor_proto_storage(src) != SK_STORE_EXTERNAL) return src;
    sk_tensor_view v;
    if (sk_model_tensor_view(m, src, &v, err)) return NULL;
    sk_tensor_proto *p = malloc(sizeof *p);
    sk_tensor_proto **list = realloc(t->proxies, (t->n_proxies + 1) * sizeof *list);
    if (list) t->proxies = list;
    if (!p || !list) {
        free(p);
        sk_error_set(err, SK_ENOMEM, "out of memory");
        return NULL;
    }
    onnx__tensor_proto__init(p);
    p->name = src->name;
    p->has_data_type = 1;
    p->data_type = src->data_type;
    p->n_dims = src->n_dims;
    p->dims = src->dims;
    p->has_raw_data = 1;
    p->raw_data.len = v.nbytes;
    p->raw_data.data = (uint8_t *)v.data;
    t->proxies[t->n_proxies++] = p;
    return p;
}

static Onnx__ValueInfoProto *untyped_input(const char *name)
{
    Onnx__ValueInfoProto *v = malloc(sizeof *v);
    if (!v) return NULL;
    onnx__value_info_proto__init(v);
    v->name = strdup(name);
    if (!v->name) {
        free(v);
        return NULL;
    }
    return v;
}

sk_status sk_prune_tail_build(sk_model *m, const sk_prune_index *ix, const char *value, sk_prune_tail *t, sk_error *err)
{
    memset(t, 0, sizeof *t);
    sk_model_proto *src = sk_model_proto_of(m);
    sk_graph_proto *g = sk_model_graph(m);
    size_t nn = g->n_node, n_outs = 1, n_ins = g->n_input + 1;
    for (size_t i = 0; i < nn; i++) {
        n_outs += g->node[i]->n_output;
        n_ins += g->node[i]->n_input;
    }
    uint8_t *in_tail = calloc(nn + 1, 1);
    char **seen = calloc(n_outs, sizeof *seen); /* BFS over values, names borrowed */
    if (!in_tail || !seen) {
        free(in_tail);
        free(seen);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    /* the nodes downstream of value */
    size_t head = 0, tail = 0;
    seen[tail++] = (char *)value;
    sk_status s = SK_OK;
    while (head < tail && !s) {
        sk_node_proto *const *c;
        size_t nc = sk_prune_index_consumers(ix, seen[head++], &c);
        for (size_t i = 0; i < nc && !s; i++) {
            size_t p = sk_prune_index_pos(ix, c[i]);
            if (p >= nn || in_tail[p]) continue;
            if (has_subgraph(c[i])) s = SK_EUNSUPPORTED;
            in_tail[p] = 1;
            for (size_t k = 0; k < c[i]->n_output && tail < n_outs; k++)
                if (*c[i]->output[k]) seen[tail++] = c[i]->output[k];
        }
    }
    free(seen);
    if (s) {
        free(in_tail);
        return SK_EUNSUPPORTED;
    }
    /* Constant nodes the tail reads come along (the engine computes them at
     * creation); everything else from upstream becomes an input */
    for (size_t i = 0; i < nn; i++) {
        if (!in_tail[i]) continue;
        const sk_node_proto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++) {
            size_t p;
            sk_node_proto *pr = sk_prune_index_producer(ix, n->input[k], &p);
            if (pr && !in_tail[p] && is_onnx(pr) && !strcmp(pr->op_type, "Constant")) in_tail[p] = 2;
        }
    }
    sk_model_proto *mp = malloc(sizeof *mp);
    sk_graph_proto *tg = malloc(sizeof *tg);
    if (!mp || !tg) {
        free(mp);
        free(tg);
        free(in_tail);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    onnx__model_proto__init(mp);
    onnx__graph_proto__init(tg);
    mp->graph = tg;
    mp->has_ir_version = 1;
    mp->ir_version = src->ir_version;
    mp->opset_import = src->opset_import;
    mp->n_opset_import = src->n_opset_import;
    tg->name = strdup("tail");
    tg->node = calloc(nn + 1, sizeof *tg->node);
    tg->initializer = calloc(g->n_initializer + 1, sizeof *tg->initializer);
    tg->output = calloc(g->n_output + 1, sizeof *tg->output);
    tg->input = calloc(n_ins, sizeof *tg->input);
    t->inputs = calloc(n_ins, sizeof *t->inputs);
    t->from_sample = calloc(n_ins, sizeof *t->from_sample);
    t->out_map = calloc(g->n_output + 1, sizeof *t->out_map);
    s = sk_model_wrap(mp, sk_model_dir(m), &t->model, err);
    if (s) {
        free(tg->node);
        free(tg->initializer);
        free(tg->output);
        tg->node = NULL;
        tg->initializer = NULL;
        tg->output = NULL;
        mp->opset_import = NULL;
        mp->n_opset_import = 0;
        protobuf_c_message_free_unpacked(&mp->base, NULL);
        free(in_tail);
        return s;
    }
    if (!tg->name || !tg->node || !tg->initializer || !tg->output || !tg->input || !t->inputs || !t->from_sample ||
        !t->out_map) {
        free(in_tail);
        sk_prune_tail_clear(t);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nn; i++)
        if (in_tail[i]) tg->node[tg->n_node++] = g->node[i];
    uint8_t *init_used = calloc(g->n_initializer + 1, 1);
    if (!init_used) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    for (size_t i = 0; i < nn && !s; i++) {
        if (in_tail[i] != 1) continue;
        const sk_node_proto *n = g->node[i];
        for (size_t k = 0; k < n->n_input && !s; k++) {
            const char *v = n->input[k];
            if (!*v) continue;
            size_t p;
            sk_node_proto *pr = sk_prune_index_producer(ix, v, &p);
            if (pr && in_tail[p]) continue;
            if (!pr && (!sk_prune_index_is_input(ix, v) || sk_graph_initializer(g, v))) { /* an initializer */
                for (size_t j = 0; j < g->n_initializer; j++)
                    if (!init_used[j] && g->initializer[j]->name && !strcmp(g->initializer[j]->name, v)) {
                        init_used[j] = 1;
                        sk_tensor_proto *ti = tail_initializer(m, t, g->initializer[j], err);
                        if (!ti) s = err && err->code ? err->code : SK_ENOMEM;
                        else tg->initializer[tg->n_initializer++] = ti;
                    }
                continue;
            }
            int dup = 0;
            for (size_t j = 0; j < t->n_inputs && !dup; j++) dup = !strcmp(t->inputs[j], v);
            if (dup) continue;
            Onnx__ValueInfoProto *vi = untyped_input(v);
            char *name = strdup(v);
            if (!vi || !name) {
                if (vi) protobuf_c_message_free_unpacked(&vi->base, NULL);
                free(name);
                s = sk_error_set(err, SK_ENOMEM, "out of memory");
                break;
            }
            tg->input[tg->n_input++] = vi;
            t->from_sample[t->n_inputs] = !pr;
            t->inputs[t->n_inputs++] = name;
        }
    }
    for (size_t i = 0; i < g->n_output && !s; i++) {
        size_t p;
        sk_node_proto *pr = sk_prune_index_producer(ix, g->output[i]->name, &p);
        if (!pr || !in_tail[p]) continue;
        t->out_map[t->n_out++] = i;
        tg->output[tg->n_output++] = g->output[i];
    }
    free(init_used);
    free(in_tail);
    if (!s && !t->n_out) s = SK_EUNSUPPORTED; /* nothing downstream reaches an output */
    if (s) sk_prune_tail_clear(t);
    return s;
}
