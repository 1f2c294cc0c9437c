/* skiff: the front door. `skiff` lists the tools, `skiff TOOL ARGS` runs
 * skiff-TOOL, and `skiff build` runs the whole pipeline (pipeline/sk_build.h). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sk_atomic.h"
#include "sk_build.h"
#include "sk_cli.h"
#include "sk_pack.h"
#include "sk_sign.h"

#define PASSWORD_ENV "SKIFF_PASSWORD"

static const struct tool {
    const char *name, *what;
} tools[] = {
    { "build", "model to signed package in one run: prune, quantize, evaluate, pack, sign, verify" },
    { "inspect", "what a model holds: ops, weights, inputs and outputs, attention blocks" },
    { "convert", "round trip, weights to/from external data, float16 weights" },
    { "run", "run a model in skiff's engine (.npy/.pb in and out, ONNX test sets, benchmarks)" },
    { "quant", "post-training int8 (dynamic, static) and int4 quantization" },
    { "prune", "remove whole attention heads, scored on calibration samples" },
    { "keygen", "an Ed25519 key pair in minisign's formats" },
    { "pack", "shard, compress and sign a model into a package folder" },
    { "sign", "sign a package folder" },
    { "verify", "check a package: signature, manifest, every file's size and hash" },
    { "unpack", "verify a package and write a plain ONNX model with external data" },
};

static const char usage[] =
    "usage: skiff TOOL [ARGS...]       runs skiff-TOOL (skiff TOOL --help for its options)\n"
    "       skiff build RECIPE [options]\n"
    "       skiff build MODEL -o PKGDIR [options]\n"
    "       skiff [--json]             lists the tools\n"
    "\n"
    "skiff turns an ONNX model into a small, sharded, compressed and signed\n"
    "package a web page fetches, verifies and runs. See skiff(1).\n";

static const char build_usage[] =
    "usage: skiff build RECIPE [options]\n"
    "       skiff build MODEL -o PKGDIR [options]\n"
    "\n"
    "Prunes, quantizes, evaluates, packs, signs and verifies in one run. RECIPE\n"
    "is a TOML file (docs/recipe.md) whose relative paths start at its folder; a\n"
    "file ending in .onnx is a model and the options say the rest. Options given\n"
    "here override the recipe's values. The final model is evaluated against the\n"
    "original on the evaluation samples; when a threshold is missed nothing is\n"
    "written and the exit status is 3. The package is written next to PKGDIR,\n"
    "verified, unpacked and run once, and only then renamed to PKGDIR.\n"
    "\n"
    "  -o, --output PKGDIR       the package folder\n"
    "  --name NAME               model name (default: from the model's file name)\n"
    "  --version N               release number, must grow with every release\n"
    "                            (default: the creation time in Unix seconds)\n"
    "  -f, --force               replace an existing PKGDIR\n"
    "  --prune SHARE|N           remove attention heads: a share (25%) or a count\n"
    "  --prune-score METHOD      ablation (default) or activation\n"
    "  --compensate MODE         auto (default), bias, lsq or none\n"
    "  --quant MODE              int8 (dynamic), int8-static, int4 or none\n"
    "  --block N                 int4 block size (16, 32, 64, 128; default 32)\n"
    "  --calib DIR               calibration samples (skiff-quant's format), for\n"
    "                            pruning and quantization\n"
    "  --eval DIR                evaluation samples (default: the calibration samples)\n"
    "  --labels FILE.npy         the expected class of each evaluation row\n"
    "  --output-name NAME        the output evaluated (default: the first float one)\n"
    "  --max-accuracy-drop X     fail when accuracy drops more than X (0.01 or 1%);\n"
    "                            without labels, 1 - top-1 agreement is checked\n"
    "  --min-cosine X            fail when the mean cosine with the original is below X\n"
    "  --shard-size SIZE         largest shard (default 4MiB)\n"
    "  --codec CODEC             brotli (default), zstd or none\n"
    "  --level N                 codec level\n"
    "  -s, --secret-key FILE     sign with this key (default: the recipe's [sign] key)\n"
    "  --password-file FILE      the key's password, first line of FILE (else\n"
    "                            $" PASSWORD_ENV ", else asked on the terminal)\n"
    "  --unsigned                no signature, even if the recipe names a key\n"
    "  --report FILE.json        also write the JSON summary to FILE.json\n"
    "  -T, --threads N           threads (default: all cores)\n"
    "  --json                    print the summary as JSON on stdout\n"
    "  -q, -v, -h/--help, -V     quieter, more verbose, this help, skiff's version\n"
    "\n"
    "The creation time is $SOURCE_DATE_EPOCH when set, else now.\n"
    "Exit status: 0 ok, 1 bad input or a failed stage, 2 usage error,\n"
    "3 a quality threshold was missed (no package written).\n";

/* ---- running a tool ------------------------------------------------------ */

/* The folder of this executable, with a trailing '/', or "" if unknown. */
static void self_dir(char *out, size_t cap)
{
    out[0] = 0;
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (slash && (size_t)(slash - buf + 2) <= cap) {
        slash[1] = 0;
        snprintf(out, cap, "%s", buf);
    }
}

static int tool_path(const char *name, char *out, size_t cap)
{
    char dir[PATH_MAX];
    self_dir(dir, sizeof dir);
    if (dir[0]) {
        snprintf(out, cap, "%sskiff-%s", dir, name);
        if (access(out, X_OK) == 0) return 1;
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        snprintf(out, cap, "%.*s%sskiff-%s", (int)n, n ? path : ".", "/", name);
        if (access(out, X_OK) == 0) return 1;
        path = end ? end + 1 : NULL;
    }
    return 0;
}

static int list_tools_json(void)
{
    char p[PATH_MAX];
    printf("{\"version\": \"%s\", \"tools\": [", SK_VERSION);
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
        int have = !strcmp(tools[i].name, "build") || tool_path(tools[i].name, p, sizeof p);
        printf("%s{\"name\": \"%s\", \"what\": ", i ? ", " : "", tools[i].name);
        sk_json_str(stdout, tools[i].what);
        printf(", \"installed\": %s}", have ? "true" : "false");
    }
    printf("]}\n");
    return SK_EXIT_OK;
}

static int list_tools(void)
{
    printf("usage: skiff TOOL [ARGS...]  (skiff TOOL --help for a tool's options)\n\ntools:\n");
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
        int have = !strcmp(tools[i].name, "build") || tool_path(tools[i].name, p, sizeof p);
        printf("  %-8s %s%s\n", tools[i].name, tools[i].what, have ? "" : " (not installed)");
    }
    printf("\nskiff %s. See skiff(1), and docs/ for the package format and the recipe format.\n", SK_VERSION);
    return SK_EXIT_OK;
}

static int run_tool(const char *name, int argc, char **argv)
{
    int known = 0;
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) known |= !strcmp(tools[i].name, name);
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) known = 0;
    char p[PATH_MAX];
    if (!known && !tool_path(name, p, sizeof p)) {
        fprintf(stderr, "skiff: '%s' is not a skiff tool (run skiff alone for the list)\n", name);
        return SK_EXIT_USAGE;
    }
    if (!tool_path(name, p, sizeof p)) {
        fprintf(stderr, "skiff: skiff-%s is not installed next to skiff or on PATH\n", name);
        return SK_EXIT_FAIL;
    }
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args) {
        fprintf(stderr, "skiff: out of memory\n");
        return SK_EXIT_FAIL;
    }
    char prog[64];
    snprintf(prog, sizeof prog, "skiff-%s", name);
    args[0] = prog;
    for (int i = 0; i < argc; i++) args[i + 1] = argv[i];
    execv(p, args);
    fprintf(stderr, "skiff: cannot run %s: %s\n", p, strerror(errno));
    free(args);
    return SK_EXIT_FAIL;
}

/* ---- skiff build --------------------------------------------------------- */

static int load_key(const sk_cli *cli, const char *path, const char *password_file, sk_key_sec **key)
{
    sk_error err = { 0 };
    return sk_key_sec_load_asking(path, password_file, PASSWORD_ENV, key, &err) ? sk_cli_fail(cli, &err) : 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* "25%" (a share) or "8" (a count). */
static int parse_heads(const char *v, sk_build_opts *o)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || errno) return -1;
    if (!strcmp(end, "%")) {
        if (!(d > 0 && d < 100)) return -1;
        o->prune_percent = d;
        return 0;
    }
    uint64_t n;
    if (sk_cli_parse_u64(v, &n) || n < 1 || n > (1u << 20)) return -1;
    o->prune_heads = (int64_t)n;
    o->prune_percent = -1;
    return 0;
}

static int parse_share(const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || errno || !isfinite(d)) return -1;
    if (!strcmp(end, "%")) d /= 100;
    else if (*end) return -1;
    *out = d;
    return 0;
}

/* Stage lines go to stdout (the tool's output; --json replaces them),
 * warnings and errors to stderr. */
static void print_note(void *user, const char *stage, const char *line)
{
    const sk_cli *cli = user;
    if (cli->json || cli->verbosity < 1) return;
    printf("%-9s %s\n", stage, line);
    fflush(stdout);
}

static void json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v)) fprintf(f, ", \"%s\": %.6g", key, v);
    else fprintf(f, ", \"%s\": null", key);
}

static void write_json(FILE *f, const sk_build_opts *o, const sk_build_result *r, const char *status)
{
    fprintf(f, "{\"status\": \"%s\", \"model\": ", status);
    sk_json_str(f, o->model);
    fprintf(f, ", \"package\": ");
    sk_json_str(f, o->output);
    fprintf(f, ", \"params_before\": %llu, \"params_after\": %llu", (unsigned long long)r->params_before,
            (unsigned long long)r->params_after);
    if (r->prune)
        fprintf(f, ", \"prune\": {\"heads_total\": %lld, \"heads_removed\": %lld, \"score\": \"%s\", \"compensate\": \"%s\", "
                "\"samples\": %zu, \"seconds\": %.3f}",
                (long long)r->prune->heads_total, (long long)r->prune->heads_removed, r->prune->score,
                r->prune->compensate, r->prune->samples, r->t_prune);
    if (r->quant) {
        fprintf(f, ", \"quant\": {\"mode\": ");
        sk_json_str(f, r->quant->mode);
        fprintf(f, ", \"layers\": %zu, \"skipped\": %zu, \"seconds\": %.3f}", r->quant->n_layers, r->quant->n_skipped,
                r->t_quant);
    }
    if (r->evaluated) {
        const sk_eval_result *e = &r->eval;
        fprintf(f, ", \"eval\": {\"output\": ");
        sk_json_str(f, e->output);
        fprintf(f, ", \"samples\": %zu, \"rows\": %llu", e->samples, (unsigned long long)e->rows);
        json_num(f, "cosine_mean", e->cosine_mean);
        json_num(f, "cosine_min", e->cosine_min);
        json_num(f, "max_abs", e->max_abs);
        json_num(f, "top1_agreement", e->agreement);
        fprintf(f, ", \"labels\": %s", e->has_labels ? "true" : "false");
        if (e->has_labels) {
            json_num(f, "accuracy_original", e->acc_ref);
            json_num(f, "accuracy", e->acc_model);
        }
        json_num(f, "accuracy_drop", e->accuracy_drop);
        json_num(f, "max_accuracy_drop", o->max_accuracy_drop);
        json_num(f, "min_cosine", o->min_cosine);
        fprintf(f, ", \"seconds\": %.3f}", r->t_eval);
    }
    if (r->gate_failed) {
        fprintf(f, ", \"gate\": ");
        sk_json_str(f, r->gate);
    }
    if (!strcmp(status, "ok"))
        fprintf(f, ", \"pack\": {\"version\": %llu, \"shards\": %zu, \"raw_bytes\": %llu, \"package_bytes\": %llu, "
                "\"codec\": \"%s\", \"signed\": %s, \"seconds\": %.3f, \"verify_seconds\": %.3f}",
                (unsigned long long)r->pack.version, r->pack.n_shards, (unsigned long long)r->pack.raw_bytes,
                (unsigned long long)r->package_bytes, sk_codec_name(o->codec), r->is_signed ? "true" : "false",
                r->t_pack, r->t_verify);
    fprintf(f, ", \"seconds\": %.3f}\n", r->t_total);
}

static int build_main(int argc, char **argv)
{
    sk_cli cli = { "skiff build", build_usage, 1, 0 };
    sk_build_opts o;
    sk_build_opts_init(&o);
    sk_error err = { 0 };
    int rc = SK_EXIT_USAGE;
    const char *first = NULL, *out = NULL, *name = NULL, *key_path = NULL, *password_file = NULL, *report = NULL;
    const char *calib = NULL, *eval = NULL, *labels = NULL, *out_name = NULL, *prune = NULL;
    int have_quant = 0, unsigned_pkg = 0, force = 0, have_codec = 0, have_level = 0, have_shard = 0;
    int have_score = 0, have_comp = 0;
    sk_build_quant quant = SK_BUILD_QUANT_NONE;
    sk_prune_score score = SK_PRUNE_SCORE_ABLATION;
    sk_prune_comp comp = SK_PRUNE_COMP_AUTO;
    uint64_t version = 0, threads = 0, level = 0, shard = 0, block = 0;
    double max_drop = NAN, min_cos = NAN;
    sk_codec codec = SK_CODEC_BROTLI;
    sk_key_sec *key = NULL;
    sk_build_result res;
    memset(&res, 0, sizeof res);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' || !a[1]) {
            if (first) {
                rc = sk_cli_usage_error(&cli, "one recipe or model at a time ('%s' and '%s')", first, a);
                goto done;
            }
            first = a;
            continue;
        }
        if (!strcmp(a, "--version") && v && v[0] >= '0' && v[0] <= '9') {
            if (sk_cli_parse_u64(v, &version) || version < 1 || version > SK_MANIFEST_MAX_INT) {
                rc = sk_cli_usage_error(&cli, "--version needs a positive integer below 2^53");
                goto done;
            }
            i++;
            continue;
        }
        if (sk_cli_common(&cli, argc, argv, &i)) continue;
        /* options that take a value */
        static const char *const with_value[] = { "-o", "--output", "--name", "--prune", "--prune-score", "--compensate",
                                                  "--quant", "--block", "--calib", "--eval", "--labels", "--output-name",
                                                  "--max-accuracy-drop", "--min-cosine", "--shard-size", "--codec",
                                                  "--level", "-s", "--secret-key", "--password-file", "--report", "-T",
                                                  "--threads" };
        int takes = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) takes |= !strcmp(a, with_value[k]);
        if (takes && !v) {
            rc = sk_cli_usage_error(&cli, "%s needs a value", a);
            goto done;
        }
        if (takes) i++;
        int bad = 0;
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--name")) {
            name = v;
            bad = !sk_manifest_model_name_ok(v);
        } else if (!strcmp(a, "--prune")) {
            prune = v;
            bad = parse_heads(v, &(sk_build_opts){ 0 });
        } else if (!strcmp(a, "--prune-score")) {
            have_score = 1;
            if (!strcmp(v, "ablation")) score = SK_PRUNE_SCORE_ABLATION;
            else if (!strcmp(v, "activation")) score = SK_PRUNE_SCORE_ACTIVATION;
            else bad = 1;
        } else if (!strcmp(a, "--compensate")) {
            have_comp = 1;
            if (!strcmp(v, "auto")) comp = SK_PRUNE_COMP_AUTO;
            else if (!strcmp(v, "bias")) comp = SK_PRUNE_COMP_BIAS;
            else if (!strcmp(v, "lsq")) comp = SK_PRUNE_COMP_LSQ;
            else if (!strcmp(v, "none")) comp = SK_PRUNE_COMP_NONE;
            else bad = 1;
        } else if (!strcmp(a, "--quant")) {
            have_quant = 1;
            bad = sk_build_quant_from_name(v, &quant);
        } else if (!strcmp(a, "--block")) {
            bad = sk_cli_parse_u64(v, &block) || (block != 16 && block != 32 && block != 64 && block != 128);
        } else if (!strcmp(a, "--calib")) calib = v;
        else if (!strcmp(a, "--eval")) eval = v;
        else if (!strcmp(a, "--labels")) labels = v;
        else if (!strcmp(a, "--output-name")) out_name = v;
        else if (!strcmp(a, "--max-accuracy-drop")) bad = parse_share(v, &max_drop) || max_drop < 0 || max_drop > 1;
        else if (!strcmp(a, "--min-cosine")) bad = parse_share(v, &min_cos) || min_cos < -1 || min_cos > 1;
        else if (!strcmp(a, "--shard-size")) {
            have_shard = 1;
            bad = sk_cli_parse_size(v, &shard) || shard < SK_MANIFEST_MIN_SHARD_SIZE || shard > SK_MANIFEST_MAX_FILE_SIZE;
        } else if (!strcmp(a, "--codec")) {
            have_codec = 1;
            bad = sk_codec_from_name(v, &codec);
        } else if (!strcmp(a, "--level")) {
            have_level = 1;
            bad = sk_cli_parse_u64(v, &level) || level > 22;
        } else if (!strcmp(a, "-s") || !strcmp(a, "--secret-key")) key_path = v;
        else if (!strcmp(a, "--password-file")) password_file = v;
        else if (!strcmp(a, "--report")) report = v;
        else if (!strcmp(a, "-T") || !strcmp(a, "--threads")) bad = sk_cli_parse_u64(v, &threads) || threads > 1024;
        else if (!strcmp(a, "--unsigned")) unsigned_pkg = 1;
        else if (!strcmp(a, "-f") || !strcmp(a, "--force")) force = 1;
        else {
            rc = sk_cli_usage_error(&cli, "unknown option '%s'", a);
            goto done;
        }
        if (bad) {
            rc = sk_cli_usage_error(&cli, "%s: '%s' is not a valid value", a, v);
            goto done;
        }
    }
    if (!first) {
        rc = sk_cli_usage_error(&cli, "no recipe or model given");
        goto done;
    }
    if (key_path && unsigned_pkg) {
        rc = sk_cli_usage_error(&cli, "-s and --unsigned contradict each other");
        goto done;
    }
    rc = SK_EXIT_FAIL;
    if (ends_with(first, ".onnx")) {
        if (sk_build_set(&o.model, first, &err)) goto fail;
    } else if (sk_build_recipe_load(first, &o, &err)) {
        goto fail;
    }
    /* the command line overrides the recipe */
    if ((out && sk_build_set(&o.output, out, &err)) || (name && sk_build_set(&o.name, name, &err))) goto fail;
    if (version) o.version = version;
    if (force) o.force = 1;
    if (prune) {
        o.prune = 1;
        parse_heads(prune, &o);
    }
    if (have_score) o.prune_score = score;
    if (have_comp) o.prune_comp = comp;
    if (have_quant) o.quant = quant;
    if (block) o.block = (int64_t)block;
    if (calib) {
        if (sk_build_set(&o.quant_calib, calib, &err) || sk_build_set(&o.prune_calib, calib, &err)) goto fail;
    }
    if ((eval && sk_build_set(&o.eval_samples, eval, &err)) || (labels && sk_build_set(&o.eval_labels, labels, &err)) ||
        (out_name && sk_build_set(&o.eval_output, out_name, &err)))
        goto fail;
    if (!isnan(max_drop)) o.max_accuracy_drop = max_drop;
    if (!isnan(min_cos)) o.min_cosine = min_cos;
    if (have_shard) o.shard_size = shard;
    if (have_codec) o.codec = codec;
    if (have_level) o.level = (int)level;
    if (threads) o.threads = (int)threads;
    if (!o.output) {
        rc = sk_cli_usage_error(&cli, "no package folder given (-o PKGDIR, or output in the recipe)");
        goto done;
    }
    if (!o.model) {
        rc = sk_cli_usage_error(&cli, "the recipe names no model (model = \"...\")");
        goto done;
    }
    if (o.prune && !o.prune_calib) {
        rc = sk_cli_usage_error(&cli, "pruning needs calibration samples (--calib DIR, or calib in [prune])");
        goto done;
    }
    if (o.level >= 0) {
        int lmin, lmax;
        sk_codec_level_range(o.codec, &lmin, &lmax);
        if (o.level < lmin || o.level > lmax) {
            rc = sk_cli_usage_error(&cli, "level %d is out of range for %s (%d to %d)", o.level, sk_codec_name(o.codec),
                                    lmin, lmax);
            goto done;
        }
    }
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde) {
        uint64_t t;
        if (sk_cli_parse_u64(sde, &t) || t > 253402300799ull) {
            fprintf(stderr, "skiff build: SOURCE_DATE_EPOCH='%s' is not a time in Unix seconds\n", sde);
            goto done;
        }
        o.created = (int64_t)t;
    } else {
        o.created = (int64_t)time(NULL);
    }
    if (!unsigned_pkg && (key_path || o.key_path)) {
        if (load_key(&cli, key_path ? key_path : o.key_path, password_file, &key)) goto done;
        o.key = key;
    } else if (!unsigned_pkg) {
        sk_cli_info(&cli, 1, "skiff build: warning: no signing key (-s, or key in [sign]): the package will be unsigned, "
                             "and skiff's browser runtime refuses unsigned packages\n");
    }
    sk_pack_install_signal_handlers();
    sk_cli_progress(&cli, &o.progress);
    o.note = print_note;
    o.note_user = &cli;
    if (sk_build_run(&o, &res, &err)) goto fail;
    const char *status = res.gate_failed ? "gate_failed" : "ok";
    if (report) {
        sk_atomic_file af;
        if (sk_atomic_open(&af, report, 0644, &err)) goto fail;
        write_json(af.f, &o, &res, status);
        if (sk_atomic_commit(&af, 0, &err)) goto fail;
    }
    if (cli.json) write_json(stdout, &o, &res, status);
    if (res.gate_failed) {
        fprintf(stderr, "skiff build: %s; no package written\n", res.gate);
        rc = 3;
        goto done;
    }
    char b1[32];
    if (!cli.json && cli.verbosity >= 1)
        printf("skiff build: %s ready (%s, %s) in %.1f s\n", o.output, sk_human_bytes(res.package_bytes, b1, sizeof b1),
               res.is_signed ? "signed" : "unsigned", res.t_total);
    rc = SK_EXIT_OK;
    goto done;
fail:
    rc = sk_cli_fail(&cli, &err);
done:
    sk_build_result_free(&res);
    sk_key_sec_free(key);
    sk_build_opts_free(&o);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) return list_tools();
    const char *a = argv[1];
    if (!strcmp(a, "-h") || !strcmp(a, "--help") || !strcmp(a, "help")) {
        if (argc > 2 && strcmp(a, "help") == 0) {
            char *args[] = { "--help" };
            if (!strcmp(argv[2], "build")) {
                fputs(build_usage, stdout);
                return SK_EXIT_OK;
            }
            return run_tool(argv[2], 1, args);
        }
        fputs(usage, stdout);
        return list_tools();
    }
    if (!strcmp(a, "--json") && argc == 2) return list_tools_json();
    if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
        printf("skiff %s\n", SK_VERSION);
        return SK_EXIT_OK;
    }
    if (a[0] == '-') {
        fprintf(stderr, "skiff: unknown option '%s' (skiff --help)\n", a);
        return SK_EXIT_USAGE;
    }
    if (!strcmp(a, "build")) return build_main(argc - 2, argv + 2);
    return run_tool(a, argc - 2, argv + 2);
}
