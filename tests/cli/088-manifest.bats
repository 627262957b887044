#!/usr/bin/env bats
# cmr-manifest: the data sets' real layouts -> track lists (tests/fixtures/datasets/)
load helpers

D="$CMR_SRCDIR/tests/fixtures/datasets"

@test "manifest: --help goes to stdout, exit 0" {
    run -0 --separate-stderr cmr manifest --help
    [[ "$output" == "Usage: cmr-manifest SET"* ]]
}

@test "manifest: usage errors" {
    run -2 --separate-stderr cmr manifest
    [[ "$stderr" == "cmr-manifest: no data set given: fma, irmas, aotm, msd or mtat"* ]]
    run -2 --separate-stderr cmr manifest gtzan x
    [[ "$stderr" == "cmr-manifest: unknown data set 'gtzan'"* ]]
    run -2 --separate-stderr cmr manifest aotm "$D/aotm/aotm2011_playlists.json"
    [[ "$stderr" == "cmr-manifest: aotm takes 2 inputs, got 1"* ]]
    run -2 --separate-stderr cmr manifest fma --subset tiny "$D/fma/fma_metadata/tracks.csv"
    run -2 --separate-stderr cmr manifest irmas --split 50/40/20 "$D/irmas/IRMAS-TrainingData"
    [[ "$stderr" == *"--split takes three integer percentages"* ]]
    run -2 --separate-stderr cmr manifest irmas --seed -1 "$D/irmas/IRMAS-TrainingData"
    run -2 --separate-stderr cmr manifest aotm --min-tracks 0 a b
    run -2 --separate-stderr cmr manifest mtat --top 189 a
    run -2 --separate-stderr cmr manifest msd --name a/b x
    run -2 --separate-stderr cmr manifest --bogus fma x
}

@test "manifest: fma small: 3 header rows, quoted multi-line fields, the known broken files" {
    run -0 --separate-stderr cmr manifest fma "$D/fma/fma_metadata/tracks.csv"
    [ "${lines[0]}" = "path	track	split	label" ]
    [ "${lines[1]}" = "$(cd "$D/fma/fma_small" && pwd -P)/000/000002.mp3	2	training	Hip-Hop" ]
    [ "$(cut -f2- <<<"$output")" = "track	split	label
2	training	Hip-Hop
5	validation	Hip-Hop
10	test	Pop
140	training	Folk" ]
    [[ "$stderr" == *"track 099134: a known FMA file without audio, left out"* ]]
    [[ "$stderr" == *"track 108925: a known FMA file without audio"* ]]
    [[ "$stderr" == *"track 133297: a known FMA file without audio"* ]]
    [[ "$stderr" == *"1 track left out: audio file missing"* ]]
}

@test "manifest: fma --no-check keeps missing files; --subset medium adds medium tracks" {
    run -0 --separate-stderr cmr manifest fma --no-check "$D/fma/fma_metadata/tracks.csv"
    [ "${#lines[@]}" -eq 6 ]
    [[ "${lines[5]}" == *"/014/014541.mp3	14541	test	Rock" ]]
    run -0 --separate-stderr cmr manifest fma -q --subset medium --audio "$D/fma/fma_small" --no-check \
        "$D/fma/fma_metadata/tracks.csv"
    [[ "$output" == *"/000/000003.mp3	3	training	Hip-Hop"* ]]
    [ -z "$stderr" ]
    run -0 --separate-stderr cmr manifest fma --subset large --no-check "$D/fma/fma_metadata/tracks.csv"
    [[ "$stderr" == *"1 track without genre_top left out"* ]]
    [[ "$output" != *"	20	"* ]]
}

@test "manifest: fma: malformed files name the file and line" {
    head -c 2500 "$D/fma/fma_metadata/tracks.csv" > "$TMP/tracks.csv"
    printf '\n99,"open quote\n' >> "$TMP/tracks.csv"
    run -1 --separate-stderr cmr manifest fma --no-check "$TMP/tracks.csv"
    assert_error_line manifest
    printf 'a,b\nc,d\ne,f\n' > "$TMP/t2.csv"
    run -1 --separate-stderr cmr manifest fma "$TMP/t2.csv"
    [[ "$stderr" == *"t2.csv:3: expected the third header row to start with 'track_id'"* ]]
    printf ',set\n,split\ntrack_id,\n' > "$TMP/t3.csv"
    run -1 --separate-stderr cmr manifest fma "$TMP/t3.csv"
    [[ "$stderr" == *"the header has no column (set, subset) (track, genre_top)" ]]
    run -1 --separate-stderr cmr manifest fma "$TMP/none.csv"
    [[ "$stderr" == *"No such file"* ]]
}

@test "manifest: irmas: label = folder, every recording's excerpts in one split, seeded" {
    run -0 --separate-stderr cmr manifest irmas "$D/irmas/IRMAS-TrainingData"
    [ "${lines[0]}" = "path	track	split	label" ]
    [ "${#lines[@]}" -eq 19 ]
    # label is the folder, track is folder/stem
    awk -F'\t' 'NR > 1 && (substr($2, 1, 4) != $4 "/" || $1 !~ /\.wav$/) { exit 1 }' <<<"$output"
    # the excerpts "..__1", "..__2" of one recording share a split
    awk -F'\t' 'NR > 1 { g = $2; sub(/__[0-9]+$/, "", g); if ((g in s) && s[g] != $3) exit 1; s[g] = $3 }' <<<"$output"
    # every class has training, validation and test rows
    for c in cel gac voi; do
        for s in training validation test; do
            grep -q "	$s	$c\$" <<<"$output"
        done
    done
    a=$(cmr manifest irmas "$D/irmas/IRMAS-TrainingData")
    [ "$a" = "$output" ]
    run -0 --separate-stderr cmr manifest irmas --split 100/0/0 "$D/irmas/IRMAS-TrainingData"
    [ "$(cut -f3 <<<"$output" | sort -u)" = "split
training" ]
    run -1 --separate-stderr cmr manifest irmas "$TMP"
    [[ "$stderr" == *"no class folders"* ]]
}

@test "manifest: aotm: filtered_lists, the id map, --min-tracks" {
    run -0 --separate-stderr cmr manifest aotm --audio "$D/aotm/audio" "$D/aotm/aotm2011_playlists.json" "$D/aotm/msd_audio.tsv"
    [ "$(cut -f2- <<<"$output")" = "track	playlists
TRAAAAW128F429D538	aotm:1,aotm:10
TRAAADJ128F4287B47	aotm:1,aotm:10
TRAAAED128E0783FAB	aotm:1
TRAAAFD128F92F423A	aotm:1,aotm:10
TRAAAGR128F425B14B	aotm:1
TRAAAIC128F14A5138	aotm:10" ]
    [ "${lines[1]}" = "$(cd "$D/aotm/audio" && pwd -P)/5/5/5550000.clip.mp3	TRAAAAW128F429D538	aotm:1,aotm:10" ]
    run -0 --separate-stderr cmr manifest aotm --no-check --audio "$D/aotm/audio" "$D/aotm/aotm2011_playlists.json" "$D/aotm/msd_audio.tsv"
    [[ "$output" == *"TRAAAFD128F92F423A	aotm:1,aotm:10,aotm:3"* ]]
    run -0 --separate-stderr cmr manifest aotm --min-tracks 2 --audio "$D/aotm/audio" "$D/aotm/aotm2011_playlists.json" "$D/aotm/msd_audio.tsv"
    [[ "$output" == *"TRAAAGR128F425B14B	aotm:1,aotm:2"* ]]
}

@test "manifest: aotm: malformed JSON and map files" {
    printf '[{"mix_id": 1, "filtered_lists": [["a"]]},\n {"mix_id": 2, "filtered_lists": [["a" "b"]]}]' > "$TMP/p.json"
    run -1 --separate-stderr cmr manifest aotm "$TMP/p.json" "$D/aotm/msd_audio.tsv"
    [[ "$stderr" == *"p.json:2: malformed JSON: expected ']'" ]]
    printf '[{"mix_id": 1}]' > "$TMP/q.json"
    run -1 --separate-stderr cmr manifest aotm "$TMP/q.json" "$D/aotm/msd_audio.tsv"
    [[ "$stderr" == *"a playlist without mix_id or filtered_lists" ]]
    printf 'TR1 a/b.mp3\n' > "$TMP/map.tsv"
    run -1 --separate-stderr cmr manifest aotm "$D/aotm/aotm2011_playlists.json" "$TMP/map.tsv"
    [[ "$stderr" == *"map.tsv:1: expected two tab-separated fields: id, path" ]]
}

@test "manifest: msd: musicnn's index layout, 50 tags" {
    run -0 --separate-stderr cmr manifest msd --audio "$D/msd/audio" "$D/msd/index"
    [ "$(cut -f2- <<<"$output")" = "track	split	tags
TRAAAAK128F9318786	training	rock,pop
TRAAAAW128F429D538	training	female vocalists
TRAAADJ128F4287B47	training	jazz,Mellow,happy
TRYOGXX128F42483A6	validation	catchy
TRYOHDO128F42669A4	validation	pop,rnb
TRZZRTG128F936184E	test	rock
TRZZSEL128F92DEF79	test	male vocalists,Hip-Hop" ]
    [[ "$stderr" == *"1 track of the splits not in"*"index_msd.tsv, left out"* ]]
    [[ "$stderr" == *"1 track left out: audio file missing"* ]]
    run -1 --separate-stderr cmr manifest msd --name mtt "$D/msd/index"
    [[ "$stderr" == *"index_mtt.tsv: No such file or directory" ]]
    cp -r "$D/msd/index" "$TMP/idx"
    printf 'TRX\t[0, 1]\n' >> "$TMP/idx/val_gt_msd.tsv"
    run -1 --separate-stderr cmr manifest msd --no-check "$TMP/idx"
    [[ "$stderr" == *"val_gt_msd.tsv:3: expected 50 values of 0 or 1"* || "$stderr" == *"val_gt_msd.tsv:3: 2 values, the tag list has 50" ]]
}

@test "manifest: mtat: annotations_final.csv, top tags, split by folder" {
    run -0 --separate-stderr cmr manifest mtat --top 4 "$D/mtat/annotations_final.csv"
    [ "$(cut -f2- <<<"$output")" = "track	split	tags
2	test	singer
6	test	
10	training	no voice,guitar
11	training	no voice,guitar
16	validation	singer,female singing,guitar
18	test	no voice
21	test	
37	training	no voice,guitar" ]
    [[ "$stderr" == *"1 track left out: audio file missing"* ]]
    printf '"id"\t"a"\n' > "$TMP/a.csv"
    run -1 --separate-stderr cmr manifest mtat "$TMP/a.csv"
    [[ "$stderr" == *"a.csv:1: expected a tab-separated header clip_id, tags..., mp3_path"* ]]
}

@test "manifest: cmr-decode --list reads what cmr-manifest writes" {
    mkdir -p "$TMP/IRMAS/pia" "$TMP/IRMAS/vio"
    for i in 1 2 3; do
        mk_sine "$TMP/IRMAS/pia/[pia][cla]000${i}__1.wav" 440 0.1
        mk_sine "$TMP/IRMAS/vio/[vio][cla]000${i}__1.wav" 660 0.1
    done
    cmr manifest irmas "$TMP/IRMAS" > "$TMP/list.tsv"
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' --list '$TMP/list.tsv' | '$CMR_BINDIR/cmr-dump'"
    [ "$(grep -c '^tensor kind=audio' <<<"$output")" -eq 6 ]
    [[ "$output" == *'track="pia/[pia][cla]0001__1"'*'"label":"pia"'* ]]
    [[ "$output" == *'"split":"validation"'* ]]
}
