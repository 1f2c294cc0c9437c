/* Head pruning (quant/sk_prune*.c) on a small attention graph built in
 * memory: the rewrite against the unpruned graph with the same heads' output
 * rows zeroed, separate and fused projections, both scores, bias and
 * least-squares compensation, the errors, determinism; and the BERT
 * classifier in ../shared/models when present. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_engine.h"
#include "sk_model.h"
#include "util_graph.h"
#include "sk_npy.h"
#include "sk_prune.h"
#include "sk_quant_calib.h"

#define SHARED "../shared/models"

/* ---- building graphs -------------------------------------------------------- */



/* ---- samples and runs ----------------------------------------------------------- */

static char tmpdir[256];

/* n samples of x [1,5,E] under tmpdir/name/sNN/x.npy. */
static sk_quant_calib *make_calib(const char *name, size_t n, int64_t E)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    unsigned seed = 7;
    for (size_t i = 0; i < n; i++) {
        char sd[600], f[700];
        snprintf(sd, sizeof sd, "%s/s%02zu", dir, i);
        mkdir(sd, 0755);
        snprintf(f, sizeof f, "%s/x.npy", sd);
        sk_tensor t = { 0 };
        int64_t dims[3] = { 1, 5, E };
        sk_error err;
        assert_int_equal(sk_tensor_alloc(&t, SK_FLOAT, 3, dims, &err), SK_OK);
        for (int64_t k = 0; k < t.numel; k++) {
            seed = seed * 1103515245u + 12345u;
            ((float *)t.data)[k] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
        }
        assert_int_equal(sk_npy_save(f, &t, &err), SK_OK);
        sk_tensor_free(&t);
    }
    sk_quant_calib *c;
    sk_error err;
    assert_int_equal(sk_quant_calib_open(dir, 0, &c, &err), SK_OK);
    return c;
}

/* Runs m on sample i of c: the output y. */
static sk_tensor run_sample(sk_model *m, const sk_quant_calib *c, size_t i)
{
    sk_engine *e;
    sk_error err;
    assert_int_equal(sk_engine_create(m, NULL, &e, &err), SK_OK);
    sk_quant_sample s;
    assert_int_equal(sk_quant_calib_load(c, i, e, &s, &err), SK_OK);
    sk_tensor out[1] = { { 0 } };
    assert_int_equal(sk_engine_run(e, s.n, s.names, s.ptrs, out, &err), SK_OK);
    sk_quant_sample_free(&s);
    sk_engine_free(e);
    return out[0];
}

static double max_abs_diff(const sk_tensor *a, const sk_tensor *b)
{
    assert_int_equal(a->numel, b->numel);
    double d = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double x = fabs((double)((const float *)a->data)[i] - ((const float *)b->data)[i]);
        if (x > d) d = x;
    }
    return d;
}

static const int64_t *init_dims(sk_model *m, const char *name, size_t *rank)
{
    sk_tensor_proto *t = sk_graph_initializer(sk_model_graph(m), name);
    assert_non_null(t);
    *rank = t->n_dims;
    return t->dims;
}

/* ---- tests ------------------------------------------------------------------------ */

/* Without compensation, pruning = zeroing the heads' output rows, and the
 * weights shrink by whole heads. */
static void check_exact(int fused)
{
    int64_t H = 4, D = 8, E = 32;
    int zero[4] = { 0, 1, 0, 1 };
    sk_model *m = ut_attention_model(H, D, fused, 0, NULL), *ref = ut_attention_model(H, D, fused, 0, zero);
    char name[32];
    snprintf(name, sizeof name, "exact%d", fused);
    sk_quant_calib *c = make_calib(name, 2, E);
    sk_prune_opts o;
    sk_prune_opts_init(&o);
    sk_prune_pick picks[2] = { { 0, 1 }, { 0, 3 } };
    o.picks = picks;
    o.n_picks = 2;
    o.compensate = SK_PRUNE_COMP_NONE;
    o.calib = c;
    o.threads = 1;
    sk_prune_report *rep = sk_prune_report_create();
    sk_error err;
    assert_int_equal(sk_prune_model(m, &o, rep, &err), SK_OK);
    assert_int_equal(rep->heads_removed, 2);
    assert_int_equal(rep->heads_total, 4);
    assert_true(rep->check_rel_err >= 0 && rep->check_rel_err < 1e-5);
    assert_int_equal(rep->blocks[0].kept, 2);
    assert_true(rep->blocks[0].pruned[1] && rep->blocks[0].pruned[3] && !rep->blocks[0].pruned[0]);
    size_t rank;
    const int64_t *d = init_dims(m, "wo", &rank);
    assert_int_equal(rank, 2);
    assert_int_equal(d[0], 16);
    assert_int_equal(d[1], 32);
    if (fused) {
        d = init_dims(m, "wqkv", &rank);
        assert_int_equal(d[1], 48);
        d = init_dims(m, "bqkv", &rank);
        assert_int_equal(d[0], 48);
    } else {
        d = init_dims(m, "wq", &rank);
        assert_int_equal(d[1], 16);
        d = init_dims(m, "bv", &rank);
        assert_int_equal(d[0], 16);
    }
    assert_int_equal(rep->head_params_after, fused ? 32 * 48 + 48 + 16 * 32 : 3 * (32 * 16 + 16) + 16 * 32);
    for (size_t i = 0; i < 2; i++) {
        sk_tensor a = run_sample(m, c, i), b = run_sample(ref, c, i);
        assert_true(max_abs_diff(&a, &b) < 1e-5);
        sk_tensor_free(&a);
        sk_tensor_free(&b);
    }
    /* the pruned graph is still recognised: two heads left */
    sk_attn_info *info;
    assert_int_equal(sk_attn_find(m, &info, &err), SK_OK);
    assert_int_equal(info->n_blocks, 1);
    assert_int_equal(info->blocks[0].heads, 2);
    sk_attn_info_free(info);
    sk_prune_report_free(rep);
    sk_quant_calib_free(c);
    sk_model_free(m);
    sk_model_free(ref);
}

static void test_exact_separate(void **state)
{
    (void)state;
    check_exact(0);
}

static void test_exact_fused(void **state)
{
    (void)state;
    check_exact(1);
}

static void test_exact_fused_parts(void **state)
{
    (void)state;
    check_exact(2);
}

/* a per-head constant on the scores loses the removed heads' tables */
static void test_exact_head_bias(void **state)
{
    (void)state;
    ut_attention_head_bias = 1;
    check_exact(0);
    ut_attention_head_bias = 1;
    sk_model *m = ut_attention_model(4, 8, 0, 0, NULL);
    ut_attention_head_bias = 0;
    sk_prune_opts o;
    sk_prune_opts_init(&o);
    sk_prune_pick picks[1] = { { 0, 2 } };
    o.picks = picks;
    o.n_picks = 1;
    o.compensate = SK_PRUNE_COMP_NONE;
    sk_error err;
    assert_int_equal(sk_prune_model(m, &o, NULL, &err), SK_OK);
    /* the Add now reads a [1,3,5,5] copy */
    sk_graph_proto *g = sk_model_graph(m);
    const sk_tensor_proto *t = NULL;
    for (size_t i = 0; i < g->n_node; i++)
        if (!strcmp(g->node[i]->name, "head_bias_add")) t = sk_graph_initializer(g, g->node[i]->input[1]);
    assert_non_null(t);
    assert_int_equal(t->n_dims, 4);
    assert_int_equal(t->dims[1], 3);
    sk_model_free(m);
}

/* Scores are finite, the removed head has the lowest score, both methods. */
static void test_scores(void **state)
{
    (void)state;
    sk_quant_calib *c = make_calib("scores", 3, 32);
    for (int method = 0; method < 2; method++) {
        sk_model *m = ut_attention_model(4, 8, 0, 0, NULL);
        sk_prune_opts o;
        sk_prune_opts_init(&o);
        o.percent = -1;
        o.heads = 1;
        o.score = method ? SK_PRUNE_SCORE_ACTIVATION : SK_PRUNE_SCORE_ABLATION;
        o.calib = c;
        o.threads = 2;
        sk_prune_report *rep = sk_prune_report_create();
        sk_error err;
        assert_int_equal(sk_prune_model(m, &o, rep, &err), SK_OK);
        assert_int_equal(rep->n_blocks, 1);
        assert_int_equal(rep->samples, 3);
        const sk_prune_block_report *b = &rep->blocks[0];
        int64_t lowest = 0;
        for (int64_t h = 0; h < 4; h++) {
            assert_true(isfinite(b->scores[h]) && b->scores[h] > 0);
            if (b->scores[h] < b->scores[lowest]) lowest = h;
        }
        assert_int_equal(b->kept, 3);
        assert_true(b->pruned[lowest]);
        if (!method) assert_non_null(strstr(rep->metric, "rel. L2(y)"));
        sk_prune_report_free(rep);
        sk_model_free(m);
    }
    sk_quant_calib_free(c);
}

/* The mean of the block's output over the samples, per feature. */
static void mean_output(sk_model *m, const sk_quant_calib *c, double *mean, int64_t E)
{
    memset(mean, 0, (size_t)E * sizeof *mean);
    size_t rows = 0;
    for (size_t i = 0; i < sk_quant_calib_count(c); i++) {
        sk_tensor y = run_sample(m, c, i);
        for (int64_t r = 0; r < y.numel / E; r++, rows++)
            for (int64_t j = 0; j < E; j++) mean[j] += ((const float *)y.data)[r * E + j];
        sk_tensor_free(&y);
    }
    for (int64_t j = 0; j < E; j++) mean[j] /= (double)rows;
}

static double sq_error(sk_model *m, sk_model *ref, const sk_quant_calib *c)
{
    double e = 0;
    for (size_t i = 0; i < sk_quant_calib_count(c); i++) {
        sk_tensor a = run_sample(m, c, i), b = run_sample(ref, c, i);
        for (int64_t k = 0; k < a.numel; k++) {
            double d = (double)((const float *)a.data)[k] - ((const float *)b.data)[k];
            e += d * d;
        }
        sk_tensor_free(&a);
        sk_tensor_free(&b);
    }
    return e;
}

/* Bias compensation keeps the mean output on the samples; least squares
 * fits the unpruned output at least as well and reports its scales. */
static void test_compensation(void **state)
{
    (void)state;
    int64_t E = 32;
    sk_quant_calib *c = make_calib("comp", 4, E);
    sk_model *orig = ut_attention_model(4, 8, 0, 0, NULL);
    double want[32], got[32], err_of[3];
    mean_output(orig, c, want, E);
    for (int mode = 0; mode < 3; mode++) {
        sk_model *m = ut_attention_model(4, 8, 0, 0, NULL);
        sk_prune_opts o;
        sk_prune_opts_init(&o);
        sk_prune_pick picks[2] = { { 0, 0 }, { 0, 2 } };
        o.picks = picks;
        o.n_picks = 2;
        o.compensate = mode == 0 ? SK_PRUNE_COMP_NONE : mode == 1 ? SK_PRUNE_COMP_BIAS : SK_PRUNE_COMP_LSQ;
        o.calib = c;
        sk_prune_report *rep = sk_prune_report_create();
        sk_error err;
        assert_int_equal(sk_prune_model(m, &o, rep, &err), SK_OK);
        assert_true(rep->check_rel_err >= 0 && rep->check_rel_err < 1e-4);
        if (mode == 1) {
            mean_output(m, c, got, E);
            for (int64_t j = 0; j < E; j++) assert_true(fabs(got[j] - want[j]) < 1e-4);
        }
        if (mode == 2) {
            assert_non_null(rep->blocks[0].alpha);
            assert_true(rep->blocks[0].alpha[0] == 0 && rep->blocks[0].alpha[1] > 0);
        } else {
            assert_null(rep->blocks[0].alpha);
        }
        err_of[mode] = sq_error(m, orig, c);
        sk_prune_report_free(rep);
        sk_model_free(m);
    }
    assert_true(err_of[1] < err_of[0]);
    assert_true(err_of[2] <= err_of[1] * 1.001);
    sk_model_free(orig);
    sk_quant_calib_free(c);
}

static void test_errors(void **state)
{
    (void)state;
    sk_quant_calib *c = make_calib("errors", 1, 32);
    sk_prune_opts o;
    sk_error err;
    /* more heads than min_heads allows */
    sk_model *m = ut_attention_model(4, 8, 0, 0, NULL);
    sk_prune_opts_init(&o);
    o.percent = -1;
    o.heads = 4;
    o.calib = c;
    assert_int_equal(sk_prune_model(m, &o, NULL, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "at most 3"));
    sk_model_free(m);
    /* a pick outside the model */
    m = ut_attention_model(4, 8, 0, 0, NULL);
    sk_prune_opts_init(&o);
    sk_prune_pick bad[1] = { { 0, 4 } };
    o.picks = bad;
    o.n_picks = 1;
    o.compensate = SK_PRUNE_COMP_NONE;
    assert_int_equal(sk_prune_model(m, &o, NULL, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "0:4"));
    sk_model_free(m);
    /* every head of a layer */
    m = ut_attention_model(2, 16, 0, 0, NULL);
    sk_prune_pick all[2] = { { 0, 0 }, { 0, 1 } };
    o.picks = all;
    o.n_picks = 2;
    assert_int_equal(sk_prune_model(m, &o, NULL, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "fewer than the minimum"));
    sk_model_free(m);
    /* scoring without samples */
    m = ut_attention_model(4, 8, 0, 0, NULL);
    sk_prune_opts_init(&o);
    assert_int_equal(sk_prune_model(m, &o, NULL, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "calibration"));
    sk_model_free(m);
    /* no attention */
    m = ut_attention_model(4, 8, 0, 1, NULL);
    sk_prune_opts_init(&o);
    o.calib = c;
    assert_int_equal(sk_prune_model(m, &o, NULL, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "projection"));
    sk_model_free(m);
    sk_quant_calib_free(c);
}

static void test_deterministic(void **state)
{
    (void)state;
    sk_quant_calib *c = make_calib("det", 3, 32);
    uint8_t *buf[2];
    size_t len[2];
    for (int i = 0; i < 2; i++) {
        sk_model *m = ut_attention_model(4, 8, 1, 0, NULL);
        sk_prune_opts o;
        sk_prune_opts_init(&o);
        o.percent = 50;
        o.calib = c;
        o.threads = i ? 3 : 1; /* the thread count changes nothing */
        sk_error err;
        assert_int_equal(sk_prune_model(m, &o, NULL, &err), SK_OK);
        assert_int_equal(sk_model_save_buffer(m, &buf[i], &len[i], &err), SK_OK);
        sk_model_free(m);
    }
    assert_int_equal(len[0], len[1]);
    assert_memory_equal(buf[0], buf[1], len[0]);
    free(buf[0]);
    free(buf[1]);
    sk_quant_calib_free(c);
}

/* The BERT classifier: two heads given, no compensation: the check (pruned
 * model vs. the unpruned one with those heads zeroed) passes. */
static void test_bert(void **state)
{
    (void)state;
    const char *path = SHARED "/bert_bytes_cls/model.onnx";
    if (access(path, R_OK)) {
        print_message("skipped: bert_bytes_cls (" SHARED " is absent)\n");
        skip();
    }
    sk_model *m;
    sk_quant_calib *c;
    sk_error err;
    assert_int_equal(sk_model_load(path, NULL, &m, &err), SK_OK);
    assert_int_equal(sk_quant_calib_open(SHARED "/bert_bytes_cls/calib", 2, &c, &err), SK_OK);
    sk_prune_opts o;
    sk_prune_opts_init(&o);
    sk_prune_pick picks[3] = { { 0, 7 }, { 2, 3 }, { 3, 0 } };
    o.picks = picks;
    o.n_picks = 3;
    o.calib = c;
    sk_prune_report *rep = sk_prune_report_create();
    assert_int_equal(sk_prune_model(m, &o, rep, &err), SK_OK);
    assert_true(rep->check_rel_err >= 0 && rep->check_rel_err < 1e-4);
    assert_int_equal(rep->heads_removed, 3);
    /* 3 heads of 32 features: 3 x (3 x (256 x 32 + 32) + 32 x 256) */
    assert_int_equal(rep->head_params_before - rep->head_params_after, 3 * (3 * (256 * 32 + 32) + 32 * 256));
    sk_prune_report_free(rep);
    sk_quant_calib_free(c);
    sk_model_free(m);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-test-prune-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_separate),
        cmocka_unit_test(test_exact_fused),
        cmocka_unit_test(test_exact_fused_parts),
        cmocka_unit_test(test_exact_head_bias),
        cmocka_unit_test(test_scores),
        cmocka_unit_test(test_compensation),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bert),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
