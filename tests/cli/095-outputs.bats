#!/usr/bin/env bats
# Output files (docs/filters.md, "Output files"): regular files are replaced
# atomically, symbolic links are written through, FIFOs and devices are
# written directly or refused, an output is never an input, an unwritable
# output is found before the work, and a killed writer's temporaries go.
# Nothing here writes to the real /dev/stdout as a file: a link to
# /proc/self/fd/1 inside $TMP stands for it, with stdout a pipe.
load helpers

mkpairs() { "$CMR_BUILDDIR/tests/tools/cmr-mkpairs" "$@"; }
TINY=(--width 0.0625 --batch 4 -q)

# the name part of a temporary: ".NAME.cmr-HOST-" (atomic.c: host with '.' and '/' as '_', 32 bytes)
tmp_prefix() { printf '.%s.cmr-%s-' "$1" "$(uname -n | tr './' '__' | cut -c1-32)"; }

# a PID that is not alive
dead_pid() {
    local p
    sh -c 'exit 0' &
    p=$!
    wait "$p"
    echo "$p"
}

# run PROGRAM ARGS with stdout a pipe into FILE; exits with PROGRAM's status
to_pipe() {
    local out=$1
    shift
    "$@" | cat > "$out"
    return "${PIPESTATUS[0]}"
}

@test "outputs: a FIFO is written into by cmr-model init and export, and stays a FIFO" {
    mkfifo "$TMP/f.cmr"
    timeout 20 cat "$TMP/f.cmr" > "$TMP/got.cmr" &
    local reader=$!
    run -0 --separate-stderr timeout 20 "$CMR_BINDIR/cmr-model" init --kind encoder --width 0.0625 "$TMP/f.cmr"
    wait "$reader"
    [ -p "$TMP/f.cmr" ]
    cmr model info "$TMP/got.cmr" | grep -q '^kind *encoder'
    timeout 20 cat "$TMP/f.cmr" > "$TMP/got.st" &
    reader=$!
    run -0 --separate-stderr timeout 20 "$CMR_BINDIR/cmr-model" export "$TMP/got.cmr" "$TMP/f.cmr"
    wait "$reader"
    [ -p "$TMP/f.cmr" ]
    cmr model export "$TMP/got.cmr" "$TMP/ref.st"
    cmp "$TMP/got.st" "$TMP/ref.st"
}

@test "outputs: cmr-train refuses a FIFO --out before training, and leaves it alone" {
    mkpairs --tracks 8 --epochs 1 > "$TMP/p.cmr"
    mkfifo "$TMP/f.cmr"
    run -2 --separate-stderr timeout 20 "$CMR_BINDIR/cmr-train" "${TINY[@]}" --out "$TMP/f.cmr" "$TMP/p.cmr"
    [ "$stderr" = "cmr-train: --out $TMP/f.cmr: a FIFO, not a regular file: this output must be a regular file" ]
    [ -p "$TMP/f.cmr" ]
}

@test "outputs: a link to /proc/self/fd/1 (what /dev/stdout is): export streams into the pipe, train refuses" {
    cmr model init --kind encoder --width 0.0625 "$TMP/m.cmr"
    cmr model export "$TMP/m.cmr" "$TMP/ref.st"
    ln -s /proc/self/fd/1 "$TMP/stdout"
    run -0 to_pipe "$TMP/got.st" "$CMR_BINDIR/cmr-model" export "$TMP/m.cmr" "$TMP/stdout"
    cmp "$TMP/got.st" "$TMP/ref.st"
    [ -L "$TMP/stdout" ]
    [ "$(readlink "$TMP/stdout")" = /proc/self/fd/1 ]
    mkpairs --tracks 8 --epochs 1 > "$TMP/p.cmr"
    run -2 to_pipe "$TMP/got.cmr" "$CMR_BINDIR/cmr-train" "${TINY[@]}" --out "$TMP/stdout" "$TMP/p.cmr"
    [[ "$output" == "cmr-train: --out $TMP/stdout: a file descriptor (a link in /proc), not a regular file"* ]]
    [ -L "$TMP/stdout" ]
    [ ! -s "$TMP/got.cmr" ]
    # the real /dev/stdout, only now that the link in $TMP was refused, and into a pipe
    run -2 to_pipe "$TMP/got.cmr" "$CMR_BINDIR/cmr-train" "${TINY[@]}" --out /dev/stdout "$TMP/p.cmr"
    [[ "$output" == "cmr-train: --out /dev/stdout: a file descriptor (a link in /proc)"* ]]
    [ -L /dev/stdout ] || [ -c /dev/stdout ] || [ -p /dev/stdout ]
}

@test "outputs: symbolic links are written through: the link stays, its target is replaced" {
    mkdir "$TMP/real"
    ln -s real/m.cmr "$TMP/m.cmr"
    cmr model init --kind encoder --width 0.0625 "$TMP/m.cmr"
    [ -L "$TMP/m.cmr" ]
    [ -f "$TMP/real/m.cmr" ]
    ln -s real/m.st "$TMP/m.st"
    cmr model export "$TMP/m.cmr" "$TMP/m.st"
    [ -L "$TMP/m.st" ]
    [ -f "$TMP/real/m.st" ]
    cmr model info "$TMP/m.st" | grep -q safetensors

    mkpairs --tracks 8 --epochs 1 > "$TMP/p.cmr"
    ln -s real/trained.cmr "$TMP/trained.cmr"
    cmr train "${TINY[@]}" --checkpoint-every 1 --out "$TMP/trained.cmr" "$TMP/p.cmr"
    [ -L "$TMP/trained.cmr" ]
    [ -f "$TMP/real/trained.cmr" ]
    cmr model info "$TMP/trained.cmr" | grep -q '^training *step 2'

    mk_sine "$TMP/a.wav" 440 0.5
    cmr decode "$TMP/a.wav" > "$TMP/a.frames"
    ln -s real/s.stats "$TMP/s.stats"
    cmr mel --stats "$TMP/s.stats" "$TMP/a.frames" > /dev/null
    [ -L "$TMP/s.stats" ]
    [ "$(head -1 "$TMP/real/s.stats")" = "CMRSTATS 1" ]
    # no temporary is left beside the links or the targets
    [ -z "$(find "$TMP" -name '.*.cmr-*')" ]
}

@test "outputs: cmr-dump --npy refuses a FIFO in place of a .npy and leaves it alone" {
    mk_sine "$TMP/a.wav" 440 0.5
    (cd "$TMP" && cmr decode a.wav > a.frames) # track "a.wav": a.wav.npy
    mkdir "$TMP/d"
    mkfifo "$TMP/d/a.wav.npy"
    run -1 --separate-stderr timeout 20 "$CMR_BINDIR/cmr-dump" --npy "$TMP/d" "$TMP/a.frames"
    [[ "$stderr" == "cmr-dump: $TMP/d/a.wav.npy: a FIFO, not a regular file"* ]]
    [ -p "$TMP/d/a.wav.npy" ]
}

@test "outputs: cmr-train --out the input (by name, link, hard link or stdin) is refused, the input intact" {
    mkpairs --tracks 8 --epochs 1 > "$TMP/p.cmr"
    cp "$TMP/p.cmr" "$TMP/orig.cmr"
    run -2 --separate-stderr cmr train "${TINY[@]}" --checkpoint-every 1 --out "$TMP/p.cmr" "$TMP/p.cmr"
    [ "$stderr" = "cmr-train: --out $TMP/p.cmr is the same file as $TMP/p.cmr: refusing to write over it" ]
    ln -s p.cmr "$TMP/soft.cmr"
    ln "$TMP/p.cmr" "$TMP/hard.cmr"
    run -2 --separate-stderr cmr train "${TINY[@]}" --checkpoint-every 1 --out "$TMP/soft.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"is the same file as $TMP/p.cmr"* ]]
    run -2 --separate-stderr cmr train "${TINY[@]}" --checkpoint-every 1 --out "$TMP/hard.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"is the same file as $TMP/p.cmr"* ]]
    run -2 --separate-stderr cmr train "${TINY[@]}" --checkpoint-every 1 --out "$TMP/p.cmr" < "$TMP/p.cmr"
    [ "$stderr" = "cmr-train: --out $TMP/p.cmr is the standard input: refusing to write over it" ]
    cmp "$TMP/p.cmr" "$TMP/orig.cmr"
    # --log is an output too; --out and --log may not be one file
    run -2 --separate-stderr cmr train "${TINY[@]}" --out "$TMP/m.cmr" --log "$TMP/p.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"is the same file as $TMP/p.cmr"* ]]
    run -2 --separate-stderr cmr train "${TINY[@]}" --out "$TMP/new.cmr" --log "$TMP/./new.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"is the same file as"* ]]
    cmp "$TMP/p.cmr" "$TMP/orig.cmr"
    [ ! -e "$TMP/m.cmr" ]
    [ ! -e "$TMP/new.cmr" ]
    # --resume's checkpoint is the one input --out continues
    cmr train "${TINY[@]}" --checkpoint-every 1 --out "$TMP/m.cmr" "$TMP/p.cmr"
    run -0 --separate-stderr cmr train "${TINY[@]}" --resume "$TMP/m.cmr" --out "$TMP/m.cmr" "$TMP/p.cmr"
}

@test "outputs: cmr-model import/export, cmr-mel --stats and cmr-dump --npy refuse their input as output" {
    cmr model init --kind encoder --width 0.0625 "$TMP/m.cmr"
    cmr model export "$TMP/m.cmr" "$TMP/m.st"
    cp "$TMP/m.cmr" "$TMP/m0.cmr"
    cp "$TMP/m.st" "$TMP/m0.st"
    run -2 --separate-stderr cmr model export "$TMP/m.cmr" "$TMP/m.cmr"
    [ "$stderr" = "cmr-model: $TMP/m.cmr is the same file as $TMP/m.cmr: refusing to write over it" ]
    ln "$TMP/m.st" "$TMP/hard.st"
    run -2 --separate-stderr cmr model import "$TMP/m.st" "$TMP/hard.st"
    [[ "$stderr" == *"is the same file as $TMP/m.st"* ]]
    cmp "$TMP/m.cmr" "$TMP/m0.cmr"
    cmp "$TMP/m.st" "$TMP/m0.st"

    mk_sine "$TMP/a.wav" 440 0.5
    (cd "$TMP" && cmr decode a.wav > a.frames) # track "a.wav": a.wav.npy
    cp "$TMP/a.frames" "$TMP/a0.frames"
    run -2 --separate-stderr cmr mel --stats "$TMP/a.frames" "$TMP/a.frames"
    [[ "$stderr" == "cmr-mel: --stats $TMP/a.frames is the same file as $TMP/a.frames"* ]]
    run -2 --separate-stderr cmr mel --stats "$TMP/a.frames" < "$TMP/a.frames"
    [[ "$stderr" == *"is the standard input"* ]]
    cmp "$TMP/a.frames" "$TMP/a0.frames"
    # the stats file may not be where the frames go either
    run -2 --separate-stderr bash -c '"$1" --stats "$2" "$3" > "$2"' _ "$CMR_BINDIR/cmr-mel" "$TMP/out" "$TMP/a.frames"
    [[ "$stderr" == *"--stats $TMP/out is the standard output"* ]]

    mkdir "$TMP/d"
    cp "$TMP/a.frames" "$TMP/d/index.tsv"
    run -2 --separate-stderr cmr dump --npy "$TMP/d" "$TMP/d/index.tsv"
    [[ "$stderr" == "cmr-dump: --npy $TMP/d/index.tsv is the same file as $TMP/d/index.tsv"* ]]
    cmp "$TMP/d/index.tsv" "$TMP/a0.frames"
    cp "$TMP/a.frames" "$TMP/d/a.wav.npy"
    run -2 --separate-stderr cmr dump --npy "$TMP/d" "$TMP/d/a.wav.npy"
    [[ "$stderr" == "cmr-dump: --npy: $TMP/d/a.wav.npy is the input"* ]]
    cmp "$TMP/d/a.wav.npy" "$TMP/a0.frames"
}

@test "outputs: an unwritable --out is found before the first training step" {
    mkpairs --tracks 8 --epochs 3 > "$TMP/p.cmr"
    run -1 --separate-stderr cmr train --width 0.0625 --batch 4 --checkpoint-every 0 --log "$TMP/log.tsv" \
        --out "$TMP/missing/m.cmr" "$TMP/p.cmr"
    [ "$stderr" = "cmr-train: --out $TMP/missing/m.cmr: cannot create a temporary file beside it: No such file or directory" ]
    [ ! -e "$TMP/log.tsv" ]
    if [ "$(id -u)" != 0 ]; then # root writes into a read-only directory
        mkdir "$TMP/ro"
        chmod a-w "$TMP/ro"
        run -1 --separate-stderr cmr train --width 0.0625 --batch 4 --checkpoint-every 0 --out "$TMP/ro/m.cmr" "$TMP/p.cmr"
        [ "$stderr" = "cmr-train: --out $TMP/ro/m.cmr: cannot create a temporary file beside it: Permission denied" ]
        chmod u+w "$TMP/ro"
    fi
    run -1 --separate-stderr cmr train "${TINY[@]}" --out "$TMP/m.cmr" --log "$TMP/missing/log.tsv" "$TMP/p.cmr"
    [[ "$stderr" == "cmr-train: --log $TMP/missing/log.tsv: cannot create"* ]]
    [ ! -e "$TMP/m.cmr" ]
}

@test "outputs: an unwritable --stats is found before cmr-mel writes a frame" {
    mk_sine "$TMP/a.wav" 440 0.5
    cmr decode "$TMP/a.wav" > "$TMP/a.frames"
    run -1 --separate-stderr cmr mel --stats "$TMP/missing/x.stats" "$TMP/a.frames"
    [ "$stderr" = "cmr-mel: --stats $TMP/missing/x.stats: cannot create a temporary file beside it: No such file or directory" ]
    [ -z "$output" ]
}

@test "outputs: a killed writer's temporary goes on the next start; a live one's stays" {
    mkpairs --tracks 8 --epochs 2 > "$TMP/p.cmr"
    cmr train "${TINY[@]}" --checkpoint-every 1 --epochs 1 --out "$TMP/m.cmr" "$TMP/p.cmr"
    local pre dead
    pre=$(tmp_prefix m.cmr)
    dead=$(dead_pid)
    echo half > "$TMP/$pre$dead.AbC123"
    echo live > "$TMP/$pre$$.XyZ789"   # this shell is alive
    echo other > "$TMP/$(tmp_prefix other.cmr)$dead.QwE456"
    run -0 --separate-stderr cmr train "${TINY[@]}" --checkpoint-every 1 --resume "$TMP/m.cmr" --out "$TMP/m.cmr" "$TMP/p.cmr"
    [ ! -e "$TMP/$pre$dead.AbC123" ]
    [ -e "$TMP/$pre$$.XyZ789" ]
    [ -e "$TMP/$(tmp_prefix other.cmr)$dead.QwE456" ]
    cmr model info "$TMP/m.cmr" | grep -q '^training *step 4, epoch 2'
}

@test "outputs: cmr-dump --npy removes a killed run's temporaries in DIR" {
    mk_sine "$TMP/a.wav" 440 0.5
    (cd "$TMP" && cmr decode a.wav > a.frames) # track "a.wav": a.wav.npy
    mkdir "$TMP/d"
    local dead
    dead=$(dead_pid)
    echo half > "$TMP/d/$(tmp_prefix a.wav.npy)$dead.AbC123"
    cmr dump --npy "$TMP/d" "$TMP/a.frames"
    [ -z "$(find "$TMP/d" -name '.*')" ]
    [ -f "$TMP/d/a.wav.npy" ]
    [ -f "$TMP/d/index.tsv" ]
}
