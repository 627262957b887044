#!/usr/bin/python3
"""Writes the torchaudio reference fixture for cmr's resampler (lib/dsp/resample.c).

Run offline with Debian's torchaudio:  /usr/bin/python3 tests/ref/make_refs_resample.py [outdir]
(outdir defaults to this script's directory). make check never runs it: the
output, resample.ref (about 100 KB), is committed and read by tests/unit/test-resample.c.

The inputs are about 0.25 s at RATE = 44100, 48000 and 8000 Hz (N = 11026,
12001 and 2001 samples: lengths where round() and ceil() of N * 16000 / RATE
differ) of four sines, all well inside the 16 kHz passband (the 8 kHz input
keeps the two below 4 kHz), computed in float64 and rounded to float32:
    x[n] = sum_k A_k sin(2 pi f_k n / RATE + p_k)
    (f, A, p) = (220, .2, .1), (1234.5, .2, .7), (3000, .2, 1.3), (5555, .2, 2.1)
test-resample.c builds the same inputs. The tensors are torchaudio's
resampling of them to 16000 Hz (ceil(N * 16000 / RATE) samples):
  kaiser_best_RATE  F.resample(..., lowpass_filter_width=64, rolloff=0.9475937167399596,
                    resampling_method="kaiser_window", beta=14.769656459379492)
                    (librosa's "kaiser_best" settings: a near-ideal band-limited resampler)
  hann_RATE         F.resample(...) with torchaudio's defaults (width 6, rolloff 0.99)
Both are time-aligned with the input (no delay), as soxr is.

File format (little-endian), as tests/ref/make_refs_nn.py:
  magic b"CMRT", version u32 1, count u32, then per tensor:
  name_len u32, name, ndim u32, dims u32 x ndim, data f32 x prod(dims)
"""
import os
import struct
import sys

import numpy as np
import torch
import torchaudio.functional as F

MAGIC = b"CMRT"
VERSION = 1
SINES = [(220.0, 0.2, 0.1), (1234.5, 0.2, 0.7), (3000.0, 0.2, 1.3), (5555.0, 0.2, 2.1)]


def write(path, tensors):
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<II", VERSION, len(tensors)))
        for name, t in tensors:
            t = np.ascontiguousarray(t, dtype="<f4")
            nb = name.encode("ascii")
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", t.ndim))
            f.write(struct.pack("<%dI" % t.ndim, *t.shape))
            f.write(t.tobytes())
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


def signal(sr, n):
    t = np.arange(n) / sr
    return sum(a * np.sin(2 * np.pi * f * t + p) for f, a, p in SINES if f < sr / 2 - 500).astype(np.float32)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    tensors = []
    for sr, n in [(44100, 11026), (48000, 12001), (8000, 2001)]:
        xt = torch.from_numpy(signal(sr, n))
        kaiser = F.resample(xt, sr, 16000, lowpass_filter_width=64, rolloff=0.9475937167399596,
                            resampling_method="kaiser_window", beta=14.769656459379492)
        hann = F.resample(xt, sr, 16000)
        tensors += [("kaiser_best_%d" % sr, kaiser.numpy()), ("hann_%d" % sr, hann.numpy())]
    write(os.path.join(out, "resample.ref"), tensors)


if __name__ == "__main__":
    main()
