#!/usr/bin/env bats
# The Python snippet in docs/frames.md reads a real stream (skipped where
# Debian's python3-msgpack/python3-numpy are not installed: make check needs no Python).
load helpers

@test "docs/frames.md: the Python reading snippet reads a cmr stream" {
    /usr/bin/python3 -c 'import msgpack, numpy' 2>/dev/null || skip "python3-msgpack or python3-numpy not installed"
    [ -x "$CMR_BINDIR/cmr-decode" ] || skip "cmr-decode not built"
    awk '/^```python/{f=1;next} /^```/{f=0} f' "$CMR_SRCDIR/docs/frames.md" > "$TMP/read_frames.py"
    [ -s "$TMP/read_frames.py" ]
    mk_sine "$TMP/a.wav" 440 0.5
    run --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' '$TMP/a.wav' | /usr/bin/python3 '$TMP/read_frames.py'"
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "audio $TMP/a.wav 0 (8000, 1) {}" ]]
    [[ "${lines[-1]}" == "end $TMP/a.wav" ]]
}
