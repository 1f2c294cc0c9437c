/* skiff-verify: checks a package folder: signature, manifest, every file's
 * size and hashes, nothing missing or unlisted (docs/format.md section 6). */
#include <stdio.h>
#include <string.h>

#include "sk_cli.h"
#include "sk_pack.h"
#include "sk_sign.h"

static const char usage[] =
    "usage: skiff-verify PKGDIR -p PUBFILE [options]\n"
    "\n"
    "Checks a package: the signature of manifest.json (manifest.json.minisig, and\n"
    "manifest.json.sig when present), the manifest itself, that no file is missing\n"
    "or unlisted, every file's size, SHA-256 and SHA-384, every shard's decoded size\n"
    "and hashes, and model.onnx against the tensor map. Stops at the first failure\n"
    "and names it.\n"
    "\n"
    "  -p, --public-key FILE   the publisher's public key (skiff-keygen or minisign)\n"
    "  -P, --public-key-string KEY\n"
    "                          the same as a string (\"RW...\", as minisign -P takes it)\n"
    "  --unsigned              check integrity only, not who signed (no key)\n"
    "  --name NAME             require this model name\n"
    "  --min-version N         refuse an older version (rollback protection)\n"
    "  --quick                 don't decode shards (stored hashes only)\n"
    "  -T, --threads N         threads (default: one per core)\n"
    "  --json                  print the result as JSON\n"
    "  -q, -v, -h/--help, -V/--version\n"
    "\n"
    "Exit status: 0 the package verifies, 1 it does not (or cannot be read),\n"
    "2 usage error.\n";

int main(int argc, char **argv)
{
    sk_cli cli = { "skiff-verify", usage, 1, 0 };
    const char *dir = NULL, *pub_path = NULL, *pub_string = NULL, *name = NULL;
    uint64_t min_version = 0, threads = 0;
    int unsigned_ok = 0, quick = 0, opts_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1]) {
            if (sk_cli_common(&cli, argc, argv, &i)) continue;
            if (!strcmp(a, "--")) { opts_done = 1; continue; }
            const char *v = i + 1 < argc ? argv[i + 1] : NULL;
            if (!strcmp(a, "-p") || !strcmp(a, "--public-key")) {
                if (!v) return sk_cli_usage_error(&cli, "%s needs a key file", a);
                pub_path = argv[++i];
            } else if (!strcmp(a, "-P") || !strcmp(a, "--public-key-string")) {
                if (!v) return sk_cli_usage_error(&cli, "%s needs a key string", a);
                pub_string = argv[++i];
            } else if (!strcmp(a, "--unsigned")) {
                unsigned_ok = 1;
            } else if (!strcmp(a, "--name")) {
                if (!v) return sk_cli_usage_error(&cli, "--name needs a name");
                name = argv[++i];
            } else if (!strcmp(a, "--min-version")) {
                if (!v || sk_cli_parse_u64(v, &min_version)) return sk_cli_usage_error(&cli, "--min-version needs a number");
                i++;
            } else if (!strcmp(a, "--quick")) {
                quick = 1;
            } else if (!strcmp(a, "-T") || !strcmp(a, "--threads")) {
                if (!v || sk_cli_parse_u64(v, &threads) || threads > 1024) return sk_cli_usage_error(&cli, "%s needs a number", a);
                i++;
            } else {
                return sk_cli_usage_error(&cli, "unknown option '%s'", a);
            }
            continue;
        }
        if (dir) return sk_cli_usage_error(&cli, "one package at a time");
        dir = a;
    }
    if (!dir) return sk_cli_usage_error(&cli, "no package folder given");
    if (pub_path && pub_string) return sk_cli_usage_error(&cli, "-p and -P exclude each other");
    if (!pub_path && !pub_string && !unsigned_ok)
        return sk_cli_usage_error(&cli, "no public key: give -p PUBFILE (or --unsigned to check integrity only)");
    if ((pub_path || pub_string) && unsigned_ok) return sk_cli_usage_error(&cli, "--unsigned with a public key");

    sk_error err = { 0 };
    sk_key_pub pub;
    sk_status s = SK_OK;
    if (pub_path) s = sk_key_pub_load(pub_path, &pub, &err);
    else if (pub_string) s = sk_key_pub_from_string(pub_string, &pub, &err);
    sk_pack_verify_opts o = { unsigned_ok ? NULL : &pub, name, min_version, quick, (unsigned)threads };
    sk_pack_report rep;
    memset(&rep, 0, sizeof rep);
    if (!s) s = sk_pack_verify(dir, &o, &rep, &err);
    char id[SK_KEY_ID_HEX_SIZE], b1[32];
    sk_key_id_hex(rep.key_id, id);
    if (cli.json) {
        printf("{\"package\": ");
        sk_json_str(stdout, dir);
        if (s) {
            printf(", \"ok\": false, \"error\": ");
            sk_json_str(stdout, err.msg);
        } else {
            const sk_manifest *m = rep.manifest;
            printf(", \"ok\": true, \"name\": ");
            sk_json_str(stdout, m->name);
            printf(", \"version\": %llu, \"files\": %zu, \"tensors\": %zu, \"stored_bytes\": %llu, \"raw_bytes\": %llu, "
                   "\"signature\": \"%s\", \"plain_signature\": %s",
                   (unsigned long long)m->version, m->n_files, m->n_tensors, (unsigned long long)rep.stored_bytes,
                   (unsigned long long)rep.raw_bytes, rep.minisig_checked ? "verified" : "not checked",
                   rep.sig_checked ? "true" : "false");
            if (rep.minisig_checked) {
                printf(", \"key_id\": \"%s\", \"trusted_comment\": ", id);
                sk_json_str(stdout, rep.trusted_comment);
            }
        }
        printf("}\n");
    }
    if (s) {
        sk_pack_report_free(&rep);
        return sk_cli_fail(&cli, &err);
    }
    if (!cli.json && cli.verbosity >= 1) {
        const sk_manifest *m = rep.manifest;
        printf("%s: OK: %s version %llu, %zu files, %s", dir, m->name, (unsigned long long)m->version, m->n_files,
               sk_human_bytes(rep.stored_bytes, b1, sizeof b1));
        if (rep.minisig_checked) printf(", signed by key %s%s\n", id, rep.sig_checked ? " (minisig and plain signature)" : "");
        else printf(", integrity only (signature not checked)\n");
        if (rep.minisig_checked && cli.verbosity >= 2) printf("Trusted comment: %s\n", rep.trusted_comment);
    }
    sk_pack_report_free(&rep);
    return SK_EXIT_OK;
}
