#!/usr/bin/python3
"""Writes the PyTorch reference fixtures for cmr's models (lib/model.h).

Run offline with Debian's torch (make check never runs it; the outputs are
committed and read by tests/unit/test-model-ref.c):

  /usr/bin/python3 tests/ref/make_refs_models.py small [outdir]
      models-{encoder,multi,cpc}.weights.safetensors  weights as PyTorch writes
          them (cmr_models.py save_safetensors), importable with cmr-model import
      models-{encoder,multi,cpc}.ref.safetensors  eval outputs, training loss,
          every gradient, running statistics after the training forward, and
          the losses of 3 Adam steps (encoder: the parameters after them too)
  /usr/bin/python3 tests/ref/make_refs_models.py full DIR [outdir]
      DIR holds full-{encoder,multi,cpc}.safetensors written by
      `tests/unit/test-model-ref --write-full DIR` (paper width, cmr's seeded
      initialisation); writes models-full.ref.safetensors with the outputs
      only (the weights are 50 MB; the C test rebuilds them from the seed).

Fixtures are safetensors files (the format cmr reads anyway) whose
__metadata__ carries cmr.fixture = "models" and cmr.fixture_version = "1"
(magic and version). Inputs are not stored: both sides draw them from cmr's
generator (xoshiro256** seeded through splitmix64, ported below), values
2 * uniform in [0, 2), as tests/unit/mk-segments.c.

Small models: width 1/32 (channels 4, 8, 8, 16, 16), emb 16, MelCPC hidden 16,
K 2, context 4; batch norm weights and running statistics perturbed so that
both batch-norm paths matter; input standardisation mean 0.8, std 0.6.
"""
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import cmr_models as models  # noqa: E402  (tests/ref/cmr_models.py, the project's reference)

M64 = (1 << 64) - 1
T, F = 188, 96
WIDTH = 1 / 32
EMB = 16
HIDDEN = 16
K = 2
CONTEXT = 4
MEL_MEAN, MEL_STD = 0.8, 0.6
FIXTURE_META = {"cmr.fixture": "models", "cmr.fixture_version": "1"}


class Rng:
    """cmr_rng (lib/util/rng.c): xoshiro256** seeded through splitmix64."""

    def __init__(self, seed):
        x = seed & M64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    def u64(self):
        s = self.s
        result = (self.rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self.rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.u64() >> 11) * 2.0 ** -53


def segments(seed, n):
    """n segments (n, T, F) of 2 * uniform, float32, as the C tests draw them."""
    r = Rng(seed)
    v = np.array([2 * r.uniform() for _ in range(n * T * F)], dtype=np.float64)
    return torch.from_numpy(v.astype(np.float32)).view(n, T, F)


def standardise(x):
    return (x - MEL_MEAN) / MEL_STD


def make_model(kind, width=WIDTH, emb=EMB):
    if kind == "encoder":
        return models.Encoder(width, emb)
    if kind == "multi":
        return models.MultiEncoder(width, emb)
    return models.MelCPC(width, emb, hidden=HIDDEN, k=K)


def perturb_bn(m, g):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
                mod.bias.copy_(0.1 * torch.randn(c, generator=g))
                mod.running_mean.copy_(0.3 * torch.randn(c, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
                mod.num_batches_tracked.fill_(7)


def train_loss(m, kind, x, tau):
    """cmr_model_loss: x is (2B, T, F) (siamese) or (B, S, T, F) (cpc), raw log-mel."""
    if kind == "encoder":
        e = m(standardise(x).unsqueeze(1))
        b = e.shape[0] // 2
        return models.info_nce(e[:b], e[b:], tau)
    if kind == "multi":
        lv = m.levels(standardise(x).unsqueeze(1))
        b = lv[0].shape[0] // 2
        return models.multi_info_nce([l[:b] for l in lv], [l[b:] for l in lv], tau)
    return m.loss(standardise(x).unsqueeze(2), CONTEXT)  # temperature 1


def small(kind, outdir, seed):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 100)
    m = make_model(kind)
    perturb_bn(m, g)
    meta = {"cmr.mel_mean": str(MEL_MEAN), "cmr.mel_std": str(MEL_STD)}
    if kind == "multi":  # the encoder's file has no kind or width: cmr infers them from shapes
        meta.update({"cmr.kind": "multi", "cmr.width": str(WIDTH)})
    if kind == "cpc":
        meta.update({"cmr.kind": "cpc", "cmr.width": str(WIDTH), "cmr.context": str(CONTEXT),
                     "note": "written by tests/ref/make_refs_models.py"})
    init = {k: v.clone() for k, v in m.state_dict().items()}
    models.save_safetensors(init, os.path.join(outdir, "models-%s.weights.safetensors" % kind), meta)

    ref = {}
    tau = 0.5 if kind == "encoder" else 1.0
    # inference: eval batch norm
    m.eval()
    with torch.no_grad():
        if kind == "cpc":
            xe = segments(11, 5)
            ref["eval.out"] = m(standardise(xe).view(1, 5, 1, T, F))[0]          # (5, H)
            ref["eval.z"] = m.encoder(standardise(xe).unsqueeze(1))             # (5, emb)
        else:
            xe = segments(11, 3)
            ref["eval.out"] = m(standardise(xe).unsqueeze(1))
    # training: batch statistics, one backward
    m.train()
    B = 3
    xt = segments(12, 2 * B) if kind != "cpc" else segments(12, B * (CONTEXT + K)).view(B, CONTEXT + K, T, F)
    m.zero_grad()
    loss = train_loss(m, kind, xt, tau)
    loss.backward()
    ref["train.loss"] = loss.detach().view(1)
    for name, p in m.named_parameters():
        ref["grad." + name] = p.grad.clone()
    for name, b in m.named_buffers():
        ref["stat." + name] = b.clone()
    # Adam: three steps from the initial weights on the same batch
    m.load_state_dict(init)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = train_loss(m, kind, xt, tau)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    ref["adam.loss"] = torch.tensor(losses)
    if kind == "encoder":
        for name, p in m.named_parameters():
            ref["adam." + name] = p.detach().clone()
    md = dict(FIXTURE_META)
    md.update({"kind": kind, "tau": str(tau), "batch": str(B), "eval_seed": "11", "train_seed": "12"})
    path = os.path.join(outdir, "models-%s.ref.safetensors" % kind)
    models.save_safetensors({k: v.detach() for k, v in ref.items()}, path, md)
    print("wrote", path, os.path.getsize(path), "bytes; loss", ref["train.loss"].item(), "adam", losses)


def full(indir, outdir):
    ref = {}
    for kind in ("encoder", "multi", "cpc"):
        state, meta = models.load_safetensors(os.path.join(indir, "full-%s.safetensors" % kind))
        m = make_model(kind, width=1.0, emb=128) if kind != "cpc" else models.MelCPC(1.0)
        m.load_state_dict(state)
        m.eval()
        mean, std = float(meta["cmr.mel_mean"]), float(meta["cmr.mel_std"])
        with torch.no_grad():
            if kind == "cpc":
                x = segments(21, 3)
                ref[kind + ".out"] = m(((x - mean) / std).view(1, 3, 1, T, F))[0]
            else:
                x = segments(21, 2)
                ref[kind + ".out"] = m(((x - mean) / std).unsqueeze(1))
        print(kind, "full width, output", tuple(ref[kind + ".out"].shape))
    md = dict(FIXTURE_META)
    md.update({"kind": "full", "input_seed": "21"})
    path = os.path.join(outdir, "models-full.ref.safetensors")
    models.save_safetensors(ref, path, md)
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    torch.set_num_threads(1)
    # the port of cmr_rng, checked against values printed by the C generator
    r = Rng(42)
    assert [r.u64() for _ in range(2)] == [int(v) for v in os.environ.get("CMR_RNG_CHECK", "").split()] \
        or not os.environ.get("CMR_RNG_CHECK"), "rng port disagrees with cmr_rng"
    if len(sys.argv) >= 2 and sys.argv[1] == "small":
        out = sys.argv[2] if len(sys.argv) > 2 else HERE
        for i, kind in enumerate(("encoder", "multi", "cpc")):
            small(kind, out, 1 + i)
    elif len(sys.argv) >= 3 and sys.argv[1] == "full":
        full(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else HERE)
    else:
        sys.exit(__doc__)
