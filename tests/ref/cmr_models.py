#!/usr/bin/python3
"""cmr's own PyTorch reference of its three models (docs/models.md, PAPER.md
sections 4 and 5): the encoder, the multi-level encoder and MelCPC.

This file is the PyTorch side of everything cmr checks against PyTorch:
tests/ref/make_refs_*.py (the committed fixtures), tests/cli/060-encode.bats
(a live round trip, skipped without python3-torch), bench/encoder_torch.py and
bench/train_torch.py. It needs only Debian's /usr/bin/python3 with
python3-torch (`tools/install-deps --bench`); no other package, no folder
outside the repository. Scripts import it by a path relative to their own
location (tests/ref/make_refs_*.py: their own directory; bench/*_torch.py:
../tests/ref/cmr_models.py, or the file given with --models):

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # in tests/ref/
    import cmr_models as models

The contract with cmr:
  - `state_dict()` keys and shapes are cmr's tensor names (lib/model_safetensors.c):
    blocks.{0..4}.conv.{weight,bias}, blocks.{0..4}.bn.{weight,bias,
    running_mean,running_var,num_batches_tracked}, then fc.{weight,bias}
    (Encoder), heads.{0..4}.{weight,bias} (MultiEncoder), or encoder.* +
    gru.{weight,bias}_{ih,hh}_l0 + predictors.{0..K-1}.{weight,bias} (MelCPC).
  - Modules are created in that same order, so after torch.manual_seed(s) the
    initial weights are PyTorch's defaults drawn in state_dict() order, with
    the encoder's fc and the multi heads re-drawn xavier-uniform afterwards
    (PAPER.md 4: Conv2d kaiming-uniform a=sqrt(5), Linear xavier-uniform).
    cmr_model_init draws the same distributions from its own generator.
  - Input (batch, 1, time 188, freq 96), already standardised; the model file's
    cmr.mel_mean / cmr.mel_std are applied by the caller.
  - save_safetensors / load_safetensors read and write the files cmr-model
    import / export use (F32, `__metadata__` of strings).

Regenerating the fixtures (offline, never by make check; commit the results
only when a change of the reference or of the C code's contract calls for it):

    /usr/bin/python3 tests/ref/make_refs_models.py small          # models-*.safetensors
    BUILD/tests/unit/test-model-ref --write-full DIR && \\
        /usr/bin/python3 tests/ref/make_refs_models.py full DIR   # models-full.ref.safetensors
    /usr/bin/python3 tests/ref/make_refs_nn.py                    # nn-*.bin
    /usr/bin/python3 tests/ref/make_refs_train.py BUILD           # train-*.tsv

(make_refs_frontend.py, make_refs_resample.py and make_refs_eval.py need
torchaudio, scipy or scikit-learn instead; their docstrings say how to run them.)

Run this file itself for a summary (parameter counts, output shapes).
"""
import json
import os
import struct
import sys
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F

N_TIME, N_MELS = 188, 96                      # one 3 s segment of log-mel frames
CHANNELS = (128, 256, 256, 512, 512)          # paper width (PAPER.md 4)
POOLS = ((2, 2), (2, 2), (2, 2), (4, 4), (5, 3))  # (time, freq) per block


def scaled_widths(width=1.0):
    """Channels of the five blocks at a width multiplier: max(1, round(c * width)),
    Python's round (half to even), as cmr_model_cfg_default."""
    return [max(1, round(c * width)) for c in CHANNELS]


def _pooled_freqs():
    """Frequency bins after each block's pooling: 48, 24, 12, 3, 1."""
    out, f = [], N_MELS
    for _, pool_f in POOLS:
        f //= pool_f
        out.append(f)
    return out


class Block(nn.Module):
    """Conv2d 5x5 (stride 1, padding 2, bias) -> BatchNorm2d (eps 1e-5,
    momentum 0.1) -> ReLU -> MaxPool2d (kernel = stride = pool)."""

    def __init__(self, cin, cout, pool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=5, stride=1, padding=2, bias=True)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.pool = tuple(pool)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        return F.max_pool2d(y, kernel_size=self.pool, stride=self.pool)


def _blocks(channels):
    cins = [1] + list(channels[:-1])
    return nn.ModuleList([Block(cin, cout, pool) for cin, cout, pool in zip(cins, channels, POOLS)])


def _xavier_linear(fan_in, fan_out):
    """nn.Linear with PyTorch's default initialisation, then its weight
    re-drawn xavier-uniform (the bias keeps U(+-1/sqrt(fan_in)))."""
    lin = nn.Linear(fan_in, fan_out)
    nn.init.xavier_uniform_(lin.weight)
    return lin


class Encoder(nn.Module):
    """The siamese encoder: five blocks, then Linear(C5, emb). (B,1,188,96) -> (B, emb)."""

    def __init__(self, width=1.0, emb=128):
        super().__init__()
        self.channels = scaled_widths(width)
        self.blocks = _blocks(self.channels)
        self.fc = _xavier_linear(self.channels[-1], emb)

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        # block 5 pools (5, 3) over a 5 x 3 map: (B, C5, 1, 1)
        return self.fc(torch.flatten(x, 1))


class MultiEncoder(nn.Module):
    """The multi-level encoder (InfoNCE-Multi): the blocks with block 5 at `emb`
    channels; after each block the max over time, flattened (C x F), and a
    Linear(C*F, emb) per level. forward concatenates the levels: (B, 5*emb)."""

    def __init__(self, width=1.0, emb=128):
        super().__init__()
        self.channels = scaled_widths(width)
        self.channels[-1] = emb
        self.blocks = _blocks(self.channels)
        self.heads = nn.ModuleList([nn.Linear(c * f, emb) for c, f in zip(self.channels, _pooled_freqs())])
        for head in self.heads:   # after all heads exist, as the initialisation order is part of the contract
            nn.init.xavier_uniform_(head.weight)

    def levels(self, x):
        """The five level embeddings, each (B, emb)."""
        out = []
        for blk, head in zip(self.blocks, self.heads):
            x = blk(x)
            summary = x.max(dim=2).values             # max over time: (B, C, F); one winner per column
            out.append(head(torch.flatten(summary, 1)))
        return out

    def forward(self, x):
        return torch.cat(self.levels(x), dim=1)


class MelCPC(nn.Module):
    """MelCPC: the Encoder over consecutive segments, a one-layer GRU(emb -> hidden)
    and k linear predictors Linear(hidden, emb)."""

    def __init__(self, width=1.0, emb=128, hidden=256, k=2):
        super().__init__()
        self.encoder = Encoder(width, emb)
        self.gru = nn.GRU(input_size=emb, hidden_size=hidden, num_layers=1, batch_first=True)
        self.predictors = nn.ModuleList([nn.Linear(hidden, emb) for _ in range(k)])

    def embed(self, segs):
        """(B, S, 1, 188, 96) -> the segment embeddings (B, S, emb)."""
        b, s = segs.shape[0], segs.shape[1]
        return self.encoder(segs.reshape(b * s, *segs.shape[2:])).reshape(b, s, -1)

    def forward(self, segs):
        """(B, S, 1, 188, 96) -> the GRU output at every segment (B, S, hidden),
        from a zero state (cmr-encode's output for a cpc model)."""
        out, _ = self.gru(self.embed(segs))
        return out

    def loss(self, segs, context, temperature=1.0):
        """segs (B, context + k, 1, 188, 96): the GRU reads the first `context`
        embeddings; predictor i (0-based) maps its last output to the embedding
        of segment context + i; sum over the predictors of InfoNCE with in-batch
        negatives."""
        z = self.embed(segs)
        out, _ = self.gru(z[:, :context])
        c_t = out[:, -1]
        total = 0
        for i, pred in enumerate(self.predictors):
            total = total + info_nce(pred(c_t), z[:, context + i], temperature)
        return total


MODELS = {"encoder": Encoder, "multi": MultiEncoder, "cpc": MelCPC}


def info_nce(anchors, positives, temperature=1.0):
    """InfoNCE with in-batch negatives (PAPER.md 5): S = A P^T / t,
    loss = -mean_i log softmax(S[i, :])[i]."""
    scores = anchors @ positives.t() / temperature
    target = torch.arange(anchors.shape[0], device=anchors.device)
    return F.cross_entropy(scores, target)


def multi_info_nce(levels_a, levels_p, temperature=1.0):
    """InfoNCE-Multi: info_nce per level, averaged over the levels."""
    losses = [info_nce(a, p, temperature) for a, p in zip(levels_a, levels_p)]
    return sum(losses) / len(losses)


# ---- safetensors, without the third-party package ----
# Layout: u64 little-endian header length N, N bytes of JSON (padded with
# spaces to a multiple of 8), then the tensors' bytes back to back, each
# named in the header with dtype, shape and [begin, end) offsets into the data.

_ST_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16,
              "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32}


def save_safetensors(state, path, metadata=None):
    """Writes `state` (name -> tensor, in its order) as F32 safetensors:
    every tensor cast to float32 (num_batches_tracked included, as cmr writes
    it), `metadata` (optional dict) as `__metadata__` with string values.
    Written to a temporary file beside `path`, then renamed over it."""
    if sys.byteorder != "little":
        raise RuntimeError("save_safetensors: big-endian hosts are not supported")
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks, offset = [], 0
    for name, tensor in state.items():
        t = tensor.detach().cpu().to(torch.float32).contiguous()
        data = t.numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * ((8 - len(head) % 8) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)   # mkstemp's 0600 -> what open() would give
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(head)))
            f.write(head)
            for data in chunks:
                f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_safetensors(path):
    """Reads a safetensors file: (state, metadata). Float tensors come back as
    float32, integer ones as they are (load_state_dict converts on copy)."""
    if sys.byteorder != "little":
        raise RuntimeError("load_safetensors: big-endian hosts are not supported")
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: not a safetensors file (too short)" % path)
    (n,) = struct.unpack_from("<Q", raw, 0)
    if n > len(raw) - 8:
        raise ValueError("%s: header length %d runs past the end of the file" % (path, n))
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    state = {}
    for name, info in header.items():
        dtype = _ST_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError("%s: tensor %s has dtype %s, not one of %s" % (path, name, info["dtype"], sorted(_ST_DTYPES)))
        begin, end = info["data_offsets"]
        if not 0 <= begin <= end <= len(data):
            raise ValueError("%s: tensor %s lies outside the data" % (path, name))
        shape = list(info["shape"])
        if end > begin:
            t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(shape)
        else:
            t = torch.zeros(shape, dtype=dtype)
        state[name] = t.to(torch.float32) if t.is_floating_point() else t
    return state, metadata


def load_model(path, eval_mode=True):
    """A model from a safetensors file written by `cmr-model export` (or by
    save_safetensors with cmr's metadata): (net, metadata). The kind and width
    come from cmr.kind / cmr.width, emb/hidden/k from the tensors' shapes."""
    state, meta = load_safetensors(path)
    kind, width = meta.get("cmr.kind"), meta.get("cmr.width")
    if kind not in MODELS or width is None:
        raise ValueError("%s: needs cmr.kind (encoder|multi|cpc) and cmr.width in its metadata" % path)
    width = float(width)
    if kind == "encoder":
        net = Encoder(width, emb=state["fc.weight"].shape[0])
    elif kind == "multi":
        net = MultiEncoder(width, emb=state["heads.0.weight"].shape[0])
    else:
        k = sum(1 for name in state if name.startswith("predictors.") and name.endswith(".weight"))
        net = MelCPC(width, emb=state["encoder.fc.weight"].shape[0],
                     hidden=state["gru.weight_hh_l0"].shape[1], k=k)
    net.load_state_dict(state)
    net.train(not eval_mode)
    return net, meta


def _main():
    for name, cls in MODELS.items():
        net = cls()
        print("%-8s %-12s %11d parameters, %d tensors" %
              (name, cls.__name__, sum(p.numel() for p in net.parameters()), len(net.state_dict())))
    net = Encoder(0.25).eval()
    with torch.no_grad():
        y = net(torch.randn(2, 1, N_TIME, N_MELS))
    print("width 0.25: channels %s, encoder output %s" % (scaled_widths(0.25), tuple(y.shape)))


if __name__ == "__main__":
    _main()
