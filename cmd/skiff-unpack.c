/* skiff-unpack: verifies a package, then writes it out as a plain ONNX model
 * with external data (model.onnx and shard-NNNNN.bin). */
#include <stdio.h>
#include <string.h>

#include "sk_cli.h"
#include "sk_pack.h"
#include "sk_sign.h"

static const char usage[] =
    "usage: skiff-unpack PKGDIR -o DIR [-p PUBFILE] [options]\n"
    "\n"
    "Verifies the package as skiff-verify does (the signature too when a public key\n"
    "is given), then writes DIR: model.onnx and the decoded shards, a plain ONNX\n"
    "model with external data that ONNX Runtime loads. Written atomically (a\n"
    "temporary folder renamed at the end, once every byte matched the manifest).\n"
    "\n"
    "  -o, --output DIR        the folder to create\n"
    "  -p, --public-key FILE   check the signature with this public key\n"
    "  -P, --public-key-string KEY\n"
    "                          the same as a string (\"RW...\")\n"
    "  --name NAME             require this model name\n"
    "  --min-version N         refuse an older version (rollback protection)\n"
    "  -T, --threads N         threads (default: one per core)\n"
    "  -f, --force             replace an existing DIR\n"
    "  --json                  print a summary as JSON\n"
    "  -q, -v, -h/--help, -V/--version\n"
    "\n"
    "Without a public key only the integrity of the files is checked.\n"
    "Exit status: 0 ok, 1 the package does not verify or writing failed, 2 usage.\n";

int main(int argc, char **argv)
{
    sk_cli cli = { "skiff-unpack", usage, 1, 0 };
    const char *dir = NULL, *out = NULL, *pub_path = NULL, *pub_string = NULL, *name = NULL;
    uint64_t min_version = 0, threads = 0;
    int force = 0, opts_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1]) {
            if (sk_cli_common(&cli, argc, argv, &i)) continue;
            if (!strcmp(a, "--")) { opts_done = 1; continue; }
            const char *v = i + 1 < argc ? argv[i + 1] : NULL;
            if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
                if (!v) return sk_cli_usage_error(&cli, "%s needs a folder", a);
                out = argv[++i];
            } else if (!strcmp(a, "-p") || !strcmp(a, "--public-key")) {
                if (!v) return sk_cli_usage_error(&cli, "%s needs a key file", a);
                pub_path = argv[++i];
            } else if (!strcmp(a, "-P") || !strcmp(a, "--public-key-string")) {
                if (!v) return sk_cli_usage_error(&cli, "%s needs a key string", a);
                pub_string = argv[++i];
            } else if (!strcmp(a, "--name")) {
                if (!v) return sk_cli_usage_error(&cli, "--name needs a name");
                name = argv[++i];
            } else if (!strcmp(a, "--min-version")) {
                if (!v || sk_cli_parse_u64(v, &min_version)) return sk_cli_usage_error(&cli, "--min-version needs a number");
                i++;
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
        if (dir) return sk_cli_usage_error(&cli, "one package at a time");
        dir = a;
    }
    if (!dir) return sk_cli_usage_error(&cli, "no package folder given");
    if (!out) return sk_cli_usage_error(&cli, "no output folder given (-o DIR)");
    if (pub_path && pub_string) return sk_cli_usage_error(&cli, "-p and -P exclude each other");
    sk_pack_install_signal_handlers();

    sk_error err = { 0 };
    sk_key_pub pub;
    sk_status s = SK_OK;
    if (pub_path) s = sk_key_pub_load(pub_path, &pub, &err);
    else if (pub_string) s = sk_key_pub_from_string(pub_string, &pub, &err);
    sk_pack_verify_opts o = { pub_path || pub_string ? &pub : NULL, name, min_version, 0, (unsigned)threads };
    sk_pack_report rep;
    memset(&rep, 0, sizeof rep);
    if (!s) s = sk_pack_unpack(dir, out, &o, force, &rep, &err);
    if (s) {
        if (cli.json) {
            printf("{\"package\": ");
            sk_json_str(stdout, dir);
            printf(", \"ok\": false, \"error\": ");
            sk_json_str(stdout, err.msg);
            printf("}\n");
        }
        sk_pack_report_free(&rep);
        return sk_cli_fail(&cli, &err);
    }
    char b1[32];
    if (cli.json) {
        printf("{\"package\": ");
        sk_json_str(stdout, dir);
        printf(", \"ok\": true, \"output\": ");
        sk_json_str(stdout, out);
        printf(", \"name\": ");
        sk_json_str(stdout, rep.manifest->name);
        printf(", \"version\": %llu, \"files\": %zu, \"raw_bytes\": %llu, \"signature\": \"%s\"}\n",
               (unsigned long long)rep.manifest->version, rep.manifest->n_files, (unsigned long long)rep.raw_bytes,
               rep.minisig_checked ? "verified" : "not checked");
    } else {
        sk_cli_info(&cli, 1, "%s: %s version %llu, %zu files, %s%s\n", out, rep.manifest->name,
                    (unsigned long long)rep.manifest->version, rep.manifest->n_files,
                    sk_human_bytes(rep.raw_bytes, b1, sizeof b1),
                    rep.minisig_checked ? " (signature verified)" : " (integrity only: no public key given)");
    }
    sk_pack_report_free(&rep);
    return SK_EXIT_OK;
}
