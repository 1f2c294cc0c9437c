/* minisign interoperability driver for tests/cli/keygen.sh. It takes its
 * paths from the environment; when they are not set (as under
 * tests/run-all.sh) every test says so and is skipped.
 *
 *   sign:   SKIFF_INTEROP_SIGN_KEY=secret key file, SKIFF_INTEROP_MSG=file,
 *           SKIFF_INTEROP_SIG=.minisig to write, SKIFF_INTEROP_TC=trusted
 *           comment (optional), SKIFF_PASSWORD=password if the key is encrypted
 *   verify: SKIFF_INTEROP_VERIFY_PUB=public key file or "RW..." string,
 *           SKIFF_INTEROP_MSG, SKIFF_INTEROP_SIG, SKIFF_INTEROP_TC=expected
 *           trusted comment (optional), SKIFF_INTEROP_PREHASHED=1 to require
 *           prehashed signatures, SKIFF_INTEROP_EXPECT=fail to expect
 *           SK_EVERIFY
 * When both are set, signing runs first. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sk_sign.h"

static void fail_with(const sk_error *err)
{
    print_error("%s\n", err->msg);
    fail();
}

static void interop_sign(void **state)
{
    (void)state;
    const char *key_path = getenv("SKIFF_INTEROP_SIGN_KEY");
    const char *msg = getenv("SKIFF_INTEROP_MSG"), *sig = getenv("SKIFF_INTEROP_SIG");
    if (!key_path) {
        print_message("skipped: SKIFF_INTEROP_SIGN_KEY is not set (tests/cli/keygen.sh sets it)\n");
        skip();
    }
    assert_non_null(msg);
    assert_non_null(sig);
    sk_error err = {0};
    sk_key_sec *key = NULL;
    char *pw = NULL, *text = NULL;
    size_t pw_len = 0, len = 0;
    int enc = 0;
    if (sk_key_sec_file_is_encrypted(key_path, &enc, &err) != SK_OK) fail_with(&err);
    if (enc) {
        if (sk_key_password_from_env("SKIFF_PASSWORD", &pw, &pw_len, &err) != SK_OK)
            fail_with(&err);
        assert_non_null(pw);
    }
    if (sk_key_sec_load(key_path, pw, pw_len, &key, &err) != SK_OK) fail_with(&err);
    sk_key_password_free(pw);
    if (sk_sign_minisig_file(key, msg, NULL, getenv("SKIFF_INTEROP_TC"), &text, &len, &err) != SK_OK)
        fail_with(&err);
    sk_key_sec_free(key);
    FILE *f = fopen(sig, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(text);
    print_message("signed %s with %s (%s key) into %s\n", msg, key_path,
                  enc ? "encrypted" : "unencrypted", sig);
}

static void interop_verify(void **state)
{
    (void)state;
    const char *pub_arg = getenv("SKIFF_INTEROP_VERIFY_PUB");
    const char *msg = getenv("SKIFF_INTEROP_MSG"), *sig = getenv("SKIFF_INTEROP_SIG");
    const char *tc = getenv("SKIFF_INTEROP_TC"), *expect = getenv("SKIFF_INTEROP_EXPECT");
    const char *prehashed = getenv("SKIFF_INTEROP_PREHASHED");
    if (!pub_arg) {
        print_message("skipped: SKIFF_INTEROP_VERIFY_PUB is not set (tests/cli/keygen.sh sets it)\n");
        skip();
    }
    assert_non_null(msg);
    assert_non_null(sig);
    int want_fail = expect && strcmp(expect, "fail") == 0;
    unsigned flags = prehashed && strcmp(prehashed, "1") == 0 ? SK_SIGN_REQUIRE_PREHASHED : 0;
    sk_error err = {0};
    sk_key_pub pub;
    sk_minisig ms;
    char *text = NULL;
    size_t len = 0;
    sk_status st = access(pub_arg, F_OK) == 0 ? sk_key_pub_load(pub_arg, &pub, &err)
                                               : sk_key_pub_from_string(pub_arg, &pub, &err);
    if (st != SK_OK) fail_with(&err);
    if (sk_sign_minisig_read(sig, &text, &len, &err) != SK_OK) fail_with(&err);
    st = sk_sign_minisig_verify_file(&pub, msg, text, len, flags, &ms, &err);
    free(text);
    if (want_fail) {
        print_message("rejected as expected: %s\n", err.msg);
        assert_int_equal(st, SK_EVERIFY);
        return;
    }
    if (st != SK_OK) fail_with(&err);
    print_message("verified %s (%s); trusted comment: %s\n", msg,
                  ms.prehashed ? "prehashed" : "legacy", ms.trusted_comment);
    if (tc) assert_string_equal(ms.trusted_comment, tc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(interop_sign),
        cmocka_unit_test(interop_verify),
    };
    return cmocka_run_group_tests_name("sign_interop", tests, NULL, NULL);
}
