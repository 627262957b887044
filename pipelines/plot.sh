#!/bin/bash
# plot.sh OUT.png NAME=TRAIN.tsv...
# Training curves with gnuplot: the loss against the step, one line per model,
# from cmr-train's logs (a header line naming the columns, at least step and
# loss; acc, the contrastive accuracy, gets a second panel when present).
# Logs without rows (an untrained stand-in) are left out.
. "$(dirname "$0")/common.sh"
[ $# -ge 1 ] || { echo "usage: plot.sh OUT.png NAME=TRAIN.tsv..." >&2; exit 2; }
out=$1; shift
command -v gnuplot > /dev/null || die "gnuplot not found (apt-get install gnuplot-nox)"
col() { head -n 1 "$2" | tr '\t' '\n' | grep -n -x -m 1 "$1" | cut -d: -f1 || true; }
loss=() acc=()
for a in "$@"; do
    name=${a%%=*} log=${a#*=}
    [ -s "$log" ] && [ "$(wc -l < "$log")" -gt 1 ] || continue
    s=$(col step "$log") l=$(col loss "$log") c=$(col acc "$log")
    [ -n "$s" ] && [ -n "$l" ] || die "$log: no step or loss column"
    loss+=("'$log' using $s:$l with lines title '$name'")
    [ -z "$c" ] || acc+=("'$log' using $s:$c with lines title '$name'")
done
join() { local IFS=,; echo "$*"; }
tmp_for "$out"
{
    echo "set terminal pngcairo size 1000,$([ ${#acc[@]} -gt 0 ] && echo 800 || echo 480) font 'sans,10'"
    echo "set output '$TMP_OUT'"
    echo "set datafile separator tab; set datafile columnheaders"
    echo "set key outside right; set grid; set xlabel 'step'"
    if [ ${#loss[@]} -eq 0 ]; then
        echo "set title 'no training logs yet'; unset key; plot [0:1][0:1] NaN"
    else
        [ ${#acc[@]} -eq 0 ] || echo "set multiplot layout 2,1"
        echo "set ylabel 'loss (log scale)'; set logscale y; set format y '%g'; set title 'training loss'"
        echo "plot $(join "${loss[@]}")"
        if [ ${#acc[@]} -gt 0 ]; then
            echo "unset logscale y; set format y '%g'; set ylabel 'accuracy'; set title 'contrastive accuracy (in-batch)'"
            echo "plot $(join "${acc[@]}")"
            echo "unset multiplot"
        fi
    fi
} > "$out.gp"
gnuplot "$out.gp" || die "gnuplot failed on $out.gp"
[ -s "$TMP_OUT" ] || die "gnuplot wrote nothing for $out"
rm -f "$out.gp"
commit "$out"
