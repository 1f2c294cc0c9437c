/* skiff-sign: signs an existing package (after checking every file against
 * its manifest): writes manifest.json.minisig and manifest.json.sig. */
#include <stdio.h>
#include <string.h>

#include "sk_cli.h"
#include "sk_pack.h"
#include "sk_sign.h"

#define PASSWORD_ENV "SKIFF_PASSWORD"

static const char usage[] =
    "usage: skiff-sign PKGDIR -s SECFILE [options]\n"
    "\n"
    "Signs a package made by skiff-pack: checks every file against manifest.json\n"
    "first, then writes manifest.json.minisig (minisign's prehashed format, the\n"
    "model name and version in the trusted comment) and manifest.json.sig (plain\n"
    "Ed25519 for WebCrypto), replacing existing signatures.\n"
    "\n"
    "  -s, --secret-key FILE   the secret key (skiff-keygen or minisign -G)\n"
    "  --password-file FILE    its password, first line of FILE (else $" PASSWORD_ENV ",\n"
    "                          else asked on the terminal)\n"
    "  -T, --threads N         threads for the check (default: one per core)\n"
    "  --json                  print the result as JSON\n"
    "  -q, -v, -h/--help, -V/--version\n"
    "\n"
    "Exit status: 0 signed, 1 failure (nothing changed), 2 usage error.\n";

int main(int argc, char **argv)
{
    sk_cli cli = { "skiff-sign", usage, 1, 0 };
    const char *dir = NULL, *key_path = NULL, *password_file = NULL;
    uint64_t threads = 0;
    int opts_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1]) {
            if (sk_cli_common(&cli, argc, argv, &i)) continue;
            if (!strcmp(a, "--")) { opts_done = 1; continue; }
            const char *v = i + 1 < argc ? argv[i + 1] : NULL;
            if (!strcmp(a, "-s") || !strcmp(a, "--secret-key")) {
                if (!v) return sk_cli_usage_error(&cli, "%s needs a key file", a);
                key_path = argv[++i];
            } else if (!strcmp(a, "--password-file")) {
                if (!v) return sk_cli_usage_error(&cli, "--password-file needs a file");
                password_file = argv[++i];
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
    if (!key_path) return sk_cli_usage_error(&cli, "no secret key given (-s SECFILE)");
    sk_pack_install_signal_handlers();

    sk_error err = { 0 };
    sk_key_sec *key = NULL;
    sk_status s = sk_key_sec_load_asking(key_path, password_file, PASSWORD_ENV, &key, &err);
    sk_pack_report rep;
    memset(&rep, 0, sizeof rep);
    if (!s) s = sk_pack_sign(dir, key, (unsigned)threads, &rep, &err);
    sk_key_sec_free(key);
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
    char id[SK_KEY_ID_HEX_SIZE];
    sk_key_id_hex(rep.key_id, id);
    if (cli.json) {
        printf("{\"package\": ");
        sk_json_str(stdout, dir);
        printf(", \"ok\": true, \"key_id\": \"%s\", \"trusted_comment\": ", id);
        sk_json_str(stdout, rep.trusted_comment);
        printf("}\n");
    } else {
        sk_cli_info(&cli, 1, "%s: signed %s version %llu with key %s\n", dir, rep.manifest->name,
                    (unsigned long long)rep.manifest->version, id);
    }
    sk_pack_report_free(&rep);
    return SK_EXIT_OK;
}
