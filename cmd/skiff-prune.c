/* skiff-prune: removes whole attention heads from a transformer, scored on
 * calibration samples in skiff's engine. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "sk_atomic.h"
#include "sk_cli.h"
#include "sk_model.h"
#include "sk_prune.h"
#include "sk_quant_calib.h"
#include "sk_stats.h"

static const char usage[] =
    "usage: skiff-prune MODEL -o OUT --calib DIR (--heads N | --heads P%) [options]\n"
    "       skiff-prune MODEL -o OUT --prune-heads L:H[,L:H...] [--calib DIR] [options]\n"
    "\n"
    "Removes whole attention heads from a transformer's ONNX graph: scores every\n"
    "head on calibration samples in skiff's engine, removes the least important\n"
    "ones (one ranking across layers), slices the Q/K/V and output projections\n"
    "and every constant that encodes the head count, and refits the output\n"
    "projections so each block's output is preserved. The result is\n"
    "a smaller ONNX model with the same inputs and outputs; quantize it after.\n"
    "`skiff-inspect MODEL` lists the attention blocks skiff recognises.\n"
    "\n"
    "Options:\n"
    "  -o OUT                   output model (required)\n"
    "  --calib DIR              samples: one sub-folder per sample holding <input>.npy\n"
    "                           or input_N.pb files (skiff-quant's format)\n"
    "  --calib-samples N        use the first N samples of --calib\n"
    "  --heads N | --heads P%   heads to remove: a count, or a share of all heads\n"
    "  --min-heads-per-layer N  heads every layer keeps (default 1)\n"
    "  --score METHOD           ablation (default): mean change of the outputs when\n"
    "                           the head is zeroed (KL divergence for outputs named\n"
    "                           *logit*, relative L2 otherwise), one run per sample\n"
    "                           and head; activation: the head's output RMS times\n"
    "                           its output-projection row norm, one run per sample\n"
    "  --compensate MODE        bias: refit the output projection's bias so each\n"
    "                           block's mean output is kept; lsq: also rescale the\n"
    "                           kept heads by least squares; auto (default): both,\n"
    "                           keep the one that changes the outputs less on the\n"
    "                           samples; none: the model equals the original with\n"
    "                           the heads' outputs zeroed\n"
    "  --prune-heads LIST       remove exactly these heads (layer:head as skiff-inspect\n"
    "                           numbers them, comma-separated); no scoring\n"
    "  --report FILE            scores and choices as FILE.json or a self-contained\n"
    "                           FILE.html with a layer x head heat map (repeatable)\n"
    "  --external-data F        write weights to F next to OUT\n"
    "  --threads N              worker threads (default: all cores)\n"
    "  --no-check               skip the final run that compares the pruned model\n"
    "                           with the original run with the same heads zeroed\n"
    "  --json                   print a summary as JSON\n"
    "  -q, -v, -h/--help, -V/--version\n"
    "\n"
    "Exit status: 0 ok, 1 bad input or failure, 2 usage error.\n";

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

static int parse_i64(const char *s, int64_t *out)
{
    uint64_t v;
    if (sk_cli_parse_u64(s, &v) || v > (uint64_t)1 << 40) return -1;
    *out = (int64_t)v;
    return 0;
}

/* "0:3,1:5" into picks (malloc'd). */
static int parse_picks(const char *s, sk_prune_pick **out, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    sk_prune_pick *pk = calloc(cap, sizeof *pk);
    char *copy = strdup(s);
    if (!pk || !copy) {
        free(pk);
        free(copy);
        return -1;
    }
    size_t k = 0;
    int bad = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && !bad; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        if (!colon) {
            bad = 1;
            break;
        }
        *colon = 0;
        if (parse_i64(tok, &pk[k].layer) || parse_i64(colon + 1, &pk[k].head)) bad = 1;
        for (size_t j = 0; j < k && !bad; j++)
            if (pk[j].layer == pk[k].layer && pk[j].head == pk[k].head) bad = 1;
        k++;
    }
    free(copy);
    if (bad || !k) {
        free(pk);
        return -1;
    }
    *out = pk;
    *n = k;
    return 0;
}

static uint64_t model_params(sk_model *m)
{
    sk_model_stats st;
    sk_error err;
    if (sk_model_stats_compute(m, 0, &st, &err)) return 0;
    uint64_t p = st.total.params;
    sk_model_stats_free(&st);
    return p;
}

int main(int argc, char **argv)
{
    sk_cli cli = { "skiff-prune", usage, 1, 0 };
    sk_prune_opts o;
    sk_prune_opts_init(&o);
    o.percent = -1;
    o.heads = -1;
    const char *in = NULL, *out = NULL, *calib_dir = NULL, *ext = NULL;
    const char *reports[8];
    size_t n_reports = 0;
    uint64_t calib_n = 0;
    sk_prune_pick *picks = NULL;
    size_t n_picks = 0;
    int heads_given = 0, opts_done = 0;
    int rc = SK_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts_done || a[0] != '-' || !a[1]) {
            if (in) {
                rc = sk_cli_usage_error(&cli, "one model at a time ('%s' and '%s')", in, a);
                goto done;
            }
            in = a;
            continue;
        }
        if (sk_cli_common(&cli, argc, argv, &i)) continue;
        if (!strcmp(a, "--")) {
            opts_done = 1;
            continue;
        }
        if (!strcmp(a, "--no-check")) {
            o.no_check = 1;
            continue;
        }
        static const char *const with_value[] = { "-o", "--calib", "--calib-samples", "--heads", "--min-heads-per-layer",
                                                  "--score", "--compensate", "--prune-heads", "--report",
                                                  "--external-data", "--threads", NULL };
        int known = 0;
        for (size_t k = 0; with_value[k]; k++) known |= !strcmp(a, with_value[k]);
        if (!known) {
            rc = sk_cli_usage_error(&cli, "unknown option '%s'", a);
            goto done;
        }
        if (i + 1 >= argc) {
            rc = sk_cli_usage_error(&cli, "%s needs a value", a);
            goto done;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--calib")) calib_dir = v;
        else if (!strcmp(a, "--external-data")) ext = v;
        else if (!strcmp(a, "--calib-samples")) {
            if (sk_cli_parse_u64(v, &calib_n) || calib_n == 0 || calib_n > 1000000) {
                rc = sk_cli_usage_error(&cli, "--calib-samples needs a positive number, not '%s'", v);
                goto done;
            }
        } else if (!strcmp(a, "--heads")) {
            size_t l = strlen(v);
            if (l > 1 && v[l - 1] == '%') {
                char *end;
                double p = strtod(v, &end);
                if (end != v + l - 1 || !(p >= 0 && p < 100)) {
                    rc = sk_cli_usage_error(&cli, "--heads P%% needs a percentage from 0 to 99, not '%s'", v);
                    goto done;
                }
                o.percent = p;
            } else if (parse_i64(v, &o.heads)) {
                rc = sk_cli_usage_error(&cli, "--heads needs a number of heads or a percentage (25%%), not '%s'", v);
                goto done;
            }
            heads_given = 1;
        } else if (!strcmp(a, "--min-heads-per-layer")) {
            if (parse_i64(v, &o.min_heads) || o.min_heads < 1) {
                rc = sk_cli_usage_error(&cli, "--min-heads-per-layer needs a number of at least 1, not '%s'", v);
                goto done;
            }
        } else if (!strcmp(a, "--score")) {
            if (!strcmp(v, "ablation")) o.score = SK_PRUNE_SCORE_ABLATION;
            else if (!strcmp(v, "activation")) o.score = SK_PRUNE_SCORE_ACTIVATION;
            else {
                rc = sk_cli_usage_error(&cli, "--score is ablation or activation, not '%s'", v);
                goto done;
            }
        } else if (!strcmp(a, "--compensate")) {
            if (!strcmp(v, "auto")) o.compensate = SK_PRUNE_COMP_AUTO;
            else if (!strcmp(v, "bias")) o.compensate = SK_PRUNE_COMP_BIAS;
            else if (!strcmp(v, "lsq")) o.compensate = SK_PRUNE_COMP_LSQ;
            else if (!strcmp(v, "none")) o.compensate = SK_PRUNE_COMP_NONE;
            else {
                rc = sk_cli_usage_error(&cli, "--compensate is auto, bias, lsq or none, not '%s'", v);
                goto done;
            }
        } else if (!strcmp(a, "--prune-heads")) {
            if (picks) {
                rc = sk_cli_usage_error(&cli, "--prune-heads given twice");
                goto done;
            }
            if (parse_picks(v, &picks, &n_picks)) {
                rc = sk_cli_usage_error(&cli, "--prune-heads needs distinct layer:head pairs like 0:3,1:5, not '%s'", v);
                goto done;
            }
        } else if (!strcmp(a, "--report")) {
            if (!ends_with(v, ".json") && !ends_with(v, ".html") && !ends_with(v, ".htm")) {
                rc = sk_cli_usage_error(&cli, "--report needs a .json or .html file name, not '%s'", v);
                goto done;
            }
            if (n_reports == sizeof reports / sizeof *reports) {
                rc = sk_cli_usage_error(&cli, "too many --report");
                goto done;
            }
            reports[n_reports++] = v;
        } else if (!strcmp(a, "--threads")) {
            uint64_t t;
            if (sk_cli_parse_u64(v, &t) || t == 0 || t > 256) {
                rc = sk_cli_usage_error(&cli, "--threads needs a number from 1 to 256, not '%s'", v);
                goto done;
            }
            o.threads = (int)t;
        }
    }
    if (!in) {
        rc = sk_cli_usage_error(&cli, "no model given");
        goto done;
    }
    if (!out) {
        rc = sk_cli_usage_error(&cli, "no output given (-o OUT)");
        goto done;
    }
    if (heads_given && picks) {
        rc = sk_cli_usage_error(&cli, "--heads and --prune-heads exclude each other");
        goto done;
    }
    if (!heads_given && !picks) {
        rc = sk_cli_usage_error(&cli, "say how many heads to remove (--heads N or --heads P%%) or which (--prune-heads)");
        goto done;
    }
    if (!calib_dir && (!picks || o.compensate != SK_PRUNE_COMP_NONE)) {
        rc = sk_cli_usage_error(&cli, "--calib DIR is required (it may be left out only with --prune-heads and "
                                      "--compensate none)");
        goto done;
    }
    if (ext && (strchr(ext, '/') || !*ext)) {
        rc = sk_cli_usage_error(&cli, "--external-data takes a plain file name, not '%s'", ext);
        goto done;
    }
    o.picks = picks;
    o.n_picks = n_picks;
    sk_atomic_install_signal_handlers();
    sk_cli_progress(&cli, &o.progress);

    {
        sk_error err = { 0 };
        sk_model *m = NULL, *pm = NULL;
        sk_quant_calib *calib = NULL;
        sk_prune_report *rep = sk_prune_report_create();
        int saved = 0;
        rc = SK_EXIT_FAIL;
        if (!rep) {
            fprintf(stderr, "skiff-prune: out of memory\n");
            goto run_done;
        }
        if (sk_model_load(in, NULL, &m, &err)) goto fail;
        if (calib_dir && sk_quant_calib_open(calib_dir, (size_t)calib_n, &calib, &err)) goto fail;
        o.calib = calib;
        rep->params_before = model_params(m);
        rep->file_bytes_before = file_size(in);
        sk_cli_info(&cli, 2, "%s: scoring heads (%s)\n", in, picks ? "given" : o.score == SK_PRUNE_SCORE_ABLATION ? "ablation" : "activation");
        if (sk_prune_model(m, &o, rep, &err)) {
            if (err.msg[0] && strncmp(err.msg, in, strlen(in))) sk_error_prefix(&err, "%s: ", in);
            goto fail;
        }
        rep->params_after = model_params(m);
        sk_save_opts so = { 0 };
        so.external_data = ext;
        if (sk_model_save(m, out, &so, &err)) goto fail;
        saved = 1;
        rep->file_bytes_after = file_size(out);
        for (size_t i = 0; i < n_reports; i++) {
            sk_status s = ends_with(reports[i], ".json") ? sk_prune_report_write_json(rep, in, reports[i], &err)
                                                         : sk_prune_report_write_html(rep, in, reports[i], &err);
            if (s) goto fail;
        }
        if (cli.json) {
            printf("{\"input\": ");
            sk_json_str(stdout, in);
            printf(", \"output\": ");
            sk_json_str(stdout, out);
            printf(", \"score\": ");
            sk_json_str(stdout, rep->score);
            printf(", \"compensate\": ");
            sk_json_str(stdout, rep->compensate);
            printf(", \"heads_total\": %" PRId64 ", \"heads_removed\": %" PRId64 ", \"params_before\": %" PRIu64
                   ", \"params_after\": %" PRIu64 ", \"bytes_before\": %" PRIu64 ", \"bytes_after\": %" PRIu64
                   ", \"seconds\": %.3f, \"layers\": [",
                   rep->heads_total, rep->heads_removed, rep->params_before, rep->params_after, rep->file_bytes_before,
                   rep->file_bytes_after, rep->score_seconds + rep->comp_seconds + rep->rewrite_seconds);
            for (size_t i = 0; i < rep->n_blocks; i++) {
                const sk_prune_block_report *b = &rep->blocks[i];
                printf("%s{\"layer\": %" PRId64 ", \"heads\": %" PRId64 ", \"kept\": %" PRId64 ", \"removed\": [", i ? ", " : "",
                       b->layer, b->heads, b->kept);
                int first = 1;
                for (int64_t h = 0; h < b->heads; h++)
                    if (b->pruned[h]) {
                        printf(first ? "%" PRId64 : ", %" PRId64, h);
                        first = 0;
                    }
                printf("]}");
            }
            printf("]}\n");
        } else {
            char b1[32], b2[32];
            sk_cli_info(&cli, 1, "%s: removed %" PRId64 " of %" PRId64 " heads (%s%s%s), %" PRIu64 " -> %" PRIu64
                                 " parameters (%.1f%%), %s -> %s in %.2f s\n",
                        out, rep->heads_removed, rep->heads_total, rep->score, rep->samples ? " on " : "",
                        rep->samples ? "calibration samples" : "", rep->params_before, rep->params_after,
                        rep->params_before ? 100.0 * ((double)rep->params_after - (double)rep->params_before) / (double)rep->params_before : 0.0,
                        sk_human_bytes(rep->file_bytes_before, b1, sizeof b1),
                        sk_human_bytes(rep->file_bytes_after, b2, sizeof b2),
                        rep->score_seconds + rep->comp_seconds + rep->rewrite_seconds);
            for (size_t i = 0; i < rep->n_blocks; i++) {
                const sk_prune_block_report *b = &rep->blocks[i];
                sk_cli_info(&cli, 1, "  layer %-3" PRId64 " kept %" PRId64 "/%" PRId64, b->layer, b->kept, b->heads);
                if (b->kv_heads != b->heads) sk_cli_info(&cli, 1, " (key/value heads %" PRId64 "/%" PRId64 ")", b->kv_kept, b->kv_heads);
                int first = 1;
                for (int64_t h = 0; h < b->heads; h++)
                    if (b->pruned[h]) {
                        sk_cli_info(&cli, 1, first ? "  removed %" PRId64 : " %" PRId64, h);
                        first = 0;
                    }
                sk_cli_info(&cli, 1, "\n");
                if (cli.verbosity >= 2) {
                    sk_cli_info(&cli, 2, "    scores");
                    for (int64_t h = 0; h < b->heads; h++) sk_cli_info(&cli, 2, " %.4g", b->scores[h]);
                    sk_cli_info(&cli, 2, "\n");
                }
            }
            sk_cli_info(&cli, 2, "  scoring %.2f s, compensation %.2f s, rewrite and check %.2f s\n", rep->score_seconds,
                        rep->comp_seconds, rep->rewrite_seconds);
        }
        rc = SK_EXIT_OK;
        goto run_done;
    fail:
        if (saved) {
            remove(out);
            if (ext) {
                char p[8192];
                const char *slash = strrchr(out, '/');
                snprintf(p, sizeof p, "%.*s%s", slash ? (int)(slash - out + 1) : 0, out, ext);
                remove(p);
            }
        }
        rc = sk_cli_fail(&cli, &err);
    run_done:
        sk_model_free(m);
        sk_model_free(pm);
        sk_quant_calib_free(calib);
        sk_prune_report_free(rep);
    }
done:
    free(picks);
    return rc;
}
