/* Model I/O: round trips (ONNX's 932 node-test models, every dtype in raw and
 * typed form, external data), determinism, atomic saving, and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_model.h"

#define NODE_DIR "/usr/share/libonnx-testdata/data/node"

static char tmpdir[256];

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-test-io-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *tpath(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* ---- a small model built in memory: Y = X + W (float32 [2]) ----------- */

static Onnx__ValueInfoProto *value(const char *name, int dtype, int rank, const int64_t *dims)
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
    v->type->tensor_type->elem_type = dtype;
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
    return v;
}

static sk_model_proto *small_model(void)
{
    sk_model_proto *p = malloc(sizeof *p);
    onnx__model_proto__init(p);
    p->has_ir_version = 1;
    p->ir_version = 8;
    p->producer_name = strdup("skiff-test");
    p->n_opset_import = 1;
    p->opset_import = malloc(sizeof *p->opset_import);
    p->opset_import[0] = malloc(sizeof **p->opset_import);
    onnx__operator_set_id_proto__init(p->opset_import[0]);
    p->opset_import[0]->domain = strdup("");
    p->opset_import[0]->has_version = 1;
    p->opset_import[0]->version = 17;
    sk_graph_proto *g = malloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup("g");
    int64_t d2[1] = { 2 };
    g->n_input = 1;
    g->input = malloc(sizeof *g->input);
    g->input[0] = value("X", SK_FLOAT, 1, d2);
    g->n_output = 1;
    g->output = malloc(sizeof *g->output);
    g->output[0] = value("Y", SK_FLOAT, 1, d2);
    float w[2] = { 1.5f, -2.0f };
    sk_graph_add_initializer(g, sk_tensor_proto_new("W", SK_FLOAT, 1, d2, w, sizeof w));
    const char *in[2] = { "X", "W" }, *out[1] = { "Y" };
    sk_graph_insert_node(g, SIZE_MAX, sk_node_proto_new("Add", NULL, "add", 2, in, 1, out));
    p->graph = g;
    return p;
}

static void pack(sk_model_proto *p, uint8_t **buf, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(&p->base);
    *buf = malloc(*len + 1);
    protobuf_c_message_pack(&p->base, *buf);
}

/* Loads buf and expects failure with code and a message containing want. */
static void expect_bad(const uint8_t *buf, size_t len, const char *dir, sk_status code, const char *want)
{
    sk_model *m = NULL;
    sk_error err = { 0 };
    sk_status s = sk_model_load_buffer(buf, len, dir, "bad.onnx", NULL, &m, &err);
    if (s != code || !strstr(err.msg, want)) print_error("got %d '%s', wanted %d '%s'\n", s, err.msg, code, want);
    assert_int_equal(s, code);
    assert_null(m);
    assert_non_null(strstr(err.msg, want));
    assert_null(strchr(err.msg, '\n'));
}

static void expect_bad_model(sk_model_proto *p, const char *dir, const char *want)
{
    uint8_t *buf;
    size_t len;
    pack(p, &buf, &len);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    expect_bad(buf, len, dir, SK_EINVAL, want);
    free(buf);
}

/* ---- round trips -------------------------------------------------------- */

static void roundtrip_bytes(sk_model *m, uint8_t **out, size_t *len)
{
    sk_error err;
    assert_int_equal(sk_model_save_buffer(m, out, len, &err), SK_OK);
}

static void test_node_models_roundtrip(void **state)
{
    (void)state;
    DIR *d = opendir(NODE_DIR);
    if (!d) {
        print_message("skipped: %s is not installed\n", NODE_DIR);
        skip();
    }
    struct dirent *e;
    size_t n = 0, identical = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/model.onnx", NODE_DIR, e->d_name);
        sk_model *m;
        sk_error err = { 0 };
        sk_status s = sk_model_load(path, NULL, &m, &err);
        if (s) print_error("%s\n", err.msg);
        assert_int_equal(s, SK_OK);
        uint8_t *b1, *b2;
        size_t l1, l2;
        roundtrip_bytes(m, &b1, &l1);
        sk_model *m2;
        s = sk_model_load_buffer(b1, l1, NULL, path, NULL, &m2, &err);
        if (s) print_error("reload %s: %s\n", path, err.msg);
        assert_int_equal(s, SK_OK);
        roundtrip_bytes(m2, &b2, &l2);
        /* load, save, load, save: the same graph gives the same bytes */
        assert_int_equal(l1, l2);
        assert_memory_equal(b1, b2, l1);
        /* and normally the file's own bytes */
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        long fl = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *orig = malloc((size_t)fl + 1);
        assert_int_equal(fread(orig, 1, (size_t)fl, f), (size_t)fl);
        fclose(f);
        if ((size_t)fl == l1 && !memcmp(orig, b1, l1)) identical++;
        free(orig);
        free(b1);
        free(b2);
        sk_model_free(m2);
        sk_model_free(m);
        n++;
    }
    closedir(d);
    print_message("node models: %zu loaded and round-tripped, %zu byte-identical to the file\n", n, identical);
    assert_true(n >= 900);
}

static const int all_dtypes[] = { SK_FLOAT, SK_UINT8, SK_INT8, SK_UINT16, SK_INT16, SK_INT32, SK_INT64, SK_BOOL,
                                  SK_FLOAT16, SK_DOUBLE, SK_UINT32, SK_UINT64, SK_COMPLEX64, SK_COMPLEX128,
                                  SK_BFLOAT16, SK_FLOAT8E4M3FN, SK_FLOAT8E4M3FNUZ, SK_FLOAT8E5M2, SK_FLOAT8E5M2FNUZ,
                                  SK_UINT4, SK_INT4 };

/* Fills the typed field of t for dtype with n deterministic values and
 * returns the raw layout they stand for. */
static uint8_t *fill_typed(sk_tensor_proto *t, int dt, int64_t numel, size_t *nbytes)
{
    const sk_dtype_traits *tr = &sk_dtype_table[dt];
    *nbytes = (size_t)sk_dtype_nbytes(dt, numel);
    uint8_t *raw = calloc(*nbytes + 1, 1);
    size_t count = tr->bits == 4 ? (size_t)(numel + 1) / 2 : (size_t)numel * tr->per_field;
    size_t esz = tr->bits >= 8 ? tr->bits / 8 / tr->per_field : 1;
    for (size_t i = 0; i < count; i++) {
        uint64_t v = (i * 37 + 11) & 0x7f;
        if (dt == SK_BOOL) v &= 1;
        switch (tr->field) {
        case SK_FIELD_FLOAT: {
            t->float_data = realloc(t->float_data, (i + 1) * 4);
            t->float_data[i] = (float)v * 0.25f;
            memcpy(raw + 4 * i, &t->float_data[i], 4);
            t->n_float_data = i + 1;
            break;
        }
        case SK_FIELD_DOUBLE:
            t->double_data = realloc(t->double_data, (i + 1) * 8);
            t->double_data[i] = (double)v * 0.5;
            memcpy(raw + 8 * i, &t->double_data[i], 8);
            t->n_double_data = i + 1;
            break;
        case SK_FIELD_INT64:
            t->int64_data = realloc(t->int64_data, (i + 1) * 8);
            t->int64_data[i] = (int64_t)v - 64;
            memcpy(raw + 8 * i, &t->int64_data[i], 8);
            t->n_int64_data = i + 1;
            break;
        case SK_FIELD_UINT64:
            t->uint64_data = realloc(t->uint64_data, (i + 1) * 8);
            t->uint64_data[i] = v;
            memcpy(raw + esz * i, &v, esz);
            t->n_uint64_data = i + 1;
            break;
        case SK_FIELD_INT32:
            t->int32_data = realloc(t->int32_data, (i + 1) * 4);
            t->int32_data[i] = (int32_t)(esz == 4 ? v : esz == 2 ? v * 300 : v);
            {
                uint32_t u = (uint32_t)t->int32_data[i];
                memcpy(raw + esz * i, &u, esz);
            }
            t->n_int32_data = i + 1;
            break;
        default: break;
        }
    }
    return raw;
}

static void test_all_dtypes_roundtrip(void **state)
{
    (void)state;
    sk_model_proto *p = small_model();
    sk_graph_proto *g = p->graph;
    size_t n_dt = sizeof all_dtypes / sizeof all_dtypes[0];
    uint8_t **expect = calloc(2 * n_dt, sizeof *expect);
    size_t *elen = calloc(2 * n_dt, sizeof *elen);
    int64_t dims[2] = { 3, 5 }; /* 15 elements: odd, so 4-bit types pad */
    for (size_t i = 0; i < n_dt; i++) {
        int dt = all_dtypes[i];
        char name[64];
        /* raw form */
        size_t nb = (size_t)sk_dtype_nbytes(dt, 15);
        uint8_t *raw = malloc(nb);
        for (size_t k = 0; k < nb; k++) raw[k] = (uint8_t)(k * 29 + (size_t)dt);
        if (dt == SK_BOOL) for (size_t k = 0; k < nb; k++) raw[k] &= 1;
        snprintf(name, sizeof name, "raw_%s", sk_dtype_name(dt));
        sk_graph_add_initializer(g, sk_tensor_proto_new(name, dt, 2, dims, raw, nb));
        expect[2 * i] = raw;
        elen[2 * i] = nb;
        /* typed form */
        sk_tensor_proto *t = malloc(sizeof *t);
        onnx__tensor_proto__init(t);
        snprintf(name, sizeof name, "typed_%s", sk_dtype_name(dt));
        t->name = strdup(name);
        t->has_data_type = 1;
        t->data_type = dt;
        t->n_dims = 2;
        t->dims = malloc(2 * sizeof *t->dims);
        memcpy(t->dims, dims, sizeof dims);
        expect[2 * i + 1] = fill_typed(t, dt, 15, &elen[2 * i + 1]);
        sk_graph_add_initializer(g, t);
    }
    uint8_t *buf;
    size_t len;
    pack(p, &buf, &len);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    write_file(tpath("dtypes.onnx"), buf, len);
    free(buf);

    sk_error err = { 0 };
    sk_model *m;
    assert_int_equal(sk_model_load(tpath("dtypes.onnx"), NULL, &m, &err), SK_OK);
    /* external data and back */
    sk_save_opts so = { .external_data = "dtypes.bin", .external_min = 1 };
    assert_int_equal(sk_model_save(m, tpath("ext.onnx"), &so, &err), SK_OK);
    sk_model *me;
    assert_int_equal(sk_model_load(tpath("ext.onnx"), NULL, &me, &err), SK_OK);
    sk_save_opts si = { .inline_all = 1 };
    assert_int_equal(sk_model_save(me, tpath("inl.onnx"), &si, &err), SK_OK);
    sk_model *mi;
    assert_int_equal(sk_model_load(tpath("inl.onnx"), NULL, &mi, &err), SK_OK);
    sk_model *models[3] = { m, me, mi };
    for (int k = 0; k < 3; k++) {
        sk_graph_proto *gg = sk_model_graph(models[k]);
        for (size_t i = 0; i < 2 * n_dt; i++) {
            sk_tensor_proto *t = gg->initializer[1 + i];
            sk_tensor_view v;
            sk_status s = sk_model_tensor_view(models[k], t, &v, &err);
            if (s) print_error("%s: %s\n", t->name, err.msg);
            assert_int_equal(s, SK_OK);
            assert_int_equal(v.nbytes, elen[i]);
            assert_memory_equal(v.data, expect[i], elen[i]);
            assert_int_equal(v.dtype, all_dtypes[i / 2]);
            if (k == 1) assert_int_equal(v.storage, SK_STORE_EXTERNAL);
        }
    }
    /* typed tensors that never moved keep their typed form: load, save, load
     * of the original is byte-identical */
    uint8_t *b1, *b2;
    size_t l1, l2;
    roundtrip_bytes(m, &b1, &l1);
    FILE *f = fopen(tpath("dtypes.onnx"), "rb");
    b2 = malloc(l1 + 16);
    l2 = fread(b2, 1, l1 + 16, f);
    fclose(f);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    free(b1);
    free(b2);
    /* saving is deterministic, external data included */
    assert_int_equal(sk_model_save(m, tpath("ext2.onnx"), &(sk_save_opts){ .external_data = "dtypes2.bin", .external_min = 1 }, &err), SK_OK);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", tpath("dtypes.bin"), tpath("dtypes2.bin"));
    assert_int_equal(system(cmd), 0);
    sk_model_free(m);
    sk_model_free(me);
    sk_model_free(mi);
    for (size_t i = 0; i < 2 * n_dt; i++) free(expect[i]);
    free(expect);
    free(elen);
}

static void test_unknown_fields_survive(void **state)
{
    (void)state;
    sk_model_proto *p = small_model();
    uint8_t *buf;
    size_t len;
    pack(p, &buf, &len);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    /* append field 999 (length-delimited "hello") to the ModelProto */
    uint8_t extra[] = { 0xba, 0x3e, 5, 'h', 'e', 'l', 'l', 'o' };
    buf = realloc(buf, len + sizeof extra);
    memcpy(buf + len, extra, sizeof extra);
    len += sizeof extra;
    sk_model *m;
    sk_error err;
    assert_int_equal(sk_model_load_buffer(buf, len, NULL, "u.onnx", NULL, &m, &err), SK_OK);
    uint8_t *out;
    size_t ol;
    roundtrip_bytes(m, &out, &ol);
    assert_int_equal(ol, len);
    assert_memory_equal(out, buf, len);
    free(out);
    free(buf);
    sk_model_free(m);
}

/* ---- bad input ---------------------------------------------------------- */

static void test_bad_files(void **state)
{
    (void)state;
    sk_model_proto *p = small_model();
    uint8_t *buf;
    size_t len;
    pack(p, &buf, &len);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    expect_bad(buf, 0, NULL, SK_EINVAL, "empty file");
    for (size_t cut = 1; cut < len; cut++) { /* every truncation is an error, never a crash */
        sk_model *m = NULL;
        sk_error err = { 0 };
        sk_status s = sk_model_load_buffer(buf, cut, NULL, "t.onnx", NULL, &m, &err);
        if (s == SK_OK) sk_model_free(m); /* a cut at a field boundary can still be a valid (smaller) model */
        else assert_true(strlen(err.msg) > 0);
    }
    const char *text = "this is not an onnx model, just some text\n";
    expect_bad((const uint8_t *)text, strlen(text), NULL, SK_EINVAL, "bad.onnx");
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 131 + 7);
    expect_bad(junk, sizeof junk, NULL, SK_EINVAL, "bad.onnx");
    free(buf);
    /* a missing file */
    sk_model *m;
    sk_error err = { 0 };
    assert_int_not_equal(sk_model_load(tpath("nope.onnx"), NULL, &m, &err), SK_OK);
    assert_non_null(strstr(err.msg, "nope.onnx"));
}

static sk_tensor_proto *w_of(sk_model_proto *p)
{
    return p->graph->initializer[0];
}

static void test_bad_tensors(void **state)
{
    (void)state;
    sk_model_proto *p = small_model();
    w_of(p)->dims[0] = -1;
    expect_bad_model(p, NULL, "invalid dim");

    p = small_model();
    w_of(p)->dims[0] = (int64_t)1 << 62;
    expect_bad_model(p, NULL, "invalid dim");

    p = small_model();
    { /* element count overflow: dims each legal, product overflows */
        sk_tensor_proto *t = w_of(p);
        t->dims = realloc(t->dims, 3 * sizeof *t->dims);
        t->dims[0] = t->dims[1] = t->dims[2] = (int64_t)1 << 30;
        t->n_dims = 3;
    }
    expect_bad_model(p, NULL, "too many elements");

    p = small_model();
    w_of(p)->dims[0] = 3; /* 3 floats need 12 bytes, raw_data has 8 */
    expect_bad_model(p, NULL, "shape needs");

    p = small_model();
    w_of(p)->data_type = 99;
    expect_bad_model(p, NULL, "unknown data type");

    p = small_model();
    { /* typed data shorter than the shape */
        sk_tensor_proto *t = w_of(p);
        free(t->raw_data.data);
        t->raw_data.data = NULL;
        t->raw_data.len = 0;
        t->has_raw_data = 0;
        t->n_float_data = 1;
        t->float_data = malloc(4);
        t->float_data[0] = 1;
    }
    expect_bad_model(p, NULL, "has 1 values");

    p = small_model(); /* value_info with a negative dim */
    p->graph->input[0]->type->tensor_type->shape->dim[0]->dim_value = -5;
    expect_bad_model(p, NULL, "invalid dim");
}

static void set_external(sk_tensor_proto *t, const char *loc, const char *off, const char *len)
{
    free(t->raw_data.data);
    t->raw_data.data = NULL;
    t->raw_data.len = 0;
    t->has_raw_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    const char *kv[3][2] = { { "location", loc }, { "offset", off }, { "length", len } };
    t->external_data = calloc(3, sizeof *t->external_data);
    for (int i = 0; i < 3; i++) {
        if (!kv[i][1]) continue;
        Onnx__StringStringEntryProto *e = malloc(sizeof *e);
        onnx__string_string_entry_proto__init(e);
        e->key = strdup(kv[i][0]);
        e->value = strdup(kv[i][1]);
        t->external_data[t->n_external_data++] = e;
    }
}

static void test_bad_external(void **state)
{
    (void)state;
    float w[2] = { 1, 2 };
    write_file(tpath("w.bin"), w, sizeof w);
    mkdir(tpath("sub"), 0755);

    sk_model_proto *p = small_model();
    set_external(w_of(p), "w.bin", "0", "8");
    uint8_t *buf;
    size_t len;
    pack(p, &buf, &len);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    sk_model *m;
    sk_error err;
    assert_int_equal(sk_model_load_buffer(buf, len, tmpdir, "ok.onnx", NULL, &m, &err), SK_OK);
    sk_model_free(m);
    free(buf);

    p = small_model();
    set_external(w_of(p), "../w.bin", "0", "8");
    expect_bad_model(p, tpath("sub"), "leaves the model's folder");
    p = small_model();
    set_external(w_of(p), "/etc/passwd", "0", "8");
    expect_bad_model(p, tmpdir, "absolute");
    p = small_model();
    set_external(w_of(p), "missing.bin", "0", "8");
    expect_bad_model(p, tmpdir, "missing");
    p = small_model();
    set_external(w_of(p), "w.bin", "4", "8");
    expect_bad_model(p, tmpdir, "past the end");
    p = small_model();
    set_external(w_of(p), "w.bin", "18446744073709551615", "8");
    expect_bad_model(p, tmpdir, "past the end");
    p = small_model();
    set_external(w_of(p), "w.bin", "-1", "8");
    expect_bad_model(p, tmpdir, "not a number");
    p = small_model();
    set_external(w_of(p), "w.bin", "0", "4");
    expect_bad_model(p, tmpdir, "shape needs");
    /* a symlink pointing out of the folder */
    symlink("/etc/hostname", tpath("link.bin"));
    p = small_model();
    set_external(w_of(p), "link.bin", "0", "8");
    expect_bad_model(p, tmpdir, "outside the model's folder");
}

static void test_bad_graphs(void **state)
{
    (void)state;
    /* dangling input */
    sk_model_proto *p = small_model();
    free(p->graph->node[0]->input[1]);
    p->graph->node[0]->input[1] = strdup("nowhere");
    expect_bad_model(p, NULL, "'nowhere' is not produced");

    /* a cycle: A = Add(X, B), B = Relu(A), Y = Identity(B) */
    p = small_model();
    sk_graph_proto *g = p->graph;
    sk_graph_remove_node(NULL, g, 0);
    const char *i1[2] = { "X", "B" }, *o1[1] = { "A" }, *i2[1] = { "A" }, *o2[1] = { "B" }, *o3[1] = { "Y" };
    sk_graph_insert_node(g, SIZE_MAX, sk_node_proto_new("Add", NULL, "a", 2, i1, 1, o1));
    sk_graph_insert_node(g, SIZE_MAX, sk_node_proto_new("Relu", NULL, "b", 1, i2, 1, o2));
    sk_graph_insert_node(g, SIZE_MAX, sk_node_proto_new("Identity", NULL, "c", 1, o2, 1, o3));
    expect_bad_model(p, NULL, "cycle");

    /* a value produced twice */
    p = small_model();
    const char *in[2] = { "X", "W" }, *out[1] = { "Y" };
    sk_graph_insert_node(p->graph, SIZE_MAX, sk_node_proto_new("Add", NULL, "add2", 2, in, 1, out));
    expect_bad_model(p, NULL, "produced by two nodes");

    /* an output nobody produces */
    p = small_model();
    free(p->graph->output[0]->name);
    p->graph->output[0]->name = strdup("Z");
    expect_bad_model(p, NULL, "graph output 'Z'");

    /* unsorted but acyclic is accepted */
    p = small_model();
    g = p->graph;
    const char *ri[1] = { "T" }, *ro[1] = { "Y" }, *ai[2] = { "X", "W" }, *ao[1] = { "T" };
    sk_graph_remove_node(NULL, g, 0);
    sk_graph_insert_node(g, SIZE_MAX, sk_node_proto_new("Relu", NULL, "r", 1, ri, 1, ro));
    sk_graph_insert_node(g, SIZE_MAX, sk_node_proto_new("Add", NULL, "a", 2, ai, 1, ao));
    uint8_t *buf;
    size_t len;
    pack(p, &buf, &len);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    sk_model *m;
    sk_error err;
    assert_int_equal(sk_model_load_buffer(buf, len, NULL, "u.onnx", NULL, &m, &err), SK_OK);
    sk_model_free(m);
    free(buf);
}

static void test_atomic_save(void **state)
{
    (void)state;
    sk_model_proto *p = small_model();
    sk_model *m;
    sk_error err;
    assert_int_equal(sk_model_wrap(p, NULL, &m, &err), SK_OK);
    /* into a folder that does not exist: an error, nothing written */
    assert_int_not_equal(sk_model_save(m, tpath("no/such/dir/x.onnx"), NULL, &err), SK_OK);
    assert_true(strlen(err.msg) > 0);
    /* a bad external name: nothing written at all */
    assert_int_equal(sk_model_save(m, tpath("y.onnx"), &(sk_save_opts){ .external_data = "../evil.bin" }, &err), SK_EINVAL);
    struct stat st;
    assert_int_not_equal(stat(tpath("y.onnx"), &st), 0);
    /* a good save leaves exactly the output, no temporary files */
    assert_int_equal(sk_model_save(m, tpath("z.onnx"), NULL, &err), SK_OK);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -q '^\\.'", tmpdir);
    assert_int_not_equal(system(cmd), 0);
    sk_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_models_roundtrip),
        cmocka_unit_test(test_all_dtypes_roundtrip),
        cmocka_unit_test(test_unknown_fields_survive),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_bad_external),
        cmocka_unit_test(test_bad_graphs),
        cmocka_unit_test(test_atomic_save),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
