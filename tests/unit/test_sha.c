/* Unit tests of shard/sk_sha.c: SHA-384 and SHA-512 against the examples of
 * FIPS 180-4 (NIST's "SHA-384"/"SHA-512" example documents), SHA-512 against
 * libsodium for every length and split, SHA-384 against coreutils'
 * sha384sum, SRI strings against the W3C SRI specification's example. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sk_sha.h"

static void hex(const uint8_t *b, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, b, n);
}

static const char two_block[] =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

static void test_sha384_fips(void **state)
{
    (void)state;
    static const struct { const char *msg; const char *digest; } v[] = {
        { "abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7" },
        { two_block, "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039" },
        { "", "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t d[48];
        char h[97];
        sk_sha384(v[i].msg, strlen(v[i].msg), d);
        hex(d, 48, h);
        assert_string_equal(h, v[i].digest);
    }
    /* one million 'a', fed in uneven pieces */
    sk_sha512_ctx c;
    sk_sha384_init(&c);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    while (left) {
        size_t k = left < sizeof a ? left : sizeof a;
        sk_sha512_update(&c, a, k);
        left -= k;
    }
    uint8_t d[48];
    char h[97];
    sk_sha512_final(&c, d);
    hex(d, 48, h);
    assert_string_equal(h, "9d0e1809716474cb086e834e310a4a1ced149e9c00f248527972cec5704c2a5b07b8b3dc38ecc4ebae97ddd87f3d8985");
}

static void test_sha512_fips(void **state)
{
    (void)state;
    uint8_t d[64];
    char h[129];
    sk_sha512_ctx c;
    sk_sha512_init(&c);
    sk_sha512_update(&c, "abc", 3);
    sk_sha512_final(&c, d);
    hex(d, 64, h);
    assert_string_equal(h, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                           "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    sk_sha512_init(&c);
    sk_sha512_update(&c, two_block, strlen(two_block));
    sk_sha512_final(&c, d);
    hex(d, 64, h);
    assert_string_equal(h, "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
                           "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909");
}

/* Every length 0..600 (all padding cases around the 112- and 128-byte
 * boundaries), whole and split at every third point, against libsodium. */
static void test_sha512_vs_libsodium(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    uint8_t msg[600];
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 131 + 7);
    for (size_t n = 0; n <= sizeof msg; n++) {
        uint8_t want[64], got[64];
        crypto_hash_sha512(want, msg, n);
        for (size_t split = 0; split <= n; split += split < 3 ? 1 : 37) {
            sk_sha512_ctx c;
            sk_sha512_init(&c);
            sk_sha512_update(&c, msg, split);
            sk_sha512_update(&c, msg + split, n - split);
            sk_sha512_final(&c, got);
            assert_memory_equal(got, want, 64);
        }
    }
}

static void test_sha256_and_pair(void **state)
{
    (void)state;
    uint8_t d[32], d2[32], d384[48];
    char h[65];
    sk_sha256("abc", 3, d);
    sk_sha256_hex(d, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sk_sha_pair p;
    sk_sha_pair_init(&p);
    sk_sha_pair_update(&p, "a", 1);
    sk_sha_pair_update(&p, "bc", 2);
    sk_sha_pair_final(&p, d2, d384);
    assert_memory_equal(d, d2, 32);
    uint8_t want384[48];
    sk_sha384("abc", 3, want384);
    assert_memory_equal(d384, want384, 48);
}

static void test_sri(void **state)
{
    (void)state;
    /* the example of the W3C Subresource Integrity specification */
    static const char script[] = "alert('Hello, world.');";
    uint8_t d[48];
    char sri[SK_SRI_SIZE];
    sk_sha384(script, strlen(script), d);
    sk_sri_format(d, sri);
    assert_string_equal(sri, "sha384-H8BRh8j48O9oYatfu5AZzq6A9RINhZO5H16dQZngK7T62em8MUt1FLm52t+eX6xO");
    assert_int_equal(strlen(sri), SK_SRI_SIZE - 1);
}

/* coreutils' sha384sum on files of a few sizes, when it is installed. */
static void test_sha384_vs_coreutils(void **state)
{
    (void)state;
    if (access("/usr/bin/sha384sum", X_OK) != 0) {
        printf("skipped: /usr/bin/sha384sum is not installed\n");
        return;
    }
    char path[] = "/tmp/sk-test-sha-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    static const size_t sizes[] = { 0, 1, 111, 112, 127, 128, 129, 1000, 65536 + 13, 3u << 20 };
    uint8_t *buf = malloc(3u << 20);
    assert_non_null(buf);
    randombytes_buf(buf, 3u << 20);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, sizes[i], f), sizes[i]);
        assert_int_equal(fclose(f), 0);
        char cmd[128], line[256] = { 0 };
        snprintf(cmd, sizeof cmd, "/usr/bin/sha384sum %s", path);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        assert_non_null(fgets(line, sizeof line, p));
        assert_int_equal(pclose(p), 0);
        uint8_t d[48];
        char h[97];
        sk_sha384(buf, sizes[i], d);
        hex(d, 48, h);
        assert_int_equal(strncmp(line, h, 96), 0);
    }
    free(buf);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha384_fips),
        cmocka_unit_test(test_sha512_fips),
        cmocka_unit_test(test_sha512_vs_libsodium),
        cmocka_unit_test(test_sha256_and_pair),
        cmocka_unit_test(test_sri),
        cmocka_unit_test(test_sha384_vs_coreutils),
    };
    return cmocka_run_group_tests_name("sha", tests, NULL, NULL);
}
