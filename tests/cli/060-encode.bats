#!/usr/bin/env bats
# cmr-encode: segment frames -> embedding frames (docs/models.md)
load helpers

MKSEG="$CMR_BUILDDIR/tests/unit/mk-segments"

setup() {
    setup_tmp
    cmr model init --kind encoder --width 0.0625 --seed 1 "$TMP/enc.cmr"
}

# the data values of every embedding frame, one line per frame
values() {
    cmr dump -n 100000 "$1" | sed -n 's/^tensor kind=embedding .* data=\[\([^]]*\)\].*/\1/p'
}

# the largest absolute difference between two streams' embedding values (same frame count)
max_diff() {
    paste -d'|' <(values "$1") <(values "$2") | awk -F'|' '
        { n = split($1, a, ","); m = split($2, b, ",");
          if (n != m) { print "shape"; exit }
          for (i = 1; i <= n; i++) { d = a[i] - b[i]; if (d < 0) d = -d; if (d > mx) mx = d } }
        END { if (NR == 0) print "empty"; else printf "%.3g\n", mx }'
}

@test "cmr-encode --help: usage on stdout, exit 0" {
    run -0 --separate-stderr cmr encode --help
    [[ "$output" == "Usage: cmr-encode [--model FILE]"* ]]
    [ -z "$stderr" ]
}

@test "cmr-encode: usage errors exit 2" {
    run -2 --separate-stderr cmr encode --model "$TMP/enc.cmr" --threads 0 < /dev/null
    [[ "$stderr" == "cmr-encode: --threads takes an integer in [1, 64], got '0'"* ]]
    run -2 --separate-stderr cmr encode --model "$TMP/enc.cmr" --batch x < /dev/null
    [[ "$stderr" == "cmr-encode: --batch takes an integer in [1, 4096], got 'x'"* ]]
    run -2 --separate-stderr cmr encode --model "$TMP/enc.cmr" --bogus < /dev/null
    [[ "$stderr" == "cmr-encode: unknown option '--bogus'"* ]]
    run -2 --separate-stderr cmr encode --model "$TMP/enc.cmr" a b
    [[ "$stderr" == "cmr-encode: at most one input file"* ]]
}

@test "cmr-encode: a bad model file exits 1 before reading input" {
    run -1 --separate-stderr cmr encode --model "$TMP/none.cmr" < /dev/null
    [[ "$stderr" == "cmr-encode: $TMP/none.cmr: No such file or directory" ]]
    head -c 1000 "$TMP/enc.cmr" > "$TMP/cut.cmr"
    run -1 --separate-stderr cmr encode --model "$TMP/cut.cmr" < /dev/null
    [[ "$stderr" == "cmr-encode: $TMP/cut.cmr: truncated model file"* ]]
    cmr model export "$TMP/enc.cmr" "$TMP/enc.safetensors"
    run -1 --separate-stderr cmr encode --model "$TMP/enc.safetensors" < /dev/null
    [[ "$stderr" == *"it looks like safetensors: convert it with 'cmr-model import"* ]]
}

@test "cmr-encode: one 128-d embedding per segment, metadata, info and end frames passed through" {
    "$MKSEG" --tracks 2 --segments 3 > "$TMP/seg.cmrf"
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-encode' --model '$TMP/enc.cmr' '$TMP/seg.cmrf' | '$CMR_BINDIR/cmr-dump'"
    [ "${#lines[@]}" -eq 9 ]
    [[ "${lines[0]}" == "header version=1 provenance=[mk-segments{},cmr-encode{\"model\":\"$TMP/enc.cmr\",\"kind\":\"encoder\",\"width\":\"0.0625\",\"dim\":\"128\",\"step\":\"0\"}]" ]]
    [[ "${lines[1]}" == 'tensor kind=embedding track="t0.wav" index=0 offset=0 rate=16000 shape=[128] '* ]]
    [[ "${lines[1]}" == *' meta={"split":"train","n":"0"} info={"pos":0}' ]]
    [[ "${lines[3]}" == 'tensor kind=embedding track="t0.wav" index=2 offset=376 rate=16000 shape=[128] '* ]]
    [[ "${lines[4]}" == 'end track="t0.wav" frames=3' ]]
    [[ "${lines[7]}" == *' meta={"split":"train","n":"1"} info={"pos":2}' ]]
    [[ "${lines[8]}" == 'end track="t1.wav" frames=3' ]]
}

@test "cmr-encode: batch size and threads do not change a bit of the embeddings" {
    # width 0.25 puts Winograd, small-map and linear GEMMs on the path; the
    # bytes of a segment's embedding must not depend on the batch it is
    # computed in, the thread that takes it or the tracks beside it
    cmr model init --kind multi --width 0.25 --seed 2 "$TMP/w.cmr"
    "$MKSEG" --tracks 3 --segments 7 > "$TMP/seg.cmrf"
    cmr encode --model "$TMP/w.cmr" --batch 16 < "$TMP/seg.cmrf" > "$TMP/ref.cmrf"
    cmr dump --npy "$TMP/ref" "$TMP/ref.cmrf"
    local args f
    for args in "--batch 1" "--batch 5" "--batch 16 --threads 2" "--batch 5 --threads 2" "--batch 7 --threads 3"; do
        # shellcheck disable=SC2086
        cmr encode --model "$TMP/w.cmr" $args < "$TMP/seg.cmrf" > "$TMP/x.cmrf"
        rm -rf "$TMP/x"
        cmr dump --npy "$TMP/x" "$TMP/x.cmrf"
        for f in "$TMP"/ref/*.npy; do
            cmp "$f" "$TMP/x/${f##*/}" || { echo "differs with $args: ${f##*/}"; return 1; }
        done
    done
    [ "$(ls "$TMP"/ref/*.npy | wc -l)" -eq 3 ]
}

@test "cmr-encode: multi-level models give 640-d embeddings" {
    cmr model init --kind multi --width 0.0625 "$TMP/multi.cmr"
    "$MKSEG" --tracks 1 --segments 2 | cmr encode --model "$TMP/multi.cmr" > "$TMP/out.cmrf"
    run -0 cmr dump "$TMP/out.cmrf"
    [[ "${lines[1]}" == *" shape=[640] "* ]]
    [[ "${lines[3]}" == 'end track="t0.wav" frames=2' ]]
}

@test "cmr-encode: MelCPC runs its GRU over each track, from zero at every track" {
    cmr model init --kind cpc --width 0.0625 "$TMP/cpc.cmr"
    "$MKSEG" --tracks 2 --segments 4 --seed 10 > "$TMP/two.cmrf"
    "$MKSEG" --tracks 1 --segments 4 --seed 11 > "$TMP/second.cmrf"
    cmr encode --model "$TMP/cpc.cmr" --batch 3 < "$TMP/two.cmrf" > "$TMP/two.out"
    cmr encode --model "$TMP/cpc.cmr" --batch 16 < "$TMP/second.cmrf" > "$TMP/second.out"
    run -0 cmr dump "$TMP/two.out"
    [[ "${lines[1]}" == *" shape=[256] "* ]]
    [ "${#lines[@]}" -eq 11 ]
    # the second track of the pair (t1, seed 11) equals the same segments alone
    cmr dump -n 100000 "$TMP/two.out" | grep 't1.wav' | grep '^tensor' | sed 's/.* data=\[\([^]]*\)\].*/\1/' > "$TMP/a"
    values "$TMP/second.out" > "$TMP/b"
    run -0 awk -F, 'NR == FNR { for (i = 1; i <= NF; i++) a[FNR, i] = $i; next }
        { for (i = 1; i <= NF; i++) { d = a[FNR, i] - $i; if (d < 0) d = -d; if (d > mx) mx = d } }
        END { exit !(mx <= 1e-5) }' "$TMP/a" "$TMP/b"
    # the GRU state carries over batch boundaries: batch 1 equals batch 16
    cmr encode --model "$TMP/cpc.cmr" --batch 1 < "$TMP/two.cmrf" > "$TMP/two1.out"
    run -0 max_diff "$TMP/two.out" "$TMP/two1.out"
    awk -v d="$output" 'BEGIN { exit !(d + 0 <= 1e-5) }'
    # a later segment depends on the earlier ones
    [ "$(values "$TMP/two.out" | sed -n 1p)" != "$(values "$TMP/two.out" | sed -n 5p)" ]
}

@test "cmr-encode: NaN input, wrong shape, wrong kind exit 1 with the position" {
    run -1 --separate-stderr bash -c "'$MKSEG' --tracks 2 --segments 3 --nan 1,2 | '$CMR_BINDIR/cmr-encode' --model '$TMP/enc.cmr' > /dev/null"
    [[ "$stderr" == 'cmr-encode: track "t1.wav": segment 2 holds NaN (frame 94, bin 7)' ]]
    run -1 --separate-stderr bash -c "'$MKSEG' --shape 100,96 | '$CMR_BINDIR/cmr-encode' --model '$TMP/enc.cmr' > /dev/null"
    [[ "$stderr" == 'cmr-encode: track "t0.wav": segment 0 has shape [100, 96], the model takes [188, 96]' ]]
    run -1 --separate-stderr bash -c "'$MKSEG' --kind mel | '$CMR_BINDIR/cmr-encode' --model '$TMP/enc.cmr' > /dev/null"
    assert_error_line encode
    [[ "$stderr" == *'"segment"'* ]]
}

@test "cmr-encode: empty and truncated input exit 1" {
    run -1 --separate-stderr bash -c "'$CMR_BINDIR/cmr-encode' --model '$TMP/enc.cmr' < /dev/null > /dev/null"
    [[ "$stderr" == "cmr-encode: stdin: "*"no header frame" ]]
    "$MKSEG" --tracks 1 --segments 2 > "$TMP/seg.cmrf"
    head -c 50000 "$TMP/seg.cmrf" > "$TMP/cut.cmrf"
    run -1 --separate-stderr cmr encode --model "$TMP/enc.cmr" "$TMP/cut.cmrf" > /dev/null
    assert_error_line encode
    "$MKSEG" --tracks 1 --segments 2 --no-end > "$TMP/noend.cmrf"
    run -1 --separate-stderr cmr encode --model "$TMP/enc.cmr" "$TMP/noend.cmrf" > /dev/null
    [[ "$stderr" == "cmr-encode: $TMP/noend.cmrf: "*'stream ends inside track "t0.wav" (no end frame)' ]]
}

@test "cmr-encode: refuses a terminal on stdout, ends quietly when the reader goes away" {
    "$MKSEG" --tracks 4 --segments 4 > "$TMP/seg.cmrf"
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-encode' --model '$TMP/enc.cmr' --batch 2 < '$TMP/seg.cmrf' | head -c 100 > /dev/null"
    [ -z "$stderr" ]
}

@test "cmr-encode: the model's standardisation is applied to the input" {
    cmr model export "$TMP/enc.cmr" "$TMP/enc.safetensors"
    cmr model import --mel-mean 1 --mel-std 0.5 "$TMP/enc.safetensors" "$TMP/std.cmr"
    "$MKSEG" --tracks 1 --segments 2 > "$TMP/seg.cmrf"
    cmr encode --model "$TMP/enc.cmr" < "$TMP/seg.cmrf" > "$TMP/a.cmrf"
    cmr encode --model "$TMP/std.cmr" < "$TMP/seg.cmrf" > "$TMP/b.cmrf"
    [ "$(values "$TMP/a.cmrf")" != "$(values "$TMP/b.cmrf")" ]
}

@test "cmr-encode: the front-end pipeline (decode, mel, segment) into embeddings" {
    for f in decode resample mel segment; do
        [ -x "$CMR_BINDIR/cmr-$f" ] || skip "cmr-$f not built"
    done
    mk_music "$TMP/a.wav" 7
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' '$TMP/a.wav' | '$CMR_BINDIR/cmr-resample' | '$CMR_BINDIR/cmr-mel' | '$CMR_BINDIR/cmr-segment' | '$CMR_BINDIR/cmr-encode' --model '$TMP/enc.cmr' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == "tensor kind=embedding track=\"$TMP/a.wav\" index=0 offset=0 rate=16000 shape=[128] "* ]]
    [[ "${lines[2]}" == "tensor kind=embedding track=\"$TMP/a.wav\" index=1 offset=188 "* ]]
    [[ "${lines[3]}" == "end track=\"$TMP/a.wav\" frames=2" ]]
}

@test "cmr-encode: PyTorch on an exported model computes the same embeddings (skipped without torch)" {
    models="$CMR_SRCDIR/tests/ref"   # cmr_models.py, the project's PyTorch reference
    /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || skip "python3-torch not installed"
    for kind in encoder multi cpc; do
        cmr model init --kind $kind --width 0.0625 --seed 5 --mel-mean 0.5 --mel-std 0.8 "$TMP/$kind.cmr"
        cmr model export "$TMP/$kind.cmr" "$TMP/$kind.safetensors"
        "$MKSEG" --tracks 1 --segments 3 > "$TMP/seg.cmrf"
        cmr encode --model "$TMP/$kind.cmr" < "$TMP/seg.cmrf" > "$TMP/out.cmrf"
        values "$TMP/out.cmrf" > "$TMP/cmr.txt"
        cmr dump -n 100000 "$TMP/seg.cmrf" | sed -n 's/^tensor .* data=\[\([^]]*\)\].*/\1/p' > "$TMP/in.txt"
        run -0 /usr/bin/python3 - "$models" "$kind" "$TMP" <<'PY'
import sys, numpy as np, torch
sys.dont_write_bytecode = True; sys.path.insert(0, sys.argv[1]); import cmr_models as models
kind, tmp = sys.argv[2], sys.argv[3]
state, meta = models.load_safetensors(tmp + "/%s.safetensors" % kind)
w = float(meta["cmr.width"])
net = {"encoder": models.Encoder, "multi": models.MultiEncoder, "cpc": models.MelCPC}[kind](w)
net.load_state_dict(state); net.eval()
x = torch.tensor(np.loadtxt(tmp + "/in.txt", delimiter=",", dtype=np.float32)).view(-1, 1, 188, 96)
x = (x - float(meta["cmr.mel_mean"])) / float(meta["cmr.mel_std"])
with torch.no_grad():
    y = net(x.unsqueeze(0))[0] if kind == "cpc" else net(x)
c = torch.tensor(np.loadtxt(tmp + "/cmr.txt", delimiter=",", dtype=np.float32))
err = (c - y).abs().max().item() / y.abs().max().item()
print("%s: normwise max relative error %.2e" % (kind, err))
sys.exit(0 if err <= 1e-4 else 1)
PY
        echo "$output"
    done
}
