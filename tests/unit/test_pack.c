/* Unit tests of shard/ packages: first-use order and shard layout on a model
 * built for it, unpack round trip, determinism, signatures, tampering,
 * codecs (round trips and damaged streams), the job pool, atomic output. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_codec.h"
#include "sk_manifest.h"
#include "sk_model.h"
#include "sk_pack.h"
#include "sk_sign.h"

static char tmpdir[64];

static const char *tpath(const char *name)
{
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* ---- a model built for the layout ---------------------------------------- */

static sk_value_info *value(const char *name, int dtype)
{
    sk_value_info *v = malloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = strdup(name);
    v->type = malloc(sizeof *v->type);
    onnx__type_proto__init(v->type);
    v->type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    v->type->tensor_type = malloc(sizeof *v->type->tensor_type);
    onnx__type_proto__tensor__init(v->type->tensor_type);
    v->type->tensor_type->has_elem_type = 1;
    v->type->tensor_type->elem_type = dtype;
    return v;
}

static sk_tensor_proto *tensor(const char *name, int64_t n_floats, int random)
{
    float *d = malloc((size_t)n_floats * sizeof *d);
    uint32_t x = 2463534242u;
    for (int64_t i = 0; i < n_floats; i++) {
        d[i] = (float)(i % 7) * 0.5f;
        if (random) { /* xorshift32: incompressible, but the same every time */
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            memcpy(&d[i], &x, 4);
        }
    }
    sk_tensor_proto *t = sk_tensor_proto_new(name, SK_FLOAT, 1, &n_floats, d, (size_t)n_floats * sizeof *d);
    free(d);
    return t;
}

static sk_node_proto *node(const char *op, const char *a, const char *b, const char *out)
{
    const char *in[2] = { a, b }, *o[1] = { out };
    return sk_node_proto_new(op, NULL, NULL, b ? 2 : 1, in, 1, o);
}

static sk_graph_proto *subgraph(const char *name, int with_w4)
{
    sk_graph_proto *g = malloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup(name);
    g->n_output = 1;
    g->output = malloc(sizeof *g->output);
    g->output[0] = value("a", SK_FLOAT);
    if (with_w4) {
        sk_graph_add_initializer(g, tensor("W4", 375, 0));
        sk_graph_insert_node(g, SIZE_MAX, node("Add", "W3", "W4", "a"));
    } else {
        sk_graph_insert_node(g, SIZE_MAX, node("Identity", "W3", NULL, "a"));
    }
    return g;
}

/* Nodes deliberately out of order: first use is W1, W2, C, W3, W4, then the
 * unused U; S is too small to move; W2 is random (incompressible) and larger
 * than a 4 KiB shard. */
static sk_model *layout_model(void)
{
    sk_model_proto *p = malloc(sizeof *p);
    onnx__model_proto__init(p);
    p->has_ir_version = 1;
    p->ir_version = 8;
    p->n_opset_import = 1;
    p->opset_import = malloc(sizeof *p->opset_import);
    p->opset_import[0] = malloc(sizeof **p->opset_import);
    onnx__operator_set_id_proto__init(p->opset_import[0]);
    p->opset_import[0]->domain = strdup("");
    p->opset_import[0]->has_version = 1;
    p->opset_import[0]->version = 17;
    sk_graph_proto *g = malloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup("layout");
    g->n_input = 2;
    g->input = malloc(2 * sizeof *g->input);
    g->input[0] = value("X", SK_FLOAT);
    g->input[1] = value("cond", SK_BOOL);
    g->n_output = 2;
    g->output = malloc(2 * sizeof *g->output);
    g->output[0] = value("Y", SK_FLOAT);
    g->output[1] = value("Z", SK_FLOAT);
    sk_graph_add_initializer(g, tensor("U", 300, 0));
    sk_graph_add_initializer(g, tensor("S", 4, 0));
    sk_graph_add_initializer(g, tensor("W3", 256, 0));
    sk_graph_add_initializer(g, tensor("W2", 1500, 1));
    sk_graph_add_initializer(g, tensor("W1", 750, 0));
    sk_graph_insert_node(g, SIZE_MAX, node("Add", "t2", "C", "Y"));
    const char *cout[1] = { "C" };
    sk_node_proto *c = sk_node_proto_new("Constant", NULL, NULL, 0, NULL, 1, cout);
    sk_tensor_proto *ct = tensor("", 500, 0);
    Onnx__AttributeProto *a = malloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = strdup("value");
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    a->t = ct;
    c->attribute = malloc(sizeof *c->attribute);
    c->attribute[0] = a;
    c->n_attribute = 1;
    sk_graph_insert_node(g, SIZE_MAX, c);
    sk_graph_insert_node(g, SIZE_MAX, node("Mul", "t1", "W2", "t2"));
    sk_graph_insert_node(g, SIZE_MAX, node("Add", "X", "W1", "t1"));
    sk_node_proto *iff = node("If", "cond", NULL, "Z");
    iff->attribute = malloc(2 * sizeof *iff->attribute);
    for (int k = 0; k < 2; k++) {
        Onnx__AttributeProto *b = malloc(sizeof *b);
        onnx__attribute_proto__init(b);
        b->name = strdup(k ? "else_branch" : "then_branch");
        b->has_type = 1;
        b->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
        b->g = subgraph(k ? "else" : "then", k);
        iff->attribute[k] = b;
    }
    iff->n_attribute = 2;
    sk_graph_insert_node(g, SIZE_MAX, iff);
    p->graph = g;
    sk_model *m;
    sk_error err = { 0 };
    assert_int_equal(sk_model_wrap(p, NULL, &m, &err), SK_OK);
    assert_int_equal(sk_model_check(m, &err), SK_OK);
    return m;
}

static sk_pack_opts small_opts(void)
{
    sk_pack_opts o;
    sk_pack_opts_init(&o);
    o.shard_size = 4096;
    o.name = "layout-test";
    o.version = 7;
    o.created = 1700000000;
    o.threads = 3;
    return o;
}

static sk_manifest *load_manifest(const char *dir)
{
    char p[300];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    size_t len;
    uint8_t *b = read_all(p, &len);
    sk_manifest *m;
    sk_error err = { 0 };
    if (sk_manifest_parse(b, len, &m, &err)) fail_msg("%s", err.msg);
    free(b);
    return m;
}

static void test_layout(void **state)
{
    (void)state;
    sk_model *m = layout_model();
    sk_pack_opts o = small_opts();
    sk_pack_result res;
    sk_error err = { 0 };
    sk_status s = sk_pack_write(m, tpath("layout"), &o, &res, &err);
    if (s) fail_msg("%s", err.msg);
    assert_int_equal(res.n_tensors, 6);
    assert_int_equal(res.n_inline, 1); /* S */
    assert_int_equal(res.n_shards, 4);
    assert_int_equal(res.n_oversized, 1);
    assert_string_equal(res.oversized, "W2");
    sk_manifest *man = load_manifest(tpath("layout"));
    static const struct { const char *name; size_t file; uint64_t off, len; } want[] = {
        { "W1", 1, 0, 3000 }, { "W2", 2, 0, 6000 }, { "C", 3, 0, 2000 },
        { "W3", 3, 2048, 1024 }, { "W4", 4, 0, 1500 }, { "U", 4, 1536, 1200 },
    };
    assert_int_equal(man->n_tensors, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(man->tensors[i].name, want[i].name);
        assert_int_equal(man->tensors[i].file, want[i].file);
        assert_int_equal(man->tensors[i].offset, want[i].off);
        assert_int_equal(man->tensors[i].length, want[i].len);
        assert_int_equal(man->tensors[i].offset % 64, 0);
    }
    /* every shard within 4096 bytes but the one holding W2 alone */
    for (size_t i = 1; i < man->n_files; i++)
        if (i != 2) assert_true(man->files[i].raw_size <= 4096);
    /* the random shard is stored as is, the others compressed */
    assert_int_equal(man->files[2].codec, SK_CODEC_NONE);
    assert_string_equal(man->files[2].path, "shard-00001.bin");
    assert_int_equal(man->files[1].codec, SK_CODEC_BROTLI);
    assert_string_equal(man->files[1].path, "shard-00000.bin.br");
    assert_string_equal(man->name, "layout-test");
    assert_int_equal(man->version, 7);
    assert_int_equal(man->n_inputs, 2);
    assert_int_equal(man->n_outputs, 2);
    sk_manifest_free(man);

    /* the model is unchanged by packing */
    sk_tensor_view v;
    assert_int_equal(sk_model_tensor_view(m, sk_graph_initializer(sk_model_graph(m), "W1"), &v, &err), SK_OK);
    assert_int_equal(v.storage, SK_STORE_RAW);

    /* verify, unpack, and compare every tensor */
    sk_pack_verify_opts vo = { 0 };
    sk_pack_report rep = { 0 };
    s = sk_pack_verify(tpath("layout"), &vo, &rep, &err);
    if (s) fail_msg("%s", err.msg);
    assert_int_equal(rep.minisig_checked, 0);
    sk_pack_report_free(&rep);
    s = sk_pack_unpack(tpath("layout"), tpath("layout-out"), &vo, 0, NULL, &err);
    if (s) fail_msg("%s", err.msg);
    sk_model *u;
    s = sk_model_load(tpath("layout-out/model.onnx"), NULL, &u, &err);
    if (s) fail_msg("%s", err.msg);
    const char *names[] = { "U", "S", "W3", "W2", "W1" };
    for (size_t i = 0; i < 5; i++) {
        sk_tensor_view a, b;
        assert_int_equal(sk_model_tensor_view(m, sk_graph_initializer(sk_model_graph(m), names[i]), &a, &err), SK_OK);
        assert_int_equal(sk_model_tensor_view(u, sk_graph_initializer(sk_model_graph(u), names[i]), &b, &err), SK_OK);
        assert_int_equal(a.nbytes, b.nbytes);
        assert_memory_equal(a.data, b.data, a.nbytes);
        assert_int_equal(b.storage, strcmp(names[i], "S") ? SK_STORE_EXTERNAL : SK_STORE_RAW);
    }
    sk_model_free(u);
    sk_model_free(m);
}

static int same_file(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *x = read_all(a, &la), *y = read_all(b, &lb);
    int same = la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

static void test_deterministic_and_signed(void **state)
{
    (void)state;
    uint8_t seed[32], id[8];
    for (int i = 0; i < 32; i++) seed[i] = (uint8_t)i;
    memcpy(id, "skiffkey", 8);
    sk_key_sec *key, *other;
    sk_error err = { 0 };
    assert_int_equal(sk_key_from_seed(seed, id, &key, &err), SK_OK);
    seed[0] ^= 1;
    assert_int_equal(sk_key_from_seed(seed, NULL, &other, &err), SK_OK);
    sk_pack_opts o = small_opts();
    o.key = key;
    for (int k = 0; k < 2; k++) {
        sk_model *m = layout_model();
        o.threads = k ? 1 : 4;
        sk_status s = sk_pack_write(m, tpath(k ? "det2" : "det1"), &o, NULL, &err);
        if (s) fail_msg("%s", err.msg);
        sk_model_free(m);
    }
    const char *files[] = { "manifest.json", "manifest.json.minisig", "manifest.json.sig", "model.onnx",
                            "shard-00000.bin.br", "shard-00001.bin", "shard-00002.bin.br", "shard-00003.bin.br" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char a[300], b[300];
        snprintf(a, sizeof a, "%s/%s", tpath("det1"), files[i]);
        snprintf(b, sizeof b, "%s/%s", tpath("det2"), files[i]);
        if (!same_file(a, b)) fail_msg("%s differs between two packs", files[i]);
    }
    sk_key_pub pub, opub;
    sk_key_sec_public(key, &pub);
    sk_key_sec_public(other, &opub);
    sk_pack_verify_opts vo = { &pub, NULL, 0, 0, 0 };
    sk_pack_report rep = { 0 };
    sk_status s = sk_pack_verify(tpath("det1"), &vo, &rep, &err);
    if (s) fail_msg("%s", err.msg);
    assert_true(rep.minisig_checked && rep.sig_checked);
    assert_non_null(strstr(rep.trusted_comment, "name:layout-test\tversion:7\t"));
    sk_pack_report_free(&rep);
    /* another key, the wrong name, an older version than required */
    vo.pub = &opub;
    assert_int_equal(sk_pack_verify(tpath("det1"), &vo, NULL, &err), SK_EVERIFY);
    assert_non_null(strstr(err.msg, "manifest.json.minisig"));
    vo.pub = &pub;
    vo.name = "other";
    assert_int_equal(sk_pack_verify(tpath("det1"), &vo, NULL, &err), SK_EVERIFY);
    assert_non_null(strstr(err.msg, "not 'other'"));
    vo.name = NULL;
    vo.min_version = 8;
    assert_int_equal(sk_pack_verify(tpath("det1"), &vo, NULL, &err), SK_EVERIFY);
    assert_non_null(strstr(err.msg, "rollback"));
    vo.min_version = 7;
    assert_int_equal(sk_pack_verify(tpath("det1"), &vo, NULL, &err), SK_OK);
    /* re-signing with another key replaces both signatures */
    assert_int_equal(sk_pack_sign(tpath("det2"), other, 0, NULL, &err), SK_OK);
    assert_int_equal(sk_pack_verify(tpath("det2"), &vo, NULL, &err), SK_EVERIFY);
    vo.pub = &opub;
    assert_int_equal(sk_pack_verify(tpath("det2"), &vo, NULL, &err), SK_OK);
    sk_key_sec_free(key);
    sk_key_sec_free(other);
}

/* Copies the folder src to dst (flat). */
static void copy_dir(const char *src, const char *dst)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dst, src, dst);
    assert_int_equal(system(cmd), 0);
}

static void expect_tamper(const char *dir, const char *want)
{
    sk_pack_verify_opts vo = { 0 };
    sk_error err = { 0 };
    sk_status s = sk_pack_verify(dir, &vo, NULL, &err);
    if (s != SK_EVERIFY || !strstr(err.msg, want)) fail_msg("%s: got %d '%s', wanted '%s'", dir, s, err.msg, want);
    /* and unpack refuses it, leaving nothing */
    char out[300];
    snprintf(out, sizeof out, "%s-unpacked", dir);
    assert_int_equal(sk_pack_unpack(dir, out, &vo, 0, NULL, &err), SK_EVERIFY);
    struct stat st;
    assert_int_not_equal(stat(out, &st), 0);
}

static void test_tamper(void **state)
{
    (void)state;
    sk_model *m = layout_model();
    sk_pack_opts o = small_opts();
    sk_error err = { 0 };
    assert_int_equal(sk_pack_write(m, tpath("base"), &o, NULL, &err), SK_OK);
    sk_model_free(m);
    char d[256];
    snprintf(d, sizeof d, "%s", tpath("t"));
    char p[300];
    size_t len;
    uint8_t *b;
    /* a flipped byte in a compressed shard, in an uncompressed one, in model.onnx */
    const char *victims[] = { "shard-00000.bin.br", "shard-00001.bin", "model.onnx" };
    for (int i = 0; i < 3; i++) {
        copy_dir(tpath("base"), d);
        snprintf(p, sizeof p, "%s/%s", d, victims[i]);
        b = read_all(p, &len);
        b[len / 2] ^= 0x10;
        write_all(p, b, len);
        free(b);
        char want[100];
        snprintf(want, sizeof want, "%s: SHA-256 does not match", victims[i]);
        expect_tamper(d, want);
    }
    /* truncated, missing, extra, a symbolic link, a subfolder */
    copy_dir(tpath("base"), d);
    snprintf(p, sizeof p, "%s/shard-00002.bin.br", d);
    assert_int_equal(truncate(p, 10), 0);
    expect_tamper(d, "shard-00002.bin.br: 10 bytes, the manifest says");
    copy_dir(tpath("base"), d);
    snprintf(p, sizeof p, "%s/shard-00003.bin.br", d);
    assert_int_equal(unlink(p), 0);
    expect_tamper(d, "shard-00003.bin.br: missing");
    copy_dir(tpath("base"), d);
    snprintf(p, sizeof p, "%s/notes.txt", d);
    write_all(p, "hi", 2);
    expect_tamper(d, "notes.txt: not listed in the manifest");
    copy_dir(tpath("base"), d);
    snprintf(p, sizeof p, "%s/shard-00003.bin.br", d);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink("/etc/passwd", p), 0);
    expect_tamper(d, "shard-00003.bin.br: not a regular file");
    copy_dir(tpath("base"), d);
    snprintf(p, sizeof p, "%s/sub", d);
    assert_int_equal(mkdir(p, 0755), 0);
    expect_tamper(d, "sub: not listed");
    /* the manifest edited (no signature to catch it): a size no longer true */
    copy_dir(tpath("base"), d);
    snprintf(p, sizeof p, "%s/manifest.json", d);
    b = read_all(p, &len);
    char *txt = malloc(len + 1);
    memcpy(txt, b, len);
    txt[len] = 0;
    char *at = strstr(txt, "\"raw_size\": 3000");
    assert_non_null(at);
    memcpy(at, "\"raw_size\": 3001", 16);
    write_all(p, txt, len);
    free(txt);
    free(b);
    expect_tamper(d, "shard-00000.bin.br: the Brotli stream decodes to 3000 bytes, the manifest says 3001");
}

static void test_atomic(void **state)
{
    (void)state;
    sk_model *m = layout_model();
    sk_pack_opts o = small_opts();
    sk_error err = { 0 };
    assert_int_equal(sk_pack_write(m, tpath("atom"), &o, NULL, &err), SK_OK);
    /* an existing folder without force: refused before anything is written */
    assert_int_equal(sk_pack_write(m, tpath("atom"), &o, NULL, &err), SK_EIO);
    assert_non_null(strstr(err.msg, "already exists"));
    /* a folder that is not a package is never replaced */
    mkdir(tpath("notpkg"), 0755);
    mkdir(tpath("notpkg/sub"), 0755);
    o.force = 1;
    assert_int_equal(sk_pack_write(m, tpath("notpkg"), &o, NULL, &err), SK_EIO);
    assert_non_null(strstr(err.msg, "not replacing"));
    /* with force a package is replaced */
    o.version = 8;
    assert_int_equal(sk_pack_write(m, tpath("atom"), &o, NULL, &err), SK_OK);
    sk_manifest *man = load_manifest(tpath("atom"));
    assert_int_equal(man->version, 8);
    sk_manifest_free(man);
    /* bad options: nothing created */
    o.force = 0;
    o.shard_size = 100;
    assert_int_equal(sk_pack_write(m, tpath("bad"), &o, NULL, &err), SK_EINVAL);
    o.shard_size = 4096;
    o.name = "../evil";
    assert_int_equal(sk_pack_write(m, tpath("bad"), &o, NULL, &err), SK_EINVAL);
    o.name = "ok";
    o.level = 12;
    assert_int_equal(sk_pack_write(m, tpath("bad"), &o, NULL, &err), SK_EINVAL);
    assert_int_equal(sk_pack_write(m, tpath("no/such/dir"), &(sk_pack_opts){ .shard_size = 4096, .codec = SK_CODEC_ZSTD, .level = 3, .name = "x", .created = 1 }, NULL, &err), SK_EIO);
    struct stat st;
    assert_int_not_equal(stat(tpath("bad"), &st), 0);
    /* no temporary folders left */
    DIR *dd = opendir(tmpdir);
    struct dirent *e;
    while ((e = readdir(dd)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) fail_msg("left behind: %s", e->d_name);
    closedir(dd);
    /* unpack into the package itself is refused and leaves the package intact */
    sk_pack_verify_opts vo = { 0 };
    assert_int_not_equal(sk_pack_unpack(tpath("atom"), tpath("atom/out"), &vo, 0, NULL, &err), SK_OK);
    assert_int_equal(sk_pack_verify(tpath("atom"), &vo, NULL, &err), SK_OK);
    sk_model_free(m);
}

/* ---- codecs and jobs -------------------------------------------------------- */

static int count_sink(void *arg, const uint8_t *data, size_t len, sk_error *err)
{
    (void)err;
    uint8_t *out = ((uint8_t **)arg)[0];
    size_t *at = ((size_t **)arg)[1];
    memcpy(out + *at, data, len);
    *at += len;
    return 0;
}

static void test_codecs(void **state)
{
    (void)state;
    size_t n = 3000000;
    uint8_t *src = malloc(n), *back = malloc(n + 16);
    for (size_t i = 0; i < n; i++) src[i] = (uint8_t)((i * i) >> 7);
    randombytes_buf(src + n / 2, 100000);
    for (int c = 0; c < SK_CODEC_COUNT; c++) {
        int lmin, lmax;
        sk_codec_level_range((sk_codec)c, &lmin, &lmax);
        for (int level = lmin; level <= lmax; level += c == SK_CODEC_ZSTD ? 7 : 4) {
            if (c == SK_CODEC_BROTLI && level > 9) continue; /* 10 and 11 are slow; the bench covers them */
            uint8_t *z;
            size_t zl;
            sk_error err = { 0 };
            assert_int_equal(sk_codec_compress((sk_codec)c, level, src, n, &z, &zl, &err), SK_OK);
            size_t at = 0;
            void *arg[2] = { back, &at };
            assert_int_equal(sk_codec_decode((sk_codec)c, z, zl, n, count_sink, arg, &err), SK_OK);
            assert_int_equal(at, n);
            assert_memory_equal(back, src, n);
            if (c != SK_CODEC_NONE) {
                assert_true(zl < n);
                /* a claimed size one too big or too small */
                assert_int_equal(sk_codec_decode((sk_codec)c, z, zl, n + 1, NULL, NULL, &err), SK_EINVAL);
                assert_non_null(strstr(err.msg, "decodes to"));
                assert_int_equal(sk_codec_decode((sk_codec)c, z, zl, n - 1, NULL, NULL, &err), SK_EINVAL);
                /* truncated anywhere, trailing bytes, flipped bytes: an error, never a crash */
                for (size_t cut = 0; cut < zl; cut += zl / 50 + 1)
                    assert_int_equal(sk_codec_decode((sk_codec)c, z, cut, n, NULL, NULL, &err), SK_EINVAL);
                uint8_t *y = malloc(zl + 4);
                memcpy(y, z, zl);
                memcpy(y + zl, "junk", 4);
                assert_int_equal(sk_codec_decode((sk_codec)c, y, zl + 4, n, NULL, NULL, &err), SK_EINVAL);
                for (int k = 0; k < 40; k++) {
                    memcpy(y, z, zl);
                    y[(size_t)k * 7919 % zl] ^= (uint8_t)(1 + k);
                    sk_codec_decode((sk_codec)c, y, zl, n, NULL, NULL, &err);
                }
                free(y);
            }
            free(z);
        }
        /* empty input */
        uint8_t *z;
        size_t zl;
        sk_error err = { 0 };
        assert_int_equal(sk_codec_compress((sk_codec)c, lmin, "", 0, &z, &zl, &err), SK_OK);
        assert_int_equal(sk_codec_decode((sk_codec)c, z, zl, 0, NULL, NULL, &err), SK_OK);
        free(z);
    }
    sk_codec k;
    assert_int_equal(sk_codec_from_name("zstd", &k), 0);
    assert_int_equal(k, SK_CODEC_ZSTD);
    assert_int_equal(sk_codec_from_name("gzip", &k), -1);
    assert_string_equal(sk_codec_suffix(SK_CODEC_BROTLI), ".br");
    sk_error err = { 0 };
    uint8_t *z;
    size_t zl;
    assert_int_equal(sk_codec_compress(SK_CODEC_BROTLI, 12, src, 10, &z, &zl, &err), SK_EINVAL);
    free(src);
    free(back);
}

static int ran[64];

static sk_status job(void *arg, size_t i, sk_error *err)
{
    (void)arg;
    ran[i] = 1;
    if (i == 9 || i == 40) return sk_error_set(err, SK_EIO, "job %zu failed", i);
    return SK_OK;
}

static void test_jobs(void **state)
{
    (void)state;
    sk_error err = { 0 };
    for (unsigned threads = 1; threads <= 8; threads *= 2) {
        memset(ran, 0, sizeof ran);
        assert_int_equal(sk_codec_run_jobs(64, threads, job, NULL, &err), SK_EIO);
        assert_string_equal(err.msg, "job 9 failed"); /* the lowest failing index */
        for (int i = 0; i <= 9; i++) assert_true(ran[i]);
    }
    assert_int_equal(sk_codec_run_jobs(0, 0, job, NULL, &err), SK_OK);
    assert_true(sk_codec_cores() >= 1);
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0) return -1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sk-test-pack-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_deterministic_and_signed),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_atomic),
        cmocka_unit_test(test_codecs),
        cmocka_unit_test(test_jobs),
    };
    return cmocka_run_group_tests_name("pack", tests, setup, teardown);
}
