/* skiff-keygen: creates an Ed25519 key pair in minisign's format (see
 * docs/format-signatures.md). Parses arguments, calls sign/, prints.
 * Exit codes: 0 success, 1 failure, 2 usage. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_atomic.h"
#include "sk_cli.h"
#include "sk_sign.h"

#define PASSWORD_ENV "SKIFF_PASSWORD"

static const char usage[] =
    "usage: skiff-keygen -p PUBFILE -s SECFILE [-W | --password-file F] [-f] [-c COMMENT]\n"
    "Create an Ed25519 key pair for signing skiff packages. The files use\n"
    "minisign's format: minisign can use skiff's keys, and skiff minisign's.\n"
    "\n"
    "  -p, --public FILE      write the public key to FILE\n"
    "  -s, --secret FILE      write the secret key to FILE (mode 0600)\n"
    "  -W, --no-password      store the secret key unencrypted\n"
    "  --password-file F      read the password from the first line of F\n"
    "                         (F may be /dev/stdin)\n"
    "  -c, --comment TEXT     untrusted comment of the secret key file\n"
    "  -f, --force            replace existing key files\n"
    "  --json                 print the result as JSON (keys: public_key_file,\n"
    "                         secret_key_file, key_id, public_key, encrypted,\n"
    "                         kdf_opslimit, kdf_memlimit)\n"
    "  -q, -v, -h/--help, -V/--version\n"
    "\n"
    "The secret key is encrypted with a password (scrypt, 1 GiB of memory) taken\n"
    "from --password-file, else from $" PASSWORD_ENV ", else asked on the terminal.\n"
    "Passwords are never taken from the command line.\n"
    "\n"
    "Exit status: 0 ok, 1 failure, 2 usage error.\n";

int main(int argc, char **argv)
{
    sk_cli cli = {"skiff-keygen", usage, 1, 0};
    const char *pub_path = NULL, *sec_path = NULL, *comment = NULL, *password_file = NULL;
    int no_password = 0, force = 0, opts_done = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts_done || a[0] != '-' || !a[1])
            return sk_cli_usage_error(&cli, "unexpected argument '%s'", a);
        if (sk_cli_common(&cli, argc, argv, &i)) continue;
        const char **slot = NULL;
        if (!strcmp(a, "--")) {
            opts_done = 1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--public")) {
            slot = &pub_path;
        } else if (!strcmp(a, "-s") || !strcmp(a, "--secret")) {
            slot = &sec_path;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--comment")) {
            slot = &comment;
        } else if (!strcmp(a, "--password-file")) {
            slot = &password_file;
        } else if (!strcmp(a, "-W") || !strcmp(a, "--no-password")) {
            no_password = 1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--force")) {
            force = 1;
        } else {
            return sk_cli_usage_error(&cli, "unknown option '%s'", a);
        }
        if (slot) {
            if (++i >= argc || !argv[i][0])
                return sk_cli_usage_error(&cli, "%s needs an argument", a);
            if (*slot) return sk_cli_usage_error(&cli, "%s given twice", a);
            *slot = argv[i];
        }
    }
    if (!pub_path || !sec_path)
        return sk_cli_usage_error(&cli, "both -p PUBFILE and -s SECFILE are needed");
    if (no_password && password_file)
        return sk_cli_usage_error(&cli, "--no-password and --password-file exclude each other");

    sk_error err = {0};
    /* Checked again, race-free, when the files are written; checking first
     * spares typing a password for nothing. */
    struct stat sb;
    const char *paths[2] = {pub_path, sec_path};
    for (int i = 0; i < 2 && !force; i++) {
        if (lstat(paths[i], &sb) == 0) {
            sk_error_set(&err, SK_EIO, "%s: already exists; use -f to replace it", paths[i]);
            return sk_cli_fail(&cli, &err);
        }
    }
    sk_atomic_install_signal_handlers();

    sk_key_sec *key = NULL;
    char *password = NULL;
    size_t password_len = 0;
    sk_key_kdf used = {0};
    sk_status st = SK_OK;
    if (!no_password) {
        st = sk_key_password_get(password_file, PASSWORD_ENV, "Password for the new secret key: ",
                                 1, &password, &password_len, &err);
        if (st == SK_OK && password_len == 0)
            st = sk_error_set(&err, SK_EINVAL,
                              "the password is empty; use --no-password for an unencrypted key");
    }
    if (st == SK_OK) st = sk_key_generate(&key, &err);
    if (st == SK_OK) {
        sk_key_save_opts opts = {0};
        opts.comment = comment;
        opts.password = password;
        opts.password_len = password_len;
        opts.force = force;
        if (password && (cli.verbosity >= 2 || (cli.verbosity >= 1 && isatty(STDERR_FILENO))))
            sk_cli_info(&cli, 1, "deriving a key from the password (a few seconds)...\n");
        st = sk_key_pair_save(key, pub_path, sec_path, &opts, &used, &err);
    }
    int encrypted = password != NULL;
    sk_key_password_free(password);
    if (st != SK_OK) {
        sk_key_sec_free(key);
        return sk_cli_fail(&cli, &err);
    }

    sk_key_pub pub;
    char id[SK_KEY_ID_HEX_SIZE], s[SK_KEY_STRING_SIZE];
    sk_key_sec_public(key, &pub);
    sk_key_sec_free(key);
    sk_key_id_hex(pub.id, id);
    sk_key_pub_to_string(&pub, s);
    if (encrypted && used.memlimit < (1ull << 30))
        sk_cli_info(&cli, 1, "warning: not enough memory for the default key derivation; used %llu MiB\n",
                    (unsigned long long)(used.memlimit >> 20));
    if (cli.json) {
        fputs("{\"public_key_file\": ", stdout);
        sk_json_str(stdout, pub_path);
        fputs(", \"secret_key_file\": ", stdout);
        sk_json_str(stdout, sec_path);
        printf(", \"key_id\": \"%s\", \"public_key\": \"%s\", \"encrypted\": %s, "
               "\"kdf_opslimit\": %llu, \"kdf_memlimit\": %llu}\n",
               id, s, encrypted ? "true" : "false", (unsigned long long)used.opslimit,
               (unsigned long long)used.memlimit);
    }
    sk_cli_info(&cli, 1, "%s: secret key (%s)\n", sec_path, encrypted ? "encrypted" : "NOT encrypted");
    sk_cli_info(&cli, 1, "%s: public key %s\n", pub_path, id);
    sk_cli_info(&cli, 1, "verify with: minisign -Vm FILE -P %s\n", s);
    if (encrypted)
        sk_cli_info(&cli, 2, "scrypt: opslimit %llu, memlimit %llu bytes\n",
                    (unsigned long long)used.opslimit, (unsigned long long)used.memlimit);
    return SK_EXIT_OK;
}
