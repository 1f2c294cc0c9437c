/* Unit tests of shard/sk_manifest.c: write/parse round trips, and a strict
 * parser: wrong types, absurd numbers, unsafe paths, duplicates, unknown and
 * missing keys, broken invariants, every truncation, random damage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_dtype.h"
#include "sk_manifest.h"

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    assert_non_null(r);
    return r;
}

static void fill_hashes(sk_manifest_file *f, uint8_t seed)
{
    for (int i = 0; i < 32; i++) f->sha256[i] = (uint8_t)(seed + i), f->raw_sha256[i] = (uint8_t)(seed * 3 + i);
    for (int i = 0; i < 48; i++) f->sha384[i] = (uint8_t)(seed + 2 * i), f->raw_sha384[i] = (uint8_t)(seed * 5 + i);
}

/* A small valid manifest: the model, a Brotli shard, an uncompressed shard,
 * three tensors. */
static sk_manifest *sample(void)
{
    sk_manifest *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->format_version = 1;
    m->name = xstrdup("org/bert-tiny_v2");
    m->version = 42;
    m->created = 1700000000;
    m->generator = xstrdup("skiff \"test\" \\ \x01");
    m->ir_version = 8;
    m->n_opsets = 2;
    m->opsets = calloc(2, sizeof *m->opsets);
    m->opsets[0].domain = xstrdup("");
    m->opsets[0].version = 17;
    m->opsets[1].domain = xstrdup("com.microsoft");
    m->opsets[1].version = 1;
    m->n_inputs = 1;
    m->inputs = calloc(1, sizeof *m->inputs);
    m->inputs[0].name = xstrdup("input_ids");
    m->inputs[0].dtype = SK_INT64;
    m->inputs[0].rank = 3;
    m->inputs[0].dims = calloc(3, sizeof *m->inputs[0].dims);
    m->inputs[0].dims[0].value = -1;
    m->inputs[0].dims[0].param = xstrdup("batch");
    m->inputs[0].dims[1].value = 128;
    m->inputs[0].dims[2].value = -1;
    m->n_outputs = 2;
    m->outputs = calloc(2, sizeof *m->outputs);
    m->outputs[0].name = xstrdup("logits \xc3\xa9");
    m->outputs[0].dtype = SK_FLOAT;
    m->outputs[0].rank = -1;
    m->outputs[1].name = xstrdup("seq");
    m->outputs[1].dtype = 0;
    m->outputs[1].rank = -1;
    m->shard_size = 4096;
    m->alignment = 64;
    m->n_files = 3;
    m->files = calloc(3, sizeof *m->files);
    m->files[0] = (sk_manifest_file){ .path = xstrdup("model.onnx"), .role = SK_ROLE_MODEL, .codec = SK_CODEC_NONE,
                                      .size = 1000, .raw_path = xstrdup("model.onnx"), .raw_size = 1000 };
    fill_hashes(&m->files[0], 1);
    memcpy(m->files[0].raw_sha256, m->files[0].sha256, 32);
    memcpy(m->files[0].raw_sha384, m->files[0].sha384, 48);
    m->files[1] = (sk_manifest_file){ .path = xstrdup("shard-00000.bin.br"), .role = SK_ROLE_SHARD,
                                      .codec = SK_CODEC_BROTLI, .size = 300, .raw_path = xstrdup("shard-00000.bin"),
                                      .raw_size = 4000 };
    fill_hashes(&m->files[1], 2);
    m->files[2] = (sk_manifest_file){ .path = xstrdup("shard-00001.bin"), .role = SK_ROLE_SHARD, .codec = SK_CODEC_NONE,
                                      .size = 8000, .raw_path = xstrdup("shard-00001.bin"), .raw_size = 8000 };
    fill_hashes(&m->files[2], 3);
    memcpy(m->files[2].raw_sha256, m->files[2].sha256, 32);
    memcpy(m->files[2].raw_sha384, m->files[2].sha384, 48);
    m->n_tensors = 3;
    m->tensors = calloc(3, sizeof *m->tensors);
    int64_t *d0 = malloc(2 * sizeof *d0), *d1 = malloc(1 * sizeof *d1), *d2 = malloc(2 * sizeof *d2);
    d0[0] = 10; d0[1] = 100;
    d1[0] = 7;
    d2[0] = 8000; d2[1] = 1;
    m->tensors[0] = (sk_manifest_tensor){ xstrdup("w0"), 1, 0, 4000, SK_FLOAT, 2, d0 };
    m->tensors[1] = (sk_manifest_tensor){ xstrdup("w1.int4"), 2, 0, 4, SK_INT4, 1, d1 };
    m->tensors[2] = (sk_manifest_tensor){ xstrdup("w2"), 2, 64, 7936, SK_INT8, 2, d2 };
    m->tensors[2].dims[0] = 7936;
    return m;
}

static char *sample_json(size_t *len)
{
    sk_manifest *m = sample();
    char *text;
    sk_error err = { 0 };
    sk_status s = sk_manifest_write(m, &text, len, &err);
    if (s) fail_msg("write: %s", err.msg);
    sk_manifest_free(m);
    return text;
}

static void test_round_trip(void **state)
{
    (void)state;
    size_t len;
    char *text = sample_json(&len);
    sk_manifest *m;
    sk_error err = { 0 };
    sk_status s = sk_manifest_parse(text, len, &m, &err);
    if (s) fail_msg("parse: %s\n%s", err.msg, text);
    assert_string_equal(m->name, "org/bert-tiny_v2");
    assert_int_equal(m->version, 42);
    assert_int_equal(m->created, 1700000000);
    assert_string_equal(m->generator, "skiff \"test\" \\ \x01");
    assert_int_equal(m->n_files, 3);
    assert_int_equal(m->files[1].codec, SK_CODEC_BROTLI);
    assert_int_equal(m->files[1].raw_size, 4000);
    assert_int_equal(m->n_tensors, 3);
    assert_int_equal(m->tensors[1].dtype, SK_INT4);
    assert_int_equal(m->tensors[2].file, 2);
    assert_int_equal(m->inputs[0].rank, 3);
    assert_string_equal(m->inputs[0].dims[0].param, "batch");
    assert_int_equal(m->inputs[0].dims[1].value, 128);
    assert_null(m->inputs[0].dims[2].param);
    assert_int_equal(m->outputs[0].rank, -1);
    assert_int_equal(m->outputs[1].dtype, 0);
    uint8_t want[32];
    for (int i = 0; i < 32; i++) want[i] = (uint8_t)(2 + i);
    assert_memory_equal(m->files[1].sha256, want, 32);
    /* write(parse(x)) == x */
    char *again;
    size_t len2;
    assert_int_equal(sk_manifest_write(m, &again, &len2, &err), SK_OK);
    assert_int_equal(len2, len);
    assert_memory_equal(again, text, len);
    assert_int_equal(text[len - 1], '\n');
    free(again);
    sk_manifest_free(m);
    free(text);
}

/* Replaces the first occurrence of from by to; returns a new string, or
 * fails the test when from is not in s. */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at) fail_msg("'%s' is not in the manifest", from);
    size_t n = strlen(s) - strlen(from) + strlen(to);
    char *r = malloc(n + 1);
    assert_non_null(r);
    size_t pre = (size_t)(at - s);
    memcpy(r, s, pre);
    strcpy(r + pre, to);
    strcat(r, at + strlen(from));
    return r;
}

/* from -> to must be rejected with a message containing want. */
static void expect_reject(const char *base, const char *from, const char *to, const char *want)
{
    char *bad = replace(base, from, to);
    sk_manifest *m = (sk_manifest *)1;
    sk_error err = { 0 };
    sk_status s = sk_manifest_parse(bad, strlen(bad), &m, &err);
    if (s == SK_OK) fail_msg("accepted after replacing '%s' by '%s'", from, to);
    assert_int_equal(s, SK_EINVAL);
    assert_null(m);
    if (!strstr(err.msg, want)) fail_msg("replacing '%s' by '%s': message '%s' lacks '%s'", from, to, err.msg, want);
    free(bad);
}

static void test_rejects(void **state)
{
    (void)state;
    size_t len;
    char *t = sample_json(&len);
    /* types and numbers */
    expect_reject(t, "\"version\": 42", "\"version\": \"42\"", "version: expected an integer, found a string");
    expect_reject(t, "\"version\": 42", "\"version\": -42", "version: must be a non-negative integer");
    expect_reject(t, "\"version\": 42", "\"version\": 4.2", "version: must be an integer");
    expect_reject(t, "\"version\": 42", "\"version\": 42e3", "version: must be an integer");
    expect_reject(t, "\"version\": 42", "\"version\": 042", "leading zero");
    expect_reject(t, "\"version\": 42", "\"version\": 9007199254740992", "larger than 2^53");
    expect_reject(t, "\"version\": 42", "\"version\": 0", "version: must be between 1");
    expect_reject(t, "\"version\": 42", "\"version\": null", "expected an integer, found null");
    expect_reject(t, "\"version\": 42", "\"version\": true", "found a boolean");
    expect_reject(t, "\"version\": 42", "\"version\": [42]", "found an array");
    expect_reject(t, "\"name\": \"org/bert-tiny_v2\"", "\"name\": 7", "name: expected a string, found a number");
    expect_reject(t, "\"files\": [", "\"files\": {", "files: expected an array");
    /* absurd sizes */
    expect_reject(t, "\"raw_size\": 4000", "\"raw_size\": 4398046511104", "larger than 1 TiB");
    expect_reject(t, "\"size\": 300", "\"size\": 9007199254740991", "larger than 1 TiB");
    expect_reject(t, "\"shard_size\": 4096", "\"shard_size\": 12", "shard_size");
    expect_reject(t, "\"alignment\": 64", "\"alignment\": 48", "alignment");
    expect_reject(t, "\"shape\": [10, 100]", "\"shape\": [10, 1099511627777]", "dimension larger than 2^40");
    expect_reject(t, "\"shape\": [10, 100]", "\"shape\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", "more than 16 dimensions");
    expect_reject(t, "\"length\": 4000", "\"length\": 4001", "does not match");
    expect_reject(t, "\"offset\": 64", "\"offset\": 65", "aligned range");
    expect_reject(t, "\"offset\": 64", "\"offset\": 128", "aligned range"); /* past the end of the shard */
    expect_reject(t, "\"offset\": 64, \"length\": 7936", "\"offset\": 0, \"length\": 7936", "overlap");
    /* paths */
    expect_reject(t, "\"shard-00000.bin.br\"", "\"../shard-00000.bin.br\"", "files[1].path");
    expect_reject(t, "\"shard-00000.bin.br\"", "\"/etc/passwd\"", "files[1].path");
    expect_reject(t, "\"shard-00000.bin.br\"", "\"a\\\\b\"", "files[1].path");
    expect_reject(t, "\"shard-00000.bin.br\"", "\"..\"", "files[1].path");
    expect_reject(t, "\"shard-00000.bin.br\"", "\".hidden\"", "files[1].path");
    expect_reject(t, "\"shard-00000.bin.br\"", "\"\"", "files[1].path");
    expect_reject(t, "\"shard-00000.bin.br\"", "\"manifest.json\"", "reserved");
    expect_reject(t, "\"shard-00000.bin.br\"", "\"shard-00000.bin\"", "should be 'shard-00000.bin.br'");
    expect_reject(t, "\"raw_path\": \"shard-00001.bin\"", "\"raw_path\": \"shard-00000.bin\"", "should be 'shard-00001.bin'");
    expect_reject(t, "\"raw_path\": \"model.onnx\"", "\"raw_path\": \"sub/model.onnx\"", "files[0].path");
    /* duplicates, unknown and missing keys */
    expect_reject(t, "\"version\": 42,", "\"version\": 42, \"version\": 43,", "\"version\" appears twice");
    expect_reject(t, "\"name\": \"w1.int4\"", "\"name\": \"w0\"", "'w0' is listed twice");
    expect_reject(t, "\"version\": 42,", "\"version\": 42, \"extra\": 1,", "unknown key \"extra\"");
    expect_reject(t, "\"alignment\": 64,", "", "the key \"alignment\" is missing");
    expect_reject(t, "\"codec\": \"brotli\",", "", "the key \"codec\" is missing");
    expect_reject(t, "{\"domain\": \"com.microsoft\"", "{\"domain\": \"\"", "listed twice");
    /* values */
    expect_reject(t, "\"format_version\": 1", "\"format_version\": 2", "not supported");
    expect_reject(t, "\"skiff-package\"", "\"zip\"", "not a skiff package");
    expect_reject(t, "\"codec\": \"brotli\"", "\"codec\": \"gzip\"", "unknown codec");
    expect_reject(t, "\"role\": \"shard\"", "\"role\": \"model\"", "only the first file");
    expect_reject(t, "\"dtype\": \"float32\", \"shape\": [10", "\"dtype\": \"float33\", \"shape\": [10", "unknown element type");
    expect_reject(t, "\"shard\": \"shard-00000.bin\"", "\"shard\": \"model.onnx\"", "not the raw_path of a shard");
    expect_reject(t, "\"created\": \"2023-11-14T22:13:20Z\"", "\"created\": \"2023-02-30T22:13:20Z\"", "UTC time");
    expect_reject(t, "\"created\": \"2023-11-14T22:13:20Z\"", "\"created\": \"2023-11-14 22:13:20\"", "UTC time");
    expect_reject(t, "\"sha256\": \"02", "\"sha256\": \"0G", "64 lower-case hex");
    expect_reject(t, "\"integrity\": \"sha384-", "\"integrity\": \"sha512-", "sha384-");
    expect_reject(t, "\"name\": \"org/bert-tiny_v2\"", "\"name\": \"-bert\"", "model name");
    expect_reject(t, "\"name\": \"org/bert-tiny_v2\"", "\"name\": \"a\\tb\"", "model name");
    /* a codec-none shard whose raw hash differs from its stored one */
    expect_reject(t, "\"size\": 8000", "\"size\": 8001", "codec none");
    /* text */
    expect_reject(t, "\"name\": \"w0\"", "\"name\": \"w\\u0000\"", "NUL");
    expect_reject(t, "\"name\": \"w0\"", "\"name\": \"w\xff\"", "UTF-8");
    expect_reject(t, "\"name\": \"w0\"", "\"name\": \"w\\ud800\"", "surrogate");
    expect_reject(t, "\"name\": \"w0\"", "\"name\": \"w\\q\"", "bad escape");
    expect_reject(t, "{\n  \"format\"", "\xef\xbb\xbf{\n  \"format\"", "expected an object");
    expect_reject(t, "\"tensors\": [", "\"tensors\": [[[[[[[[[[[[[[[[[[[[", "expected an object, found an array");
    expect_reject(t, "]\n}\n", "]\n}\n{}", "data after the end");
    expect_reject(t, "\"version\": 42,", "\"version\": 42,,", "line 5");
    free(t);
}

static void test_accepts_other_layout(void **state)
{
    (void)state;
    size_t len;
    char *t = sample_json(&len);
    /* keys in another order, other whitespace, escapes: same manifest */
    char *a = replace(t, "\"format\": \"skiff-package\",\n  \"format_version\": 1,",
                      "\"format_version\":1,\"format\":\"skiff-\\u0070ackage\",");
    char *b = replace(a, "\"name\": \"w0\", \"shard\": \"shard-00000.bin\",", "\"shard\":\"shard-00000.bin\",\r\n\t\"name\":\"w\\u0030\",");
    /* tensors before files */
    const char *tens = strstr(b, "  \"tensors\": [");
    const char *files = strstr(b, "  \"files\": [");
    assert_non_null(tens);
    assert_non_null(files);
    size_t head = (size_t)(files - b), mid = (size_t)(tens - files);
    char *c = calloc(1, strlen(b) + 4);
    assert_non_null(c);
    memcpy(c, b, head);
    /* the tensors block without its final "\n}\n", then files */
    size_t tl = strlen(tens) - 3;
    memcpy(c + head, tens, tl);
    strcat(c, ",\n");
    strncat(c, files, mid - 2);
    strcat(c, "\n}\n");
    sk_manifest *m;
    sk_error err = { 0 };
    sk_status s = sk_manifest_parse(c, strlen(c), &m, &err);
    if (s) fail_msg("%s\n%s", err.msg, c);
    char *again;
    size_t l2;
    assert_int_equal(sk_manifest_write(m, &again, &l2, &err), SK_OK);
    assert_int_equal(l2, len);
    assert_memory_equal(again, t, len);
    free(again);
    sk_manifest_free(m);
    free(a);
    free(b);
    free(c);
    free(t);
}

static void test_truncations_and_damage(void **state)
{
    (void)state;
    size_t len;
    char *t = sample_json(&len);
    sk_error err;
    for (size_t n = 0; n + 1 < len; n++) { /* every prefix but the whole and whole minus "\n" */
        sk_manifest *m;
        if (sk_manifest_parse(t, n, &m, &err) == SK_OK) fail_msg("a prefix of %zu bytes parsed", n);
    }
    /* random damage: one to three bytes replaced; never a crash, and the
     * parse either fails or gives a manifest that writes back validly */
    uint32_t x = 12345;
    char *d = malloc(len);
    assert_non_null(d);
    size_t accepted = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(d, t, len);
        int k = 1 + (int)(x % 3);
        for (int j = 0; j < k; j++) {
            x = x * 1103515245u + 12345u;
            size_t at = (x >> 8) % len;
            x = x * 1103515245u + 12345u;
            d[at] = (char)(x >> 16);
        }
        sk_manifest *m;
        if (sk_manifest_parse(d, len, &m, &err) == SK_OK) {
            char *w;
            size_t wl;
            assert_int_equal(sk_manifest_write(m, &w, &wl, &err), SK_OK);
            free(w);
            sk_manifest_free(m);
            accepted++;
        }
    }
    printf("damage: %zu of 20000 damaged manifests still valid (whitespace, hash digits)\n", accepted);
    free(d);
    free(t);
}

static void test_names_and_times(void **state)
{
    (void)state;
    assert_true(sk_manifest_file_name_ok("shard-00000.bin.br"));
    assert_true(sk_manifest_file_name_ok("model.onnx"));
    assert_false(sk_manifest_file_name_ok(""));
    assert_false(sk_manifest_file_name_ok("."));
    assert_false(sk_manifest_file_name_ok(".."));
    assert_false(sk_manifest_file_name_ok("../a"));
    assert_false(sk_manifest_file_name_ok("/a"));
    assert_false(sk_manifest_file_name_ok("a/b"));
    assert_false(sk_manifest_file_name_ok("a\\b"));
    assert_false(sk_manifest_file_name_ok("-rf"));
    assert_false(sk_manifest_file_name_ok("a b"));
    char long_name[300];
    memset(long_name, 'a', sizeof long_name);
    long_name[255] = 0;
    assert_true(sk_manifest_file_name_ok(long_name));
    long_name[255] = 'a';
    long_name[256] = 0;
    assert_false(sk_manifest_file_name_ok(long_name));
    assert_true(sk_manifest_model_name_ok("Xenova/bert-base@1+int8"));
    assert_false(sk_manifest_model_name_ok("/abs"));
    assert_false(sk_manifest_model_name_ok("a\tb"));
    assert_false(sk_manifest_model_name_ok(""));
    char tb[SK_MANIFEST_TIME_SIZE];
    assert_int_equal(sk_manifest_time_format(0, tb), 0);
    assert_string_equal(tb, "1970-01-01T00:00:00Z");
    assert_int_equal(sk_manifest_time_format(951782400, tb), 0);
    assert_string_equal(tb, "2000-02-29T00:00:00Z");
    assert_int_equal(sk_manifest_time_format(253402300799, tb), 0);
    assert_string_equal(tb, "9999-12-31T23:59:59Z");
    assert_int_equal(sk_manifest_time_format(253402300800, tb), -1);
    assert_int_equal(sk_manifest_time_format(-1, tb), -1);
}

static void test_limits(void **state)
{
    (void)state;
    sk_manifest *m;
    sk_error err = { 0 };
    assert_int_equal(sk_manifest_parse("", 0, &m, &err), SK_EINVAL);
    assert_int_equal(sk_manifest_parse("{}", (size_t)65 << 20, &m, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "larger than"));
    assert_int_equal(sk_manifest_parse("{}", 2, &m, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "is missing"));
    assert_int_equal(sk_manifest_parse("[]", 2, &m, &err), SK_EINVAL);
    assert_int_equal(sk_manifest_parse("\"x", 2, &m, &err), SK_EINVAL);
    /* a long string */
    char *s = malloc(10000);
    assert_non_null(s);
    strcpy(s, "{\"generator\": \"");
    memset(s + 15, 'a', 5000);
    strcpy(s + 5015, "\"}");
    assert_int_equal(sk_manifest_parse(s, strlen(s), &m, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "longer than"));
    free(s);
    /* a validation failure on an in-memory manifest */
    m = sample();
    m->tensors[0].file = 0;
    char *out = (char *)1;
    size_t len = 1;
    assert_int_equal(sk_manifest_write(m, &out, &len, &err), SK_EINVAL);
    assert_null(out);
    assert_non_null(strstr(err.msg, "not a shard"));
    sk_manifest_free(m);
    sk_manifest_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_accepts_other_layout),
        cmocka_unit_test(test_truncations_and_damage),
        cmocka_unit_test(test_names_and_times),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests_name("manifest", tests, NULL, NULL);
}
