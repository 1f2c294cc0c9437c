#!/bin/sh
# skiff-keygen's command line (exit codes, file modes, overwriting, usage
# errors) and minisign interoperability of sign/ in both directions, through
# the driver $B/tests/test_sign_interop. Run from the repository root with
# B=build. Password-protected keys use scrypt with 1 GiB, like minisign: the
# seven derivations below take from half a minute to a minute.
set -u
B=${B:-build}
KG=$B/bin/skiff-keygen
DRV=$B/tests/test_sign_interop
T=$(mktemp -d "${TMPDIR:-/tmp}/skiff-keygen-test.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
checks=0
fails=0
PW='correct horse battery staple'

pass() { checks=$((checks + 1)); echo "ok   - $1"; }
flunk() {
    checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL - $1"
    for f in "$T/out" "$T/err"; do [ -s "$f" ] && sed 's/^/    | /' "$f" | head -n 20; done
}
# run CMD...: runs with stdin from /dev/null and, when setsid exists, without
# a controlling terminal (so nothing can prompt); sets $rc.
run() {
    if command -v setsid >/dev/null 2>&1; then
        setsid -w "$@" >"$T/out" 2>"$T/err" </dev/null
    else
        "$@" >"$T/out" 2>"$T/err" </dev/null
    fi
    rc=$?
}
# expect_exit DESCRIPTION CODE CMD...
expect_exit() {
    d=$1; want=$2; shift 2
    run "$@"
    if [ "$rc" = "$want" ]; then pass "$d (exit $rc)"; else flunk "$d: exit $rc, expected $want"; fi
}
# that DESCRIPTION TEST...: an extra condition on the last run
that() {
    d=$1; shift
    if "$@"; then pass "$d"; else flunk "$d"; fi
}
mode() { stat -c %a "$1"; }
line() { sed -n "$1p" "$2"; }
stderr_one_line() { [ "$(wc -l <"$T/err")" -eq 1 ]; }
# driver VAR=VALUE...: runs the interop driver with that environment
driver() { run env "$@" "$DRV"; }

if [ ! -x "$KG" ]; then
    echo "FAIL - $KG is not built (run make)"
    exit 1
fi

echo "# usage"
expect_exit "--help" 0 "$KG" --help
that "--help prints the usage on stdout" grep -q '^usage: skiff-keygen' "$T/out"
expect_exit "--version" 0 "$KG" --version
that "--version prints the name and version" grep -Eq '^skiff-keygen [0-9]' "$T/out"
expect_exit "no arguments" 2 "$KG"
that "usage errors are explained on stderr" grep -q '^skiff-keygen: both -p PUBFILE and -s SECFILE are needed (see skiff-keygen --help)$' "$T/err"
expect_exit "-p without -s" 2 "$KG" -p "$T/x.pub"
expect_exit "unknown long option" 2 "$KG" --bogus -p "$T/x.pub" -s "$T/x.key"
that "the unknown option is named" grep -q -- '--bogus' "$T/err"
expect_exit "unknown short option" 2 "$KG" -x -p "$T/x.pub" -s "$T/x.key"
expect_exit "missing option argument" 2 "$KG" -s "$T/x.key" -p
expect_exit "unexpected argument" 2 "$KG" -W -p "$T/x.pub" -s "$T/x.key" extra
expect_exit "--no-password with --password-file" 2 "$KG" -W --password-file "$T/pw" -p "$T/x.pub" -s "$T/x.key"
expect_exit "-p given twice" 2 "$KG" -W -p "$T/x.pub" -p "$T/y.pub" -s "$T/x.key"
that "usage errors wrote no file" test ! -e "$T/x.pub" -a ! -e "$T/x.key"

echo "# unencrypted key pair"
expect_exit "keygen --no-password" 0 "$KG" --no-password -p "$T/a.pub" -s "$T/a.key"
that "secret key file is mode 600" test "$(mode "$T/a.key")" = 600
that "public key file is mode 644" test "$(mode "$T/a.pub")" = 644
that "public key line 1 is an untrusted comment" grep -q '^untrusted comment: skiff public key [0-9A-F]\{16\}$' "$T/a.pub"
that "public key line 2 is RW + 54 base64 characters" sh -c "sed -n 2p '$T/a.pub' | grep -Eq '^RW[A-Za-z0-9+/]{54}\$'"
that "secret key algorithms are Ed, none, B2" test "$(line 2 "$T/a.key" | base64 -d | head -c 6 | od -An -tx1 | tr -d ' \n')" = 456400004232
that "it says the key is not encrypted" grep -q "$T/a.key: secret key (NOT encrypted)" "$T/err"
that "it shows the public key string" grep -qF "minisign -Vm FILE -P $(line 2 "$T/a.pub")" "$T/err"
that "stdout is empty without --json" test ! -s "$T/out"
cp "$T/a.pub" "$T/a.pub.orig"; cp "$T/a.key" "$T/a.key.orig"
expect_exit "keygen again without -f" 1 "$KG" -W -p "$T/a.pub" -s "$T/a.key"
that "the error is one line naming the file" sh -c "grep -q 'skiff-keygen: $T/a.pub: already exists; use -f' '$T/err' && [ \$(wc -l <'$T/err') -eq 1 ]"
that "the files are unchanged" sh -c "cmp -s '$T/a.pub' '$T/a.pub.orig' && cmp -s '$T/a.key' '$T/a.key.orig'"
expect_exit "only the secret key exists" 1 "$KG" -W -p "$T/new.pub" -s "$T/a.key"
that "no public key was written" test ! -e "$T/new.pub"
expect_exit "keygen -f replaces the pair" 0 "$KG" -W -f -p "$T/a.pub" -s "$T/a.key"
that "both files changed" sh -c "! cmp -s '$T/a.pub' '$T/a.pub.orig' && ! cmp -s '$T/a.key' '$T/a.key.orig'"
that "the replaced secret key is still mode 600" test "$(mode "$T/a.key")" = 600
that "no temporary files are left" test -z "$(ls -A "$T" | grep '^\.')"
expect_exit "keygen -q" 0 "$KG" -q -W -p "$T/q.pub" -s "$T/q.key"
that "-q prints nothing" test ! -s "$T/out" -a ! -s "$T/err"
expect_exit "keygen --json" 0 "$KG" -q --json -W -p "$T/j.pub" -s "$T/j.key"
that "--json prints one object with the key id and key string" \
    grep -q "^{\"public_key_file\": \"$T/j.pub\", \"secret_key_file\": \"$T/j.key\", \"key_id\": \"[0-9A-F]\{16\}\", \"public_key\": \"$(line 2 "$T/j.pub" | sed 's|[+/]|.|g')\", \"encrypted\": false, \"kdf_opslimit\": 0, \"kdf_memlimit\": 0}\$" "$T/out"
expect_exit "keygen -c COMMENT" 0 "$KG" -W -c "release key 2025" -p "$T/c.pub" -s "$T/c.key"
that "the comment is line 1 of the secret key" test "$(line 1 "$T/c.key")" = "untrusted comment: release key 2025"
expect_exit "a comment with a newline" 1 "$KG" -W -c "two
lines" -p "$T/d.pub" -s "$T/d.key"
that "no files after a failure" test ! -e "$T/d.pub" -a ! -e "$T/d.key"
expect_exit "secret key in a missing directory" 1 "$KG" -W -p "$T/e.pub" -s "$T/no/such/dir/e.key"
that "the error names the file" grep -q "$T/no/such/dir/e.key" "$T/err"
that "and is one line" stderr_one_line
that "no public key was left behind" test ! -e "$T/e.pub"

echo "# passwords"
expect_exit "missing --password-file" 1 "$KG" --password-file "$T/nope" -p "$T/f.pub" -s "$T/f.key"
that "the error names the password file" grep -q "$T/nope: cannot open" "$T/err"
: >"$T/empty"
expect_exit "empty password" 1 "$KG" --password-file "$T/empty" -p "$T/f.pub" -s "$T/f.key"
that "the error suggests --no-password" grep -q 'empty; use --no-password' "$T/err"
if command -v setsid >/dev/null 2>&1; then
    expect_exit "no password source and no terminal" 1 env -u SKIFF_PASSWORD "$KG" -p "$T/f.pub" -s "$T/f.key"
    that "the error lists the password sources" grep -q 'no password given: use --password-file FILE, set \$SKIFF_PASSWORD, or run on a terminal' "$T/err"
else
    echo "skipped: no password source and no terminal (setsid is not installed)"
fi
that "no key files after password failures" test ! -e "$T/f.pub" -a ! -e "$T/f.key"
printf '%s\n' "$PW" >"$T/pw"
expect_exit "keygen --password-file" 0 "$KG" --password-file "$T/pw" -p "$T/p.pub" -s "$T/p.key"
that "encrypted secret key file is mode 600" test "$(mode "$T/p.key")" = 600
that "secret key algorithms are Ed, Sc, B2" test "$(line 2 "$T/p.key" | base64 -d | head -c 6)" = EdScB2
that "it says the key is encrypted" grep -q "$T/p.key: secret key (encrypted)" "$T/err"
expect_exit "keygen with \$SKIFF_PASSWORD" 0 env SKIFF_PASSWORD="$PW" "$KG" -p "$T/s.pub" -s "$T/s.key"
that "secret key algorithms are Ed, Sc, B2" test "$(line 2 "$T/s.key" | base64 -d | head -c 6)" = EdScB2

# The prompt runs on a pseudo-terminal made by script(1). The pauses let the
# prompt turn echo off first: it flushes anything typed ahead, like getpass.
if command -v script >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then
    tty_keygen() { # PASSWORD1 PASSWORD2 NAME
        (sleep 1; printf '%s\n' "$1"; sleep 1; printf '%s\n' "$2") |
            timeout 60 script -qec "env -u SKIFF_PASSWORD $KG -p $T/$3.pub -s $T/$3.key" /dev/null >"$T/out" 2>&1
        rc=$?
        : >"$T/err"
    }
    tty_keygen typed-once typed-twice t1
    that "terminal prompt: two different passwords fail (exit $rc)" test "$rc" = 1
    that "it asks twice" grep -q 'Password (again): ' "$T/out"
    that "the mismatch is reported" grep -q 'skiff-keygen: the two passwords do not match' "$T/out"
    that "the typed password is not echoed" sh -c "! grep -q typed- '$T/out'"
    that "no key files after the mismatch" test ! -e "$T/t1.pub" -a ! -e "$T/t1.key"
    tty_keygen "$PW" "$PW" t2
    that "terminal prompt: the same password twice (exit $rc)" test "$rc" = 0
    that "the key from the prompt is encrypted" test "$(line 2 "$T/t2.key" | base64 -d | head -c 6)" = EdScB2
    that "the typed password is not echoed" sh -c "! grep -q 'battery' '$T/out'"
else
    echo "skipped: terminal prompt (script or timeout is not installed)"
fi

echo "# minisign interoperability"
if ! command -v minisign >/dev/null 2>&1; then
    echo "skipped: minisign interoperability (minisign is not installed)"
elif [ ! -x "$DRV" ]; then
    flunk "$DRV is not built (run make test)"
else
    head -c 200000 /dev/urandom >"$T/model.bin"
    printf 'hello from skiff\n' >"$T/small.txt"

    # skiff key, skiff signature, minisign verifies
    driver SKIFF_INTEROP_SIGN_KEY="$T/a.key" SKIFF_INTEROP_MSG="$T/model.bin" \
        SKIFF_INTEROP_SIG="$T/model.bin.minisig" SKIFF_INTEROP_TC="skiff interop 1"
    that "skiff signs with an unencrypted skiff key" test "$rc" = 0
    expect_exit "minisign -V accepts it (key file)" 0 minisign -Vm "$T/model.bin" -p "$T/a.pub"
    that "minisign reports skiff's trusted comment" grep -q 'Trusted comment: skiff interop 1' "$T/out"
    expect_exit "minisign -V -H accepts it (prehashed)" 0 minisign -H -Vm "$T/model.bin" -p "$T/a.pub"
    expect_exit "minisign -V accepts it (key string)" 0 minisign -Vm "$T/model.bin" -P "$(line 2 "$T/a.pub")"
    cp "$T/model.bin" "$T/model2.bin"; printf 'x' >>"$T/model2.bin"
    expect_exit "minisign -V rejects a changed file" 1 minisign -Vm "$T/model2.bin" -x "$T/model.bin.minisig" -p "$T/a.pub"
    expect_exit "minisign -V rejects another key" 1 minisign -Vm "$T/model.bin" -p "$T/c.pub"

    # minisign key, minisign signature, skiff verifies
    expect_exit "minisign -G -W" 0 minisign -G -W -p "$T/m.pub" -s "$T/m.key"
    expect_exit "minisign -S" 0 minisign -S -s "$T/m.key" -m "$T/model.bin" -x "$T/m.minisig" -t "from minisign"
    driver SKIFF_INTEROP_VERIFY_PUB="$T/m.pub" SKIFF_INTEROP_MSG="$T/model.bin" \
        SKIFF_INTEROP_SIG="$T/m.minisig" SKIFF_INTEROP_TC="from minisign"
    that "skiff verifies minisign's signature and trusted comment" test "$rc" = 0
    driver SKIFF_INTEROP_VERIFY_PUB="$(line 2 "$T/m.pub")" SKIFF_INTEROP_MSG="$T/model.bin" \
        SKIFF_INTEROP_SIG="$T/m.minisig" SKIFF_INTEROP_PREHASHED=1
    that "skiff verifies it with the key string, prehashed required" test "$rc" = 0
    driver SKIFF_INTEROP_VERIFY_PUB="$T/m.pub" SKIFF_INTEROP_MSG="$T/model2.bin" \
        SKIFF_INTEROP_SIG="$T/m.minisig" SKIFF_INTEROP_EXPECT=fail
    that "skiff rejects minisign's signature for a changed file" test "$rc" = 0
    driver SKIFF_INTEROP_VERIFY_PUB="$T/a.pub" SKIFF_INTEROP_MSG="$T/model.bin" \
        SKIFF_INTEROP_SIG="$T/m.minisig" SKIFF_INTEROP_EXPECT=fail
    that "skiff rejects minisign's signature under another key" test "$rc" = 0
    sed '3s/from minisign/from minisigN/' "$T/m.minisig" >"$T/m-tc.minisig"
    driver SKIFF_INTEROP_VERIFY_PUB="$T/m.pub" SKIFF_INTEROP_MSG="$T/model.bin" \
        SKIFF_INTEROP_SIG="$T/m-tc.minisig" SKIFF_INTEROP_EXPECT=fail
    that "skiff rejects a changed trusted comment" test "$rc" = 0
    expect_exit "minisign -S -l (legacy)" 0 minisign -S -l -s "$T/m.key" -m "$T/small.txt" -x "$T/legacy.minisig"
    driver SKIFF_INTEROP_VERIFY_PUB="$T/m.pub" SKIFF_INTEROP_MSG="$T/small.txt" SKIFF_INTEROP_SIG="$T/legacy.minisig"
    that "skiff verifies minisign's legacy signature" test "$rc" = 0
    driver SKIFF_INTEROP_VERIFY_PUB="$T/m.pub" SKIFF_INTEROP_MSG="$T/small.txt" \
        SKIFF_INTEROP_SIG="$T/legacy.minisig" SKIFF_INTEROP_PREHASHED=1 SKIFF_INTEROP_EXPECT=fail
    that "skiff rejects it when prehashed is required" test "$rc" = 0

    # minisign's unencrypted key (zero checksum) used by skiff
    driver SKIFF_INTEROP_SIGN_KEY="$T/m.key" SKIFF_INTEROP_MSG="$T/small.txt" SKIFF_INTEROP_SIG="$T/sm.minisig"
    that "skiff signs with minisign's unencrypted key" test "$rc" = 0
    expect_exit "minisign -V accepts that signature" 0 minisign -Vm "$T/small.txt" -x "$T/sm.minisig" -p "$T/m.pub"

    # password-protected skiff key used by minisign (password on stdin)
    printf '%s\n' "$PW" | minisign -S -s "$T/p.key" -m "$T/small.txt" -x "$T/p.minisig" >"$T/out" 2>"$T/err"
    rc=$?
    that "minisign -S signs with skiff's encrypted key (exit $rc)" test "$rc" = 0
    expect_exit "minisign -V accepts it" 0 minisign -Vm "$T/small.txt" -x "$T/p.minisig" -p "$T/p.pub"
    driver SKIFF_INTEROP_VERIFY_PUB="$T/p.pub" SKIFF_INTEROP_MSG="$T/small.txt" SKIFF_INTEROP_SIG="$T/p.minisig"
    that "skiff verifies it too" test "$rc" = 0

    # skiff's own encrypted key, password from $SKIFF_PASSWORD
    driver SKIFF_PASSWORD="$PW" SKIFF_INTEROP_SIGN_KEY="$T/s.key" SKIFF_INTEROP_MSG="$T/small.txt" \
        SKIFF_INTEROP_SIG="$T/s.minisig"
    that "skiff signs with its encrypted key" test "$rc" = 0
    expect_exit "minisign -V accepts it" 0 minisign -Vm "$T/small.txt" -x "$T/s.minisig" -p "$T/s.pub"

    # password-protected minisign key used by skiff
    printf '%s\n%s\n' "$PW" "$PW" | minisign -G -p "$T/me.pub" -s "$T/me.key" >"$T/out" 2>"$T/err"
    rc=$?
    that "minisign -G with a password (exit $rc)" test "$rc" = 0
    driver SKIFF_PASSWORD="$PW" SKIFF_INTEROP_SIGN_KEY="$T/me.key" SKIFF_INTEROP_MSG="$T/model.bin" \
        SKIFF_INTEROP_SIG="$T/me.minisig" SKIFF_INTEROP_VERIFY_PUB="$T/me.pub"
    that "skiff decrypts minisign's key, signs and verifies" test "$rc" = 0
    expect_exit "minisign -V accepts that signature" 0 minisign -Vm "$T/model.bin" -x "$T/me.minisig" -p "$T/me.pub"
fi

echo "keygen.sh: $((checks - fails)) of $checks checks passed"
[ "$fails" = 0 ]
