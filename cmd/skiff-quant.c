/* skiff-quant: post-training quantization of an ONNX model (dynamic int8,
 * static int8 QDQ with calibration, 4-bit block-wise weights). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sk_atomic.h"
#include "sk_cli.h"
#include "sk_model.h"
#include "sk_quant.h"
#include "sk_quant_calib.h"

static const char usage[] =
    "usage: skiff-quant IN -o OUT [--mode dynamic|static|int4] [options]\n"
    "\n"
    "Quantizes an ONNX model; the output runs in skiff's engine and in ONNX\n"
    "Runtime (CPU, web/wasm). Written atomically and deterministically.\n"
    "\n"
    "Modes:\n"
    "  --mode dynamic       int8 weights (symmetric, per output channel), activations\n"
    "                       quantized at run time: MatMul and Gemm become\n"
    "                       DynamicQuantizeLinear + MatMulInteger; large embedding\n"
    "                       tables become GatherBlockQuantized (default)\n"
    "  --mode static        QDQ model: int8 weights, uint8 activations with ranges\n"
    "                       measured on --calib samples in skiff's engine\n"
    "  --mode int4          4-bit weights in blocks along the input dimension\n"
    "                       (com.microsoft MatMulNBits; Gemm -> MatMulNBits + Add)\n"
    "\n"
    "Options:\n"
    "  -o OUT               output model (required)\n"
    "  --calib DIR          samples: one sub-folder per sample holding <input>.npy\n"
    "                       or input_N.pb files; required by static, makes int4\n"
    "                       activation-aware\n"
    "  --calib-samples N    use the first N samples of --calib\n"
    "  --calibrator NAME    minmax, percentile (default), entropy or mse\n"
    "  --percentile P       for the percentile calibrator (default 99.99)\n"
    "  --per-tensor         one scale per int8 weight instead of one per channel\n"
    "  --weight-type T      QInt8 (default) or QUInt8 (uint8 weights, zero points)\n"
    "  --block N            int4 block size: 32 (default), 64 or 128\n"
    "  --asym               int4 with zero points\n"
    "  --format F           int4 output: nbits (MatMulNBits, default) or qdq\n"
    "                       (opset-21 blocked int4 DequantizeLinear + MatMul)\n"
    "  --embed E            embedding tables: int8 (default), int4 or keep\n"
    "  --embed-min N        tables with fewer elements stay float (default 4096)\n"
    "  --exclude PATTERN    leave nodes whose name matches the glob float\n"
    "                       (repeatable; '*' crosses '/')\n"
    "  --op-types LIST      quantize only these op types (comma-separated:\n"
    "                       MatMul,Gemm,Gather; static also Add,Mul,Softmax,\n"
    "                       LayerNormalization,...)\n"
    "  --keep-io-float      nodes reading a graph input or writing a graph output\n"
    "                       stay float\n"
    "  --eval DIR           samples for the end-to-end check (default: --calib)\n"
    "  --report FILE        per-layer SQNR, sizes and end-to-end agreement as\n"
    "                       FILE.json or a self-contained FILE.html (repeatable)\n"
    "  --external-data F    write weights to F next to OUT\n"
    "  --threads N          worker threads (default: all cores)\n"
    "  --json               print a summary as JSON\n"
    "  -q, -v, -h/--help, -V/--version\n"
    "\n"
    "ONNX Runtime's spellings are accepted: --per_channel, --weight_type,\n"
    "--nodes_to_exclude, --op_types_to_quantize, --calibrate_method.\n"
    "\n"
    "Exit status: 0 ok, 1 bad input or failure, 2 usage error.\n";

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Size of a model file plus its external data files. */
static uint64_t model_bytes(const char *path, sk_model *m)
{
    uint64_t total = file_size(path);
    sk_graph_proto *g = sk_model_graph(m);
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    const char *seen[64];
    size_t n_seen = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        const sk_tensor_proto *t = g->initializer[i];
        if (!t->has_data_location || t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) continue;
        for (size_t k = 0; k < t->n_external_data; k++) {
            const char *key = t->external_data[k]->key, *v = t->external_data[k]->value;
            if (!key || !v || strcmp(key, "location")) continue;
            int dup = 0;
            for (size_t s = 0; s < n_seen && !dup; s++) dup = !strcmp(seen[s], v);
            if (dup || n_seen == 64) continue;
            seen[n_seen++] = v;
            char p[8192];
            snprintf(p, sizeof p, "%s/%s", dir, v);
            total += file_size(p);
        }
    }
    return total;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

/* Splits a comma-separated list into a malloc'd array of pointers into a copy. */
static int split_list(const char *s, char ***out, size_t *n, char **storage)
{
    *storage = strdup(s);
    if (!*storage) return -1;
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *out = calloc(cap, sizeof **out);
    if (!*out) return -1;
    *n = 0;
    for (char *tok = strtok(*storage, ","); tok; tok = strtok(NULL, ","))
        if (*tok) (*out)[(*n)++] = tok;
    return 0;
}

int main(int argc, char **argv)
{
    sk_cli cli = { "skiff-quant", usage, 1, 0 };
    sk_quant_opts o;
    sk_quant_opts_init(&o);
    const char *in = NULL, *out = NULL, *calib_dir = NULL, *eval_dir = NULL, *ext = NULL;
    const char *reports[8];
    size_t n_reports = 0;
    const char **excl = calloc((size_t)argc + 1, sizeof *excl);
    size_t n_excl = 0;
    char **optypes = NULL, *optypes_buf = NULL;
    size_t n_optypes = 0;
    uint64_t calib_n = 0;
    int opts_done = 0, rc;
    if (!excl) {
        fprintf(stderr, "skiff-quant: out of memory\n");
        return SK_EXIT_FAIL;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1]) {
            if (sk_cli_common(&cli, argc, argv, &i)) continue;
            if (!strcmp(a, "--")) { opts_done = 1; continue; }
            /* options with a value: --opt V or --opt=V */
            const char *val = NULL;
            char name[64];
            const char *eq = strchr(a, '=');
            if (eq && a[1] == '-' && (size_t)(eq - a) < sizeof name) {
                snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
                val = eq + 1;
            } else {
                snprintf(name, sizeof name, "%s", a);
            }
            static const char *const with_value[] = {
                "-o", "--output", "--mode", "--calib", "--calib-samples", "--calibrator", "--calibrate_method",
                "--percentile", "--weight-type", "--weight_type", "--block", "--block_size", "--format", "--embed",
                "--embed-min", "--exclude", "--nodes_to_exclude", "--op-types", "--op_types_to_quantize", "--eval",
                "--report", "--external-data", "--threads", NULL
            };
            int needs = 0;
            for (int k = 0; with_value[k]; k++) needs |= !strcmp(name, with_value[k]);
            if (needs && !val) {
                if (++i >= argc) { rc = sk_cli_usage_error(&cli, "%s needs a value", name); goto done; }
                val = argv[i];
            } else if (!needs && val) {
                rc = sk_cli_usage_error(&cli, "%s takes no value", name);
                goto done;
            }
            if (!strcmp(name, "-o") || !strcmp(name, "--output")) {
                out = val;
            } else if (!strcmp(name, "--mode")) {
                if (!strcmp(val, "dynamic")) o.mode = SK_QUANT_DYNAMIC;
                else if (!strcmp(val, "static")) o.mode = SK_QUANT_STATIC;
                else if (!strcmp(val, "int4")) o.mode = SK_QUANT_INT4;
                else { rc = sk_cli_usage_error(&cli, "--mode must be dynamic, static or int4, not '%s'", val); goto done; }
            } else if (!strcmp(name, "--calib")) {
                calib_dir = val;
            } else if (!strcmp(name, "--calib-samples")) {
                if (sk_cli_parse_u64(val, &calib_n) || !calib_n) {
                    rc = sk_cli_usage_error(&cli, "--calib-samples needs a positive number");
                    goto done;
                }
            } else if (!strcmp(name, "--calibrator") || !strcmp(name, "--calibrate_method")) {
                if (!strcasecmp(val, "minmax")) o.calibrator = SK_QUANT_CALIB_MINMAX;
                else if (!strcasecmp(val, "percentile")) o.calibrator = SK_QUANT_CALIB_PERCENTILE;
                else if (!strcasecmp(val, "entropy") || !strcasecmp(val, "kl")) o.calibrator = SK_QUANT_CALIB_ENTROPY;
                else if (!strcasecmp(val, "mse")) o.calibrator = SK_QUANT_CALIB_MSE;
                else { rc = sk_cli_usage_error(&cli, "--calibrator must be minmax, percentile, entropy or mse"); goto done; }
            } else if (!strcmp(name, "--percentile")) {
                char *end;
                o.percentile = strtod(val, &end);
                if (*end || !(o.percentile > 50 && o.percentile <= 100)) {
                    rc = sk_cli_usage_error(&cli, "--percentile must be a number in (50, 100]");
                    goto done;
                }
            } else if (!strcmp(name, "--per-tensor")) {
                o.per_tensor = 1;
            } else if (!strcmp(name, "--per_channel") || !strcmp(name, "--per-channel")) {
                o.per_tensor = 0;
            } else if (!strcmp(name, "--weight-type") || !strcmp(name, "--weight_type")) {
                if (!strcasecmp(val, "QInt8") || !strcasecmp(val, "int8")) o.weight_uint8 = 0;
                else if (!strcasecmp(val, "QUInt8") || !strcasecmp(val, "uint8")) o.weight_uint8 = 1;
                else { rc = sk_cli_usage_error(&cli, "--weight-type must be QInt8 or QUInt8"); goto done; }
            } else if (!strcmp(name, "--block") || !strcmp(name, "--block_size")) {
                uint64_t b;
                if (sk_cli_parse_u64(val, &b) || (b != 32 && b != 64 && b != 128 && b != 16 && b != 256)) {
                    rc = sk_cli_usage_error(&cli, "--block must be 32, 64 or 128");
                    goto done;
                }
                o.block = (int64_t)b;
            } else if (!strcmp(name, "--asym")) {
                o.asym = 1;
            } else if (!strcmp(name, "--format")) {
                if (!strcmp(val, "qdq") || !strcmp(val, "QDQ")) o.format = SK_QUANT_FORMAT_QDQ;
                else if (!strcmp(val, "nbits") || !strcmp(val, "MatMulNBits")) o.format = SK_QUANT_FORMAT_DEFAULT;
                else { rc = sk_cli_usage_error(&cli, "--format must be nbits or qdq"); goto done; }
            } else if (!strcmp(name, "--embed")) {
                if (!strcmp(val, "int8")) o.embed = SK_QUANT_EMBED_INT8;
                else if (!strcmp(val, "int4")) o.embed = SK_QUANT_EMBED_INT4;
                else if (!strcmp(val, "keep")) o.embed = SK_QUANT_EMBED_KEEP;
                else { rc = sk_cli_usage_error(&cli, "--embed must be int8, int4 or keep"); goto done; }
            } else if (!strcmp(name, "--embed-min")) {
                uint64_t v;
                if (sk_cli_parse_size(val, &v) || v > INT64_MAX) { rc = sk_cli_usage_error(&cli, "--embed-min needs a count"); goto done; }
                o.embed_min_elems = v ? (int64_t)v : 1;
            } else if (!strcmp(name, "--exclude") || !strcmp(name, "--nodes_to_exclude")) {
                excl[n_excl++] = val;
            } else if (!strcmp(name, "--op-types") || !strcmp(name, "--op_types_to_quantize")) {
                free(optypes);
                free(optypes_buf);
                if (split_list(val, &optypes, &n_optypes, &optypes_buf)) {
                    fprintf(stderr, "skiff-quant: out of memory\n");
                    rc = SK_EXIT_FAIL;
                    goto done;
                }
                if (!n_optypes) { rc = sk_cli_usage_error(&cli, "--op-types needs at least one op type"); goto done; }
            } else if (!strcmp(name, "--keep-io-float")) {
                o.keep_io_float = 1;
            } else if (!strcmp(name, "--eval")) {
                eval_dir = val;
            } else if (!strcmp(name, "--report")) {
                if (!ends_with(val, ".json") && !ends_with(val, ".html") && !ends_with(val, ".htm")) {
                    rc = sk_cli_usage_error(&cli, "--report needs a .json or .html file name, not '%s'", val);
                    goto done;
                }
                if (n_reports == sizeof reports / sizeof *reports) { rc = sk_cli_usage_error(&cli, "too many --report"); goto done; }
                reports[n_reports++] = val;
            } else if (!strcmp(name, "--external-data")) {
                if (strchr(val, '/') || !*val) {
                    rc = sk_cli_usage_error(&cli, "--external-data takes a plain file name (it goes next to OUT)");
                    goto done;
                }
                ext = val;
            } else if (!strcmp(name, "--threads")) {
                uint64_t t;
                if (sk_cli_parse_u64(val, &t) || !t || t > 256) { rc = sk_cli_usage_error(&cli, "--threads needs a number from 1 to 256"); goto done; }
                o.threads = (int)t;
            } else {
                rc = sk_cli_usage_error(&cli, "unknown option '%s'", a);
                goto done;
            }
            continue;
        }
        if (in) { rc = sk_cli_usage_error(&cli, "one input model at a time"); goto done; }
        in = a;
    }
    if (!in) { rc = sk_cli_usage_error(&cli, "no input model given"); goto done; }
    if (!out) { rc = sk_cli_usage_error(&cli, "no output given (-o OUT)"); goto done; }
    if (o.mode == SK_QUANT_STATIC && !calib_dir) {
        rc = sk_cli_usage_error(&cli, "--mode static needs calibration samples (--calib DIR)");
        goto done;
    }
    if (o.format == SK_QUANT_FORMAT_QDQ && o.mode != SK_QUANT_INT4) {
        rc = sk_cli_usage_error(&cli, "--format applies to --mode int4");
        goto done;
    }
    if ((o.asym || o.block != 32) && o.mode != SK_QUANT_INT4 && o.embed != SK_QUANT_EMBED_INT4) {
        rc = sk_cli_usage_error(&cli, "--asym and --block apply to --mode int4 (or --embed int4)");
        goto done;
    }
    o.exclude = excl;
    o.n_exclude = n_excl;
    o.op_types = (const char *const *)optypes;
    o.n_op_types = n_optypes;
    sk_atomic_install_signal_handlers();
    sk_cli_progress(&cli, &o.progress);

    {
        sk_error err = { 0 };
        sk_model *m = NULL, *ref = NULL, *qm = NULL;
        sk_quant_calib *calib = NULL, *evalset = NULL;
        sk_quant_report *rep = sk_quant_report_create();
        int saved = 0;
        rc = SK_EXIT_FAIL;
        if (!rep) {
            fprintf(stderr, "skiff-quant: out of memory\n");
            goto run_done;
        }
        if (sk_model_load(in, NULL, &m, &err)) goto fail;
        if (calib_dir && sk_quant_calib_open(calib_dir, (size_t)calib_n, &calib, &err)) goto fail;
        if (eval_dir && sk_quant_calib_open(eval_dir, 0, &evalset, &err)) goto fail;
        o.calib = calib;
        rep->file_bytes_before = model_bytes(in, m);
        sk_cli_info(&cli, 2, "%s: quantizing (%s)\n", in,
                    o.mode == SK_QUANT_DYNAMIC ? "dynamic" : o.mode == SK_QUANT_STATIC ? "static" : "int4");
        if (sk_quant_model(m, &o, rep, &err)) {
            if (err.msg[0] && strncmp(err.msg, in, strlen(in))) sk_error_prefix(&err, "%s: ", in);
            goto fail;
        }
        /* the end-to-end check runs on the model in memory, before anything is written */
        const sk_quant_calib *es = evalset ? evalset : calib;
        if (es && (n_reports || evalset || cli.json || cli.verbosity >= 2)) {
            if (sk_model_load(in, NULL, &ref, &err)) goto fail;
            if (sk_quant_eval(ref, m, es, o.threads, evalset ? "eval" : "calib", rep, &err)) goto fail;
        }
        sk_save_opts so = { 0 };
        so.external_data = ext;
        if (sk_model_save(m, out, &so, &err)) goto fail;
        saved = 1;
        sk_model_free(m);
        m = NULL;
        if (sk_model_load(out, &(sk_load_opts){ 1, 0 }, &qm, &err)) goto fail;
        rep->file_bytes_after = model_bytes(out, qm);
        for (size_t i = 0; i < n_reports; i++) {
            sk_status s = ends_with(reports[i], ".json") ? sk_quant_report_write_json(rep, reports[i], &err)
                                                         : sk_quant_report_write_html(rep, reports[i], &err);
            if (s) goto fail;
        }
        if (cli.json) {
            printf("{\"input\": ");
            sk_json_str(stdout, in);
            printf(", \"output\": ");
            sk_json_str(stdout, out);
            printf(", \"mode\": ");
            sk_json_str(stdout, rep->mode);
            printf(", \"layers\": %zu, \"skipped\": %zu, \"bytes_before\": %" PRIu64 ", \"bytes_after\": %" PRIu64
                   ", \"ratio\": %.4f, \"seconds\": %.3f",
                   rep->n_layers, rep->n_skipped, rep->file_bytes_before, rep->file_bytes_after,
                   rep->file_bytes_before ? (double)rep->file_bytes_after / (double)rep->file_bytes_before : 0.0,
                   rep->seconds);
            if (rep->n_outputs) {
                printf(", \"agreement\": {\"samples\": %zu, \"outputs\": [", rep->eval_samples);
                for (size_t i = 0; i < rep->n_outputs; i++) {
                    const sk_quant_output_agreement *a = &rep->outputs[i];
                    printf("%s{\"name\": ", i ? ", " : "");
                    sk_json_str(stdout, a->name);
                    printf(", \"cosine_min\": %.6f, \"cosine_mean\": %.6f, \"max_abs\": %.6g, \"top1\": %.4f}",
                           a->cosine_min, a->cosine_mean, a->max_abs, a->top1);
                }
                printf("]}");
            }
            printf("}\n");
        } else {
            char b1[32], b2[32];
            sk_cli_info(&cli, 1, "%s: %zu layers quantized (%s), %s -> %s (%.2fx) in %.2f s\n", out, rep->n_layers,
                        rep->mode, sk_human_bytes(rep->file_bytes_before, b1, sizeof b1),
                        sk_human_bytes(rep->file_bytes_after, b2, sizeof b2),
                        rep->file_bytes_before ? (double)rep->file_bytes_after / (double)rep->file_bytes_before : 0.0,
                        rep->seconds);
            for (size_t i = 0; i < rep->n_outputs; i++) {
                const sk_quant_output_agreement *a = &rep->outputs[i];
                sk_cli_info(&cli, 1, "  %s vs float on %zu %s samples: cosine min %.5f mean %.5f, max abs error %.4g",
                            a->name, rep->eval_samples, rep->eval_source, a->cosine_min, a->cosine_mean, a->max_abs);
                if (a->top1 >= 0) sk_cli_info(&cli, 1, ", top-1 agreement %.4f", a->top1);
                sk_cli_info(&cli, 1, "\n");
            }
            for (size_t i = 0; i < rep->n_skipped; i++)
                sk_cli_info(&cli, 2, "  kept float: %s: %s\n", rep->skipped[i].node, rep->skipped[i].reason);
            for (size_t i = 0; i < rep->n_layers; i++)
                sk_cli_info(&cli, 2, "  %-60s %-28s %6.1f dB\n", rep->layers[i].node, rep->layers[i].scheme,
                            rep->layers[i].sqnr_db);
        }
        rc = SK_EXIT_OK;
        goto run_done;
    fail:
        /* a failure after the save (a report that cannot be written)
         * removes what this run wrote */
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
        sk_model_free(ref);
        sk_model_free(qm);
        sk_quant_calib_free(calib);
        sk_quant_calib_free(evalset);
        sk_quant_report_free(rep);
    }
done:
    free(excl);
    free(optypes);
    free(optypes_buf);
    return rc;
}
