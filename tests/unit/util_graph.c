/* Graph-building helpers shared by the unit tests that make small models in
 * memory (test_attn, test_prune). Failures are cmocka assertions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util_graph.h"

Onnx__ValueInfoProto *ut_value_info(const char *name, int rank, const int64_t *dims)
{
    Onnx__ValueInfoProto *v = malloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = strdup(name);
    v->type = malloc(sizeof *v->type);
    onnx__type_proto__init(v->type);
    v->type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    v->type->tensor_type = malloc(sizeof *v->type->tensor_type);
    onnx__type_proto__tensor__init(v->type->tensor_type);
    v->type->tensor_type->has_elem_type = 1;
    v->type->tensor_type->elem_type = SK_FLOAT;
    if (rank >= 0) {
        Onnx__TensorShapeProto *sh = malloc(sizeof *sh);
        onnx__tensor_shape_proto__init(sh);
        sh->n_dim = (size_t)rank;
        sh->dim = calloc((size_t)rank + 1, sizeof *sh->dim);
        for (int i = 0; i < rank; i++) {
            sh->dim[i] = malloc(sizeof *sh->dim[i]);
            onnx__tensor_shape_proto__dimension__init(sh->dim[i]);
            sh->dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            sh->dim[i]->dim_value = dims[i];
        }
        v->type->tensor_type->shape = sh;
    }
    return v;
}

void ut_push_vi(size_t *n, Onnx__ValueInfoProto ***arr, Onnx__ValueInfoProto *v)
{
    *arr = realloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = v;
}

sk_node_proto *ut_node(sk_graph_proto *g, const char *op, const char *name, const char *a, const char *b,
                           const char *c, const char *out)
{
    const char *ins[3] = { a, b, c };
    size_t n = c ? 3 : b ? 2 : 1;
    sk_node_proto *nd = sk_node_proto_new(op, NULL, name, n, ins, 1, &out);
    assert_non_null(nd);
    assert_int_equal(sk_graph_insert_node(g, SIZE_MAX, nd), SK_OK);
    return nd;
}

void ut_init_f(sk_graph_proto *g, const char *name, int rank, const int64_t *dims, unsigned *seed)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        v[i] = ((float)((*seed >> 8) & 0xffff) / 65536.0f - 0.5f) * 0.6f;
    }
    sk_tensor_proto *t = sk_tensor_proto_new(name, SK_FLOAT, rank, dims, v, (size_t)n * 4);
    free(v);
    assert_non_null(t);
    assert_int_equal(sk_graph_add_initializer(g, t), SK_OK);
}

void ut_init_i(sk_graph_proto *g, const char *name, int64_t n, const int64_t *v)
{
    int64_t dims[1] = { n };
    sk_tensor_proto *t = sk_tensor_proto_new(name, SK_INT64, 1, dims, v, (size_t)n * 8);
    assert_non_null(t);
    assert_int_equal(sk_graph_add_initializer(g, t), SK_OK);
}

sk_model *ut_wrap(sk_graph_proto *g)
{
    Onnx__ModelProto *mp = malloc(sizeof *mp);
    onnx__model_proto__init(mp);
    mp->has_ir_version = 1;
    mp->ir_version = 8;
    mp->n_opset_import = 1;
    mp->opset_import = malloc(sizeof *mp->opset_import);
    mp->opset_import[0] = malloc(sizeof **mp->opset_import);
    onnx__operator_set_id_proto__init(mp->opset_import[0]);
    mp->opset_import[0]->domain = strdup("");
    mp->opset_import[0]->has_version = 1;
    mp->opset_import[0]->version = 17;
    mp->graph = g;
    sk_model *m;
    sk_error err;
    assert_int_equal(sk_model_wrap(mp, NULL, &m, &err), SK_OK);
    return m;
}
