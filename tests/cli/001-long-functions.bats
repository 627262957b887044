#!/usr/bin/env bats
# No function outside tests/ runs past 120 lines (issue 12: readable entry
# points). tools/long-functions lists the offenders with their lengths.
load helpers

# TODO(issue 12, lead): empty this list when the stream-core branch, which
# splits cmr-mel's main (filters/cmr-mel.c, 148 lines), is merged. Every file
# is checked; a function named here is reported but does not fail the test.
pending="filters/cmr-mel.c:main"

@test "long-functions: no function in lib/, filters/ or gst-plugins/ is over 120 lines" {
    run "$CMR_SRCDIR/tools/long-functions" -n 120 "$CMR_SRCDIR/lib" "$CMR_SRCDIR/filters" \
        "$CMR_SRCDIR/gst-plugins"
    [ "$status" -eq 0 ] || [ "$status" -eq 1 ]
    local line where bad=
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        where=${line#* "$CMR_SRCDIR"/}
        where="${where%%:*}:${where##* }"
        case " $pending " in
        *" $where "*) echo "# pending (another branch splits it): $line" >&3 ;;
        *) echo "# over 120 lines: $line" >&3; bad=1 ;;
        esac
    done <<< "$output"
    [ -z "$bad" ]
}

@test "long-functions: finds a long function, ignores a short one and a declaration" {
    setup_tmp
    {
        echo 'static int short_one(int a);'
        echo 'static int short_one(int a)'
        echo '{'
        echo '    return a;'
        echo '}'
        echo 'int'
        echo 'long_one (int a,'
        echo '          int b)'
        echo '{'
        for i in $(seq 1 20); do echo "    a += $i;"; done
        echo '    return a + b;'
        echo '}'
    } > "$TMP/x.c"
    run "$CMR_SRCDIR/tools/long-functions" -n 10 "$TMP/x.c"
    [ "$status" -eq 1 ]
    [ "$output" = "25 $TMP/x.c:7 long_one" ]
    run "$CMR_SRCDIR/tools/long-functions" -n 25 "$TMP"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    run "$CMR_SRCDIR/tools/long-functions" -n x "$TMP"
    [ "$status" -eq 2 ]
    rm -rf "$TMP"
}
