#!/usr/bin/python3
"""PyTorch CPU twin of bench/bench-nn: the five paper-width encoder blocks,
conv2d forward and backward (and bn+relu+pool), best of N, in GFLOP/s.

  /usr/bin/python3 bench/bench_nn_torch.py [threads] [batch] [reps]
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
B = int(sys.argv[2]) if len(sys.argv) > 2 else 1
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
torch.set_num_threads(threads)
print("torch %s, threads %d, batch %d, best of %d, mkldnn %s" %
      (torch.__version__, torch.get_num_threads(), B, reps, torch.backends.mkldnn.is_available()))

ch = [1, 128, 256, 256, 512, 512]
hw = [(188, 96), (94, 48), (47, 24), (23, 12), (5, 3)]
pools = [(2, 2), (2, 2), (2, 2), (4, 4), (5, 3)]


def best(f):
    t = 1e30
    for _ in range(reps):
        s = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - s)
    return t


for i in range(5):
    H, W = hw[i]
    conv = nn.Conv2d(ch[i], ch[i + 1], 5, padding=2)
    bn = nn.BatchNorm2d(ch[i + 1])
    x = torch.randn(B, ch[i], H, W, requires_grad=i > 0)
    flop = 2.0 * B * ch[i + 1] * H * W * ch[i] * 25
    with torch.no_grad():
        tf = best(lambda: conv(x))
    y = conv(x)
    g = torch.randn_like(y)

    def bwd():
        conv.zero_grad()
        if x.grad is not None:
            x.grad = None
        torch.autograd.backward(conv(x), g)

    tb = best(bwd) - tf  # forward is inside the autograd timing; take it out
    yd = y.detach().requires_grad_()
    te = best(lambda: F.max_pool2d(F.relu(bn(yd)), pools[i]))
    p = F.max_pool2d(F.relu(bn(yd)), pools[i])
    gp = torch.randn_like(p)

    def bwd2():
        yd.grad = None
        torch.autograd.backward(F.max_pool2d(F.relu(bn(yd)), pools[i]), gp)

    tbe = best(bwd2) - te
    fb = 2 * flop if i else flop
    print("      bn+relu+pool: fwd %7.2f ms, bwd %7.2f ms" % (te * 1e3, tbe * 1e3))
    print("conv block %d %3d->%3d %3dx%2d: fwd %7.2f ms %6.1f GFLOP/s  bwd %7.2f ms %6.1f GFLOP/s" %
          (i + 1, ch[i], ch[i + 1], H, W, tf * 1e3, flop / tf / 1e9, tb * 1e3, fb / tb / 1e9))
