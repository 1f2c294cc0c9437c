/* Hashes of package files: SHA-256 (libsodium) and SHA-384, the hash of
 * Subresource Integrity strings. libsodium has SHA-512 but no SHA-384 (same
 * compression function, other initial values, truncated), so both SHA-512 and
 * SHA-384 are implemented here from FIPS 180-4; tests check them against the
 * FIPS examples, libsodium's SHA-512 and coreutils' sha384sum.
 *
 * Contexts are plain structs on the caller's stack; nothing allocates, nothing
 * fails. */
#ifndef SK_SHA_H
#define SK_SHA_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define SK_SHA256_BYTES 32
#define SK_SHA384_BYTES 48
#define SK_SHA512_BYTES 64
#define SK_SHA256_HEX_SIZE 65 /* 64 hex digits and NUL */
#define SK_SRI_SIZE 72        /* "sha384-" + 64 base64 characters and NUL */

typedef struct sk_sha512_ctx {
    uint64_t h[8];
    uint64_t bytes;        /* message length so far (2^64 bytes is plenty) */
    uint8_t buf[128];
    size_t n;              /* bytes waiting in buf */
    size_t out_len;        /* 64 for SHA-512, 48 for SHA-384 */
} sk_sha512_ctx;

void sk_sha512_init(sk_sha512_ctx *c);
void sk_sha384_init(sk_sha512_ctx *c);
void sk_sha512_update(sk_sha512_ctx *c, const void *data, size_t len);
/* Writes out_len bytes (64 or 48, per the init used) to out. */
void sk_sha512_final(sk_sha512_ctx *c, uint8_t *out);

/* One-shot forms. */
void sk_sha384(const void *data, size_t len, uint8_t out[SK_SHA384_BYTES]);
void sk_sha256(const void *data, size_t len, uint8_t out[SK_SHA256_BYTES]);

/* Both hashes a package file needs, in one pass. */
typedef struct sk_sha_pair {
    crypto_hash_sha256_state s256;
    sk_sha512_ctx s384;
} sk_sha_pair;
void sk_sha_pair_init(sk_sha_pair *p);
void sk_sha_pair_update(sk_sha_pair *p, const void *data, size_t len);
void sk_sha_pair_final(sk_sha_pair *p, uint8_t sha256[SK_SHA256_BYTES], uint8_t sha384[SK_SHA384_BYTES]);

/* "sha384-" + base64 (standard alphabet, padded) of a SHA-384 digest. */
void sk_sri_format(const uint8_t sha384[SK_SHA384_BYTES], char out[SK_SRI_SIZE]);
/* Lower-case hex of a SHA-256 digest. */
void sk_sha256_hex(const uint8_t sha256[SK_SHA256_BYTES], char out[SK_SHA256_HEX_SIZE]);

#endif
