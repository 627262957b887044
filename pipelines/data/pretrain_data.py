#!/usr/bin/python3
"""pretrain_data.py plan|lists ... : the inventory of build-pretrain-data (stdlib only).

plan PKGDIR OUTDIR PKG...
    Walk the unpacked packages PKGDIR/PKG/, find every audio file (Ogg, Opus,
    FLAC, WAV, MP3 and tracker modules), measure it with ffprobe and keep the
    music: files under a folder whose name says music (music, musics, tunes,
    cdtracks, bgm), files of a package that holds only music (*-music*,
    fb-music-high), and any other file of at least LONG_S seconds (sound
    effects are short). Files under MIN_S seconds are dropped, and so are
    byte-identical copies (SHA-256 of the file). Ogg, FLAC and WAV files are
    used as they are (cmr-decode reads them); tracker modules, MP3 and Ogg
    files whose first stream is not audio (video) are converted to 16 kHz mono FLAC. Writes OUTDIR/keep.tsv (src, path used,
    seconds, sha256), OUTDIR/convert.tsv (src, dst, seconds: the files to
    convert) and OUTDIR/plan.tsv (every file, and the decision).
lists PKGDIR OUTDIR HELDOUT
    After conversion: find each kept track's licence in its package's
    copyright file, and write OUTDIR/tracks.tsv (every distinct track: path
    track package licence seconds sha256 source split; the length of a
    converted file from its FLAC STREAMINFO) and OUTDIR/pool.tsv (path track split: the
    training pool, the HELDOUT packages (comma-separated) left out), and print
    the totals.
"""
import concurrent.futures as cf
import fnmatch
import hashlib
import os
import re
import subprocess
import sys

AUDIO = re.compile(r"\.(ogg|oga|opus|flac|wav|mp3|mod|xm|s3m|it)$", re.I)
NEEDS_CONVERSION = re.compile(r"\.(mod|xm|s3m|it|mp3)$", re.I)
OGG = re.compile(r"\.(ogg|oga|opus)$", re.I)
TRACKER = re.compile(r"\.(mod|xm|s3m|it)$", re.I)
MUSIC_DIR = re.compile(r"/(music|musics|musik|tunes|cdtracks|bgm)/", re.I)
MUSIC_NAME = re.compile(r"(music|mainzik)", re.I)
MIN_S = 10.0   # shorter files are jingles or effects; adjacent pairs need 7.1 s
LONG_S = 45.0  # any audio file this long counts as music


def ogg_seconds(path):
    """Length of an Ogg Vorbis or Opus file from its first and last pages, or None."""
    with open(path, "rb") as f:
        head = f.read(4096)
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 65536))
        tail = f.read()
    if head[:4] != b"OggS":
        return None
    body = head[27 + head[26]:]
    if body[:7] == b"\x01vorbis":
        rate, skip = int.from_bytes(body[12:16], "little"), 0
    elif body[:8] == b"OpusHead":
        rate, skip = 48000, int.from_bytes(body[10:12], "little")
    else:
        return None
    i = tail.rfind(b"OggS")
    if i < 0 or rate <= 0 or len(tail) < i + 14:
        return None
    granule = int.from_bytes(tail[i + 6:i + 14], "little", signed=True)
    return max(0, granule - skip) / rate if granule >= 0 else None


def wav_seconds(path):
    """Length of a RIFF WAVE file from its fmt and data chunks, or None."""
    with open(path, "rb") as f:
        if f.read(12)[8:12] != b"WAVE":
            return None
        rate = None
        while True:
            h = f.read(8)
            if len(h) < 8:
                return None
            n = int.from_bytes(h[4:8], "little")
            if h[:4] == b"fmt ":
                fmt = f.read(n + (n & 1))
                rate = int.from_bytes(fmt[8:12], "little")   # bytes per second
            elif h[:4] == b"data":
                return n / rate if rate else None
            else:
                f.seek(n + (n & 1), 1)


def duration(path):
    # a compressed or PCM file under 60 KB cannot hold MIN_S of music (the lowest Ogg
    # bit rates are about 6 KB/s): not measured; tracker modules always are
    if not TRACKER.search(path) and os.path.getsize(path) < 60000:
        return 0.0
    try:
        low = path.lower()
        s = (ogg_seconds(path) if low.endswith((".ogg", ".oga", ".opus")) else
             wav_seconds(path) if low.endswith(".wav") else
             streaminfo(path)[0] if low.endswith(".flac") else None)
        if s is not None:
            return s
    except (OSError, ValueError, IndexError, ZeroDivisionError):
        pass
    try:   # MP3, tracker modules and anything the parsers above did not take
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                              "-of", "default=nw=1:nk=1", path],
                             capture_output=True, text=True, timeout=60).stdout.strip()
        return float(out)
    except (ValueError, subprocess.TimeoutExpired):
        return 0.0


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def track_id(pkg, rel):
    name = re.sub(r"\.[^.]*$", "", rel)
    for pre in ("usr/share/games/", "usr/share/", "pk3/"):
        if name.startswith(pre):
            name = name[len(pre):]
            break
    return pkg + "/" + re.sub(r"[\s,]+", "_", name)


def plan(pkgdir, outdir, pkgs):
    cand = []
    for pkg in pkgs:
        root = os.path.join(pkgdir, pkg)
        for d, _, files in os.walk(root):
            for f in sorted(files):
                if AUDIO.search(f) and "/usr/share/doc/" not in d + "/":
                    full = os.path.join(d, f)
                    cand.append((pkg, os.path.relpath(full, root), full))
    cand.sort()
    with cf.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        secs = list(ex.map(lambda c: duration(c[2]), cand))
    seen = {}
    keep = []
    with open(os.path.join(outdir, "plan.tsv"), "w") as log:
        log.write("package\tfile\tseconds\tdecision\n")
        for (pkg, rel, full), s in zip(cand, secs):
            musicish = (MUSIC_DIR.search("/" + rel) or MUSIC_NAME.search(os.path.basename(rel))
                        or "-music" in pkg)
            if s < MIN_S:
                why = "short"
            elif not musicish and s < LONG_S:
                why = "not music (no music folder, under %g s)" % LONG_S
            else:
                h = sha256(full)
                if h in seen:
                    why = "duplicate of " + seen[h]
                else:
                    tid = track_id(pkg, rel)
                    seen[h] = tid
                    why = "keep"
                    # libsndfile (cmr-decode) reads Ogg, FLAC and WAV as they are; the
                    # rest (tracker modules, MP3) is converted to FLAC first
                    # (and an Ogg file whose first stream is not Vorbis or Opus: video)
                    convert = NEEDS_CONVERSION.search(rel) or (
                        OGG.search(rel) and ogg_seconds(full) is None)
                    dst = os.path.join(outdir, "flac", tid + ".flac") if convert else full
                    keep.append((full, dst, s, h))
            log.write("%s\t%s\t%.3f\t%s\n" % (pkg, rel, s, why))
    with open(os.path.join(outdir, "keep.tsv"), "w") as f:
        f.write("src\tpath\tseconds\tsha256\n")
        for src, dst, s, h in keep:
            f.write("%s\t%s\t%.3f\t%s\n" % (src, dst, s, h))
    with open(os.path.join(outdir, "convert.tsv"), "w") as f:
        f.write("src\tdst\tseconds\n")
        for src, dst, s, h in keep:
            if dst != src:
                f.write("%s\t%s\t%.3f\n" % (src, dst, s))
    print("plan: %d audio files, %d kept" % (len(cand), len(keep)), file=sys.stderr)


def streaminfo(path):
    """(seconds, md5 of the decoded PCM) from a FLAC file's STREAMINFO block."""
    with open(path, "rb") as f:
        head = f.read(42)
    if head[:4] != b"fLaC" or head[4] & 0x7F != 0:
        raise ValueError(path + ": not a FLAC file")
    si = head[8:42]
    rate = (si[10] << 12) | (si[11] << 4) | (si[12] >> 4)
    total = ((si[13] & 0x0F) << 32) | int.from_bytes(si[14:18], "big")
    return total / rate, si[18:34].hex()


def copyright_paragraphs(path):
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return None, ""
    if not re.match(r"(?i)format:", text):
        return None, text
    paras = []
    for block in re.split(r"\n\s*\n", text):
        files = re.search(r"(?im)^files:\s*((?:.*\n?)(?:[ \t]+.*\n?)*)", block)
        lic = re.search(r"(?im)^license:\s*(.*)$", block)
        if files and lic:
            paras.append((files.group(1).split(), lic.group(1).strip()))
    return paras, text


def licence_of(pkgdir, pkg, rel, cache={}):
    if pkg not in cache:
        cache[pkg] = copyright_paragraphs(
            os.path.join(pkgdir, pkg, "usr/share/doc", pkg, "copyright"))
    paras, text = cache[pkg]
    if paras is None:
        # not machine-readable: name the licences the text mentions
        found = []
        for key, name in ((r"GNU (Library |Lesser )General Public License|\bLGPL", "LGPL"),
                          (r"(?<!Library )(?<!Lesser )GNU General Public License|\bGPL\b", "GPL"),
                          (r"(?i)ShareAlike|CC-BY-SA|CC BY-SA", "CC-BY-SA"),
                          (r"(?i)creative commons", "Creative Commons"),
                          (r"(?i)public domain|\bCC0\b", "public domain/CC0"),
                          (r"\bArtistic License", "Artistic"),
                          (r"\bBSD\b|Redistribution and use in source and binary forms", "BSD"),
                          (r"\bMIT\b|\bExpat\b", "MIT")):
            if re.search(key, text) and not (name == "Creative Commons" and "CC-BY-SA" in found):
                found.append(name)
        return "not machine-readable, mentions " + ("/".join(found) or "no licence name")
    best = None
    parts = rel.split("/")
    for pats, lic in paras:  # DEP-5: the last matching paragraph wins
        for p in pats:
            for k in range(len(parts)):
                if fnmatch.fnmatch("/".join(parts[k:]), p):
                    best = lic
                    break
            else:
                continue
            break
    return best or "see copyright"


def lists(pkgdir, outdir, heldout):
    held = set(h for h in heldout.split(",") if h)
    out = []
    with open(os.path.join(outdir, "keep.tsv")) as f:
        next(f)
        for line in f:
            src, path, secs, h = line.rstrip("\n").split("\t")
            secs = float(secs)
            if path.endswith(".flac") and path != src:
                secs = streaminfo(path)[0]   # the converted file's own length
            rel = os.path.relpath(src, pkgdir)
            pkg, rel = rel.split("/", 1)
            split = "heldout" if pkg in held else "training"
            out.append((path, track_id(pkg, rel), pkg, licence_of(pkgdir, pkg, rel), secs, h,
                        os.path.relpath(src, pkgdir), split))
    with open(os.path.join(outdir, "tracks.tsv.tmp"), "w") as f:
        f.write("path\ttrack\tpackage\tlicence\tseconds\tsha256\tsource\tsplit\n")
        for r in out:
            f.write("%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t%s\n" % r)
    os.replace(os.path.join(outdir, "tracks.tsv.tmp"), os.path.join(outdir, "tracks.tsv"))
    with open(os.path.join(outdir, "pool.tsv.tmp"), "w") as f:
        f.write("path\ttrack\tsplit\n")
        for r in out:
            if r[7] == "training":
                f.write("%s\t%s\ttraining\n" % (r[0], r[1]))
    os.replace(os.path.join(outdir, "pool.tsv.tmp"), os.path.join(outdir, "pool.tsv"))
    tr = [r for r in out if r[7] == "training"]
    print("lists: %d distinct tracks, %.2f h; training pool "
          "%d tracks from %d packages, %.2f h; held out %d tracks, %.2f h"
          % (len(out), sum(r[4] for r in out) / 3600, len(tr), len(set(r[2] for r in tr)),
             sum(r[4] for r in tr) / 3600, len(out) - len(tr),
             sum(r[4] for r in out if r[7] != "training") / 3600), file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "plan":
        plan(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 5 and sys.argv[1] == "lists":
        lists(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
