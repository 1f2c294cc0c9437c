/* External data from memory (sk_model_attach_external, sk_model_external_data):
 * a model loaded from a buffer with no folder reads its external tensors
 * from attached bytes, checked like a file's; bad attachments fail with one
 * sentence and never leak the buffer (ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sk_model.h"
#include "util_graph.h"

/* A model Y = X + W with W (float32 [4]) stored in external file "w.bin" at
 * offset off, serialised. */
static uint8_t *model_bytes(const char *off, size_t *len)
{
    sk_graph_proto *g = calloc(1, sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup("g");
    int64_t d4[1] = { 4 };
    ut_push_vi(&g->n_input, &g->input, ut_value_info("X", 1, d4));
    ut_push_vi(&g->n_output, &g->output, ut_value_info("Y", 1, d4));
    float w[4] = { 1, 2, 3, 4 };
    sk_tensor_proto *t = sk_tensor_proto_new("W", SK_FLOAT, 1, d4, w, sizeof w);
    free(t->raw_data.data);
    t->raw_data.data = NULL;
    t->raw_data.len = 0;
    t->has_raw_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    const char *kv[3][2] = { { "location", "w.bin" }, { "offset", off }, { "length", "16" } };
    t->external_data = calloc(3, sizeof *t->external_data);
    for (int i = 0; i < 3; i++) {
        Onnx__StringStringEntryProto *e = malloc(sizeof *e);
        onnx__string_string_entry_proto__init(e);
        e->key = strdup(kv[i][0]);
        e->value = strdup(kv[i][1]);
        t->external_data[t->n_external_data++] = e;
    }
    assert_int_equal(sk_graph_add_initializer(g, t), SK_OK);
    ut_node(g, "Add", "add", "X", "W", NULL, "Y");
    sk_model *m = ut_wrap(g);
    sk_model_proto *mp = sk_model_proto_of(m);
    *len = protobuf_c_message_get_packed_size(&mp->base);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(&mp->base, buf), *len);
    sk_model_free(m);
    return buf;
}

static sk_model *load(const uint8_t *buf, size_t len)
{
    sk_model *m = NULL;
    sk_error err;
    sk_load_opts lo = { .skip_check = 1 };
    assert_int_equal(sk_model_load_buffer(buf, len, NULL, "model.onnx", &lo, &m, &err), SK_OK);
    return m;
}

static void *copy_of(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    assert_non_null(q);
    memcpy(q, p, n);
    return q;
}

static void test_attach_ok(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = model_bytes("16", &len);
    sk_model *m = load(buf, len);
    float data[8] = { 0, 0, 0, 0, 1.5f, -2, 3, 4 };
    size_t n;
    assert_null(sk_model_external_data(m, "w.bin", &n));
    assert_int_equal(n, 0);
    sk_error err = { 0 };
    assert_int_equal(sk_model_attach_external(m, "w.bin", copy_of(data, sizeof data), sizeof data, &err), SK_OK);
    assert_int_equal(sk_model_check(m, &err), SK_OK);
    const float *got = sk_model_external_data(m, "w.bin", &n);
    assert_non_null(got);
    assert_int_equal(n, sizeof data);
    assert_memory_equal(got, data, sizeof data);
    /* the tensor reads from the attached bytes at its offset */
    sk_tensor_view v;
    assert_int_equal(sk_model_tensor_view(m, sk_graph_initializer(sk_model_graph(m), "W"), &v, &err), SK_OK);
    assert_int_equal(v.nbytes, 16);
    assert_memory_equal(v.data, data + 4, 16);
    /* attached twice: refused, and the second buffer is freed (ASan) */
    assert_int_equal(sk_model_attach_external(m, "w.bin", copy_of(data, 4), 4, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "w.bin"));
    assert_null(strchr(err.msg, '\n'));
    sk_model_free(m);
    free(buf);
}

static void test_attach_bad(void **state)
{
    (void)state;
    size_t len;
    sk_error err = { 0 };
    float data[4] = { 1, 2, 3, 4 };
    /* the tensor lies past the end of what is attached */
    uint8_t *buf = model_bytes("4", &len);
    sk_model *m = load(buf, len);
    assert_int_equal(sk_model_attach_external(m, "w.bin", copy_of(data, sizeof data), sizeof data, &err), SK_OK);
    assert_int_equal(sk_model_check(m, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "past the end"));
    sk_model_free(m);
    /* nothing attached: an error naming the location, no file opened */
    m = load(buf, len);
    assert_int_not_equal(sk_model_check(m, &err), SK_OK);
    assert_non_null(strstr(err.msg, "w.bin"));
    /* an empty attachment and empty or overlong names */
    assert_int_equal(sk_model_attach_external(m, "", copy_of(data, 4), 4, &err), SK_EINVAL);
    char *longname = malloc(5000);
    memset(longname, 'a', 4999);
    longname[4999] = 0;
    assert_int_equal(sk_model_attach_external(m, longname, copy_of(data, 4), 4, &err), SK_EINVAL);
    free(longname);
    assert_int_equal(sk_model_attach_external(m, "w.bin", malloc(1), 0, &err), SK_OK);
    size_t n;
    assert_non_null(sk_model_external_data(m, "w.bin", &n));
    assert_int_equal(n, 0);
    assert_int_equal(sk_model_check(m, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "past the end"));
    sk_model_free(m);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attach_ok),
        cmocka_unit_test(test_attach_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
