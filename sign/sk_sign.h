/* sign/: Ed25519 keys and signatures in minisign's formats (key files, key
 * strings, .minisig files), plain Ed25519 signatures for browsers, and the
 * password helpers the CLIs need. docs/format-signatures.md specifies every
 * format with offsets and types.
 *
 * Conventions of this module:
 * - Every function that can fail returns an sk_status and fills err (when not
 *   NULL) with one sentence; functions given a path start it with the path.
 *   Malformed input is SK_EINVAL, a signature that does not verify (or a
 *   wrong password) is SK_EVERIFY, and nothing ever aborts on bad input.
 * - Secret key material (keys, decrypted key files, passwords) lives in
 *   sodium_malloc() memory and is wiped when freed.
 * - Files are written under a temporary name ".NAME.XXXXXX" in the same
 *   directory, synced, then moved into place; the temporary names are
 *   registered with sk_atomic_register(), so a CLI that called
 *   sk_atomic_install_signal_handlers() removes them on SIGINT.
 * - Functions initialize libsodium themselves; they are safe to call from
 *   several threads on different objects, except sk_key_password_prompt()
 *   and the functions that write files (sk_atomic's registry).
 */
#ifndef SK_SIGN_H
#define SK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"

#define SK_KEY_ID_BYTES 8
#define SK_KEY_PUBLIC_BYTES 32
#define SK_KEY_SEED_BYTES 32
#define SK_SIGN_BYTES 64

/* Longest untrusted comment, trusted comment and password, in bytes (so that
 * minisign's fixed line buffers can read what skiff writes). */
#define SK_SIGN_COMMENT_MAX 1003
#define SK_SIGN_TRUSTED_COMMENT_MAX 8173
#define SK_KEY_PASSWORD_MAX 1023

/* Buffer sizes, terminating NUL included. */
#define SK_KEY_ID_HEX_SIZE 17      /* "3B9C8C8E3F1A2B4D" */
#define SK_KEY_STRING_SIZE 57      /* "RW" + 54 base64 characters */
#define SK_KEY_PUB_TEXT_SIZE 1088  /* a whole public key file */
#define SK_KEY_SEC_TEXT_SIZE 1280  /* a whole secret key file */
#define SK_SIGN_ED25519_TEXT_SIZE 90 /* 88 base64 characters, "\n" */

/* Largest .minisig file sk_sign_minisig_read() accepts. */
#define SK_SIGN_MINISIG_FILE_MAX 16384

/* Flags of the verify functions. */
#define SK_SIGN_REQUIRE_PREHASHED 1u /* reject legacy "Ed" signatures */

/* ------------------------------------------------------------------------ */
/* Keys */

/* A public key: plain data, copy it freely. */
typedef struct sk_key_pub {
    uint8_t id[SK_KEY_ID_BYTES];     /* key id, as stored in the files */
    uint8_t pk[SK_KEY_PUBLIC_BYTES]; /* Ed25519 public key */
} sk_key_pub;

/* A secret key (key id and Ed25519 secret key) in sodium_malloc() memory.
 * Opaque; create with sk_key_generate(), sk_key_from_seed() or
 * sk_key_sec_parse()/sk_key_sec_load(), release with sk_key_sec_free(). */
typedef struct sk_key_sec sk_key_sec;

/* scrypt limits of an encrypted secret key. */
typedef struct sk_key_kdf {
    uint64_t opslimit;
    uint64_t memlimit; /* bytes */
} sk_key_kdf;

/* How to write a secret key. Zero-initialize, then set what you need. */
typedef struct sk_key_save_opts {
    const char *comment;  /* untrusted comment line; NULL: a default */
    const char *password; /* NULL: store the key unencrypted */
    size_t password_len;  /* at most SK_KEY_PASSWORD_MAX, no NUL byte */
    sk_key_kdf kdf;       /* 0, 0: minisign's defaults (1 GiB), halved until
                             they fit in memory; otherwise used as given */
    int force;            /* replace existing files */
} sk_key_save_opts;

/* Creates a new random key pair with a random key id. *out is the caller's
 * (sk_key_sec_free); it is NULL on error (SK_ENOMEM, SK_EINTERNAL). */
sk_status sk_key_generate(sk_key_sec **out, sk_error *err);

/* Creates the key pair of an Ed25519 seed (RFC 8032's "secret key"), with the
 * given key id, or a random one when id is NULL. Deterministic; for tests and
 * known-answer vectors. *out is the caller's. */
sk_status sk_key_from_seed(const uint8_t seed[SK_KEY_SEED_BYTES],
                           const uint8_t id[SK_KEY_ID_BYTES], sk_key_sec **out,
                           sk_error *err);

/* Wipes and frees a secret key; NULL is a no-op. */
void sk_key_sec_free(sk_key_sec *key);

/* The public key of a secret key. */
void sk_key_sec_public(const sk_key_sec *key, sk_key_pub *out);

/* Writes the text of a secret key file into out (out_size bytes, at least
 * SK_KEY_SEC_TEXT_SIZE is always enough), NUL-terminated, length in *out_len.
 * Encrypts with opts->password when set; the limits used are stored in *used
 * when used is not NULL. The text of an unencrypted key is secret: the caller
 * wipes out (sodium_memzero). opts may be NULL (unencrypted, default comment).
 * SK_EINVAL for a bad comment or password, SK_ENOMEM when key derivation
 * cannot get memory. */
sk_status sk_key_sec_format(const sk_key_sec *key, const sk_key_save_opts *opts,
                            char *out, size_t out_size, size_t *out_len,
                            sk_key_kdf *used, sk_error *err);

/* Parses the text of a secret key file (len bytes, need not be
 * NUL-terminated) and decrypts it with password (password_len bytes) when it
 * is encrypted; password is ignored for an unencrypted key. *out is the
 * caller's, NULL on error. SK_EINVAL for a malformed file or an encrypted key
 * without password, SK_EVERIFY for a wrong password, SK_ENOMEM when key
 * derivation cannot get memory. */
sk_status sk_key_sec_parse(const char *text, size_t len, const char *password,
                           size_t password_len, sk_key_sec **out, sk_error *err);

/* Sets *encrypted to 1 if the secret key text is password-protected, 0 if
 * not. SK_EINVAL for a malformed file. */
sk_status sk_key_sec_is_encrypted(const char *text, size_t len, int *encrypted,
                                  sk_error *err);

/* File forms of the two functions above: read path (at most 2048 bytes, into
 * sodium_malloc memory), then parse. Errors start with path; SK_EIO when it
 * cannot be read. */
sk_status sk_key_sec_load(const char *path, const char *password,
                          size_t password_len, sk_key_sec **out, sk_error *err);
sk_status sk_key_sec_file_is_encrypted(const char *path, int *encrypted,
                                       sk_error *err);

/* Writes a secret key file: mode 0600, written to a temporary file in the
 * same directory, synced, then moved into place. Without opts->force an
 * existing path is left alone and the call fails (SK_EIO, "already exists").
 * Key derivation happens before any file is created. */
sk_status sk_key_sec_save(const sk_key_sec *key, const char *path,
                          const sk_key_save_opts *opts, sk_key_kdf *used,
                          sk_error *err);

/* Writes a public key file (pub_path, mode 0644) and a secret key file
 * (sec_path, as sk_key_sec_save) for key. Without opts->force, fails before
 * writing anything if either exists; if the second file cannot be put in
 * place, the first one, when it was new, is removed again. */
sk_status sk_key_pair_save(const sk_key_sec *key, const char *pub_path,
                           const char *sec_path, const sk_key_save_opts *opts,
                           sk_key_kdf *used, sk_error *err);

/* Writes the text of a public key file into out (at least
 * SK_KEY_PUB_TEXT_SIZE bytes is always enough), NUL-terminated. comment NULL
 * gives "skiff public key <KEYID>". SK_EINVAL for a bad comment or a small
 * buffer. */
sk_status sk_key_pub_format(const sk_key_pub *pub, const char *comment, char *out,
                            size_t out_size, size_t *out_len, sk_error *err);

/* Parses the text of a public key file. SK_EINVAL when malformed. */
sk_status sk_key_pub_parse(const char *text, size_t len, sk_key_pub *out,
                           sk_error *err);

/* Reads and parses a public key file (at most 2048 bytes). */
sk_status sk_key_pub_load(const char *path, sk_key_pub *out, sk_error *err);

/* Writes a public key file (mode 0644, temporary name then rename). Without
 * force an existing path is an error (SK_EIO). */
sk_status sk_key_pub_save(const sk_key_pub *pub, const char *path,
                          const char *comment, int force, sk_error *err);

/* The public key string ("RW...", 56 characters, as in `minisign -P`) and
 * back. from_string accepts surrounding spaces; SK_EINVAL when malformed. */
void sk_key_pub_to_string(const sk_key_pub *pub, char out[SK_KEY_STRING_SIZE]);
sk_status sk_key_pub_from_string(const char *s, sk_key_pub *out, sk_error *err);

/* A key id as minisign prints it: 16 upper-case hex digits of the id read as
 * a little-endian u64. */
void sk_key_id_hex(const uint8_t id[SK_KEY_ID_BYTES], char out[SK_KEY_ID_HEX_SIZE]);

/* ------------------------------------------------------------------------ */
/* Passwords (for cmd/). A password is returned in sodium_malloc memory,
 * NUL-terminated, at most SK_KEY_PASSWORD_MAX bytes long (length in *len);
 * release it with sk_key_password_free(). There is deliberately no way to
 * take a password from a command-line argument. */

/* Reads the first line of path (without "\n" or "\r\n"); "/dev/stdin" reads
 * standard input. SK_EIO when unreadable, SK_EINVAL when the line is longer
 * than SK_KEY_PASSWORD_MAX or holds a NUL byte. */
sk_status sk_key_password_from_file(const char *path, char **out, size_t *len,
                                    sk_error *err);

/* Copies environment variable name. *out is NULL (and SK_OK returned) when it
 * is not set. SK_EINVAL when too long. */
sk_status sk_key_password_from_env(const char *name, char **out, size_t *len,
                                   sk_error *err);

/* Asks on the controlling terminal (/dev/tty) with echo off, twice when
 * confirm is set (SK_EINVAL if the two differ). This is the one function of
 * the library that talks to the user: it writes prompt to /dev/tty, never to
 * stdout or stderr. While it waits, SIGINT, SIGTERM, SIGHUP and SIGQUIT
 * restore the terminal before they take effect. Not thread-safe. SK_EIO when
 * there is no terminal. */
sk_status sk_key_password_prompt(const char *prompt, int confirm, char **out,
                                 size_t *len, sk_error *err);

/* The CLIs' order: path if not NULL, else environment variable env_name if
 * set (env_name may be NULL), else the terminal prompt. SK_EINVAL, with a
 * sentence listing the three ways, when there is no terminal either. */
sk_status sk_key_password_get(const char *path, const char *env_name,
                              const char *prompt, int confirm, char **out,
                              size_t *len, sk_error *err);

/* Wipes and frees a password; NULL is a no-op. */
void sk_key_password_free(char *password);

/* Loads the secret key file at path as the CLIs do: when the file is
 * encrypted, its password comes from sk_key_password_get(password_file,
 * env_name, "Password for PATH: ") and is wiped after use. */
sk_status sk_key_sec_load_asking(const char *path, const char *password_file, const char *env_name,
                                 sk_key_sec **out, sk_error *err);

/* ------------------------------------------------------------------------ */
/* minisign signatures (.minisig) */

/* A parsed .minisig file. About 9 KiB; fine on the stack. */
typedef struct sk_minisig {
    int prehashed;                   /* 1: "ED" (BLAKE2b-512), 0: legacy "Ed" */
    uint8_t key_id[SK_KEY_ID_BYTES];
    uint8_t sig[SK_SIGN_BYTES];
    uint8_t global_sig[SK_SIGN_BYTES];
    char comment[SK_SIGN_COMMENT_MAX + 1];                 /* untrusted */
    char trusted_comment[SK_SIGN_TRUSTED_COMMENT_MAX + 1]; /* meaningful only
                                                              once verified */
} sk_minisig;

/* Signs len bytes at msg (prehashed "ED") and returns the text of a .minisig
 * file in *out_text (malloc'd, NUL-terminated, the caller frees it; length in
 * *out_len). comment NULL gives "signature from skiff secret key";
 * trusted_comment NULL gives "timestamp:<now>\thashed". Both must be
 * printable single lines within SK_SIGN_COMMENT_MAX /
 * SK_SIGN_TRUSTED_COMMENT_MAX bytes (SK_EINVAL). The fresh signature is
 * verified with the key's public half before it is returned (SK_EINTERNAL if
 * that fails). */
sk_status sk_sign_minisig_buf(const sk_key_sec *key, const void *msg, size_t len,
                              const char *comment, const char *trusted_comment,
                              char **out_text, size_t *out_len, sk_error *err);

/* Same for the contents of the file at path, streamed through the hash in
 * 64 KiB pieces (memory stays flat). trusted_comment NULL gives
 * "timestamp:<now>\tfile:<basename>\thashed". SK_EIO if path cannot be read;
 * errors start with path. */
sk_status sk_sign_minisig_file(const sk_key_sec *key, const char *path,
                               const char *comment, const char *trusted_comment,
                               char **out_text, size_t *out_len, sk_error *err);

/* Parses the text of a .minisig file (len bytes, need not be NUL-terminated)
 * into *out without verifying anything. SK_EINVAL when malformed. */
sk_status sk_sign_minisig_parse(const char *text, size_t len, sk_minisig *out,
                                sk_error *err);

/* Reads a .minisig file (at most SK_SIGN_MINISIG_FILE_MAX bytes) into *text
 * (malloc'd, NUL-terminated, the caller frees it). SK_EIO when unreadable,
 * SK_EINVAL when too large. */
sk_status sk_sign_minisig_read(const char *path, char **text, size_t *len,
                               sk_error *err);

/* Verifies the .minisig text sig_text (sig_len bytes) for the len bytes at
 * msg and public key pub: parses it, checks the key id, the signature and the
 * global signature over the trusted comment. Accepts prehashed "ED" and
 * legacy "Ed" signatures unless flags has SK_SIGN_REQUIRE_PREHASHED. On
 * SK_OK, *out (when not NULL) holds the parsed signature and its now-trusted
 * comment. SK_EINVAL for a malformed signature, SK_EVERIFY when it does not
 * verify (wrong key id, message, signature, trusted comment, or a legacy
 * signature where prehashed is required). */
sk_status sk_sign_minisig_verify_buf(const sk_key_pub *pub, const void *msg,
                                     size_t len, const char *sig_text,
                                     size_t sig_len, unsigned flags,
                                     sk_minisig *out, sk_error *err);

/* Same for the contents of the file at path: streamed for "ED", read whole
 * into memory for legacy "Ed". SK_EIO when path cannot be read; errors start
 * with path. */
sk_status sk_sign_minisig_verify_file(const sk_key_pub *pub, const char *path,
                                      const char *sig_text, size_t sig_len,
                                      unsigned flags, sk_minisig *out,
                                      sk_error *err);

/* ------------------------------------------------------------------------ */
/* Plain Ed25519 (for browsers: WebCrypto verifies these directly) */

/* sig = Ed25519(key, msg[0..len)), no prehash, re-verified before return
 * (SK_EINTERNAL if that fails). msg may be NULL when len is 0. */
sk_status sk_sign_ed25519(const sk_key_sec *key, const void *msg, size_t len,
                          uint8_t sig[SK_SIGN_BYTES], sk_error *err);

/* SK_OK if sig is pub's Ed25519 signature of msg[0..len), else SK_EVERIFY. */
sk_status sk_sign_ed25519_verify(const sk_key_pub *pub, const void *msg,
                                 size_t len, const uint8_t sig[SK_SIGN_BYTES],
                                 sk_error *err);

/* The plain signature file: base64 of the 64 bytes and "\n" (89 characters
 * plus NUL). parse accepts a missing final "\n" or "\r\n"; SK_EINVAL
 * otherwise. */
void sk_sign_ed25519_format(const uint8_t sig[SK_SIGN_BYTES],
                            char out[SK_SIGN_ED25519_TEXT_SIZE]);
sk_status sk_sign_ed25519_parse(const char *text, size_t len,
                                uint8_t sig[SK_SIGN_BYTES], sk_error *err);

#endif
