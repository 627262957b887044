#!/bin/bash
# audio.sh LIST OUT.cmr [SPLITS]
# Decode the tracks of a track list (cmr-decode --list) to 16 kHz mono "audio"
# frames in one file, the input cmr-pair re-reads every epoch. SPLITS (comma-
# separated, e.g. "training") keeps only the rows whose `split` column is one of
# them. About 64 KB per second of audio. Written under a temporary name, then renamed.
. "$(dirname "$0")/common.sh"
[ $# -ge 2 ] && [ $# -le 3 ] || { echo "usage: audio.sh LIST OUT.cmr [SPLITS]" >&2; exit 2; }
list=$1 out=$2 splits=${3:-}
need_file "$list"
tmp_for "$out"
if [ -n "$splits" ]; then
    # a filtered copy of the list, with absolute paths (cmr-decode resolves relative
    # paths against the list's own folder)
    sel=$out.list.tsv
    awk -F'\t' -v OFS='\t' -v dir="$(cd "$(dirname "$list")" && pwd)" -v want="$splits" '
        NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "path") p = i; if ($i == "split") s = i }
                  if (!p) { print "audio.sh: no path column" > "/dev/stderr"; exit 1 }
                  n = split(want, w, ","); for (i = 1; i <= n; i++) keep[w[i]] = 1; print; next }
        !s || ($s in keep) { if ($p !~ /^\//) $p = dir "/" $p; print }' "$list" > "$sel"
    [ "$(wc -l < "$sel")" -gt 1 ] || die "$list: no track with split in '$splits'"
    list=$sel
fi
say "decoding $(( $(wc -l < "$list") - 1 )) tracks of $list"
cmr decode -q --list "$list" | cmr resample > "$TMP_OUT"
commit "$out"
say "wrote $out ($(du -h "$out" | cut -f1))"
