/* skiff-pack: turns an ONNX model into a package folder (docs/format.md):
 * model.onnx, compressed weight shards, manifest.json, signatures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sk_cli.h"
#include "sk_model.h"
#include "sk_pack.h"
#include "sk_sign.h"

#define PASSWORD_ENV "SKIFF_PASSWORD"

static const char usage[] =
    "usage: skiff-pack MODEL -o PKGDIR [options]\n"
    "\n"
    "Writes a package folder a browser fetches progressively and checks: model.onnx\n"
    "(the graph, weights as external data), the weights in compressed shards laid\n"
    "out in the order inference first needs them, and manifest.json (sizes, SHA-256\n"
    "and SRI hashes of every file, the tensor map), signed when a key is given.\n"
    "Reproducible: the same model, options, key and SOURCE_DATE_EPOCH give the\n"
    "same bytes. Written atomically (a temporary folder renamed at the end).\n"
    "\n"
    "  -o, --output PKGDIR     the package folder to create\n"
    "  --shard-size SIZE       largest shard (default 4MiB; suffixes K, M, KiB, MiB);\n"
    "                          a single tensor larger than this gets a shard of its own\n"
    "  --codec CODEC           brotli (default), zstd or none\n"
    "  --level N               codec level (brotli 0-11, default 9; zstd 1-22, default 19)\n"
    "  --float-level N         brotli level of float tensors (0-11; default: 10 when they\n"
    "                          are at most a quarter of the weights, as in quantized\n"
    "                          models, else the level; --level alone sets both)\n"
    "  --name NAME             model name (default: the file's name, or its folder's\n"
    "                          when the file is model.onnx)\n"
    "  --version N             release number, must grow with every release\n"
    "                          (default: the creation time in Unix seconds)\n"
    "  --external-min SIZE     weights smaller than this stay in model.onnx (default 1KiB)\n"
    "  -s, --secret-key FILE   sign with this key (skiff-keygen or minisign -G)\n"
    "  --password-file FILE    the key's password, first line of FILE (else $" PASSWORD_ENV ",\n"
    "                          else asked on the terminal)\n"
    "  -T, --threads N         compression threads (default: one per core)\n"
    "  -f, --force             replace an existing PKGDIR\n"
    "  --json                  print a summary as JSON\n"
    "  -q, -v, -h/--help\n"
    "  -V, --version           print skiff's version (--version N sets the model's)\n"
    "\n"
    "The creation time is $SOURCE_DATE_EPOCH when set, else now.\n"
    "Exit status: 0 ok, 1 bad input or failure, 2 usage error.\n";

static int created_time(const sk_cli *cli, int64_t *out)
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (!sde) {
        *out = (int64_t)time(NULL);
        return 0;
    }
    uint64_t v;
    if (sk_cli_parse_u64(sde, &v) || v > 253402300799ull) {
        fprintf(stderr, "%s: SOURCE_DATE_EPOCH='%s' is not a time in Unix seconds\n", cli->prog, sde);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static int load_key(const sk_cli *cli, const char *path, const char *password_file, sk_key_sec **key)
{
    sk_error err = { 0 };
    return sk_key_sec_load_asking(path, password_file, PASSWORD_ENV, key, &err) ? sk_cli_fail(cli, &err) : 0;
}

int main(int argc, char **argv)
{
    sk_cli cli = { "skiff-pack", usage, 1, 0 };
    const char *in = NULL, *out = NULL, *name = NULL, *key_path = NULL, *password_file = NULL;
    uint64_t shard_size = SK_PACK_DEFAULT_SHARD_SIZE, ext_min = SK_PACK_DEFAULT_EXTERNAL_MIN, version = 0, threads = 0;
    uint64_t level = 0, float_level = 0;
    int have_level = 0, have_float_level = 0, force = 0, opts_done = 0;
    sk_codec codec = SK_CODEC_BROTLI;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1]) {
            const char *v = i + 1 < argc ? argv[i + 1] : NULL;
            /* --version N is the model's version; --version alone (or -V)
             * prints skiff's */
            if (!strcmp(a, "--version") && v && v[0] >= '0' && v[0] <= '9') {
                if (sk_cli_parse_u64(v, &version) || version < 1)
                    return sk_cli_usage_error(&cli, "--version needs a positive integer");
                i++;
                continue;
            }
            if (sk_cli_common(&cli, argc, argv, &i)) continue;
            if (!strcmp(a, "--")) { opts_done = 1; continue; }
            if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
                if (!v) return sk_cli_usage_error(&cli, "%s needs a folder", a);
                out = argv[++i];
            } else if (!strcmp(a, "--float-level")) {
                if (!v || sk_cli_parse_u64(v, &float_level) || float_level > 11)
                    return sk_cli_usage_error(&cli, "--float-level needs a Brotli level, 0 to 11");
                have_float_level = 1;
                i++;
            } else if (!strcmp(a, "--shard-size")) {
                if (!v || sk_cli_parse_size(v, &shard_size)) return sk_cli_usage_error(&cli, "--shard-size needs a size such as 4MiB");
                i++;
            } else if (!strcmp(a, "--external-min")) {
                if (!v || sk_cli_parse_size(v, &ext_min)) return sk_cli_usage_error(&cli, "--external-min needs a size");
                i++;
            } else if (!strcmp(a, "--codec")) {
                if (!v || sk_codec_from_name(v, &codec)) return sk_cli_usage_error(&cli, "--codec needs brotli, zstd or none");
                i++;
            } else if (!strcmp(a, "--level")) {
                if (!v || sk_cli_parse_u64(v, &level) || level > 100) return sk_cli_usage_error(&cli, "--level needs a number");
                have_level = 1;
                i++;
            } else if (!strcmp(a, "--name")) {
                if (!v) return sk_cli_usage_error(&cli, "--name needs a name");
                name = argv[++i];
            } else if (!strcmp(a, "-s") || !strcmp(a, "--secret-key")) {
                if (!v) return sk_cli_usage_error(&cli, "%s needs a key file", a);
                key_path = argv[++i];
            } else if (!strcmp(a, "--password-file")) {
                if (!v) return sk_cli_usage_error(&cli, "--password-file needs a file");
                password_file = argv[++i];
            } else if (!strcmp(a, "-T") || !strcmp(a, "--threads")) {
                if (!v || sk_cli_parse_u64(v, &threads) || threads > 1024) return sk_cli_usage_error(&cli, "%s needs a number", a);
                i++;
            } else if (!strcmp(a, "-f") || !strcmp(a, "--force")) {
                force = 1;
            } else {
                return sk_cli_usage_error(&cli, "unknown option '%s'", a);
            }
            continue;
        }
        if (in) return sk_cli_usage_error(&cli, "one model at a time");
        in = a;
    }
    if (!in) return sk_cli_usage_error(&cli, "no model given");
    if (!out) return sk_cli_usage_error(&cli, "no package folder given (-o PKGDIR)");
    if (password_file && !key_path) return sk_cli_usage_error(&cli, "--password-file without -s");
    int lmin, lmax;
    sk_codec_level_range(codec, &lmin, &lmax);
    if (have_level && ((int)level < lmin || (int)level > lmax))
        return sk_cli_usage_error(&cli, "--level %d is out of range for %s (%d to %d)", (int)level, sk_codec_name(codec), lmin, lmax);
    if (have_float_level && codec != SK_CODEC_BROTLI)
        return sk_cli_usage_error(&cli, "--float-level is for --codec brotli only");
    uint64_t eff_level = have_level ? level : (uint64_t)sk_codec_default_level(codec);
    if (have_float_level && float_level != eff_level && (float_level < 2 || eff_level < 2))
        return sk_cli_usage_error(&cli, "--float-level and --level must both be 2 or more to differ (Brotli levels 0 and 1 cannot continue a stream)");
    if (shard_size < SK_MANIFEST_MIN_SHARD_SIZE || shard_size > SK_MANIFEST_MAX_FILE_SIZE)
        return sk_cli_usage_error(&cli, "--shard-size must be between 4KiB and 1TiB");
    if (version > SK_MANIFEST_MAX_INT) return sk_cli_usage_error(&cli, "--version must be at most 2^53 - 1");
    if (name && !sk_manifest_model_name_ok(name))
        return sk_cli_usage_error(&cli, "--name: 1 to %d characters of A-Z a-z 0-9 . _ - + @ /, starting with a letter or digit",
                                  SK_MANIFEST_MAX_MODEL_NAME);

    sk_pack_opts o;
    sk_pack_opts_init(&o);
    o.shard_size = shard_size;
    o.external_min = ext_min;
    o.codec = codec;
    o.level = have_level ? (int)level : sk_codec_default_level(codec);
    /* an explicit --level alone means that level for every tensor */
    o.float_level = have_float_level ? (int)float_level : have_level ? o.level : SK_PACK_FLOAT_LEVEL_AUTO;
    o.version = version;
    o.threads = (unsigned)threads;
    o.force = force;
    if (created_time(&cli, &o.created)) return SK_EXIT_FAIL;
    sk_pack_install_signal_handlers();
    sk_cli_progress(&cli, &o.progress);

    sk_key_sec *key = NULL;
    if (key_path && load_key(&cli, key_path, password_file, &key)) return SK_EXIT_FAIL;
    o.key = key;
    int is_signed = key != NULL;
    char *dname = name ? NULL : sk_manifest_default_name(in);
    o.name = name ? name : dname;

    sk_error err = { 0 };
    sk_model *m = NULL;
    sk_pack_result res;
    sk_status s = o.name ? SK_OK : sk_error_set(&err, SK_ENOMEM, "out of memory");
    if (!s) s = sk_model_load(in, NULL, &m, &err);
    if (!s) s = sk_pack_write(m, out, &o, &res, &err);
    sk_model_free(m);
    sk_key_sec_free(key);
    if (s) {
        free(dname);
        return sk_cli_fail(&cli, &err);
    }
    char b1[32], b2[32], b3[32];
    if (cli.json) {
        printf("{\"package\": ");
        sk_json_str(stdout, out);
        printf(", \"name\": ");
        sk_json_str(stdout, o.name);
        printf(", \"version\": %llu, \"codec\": \"%s\", \"level\": %d, \"float_level\": %d, \"shard_size\": %llu, \"shards\": %zu, "
               "\"oversized_shards\": %zu, \"tensors\": %zu, \"inline_weights\": %zu, \"raw_bytes\": %llu, "
               "\"stored_bytes\": %llu, \"model_bytes\": %llu, \"manifest_bytes\": %llu, \"signed\": %s}\n",
               (unsigned long long)res.version, sk_codec_name(o.codec), o.level,
               res.float_level, (unsigned long long)o.shard_size,
               res.n_shards, res.n_oversized, res.n_tensors, res.n_inline, (unsigned long long)res.raw_bytes,
               (unsigned long long)res.stored_bytes, (unsigned long long)res.model_bytes,
               (unsigned long long)res.manifest_bytes, is_signed ? "true" : "false");
    } else {
        char fl[32] = "";
        if (res.float_level != o.level) snprintf(fl, sizeof fl, ", floats %d", res.float_level);
        sk_cli_info(&cli, 1, "%s: %s version %llu: %zu tensors in %zu shards, %s -> %s (%s %d%s), model.onnx %s%s\n", out,
                    o.name, (unsigned long long)res.version, res.n_tensors, res.n_shards,
                    sk_human_bytes(res.raw_bytes, b1, sizeof b1), sk_human_bytes(res.stored_bytes, b2, sizeof b2),
                    sk_codec_name(o.codec), o.level, fl, sk_human_bytes(res.model_bytes, b3, sizeof b3),
                    is_signed ? ", signed" : ", not signed");
        if (res.n_oversized)
            sk_cli_info(&cli, 2, "%s: %zu shards are larger than --shard-size: each holds one tensor that is (largest: '%s')\n",
                        out, res.n_oversized, res.oversized);
    }
    free(dname);
    return SK_EXIT_OK;
}
