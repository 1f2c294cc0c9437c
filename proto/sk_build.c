/* Graph helpers: attribute lookup, and building and editing protos for the
 * tools that rewrite models (convert, quant, prune). Everything is allocated
 * with malloc, as protobuf-c's default allocator expects. */
#include "sk_model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sk_tensor_proto *sk_graph_initializer(sk_graph_proto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name)) return g->initializer[i];
    return NULL;
}

const sk_attr_proto *sk_node_attr(const sk_node_proto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

int64_t sk_node_attr_int(const sk_node_proto *n, const char *name, int64_t def)
{
    const sk_attr_proto *a = sk_node_attr(n, name);
    return a && (a->has_i || a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) ? a->i : def;
}

float sk_node_attr_float(const sk_node_proto *n, const char *name, float def)
{
    const sk_attr_proto *a = sk_node_attr(n, name);
    if (!a) return def;
    if (a->has_f || a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) return a->f;
    if (a->has_i) return (float)a->i;
    return def;
}

const char *sk_node_attr_string(const sk_node_proto *n, const char *name, const char *def, size_t *len)
{
    const sk_attr_proto *a = sk_node_attr(n, name);
    if (!a || !(a->has_s || a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)) {
        if (len) *len = def ? strlen(def) : 0;
        return def;
    }
    if (len) *len = a->s.len;
    return a->s.data ? (const char *)a->s.data : "";
}

const int64_t *sk_node_attr_ints(const sk_node_proto *n, const char *name, size_t *count)
{
    const sk_attr_proto *a = sk_node_attr(n, name);
    if (!a || (a->n_ints == 0 && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)) {
        *count = 0;
        return NULL;
    }
    *count = a->n_ints;
    return a->ints ? a->ints : (const int64_t *)"\0\0\0\0\0\0\0";
}

const float *sk_node_attr_floats(const sk_node_proto *n, const char *name, size_t *count)
{
    const sk_attr_proto *a = sk_node_attr(n, name);
    if (!a || (a->n_floats == 0 && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS)) {
        *count = 0;
        return NULL;
    }
    *count = a->n_floats;
    return a->floats ? a->floats : (const float *)"\0\0\0";
}

const sk_tensor_proto *sk_node_attr_tensor(const sk_node_proto *n, const char *name)
{
    const sk_attr_proto *a = sk_node_attr(n, name);
    return a ? a->t : NULL;
}

const char *sk_node_label(const sk_node_proto *n, char *buf, size_t cap)
{
    if (n->name && *n->name) snprintf(buf, cap, "'%s' (%s)", n->name, n->op_type ? n->op_type : "?");
    else if (n->n_output && n->output[0] && *n->output[0])
        snprintf(buf, cap, "%s -> '%s'", n->op_type ? n->op_type : "?", n->output[0]);
    else snprintf(buf, cap, "%s (unnamed)", n->op_type ? n->op_type : "?");
    return buf;
}

/* ---- building ----------------------------------------------------------- */

static char *dupstr(const char *s)
{
    return strdup(s ? s : "");
}

sk_tensor_proto *sk_tensor_proto_new(const char *name, int dtype, int rank, const int64_t *dims,
                                     const void *data, size_t nbytes)
{
    sk_tensor_proto *t = malloc(sizeof *t);
    if (!t) return NULL;
    onnx__tensor_proto__init(t);
    t->name = dupstr(name);
    if (!t->name) { free(t); return NULL; }
    sk_error e;
    if (sk_tensor_proto_set_raw(NULL, t, dtype, rank, dims, (void *)data, nbytes, 0, &e)) {
        protobuf_c_message_free_unpacked(&t->base, NULL);
        return NULL;
    }
    return t;
}

sk_node_proto *sk_node_proto_new(const char *op_type, const char *domain, const char *name,
                                 size_t n_in, const char *const *inputs, size_t n_out, const char *const *outputs)
{
    sk_node_proto *n = malloc(sizeof *n);
    if (!n) return NULL;
    onnx__node_proto__init(n);
    n->op_type = dupstr(op_type);
    n->name = dupstr(name);
    n->domain = domain && *domain ? dupstr(domain) : NULL;
    n->input = calloc(n_in ? n_in : 1, sizeof(char *));
    n->output = calloc(n_out ? n_out : 1, sizeof(char *));
    int bad = !n->op_type || !n->name || (domain && *domain && !n->domain) || !n->input || !n->output;
    if (n->input) {
        n->n_input = n_in;
        for (size_t i = 0; i < n_in; i++) bad |= !(n->input[i] = dupstr(inputs[i]));
    }
    if (n->output) {
        n->n_output = n_out;
        for (size_t i = 0; i < n_out; i++) bad |= !(n->output[i] = dupstr(outputs[i]));
    }
    if (bad) {
        protobuf_c_message_free_unpacked(&n->base, NULL);
        return NULL;
    }
    return n;
}

static sk_attr_proto *attr_new(sk_node_proto *n, const char *name, Onnx__AttributeProto__AttributeType type)
{
    sk_attr_proto **arr = realloc(n->attribute, (n->n_attribute + 1) * sizeof *arr);
    if (!arr) return NULL;
    n->attribute = arr;
    sk_attr_proto *a = malloc(sizeof *a);
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    a->name = dupstr(name);
    if (!a->name) { free(a); return NULL; }
    a->has_type = 1;
    a->type = type;
    arr[n->n_attribute++] = a;
    return a;
}

sk_status sk_node_add_attr_int(sk_node_proto *n, const char *name, int64_t v)
{
    sk_attr_proto *a = attr_new(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a) return SK_ENOMEM;
    a->has_i = 1;
    a->i = v;
    return SK_OK;
}

sk_status sk_node_add_attr_float(sk_node_proto *n, const char *name, float v)
{
    sk_attr_proto *a = attr_new(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!a) return SK_ENOMEM;
    a->has_f = 1;
    a->f = v;
    return SK_OK;
}

sk_status sk_node_add_attr_ints(sk_node_proto *n, const char *name, size_t count, const int64_t *v)
{
    int64_t *copy = malloc((count ? count : 1) * sizeof *copy);
    if (!copy) return SK_ENOMEM;
    sk_attr_proto *a = attr_new(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    if (!a) { free(copy); return SK_ENOMEM; }
    if (count) memcpy(copy, v, count * sizeof *copy);
    a->ints = copy;
    a->n_ints = count;
    return SK_OK;
}

sk_status sk_node_add_attr_string(sk_node_proto *n, const char *name, const char *v)
{
    char *copy = dupstr(v);
    if (!copy) return SK_ENOMEM;
    sk_attr_proto *a = attr_new(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (!a) { free(copy); return SK_ENOMEM; }
    a->has_s = 1;
    a->s.data = (uint8_t *)copy;
    a->s.len = strlen(copy);
    return SK_OK;
}

sk_status sk_graph_add_initializer(sk_graph_proto *g, sk_tensor_proto *t)
{
    sk_tensor_proto **arr = realloc(g->initializer, (g->n_initializer + 1) * sizeof *arr);
    if (!arr) return SK_ENOMEM;
    g->initializer = arr;
    arr[g->n_initializer++] = t;
    return SK_OK;
}

sk_status sk_graph_insert_node(sk_graph_proto *g, size_t pos, sk_node_proto *n)
{
    sk_node_proto **arr = realloc(g->node, (g->n_node + 1) * sizeof *arr);
    if (!arr) return SK_ENOMEM;
    g->node = arr;
    if (pos > g->n_node) pos = g->n_node;
    memmove(arr + pos + 1, arr + pos, (g->n_node - pos) * sizeof *arr);
    arr[pos] = n;
    g->n_node++;
    return SK_OK;
}

static void tensor_detach(sk_model *m, sk_tensor_proto *t)
{
    if (m && t && t->raw_data.data && sk_model_in_map(m, t->raw_data.data)) {
        t->raw_data.data = NULL;
        t->raw_data.len = 0;
    }
    if (m && t) sk_model_cache_drop(m, t);
}

void sk_tensor_proto_free(sk_model *m, sk_tensor_proto *t)
{
    if (!t) return;
    tensor_detach(m, t);
    protobuf_c_message_free_unpacked(&t->base, NULL);
}

static void node_detach(sk_model *m, sk_node_proto *n);

static void graph_detach(sk_model *m, sk_graph_proto *g)
{
    for (size_t i = 0; i < g->n_initializer; i++) tensor_detach(m, g->initializer[i]);
    for (size_t i = 0; i < g->n_node; i++) node_detach(m, g->node[i]);
}

static void node_detach(sk_model *m, sk_node_proto *n)
{
    for (size_t a = 0; a < n->n_attribute; a++) {
        sk_attr_proto *at = n->attribute[a];
        tensor_detach(m, at->t);
        for (size_t k = 0; k < at->n_tensors; k++) tensor_detach(m, at->tensors[k]);
        if (at->g) graph_detach(m, at->g);
        for (size_t k = 0; k < at->n_graphs; k++) graph_detach(m, at->graphs[k]);
    }
}

void sk_node_proto_free(sk_model *m, sk_node_proto *n)
{
    if (!n) return;
    node_detach(m, n);
    protobuf_c_message_free_unpacked(&n->base, NULL);
}

void sk_graph_remove_node(sk_model *m, sk_graph_proto *g, size_t i)
{
    if (i >= g->n_node) return;
    sk_node_proto *n = g->node[i];
    memmove(g->node + i, g->node + i + 1, (g->n_node - i - 1) * sizeof *g->node);
    g->n_node--;
    sk_node_proto_free(m, n);
}

int sk_graph_remove_initializer(sk_model *m, sk_graph_proto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name)) {
            sk_tensor_proto *t = g->initializer[i];
            memmove(g->initializer + i, g->initializer + i + 1, (g->n_initializer - i - 1) * sizeof *g->initializer);
            g->n_initializer--;
            sk_tensor_proto_free(m, t);
            return 1;
        }
    return 0;
}

static int name_used_graph(const sk_graph_proto *g, const char *s)
{
    for (size_t i = 0; i < g->n_input; i++) if (!strcmp(g->input[i]->name ? g->input[i]->name : "", s)) return 1;
    for (size_t i = 0; i < g->n_output; i++) if (!strcmp(g->output[i]->name ? g->output[i]->name : "", s)) return 1;
    for (size_t i = 0; i < g->n_initializer; i++) if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, s)) return 1;
    for (size_t i = 0; i < g->n_node; i++) {
        const sk_node_proto *n = g->node[i];
        if (n->name && !strcmp(n->name, s)) return 1;
        for (size_t k = 0; k < n->n_output; k++) if (!strcmp(n->output[k], s)) return 1;
        for (size_t k = 0; k < n->n_input; k++) if (!strcmp(n->input[k], s)) return 1;
        for (size_t a = 0; a < n->n_attribute; a++) {
            if (n->attribute[a]->g && name_used_graph(n->attribute[a]->g, s)) return 1;
            for (size_t k = 0; k < n->attribute[a]->n_graphs; k++)
                if (name_used_graph(n->attribute[a]->graphs[k], s)) return 1;
        }
    }
    return 0;
}

char *sk_model_unique_name(sk_model *m, const char *base)
{
    size_t cap = strlen(base) + 24;
    char *s = malloc(cap);
    if (!s) return NULL;
    snprintf(s, cap, "%s", base);
    for (unsigned long k = 1; name_used_graph(m->proto->graph, s); k++) snprintf(s, cap, "%s_%lu", base, k);
    return s;
}

sk_status sk_model_require_opset(sk_model *m, const char *domain, int64_t version)
{
    const char *d = domain ? domain : "";
    int onnx = !*d || !strcmp(d, "ai.onnx");
    sk_model_proto *p = m->proto;
    for (size_t i = 0; i < p->n_opset_import; i++) {
        Onnx__OperatorSetIdProto *o = p->opset_import[i];
        const char *od = o->domain ? o->domain : "";
        if (onnx ? (!*od || !strcmp(od, "ai.onnx")) : !strcmp(od, d)) {
            if (o->version < version) { o->version = version; o->has_version = 1; }
            return SK_OK;
        }
    }
    Onnx__OperatorSetIdProto **arr = realloc(p->opset_import, (p->n_opset_import + 1) * sizeof *arr);
    if (!arr) return SK_ENOMEM;
    p->opset_import = arr;
    Onnx__OperatorSetIdProto *o = malloc(sizeof *o);
    if (!o) return SK_ENOMEM;
    onnx__operator_set_id_proto__init(o);
    o->domain = dupstr(d);
    if (!o->domain) { free(o); return SK_ENOMEM; }
    o->has_version = 1;
    o->version = version;
    arr[p->n_opset_import++] = o;
    return SK_OK;
}
