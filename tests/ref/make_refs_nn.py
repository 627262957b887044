#!/usr/bin/python3
"""Writes the PyTorch reference fixtures for cmr's NN kernels (lib/nn/nn.h).

Run offline with Debian's torch:  /usr/bin/python3 tests/ref/make_refs_nn.py [outdir]
(outdir defaults to this script's directory). make check never runs it: the
outputs are committed (a few KB each) and read by tests/unit/test-nn-*.c.

File format (little-endian), llm.c's write_state with names:
  magic   4 bytes  b"CMRT"
  version u32      1
  count   u32      number of tensors
  count times:
    name_len u32, name (ASCII, no NUL), ndim u32, dims u32 x ndim, data f32 x prod(dims)
Integer tensors (pooling indices) are stored as f32 (exact below 2^24).
"""
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from cmr_models import info_nce  # noqa: E402  (tests/ref/cmr_models.py, the project's reference)

MAGIC = b"CMRT"
VERSION = 1


def write(path, tensors):
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<II", VERSION, len(tensors)))
        for name, t in tensors:
            t = t.detach().to(torch.float32).contiguous()
            nb = name.encode("ascii")
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", t.dim()))
            f.write(struct.pack("<%dI" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<f4").tobytes())
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


def conv2d(out):
    g = torch.Generator().manual_seed(1)
    B, C, H, W, OC = 2, 3, 7, 6, 4
    m = nn.Conv2d(C, OC, 5, padding=2)
    x = torch.randn(B, C, H, W, generator=g, requires_grad=True)
    y = m(x)
    R = torch.randn(y.shape, generator=g)
    (y * R).sum().backward()
    write(out("nn-conv2d.bin"), [("x", x), ("w", m.weight), ("b", m.bias), ("y", y), ("dy", R),
                                 ("dx", x.grad), ("dw", m.weight.grad), ("db", m.bias.grad)])


def batchnorm(out):
    g = torch.Generator().manual_seed(2)
    B, C, H, W = 3, 4, 5, 3
    m = nn.BatchNorm2d(C)  # eps 1e-5, momentum 0.1
    with torch.no_grad():
        m.weight.copy_(torch.rand(C, generator=g) + 0.5)
        m.bias.copy_(torch.randn(C, generator=g))
        m.running_mean.copy_(torch.randn(C, generator=g))
        m.running_var.copy_(torch.rand(C, generator=g) + 0.5)
    rm0, rv0 = m.running_mean.clone(), m.running_var.clone()
    x = (torch.randn(B, C, H, W, generator=g) * 2 + 1).requires_grad_()
    m.train()
    y = m(x)
    R = torch.randn(y.shape, generator=g)
    (y * R).sum().backward()
    m.eval()
    with torch.no_grad():
        ye = m(x)
    write(out("nn-batchnorm.bin"),
          [("x", x), ("gamma", m.weight), ("beta", m.bias), ("rm0", rm0), ("rv0", rv0),
           ("y", y), ("rm1", m.running_mean), ("rv1", m.running_var), ("dy", R),
           ("dx", x.grad), ("dgamma", m.weight.grad), ("dbeta", m.bias.grad), ("y_eval", ye)])


def pool(out):
    g = torch.Generator().manual_seed(3)
    ts = []
    for tag, shape, k in (("a", (1, 2, 23, 12), (4, 4)), ("b", (2, 3, 5, 3), (5, 3)),
                          ("c", (1, 2, 9, 7), (2, 2)), ("d", (1, 2, 12, 17), (2, 2))):
        x = torch.randn(shape, generator=g)
        xr = x.clone().requires_grad_()
        r = F.relu(xr)
        y, idx = F.max_pool2d(r, k, return_indices=True)
        R = torch.randn(y.shape, generator=g)
        (y * R).sum().backward()
        ts += [(tag + ".x", x), (tag + ".k", torch.tensor(k, dtype=torch.float32)),
               (tag + ".relu", r), (tag + ".y", y), (tag + ".idx", idx.float()),
               (tag + ".dy", R), (tag + ".dx", xr.grad)]
    # max over time, the multi-level heads: (B,C,T,F) -> (B,C,F)
    x = torch.randn(2, 3, 7, 5, generator=g, requires_grad=True)
    v = x.max(dim=2)
    R = torch.randn(v.values.shape, generator=g)
    (v.values * R).sum().backward()
    ts += [("t.x", x), ("t.y", v.values), ("t.idx", v.indices.float()), ("t.dy", R),
           ("t.dx", x.grad)]
    write(out("nn-pool.bin"), ts)


def linear(out):
    g = torch.Generator().manual_seed(4)
    m = nn.Linear(7, 3)
    x = torch.randn(5, 7, generator=g, requires_grad=True)
    y = m(x)
    R = torch.randn(y.shape, generator=g)
    (y * R).sum().backward()
    write(out("nn-linear.bin"), [("x", x), ("w", m.weight), ("b", m.bias), ("y", y), ("dy", R),
                                 ("dx", x.grad), ("dw", m.weight.grad), ("db", m.bias.grad)])


def gru(out):
    g = torch.Generator().manual_seed(5)
    B, T, IN, H = 3, 4, 5, 6
    m = nn.GRU(IN, H, num_layers=1, batch_first=True)
    ts = [("w_ih", m.weight_ih_l0), ("w_hh", m.weight_hh_l0), ("b_ih", m.bias_ih_l0),
          ("b_hh", m.bias_hh_l0)]
    for tag, with_h0 in (("z", False), ("h", True)):
        m.zero_grad()
        x = torch.randn(B, T, IN, generator=g, requires_grad=True)
        h0 = torch.randn(1, B, H, generator=g, requires_grad=True) if with_h0 else None
        y, hn = m(x, h0)
        R = torch.randn(y.shape, generator=g)
        (y * R).sum().backward()
        # clone: zero_grad() zeroes the .grad tensors in place (torch 1.13)
        ts += [(tag + ".x", x), (tag + ".y", y), (tag + ".dy", R), (tag + ".dx", x.grad),
               (tag + ".dw_ih", m.weight_ih_l0.grad.clone()), (tag + ".dw_hh", m.weight_hh_l0.grad.clone()),
               (tag + ".db_ih", m.bias_ih_l0.grad.clone()), (tag + ".db_hh", m.bias_hh_l0.grad.clone())]
        if with_h0:
            ts += [(tag + ".h0", h0[0]), (tag + ".dh0", h0.grad[0])]
    write(out("nn-gru.bin"), ts)


def infonce(out):
    g = torch.Generator().manual_seed(6)
    ts = []
    for tag, N, D, tau in (("a", 6, 8, 1.0), ("b", 5, 3, 0.5)):
        a = torch.randn(N, D, generator=g, requires_grad=True)
        p = (a.detach() * 0.5 + torch.randn(N, D, generator=g)).requires_grad_()
        loss = info_nce(a, p, tau)
        loss.backward()
        s = (a @ p.t() / tau).detach()
        probs = torch.softmax(s, dim=1)
        acc = (s.argmax(dim=1) == torch.arange(N)).float().sum()
        ts += [(tag + ".a", a), (tag + ".p", p), (tag + ".tau", torch.tensor([tau])),
               (tag + ".loss", loss.reshape(1)), (tag + ".probs", probs), (tag + ".correct", acc.reshape(1)),
               (tag + ".da", a.grad), (tag + ".dp", p.grad)]
    write(out("nn-infonce.bin"), ts)


def adam(out):
    g = torch.Generator().manual_seed(7)
    ts = []
    for tag, kw in (("d", dict()), ("w", dict(lr=0.05, weight_decay=0.01))):
        p = torch.randn(37, generator=g).requires_grad_()
        ts.append((tag + ".p0", p.detach().clone()))
        opt = torch.optim.Adam([p], **kw)
        for step in range(3):
            gr = torch.randn(37, generator=g)
            p.grad = gr.clone()
            opt.step()
            ts += [(tag + ".g%d" % step, gr), (tag + ".p%d" % (step + 1), p.detach().clone())]
        st = opt.state[p]
        ts += [(tag + ".m", st["exp_avg"]), (tag + ".v", st["exp_avg_sq"])]
    write(out("nn-adam.bin"), ts)


def block(out):
    """One encoder block in training mode: conv 5x5 -> BatchNorm2d -> relu -> maxpool (2,2),
    the composition of tests/ref/cmr_models.py's Block."""
    g = torch.Generator().manual_seed(8)
    B, C, H, W, OC = 2, 2, 12, 8, 3
    conv = nn.Conv2d(C, OC, 5, padding=2)
    bn = nn.BatchNorm2d(OC)
    x = torch.randn(B, C, H, W, generator=g, requires_grad=True)
    c = conv(x)
    y = F.max_pool2d(F.relu(bn(c)), (2, 2))
    R = torch.randn(y.shape, generator=g)
    (y * R).sum().backward()
    write(out("nn-block.bin"),
          [("x", x), ("w", conv.weight), ("b", conv.bias), ("y", y), ("dy", R), ("dx", x.grad),
           ("dw", conv.weight.grad), ("db", conv.bias.grad), ("dgamma", bn.weight.grad),
           ("dbeta", bn.bias.grad), ("rm", bn.running_mean), ("rv", bn.running_var)])


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    torch.manual_seed(0)  # module initialisation
    torch.set_num_threads(1)
    out = lambda name: os.path.join(outdir, name)
    for f in (conv2d, batchnorm, pool, linear, gru, infonce, adam, block):
        f(out)


if __name__ == "__main__":
    main()
