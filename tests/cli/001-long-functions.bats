#!/usr/bin/env bats
# No function outside tests/ runs past 120 lines (issue 12: readable entry
# points). tools/long-functions lists the offenders with their lengths.
load helpers

@test "long-functions: no function in lib/, filters/ or gst-plugins/ is over 120 lines" {
    run "$CMR_SRCDIR/tools/long-functions" -n 120 "$CMR_SRCDIR/lib" "$CMR_SRCDIR/filters" \
        "$CMR_SRCDIR/gst-plugins"
    [ -z "$output" ] || echo "# over 120 lines: $output" >&3
    [ "$status" -eq 0 ]
    [ -z "$output" ]
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
