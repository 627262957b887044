#!/usr/bin/python3
"""phrases.py OUTDIR SPLIT SEED N_PER_CLASS [CLIPS_PER_FILE]

Write General MIDI files of short generated phrases, one predominant instrument
per clip, for the demo's IRMAS-like instrument set (python3 standard library only).

Every clip is CLIP_S seconds of one lead instrument (one of IRMAS's 11 classes,
named by IRMAS's codes) playing a seeded random melody in a random key and tempo;
polyphonic leads (guitars, organ, piano) add triads. Most clips also get a
quieter accompaniment (bass, a pad or mallets, a drum kit) whose programs belong
to no class, so the task is "which instrument leads", as in IRMAS.

Clips are laid end to end, SLOT_S seconds apart, in files of CLIPS_PER_FILE clips
(so one synthesizer process renders many clips); every note stops at CLIP_S.
Writes OUTDIR/SPLIT-NN.mid and OUTDIR/SPLIT.tsv with one line per clip:
    clip  label  file  start_s  program  bpm  accompaniment
The same arguments give the same bytes. PHRASES_PROGRAMS=P,P,... (environment)
keeps only those General MIDI programs (for a bank that lacks some).
"""
import os
import random
import struct
import sys

CLIP_S = 3.0       # a clip, as IRMAS
SLOT_S = 5.0       # clip spacing in a file: 2 s for release tails and reverb to die
TICKS_PER_S = 960  # 480 ticks per quarter note at the MIDI default of 120 bpm

# class -> (GM programs, 0-based; lowest and highest note; plays chords)
CLASSES = {
    "cel": ([42], 36, 67, False),                  # cello
    "cla": ([71], 50, 84, False),                  # clarinet
    "flu": ([73, 72], 60, 93, False),              # flute, piccolo
    "gac": ([24, 25], 40, 76, True),               # nylon and steel acoustic guitar
    "gel": ([26, 27, 29, 30], 40, 81, True),       # jazz, clean, overdriven, distortion guitar
    "org": ([16, 17, 19], 43, 84, True),           # drawbar, percussive, church organ
    "pia": ([0, 1], 40, 88, True),                 # grand and bright piano
    "sax": ([64, 65, 66, 67], 44, 80, False),      # soprano, alto, tenor, baritone
    "tru": ([56], 55, 82, False),                  # trumpet
    "vio": ([40], 55, 93, False),                  # violin
    "voi": ([52, 53], 48, 79, False),              # choir aahs, voice oohs
}
BASSES = [32, 33, 34]                     # acoustic, finger, pick bass
PADS = [88, 89, 91, 11, 12, 46]           # new age, warm, choir-less pads; vibes, marimba, harp
SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10],
          "dorian": [0, 2, 3, 5, 7, 9, 10]}


def varlen(n):
    """MIDI variable-length quantity."""
    b = [n & 0x7F]
    n >>= 7
    while n:
        b.insert(0, 0x80 | (n & 0x7F))
        n >>= 7
    return bytes(b)


def lead(rng, label, t0, ev):
    """Events of the lead instrument on channel 0; returns (program, bpm)."""
    progs, lo, hi, chords = CLASSES[label]
    prog = rng.choice(progs)
    bpm = rng.randint(66, 144)
    beat = 60.0 / bpm
    tonic = rng.randrange(12)
    scale = SCALES[rng.choice(sorted(SCALES))]
    pitches = [p for p in range(lo, hi + 1) if (p - tonic) % 12 in scale]
    ev.append((t0, (0xC0, prog)))
    ev.append((t0, (0xB0, 7, 115)))
    k = rng.randrange(len(pitches) // 3, 2 * len(pitches) // 3)
    t = 0.0
    while t < CLIP_S - 0.1:
        length = beat * rng.choice([0.25, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0])
        k = min(len(pitches) - 1, max(0, k + rng.choice([-2, -1, -1, 0, 1, 1, 2, 4, -4])))
        if t > 0 and rng.random() < 0.12:          # a rest
            t += length
            continue
        notes = [pitches[k]]
        if chords and rng.random() < 0.4:
            notes += [pitches[j] for j in (k + 2, k + 4) if j < len(pitches)]
        vel = rng.randint(75, 118)
        end = min(t + length * rng.uniform(0.7, 1.0), CLIP_S)
        for p in notes:
            ev.append((t0 + t, (0x90, p, vel)))
            ev.append((t0 + end, (0x80, p, 0)))
        t += length
    return prog, bpm, tonic, scale, beat


def accompaniment(rng, t0, tonic, scale, beat, ev):
    """Bass (channel 1), pad or mallets (channel 2) and drums (channel 9), quieter."""
    bass, pad = rng.choice(BASSES), rng.choice(PADS)
    vol = rng.randint(40, 64)
    ev += [(t0, (0xC1, bass)), (t0, (0xB1, 7, vol)), (t0, (0xC2, pad)), (t0, (0xB2, 7, vol)),
           (t0, (0xB9, 7, vol))]
    degree = rng.choice([0, 3, 4, 5])
    t = 0.0
    while t < CLIP_S:
        root = 36 + (tonic + scale[degree]) % 12
        end = min(t + 2 * beat, CLIP_S)
        ev += [(t0 + t, (0x91, root, 95)), (t0 + end, (0x81, root, 0))]
        for step in (0, 2, 4):
            d = degree + step
            p = 55 + tonic + scale[d % 7] + 12 * (d // 7)
            ev += [(t0 + t, (0x92, p, 70)), (t0 + end, (0x82, p, 0))]
        for b in range(2):
            x = t + b * beat
            if x < CLIP_S:
                drum = 36 if b == 0 else 38
                ev += [(t0 + x, (0x99, drum, 80)), (t0 + x + 0.1, (0x89, drum, 0)),
                       (t0 + x, (0x99, 42, 55)), (t0 + x + 0.05, (0x89, 42, 0))]
        degree = (degree + rng.choice([3, 4, 5])) % 7
        t += 2 * beat
    return f"bass{bass}+prog{pad}+drums"


def write_midi(path, ev, total_s):
    """One-track (format 0) MIDI file of (seconds, message) events."""
    order = {0x80: 0, 0xB0: 1, 0xC0: 2, 0x90: 3}   # at equal times: offs, controls, programs, ons
    ev = sorted(ev, key=lambda e: (round(e[0] * TICKS_PER_S), order[e[1][0] & 0xF0], e[1]))
    track, last = bytearray(), 0
    track += varlen(0) + b"\xff\x51\x03" + struct.pack(">I", 500000)[1:]   # 120 bpm
    for t, msg in ev:
        tick = round(t * TICKS_PER_S)
        track += varlen(tick - last) + bytes(msg)
        last = tick
    track += varlen(max(0, round(total_s * TICKS_PER_S) - last)) + b"\xff\x2f\x00"
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480))
        f.write(b"MTrk" + struct.pack(">I", len(track)) + track)
    os.replace(tmp, path)


def only_programs(keep):
    """Restrict every program list to KEEP (a sound bank that lacks some programs,
    e.g. Freepats): a class or accompaniment list left empty keeps its first entry."""
    for label, (progs, lo, hi, chords) in CLASSES.items():
        CLASSES[label] = ([p for p in progs if p in keep] or progs[:1], lo, hi, chords)
    BASSES[:] = [p for p in BASSES if p in keep] or BASSES[:1]
    PADS[:] = [p for p in PADS if p in keep] or PADS[:1]


def main(argv):
    if len(argv) not in (5, 6):
        sys.exit(__doc__.split("\n\n")[0])
    if os.environ.get("PHRASES_PROGRAMS"):  # only these GM programs (comma-separated)
        only_programs(set(int(p) for p in os.environ["PHRASES_PROGRAMS"].split(",")))
    outdir, split, seed, n = argv[1], argv[2], int(argv[3]), int(argv[4])
    per_file = int(argv[5]) if len(argv) == 6 else 60
    rng = random.Random(f"cmr-demo-instruments/{split}/{seed}")
    clips = [(f"{label}_{i:03d}", label) for label in CLASSES for i in range(n)]
    rng.shuffle(clips)  # classes mixed within a file
    os.makedirs(outdir, exist_ok=True)
    rows = []
    for f0 in range(0, len(clips), per_file):
        name = f"{split}-{f0 // per_file:02d}"
        ev = []
        part = clips[f0:f0 + per_file]
        for j, (clip, label) in enumerate(part):
            t0 = j * SLOT_S
            prog, bpm, tonic, scale, beat = lead(rng, label, t0, ev)
            acc = accompaniment(rng, t0, tonic, scale, beat, ev) if rng.random() < 0.75 else "none"
            for ch in (0, 1, 2, 9):                  # everything stops at the clip's end
                ev += [(t0 + CLIP_S, (0xB0 | ch, 123, 0)), (t0 + CLIP_S, (0xB0 | ch, 120, 0))]
            rows.append((clip, label, name, f"{t0:.1f}", str(prog), str(bpm), acc))
        write_midi(os.path.join(outdir, name + ".mid"), ev, len(part) * SLOT_S)
    tmp = os.path.join(outdir, split + ".tsv.tmp")
    with open(tmp, "w") as f:
        f.write("clip\tlabel\tfile\tstart_s\tprogram\tbpm\taccompaniment\n")
        for r in sorted(rows):
            f.write("\t".join(r) + "\n")
    os.replace(tmp, os.path.join(outdir, split + ".tsv"))


if __name__ == "__main__":
    main(sys.argv)
