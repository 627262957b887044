#!/usr/bin/env bats
# The man pages (mk/man.am): every program has one, made from its --help by
# help2man; man renders each without a warning; each names every option
# that --help lists, and has the EXIT STATUS and SEE ALSO sections.
load helpers

setup() {
    setup_tmp
    : "${CMR_PROGRAMS:?make check sets CMR_PROGRAMS}"
    command -v man >/dev/null || skip "man not found (apt-get install man-db)"
}

# render PAGE: the page as plain text, one long line per paragraph
render() {
    LC_ALL=C MANWIDTH=2000 man -l "$1" 2>"$TMP/man.err" | col -bx
}

@test "every program has a man page, and every built cmr-* program is listed" {
    local p n=0
    for p in $CMR_PROGRAMS; do
        [ -s "$CMR_BUILDDIR/man/$p.1" ] || { echo "no man page for $p" >&2; return 1; }
        n=$((n + 1))
    done
    [ "$n" -ge 15 ]
    for p in "$CMR_BINDIR"/cmr-*; do
        case $p in *.c | *.o) continue ;; esac
        [[ " $CMR_PROGRAMS " == *" ${p##*/} "* ]] || { echo "${p##*/} is built but has no page" >&2; return 1; }
    done
}

@test "man renders every page without a warning" {
    local p
    for p in $CMR_PROGRAMS; do
        LC_ALL=C man --warnings -l "$CMR_BUILDDIR/man/$p.1" >"$TMP/out" 2>"$TMP/err" ||
            { echo "man -l $p.1 failed" >&2; cat "$TMP/err" >&2; return 1; }
        [ ! -s "$TMP/err" ] || { echo "$p.1:" >&2; cat "$TMP/err" >&2; return 1; }
        grep -q "$p" "$TMP/out"
    done
}

@test "every page names every option of its program's --help" {
    local p o
    for p in $CMR_PROGRAMS; do
        render "$CMR_BUILDDIR/man/$p.1" >"$TMP/page"
        [ "$(wc -l <"$TMP/page")" -gt 10 ]
        "$CMR_BINDIR/$p" --help >"$TMP/help"
        # the options --help lists: -x and --long at the start of a line
        grep -oE '^ +(-[A-Za-z0-9], )?--[a-z][a-z0-9-]*' "$TMP/help" | grep -oE -- '--[a-z][a-z0-9-]*' >"$TMP/opts"
        [ -s "$TMP/opts" ] || { echo "$p --help lists no option" >&2; return 1; }
        while read -r o; do
            grep -qE -e "(^|[^a-z0-9-])$o([^a-z0-9-]|\$)" "$TMP/page" || { echo "$p.1 lacks $o" >&2; return 1; }
        done <"$TMP/opts"
        grep -q -- '--help' "$TMP/page"
    done
}

@test "every page has NAME, SYNOPSIS, EXIT STATUS and SEE ALSO" {
    local p s
    for p in $CMR_PROGRAMS; do
        render "$CMR_BUILDDIR/man/$p.1" >"$TMP/page"
        for s in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" "SEE ALSO"; do
            grep -qx "$s" "$TMP/page" || { echo "$p.1 lacks the section $s" >&2; return 1; }
        done
        # the NAME line describes the program, not help2man's placeholder
        grep -qE "^ +$p - [a-z]" "$TMP/page"
        ! grep -q 'manual page for' "$TMP/page"
        # the exit codes
        grep -qE '^ +2 *$|^ +2 ' "$TMP/page"
    done
}

@test "every synopsis of --help is a line of the page's SYNOPSIS" {
    local p l n
    for p in $CMR_PROGRAMS; do
        render "$CMR_BUILDDIR/man/$p.1" | sed -n '/^SYNOPSIS$/,/^DESCRIPTION$/p' | tr -s ' ' >"$TMP/syn"
        # "Usage: cmr-x ..." and the lines under it that start with the program's name
        "$CMR_BINDIR/$p" --help | awk -v p="$p" 'NR == 1 { sub(/^Usage: /, ""); print; next }
            $1 == p { print; next } { exit }' | tr -s ' ' >"$TMP/usage"
        n=0
        while read -r l; do
            grep -qxF " $l" "$TMP/syn" || { echo "$p.1: SYNOPSIS lacks '$l'" >&2; cat "$TMP/syn" >&2; return 1; }
            n=$((n + 1))
        done <"$TMP/usage"
        [ "$n" -ge 1 ]
    done
}
