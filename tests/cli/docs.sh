#!/bin/sh
# The man pages against the tools: every cmd/NAME.c has docs/man/NAME.1, every
# long option that `$B/bin/NAME --help` prints (and `skiff build --help`, for
# the dispatcher) appears in that page, every page renders without a groff
# warning, and every skiff page it refers to (SEE ALSO) exists. Run from the
# repository root with B=build.
set -u
B=${B:-build}
T=$B/test-tmp/docs
rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# options FILE: the long options a --help text names (--name, --per_channel),
# one per line
options() { grep -oE -- '--[a-z][a-z0-9_-]*[a-z0-9]' "$1" | sort -u; }
# page_text PAGE: the page's source with roff's \- turned into plain hyphens
page_text() { sed -e 's/\\-/-/g' -e 's/\\(hy/-/g' "$1"; }
# check_options TOOL HELPFILE PAGE: every option of HELPFILE is in PAGE
check_options() {
    page_text "$3" > "$T/page"
    missing=""
    for o in $(options "$2"); do
        grep -qE -- "$o([^a-z0-9_-]|\$)" "$T/page" || missing="$missing $o"
    done
    n=$(options "$2" | wc -l)
    if [ -n "$missing" ]; then bad "$3 lacks options that '$1 --help' prints:$missing"
    elif [ "$n" -lt 1 ]; then bad "'$1 --help' names no long option (is the help text there?)"
    else ok "$3 documents all $n long options of '$1 --help'"
    fi
}

if ! command -v groff >/dev/null 2>&1; then
    echo "skipped: rendering checks (groff is not installed: apt-get install groff-base)"
fi

tools=""
for c in cmd/*.c; do
    tools="$tools $(basename "$c" .c)"
done
for name in $tools; do
    page=docs/man/$name.1
    if [ ! -f "$page" ]; then bad "cmd/$name.c has no man page $page"; continue; fi
    ok "$page exists"
    up=$(echo "$name" | tr a-z A-Z)
    head -n 5 "$page" | grep -q "^\.TH $up 1 " && ok "$page: .TH $up 1" || bad "$page: no '.TH $up 1' line at the top"
    bin=$B/bin/$name
    if [ ! -x "$bin" ]; then echo "skipped: $name --help against $page ($bin is not built)"; continue; fi
    "$bin" --help > "$T/help" 2> "$T/err"; rc=$?
    if [ "$rc" != 0 ]; then bad "$name --help: exit $rc"; continue; fi
    check_options "$name" "$T/help" "$page"
    if [ "$name" = skiff ]; then
        "$bin" build --help > "$T/help-build" 2> "$T/err"; rc=$?
        if [ "$rc" = 0 ]; then check_options "skiff build" "$T/help-build" "$page"
        else bad "skiff build --help: exit $rc ($(head -c 200 "$T/err"))"
        fi
    fi
done

for page in docs/man/*.1; do
    if command -v groff >/dev/null 2>&1; then
        LC_ALL=C.UTF-8 groff -man -ww -z "$page" > "$T/warn" 2>&1; rc=$?
        if [ "$rc" = 0 ] && [ ! -s "$T/warn" ]; then ok "$page renders without warnings"
        else bad "$page: groff says (exit $rc): $(head -n 3 "$T/warn" | tr '\n' ' ')"
        fi
    fi
    if command -v man >/dev/null 2>&1; then
        MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$page" > "$T/out" 2> "$T/warn"; rc=$?
        if [ "$rc" = 0 ] && [ ! -s "$T/warn" ] && [ -s "$T/out" ]; then ok "man -l $page"
        else bad "man --warnings -l $page: exit $rc: $(head -n 3 "$T/warn" | tr '\n' ' ')"
        fi
    fi
    # skiff pages it refers to: .BR skiff\-pack (1) or .BR skiff-pack (1)
    refs=$(page_text "$page" | grep -oE '^\.BR? +skiff(-[a-z]+)? +\(1\)' | sed -E 's/^\.BR? +//; s/ +\(1\)//' | sort -u)
    for r in $refs; do
        [ -f "docs/man/$r.1" ] || bad "$page refers to $r(1), which has no page"
    done
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
