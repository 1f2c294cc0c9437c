/* Unit tests of sign/: RFC 8032 known answers, key and signature formats,
 * round trips, tampering, malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_sign.h"

/* ------------------------------------------------------------------------ */
/* Helpers */

static char dir[64];

static void path_in_dir(char *out, size_t size, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < size);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void hex_decode(const char *hex, uint8_t *out, size_t n)
{
    size_t got = 0;
    assert_int_equal(strlen(hex), 2 * n);
    assert_int_equal(sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, NULL), 0);
    assert_int_equal(got, n);
}

/* Line no (from 1) of text, without its "\n", copied into out. */
static void line_get(const char *text, int no, char *out, size_t size)
{
    const char *p = text;
    for (int i = 1; i < no; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    size_t n = strcspn(p, "\n");
    assert_true(n < size);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* A malloc'd copy of text with line no replaced by repl. */
static char *line_replace(const char *text, int no, const char *repl)
{
    const char *p = text;
    for (int i = 1; i < no; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    const char *e = p + strcspn(p, "\n");
    size_t size = (size_t)(p - text) + strlen(repl) + strlen(e) + 1;
    char *out = malloc(size);
    assert_non_null(out);
    snprintf(out, size, "%.*s%s%s", (int)(p - text), text, repl, e);
    return out;
}

/* Decodes base64 line no (nbytes of data), XORs byte at with x, re-encodes. */
static char *line_flip_b64(const char *text, int no, size_t nbytes, size_t at, uint8_t x)
{
    char line[512], enc[512];
    uint8_t raw[256];
    size_t got = 0;
    assert_true(nbytes <= sizeof raw && at < nbytes);
    line_get(text, no, line, sizeof line);
    assert_int_equal(sodium_base642bin(raw, sizeof raw, line, strlen(line), NULL, &got, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(got, nbytes);
    raw[at] ^= x;
    sodium_bin2base64(enc, sizeof enc, raw, nbytes, sodium_base64_VARIANT_ORIGINAL);
    return line_replace(text, no, enc);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0) return -1;
    snprintf(dir, sizeof dir, "/tmp/skiff-test-sign-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    return rmdir(dir);
}

static sk_key_sec *new_key(void)
{
    sk_key_sec *k = NULL;
    sk_error err = {0};
    assert_int_equal(sk_key_generate(&k, &err), SK_OK);
    assert_non_null(k);
    return k;
}

/* The smallest scrypt limits: fast tests. */
static const sk_key_kdf kdf_fast = {crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_MIN,
                                    crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_MIN};

/* ------------------------------------------------------------------------ */
/* RFC 8032 section 7.1 known answers */

static const char rfc_1024_msg[] =
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
    "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
    "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
    "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
    "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
    "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
    "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
    "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
    "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
    "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
    "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
    "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
    "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
    "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
    "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
    "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
    "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
    "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
    "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
    "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
    "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
    "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
    "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
    "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
    "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
    "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
    "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
    "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
    "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0"
    ;

static const struct {
    const char *name, *seed, *pk, *msg, *sig;
} rfc8032[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"TEST 1024", "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
     "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e", rfc_1024_msg,
     "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"},
    {"TEST SHA(abc)", "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
};

static void test_rfc8032_vectors(void **state)
{
    (void)state;
    assert_int_equal(strlen(rfc_1024_msg), 2 * 1023);
    for (size_t v = 0; v < sizeof rfc8032 / sizeof rfc8032[0]; v++) {
        uint8_t seed[32], pk[32], want[64], sig[64], bad[64];
        size_t len = strlen(rfc8032[v].msg) / 2;
        uint8_t *msg = len ? malloc(len) : NULL;
        sk_key_sec *key = NULL;
        sk_key_pub pub;
        sk_error err = {0};
        char text[SK_SIGN_ED25519_TEXT_SIZE];
        print_message("  %s (%zu-byte message)\n", rfc8032[v].name, len);
        hex_decode(rfc8032[v].seed, seed, 32);
        hex_decode(rfc8032[v].pk, pk, 32);
        hex_decode(rfc8032[v].sig, want, 64);
        if (len) hex_decode(rfc8032[v].msg, msg, len);

        assert_int_equal(sk_key_from_seed(seed, NULL, &key, &err), SK_OK);
        sk_key_sec_public(key, &pub);
        assert_memory_equal(pub.pk, pk, 32);
        assert_int_equal(sk_sign_ed25519(key, msg, len, sig, &err), SK_OK);
        assert_memory_equal(sig, want, 64);
        assert_int_equal(sk_sign_ed25519_verify(&pub, msg, len, want, &err), SK_OK);

        /* The text form round-trips. */
        sk_sign_ed25519_format(sig, text);
        assert_int_equal(strlen(text), 89);
        assert_int_equal(text[88], '\n');
        memset(bad, 0, sizeof bad);
        assert_int_equal(sk_sign_ed25519_parse(text, strlen(text), bad, &err), SK_OK);
        assert_memory_equal(bad, want, 64);

        /* Any flipped bit of R or S, or of the message, fails. */
        for (size_t i = 0; i < 64; i += 21) {
            memcpy(bad, want, 64);
            bad[i] ^= 0x01;
            err.msg[0] = '\0';
            assert_int_equal(sk_sign_ed25519_verify(&pub, msg, len, bad, &err), SK_EVERIFY);
            assert_true(strlen(err.msg) > 0);
        }
        if (len) {
            msg[len - 1] ^= 0x80;
            assert_int_equal(sk_sign_ed25519_verify(&pub, msg, len, want, &err), SK_EVERIFY);
        } else {
            assert_int_equal(sk_sign_ed25519_verify(&pub, "x", 1, want, &err), SK_EVERIFY);
        }
        /* Another public key fails. */
        pub.pk[0] ^= 0x02;
        assert_int_equal(sk_sign_ed25519_verify(&pub, msg, len, want, &err), SK_EVERIFY);
        sk_key_sec_free(key);
        free(msg);
    }
}

static void test_ed25519_text(void **state)
{
    (void)state;
    uint8_t sig[64], back[64];
    char text[SK_SIGN_ED25519_TEXT_SIZE], buf[200];
    sk_error err = {0};
    for (int i = 0; i < 64; i++) sig[i] = (uint8_t)(i * 7 + 3);
    sk_sign_ed25519_format(sig, text);
    assert_int_equal(sk_sign_ed25519_parse(text, 88, back, &err), SK_OK); /* no "\n" */
    assert_memory_equal(back, sig, 64);
    snprintf(buf, sizeof buf, "%.88s\r\n", text);
    assert_int_equal(sk_sign_ed25519_parse(buf, strlen(buf), back, &err), SK_OK);
    assert_memory_equal(back, sig, 64);

    assert_int_equal(sk_sign_ed25519_parse(text, 87, back, &err), SK_EINVAL);
    assert_int_equal(sk_sign_ed25519_parse("", 0, back, &err), SK_EINVAL);
    assert_int_equal(sk_sign_ed25519_parse(NULL, 5, back, &err), SK_EINVAL);
    snprintf(buf, sizeof buf, "%.88s\n\n", text);
    assert_int_equal(sk_sign_ed25519_parse(buf, strlen(buf), back, &err), SK_EINVAL);
    snprintf(buf, sizeof buf, " %.88s", text);
    assert_int_equal(sk_sign_ed25519_parse(buf, strlen(buf), back, &err), SK_EINVAL);
    memcpy(buf, text, 89);
    buf[10] = '\0';
    assert_int_equal(sk_sign_ed25519_parse(buf, 89, back, &err), SK_EINVAL);
    memcpy(buf, text, 89);
    buf[40] = '='; /* padding in the middle */
    assert_int_equal(sk_sign_ed25519_parse(buf, 89, back, &err), SK_EINVAL);
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'A', 5000);
    assert_int_equal(sk_sign_ed25519_parse(big, 5000, back, &err), SK_EINVAL);
    free(big);
}

/* ------------------------------------------------------------------------ */
/* Public keys */

static void test_key_id_hex(void **state)
{
    (void)state;
    const uint8_t id[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0xab};
    char hex[SK_KEY_ID_HEX_SIZE];
    sk_key_id_hex(id, hex);
    assert_string_equal(hex, "AB07060504030201"); /* little-endian u64, like minisign */
}

static void test_pub_string(void **state)
{
    (void)state;
    sk_key_sec *key = new_key();
    sk_key_pub pub, back;
    sk_error err = {0};
    char s[SK_KEY_STRING_SIZE], buf[200];
    sk_key_sec_public(key, &pub);
    sk_key_pub_to_string(&pub, s);
    assert_int_equal(strlen(s), 56);
    assert_memory_equal(s, "RW", 2);
    assert_int_equal(sk_key_pub_from_string(s, &back, &err), SK_OK);
    assert_memory_equal(&back, &pub, sizeof pub);
    snprintf(buf, sizeof buf, "  %s \r\n", s);
    assert_int_equal(sk_key_pub_from_string(buf, &back, &err), SK_OK);
    assert_memory_equal(&back, &pub, sizeof pub);

    assert_int_equal(sk_key_pub_from_string(NULL, &back, &err), SK_EINVAL);
    assert_int_equal(sk_key_pub_from_string("", &back, &err), SK_EINVAL);
    snprintf(buf, sizeof buf, "%.52s", s);
    assert_int_equal(sk_key_pub_from_string(buf, &back, &err), SK_EINVAL);
    snprintf(buf, sizeof buf, "%sAAAA", s);
    assert_int_equal(sk_key_pub_from_string(buf, &back, &err), SK_EINVAL);
    /* "RX" decodes to another algorithm. */
    snprintf(buf, sizeof buf, "RX%s", s + 2);
    err.msg[0] = '\0';
    assert_int_equal(sk_key_pub_from_string(buf, &back, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "algorithm"));
    sk_key_sec_free(key);
}

static void test_pub_file_text(void **state)
{
    (void)state;
    sk_key_sec *key = new_key();
    sk_key_pub pub, back;
    sk_error err = {0};
    char text[SK_KEY_PUB_TEXT_SIZE], hex[SK_KEY_ID_HEX_SIZE], want[200], s[SK_KEY_STRING_SIZE];
    size_t len;
    sk_key_sec_public(key, &pub);
    assert_int_equal(sk_key_pub_format(&pub, NULL, text, sizeof text, &len, &err), SK_OK);
    assert_int_equal(len, strlen(text));
    sk_key_id_hex(pub.id, hex);
    sk_key_pub_to_string(&pub, s);
    snprintf(want, sizeof want, "untrusted comment: skiff public key %s\n%s\n", hex, s);
    assert_string_equal(text, want);
    assert_int_equal(sk_key_pub_parse(text, len, &back, &err), SK_OK);
    assert_memory_equal(&back, &pub, sizeof pub);

    /* Every truncation is invalid, except dropping the final "\n". */
    for (size_t k = 0; k < len; k++) {
        sk_status want_st = k == len - 1 ? SK_OK : SK_EINVAL;
        assert_int_equal(sk_key_pub_parse(text, k, &back, &err), want_st);
    }
    /* CRLF line endings are fine; other damage is not. */
    char crlf[300];
    snprintf(crlf, sizeof crlf, "untrusted comment: x\r\n%s\r\n", s);
    assert_int_equal(sk_key_pub_parse(crlf, strlen(crlf), &back, &err), SK_OK);
    assert_memory_equal(&back, &pub, sizeof pub);
    snprintf(crlf, sizeof crlf, "untrusted comment: x\n%s\n\n", s);
    assert_int_equal(sk_key_pub_parse(crlf, strlen(crlf), &back, &err), SK_EINVAL);
    snprintf(crlf, sizeof crlf, "comment: x\n%s\n", s);
    assert_int_equal(sk_key_pub_parse(crlf, strlen(crlf), &back, &err), SK_EINVAL);
    snprintf(crlf, sizeof crlf, "untrusted comment: x\n%s", s);
    crlf[30] = '\0';
    assert_int_equal(sk_key_pub_parse(crlf, strlen(s) + 21, &back, &err), SK_EINVAL);
    snprintf(crlf, sizeof crlf, "untrusted comment: a\rb\n%s\n", s);
    assert_int_equal(sk_key_pub_parse(crlf, strlen(crlf), &back, &err), SK_EINVAL);

    /* Custom and bad comments. */
    assert_int_equal(sk_key_pub_format(&pub, "mine", text, sizeof text, &len, &err), SK_OK);
    assert_memory_equal(text, "untrusted comment: mine\n", 24);
    assert_int_equal(sk_key_pub_format(&pub, "two\nlines", text, sizeof text, &len, &err),
                     SK_EINVAL);
    assert_int_equal(sk_key_pub_format(&pub, NULL, text, 50, &len, &err), SK_EINVAL);

    /* Random garbage never parses. */
    char junk[300];
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(rng() % sizeof junk);
        for (size_t j = 0; j < n; j++) junk[j] = (char)rng();
        if (i % 2 && n > 20) memcpy(junk, "untrusted comment: ", 19);
        assert_int_equal(sk_key_pub_parse(junk, n, &back, &err), SK_EINVAL);
    }
    sk_key_sec_free(key);
}

/* ------------------------------------------------------------------------ */
/* Secret keys */

/* Rewrites the base64 line of a secret key text through f(raw). */
static char *sec_edit(const char *text, void (*f)(uint8_t raw[158]))
{
    char line[300], enc[300];
    uint8_t raw[158];
    size_t got = 0;
    line_get(text, 2, line, sizeof line);
    assert_int_equal(sodium_base642bin(raw, sizeof raw, line, strlen(line), NULL, &got, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(got, 158);
    f(raw);
    sodium_bin2base64(enc, sizeof enc, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    return line_replace(text, 2, enc);
}
static void edit_zero_chk(uint8_t raw[158]) { memset(raw + 126, 0, 32); }
static void edit_flip_chk(uint8_t raw[158]) { raw[140] ^= 1; }
static void edit_flip_pk_zero_chk(uint8_t raw[158])
{
    raw[62 + 40] ^= 1;
    memset(raw + 126, 0, 32);
}
static void edit_flip_seed(uint8_t raw[158]) { raw[62 + 3] ^= 1; }
static void edit_kdf_alg(uint8_t raw[158]) { raw[2] = 'X'; }
static void edit_chk_alg(uint8_t raw[158]) { raw[5] = '3'; }
static void edit_sig_alg(uint8_t raw[158]) { raw[1] = 'D'; }
static void edit_ops_zero(uint8_t raw[158]) { memset(raw + 38, 0, 8); }
static void edit_mem_huge(uint8_t raw[158]) { raw[46 + 7] = 0x40; }

static void assert_same_key(const sk_key_sec *a, const sk_key_sec *b)
{
    sk_key_pub pa, pb;
    uint8_t sa[64], sb[64];
    sk_error err = {0};
    sk_key_sec_public(a, &pa);
    sk_key_sec_public(b, &pb);
    assert_memory_equal(&pa, &pb, sizeof pa);
    /* Ed25519 is deterministic: the same secret key signs the same way. */
    assert_int_equal(sk_sign_ed25519(a, "same", 4, sa, &err), SK_OK);
    assert_int_equal(sk_sign_ed25519(b, "same", 4, sb, &err), SK_OK);
    assert_memory_equal(sa, sb, 64);
}

static void test_sec_unencrypted(void **state)
{
    (void)state;
    sk_key_sec *key = new_key(), *back = NULL;
    sk_error err = {0};
    char text[SK_KEY_SEC_TEXT_SIZE];
    size_t len;
    int enc = -1;
    sk_key_kdf used = {1, 1};
    assert_int_equal(sk_key_sec_format(key, NULL, text, sizeof text, &len, &used, &err), SK_OK);
    assert_int_equal(used.opslimit, 0);
    assert_int_equal(used.memlimit, 0);
    assert_memory_equal(text, "untrusted comment: skiff secret key (not encrypted)\n", 52);
    assert_int_equal(sk_key_sec_is_encrypted(text, len, &enc, &err), SK_OK);
    assert_int_equal(enc, 0);
    assert_int_equal(sk_key_sec_parse(text, len, NULL, 0, &back, &err), SK_OK);
    assert_same_key(key, back);
    sk_key_sec_free(back);

    /* minisign -G -W leaves the checksum zero: accepted. */
    char *t = sec_edit(text, edit_zero_chk);
    assert_int_equal(sk_key_sec_parse(t, strlen(t), NULL, 0, &back, &err), SK_OK);
    assert_same_key(key, back);
    sk_key_sec_free(back);
    free(t);

    struct {
        void (*f)(uint8_t raw[158]);
        const char *what;
    } bad[] = {
        {edit_flip_chk, "checksum"},       {edit_flip_pk_zero_chk, "damaged"},
        {edit_flip_seed, "checksum"},      {edit_kdf_alg, "key derivation"},
        {edit_chk_alg, "checksum"},        {edit_sig_alg, "algorithm"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = sec_edit(text, bad[i].f);
        back = (sk_key_sec *)&err; /* must be reset to NULL */
        err.msg[0] = '\0';
        assert_int_equal(sk_key_sec_parse(t, strlen(t), NULL, 0, &back, &err), SK_EINVAL);
        assert_null(back);
        assert_non_null(strstr(err.msg, bad[i].what));
        free(t);
    }

    /* Truncations and garbage. */
    for (size_t k = 0; k < len; k++) {
        sk_status want = k == len - 1 ? SK_OK : SK_EINVAL;
        assert_int_equal(sk_key_sec_parse(text, k, NULL, 0, &back, &err), want);
        sk_key_sec_free(back);
    }
    char junk[400];
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(rng() % sizeof junk);
        for (size_t j = 0; j < n; j++) junk[j] = (char)rng();
        if (i % 2 && n > 20) memcpy(junk, "untrusted comment: ", 19);
        assert_int_equal(sk_key_sec_parse(junk, n, "pw", 2, &back, &err), SK_EINVAL);
        assert_int_equal(sk_key_sec_is_encrypted(junk, n, &enc, &err), SK_EINVAL);
    }

    /* Formatting limits. */
    sk_key_save_opts opts = {0};
    assert_int_equal(sk_key_sec_format(key, NULL, text, 100, &len, NULL, &err), SK_EINVAL);
    opts.comment = "bad\ncomment";
    assert_int_equal(sk_key_sec_format(key, &opts, text, sizeof text, &len, NULL, &err), SK_EINVAL);
    opts.comment = "my laptop";
    assert_int_equal(sk_key_sec_format(key, &opts, text, sizeof text, &len, NULL, &err), SK_OK);
    assert_memory_equal(text, "untrusted comment: my laptop\n", 29);
    sodium_memzero(text, sizeof text);
    sk_key_sec_free(key);
    sk_key_sec_free(NULL);
}

static void test_sec_encrypted(void **state)
{
    (void)state;
    sk_key_sec *key = new_key(), *back = NULL;
    sk_error err = {0};
    char text[SK_KEY_SEC_TEXT_SIZE], text2[SK_KEY_SEC_TEXT_SIZE];
    size_t len, len2;
    int enc = -1;
    sk_key_kdf used = {0};
    sk_key_save_opts opts = {0};
    opts.password = "correct horse";
    opts.password_len = strlen(opts.password);
    opts.kdf = kdf_fast;
    assert_int_equal(sk_key_sec_format(key, &opts, text, sizeof text, &len, &used, &err), SK_OK);
    assert_int_equal(used.opslimit, kdf_fast.opslimit);
    assert_int_equal(used.memlimit, kdf_fast.memlimit);
    assert_memory_equal(text, "untrusted comment: skiff encrypted secret key\n", 46);
    assert_int_equal(sk_key_sec_is_encrypted(text, len, &enc, &err), SK_OK);
    assert_int_equal(enc, 1);
    /* "Ed" "Sc" "B2" encode to "RWRTY0Iy". */
    char line[300];
    line_get(text, 2, line, sizeof line);
    assert_memory_equal(line, "RWRTY0Iy", 8);

    assert_int_equal(sk_key_sec_parse(text, len, "correct horse", 13, &back, &err), SK_OK);
    assert_same_key(key, back);
    sk_key_sec_free(back);

    /* A fresh salt each time. */
    assert_int_equal(sk_key_sec_format(key, &opts, text2, sizeof text2, &len2, NULL, &err), SK_OK);
    assert_string_not_equal(text, text2);

    err.msg[0] = '\0';
    assert_int_equal(sk_key_sec_parse(text, len, "correct horsf", 13, &back, &err), SK_EVERIFY);
    assert_null(back);
    assert_non_null(strstr(err.msg, "wrong password"));
    assert_int_equal(sk_key_sec_parse(text, len, "", 0, &back, &err), SK_EVERIFY);
    assert_int_equal(sk_key_sec_parse(text, len, "correct horse", 12, &back, &err), SK_EVERIFY);
    err.msg[0] = '\0';
    assert_int_equal(sk_key_sec_parse(text, len, NULL, 0, &back, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "password"));
    char *longpw = malloc(SK_KEY_PASSWORD_MAX + 1);
    assert_non_null(longpw);
    memset(longpw, 'p', SK_KEY_PASSWORD_MAX + 1);
    assert_int_equal(sk_key_sec_parse(text, len, longpw, SK_KEY_PASSWORD_MAX + 1, &back, &err),
                     SK_EINVAL);
    assert_int_equal(sk_key_sec_parse(text, len, "a\0b", 3, &back, &err), SK_EINVAL);

    /* Limits out of range in the file are refused before deriving. */
    char *t = sec_edit(text, edit_ops_zero);
    assert_int_equal(sk_key_sec_parse(t, strlen(t), "correct horse", 13, &back, &err), SK_EINVAL);
    free(t);
    t = sec_edit(text, edit_mem_huge);
    assert_int_equal(sk_key_sec_parse(t, strlen(t), "correct horse", 13, &back, &err), SK_EINVAL);
    free(t);
    /* Damage in the encrypted part reads as a wrong password. */
    t = sec_edit(text, edit_flip_seed);
    assert_int_equal(sk_key_sec_parse(t, strlen(t), "correct horse", 13, &back, &err), SK_EVERIFY);
    free(t);

    /* Bad options. */
    opts.kdf.opslimit = 1;
    assert_int_equal(sk_key_sec_format(key, &opts, text2, sizeof text2, &len2, NULL, &err),
                     SK_EINVAL);
    opts.kdf = kdf_fast;
    opts.password = longpw;
    opts.password_len = SK_KEY_PASSWORD_MAX + 1;
    assert_int_equal(sk_key_sec_format(key, &opts, text2, sizeof text2, &len2, NULL, &err),
                     SK_EINVAL);
    /* The longest password works. */
    opts.password_len = SK_KEY_PASSWORD_MAX;
    assert_int_equal(sk_key_sec_format(key, &opts, text2, sizeof text2, &len2, NULL, &err), SK_OK);
    assert_int_equal(sk_key_sec_parse(text2, len2, longpw, SK_KEY_PASSWORD_MAX, &back, &err), SK_OK);
    assert_same_key(key, back);
    sk_key_sec_free(back);
    free(longpw);
    sodium_memzero(text, sizeof text);
    sodium_memzero(text2, sizeof text2);
    sk_key_sec_free(key);
}

static int no_temp_files_left(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL)
        found |= e->d_name[0] == '.' && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return !found;
}

static void test_key_files(void **state)
{
    (void)state;
    char pub_path[256], sec_path[256], other[256];
    path_in_dir(pub_path, sizeof pub_path, "a.pub");
    path_in_dir(sec_path, sizeof sec_path, "a.key");
    sk_key_sec *key = new_key(), *key2 = new_key(), *back = NULL;
    sk_key_pub pub, pub_back;
    sk_error err = {0};
    struct stat sb;
    sk_key_save_opts opts = {0};
    int enc = -1;

    assert_int_equal(sk_key_pair_save(key, pub_path, sec_path, NULL, NULL, &err), SK_OK);
    assert_int_equal(stat(sec_path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(pub_path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    assert_int_equal(sk_key_pub_load(pub_path, &pub_back, &err), SK_OK);
    sk_key_sec_public(key, &pub);
    assert_memory_equal(&pub, &pub_back, sizeof pub);
    assert_int_equal(sk_key_sec_file_is_encrypted(sec_path, &enc, &err), SK_OK);
    assert_int_equal(enc, 0);
    assert_int_equal(sk_key_sec_load(sec_path, NULL, 0, &back, &err), SK_OK);
    assert_same_key(key, back);
    sk_key_sec_free(back);

    /* No overwriting without force; nothing changes. */
    char *before_pub = read_text(pub_path), *before_sec = read_text(sec_path);
    err.msg[0] = '\0';
    assert_int_equal(sk_key_pair_save(key2, pub_path, sec_path, NULL, NULL, &err), SK_EIO);
    assert_non_null(strstr(err.msg, "already exists"));
    assert_non_null(strstr(err.msg, pub_path));
    char *after_pub = read_text(pub_path), *after_sec = read_text(sec_path);
    assert_string_equal(before_pub, after_pub);
    assert_string_equal(before_sec, after_sec);
    free(after_pub);
    free(after_sec);
    opts.force = 1;
    assert_int_equal(sk_key_pair_save(key2, pub_path, sec_path, &opts, NULL, &err), SK_OK);
    after_pub = read_text(pub_path);
    after_sec = read_text(sec_path);
    assert_string_not_equal(before_pub, after_pub);
    assert_string_not_equal(before_sec, after_sec);
    assert_int_equal(stat(sec_path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    free(before_pub);
    free(before_sec);
    free(after_pub);
    free(after_sec);

    /* Only the secret key exists: refused, and no public key appears. */
    path_in_dir(other, sizeof other, "b.pub");
    assert_int_equal(sk_key_pair_save(key, other, sec_path, NULL, NULL, &err), SK_EIO);
    assert_int_equal(stat(other, &sb), -1);
    assert_int_equal(sk_key_pair_save(key, sec_path, sec_path, &opts, NULL, &err), SK_EINVAL);
    /* Same file under two names, forced: the secret key survives. */
    char alias[300];
    snprintf(alias, sizeof alias, "%s/./a.key", dir);
    assert_int_equal(sk_key_pair_save(key, alias, sec_path, &opts, NULL, &err), SK_EINVAL);
    assert_int_equal(sk_key_sec_load(sec_path, NULL, 0, &back, &err), SK_OK);
    assert_same_key(key, back);
    sk_key_sec_free(back);
    assert_int_equal(sk_key_pair_save(key, "/nonexistent-dir/x.pub", "/nonexistent-dir/x.key",
                                      NULL, NULL, &err),
                     SK_EIO);

    /* An encrypted key file. */
    path_in_dir(other, sizeof other, "enc.key");
    opts.force = 0;
    opts.password = "pw";
    opts.password_len = 2;
    opts.kdf = kdf_fast;
    assert_int_equal(sk_key_sec_save(key, other, &opts, NULL, &err), SK_OK);
    assert_int_equal(stat(other, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sk_key_sec_save(key, other, &opts, NULL, &err), SK_EIO);
    assert_int_equal(sk_key_sec_file_is_encrypted(other, &enc, &err), SK_OK);
    assert_int_equal(enc, 1);
    assert_int_equal(sk_key_sec_load(other, "pw", 2, &back, &err), SK_OK);
    assert_same_key(key, back);
    sk_key_sec_free(back);
    err.msg[0] = '\0';
    assert_int_equal(sk_key_sec_load(other, "pW", 2, &back, &err), SK_EVERIFY);
    assert_memory_equal(err.msg, other, strlen(other)); /* errors start with the path */

    /* Public key save. */
    path_in_dir(other, sizeof other, "c.pub");
    assert_int_equal(sk_key_pub_save(&pub, other, "hello", 0, &err), SK_OK);
    assert_int_equal(sk_key_pub_save(&pub, other, NULL, 0, &err), SK_EIO);
    assert_int_equal(sk_key_pub_save(&pub, other, NULL, 1, &err), SK_OK);
    assert_int_equal(sk_key_pub_load(other, &pub_back, &err), SK_OK);
    assert_memory_equal(&pub, &pub_back, sizeof pub);

    /* Unreadable and oversized files. */
    path_in_dir(other, sizeof other, "missing.pub");
    err.msg[0] = '\0';
    assert_int_equal(sk_key_pub_load(other, &pub_back, &err), SK_EIO);
    assert_non_null(strstr(err.msg, other));
    assert_int_equal(sk_key_sec_load(other, NULL, 0, &back, &err), SK_EIO);
    path_in_dir(other, sizeof other, "big.pub");
    char *big = malloc(3000);
    assert_non_null(big);
    memset(big, 'A', 3000);
    write_file(other, big, 3000);
    free(big);
    assert_int_equal(sk_key_pub_load(other, &pub_back, &err), SK_EINVAL);
    assert_int_equal(sk_key_sec_load(other, NULL, 0, &back, &err), SK_EINVAL);
    assert_int_equal(sk_key_pub_load(dir, &pub_back, &err), SK_EIO); /* a directory */

    assert_true(no_temp_files_left());
    sk_key_sec_free(key);
    sk_key_sec_free(key2);
}

/* ------------------------------------------------------------------------ */
/* Passwords */

static void expect_password_file(const char *content, size_t n, sk_status want_st,
                                 const char *want)
{
    char path[256];
    char *pw = NULL;
    size_t len = 99;
    sk_error err = {0};
    path_in_dir(path, sizeof path, "pw.txt");
    write_file(path, content, n);
    assert_int_equal(sk_key_password_from_file(path, &pw, &len, &err), want_st);
    if (want_st == SK_OK) {
        assert_non_null(pw);
        assert_int_equal(len, strlen(want));
        assert_string_equal(pw, want);
    } else {
        assert_null(pw);
        assert_non_null(strstr(err.msg, path));
    }
    sk_key_password_free(pw);
    unlink(path);
}

static void test_passwords(void **state)
{
    (void)state;
    expect_password_file("secret\n", 7, SK_OK, "secret");
    expect_password_file("secret\r\n", 8, SK_OK, "secret");
    expect_password_file("secret", 6, SK_OK, "secret");
    expect_password_file("first\nsecond\n", 13, SK_OK, "first");
    expect_password_file("", 0, SK_OK, "");
    expect_password_file("with space\t\n", 12, SK_OK, "with space\t");
    expect_password_file("a\0b\n", 4, SK_EINVAL, NULL);
    char *buf = malloc(SK_KEY_PASSWORD_MAX + 3);
    assert_non_null(buf);
    memset(buf, 'x', SK_KEY_PASSWORD_MAX + 2);
    buf[SK_KEY_PASSWORD_MAX] = '\n';
    buf[SK_KEY_PASSWORD_MAX + 1] = '\0';
    char *want = strndup(buf, SK_KEY_PASSWORD_MAX); /* the longest password */
    assert_non_null(want);
    expect_password_file(buf, SK_KEY_PASSWORD_MAX + 1, SK_OK, want);
    buf[SK_KEY_PASSWORD_MAX] = '\r';
    buf[SK_KEY_PASSWORD_MAX + 1] = '\n';
    expect_password_file(buf, SK_KEY_PASSWORD_MAX + 2, SK_OK, want);
    free(want);
    memset(buf, 'x', SK_KEY_PASSWORD_MAX + 2);
    expect_password_file(buf, SK_KEY_PASSWORD_MAX + 1, SK_EINVAL, NULL);
    expect_password_file(buf, SK_KEY_PASSWORD_MAX + 2, SK_EINVAL, NULL);

    char *pw = NULL;
    size_t len = 0;
    sk_error err = {0};
    assert_int_equal(sk_key_password_from_file("/nonexistent/pw", &pw, &len, &err), SK_EIO);
    assert_null(pw);

    assert_int_equal(unsetenv("SKIFF_TEST_PW"), 0);
    assert_int_equal(sk_key_password_from_env("SKIFF_TEST_PW", &pw, &len, &err), SK_OK);
    assert_null(pw);
    assert_int_equal(setenv("SKIFF_TEST_PW", "from env", 1), 0);
    assert_int_equal(sk_key_password_from_env("SKIFF_TEST_PW", &pw, &len, &err), SK_OK);
    assert_string_equal(pw, "from env");
    assert_int_equal(len, 8);
    sk_key_password_free(pw);
    buf[SK_KEY_PASSWORD_MAX + 1] = '\0';
    assert_int_equal(setenv("SKIFF_TEST_PW", buf, 1), 0);
    assert_int_equal(sk_key_password_from_env("SKIFF_TEST_PW", &pw, &len, &err), SK_EINVAL);
    assert_null(pw);

    /* get: the file first, then the environment. */
    char path[256];
    path_in_dir(path, sizeof path, "pw2.txt");
    write_file(path, "from file\n", 10);
    assert_int_equal(setenv("SKIFF_TEST_PW", "from env", 1), 0);
    assert_int_equal(sk_key_password_get(path, "SKIFF_TEST_PW", NULL, 0, &pw, &len, &err), SK_OK);
    assert_string_equal(pw, "from file");
    sk_key_password_free(pw);
    assert_int_equal(sk_key_password_get(NULL, "SKIFF_TEST_PW", NULL, 0, &pw, &len, &err), SK_OK);
    assert_string_equal(pw, "from env");
    sk_key_password_free(pw);
    unlink(path);
    unsetenv("SKIFF_TEST_PW");
    sk_key_password_free(NULL);
    free(buf);
    print_message("  (the terminal prompt is not tested here: it needs a real terminal)\n");
}

/* ------------------------------------------------------------------------ */
/* minisign signatures */

static void test_minisig_roundtrip(void **state)
{
    (void)state;
    sk_key_sec *key = new_key();
    sk_key_pub pub;
    sk_error err = {0};
    sk_minisig ms;
    char *text = NULL, line[200];
    size_t len = 0;
    const char msg[] = "hello skiff";
    sk_key_sec_public(key, &pub);

    assert_int_equal(sk_sign_minisig_buf(key, msg, strlen(msg), "c1", "tc: x\tdone ✓", &text, &len,
                                         &err),
                     SK_OK);
    assert_int_equal(len, strlen(text));
    line_get(text, 1, line, sizeof line);
    assert_string_equal(line, "untrusted comment: c1");
    line_get(text, 2, line, sizeof line);
    assert_int_equal(strlen(line), 100);
    assert_memory_equal(line, "RU", 2); /* "ED" */
    line_get(text, 3, line, sizeof line);
    assert_string_equal(line, "trusted comment: tc: x\tdone ✓");
    line_get(text, 4, line, sizeof line);
    assert_int_equal(strlen(line), 88);
    assert_int_equal(text[len - 1], '\n');

    assert_int_equal(sk_sign_minisig_parse(text, len, &ms, &err), SK_OK);
    assert_int_equal(ms.prehashed, 1);
    assert_memory_equal(ms.key_id, pub.id, 8);
    assert_string_equal(ms.comment, "c1");
    assert_string_equal(ms.trusted_comment, "tc: x\tdone ✓");

    memset(&ms, 0, sizeof ms);
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, msg, strlen(msg), text, len, 0, &ms, &err),
                     SK_OK);
    assert_string_equal(ms.trusted_comment, "tc: x\tdone ✓");
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, msg, strlen(msg), text, len,
                                                SK_SIGN_REQUIRE_PREHASHED, NULL, &err),
                     SK_OK);
    /* CRLF line endings verify too. */
    char crlf[1000];
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') crlf[k++] = '\r';
        crlf[k++] = text[i];
    }
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, msg, strlen(msg), crlf, k, 0, NULL, &err),
                     SK_OK);
    free(text);

    /* Defaults, and the empty message. */
    assert_int_equal(sk_sign_minisig_buf(key, NULL, 0, NULL, NULL, &text, &len, &err), SK_OK);
    line_get(text, 1, line, sizeof line);
    assert_string_equal(line, "untrusted comment: signature from skiff secret key");
    line_get(text, 3, line, sizeof line);
    assert_memory_equal(line, "trusted comment: timestamp:", 27);
    assert_non_null(strstr(line, "\thashed"));
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, NULL, 0, text, len, 0, NULL, &err), SK_OK);
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, "", 1, text, len, 0, NULL, &err), SK_EVERIFY);
    free(text);
    sk_key_sec_free(key);
}

static void test_minisig_comments(void **state)
{
    (void)state;
    sk_key_sec *key = new_key();
    sk_key_pub pub;
    sk_error err = {0};
    sk_minisig ms;
    char *text = NULL;
    size_t len = 0;
    sk_key_sec_public(key, &pub);
    char *tc = malloc(SK_SIGN_TRUSTED_COMMENT_MAX + 2);
    assert_non_null(tc);
    memset(tc, 'a', SK_SIGN_TRUSTED_COMMENT_MAX + 1);
    tc[SK_SIGN_TRUSTED_COMMENT_MAX] = '\0';
    assert_int_equal(sk_sign_minisig_buf(key, "m", 1, NULL, tc, &text, &len, &err), SK_OK);
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, "m", 1, text, len, 0, &ms, &err), SK_OK);
    assert_string_equal(ms.trusted_comment, tc);
    free(text);
    tc[SK_SIGN_TRUSTED_COMMENT_MAX] = 'a';
    tc[SK_SIGN_TRUSTED_COMMENT_MAX + 1] = '\0';
    assert_int_equal(sk_sign_minisig_buf(key, "m", 1, NULL, tc, &text, &len, &err), SK_EINVAL);
    assert_null(text);
    free(tc);

    char *c = malloc(SK_SIGN_COMMENT_MAX + 2);
    assert_non_null(c);
    memset(c, 'c', SK_SIGN_COMMENT_MAX + 1);
    c[SK_SIGN_COMMENT_MAX] = '\0';
    assert_int_equal(sk_sign_minisig_buf(key, "m", 1, c, "t", &text, &len, &err), SK_OK);
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, "m", 1, text, len, 0, NULL, &err), SK_OK);
    free(text);
    c[SK_SIGN_COMMENT_MAX] = 'c';
    c[SK_SIGN_COMMENT_MAX + 1] = '\0';
    assert_int_equal(sk_sign_minisig_buf(key, "m", 1, c, "t", &text, &len, &err), SK_EINVAL);
    free(c);

    static const char *bad[] = {
        "two\nlines", "cr\rhere", "escape \x1b[31m", "bad utf-8 \xff", "overlong \xc0\xaf",
        "surrogate \xed\xa0\x80", "C1 \xc2\x85", "truncated \xe2\x9c", "above U+10FFFF \xf4\x90\x80\x80",
        "DEL \x7f",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        assert_int_equal(sk_sign_minisig_buf(key, "m", 1, NULL, bad[i], &text, &len, &err),
                         SK_EINVAL);
        assert_non_null(strstr(err.msg, "trusted comment"));
        assert_int_equal(sk_sign_minisig_buf(key, "m", 1, bad[i], "t", &text, &len, &err),
                         SK_EINVAL);
    }
    static const char *good[] = {"", "tab\there", "ünïcødé ✓ 🚀", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(sk_sign_minisig_buf(key, "m", 1, good[i], good[i], &text, &len, &err),
                         SK_OK);
        assert_int_equal(sk_sign_minisig_verify_buf(&pub, "m", 1, text, len, 0, &ms, &err), SK_OK);
        assert_string_equal(ms.trusted_comment, good[i]);
        free(text);
    }
    sk_key_sec_free(key);
}

static void test_minisig_file(void **state)
{
    (void)state;
    char path[256], missing[256];
    path_in_dir(path, sizeof path, "model.bin");
    path_in_dir(missing, sizeof missing, "missing.bin");
    size_t n = 3 * 65536 + 12345;
    uint8_t *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++) data[i] = (uint8_t)(i * 31 + (i >> 9));
    write_file(path, data, n);

    sk_key_sec *key = new_key();
    sk_key_pub pub;
    sk_error err = {0};
    sk_minisig ms;
    char *text = NULL;
    size_t len = 0;
    sk_key_sec_public(key, &pub);
    assert_int_equal(sk_sign_minisig_file(key, path, NULL, NULL, &text, &len, &err), SK_OK);
    assert_int_equal(sk_sign_minisig_verify_file(&pub, path, text, len, 0, &ms, &err), SK_OK);
    assert_memory_equal(ms.trusted_comment, "timestamp:", 10);
    assert_non_null(strstr(ms.trusted_comment, "\tfile:model.bin\thashed"));
    /* The prehash of the streamed file equals that of the buffer. */
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, data, n, text, len, 0, NULL, &err), SK_OK);

    /* One changed byte in the file. */
    data[n / 2] ^= 0x10;
    write_file(path, data, n);
    err.msg[0] = '\0';
    assert_int_equal(sk_sign_minisig_verify_file(&pub, path, text, len, 0, NULL, &err), SK_EVERIFY);
    assert_non_null(strstr(err.msg, path));
    /* Truncated file. */
    write_file(path, data, n - 1);
    assert_int_equal(sk_sign_minisig_verify_file(&pub, path, text, len, 0, NULL, &err), SK_EVERIFY);
    free(text);

    err.msg[0] = '\0';
    assert_int_equal(sk_sign_minisig_file(key, missing, NULL, NULL, &text, &len, &err), SK_EIO);
    assert_null(text);
    assert_non_null(strstr(err.msg, missing));
    assert_int_equal(sk_sign_minisig_buf(key, "x", 1, NULL, "t", &text, &len, &err), SK_OK);
    assert_int_equal(sk_sign_minisig_verify_file(&pub, missing, text, len, 0, NULL, &err), SK_EIO);
    assert_int_equal(sk_sign_minisig_verify_file(&pub, dir, text, len, 0, NULL, &err), SK_EIO);

    /* Reading .minisig files. */
    char sig_path[256], *back = NULL;
    size_t back_len = 0;
    path_in_dir(sig_path, sizeof sig_path, "x.minisig");
    write_file(sig_path, text, len);
    assert_int_equal(sk_sign_minisig_read(sig_path, &back, &back_len, &err), SK_OK);
    assert_int_equal(back_len, len);
    assert_string_equal(back, text);
    free(back);
    back = NULL;
    assert_int_equal(sk_sign_minisig_read(missing, &back, &back_len, &err), SK_EIO);
    assert_null(back);
    char *big = malloc(SK_SIGN_MINISIG_FILE_MAX + 1);
    assert_non_null(big);
    memset(big, 'A', SK_SIGN_MINISIG_FILE_MAX + 1);
    write_file(sig_path, big, SK_SIGN_MINISIG_FILE_MAX + 1);
    assert_int_equal(sk_sign_minisig_read(sig_path, &back, &back_len, &err), SK_EINVAL);
    assert_null(back);
    free(big);
    free(text);
    free(data);
    sk_key_sec_free(key);
}

/* A legacy ("Ed", not prehashed) .minisig built by hand: the signature is
 * plain Ed25519 over the message. */
static char *legacy_minisig(const sk_key_sec *key, const void *msg, size_t len, const char *tc)
{
    sk_key_pub pub;
    sk_error err = {0};
    uint8_t block[74], gmsg[64 + 64], global[64];
    char b1[120], b2[100];
    size_t tn = strlen(tc);
    assert_true(tn <= 64);
    sk_key_sec_public(key, &pub);
    memcpy(block, "Ed", 2);
    memcpy(block + 2, pub.id, 8);
    assert_int_equal(sk_sign_ed25519(key, msg, len, block + 10, &err), SK_OK);
    memcpy(gmsg, block + 10, 64);
    memcpy(gmsg + 64, tc, tn);
    assert_int_equal(sk_sign_ed25519(key, gmsg, 64 + tn, global, &err), SK_OK);
    sodium_bin2base64(b1, sizeof b1, block, sizeof block, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b2, sizeof b2, global, sizeof global, sodium_base64_VARIANT_ORIGINAL);
    char *text = malloc(400);
    assert_non_null(text);
    snprintf(text, 400, "untrusted comment: legacy\n%s\ntrusted comment: %s\n%s\n", b1, tc, b2);
    return text;
}

static void test_minisig_legacy(void **state)
{
    (void)state;
    sk_key_sec *key = new_key();
    sk_key_pub pub;
    sk_error err = {0};
    sk_minisig ms;
    char path[256];
    const char msg[] = "a legacy message";
    sk_key_sec_public(key, &pub);
    char *text = legacy_minisig(key, msg, strlen(msg), "old style");
    size_t len = strlen(text);
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, msg, strlen(msg), text, len, 0, &ms, &err),
                     SK_OK);
    assert_int_equal(ms.prehashed, 0);
    assert_string_equal(ms.trusted_comment, "old style");
    err.msg[0] = '\0';
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, msg, strlen(msg), text, len,
                                                SK_SIGN_REQUIRE_PREHASHED, NULL, &err),
                     SK_EVERIFY);
    assert_non_null(strstr(err.msg, "legacy"));
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, msg, strlen(msg) - 1, text, len, 0, NULL, &err),
                     SK_EVERIFY);

    path_in_dir(path, sizeof path, "legacy.txt");
    write_file(path, msg, strlen(msg));
    assert_int_equal(sk_sign_minisig_verify_file(&pub, path, text, len, 0, &ms, &err), SK_OK);
    assert_int_equal(sk_sign_minisig_verify_file(&pub, path, text, len, SK_SIGN_REQUIRE_PREHASHED,
                                                 NULL, &err),
                     SK_EVERIFY);
    write_file(path, "A legacy message", strlen(msg));
    assert_int_equal(sk_sign_minisig_verify_file(&pub, path, text, len, 0, NULL, &err), SK_EVERIFY);

    /* An "ED" signature relabelled "Ed" does not verify as legacy. */
    char *hashed = NULL;
    size_t hlen;
    assert_int_equal(sk_sign_minisig_buf(key, msg, strlen(msg), NULL, "t", &hashed, &hlen, &err),
                     SK_OK);
    char *relabelled = line_flip_b64(hashed, 2, 74, 1, 'D' ^ 'd');
    assert_int_equal(sk_sign_minisig_parse(relabelled, strlen(relabelled), &ms, &err), SK_OK);
    assert_int_equal(ms.prehashed, 0);
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, msg, strlen(msg), relabelled,
                                                strlen(relabelled), 0, NULL, &err),
                     SK_EVERIFY);
    free(relabelled);
    free(hashed);
    free(text);
    sk_key_sec_free(key);
}

static void test_minisig_tampered(void **state)
{
    (void)state;
    sk_key_sec *key = new_key(), *other = new_key();
    sk_key_pub pub, pub2;
    sk_error err = {0};
    char *text = NULL, *t;
    size_t len;
    const char msg[] = "the model bytes";
    sk_key_sec_public(key, &pub);
    assert_int_equal(sk_sign_minisig_buf(key, msg, strlen(msg), "u", "the trusted comment", &text,
                                         &len, &err),
                     SK_OK);
    assert_int_equal(sk_sign_minisig_verify_buf(&pub, msg, strlen(msg), text, len, 0, NULL, &err),
                     SK_OK);

#define EXPECT_VERIFY(pubp, m, txt, want_st, want_msg)                                            \
    do {                                                                                        \
        err.msg[0] = '\0';                                                                      \
        assert_int_equal(sk_sign_minisig_verify_buf(pubp, m, strlen(m), txt, strlen(txt), 0, NULL, \
                                                    &err),                                      \
                         want_st);                                                              \
        assert_non_null(strstr(err.msg, want_msg));                                             \
    } while (0)

    /* The message. */
    EXPECT_VERIFY(&pub, "the model byteS", text, SK_EVERIFY, "does not match");
    EXPECT_VERIFY(&pub, "the model byte", text, SK_EVERIFY, "does not match");
    /* The signature, anywhere in R or S. */
    for (size_t at = 10; at < 74; at += 9) {
        t = line_flip_b64(text, 2, 74, at, 0x40);
        EXPECT_VERIFY(&pub, msg, t, SK_EVERIFY, "does not match");
        free(t);
    }
    /* The key id in the signature. */
    t = line_flip_b64(text, 2, 74, 4, 0x01);
    EXPECT_VERIFY(&pub, msg, t, SK_EVERIFY, "signed with key");
    free(t);
    /* The global signature. */
    t = line_flip_b64(text, 4, 64, 33, 0x01);
    EXPECT_VERIFY(&pub, msg, t, SK_EVERIFY, "trusted comment");
    free(t);
    /* The trusted comment. */
    t = line_replace(text, 3, "trusted comment: the trusted commenT");
    EXPECT_VERIFY(&pub, msg, t, SK_EVERIFY, "trusted comment");
    free(t);
    t = line_replace(text, 3, "trusted comment: the trusted comment ");
    EXPECT_VERIFY(&pub, msg, t, SK_EVERIFY, "trusted comment");
    free(t);
    /* The public key: another id, or another key under the same id. */
    pub2 = pub;
    pub2.id[7] ^= 0x80;
    EXPECT_VERIFY(&pub2, msg, text, SK_EVERIFY, "signed with key");
    sk_key_sec_public(other, &pub2);
    memcpy(pub2.id, pub.id, 8);
    EXPECT_VERIFY(&pub2, msg, text, SK_EVERIFY, "does not match");
    /* The untrusted comment is not signed. */
    t = line_replace(text, 1, "untrusted comment: anything at all");
    EXPECT_VERIFY(&pub, msg, t, SK_OK, "");
    free(t);
#undef EXPECT_VERIFY
    free(text);
    sk_key_sec_free(key);
    sk_key_sec_free(other);
}

static void test_minisig_malformed(void **state)
{
    (void)state;
    sk_key_sec *key = new_key();
    sk_key_pub pub;
    sk_error err = {0};
    sk_minisig ms;
    char *text = NULL, *t;
    size_t len;
    const char msg[] = "m";
    sk_key_sec_public(key, &pub);
    assert_int_equal(sk_sign_minisig_buf(key, msg, 1, "u", "tc", &text, &len, &err), SK_OK);

    /* Every truncation is malformed, except dropping the final "\n". */
    for (size_t k = 0; k < len; k++) {
        sk_status want = k == len - 1 ? SK_OK : SK_EINVAL;
        assert_int_equal(sk_sign_minisig_parse(text, k, &ms, &err), want);
        assert_int_equal(sk_sign_minisig_verify_buf(&pub, msg, 1, text, k, 0, NULL, &err), want);
    }
    /* Random garbage, bare and behind a valid first line. */
    char junk[600];
    for (int i = 0; i < 3000; i++) {
        size_t n = (size_t)(rng() % sizeof junk);
        for (size_t j = 0; j < n; j++) junk[j] = (char)rng();
        if (i % 2 && n > 30) memcpy(junk, "untrusted comment: x\n", 21);
        assert_int_equal(sk_sign_minisig_verify_buf(&pub, msg, 1, junk, n, 0, NULL, &err),
                         SK_EINVAL);
    }
    /* Bytes >= 0x80 in base64 lines (libsodium 1.0.18 decodes some of them). */
    for (int line = 2; line <= 4; line += 2) {
        for (unsigned v = 0x80; v < 0x100; v++) {
            char *c2 = malloc(len + 1);
            assert_non_null(c2);
            memcpy(c2, text, len + 1);
            char *p = c2;
            for (int l = 1; l < line; l++) p = strchr(p, '\n') + 1;
            p[20] = (char)v;
            assert_int_equal(sk_sign_minisig_verify_buf(&pub, msg, 1, c2, len, 0, NULL, &err),
                             SK_EINVAL);
            free(c2);
        }
    }
    /* One random byte changed: never a crash, never accepted outside line 1. */
    size_t line1 = (size_t)(strchr(text, '\n') - text);
    char *copy = malloc(len);
    assert_non_null(copy);
    for (int i = 0; i < 3000; i++) {
        memcpy(copy, text, len);
        size_t at = (size_t)(rng() % (len - 1));
        char v = (char)rng();
        if (v == copy[at]) v ^= 1;
        copy[at] = v;
        sk_status st = sk_sign_minisig_verify_buf(&pub, msg, 1, copy, len, 0, NULL, &err);
        assert_true(st == SK_OK || st == SK_EINVAL || st == SK_EVERIFY);
        if (at > line1) assert_int_not_equal(st, SK_OK);
    }
    free(copy);

    struct {
        int line;
        const char *repl, *what;
    } cases[] = {
        {1, "comment: u", "untrusted comment"},
        {1, "untrusted comment:u", "untrusted comment"},
        {2, "RUQ", "line 2"},
        {2, "", "line 2"},
        {3, "trusted: tc", "trusted comment"},
        {3, "trusted comment: tc\x01", "unprintable"},
        {3, "trusted comment: \xff", "unprintable"},
        {4, "AAAA", "line 4"},
        {4, "", "line 4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        t = line_replace(text, cases[i].line, cases[i].repl);
        err.msg[0] = '\0';
        assert_int_equal(sk_sign_minisig_parse(t, strlen(t), &ms, &err), SK_EINVAL);
        assert_non_null(strstr(err.msg, cases[i].what));
        free(t);
    }
    /* Unknown algorithm. */
    t = line_flip_b64(text, 2, 74, 0, 'E' ^ 'X');
    assert_int_equal(sk_sign_minisig_parse(t, strlen(t), &ms, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "algorithm"));
    free(t);
    /* Extra content, a carriage return inside, a NUL byte, too long lines. */
    size_t big = len + 20000;
    t = malloc(big);
    assert_non_null(t);
    snprintf(t, big, "%sextra\n", text);
    assert_int_equal(sk_sign_minisig_parse(t, strlen(t), &ms, &err), SK_EINVAL);
    snprintf(t, big, "%s\n", text);
    assert_int_equal(sk_sign_minisig_parse(t, strlen(t), &ms, &err), SK_EINVAL);
    memcpy(t, text, len);
    t[len - 5] = '\r';
    assert_int_equal(sk_sign_minisig_parse(t, len, &ms, &err), SK_EINVAL);
    memcpy(t, text, len);
    t[len - 5] = '\0';
    err.msg[0] = '\0';
    assert_int_equal(sk_sign_minisig_parse(t, len, &ms, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "NUL"));
    assert_int_equal(sk_sign_minisig_parse(NULL, 10, &ms, &err), SK_EINVAL);
    assert_int_equal(sk_sign_minisig_parse("", 0, &ms, &err), SK_EINVAL);
    char *longline = malloc(SK_SIGN_TRUSTED_COMMENT_MAX + 40);
    assert_non_null(longline);
    snprintf(longline, 40, "trusted comment: ");
    memset(longline + 17, 'a', SK_SIGN_TRUSTED_COMMENT_MAX + 1);
    longline[17 + SK_SIGN_TRUSTED_COMMENT_MAX + 1] = '\0';
    free(t);
    t = line_replace(text, 3, longline);
    assert_int_equal(sk_sign_minisig_parse(t, strlen(t), &ms, &err), SK_EINVAL);
    free(t);
    snprintf(longline, 40, "untrusted comment: ");
    memset(longline + 19, 'a', SK_SIGN_COMMENT_MAX + 1);
    longline[19 + SK_SIGN_COMMENT_MAX + 1] = '\0';
    t = line_replace(text, 1, longline);
    assert_int_equal(sk_sign_minisig_parse(t, strlen(t), &ms, &err), SK_EINVAL);
    free(t);
    free(longline);
    free(text);
    sk_key_sec_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8032_vectors),
        cmocka_unit_test(test_ed25519_text),
        cmocka_unit_test(test_key_id_hex),
        cmocka_unit_test(test_pub_string),
        cmocka_unit_test(test_pub_file_text),
        cmocka_unit_test(test_sec_unencrypted),
        cmocka_unit_test(test_sec_encrypted),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_passwords),
        cmocka_unit_test(test_minisig_roundtrip),
        cmocka_unit_test(test_minisig_comments),
        cmocka_unit_test(test_minisig_file),
        cmocka_unit_test(test_minisig_legacy),
        cmocka_unit_test(test_minisig_tampered),
        cmocka_unit_test(test_minisig_malformed),
    };
    return cmocka_run_group_tests_name("sign", tests, group_setup, group_teardown);
}
