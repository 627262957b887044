#!/usr/bin/python3
"""Reference tensors for cmr's front end (lib/dsp/stft, mel, mfcc), from torchaudio.

Run offline (make check never runs Python):
    /usr/bin/python3 tests/ref/make_refs_frontend.py [tests/ref/frontend.ref]

It writes one small binary file of named tensors, read by tests/unit/frontend-ref.h:
    "CMRR" | u32 version (1) | u32 count | count x tensor
    tensor: u16 name length | name (ASCII) | u8 dtype (1 f32, 2 i16) | u8 ndim | u32 dims[ndim] | data
all little-endian, C order. Audio inputs are stored as 16-bit PCM, so the C test
feeds exactly the float signal torchaudio saw (x = pcm / 32768).

What is compared (PAPER.md section 1; docs/frontend.md):
  music.*   3 s of a synthetic chord progression with drums and noise (numpy, seeded)
  noise.*   0.5 s of white noise; sine.*: 0.5 s of 440 Hz (the C test regenerates it)
  short.*   the first L samples of a short signal, L in SHORT_LENGTHS: torch.stft refuses
            reflect padding for L <= 256, so the reference pads with
            numpy.pad(mode="reflect") and runs the same transform with center=False
  *.mel     MelSpectrogram(16000, n_fft=512, hop=256, n_mels=96, f_min=0, f_max=8000,
            power=1, norm="slaney", mel_scale="slaney") then log10(1 + 10 x), as (T, 96)
  *.htk     MelSpectrogram(..., power=2, norm=None, mel_scale="htk"), no log, (T, 96)
  *.mfcc    torchaudio.transforms.MFCC(16000, n_mfcc=40, melkwargs as .mel but power 2)
            with AmplitudeToDB's top_db set to None, (T, 40); checked here against the
            librosa formula written in numpy/scipy (power_to_db(top_db=None) + scipy DCT-II ortho)
  fb.slaney melscale_fbanks(257, 0, 8000, 96, 16000, "slaney", "slaney").T, (96, 257)
"""
import struct
import sys

import numpy as np
import scipy.fft
import torch
import torchaudio

SR = 16000
SHORT_LENGTHS = (1, 2, 3, 100, 256, 257, 300)
torch.set_num_threads(1)


def mel_t(power, norm, scale, center=True):
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=SR, n_fft=512, hop_length=256, n_mels=96, f_min=0.0, f_max=8000.0,
        power=power, norm=norm, mel_scale=scale, center=center, pad_mode="reflect")


MEL = mel_t(1.0, "slaney", "slaney")
HTK = mel_t(2.0, None, "htk")
MEL_NC = mel_t(1.0, "slaney", "slaney", center=False)
HTK_NC = mel_t(2.0, None, "htk", center=False)
MFCC = torchaudio.transforms.MFCC(
    sample_rate=SR, n_mfcc=40, dct_type=2, norm="ortho", log_mels=False,
    melkwargs=dict(n_fft=512, hop_length=256, n_mels=96, f_min=0.0, f_max=8000.0,
                   power=2.0, norm="slaney", mel_scale="slaney"))
MFCC.amplitude_to_DB.top_db = None   # no global clamp: cmr streams (docs/frontend.md)
POW = mel_t(2.0, "slaney", "slaney")


def logmel(x):
    return np.log10(1.0 + 10.0 * x.astype(np.float64)).astype(np.float32)


def refs_for(x, centred=True):
    """(mel, htk, mfcc) of float32 signal x, each (T, bands)."""
    t = torch.from_numpy(x)
    if not centred:
        t = torch.from_numpy(np.pad(x, 256, mode="reflect"))
    with torch.no_grad():
        if centred:
            m, h, c, p = MEL(t), HTK(t), MFCC(t), POW(t)
        else:
            m, h, p = MEL_NC(t), HTK_NC(t), None
            pw = mel_t(2.0, "slaney", "slaney", center=False)(t)
            db = 10 * torch.log10(torch.clamp(pw, min=1e-10))
            c = torch.matmul(db.T, MFCC.dct_mat).T
            p = pw
    mel = logmel(m.numpy().T)
    htk = h.numpy().T.copy()
    mfcc = c.numpy().T.copy()
    # the librosa formula, in numpy/scipy: power_to_db(S, ref=1, amin=1e-10, top_db=None), DCT-II ortho
    db = 10.0 * np.log10(np.maximum(p.numpy().T.astype(np.float64), 1e-10))
    lib = scipy.fft.dct(db, type=2, norm="ortho", axis=-1)[:, :40]
    err = np.abs(lib - mfcc).max() if len(lib) else 0.0
    assert err < 2e-3, f"torchaudio MFCC and the librosa formula differ by {err}"
    return mel, htk, mfcc


def music(seconds=3.0, seed=2022):
    """A chord progression (C, Am, F, G) with bass, hats, kick and noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = np.zeros(n)
    chords = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)]
    beat = n // len(chords)
    for ci, chord in enumerate(chords):
        a, b = ci * beat, (ci + 1) * beat
        tt = t[a:b] - t[a]
        env = np.exp(-2.5 * tt) * (1 - np.exp(-200 * tt))
        for note in chord + (chord[0] - 24,):
            f = 440.0 * 2 ** ((note - 69) / 12)
            for h in range(1, 8):
                if f * h < SR / 2:
                    y[a:b] += 0.08 / h * env * np.sin(2 * np.pi * f * h * tt + rng.uniform(0, 2 * np.pi))
        for k in range(4):   # hats and kicks on the eighths
            s = a + k * beat // 4
            m = min(2000, n - s)
            tk = np.arange(m) / SR
            y[s:s + m] += 0.15 * np.exp(-60 * tk) * rng.standard_normal(m)
            if k % 2 == 0:
                y[s:s + m] += 0.5 * np.exp(-20 * tk) * np.sin(2 * np.pi * (50 + 100 * np.exp(-30 * tk)) * tk)
    y += 0.01 * rng.standard_normal(n)
    y = 0.9 * y / np.abs(y).max()
    return np.round(y * 32767).astype(np.int16)


def pcm(x16):
    return (x16.astype(np.float32) / np.float32(32768.0)).astype(np.float32)


def main(path):
    out = []

    def put(name, arr):
        out.append((name, np.ascontiguousarray(arr)))

    # filterbanks
    fb = torchaudio.functional.melscale_fbanks(257, 0.0, 8000.0, 96, SR, "slaney", "slaney")
    put("fb.slaney", fb.numpy().T.astype(np.float32))

    # the music excerpt; centre padding = numpy reflect + center=False (sanity)
    m16 = music()
    x = pcm(m16)
    mel, htk, mfcc = refs_for(x)
    mel2, _, _ = refs_for(x, centred=False)
    assert mel.shape == (188, 96) and mfcc.shape == (188, 40), mel.shape
    assert np.abs(mel - mel2).max() < 1e-5
    put("music.pcm16", m16)
    put("music.mel", mel)
    put("music.htk", htk)
    put("music.mfcc", mfcc)

    rng = np.random.default_rng(7)
    n16 = np.round(np.clip(rng.standard_normal(8000) * 0.25, -1, 1) * 32767).astype(np.int16)
    mel, htk, mfcc = refs_for(pcm(n16))
    put("noise.pcm16", n16)
    put("noise.mel", mel)
    put("noise.htk", htk)
    put("noise.mfcc", mfcc)

    # the sine is regenerated in C: x[i] = (float)(0.5 * sin(2 pi 440 i / 16000))
    s = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SR // 2) / SR)).astype(np.float32)
    mel, htk, mfcc = refs_for(s)
    put("sine.mel", mel)
    put("sine.htk", htk)
    put("sine.mfcc", mfcc)

    # short tracks: numpy.pad reflect semantics (torch refuses L <= 256)
    sh16 = np.round(0.6 * np.sin(0.05 * np.arange(300) ** 1.3 + 0.3) * 32767).astype(np.int16)
    put("short.pcm16", sh16)
    for L in SHORT_LENGTHS:
        mel, htk, mfcc = refs_for(pcm(sh16[:L]), centred=False)
        assert mel.shape[0] == 1 + L // 256
        if L > 256:   # where torch accepts reflect padding, both agree
            mel_c, _, _ = refs_for(pcm(sh16[:L]))
            assert np.abs(mel - mel_c).max() < 1e-5
        put(f"short.{L}.mel", mel)
        put(f"short.{L}.htk", htk)
        put(f"short.{L}.mfcc", mfcc)

    with open(path, "wb") as f:
        f.write(b"CMRR" + struct.pack("<II", 1, len(out)))
        for name, arr in out:
            dt = {np.dtype(np.float32): 1, np.dtype(np.int16): 2}[arr.dtype]
            nb = name.encode("ascii")
            f.write(struct.pack("<H", len(nb)) + nb + struct.pack("<BB", dt, arr.ndim))
            f.write(struct.pack(f"<{arr.ndim}I", *arr.shape))
            f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    print(f"wrote {path}: {len(out)} tensors", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/ref/frontend.ref")
