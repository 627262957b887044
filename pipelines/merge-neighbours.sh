#!/bin/bash
# merge-neighbours.sh K [cosine|l2] < ANSWERS.tsv
# Merges the answers of several cmr-index shards (docs/scaling.md, "An index
# of 10^8 tracks"): the `cmr-index query --tsv` outputs of every shard for the
# same queries, concatenated (their header lines are dropped), become one
# table of the K best tracks per query: highest cosine first (l2: smallest
# distance first), ties in input order (shard order, then each shard's
# rank). Queries keep the order of their first appearance.
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] && [[ "$1" =~ ^[1-9][0-9]{0,3}$ ]] ||
    { echo "usage: merge-neighbours.sh K [cosine|l2] < answers.tsv (K in 1..9999)" >&2; exit 2; }
k=$1 metric=${2:-cosine}
case $metric in cosine) dir=r ;; l2) dir= ;; *) echo "merge-neighbours.sh: metric cosine or l2, got '$metric'" >&2; exit 2 ;; esac
printf 'query_track\trank\ttrack\tscore\n'
awk -F'\t' -v OFS='\t' '$0 == "query_track\trank\ttrack\tscore" { next }
    NF != 4 { printf "merge-neighbours.sh: line %d: %d fields, expected 4\n", NR, NF > "/dev/stderr"; bad = 1; exit 1 }
    { if (!($1 in q)) q[$1] = ++n; print q[$1], NR, $1, $3, $4 }' |
    LC_ALL=C sort -t "$(printf '\t')" -k1,1n -k5,5g$dir -k2,2n |
    awk -F'\t' -v OFS='\t' -v k="$k" '{ if ($1 != cur) { cur = $1; r = 0 } if (++r <= k) print $3, r, $4, $5 }'
