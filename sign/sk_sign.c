/* Ed25519 keys and signatures in minisign's formats. The formats are in
 * docs/format-signatures.md; every on-disk structure is a byte array with the
 * offsets below and explicit little-endian loads and stores. */
#include "sk_sign.h"

#include "sk_atomic.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Layouts */

#define B64_LEN(n) ((((n) + 2) / 3) * 4) /* padded, without NUL */

enum {
    /* public key: "Ed" key_id pk */
    PUB_ALG = 0,
    PUB_ID = 2,
    PUB_PK = 10,
    PUB_BYTES = 42,
    /* secret key: "Ed" kdf_alg "B2" salt ops mem | key_id sk chk (encrypted) */
    SEC_SIG_ALG = 0,
    SEC_KDF_ALG = 2,
    SEC_CHK_ALG = 4,
    SEC_SALT = 6,
    SEC_OPSLIMIT = 38,
    SEC_MEMLIMIT = 46,
    SEC_ID = 54, /* start of the encrypted part */
    SEC_SK = 62,
    SEC_CHK = 126,
    SEC_BYTES = 158,
    SEC_ENCRYPTED_BYTES = SEC_BYTES - SEC_ID,
    /* signature block: sig_alg key_id sig */
    SIG_ALG = 0,
    SIG_ID = 2,
    SIG_SIG = 10,
    SIG_BYTES = 74,
};

#define SK_SECRET_BYTES 64 /* libsodium's Ed25519 secret key: seed || pk */
#define CHK_BYTES 32
#define HASH_BYTES 64 /* BLAKE2b-512 prehash */
#define FILE_CHUNK 65536
#define KEY_FILE_MAX 2048
#define ED25519_FILE_MAX 1024
#define PASSWORD_BUF (SK_KEY_PASSWORD_MAX + 3) /* room for "\r\n" while reading */

static_assert(PUB_PK + SK_KEY_PUBLIC_BYTES == PUB_BYTES, "public key layout");
static_assert(SEC_SALT + crypto_pwhash_scryptsalsa208sha256_SALTBYTES == SEC_OPSLIMIT,
              "secret key layout: salt");
static_assert(SEC_ID + SK_KEY_ID_BYTES == SEC_SK, "secret key layout: key id");
static_assert(SEC_SK + SK_SECRET_BYTES == SEC_CHK, "secret key layout: sk");
static_assert(SEC_CHK + CHK_BYTES == SEC_BYTES, "secret key layout: chk");
static_assert(SIG_SIG + SK_SIGN_BYTES == SIG_BYTES, "signature block layout");
static_assert(crypto_sign_SECRETKEYBYTES == SK_SECRET_BYTES, "Ed25519 secret key size");
static_assert(crypto_sign_PUBLICKEYBYTES == SK_KEY_PUBLIC_BYTES, "Ed25519 public key size");
static_assert(crypto_sign_SEEDBYTES == SK_KEY_SEED_BYTES, "Ed25519 seed size");
static_assert(crypto_sign_BYTES == SK_SIGN_BYTES, "Ed25519 signature size");
static_assert(crypto_generichash_BYTES == CHK_BYTES, "BLAKE2b-256 checksum size");
static_assert(crypto_generichash_BYTES_MAX == HASH_BYTES, "BLAKE2b-512 prehash size");
static_assert(SK_KEY_STRING_SIZE == B64_LEN(PUB_BYTES) + 1, "key string size");
static_assert(SK_SIGN_ED25519_TEXT_SIZE == B64_LEN(SK_SIGN_BYTES) + 2, "plain signature text size");

static const char COMMENT_PREFIX[] = "untrusted comment: ";
static const char TRUSTED_PREFIX[] = "trusted comment: ";
static const uint8_t ALG_ED[2] = {'E', 'd'};      /* key algorithm; legacy signatures */
static const uint8_t ALG_HASHED[2] = {'E', 'D'};  /* prehashed signatures */
static const uint8_t KDF_SCRYPT[2] = {'S', 'c'};
static const uint8_t KDF_NONE[2] = {0, 0};
static const uint8_t CHK_BLAKE2B[2] = {'B', '2'};

/* The lengths minisign's line buffers allow (see sk_sign.h). */
static_assert(sizeof COMMENT_PREFIX - 1 + SK_SIGN_COMMENT_MAX + 1 == 1023, "comment limit");
static_assert(sizeof TRUSTED_PREFIX - 1 + SK_SIGN_TRUSTED_COMMENT_MAX + 1 == 8191,
              "trusted comment limit");
static_assert(SK_KEY_SEC_TEXT_SIZE >= sizeof COMMENT_PREFIX - 1 + SK_SIGN_COMMENT_MAX + 1 +
                                          B64_LEN(SEC_BYTES) + 1 + 1,
              "secret key text size");
static_assert(SK_KEY_PUB_TEXT_SIZE >= sizeof COMMENT_PREFIX - 1 + SK_SIGN_COMMENT_MAX + 1 +
                                          B64_LEN(PUB_BYTES) + 1 + 1,
              "public key text size");

struct sk_key_sec {
    uint8_t id[SK_KEY_ID_BYTES];
    uint8_t sk[SK_SECRET_BYTES];
};

/* ------------------------------------------------------------------------ */
/* Small helpers */

static sk_status sign_init(sk_error *err)
{
    if (sodium_init() < 0)
        return sk_error_set(err, SK_EINTERNAL, "libsodium could not be initialized");
    return SK_OK;
}

static uint64_t le64_load(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void le64_store(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static const void *nonnull_msg(const void *msg)
{
    static const uint8_t empty[1];
    return msg ? msg : empty;
}

/* 1 if s[0..n) is valid UTF-8 with no control characters other than TAB. */
static int text_is_printable(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p++;
        if (c == '\t') continue;
        if (c < 0x20 || c == 0x7f) return 0;
        if (c < 0x80) continue;
        size_t need;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if ((size_t)(end - p) < need) return 0;
        for (size_t i = 0; i < need; i++) {
            if ((p[i] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        p += need;
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        if (cp <= 0x9f) return 0; /* C1 controls */
    }
    return 1;
}

static sk_status check_comment(const char *what, const char *s, size_t max, sk_error *err)
{
    size_t n = strlen(s);
    if (n > max)
        return sk_error_set(err, SK_EINVAL, "the %s is %zu bytes long; at most %zu are allowed",
                            what, n, max);
    if (!text_is_printable(s, n))
        return sk_error_set(err, SK_EINVAL,
                            "the %s must be one line of printable UTF-8 text (no control "
                            "characters but TAB)",
                            what);
    return SK_OK;
}

static int b64_is_alphabet(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Decodes exactly want bytes from the n base64 characters at s (padded,
 * canonical). 0 on success. The alphabet is checked here because
 * libsodium 1.0.18's decoder takes bytes >= 0x80 for base64 digits. */
static int b64_decode_exact(const char *s, size_t n, uint8_t *out, size_t want)
{
    const char *end = NULL;
    size_t got = 0, pad = (3 - want % 3) % 3;
    if (n != B64_LEN(want)) return -1;
    for (size_t i = 0; i < n; i++) {
        if (i >= n - pad ? s[i] != '=' : !b64_is_alphabet(s[i])) return -1;
    }
    if (sodium_base642bin(out, want, s, n, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    return (end == s + n && got == want) ? 0 : -1;
}

static void b64_encode(char *out, size_t out_size, const uint8_t *bin, size_t n)
{
    assert(out_size >= B64_LEN(n) + 1);
    sodium_bin2base64(out, out_size, bin, n, sodium_base64_VARIANT_ORIGINAL);
}

/* Lines of a text: split at "\n", one "\r" before it dropped. */
typedef struct line_reader {
    const char *p, *end;
    int number; /* of the line last returned, from 1 */
} line_reader;

static void line_reader_init(line_reader *r, const char *text, size_t len)
{
    r->p = text;
    r->end = text + len;
    r->number = 0;
}

/* 1 with the next line in *line (length *n); 0 at the end of the text. */
static int line_next(line_reader *r, const char **line, size_t *n)
{
    if (r->p >= r->end) return 0;
    const char *s = r->p;
    const char *nl = memchr(s, '\n', (size_t)(r->end - s));
    const char *e = nl ? nl : r->end;
    r->p = nl ? nl + 1 : r->end;
    if (e > s && e[-1] == '\r') e--;
    *line = s;
    *n = (size_t)(e - s);
    r->number++;
    return 1;
}

/* Reads the next line, which must exist and hold no "\r". */
static sk_status line_expect(line_reader *r, const char *name, const char *what,
                             const char **line, size_t *n, sk_error *err)
{
    if (!line_next(r, line, n))
        return sk_error_set(err, SK_EINVAL, "%s: line %d (%s) is missing", name, r->number + 1,
                            what);
    if (memchr(*line, '\r', *n))
        return sk_error_set(err, SK_EINVAL, "%s: line %d contains a carriage return", name,
                            r->number);
    return SK_OK;
}

static sk_status line_expect_end(const line_reader *r, const char *name, sk_error *err)
{
    if (r->p != r->end)
        return sk_error_set(err, SK_EINVAL, "%s: unexpected text after line %d", name, r->number);
    return SK_OK;
}

/* Checks a comment line: prefix, then at most max bytes. *body points after
 * the prefix. */
static sk_status line_comment(const char *name, int number, const char *line, size_t n,
                              const char *prefix, size_t max, const char **body,
                              size_t *body_len, sk_error *err)
{
    size_t pn = strlen(prefix);
    if (n < pn || memcmp(line, prefix, pn) != 0)
        return sk_error_set(err, SK_EINVAL, "%s: line %d must start with \"%s\"", name, number,
                            prefix);
    if (n - pn > max)
        return sk_error_set(err, SK_EINVAL,
                            "%s: the comment on line %d is %zu bytes long; at most %zu are allowed",
                            name, number, n - pn, max);
    *body = line + pn;
    *body_len = n - pn;
    return SK_OK;
}

static sk_status text_check_nul(const char *name, const char *text, size_t len, const char *kind,
                                sk_error *err)
{
    if (!text && len) return sk_error_set(err, SK_EINVAL, "%s: no text given", name);
    if (len == 0) return sk_error_set(err, SK_EINVAL, "%s: is empty; not %s", name, kind);
    if (memchr(text, '\0', len))
        return sk_error_set(err, SK_EINVAL, "%s: contains a NUL byte; not %s", name, kind);
    return SK_OK;
}

/* ------------------------------------------------------------------------ */
/* Files */

/* Reads path into a new NUL-terminated buffer (sodium_malloc when secret).
 * Files over max bytes are SK_EINVAL ("not <kind>"). */
static sk_status file_read_small(const char *path, size_t max, int secret, const char *kind,
                                 char **out, size_t *out_len, sk_error *err)
{
    *out = NULL;
    *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sk_error_set(err, SK_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = max + 2;
    char *buf = secret ? sodium_malloc(cap) : malloc(cap);
    if (!buf) {
        close(fd);
        return sk_error_set(err, SK_ENOMEM, "%s: out of memory", path);
    }
    size_t n = 0;
    sk_status st = SK_OK;
    while (n < max + 1) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = sk_error_set(err, SK_EIO, "%s: cannot read: %s", path, strerror(errno));
            break;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (st == SK_OK && n > max)
        st = sk_error_set(err, SK_EINVAL, "%s: larger than %zu bytes; not %s", path, max, kind);
    if (st != SK_OK) {
        if (secret)
            sodium_free(buf);
        else
            free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return SK_OK;
}

/* Reads a whole file of any size (for legacy signatures). */
static sk_status file_read_all(const char *path, uint8_t **out, size_t *out_len, sk_error *err)
{
    *out = NULL;
    *out_len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return sk_error_set(err, SK_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = FILE_CHUNK, n = 0;
    uint8_t *buf = malloc(cap);
    sk_status st = SK_OK;
    if (!buf) st = sk_error_set(err, SK_ENOMEM, "%s: out of memory", path);
    while (st == SK_OK) {
        if (n == cap) {
            size_t ncap;
            uint8_t *nb;
            if (sk_mul_size(cap, 2, &ncap) != 0 || !(nb = realloc(buf, ncap))) {
                st = sk_error_set(err, SK_ENOMEM, "%s: too large to read into memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) st = sk_error_set(err, SK_EIO, "%s: cannot read: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st != SK_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = n;
    return SK_OK;
}

/* BLAKE2b-512 of a file, streamed. */
static sk_status file_hash(const char *path, uint8_t out[HASH_BYTES], sk_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sk_error_set(err, SK_EIO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = malloc(FILE_CHUNK);
    if (!buf) {
        fclose(f);
        return sk_error_set(err, SK_ENOMEM, "%s: out of memory", path);
    }
    crypto_generichash_state hs;
    crypto_generichash_init(&hs, NULL, 0, HASH_BYTES);
    size_t r;
    while ((r = fread(buf, 1, FILE_CHUNK, f)) > 0) crypto_generichash_update(&hs, buf, r);
    sk_status st = SK_OK;
    if (ferror(f)) st = sk_error_set(err, SK_EIO, "%s: cannot read: %s", path, strerror(errno));
    fclose(f);
    free(buf);
    if (st == SK_OK) crypto_generichash_final(&hs, out, HASH_BYTES);
    return st;
}

static void dir_sync(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: the file itself is synced */
        close(fd);
    }
    free(dir);
}

/* A file written under a temporary name, waiting to be moved into place.
 * The name is registered with sk_atomic so that a CLI's signal handler
 * (sk_atomic_install_signal_handlers) removes it. */
typedef struct pending_file {
    char *tmp;
    int slot;
} pending_file;

/* Writes data to a new temporary file ".NAME.XXXXXX" next to path, with
 * mode, synced. */
static sk_status file_prepare(const char *path, const void *data, size_t len, mode_t mode,
                              pending_file *pf, sk_error *err)
{
    pf->tmp = NULL;
    pf->slot = -1;
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0, pn = strlen(path), size;
    if (sk_add_size(pn, sizeof ".XXXXXX" + 1, &size) != 0)
        return sk_error_set(err, SK_EINVAL, "file name too long");
    char *name = malloc(size);
    if (!name) return sk_error_set(err, SK_ENOMEM, "%s: out of memory", path);
    snprintf(name, size, "%.*s.%s.XXXXXX", (int)dir_len, path, path + dir_len);
    int fd = mkstemp(name); /* mode 0600 */
    if (fd < 0) {
        sk_status st = sk_error_set(err, SK_EIO, "%s: cannot create a file there: %s", path,
                                    strerror(errno));
        free(name);
        return st;
    }
    pf->tmp = name;
    pf->slot = sk_atomic_register(name);
    sk_status st = SK_OK;
    if (mode != 0600 && fchmod(fd, mode) != 0)
        st = sk_error_set(err, SK_EIO, "%s: cannot set the mode of %s: %s", path, name,
                          strerror(errno));
    const uint8_t *p = data;
    size_t left = len;
    while (st == SK_OK && left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            st = sk_error_set(err, SK_EIO, "%s: cannot write: %s", path, strerror(errno));
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (st == SK_OK && fsync(fd) != 0)
        st = sk_error_set(err, SK_EIO, "%s: cannot sync: %s", path, strerror(errno));
    if (close(fd) != 0 && st == SK_OK)
        st = sk_error_set(err, SK_EIO, "%s: cannot close: %s", path, strerror(errno));
    return st;
}

/* Removes the temporary file, if any is left. */
static void file_discard(pending_file *pf)
{
    if (pf->tmp) {
        unlink(pf->tmp);
        free(pf->tmp);
    }
    sk_atomic_unregister(pf->slot);
    pf->tmp = NULL;
    pf->slot = -1;
}

static sk_status error_exists(const char *path, sk_error *err)
{
    return sk_error_set(err, SK_EIO, "%s: already exists; refusing to overwrite it", path);
}

/* Moves the temporary file to path. Without force, an existing path is
 * never replaced: the hard link fails atomically when it exists. */
static sk_status file_commit(pending_file *pf, const char *path, int force, sk_error *err)
{
    if (!force) {
        if (link(pf->tmp, path) == 0) {
            file_discard(pf);
            dir_sync(path);
            return SK_OK;
        }
        if (errno == EEXIST) return error_exists(path, err);
        if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != EMLINK &&
            errno != ENOSYS)
            return sk_error_set(err, SK_EIO, "%s: cannot create: %s", path, strerror(errno));
        /* No hard links on this file system: check, then rename. */
        struct stat sb;
        if (lstat(path, &sb) == 0) return error_exists(path, err);
    }
    if (rename(pf->tmp, path) != 0)
        return sk_error_set(err, SK_EIO, "%s: cannot move %s into place: %s", path, pf->tmp,
                            strerror(errno));
    free(pf->tmp);
    pf->tmp = NULL;
    file_discard(pf);
    dir_sync(path);
    return SK_OK;
}

static sk_status file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                   int force, sk_error *err)
{
    pending_file pf;
    sk_status st = file_prepare(path, data, len, mode, &pf, err);
    if (st == SK_OK) st = file_commit(&pf, path, force, err);
    file_discard(&pf);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Keys */

static sk_key_sec *key_alloc(void)
{
    sk_key_sec *k = sodium_malloc(sizeof *k);
    if (k) memset(k, 0, sizeof *k);
    return k;
}

void sk_key_sec_free(sk_key_sec *key)
{
    if (key) sodium_free(key); /* sodium_free wipes */
}

sk_status sk_key_generate(sk_key_sec **out, sk_error *err)
{
    *out = NULL;
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    sk_key_sec *k = key_alloc();
    if (!k) return sk_error_set(err, SK_ENOMEM, "out of memory for a secret key");
    uint8_t pk[SK_KEY_PUBLIC_BYTES];
    randombytes_buf(k->id, sizeof k->id);
    if (crypto_sign_keypair(pk, k->sk) != 0) {
        sk_key_sec_free(k);
        return sk_error_set(err, SK_EINTERNAL, "Ed25519 key generation failed");
    }
    *out = k;
    return SK_OK;
}

sk_status sk_key_from_seed(const uint8_t seed[SK_KEY_SEED_BYTES], const uint8_t id[SK_KEY_ID_BYTES],
                           sk_key_sec **out, sk_error *err)
{
    *out = NULL;
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    sk_key_sec *k = key_alloc();
    if (!k) return sk_error_set(err, SK_ENOMEM, "out of memory for a secret key");
    uint8_t pk[SK_KEY_PUBLIC_BYTES];
    if (id)
        memcpy(k->id, id, sizeof k->id);
    else
        randombytes_buf(k->id, sizeof k->id);
    if (crypto_sign_seed_keypair(pk, k->sk, seed) != 0) {
        sk_key_sec_free(k);
        return sk_error_set(err, SK_EINTERNAL, "Ed25519 key derivation failed");
    }
    *out = k;
    return SK_OK;
}

void sk_key_sec_public(const sk_key_sec *key, sk_key_pub *out)
{
    memcpy(out->id, key->id, sizeof out->id);
    memcpy(out->pk, key->sk + SK_KEY_SEED_BYTES, sizeof out->pk);
}

void sk_key_id_hex(const uint8_t id[SK_KEY_ID_BYTES], char out[SK_KEY_ID_HEX_SIZE])
{
    snprintf(out, SK_KEY_ID_HEX_SIZE, "%016" PRIX64, le64_load(id));
}

/* chk = BLAKE2b-256(sig_alg || key_id || sk) of a raw secret key. */
static void sec_checksum(const uint8_t raw[SEC_BYTES], uint8_t chk[CHK_BYTES])
{
    crypto_generichash_state hs;
    crypto_generichash_init(&hs, NULL, 0, CHK_BYTES);
    crypto_generichash_update(&hs, raw + SEC_SIG_ALG, 2);
    crypto_generichash_update(&hs, raw + SEC_ID, SK_KEY_ID_BYTES);
    crypto_generichash_update(&hs, raw + SEC_SK, SK_SECRET_BYTES);
    crypto_generichash_final(&hs, chk, CHK_BYTES);
    sodium_memzero(&hs, sizeof hs);
}

/* 1 if the 64-byte secret key is the one its seed derives (its public half
 * included). */
static int sec_consistent(const uint8_t sk[SK_SECRET_BYTES])
{
    uint8_t pk[SK_KEY_PUBLIC_BYTES];
    uint8_t *again = sodium_malloc(SK_SECRET_BYTES);
    if (!again) return 0;
    int ok = crypto_sign_seed_keypair(pk, again, sk) == 0 &&
             sodium_memcmp(again, sk, SK_SECRET_BYTES) == 0;
    sodium_free(again);
    return ok;
}

static sk_status kdf_check(const char *name, uint64_t ops, uint64_t mem, sk_error *err)
{
    if (ops < crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_MIN ||
        ops > crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_MAX ||
        mem < crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_MIN ||
        mem > crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_MAX || mem > SIZE_MAX)
        return sk_error_set(err, SK_EINVAL,
                            "%s: scrypt limits out of range (opslimit %" PRIu64
                            ", memlimit %" PRIu64 ")",
                            name, ops, mem);
    return SK_OK;
}

static void xor_stream(uint8_t *dst, const uint8_t *stream, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] ^= stream[i];
}

/* Derives the scrypt stream of the secret key raw and XORs it into the
 * encrypted part. */
static sk_status sec_crypt(const char *name, uint8_t raw[SEC_BYTES], const char *password,
                           size_t password_len, uint64_t ops, uint64_t mem, sk_error *err)
{
    uint8_t *stream = sodium_malloc(SEC_ENCRYPTED_BYTES);
    if (!stream) return sk_error_set(err, SK_ENOMEM, "%s: out of memory", name);
    if (crypto_pwhash_scryptsalsa208sha256(stream, SEC_ENCRYPTED_BYTES, password, password_len,
                                           raw + SEC_SALT, ops, (size_t)mem) != 0) {
        sodium_free(stream);
        return sk_error_set(err, SK_ENOMEM,
                            "%s: not enough memory for key derivation (scrypt with %" PRIu64
                            " MiB)",
                            name, mem >> 20);
    }
    xor_stream(raw + SEC_ID, stream, SEC_ENCRYPTED_BYTES);
    sodium_free(stream);
    return SK_OK;
}

static sk_status password_check(const char *name, const char *password, size_t len, sk_error *err)
{
    if (len > SK_KEY_PASSWORD_MAX)
        return sk_error_set(err, SK_EINVAL, "%s: the password is longer than %d bytes", name,
                            SK_KEY_PASSWORD_MAX);
    if (len && memchr(password, '\0', len))
        return sk_error_set(err, SK_EINVAL, "%s: the password contains a NUL byte", name);
    return SK_OK;
}

/* Parses the text of a secret key file into raw (SEC_BYTES, still encrypted)
 * and checks the algorithm fields. */
static sk_status sec_decode(const char *name, const char *text, size_t len, uint8_t *raw,
                            sk_error *err)
{
    static const char kind[] = "a secret key file";
    sk_status st = text_check_nul(name, text, len, kind, err);
    if (st != SK_OK) return st;
    line_reader r;
    const char *line, *body;
    size_t n, body_len;
    line_reader_init(&r, text, len);
    if ((st = line_expect(&r, name, "the comment", &line, &n, err)) != SK_OK ||
        (st = line_comment(name, 1, line, n, COMMENT_PREFIX, SK_SIGN_COMMENT_MAX, &body, &body_len,
                           err)) != SK_OK ||
        (st = line_expect(&r, name, "the key", &line, &n, err)) != SK_OK)
        return st;
    if (b64_decode_exact(line, n, raw, SEC_BYTES) != 0)
        return sk_error_set(err, SK_EINVAL,
                            "%s: line 2 is not a base64 secret key (%d characters for %d bytes)",
                            name, B64_LEN(SEC_BYTES), SEC_BYTES);
    if ((st = line_expect_end(&r, name, err)) != SK_OK) return st;
    if (memcmp(raw + SEC_SIG_ALG, ALG_ED, 2) != 0)
        return sk_error_set(err, SK_EINVAL, "%s: unsupported signature algorithm (not Ed25519)",
                            name);
    if (memcmp(raw + SEC_CHK_ALG, CHK_BLAKE2B, 2) != 0)
        return sk_error_set(err, SK_EINVAL, "%s: unsupported checksum algorithm (not BLAKE2b)",
                            name);
    if (memcmp(raw + SEC_KDF_ALG, KDF_SCRYPT, 2) != 0 && memcmp(raw + SEC_KDF_ALG, KDF_NONE, 2) != 0)
        return sk_error_set(err, SK_EINVAL,
                            "%s: unsupported key derivation function (neither scrypt nor none)",
                            name);
    return SK_OK;
}

static sk_status sec_parse(const char *name, const char *text, size_t len, const char *password,
                           size_t password_len, sk_key_sec **out, sk_error *err)
{
    *out = NULL;
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    uint8_t *raw = sodium_malloc(SEC_BYTES);
    if (!raw) return sk_error_set(err, SK_ENOMEM, "%s: out of memory", name);
    uint8_t chk[CHK_BYTES];
    st = sec_decode(name, text, len, raw, err);
    if (st == SK_OK && memcmp(raw + SEC_KDF_ALG, KDF_SCRYPT, 2) == 0) {
        uint64_t ops = le64_load(raw + SEC_OPSLIMIT), mem = le64_load(raw + SEC_MEMLIMIT);
        if (!password)
            st = sk_error_set(err, SK_EINVAL, "%s: the secret key is encrypted; a password is needed",
                              name);
        if (st == SK_OK) st = password_check(name, password, password_len, err);
        if (st == SK_OK) st = kdf_check(name, ops, mem, err);
        if (st == SK_OK) st = sec_crypt(name, raw, password, password_len, ops, mem, err);
        if (st == SK_OK) {
            sec_checksum(raw, chk);
            if (sodium_memcmp(chk, raw + SEC_CHK, CHK_BYTES) != 0)
                st = sk_error_set(err, SK_EVERIFY,
                                  "%s: wrong password (or a damaged secret key)", name);
        }
    } else if (st == SK_OK && !sodium_is_zero(raw + SEC_CHK, CHK_BYTES)) {
        /* minisign -G -W leaves the checksum of unencrypted keys zero. */
        sec_checksum(raw, chk);
        if (sodium_memcmp(chk, raw + SEC_CHK, CHK_BYTES) != 0)
            st = sk_error_set(err, SK_EINVAL, "%s: checksum mismatch; the secret key is damaged",
                              name);
    }
    if (st == SK_OK && !sec_consistent(raw + SEC_SK))
        st = sk_error_set(err, SK_EINVAL,
                          "%s: the secret key is damaged (its public half does not match its seed)",
                          name);
    sk_key_sec *k = NULL;
    if (st == SK_OK && !(k = key_alloc())) st = sk_error_set(err, SK_ENOMEM, "%s: out of memory", name);
    if (st == SK_OK) {
        memcpy(k->id, raw + SEC_ID, sizeof k->id);
        memcpy(k->sk, raw + SEC_SK, sizeof k->sk);
        *out = k;
    }
    sodium_memzero(chk, sizeof chk);
    sodium_free(raw);
    return st;
}

sk_status sk_key_sec_parse(const char *text, size_t len, const char *password,
                           size_t password_len, sk_key_sec **out, sk_error *err)
{
    return sec_parse("secret key", text, len, password, password_len, out, err);
}

static sk_status sec_is_encrypted(const char *name, const char *text, size_t len, int *encrypted,
                                  sk_error *err)
{
    *encrypted = 0;
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    uint8_t *raw = sodium_malloc(SEC_BYTES);
    if (!raw) return sk_error_set(err, SK_ENOMEM, "%s: out of memory", name);
    st = sec_decode(name, text, len, raw, err);
    if (st == SK_OK) *encrypted = memcmp(raw + SEC_KDF_ALG, KDF_SCRYPT, 2) == 0;
    sodium_free(raw);
    return st;
}

sk_status sk_key_sec_is_encrypted(const char *text, size_t len, int *encrypted, sk_error *err)
{
    return sec_is_encrypted("secret key", text, len, encrypted, err);
}

sk_status sk_key_sec_load(const char *path, const char *password, size_t password_len,
                          sk_key_sec **out, sk_error *err)
{
    char *text;
    size_t len;
    *out = NULL;
    sk_status st = sign_init(err);
    if (st == SK_OK) st = file_read_small(path, KEY_FILE_MAX, 1, "a secret key file", &text, &len, err);
    if (st != SK_OK) return st;
    st = sec_parse(path, text, len, password, password_len, out, err);
    sodium_free(text);
    return st;
}

sk_status sk_key_sec_file_is_encrypted(const char *path, int *encrypted, sk_error *err)
{
    char *text;
    size_t len;
    *encrypted = 0;
    sk_status st = sign_init(err);
    if (st == SK_OK) st = file_read_small(path, KEY_FILE_MAX, 1, "a secret key file", &text, &len, err);
    if (st != SK_OK) return st;
    st = sec_is_encrypted(path, text, len, encrypted, err);
    sodium_free(text);
    return st;
}

sk_status sk_key_sec_format(const sk_key_sec *key, const sk_key_save_opts *opts, char *out,
                            size_t out_size, size_t *out_len, sk_key_kdf *used, sk_error *err)
{
    static const sk_key_save_opts none = {0};
    const char *name = "secret key";
    if (!opts) opts = &none;
    if (out_len) *out_len = 0;
    if (used) used->opslimit = used->memlimit = 0;
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    const char *comment = opts->comment;
    if (!comment)
        comment = opts->password ? "skiff encrypted secret key" : "skiff secret key (not encrypted)";
    if ((st = check_comment("secret key comment", comment, SK_SIGN_COMMENT_MAX, err)) != SK_OK)
        return st;
    if (opts->password && (st = password_check(name, opts->password, opts->password_len, err)) != SK_OK)
        return st;
    size_t need = sizeof COMMENT_PREFIX - 1 + strlen(comment) + 1 + B64_LEN(SEC_BYTES) + 1 + 1;
    if (out_size < need)
        return sk_error_set(err, SK_EINVAL, "secret key text needs %zu bytes, the buffer has %zu",
                            need, out_size);

    uint8_t *raw = sodium_malloc(SEC_BYTES);
    char *b64 = sodium_malloc(B64_LEN(SEC_BYTES) + 1);
    if (!raw || !b64) {
        if (raw) sodium_free(raw);
        if (b64) sodium_free(b64);
        return sk_error_set(err, SK_ENOMEM, "out of memory for a secret key");
    }
    memset(raw, 0, SEC_BYTES);
    memcpy(raw + SEC_SIG_ALG, ALG_ED, 2);
    memcpy(raw + SEC_KDF_ALG, opts->password ? KDF_SCRYPT : KDF_NONE, 2);
    memcpy(raw + SEC_CHK_ALG, CHK_BLAKE2B, 2);
    memcpy(raw + SEC_ID, key->id, SK_KEY_ID_BYTES);
    memcpy(raw + SEC_SK, key->sk, SK_SECRET_BYTES);
    sec_checksum(raw, raw + SEC_CHK);
    if (opts->password) {
        int fixed = opts->kdf.opslimit != 0 || opts->kdf.memlimit != 0;
        uint64_t ops = fixed ? opts->kdf.opslimit : crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE;
        uint64_t mem = fixed ? opts->kdf.memlimit : crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE;
        randombytes_buf(raw + SEC_SALT, crypto_pwhash_scryptsalsa208sha256_SALTBYTES);
        st = kdf_check(name, ops, mem, err);
        while (st == SK_OK) {
            st = sec_crypt(name, raw, opts->password, opts->password_len, ops, mem, err);
            if (st != SK_ENOMEM || fixed) break;
            /* Like minisign: halve both limits until the derivation fits. */
            ops /= 2;
            mem /= 2;
            if (ops < crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_MIN ||
                mem < crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_MIN)
                break;
            st = SK_OK;
        }
        if (st == SK_OK) {
            le64_store(raw + SEC_OPSLIMIT, ops);
            le64_store(raw + SEC_MEMLIMIT, mem);
            if (used) {
                used->opslimit = ops;
                used->memlimit = mem;
            }
        }
    }
    if (st == SK_OK) {
        b64_encode(b64, B64_LEN(SEC_BYTES) + 1, raw, SEC_BYTES);
        int n = snprintf(out, out_size, "%s%s\n%s\n", COMMENT_PREFIX, comment, b64);
        assert(n > 0 && (size_t)n < out_size);
        if (out_len) *out_len = (size_t)n;
    }
    sodium_free(b64);
    sodium_free(raw);
    return st;
}

sk_status sk_key_pub_format(const sk_key_pub *pub, const char *comment, char *out,
                            size_t out_size, size_t *out_len, sk_error *err)
{
    char idhex[SK_KEY_ID_HEX_SIZE], def[64], b64[SK_KEY_STRING_SIZE];
    if (out_len) *out_len = 0;
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    sk_key_id_hex(pub->id, idhex);
    if (!comment) {
        snprintf(def, sizeof def, "skiff public key %s", idhex);
        comment = def;
    }
    if ((st = check_comment("public key comment", comment, SK_SIGN_COMMENT_MAX, err)) != SK_OK)
        return st;
    sk_key_pub_to_string(pub, b64);
    int n = snprintf(out, out_size, "%s%s\n%s\n", COMMENT_PREFIX, comment, b64);
    if (n < 0 || (size_t)n >= out_size)
        return sk_error_set(err, SK_EINVAL, "public key text does not fit in %zu bytes", out_size);
    if (out_len) *out_len = (size_t)n;
    return SK_OK;
}

void sk_key_pub_to_string(const sk_key_pub *pub, char out[SK_KEY_STRING_SIZE])
{
    uint8_t raw[PUB_BYTES];
    memcpy(raw + PUB_ALG, ALG_ED, 2);
    memcpy(raw + PUB_ID, pub->id, SK_KEY_ID_BYTES);
    memcpy(raw + PUB_PK, pub->pk, SK_KEY_PUBLIC_BYTES);
    b64_encode(out, SK_KEY_STRING_SIZE, raw, PUB_BYTES);
}

/* Decodes the base64 key of n characters at s. */
static sk_status pub_decode(const char *name, const char *what, const char *s, size_t n,
                            sk_key_pub *out, sk_error *err)
{
    uint8_t raw[PUB_BYTES];
    if (b64_decode_exact(s, n, raw, PUB_BYTES) != 0)
        return sk_error_set(err, SK_EINVAL, "%s: %s is not a base64 public key (%d characters)",
                            name, what, B64_LEN(PUB_BYTES));
    if (memcmp(raw + PUB_ALG, ALG_ED, 2) != 0)
        return sk_error_set(err, SK_EINVAL, "%s: unsupported signature algorithm (not Ed25519)",
                            name);
    memcpy(out->id, raw + PUB_ID, SK_KEY_ID_BYTES);
    memcpy(out->pk, raw + PUB_PK, SK_KEY_PUBLIC_BYTES);
    return SK_OK;
}

sk_status sk_key_pub_from_string(const char *s, sk_key_pub *out, sk_error *err)
{
    memset(out, 0, sizeof *out);
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    if (!s) return sk_error_set(err, SK_EINVAL, "public key: no string given");
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1])) n--;
    while (n && strchr(" \t\r\n", s[0])) s++, n--;
    return pub_decode("public key", "the string", s, n, out, err);
}

static sk_status pub_parse(const char *name, const char *text, size_t len, sk_key_pub *out,
                           sk_error *err)
{
    memset(out, 0, sizeof *out);
    sk_status st = sign_init(err);
    if (st == SK_OK) st = text_check_nul(name, text, len, "a public key file", err);
    if (st != SK_OK) return st;
    line_reader r;
    const char *line, *body;
    size_t n, body_len;
    line_reader_init(&r, text, len);
    if ((st = line_expect(&r, name, "the comment", &line, &n, err)) != SK_OK ||
        (st = line_comment(name, 1, line, n, COMMENT_PREFIX, SK_SIGN_COMMENT_MAX, &body, &body_len,
                           err)) != SK_OK ||
        (st = line_expect(&r, name, "the key", &line, &n, err)) != SK_OK ||
        (st = pub_decode(name, "line 2", line, n, out, err)) != SK_OK ||
        (st = line_expect_end(&r, name, err)) != SK_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    return SK_OK;
}

sk_status sk_key_pub_parse(const char *text, size_t len, sk_key_pub *out, sk_error *err)
{
    return pub_parse("public key", text, len, out, err);
}

sk_status sk_key_pub_load(const char *path, sk_key_pub *out, sk_error *err)
{
    char *text;
    size_t len;
    memset(out, 0, sizeof *out);
    sk_status st = file_read_small(path, KEY_FILE_MAX, 0, "a public key file", &text, &len, err);
    if (st != SK_OK) return st;
    st = pub_parse(path, text, len, out, err);
    free(text);
    return st;
}

sk_status sk_key_pub_save(const sk_key_pub *pub, const char *path, const char *comment, int force,
                          sk_error *err)
{
    char text[SK_KEY_PUB_TEXT_SIZE];
    size_t len;
    sk_status st = sk_key_pub_format(pub, comment, text, sizeof text, &len, err);
    if (st != SK_OK) {
        sk_error_prefix(err, "%s: ", path);
        return st;
    }
    return file_write_atomic(path, text, len, 0644, force, err);
}

sk_status sk_key_sec_save(const sk_key_sec *key, const char *path, const sk_key_save_opts *opts,
                          sk_key_kdf *used, sk_error *err)
{
    size_t len;
    char *text = sodium_malloc(SK_KEY_SEC_TEXT_SIZE);
    if (!text) return sk_error_set(err, SK_ENOMEM, "%s: out of memory", path);
    sk_status st = sk_key_sec_format(key, opts, text, SK_KEY_SEC_TEXT_SIZE, &len, used, err);
    if (st != SK_OK)
        sk_error_prefix(err, "%s: ", path);
    else
        st = file_write_atomic(path, text, len, 0600, opts && opts->force, err);
    sodium_free(text);
    return st;
}

sk_status sk_key_pair_save(const sk_key_sec *key, const char *pub_path, const char *sec_path,
                           const sk_key_save_opts *opts, sk_key_kdf *used, sk_error *err)
{
    static const sk_key_save_opts none = {0};
    if (!opts) opts = &none;
    if (!pub_path || !sec_path || !*pub_path || !*sec_path)
        return sk_error_set(err, SK_EINVAL, "both a public and a secret key file name are needed");
    if (strcmp(pub_path, sec_path) == 0)
        return sk_error_set(err, SK_EINVAL, "%s: cannot be both the public and the secret key file",
                            pub_path);
    struct stat sb;
    if (!opts->force) {
        if (lstat(pub_path, &sb) == 0) return error_exists(pub_path, err);
        if (lstat(sec_path, &sb) == 0) return error_exists(sec_path, err);
    }
    sk_key_pub pub;
    sk_key_sec_public(key, &pub);
    char pub_text[SK_KEY_PUB_TEXT_SIZE];
    size_t pub_len, sec_len;
    sk_status st = sk_key_pub_format(&pub, NULL, pub_text, sizeof pub_text, &pub_len, err);
    if (st != SK_OK) return st;
    char *sec_text = sodium_malloc(SK_KEY_SEC_TEXT_SIZE);
    if (!sec_text) return sk_error_set(err, SK_ENOMEM, "%s: out of memory", sec_path);
    pending_file sec_pf = {NULL, -1}, pub_pf = {NULL, -1};
    st = sk_key_sec_format(key, opts, sec_text, SK_KEY_SEC_TEXT_SIZE, &sec_len, used, err);
    if (st != SK_OK) sk_error_prefix(err, "%s: ", sec_path);
    if (st == SK_OK) st = file_prepare(sec_path, sec_text, sec_len, 0600, &sec_pf, err);
    sodium_free(sec_text);
    if (st == SK_OK) st = file_prepare(pub_path, pub_text, pub_len, 0644, &pub_pf, err);
    if (st == SK_OK) st = file_commit(&sec_pf, sec_path, opts->force, err);
    if (st == SK_OK) {
        struct stat ss;
        if (lstat(pub_path, &sb) == 0 && stat(sec_path, &ss) == 0 && sb.st_dev == ss.st_dev &&
            sb.st_ino == ss.st_ino)
            st = sk_error_set(err, SK_EINVAL,
                              "%s: is the same file as %s; the public key was not written",
                              pub_path, sec_path);
        else
            st = file_commit(&pub_pf, pub_path, opts->force, err);
        if (st != SK_OK && !opts->force) unlink(sec_path); /* it was new: no half pair */
    }
    file_discard(&sec_pf);
    file_discard(&pub_pf);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Passwords */

static char *password_alloc(void)
{
    char *p = sodium_malloc(PASSWORD_BUF);
    if (p) memset(p, 0, PASSWORD_BUF);
    return p;
}

void sk_key_password_free(char *password)
{
    if (password) sodium_free(password);
}

sk_status sk_key_password_from_file(const char *path, char **out, size_t *len, sk_error *err)
{
    *out = NULL;
    *len = 0;
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sk_error_set(err, SK_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *pw = password_alloc();
    if (!pw) {
        close(fd);
        return sk_error_set(err, SK_ENOMEM, "%s: out of memory", path);
    }
    /* One byte at a time, so that nothing after the first line is consumed
     * (the file may be standard input). */
    size_t n = 0;
    while (st == SK_OK) {
        if (n > SK_KEY_PASSWORD_MAX + 1) {
            st = sk_error_set(err, SK_EINVAL, "%s: the password is longer than %d bytes", path,
                              SK_KEY_PASSWORD_MAX);
            break;
        }
        ssize_t r = read(fd, pw + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) st = sk_error_set(err, SK_EIO, "%s: cannot read: %s", path, strerror(errno));
        if (r <= 0 || pw[n] == '\n') break;
        n++;
    }
    close(fd);
    if (st == SK_OK && n > 0 && pw[n - 1] == '\r') n--;
    if (st == SK_OK) st = password_check(path, pw, n, err);
    if (st != SK_OK) {
        sk_key_password_free(pw);
        return st;
    }
    sodium_memzero(pw + n, PASSWORD_BUF - n);
    *out = pw;
    *len = n;
    return SK_OK;
}

sk_status sk_key_password_from_env(const char *name, char **out, size_t *len, sk_error *err)
{
    *out = NULL;
    *len = 0;
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    const char *v = getenv(name);
    if (!v) return SK_OK;
    size_t n = strlen(v);
    if (n > SK_KEY_PASSWORD_MAX)
        return sk_error_set(err, SK_EINVAL, "$%s: the password is longer than %d bytes", name,
                            SK_KEY_PASSWORD_MAX);
    char *pw = password_alloc();
    if (!pw) return sk_error_set(err, SK_ENOMEM, "out of memory for a password");
    memcpy(pw, v, n);
    *out = pw;
    *len = n;
    return SK_OK;
}

static volatile sig_atomic_t prompt_signal;

static void prompt_on_signal(int sig)
{
    prompt_signal = sig;
}

static int fd_write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR && !prompt_signal) continue;
        if (w < 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one line from the terminal into pw (PASSWORD_BUF bytes). */
static sk_status prompt_line(int fd, const char *prompt, char *pw, size_t *len, sk_error *err)
{
    size_t n = 0;
    int too_long = 0;
    char c = 0;
    sk_status st = SK_OK;
    if (fd_write_all(fd, prompt, strlen(prompt)) != 0)
        return sk_error_set(err, SK_EIO, "cannot write to the terminal: %s", strerror(errno));
    for (;;) {
        if (prompt_signal) {
            st = sk_error_set(err, SK_EIO, "interrupted while reading the password");
            break;
        }
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = sk_error_set(err, SK_EIO, "cannot read from the terminal: %s", strerror(errno));
            break;
        }
        if (r == 0 || c == '\n') break;
        if (n < SK_KEY_PASSWORD_MAX)
            pw[n++] = c;
        else
            too_long = 1;
    }
    c = 0;
    (void)fd_write_all(fd, "\n", 1);
    if (st == SK_OK && too_long)
        st = sk_error_set(err, SK_EINVAL, "the password is longer than %d bytes",
                          SK_KEY_PASSWORD_MAX);
    if (st == SK_OK && n && memchr(pw, '\0', n))
        st = sk_error_set(err, SK_EINVAL, "the password contains a NUL byte");
    *len = n;
    return st;
}

sk_status sk_key_password_prompt(const char *prompt, int confirm, char **out, size_t *len,
                                 sk_error *err)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction old_sa[sizeof sigs / sizeof sigs[0]];
    struct termios old_tio, tio;
    *out = NULL;
    *len = 0;
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return sk_error_set(err, SK_EIO, "no terminal to ask for a password: %s", strerror(errno));
    if (tcgetattr(fd, &old_tio) != 0) {
        close(fd);
        return sk_error_set(err, SK_EIO, "no terminal to ask for a password: %s", strerror(errno));
    }
    char *pw = password_alloc(), *again = confirm ? password_alloc() : NULL;
    if (!pw || (confirm && !again)) {
        sk_key_password_free(pw);
        sk_key_password_free(again);
        close(fd);
        return sk_error_set(err, SK_ENOMEM, "out of memory for a password");
    }
    tio = old_tio;
    tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    prompt_signal = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = prompt_on_signal; /* no SA_RESTART: read() returns EINTR */
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, &old_sa[i]);

    size_t n = 0, n2 = 0;
    struct termios now;
    /* tcsetattr succeeds if any change was made: check that echo is off. */
    if (tcsetattr(fd, TCSAFLUSH, &tio) != 0 || tcgetattr(fd, &now) != 0 || (now.c_lflag & ECHO))
        st = sk_error_set(err, SK_EIO, "cannot turn off echo on the terminal");
    if (st == SK_OK) st = prompt_line(fd, prompt ? prompt : "Password: ", pw, &n, err);
    if (st == SK_OK && confirm) {
        st = prompt_line(fd, "Password (again): ", again, &n2, err);
        if (st == SK_OK && (n != n2 || sodium_memcmp(pw, again, n) != 0))
            st = sk_error_set(err, SK_EINVAL, "the two passwords do not match");
    }

    tcsetattr(fd, TCSAFLUSH, &old_tio);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &old_sa[i], NULL);
    close(fd);
    sk_key_password_free(again);
    if (prompt_signal) {
        int sig = prompt_signal;
        prompt_signal = 0;
        sk_key_password_free(pw);
        raise(sig); /* with the caller's handler back in place */
        return sk_error_set(err, SK_EIO, "interrupted while reading the password");
    }
    if (st != SK_OK) {
        sk_key_password_free(pw);
        return st;
    }
    *out = pw;
    *len = n;
    return SK_OK;
}

sk_status sk_key_password_get(const char *path, const char *env_name, const char *prompt,
                              int confirm, char **out, size_t *len, sk_error *err)
{
    *out = NULL;
    *len = 0;
    if (path) return sk_key_password_from_file(path, out, len, err);
    if (env_name) {
        sk_status st = sk_key_password_from_env(env_name, out, len, err);
        if (st != SK_OK || *out) return st;
    }
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return sk_error_set(err, SK_EINVAL,
                            "no password given: use --password-file FILE%s%s, or run on a terminal",
                            env_name ? ", set $" : "", env_name ? env_name : "");
    close(fd);
    return sk_key_password_prompt(prompt, confirm, out, len, err);
}

/* ------------------------------------------------------------------------ */
/* minisign signatures */

static sk_status minisig_parse(const char *name, const char *text, size_t len, sk_minisig *out,
                               sk_error *err)
{
    static const char kind[] = "a minisign signature";
    memset(out, 0, sizeof *out);
    sk_status st = sign_init(err);
    if (st == SK_OK) st = text_check_nul(name, text, len, kind, err);
    if (st != SK_OK) return st;
    line_reader r;
    const char *line, *body;
    size_t n, body_len;
    uint8_t block[SIG_BYTES];
    line_reader_init(&r, text, len);
    if ((st = line_expect(&r, name, "the untrusted comment", &line, &n, err)) != SK_OK ||
        (st = line_comment(name, 1, line, n, COMMENT_PREFIX, SK_SIGN_COMMENT_MAX, &body, &body_len,
                           err)) != SK_OK)
        goto fail;
    memcpy(out->comment, body, body_len);
    out->comment[body_len] = '\0';
    if ((st = line_expect(&r, name, "the signature", &line, &n, err)) != SK_OK) goto fail;
    if (b64_decode_exact(line, n, block, SIG_BYTES) != 0) {
        st = sk_error_set(err, SK_EINVAL,
                          "%s: line 2 is not a base64 signature block (%d characters for %d bytes)",
                          name, B64_LEN(SIG_BYTES), SIG_BYTES);
        goto fail;
    }
    if (memcmp(block + SIG_ALG, ALG_HASHED, 2) == 0) {
        out->prehashed = 1;
    } else if (memcmp(block + SIG_ALG, ALG_ED, 2) == 0) {
        out->prehashed = 0;
    } else {
        st = sk_error_set(err, SK_EINVAL, "%s: unsupported signature algorithm 0x%02x%02x", name,
                          block[SIG_ALG], block[SIG_ALG + 1]);
        goto fail;
    }
    memcpy(out->key_id, block + SIG_ID, SK_KEY_ID_BYTES);
    memcpy(out->sig, block + SIG_SIG, SK_SIGN_BYTES);
    if ((st = line_expect(&r, name, "the trusted comment", &line, &n, err)) != SK_OK ||
        (st = line_comment(name, 3, line, n, TRUSTED_PREFIX, SK_SIGN_TRUSTED_COMMENT_MAX, &body,
                           &body_len, err)) != SK_OK)
        goto fail;
    if (!text_is_printable(body, body_len)) {
        st = sk_error_set(err, SK_EINVAL, "%s: the trusted comment holds unprintable characters",
                          name);
        goto fail;
    }
    memcpy(out->trusted_comment, body, body_len);
    out->trusted_comment[body_len] = '\0';
    if ((st = line_expect(&r, name, "the global signature", &line, &n, err)) != SK_OK) goto fail;
    if (b64_decode_exact(line, n, out->global_sig, SK_SIGN_BYTES) != 0) {
        st = sk_error_set(err, SK_EINVAL,
                          "%s: line 4 is not a base64 global signature (%d characters)", name,
                          B64_LEN(SK_SIGN_BYTES));
        goto fail;
    }
    if ((st = line_expect_end(&r, name, err)) != SK_OK) goto fail;
    return SK_OK;
fail:
    memset(out, 0, sizeof *out);
    return st;
}

sk_status sk_sign_minisig_parse(const char *text, size_t len, sk_minisig *out, sk_error *err)
{
    return minisig_parse("signature", text, len, out, err);
}

sk_status sk_sign_minisig_read(const char *path, char **text, size_t *len, sk_error *err)
{
    return file_read_small(path, SK_SIGN_MINISIG_FILE_MAX, 0, "a minisign signature", text, len,
                           err);
}

/* The signature over a prehash, the global signature, both re-verified, and
 * the .minisig text. */
static sk_status minisig_make(const sk_key_sec *key, const uint8_t hash[HASH_BYTES],
                              const char *comment, const char *tc, char **out_text,
                              size_t *out_len, sk_error *err)
{
    const uint8_t *pk = key->sk + SK_KEY_SEED_BYTES;
    uint8_t block[SIG_BYTES], global[SK_SIGN_BYTES];
    char block_b64[B64_LEN(SIG_BYTES) + 1], global_b64[B64_LEN(SK_SIGN_BYTES) + 1];
    size_t cn = strlen(comment), tn = strlen(tc), gn = SK_SIGN_BYTES + tn;
    uint8_t *gmsg = malloc(gn);
    if (!gmsg) return sk_error_set(err, SK_ENOMEM, "out of memory for a signature");
    memcpy(block + SIG_ALG, ALG_HASHED, 2);
    memcpy(block + SIG_ID, key->id, SK_KEY_ID_BYTES);
    crypto_sign_detached(block + SIG_SIG, NULL, hash, HASH_BYTES, key->sk);
    memcpy(gmsg, block + SIG_SIG, SK_SIGN_BYTES);
    memcpy(gmsg + SK_SIGN_BYTES, tc, tn);
    crypto_sign_detached(global, NULL, gmsg, gn, key->sk);
    int ok = crypto_sign_verify_detached(block + SIG_SIG, hash, HASH_BYTES, pk) == 0 &&
             crypto_sign_verify_detached(global, gmsg, gn, pk) == 0;
    free(gmsg);
    if (!ok)
        return sk_error_set(err, SK_EINTERNAL,
                            "the fresh signature does not verify; the secret key may be damaged");
    b64_encode(block_b64, sizeof block_b64, block, SIG_BYTES);
    b64_encode(global_b64, sizeof global_b64, global, SK_SIGN_BYTES);
    size_t size = sizeof COMMENT_PREFIX - 1 + cn + 1 + B64_LEN(SIG_BYTES) + 1 +
                  sizeof TRUSTED_PREFIX - 1 + tn + 1 + B64_LEN(SK_SIGN_BYTES) + 1 + 1;
    char *text = malloc(size);
    if (!text) return sk_error_set(err, SK_ENOMEM, "out of memory for a signature");
    int n = snprintf(text, size, "%s%s\n%s\n%s%s\n%s\n", COMMENT_PREFIX, comment, block_b64,
                     TRUSTED_PREFIX, tc, global_b64);
    assert(n > 0 && (size_t)n == size - 1);
    *out_text = text;
    if (out_len) *out_len = (size_t)n;
    return SK_OK;
}

/* Checks the comments and fills in the defaults; *tc_owned is a malloc'd
 * default trusted comment (or NULL). */
static sk_status minisig_comments(const char *file, const char **comment, const char **tc,
                                  char **tc_owned, sk_error *err)
{
    *tc_owned = NULL;
    if (!*comment) *comment = "signature from skiff secret key";
    sk_status st = check_comment("untrusted comment", *comment, SK_SIGN_COMMENT_MAX, err);
    if (st != SK_OK) return st;
    if (*tc) return check_comment("trusted comment", *tc, SK_SIGN_TRUSTED_COMMENT_MAX, err);
    long long now = (long long)time(NULL);
    const char *base = NULL;
    if (file) {
        base = strrchr(file, '/');
        base = base ? base + 1 : file;
    }
    int n = base ? snprintf(NULL, 0, "timestamp:%lld\tfile:%s\thashed", now, base)
                 : snprintf(NULL, 0, "timestamp:%lld\thashed", now);
    char *def = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (!def) return sk_error_set(err, SK_ENOMEM, "out of memory for a trusted comment");
    if (base)
        snprintf(def, (size_t)n + 1, "timestamp:%lld\tfile:%s\thashed", now, base);
    else
        snprintf(def, (size_t)n + 1, "timestamp:%lld\thashed", now);
    if ((size_t)n > SK_SIGN_TRUSTED_COMMENT_MAX || !text_is_printable(def, (size_t)n)) {
        free(def);
        return sk_error_set(err, SK_EINVAL,
                            "the file name cannot go into the default trusted comment "
                            "(unprintable or too long); give a trusted comment");
    }
    *tc = def;
    *tc_owned = def;
    return SK_OK;
}

sk_status sk_sign_minisig_buf(const sk_key_sec *key, const void *msg, size_t len,
                              const char *comment, const char *trusted_comment, char **out_text,
                              size_t *out_len, sk_error *err)
{
    uint8_t hash[HASH_BYTES];
    char *tc_owned;
    *out_text = NULL;
    if (out_len) *out_len = 0;
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    if (!msg && len) return sk_error_set(err, SK_EINVAL, "no message given");
    if ((st = minisig_comments(NULL, &comment, &trusted_comment, &tc_owned, err)) != SK_OK)
        return st;
    crypto_generichash(hash, HASH_BYTES, nonnull_msg(msg), len, NULL, 0);
    st = minisig_make(key, hash, comment, trusted_comment, out_text, out_len, err);
    free(tc_owned);
    return st;
}

sk_status sk_sign_minisig_file(const sk_key_sec *key, const char *path, const char *comment,
                               const char *trusted_comment, char **out_text, size_t *out_len,
                               sk_error *err)
{
    uint8_t hash[HASH_BYTES];
    char *tc_owned;
    *out_text = NULL;
    if (out_len) *out_len = 0;
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    if ((st = minisig_comments(path, &comment, &trusted_comment, &tc_owned, err)) != SK_OK) {
        sk_error_prefix(err, "%s: ", path);
        return st;
    }
    st = file_hash(path, hash, err);
    if (st == SK_OK) st = minisig_make(key, hash, comment, trusted_comment, out_text, out_len, err);
    free(tc_owned);
    return st;
}

/* Key id and legacy policy: the checks that need no message. */
static sk_status minisig_precheck(const char *name, const sk_key_pub *pub, const sk_minisig *ms,
                                  unsigned flags, sk_error *err)
{
    if (!ms->prehashed && (flags & SK_SIGN_REQUIRE_PREHASHED))
        return sk_error_set(err, SK_EVERIFY,
                            "%s: legacy (not prehashed) signature, and prehashed signatures are "
                            "required",
                            name);
    if (memcmp(ms->key_id, pub->id, SK_KEY_ID_BYTES) != 0) {
        char a[SK_KEY_ID_HEX_SIZE], b[SK_KEY_ID_HEX_SIZE];
        sk_key_id_hex(ms->key_id, a);
        sk_key_id_hex(pub->id, b);
        return sk_error_set(err, SK_EVERIFY,
                            "%s: signed with key %s, but the public key is %s", name, a, b);
    }
    return SK_OK;
}

/* The signature over m (the prehash or the whole message), then the global
 * signature over the trusted comment. */
static sk_status minisig_check(const char *name, const sk_key_pub *pub, const sk_minisig *ms,
                               const uint8_t *m, size_t mlen, sk_error *err)
{
    if (crypto_sign_verify_detached(ms->sig, nonnull_msg(m), mlen, pub->pk) != 0)
        return sk_error_set(err, SK_EVERIFY, "%s: the signature does not match the signed data",
                            name);
    size_t tn = strlen(ms->trusted_comment), gn = SK_SIGN_BYTES + tn;
    uint8_t *gmsg = malloc(gn);
    if (!gmsg) return sk_error_set(err, SK_ENOMEM, "out of memory to verify a signature");
    memcpy(gmsg, ms->sig, SK_SIGN_BYTES);
    memcpy(gmsg + SK_SIGN_BYTES, ms->trusted_comment, tn);
    int ok = crypto_sign_verify_detached(ms->global_sig, gmsg, gn, pub->pk) == 0;
    free(gmsg);
    if (!ok)
        return sk_error_set(err, SK_EVERIFY,
                            "%s: the signature of the trusted comment does not verify", name);
    return SK_OK;
}

sk_status sk_sign_minisig_verify_buf(const sk_key_pub *pub, const void *msg, size_t len,
                                     const char *sig_text, size_t sig_len, unsigned flags,
                                     sk_minisig *out, sk_error *err)
{
    const char *name = "signature";
    uint8_t hash[HASH_BYTES];
    sk_minisig *ms = malloc(sizeof *ms);
    if (!ms) return sk_error_set(err, SK_ENOMEM, "out of memory to verify a signature");
    sk_status st = minisig_parse(name, sig_text, sig_len, ms, err);
    if (st == SK_OK && !msg && len) st = sk_error_set(err, SK_EINVAL, "no message given");
    if (st == SK_OK) st = minisig_precheck(name, pub, ms, flags, err);
    if (st == SK_OK) {
        if (ms->prehashed) {
            crypto_generichash(hash, HASH_BYTES, nonnull_msg(msg), len, NULL, 0);
            st = minisig_check(name, pub, ms, hash, HASH_BYTES, err);
        } else {
            st = minisig_check(name, pub, ms, msg, len, err);
        }
    }
    if (st == SK_OK && out) *out = *ms;
    free(ms);
    return st;
}

sk_status sk_sign_minisig_verify_file(const sk_key_pub *pub, const char *path,
                                      const char *sig_text, size_t sig_len, unsigned flags,
                                      sk_minisig *out, sk_error *err)
{
    uint8_t hash[HASH_BYTES];
    sk_minisig *ms = malloc(sizeof *ms);
    if (!ms) return sk_error_set(err, SK_ENOMEM, "out of memory to verify a signature");
    sk_status st = minisig_parse("signature", sig_text, sig_len, ms, err);
    if (st != SK_OK) sk_error_prefix(err, "%s: ", path);
    if (st == SK_OK) st = minisig_precheck(path, pub, ms, flags, err);
    if (st == SK_OK) {
        if (ms->prehashed) {
            st = file_hash(path, hash, err);
            if (st == SK_OK) st = minisig_check(path, pub, ms, hash, HASH_BYTES, err);
        } else {
            uint8_t *m;
            size_t mlen;
            st = file_read_all(path, &m, &mlen, err);
            if (st == SK_OK) st = minisig_check(path, pub, ms, m, mlen, err);
            free(m); /* NULL when reading failed */
        }
    }
    if (st == SK_OK && out) *out = *ms;
    free(ms);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Plain Ed25519 */

sk_status sk_sign_ed25519(const sk_key_sec *key, const void *msg, size_t len,
                          uint8_t sig[SK_SIGN_BYTES], sk_error *err)
{
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    if (!msg && len) return sk_error_set(err, SK_EINVAL, "no message given");
    crypto_sign_detached(sig, NULL, nonnull_msg(msg), len, key->sk);
    if (crypto_sign_verify_detached(sig, nonnull_msg(msg), len, key->sk + SK_KEY_SEED_BYTES) != 0) {
        sodium_memzero(sig, SK_SIGN_BYTES);
        return sk_error_set(err, SK_EINTERNAL,
                            "the fresh signature does not verify; the secret key may be damaged");
    }
    return SK_OK;
}

sk_status sk_sign_ed25519_verify(const sk_key_pub *pub, const void *msg, size_t len,
                                 const uint8_t sig[SK_SIGN_BYTES], sk_error *err)
{
    sk_status st = sign_init(err);
    if (st != SK_OK) return st;
    if (!msg && len) return sk_error_set(err, SK_EINVAL, "no message given");
    if (crypto_sign_verify_detached(sig, nonnull_msg(msg), len, pub->pk) != 0)
        return sk_error_set(err, SK_EVERIFY, "the Ed25519 signature does not verify");
    return SK_OK;
}

void sk_sign_ed25519_format(const uint8_t sig[SK_SIGN_BYTES], char out[SK_SIGN_ED25519_TEXT_SIZE])
{
    b64_encode(out, SK_SIGN_ED25519_TEXT_SIZE, sig, SK_SIGN_BYTES);
    out[B64_LEN(SK_SIGN_BYTES)] = '\n';
    out[B64_LEN(SK_SIGN_BYTES) + 1] = '\0';
}

sk_status sk_sign_ed25519_parse(const char *text, size_t len, uint8_t sig[SK_SIGN_BYTES],
                                sk_error *err)
{
    const char *name = "Ed25519 signature";
    memset(sig, 0, SK_SIGN_BYTES);
    sk_status st = sign_init(err);
    if (st == SK_OK && len > ED25519_FILE_MAX)
        st = sk_error_set(err, SK_EINVAL, "%s: larger than %d bytes", name, ED25519_FILE_MAX);
    if (st == SK_OK) st = text_check_nul(name, text, len, "a base64 signature", err);
    if (st != SK_OK) return st;
    if (text[len - 1] == '\n') len--;
    if (len && text[len - 1] == '\r') len--;
    if (b64_decode_exact(text, len, sig, SK_SIGN_BYTES) != 0) {
        memset(sig, 0, SK_SIGN_BYTES);
        return sk_error_set(err, SK_EINVAL,
                            "%s: not one line of base64 for 64 bytes (%d characters)", name,
                            B64_LEN(SK_SIGN_BYTES));
    }
    return SK_OK;
}

sk_status sk_key_sec_load_asking(const char *path, const char *password_file, const char *env_name,
                                 sk_key_sec **out, sk_error *err)
{
    int enc = 0;
    char *pw = NULL;
    size_t pw_len = 0;
    *out = NULL;
    sk_status s = sk_key_sec_file_is_encrypted(path, &enc, err);
    if (!s && enc) {
        char prompt[256];
        snprintf(prompt, sizeof prompt, "Password for %s: ", path);
        s = sk_key_password_get(password_file, env_name, prompt, 0, &pw, &pw_len, err);
    }
    if (!s) s = sk_key_sec_load(path, pw, pw_len, out, err);
    sk_key_password_free(pw);
    return s;
}
