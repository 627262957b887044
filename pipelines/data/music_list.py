#!/usr/bin/python3
"""music_list.py TRACKS.tsv OUT.tsv [CAMPAIGN_DIR...]

Write the demo's music track list (path, track, split, label, playlists) from
TRACKS.tsv (no header: source, flac, track id, game, seconds), python3 standard
library only.

- Tracks shorter than MIN_SECONDS are left out (jingles).
- label = the game; split = 60/20/20 training/validation/test within each game,
  by a hash of the track id (seeded, stable when tracks are added or removed).
- playlists: one per Wesnoth scenario file (*/scenarios/*.cfg under a
  CAMPAIGN_DIR) naming at least MIN_PLAYLIST of our Wesnoth tracks; the id is
  wesnoth:<campaign>/<scenario>. A playlist whose track set is nearly the same
  as an earlier one (Jaccard >= MAX_JACCARD) is dropped.
"""
import collections
import filecmp
import hashlib
import os
import re
import sys

MIN_SECONDS = 30.0
MIN_PLAYLIST = 4
MAX_JACCARD = 0.8
SEED = "cmr-demo-music-1"


def split_of(ids):
    """track id -> split, 20 % validation, 20 % test, the rest training."""
    order = sorted(ids, key=lambda t: hashlib.sha1(f"{SEED}/{t}".encode()).hexdigest())
    n = len(order)
    n_val, n_test = round(0.2 * n), round(0.2 * n)
    return {t: ("validation" if i < n_val else "test" if i < n_val + n_test else "training")
            for i, t in enumerate(order)}


def scenario_playlists(campaign_dirs, wesnoth):
    """[(playlist id, [track ids in order of first mention])] from scenario files."""
    by_name = {t.split("/", 1)[1].lower(): t for t in wesnoth}
    found = []
    for cdir in campaign_dirs:
        campaign = os.path.basename(cdir.rstrip("/")).rsplit("-", 1)[-1]
        files = []
        for root, _, names in os.walk(cdir):
            if os.path.basename(root) == "scenarios":
                files += [os.path.join(root, n) for n in names if n.endswith(".cfg")]
        for f in sorted(files):
            with open(f, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            tracks = []
            for name in re.findall(r"([A-Za-z0-9_-]+)\.ogg", text):
                t = by_name.get(name.lower())
                if t and t not in tracks:
                    tracks.append(t)
            scen = os.path.splitext(os.path.basename(f))[0]
            found.append((f"wesnoth:{campaign}/{scen}", tracks))
    kept, sets = [], []
    for pid, tracks in found:
        s = set(tracks)
        if len(s) < MIN_PLAYLIST:
            continue
        if any(len(s & k) / len(s | k) >= MAX_JACCARD for k in sets):
            continue
        sets.append(s)
        kept.append((pid, tracks))
    return kept


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__.split("\n\n")[0])
    rows = []
    with open(argv[1]) as f:
        for line in f:
            src, flac, track, game, secs = line.rstrip("\n").split("\t")
            if float(secs) >= MIN_SECONDS:
                rows.append(dict(path=flac, track=track, label=game))
    by_game = collections.defaultdict(list)
    for r in rows:
        by_game[r["label"]].append(r["track"])
    split = {}
    for ids in by_game.values():
        split.update(split_of(ids))
    member = collections.defaultdict(list)
    playlists = scenario_playlists(argv[3:], by_game.get("wesnoth", []))
    for pid, tracks in playlists:
        for t in tracks:
            member[t].append(pid)
    tmp = argv[2] + ".tmp"
    with open(tmp, "w") as f:
        f.write("path\ttrack\tsplit\tlabel\tplaylists\n")
        for r in rows:
            f.write(f"{r['path']}\t{r['track']}\t{split[r['track']]}\t{r['label']}\t"
                    f"{','.join(member.get(r['track'], []))}\n")
    # replaced only when it changes, so that make rebuilds nothing on a rerun
    if os.path.exists(argv[2]) and filecmp.cmp(tmp, argv[2], shallow=False):
        os.remove(tmp)
    else:
        os.replace(tmp, argv[2])
    counts = {g: len(v) for g, v in sorted(by_game.items())}
    in_any = sum(1 for r in rows if member.get(r["track"]))
    print(f"[demo-data] music.tsv: {len(rows)} tracks {counts}, {len(playlists)} playlists "
          f"over {in_any} tracks", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
