#!/usr/bin/env bats
# cmr-model: init, info, import, export (docs/models.md)
load helpers

REF="$CMR_SRCDIR/tests/ref"

@test "cmr-model --help: usage on stdout, exit 0" {
    run -0 --separate-stderr cmr model --help
    [[ "$output" == "Usage: cmr-model init"* ]]
    [ -z "$stderr" ]
}

@test "cmr-model: usage errors exit 2 with a message" {
    run -2 --separate-stderr cmr model
    [[ "$stderr" == "cmr-model: missing command"* ]]
    run -2 --separate-stderr cmr model frobnicate x
    [[ "$stderr" == "cmr-model: unknown command 'frobnicate'"* ]]
    run -2 --separate-stderr cmr model --bogus init x
    [[ "$stderr" == "cmr-model: unknown option '--bogus'"* ]]
    run -2 --separate-stderr cmr model init --kind
    [[ "$stderr" == "cmr-model: option '--kind' needs a value"* ]]
    run -2 --separate-stderr cmr model init "$TMP/m.cmr"
    [[ "$stderr" == "cmr-model: init needs --kind"* ]]
    run -2 --separate-stderr cmr model init --kind transformer "$TMP/m.cmr"
    [[ "$stderr" == "cmr-model: --kind takes encoder, multi or cpc, got 'transformer'"* ]]
    run -2 --separate-stderr cmr model init --kind encoder --width 0 "$TMP/m.cmr"
    [[ "$stderr" == "cmr-model: --width takes a number in"* ]]
    run -2 --separate-stderr cmr model init --kind encoder --width abc "$TMP/m.cmr"
    [[ "$stderr" == "cmr-model: --width takes a number"* ]]
    run -2 --separate-stderr cmr model init --kind encoder --seed -1 "$TMP/m.cmr"
    [[ "$stderr" == "cmr-model: --seed takes a non-negative integer, got '-1'"* ]]
    run -2 --separate-stderr cmr model init --kind encoder --hidden 64 "$TMP/m.cmr"
    [[ "$stderr" == "cmr-model: --hidden, --steps and --context are for --kind cpc"* ]]
    run -2 --separate-stderr cmr model init --kind cpc --steps 17 "$TMP/m.cmr"
    [[ "$stderr" == "cmr-model: --steps takes an integer in [1, 16], got '17'"* ]]
    run -2 --separate-stderr cmr model init --kind encoder --mel-mean 0.1 "$TMP/m.cmr"
    [[ "$stderr" == "cmr-model: --mel-mean and --mel-std go together"* ]]
    run -2 --separate-stderr cmr model init --kind encoder --mel-mean 0.1 --mel-std 0 "$TMP/m.cmr"
    assert_error_line model
    run -2 --separate-stderr cmr model init --kind encoder a b
    [[ "$stderr" == "cmr-model: init takes one output file, got 2 arguments"* ]]
    run -2 --separate-stderr cmr model info
    assert_error_line model
    run -2 --separate-stderr cmr model export --kind encoder a b
    [[ "$stderr" == "cmr-model: export does not take --kind"* ]]
    run -2 --separate-stderr cmr model import --seed 3 a b
    [[ "$stderr" == "cmr-model: import does not take --seed"* ]]
    [ ! -e "$TMP/m.cmr" ]
}

@test "cmr-model init + info: the three kinds with their sizes" {
    run -0 cmr model init --kind encoder --width 0.25 --seed 7 "$TMP/e.cmr"
    run -0 --separate-stderr cmr model info "$TMP/e.cmr"
    [[ "$output" == *"kind        encoder (siamese encoder, 128-d output)"* ]]
    [[ "$output" == *"width       0.25 (channels 32 64 64 128 128)"* ]]
    [[ "$output" == *"parameters  786560 "* ]]
    [[ "$output" == *"blocks.0.bn.running_var"* ]]
    [[ "$output" == *"meta        cmr.init_seed = 7"* ]]
    run -0 cmr model init --kind multi --width 0.25 "$TMP/m.cmr"
    run -0 cmr model info "$TMP/m.cmr"
    [[ "$output" == *"multi (multi-level encoder, 640-d output)"* ]]
    [[ "$output" == *"channels 32 64 64 128 128"* ]]
    [[ "$output" == *"heads.4.weight"* ]]
    run -0 cmr model init --kind cpc --width 0.25 --hidden 64 --steps 3 --context 5 --mel-mean 0.13 --mel-std 0.18 "$TMP/c.cmr"
    run -0 cmr model info "$TMP/c.cmr"
    [[ "$output" == *"cpc (MelCPC, 64-d output)"* ]]
    [[ "$output" == *"gru         hidden 64, prediction steps K 3, context 5 segments"* ]]
    [[ "$output" == *"standardisation (x - 0.13) / 0.18"* ]]
    [[ "$output" == *"encoder.blocks.4.conv.weight"* ]]
    [[ "$output" == *"predictors.2.bias"* ]]
}

@test "cmr-model init: the paper's parameter counts at width 1" {
    run -0 cmr model init --kind encoder "$TMP/e.cmr"
    run -0 cmr model info "$TMP/e.cmr"
    [[ "$output" == *"parameters  12361856 "* ]]
    run -0 cmr model init --kind multi "$TMP/m.cmr"
    run -0 cmr model info "$TMP/m.cmr"
    [[ "$output" == *"parameters  9559552 "* ]]
}

@test "cmr-model init: same seed, same file; another seed, another file" {
    cmr model init --kind encoder --width 0.125 --seed 3 "$TMP/a.cmr"
    cmr model init --kind encoder --width 0.125 --seed 3 "$TMP/b.cmr"
    cmr model init --kind encoder --width 0.125 --seed 4 "$TMP/c.cmr"
    cmp "$TMP/a.cmr" "$TMP/b.cmr"
    ! cmp -s "$TMP/a.cmr" "$TMP/c.cmr"
    # written atomically: nothing else left in the directory
    [ "$(ls -A "$TMP" | wc -l)" -eq 3 ]
}

@test "cmr-model info: missing, foreign, truncated and corrupted files exit 1" {
    run -1 --separate-stderr cmr model info "$TMP/none.cmr"
    [[ "$stderr" == "cmr-model: $TMP/none.cmr: No such file or directory" ]]
    printf 'hello world, not a model' > "$TMP/junk"
    run -1 --separate-stderr cmr model info "$TMP/junk"
    [[ "$stderr" == "cmr-model: $TMP/junk: not a cmr model file (bad magic)" ]]
    cmr model init --kind encoder --width 0.0625 "$TMP/m.cmr"
    head -c 5000 "$TMP/m.cmr" > "$TMP/cut.cmr"
    run -1 --separate-stderr cmr model info "$TMP/cut.cmr"
    [[ "$stderr" == "cmr-model: $TMP/cut.cmr: truncated model file: ends at byte 5000 while reading tensor"* ]]
    cp "$TMP/m.cmr" "$TMP/bad.cmr"
    printf '\xff\xff\xff\xff' | dd of="$TMP/bad.cmr" bs=1 seek=20000 conv=notrunc 2>/dev/null
    run -1 --separate-stderr cmr model info "$TMP/bad.cmr"
    [[ "$stderr" == "cmr-model: $TMP/bad.cmr: checksum mismatch: the file is corrupted" ]]
    cp "$TMP/m.cmr" "$TMP/v2.cmr"
    printf '\x02' | dd of="$TMP/v2.cmr" bs=1 seek=8 conv=notrunc 2>/dev/null
    run -1 --separate-stderr cmr model info "$TMP/v2.cmr"
    [[ "$stderr" == "cmr-model: $TMP/v2.cmr: model format version 2, this cmr reads version 1 ---> HINT: upgrade cmr" ]]
}

@test "cmr-model export then import gives back the same model file" {
    for kind in encoder multi cpc; do
        cmr model init --kind $kind --width 0.1 --seed 9 --mel-mean 0.25 --mel-std 0.5 "$TMP/$kind.cmr"
        run -0 --separate-stderr cmr model export "$TMP/$kind.cmr" "$TMP/$kind.safetensors"
        [ -z "$stderr" ]
        run -0 --separate-stderr cmr model import "$TMP/$kind.safetensors" "$TMP/$kind-back.cmr"
        cmp "$TMP/$kind.cmr" "$TMP/$kind-back.cmr"
    done
    run -0 cmr model info "$TMP/encoder.safetensors"
    [[ "$output" == *"safetensors, not a cmr model file"* ]]
    [[ "$output" == *"meta        cmr.kind = encoder"* ]]
    [[ "$output" == *"meta        cmr.width = 0.1"* ]]
    [[ "$output" == *"meta        cmr.mel_mean = 0.25"* ]]
    [[ "$output" == *"blocks.0.bn.num_batches_tracked "*" F32  [] "* ]]
}

@test "cmr-model import: a file written by PyTorch (tests/ref/cmr_models.py save_safetensors)" {
    run -0 --separate-stderr cmr model import -v "$REF/models-encoder.weights.safetensors" "$TMP/e.cmr"
    [[ "$stderr" == *"encoder model, width 0.03125"* ]]
    run -0 cmr model info "$TMP/e.cmr"
    [[ "$output" == *"channels 4 8 8 16 16"* ]]
    [[ "$output" == *"emb         16"* ]]
    [[ "$output" == *"standardisation (x - 0.8) / 0.6"* ]]
    run -0 cmr model import "$REF/models-cpc.weights.safetensors" "$TMP/c.cmr"
    run -0 cmr model info "$TMP/c.cmr"
    [[ "$output" == *"gru         hidden 16, prediction steps K 2, context 4 segments"* ]]
    [[ "$output" == *"meta        note = written by tests/ref/make_refs_models.py"* ]]
}

@test "cmr-model import: what the file lacks is named with the option that supplies it" {
    cmr model init --kind encoder --width 0.0625 "$TMP/m.cmr"
    cmr model export "$TMP/m.cmr" "$TMP/m.safetensors"
    # rename the standardisation keys in place (same length: the header stays valid)
    sed -e 's/"cmr\.mel_mean"/"xmr.mel_mean"/' -e 's/"cmr\.mel_std"/"xmr.mel_std"/' \
        "$TMP/m.safetensors" > "$TMP/nomel.safetensors"
    run -1 --separate-stderr cmr model import "$TMP/nomel.safetensors" "$TMP/out.cmr"
    [[ "$stderr" == "cmr-model: $TMP/nomel.safetensors: no cmr.mel_mean/cmr.mel_std metadata: give --mel-mean M --mel-std S"* ]]
    [ ! -e "$TMP/out.cmr" ]
    run -0 cmr model import --mel-mean 0 --mel-std 1 "$TMP/nomel.safetensors" "$TMP/out.cmr"
    run -1 --separate-stderr cmr model import --kind cpc "$TMP/m.safetensors" "$TMP/out2.cmr"
    [[ "$stderr" == *"--kind cpc, but the file says cmr.kind=encoder"* ]]
    run -1 --separate-stderr cmr model import --width 0.5 "$TMP/m.safetensors" "$TMP/out2.cmr"
    [[ "$stderr" == *"--width 0.5 gives channels 64,128,128,256,256 but the tensors have 8,16,16,32,32"* ]]
    run -1 --separate-stderr cmr model import "$TMP/m.cmr" "$TMP/out2.cmr"
    [[ "$stderr" == "cmr-model: $TMP/m.cmr: not a safetensors file"* ]]
    head -c 3000 "$TMP/m.safetensors" > "$TMP/cut.safetensors"
    run -1 --separate-stderr cmr model import "$TMP/cut.safetensors" "$TMP/out2.cmr"
    [[ "$stderr" == *"(truncated?)"* ]]
    [ ! -e "$TMP/out2.cmr" ]
}

@test "cmr-model export: an unwritable destination exits 1" {
    cmr model init --kind encoder --width 0.0625 "$TMP/m.cmr"
    run -1 --separate-stderr cmr model export "$TMP/m.cmr" "$TMP/no/such/dir/m.safetensors"
    [[ "$stderr" == "cmr-model: $TMP/no/such/dir/m.safetensors: cannot create a temporary file beside it"* ]]
    run -1 --separate-stderr cmr model init --kind encoder --width 0.0625 "$TMP/no/such/dir/m.cmr"
    assert_error_line model
}
