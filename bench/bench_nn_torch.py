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


# one thread: CPU time, so other jobs on a shared machine do not count (as bench-nn)
clock = time.process_time if threads == 1 else time.perf_counter


def best(f):
    t = 1e30
    for _ in range(reps):
        s = clock()
        f()
        t = min(t, clock() - s)
    return t


tot_f = tot_b = tot_flop = tot_bflop = 0.0
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
    # backward alone: the graph is kept, gradients accumulate (as cmr's do)
    tb = best(lambda: torch.autograd.backward(y, g, retain_graph=True))
    yd = y.detach().requires_grad_()
    te = best(lambda: F.max_pool2d(F.relu(bn(yd)), pools[i]))
    p = F.max_pool2d(F.relu(bn(yd)), pools[i])
    gp = torch.randn_like(p)
    tbe = best(lambda: torch.autograd.backward(p, gp, retain_graph=True))
    fb = 2 * flop if i else flop
    tot_f += tf + te
    tot_b += tb + tbe
    tot_flop += flop
    tot_bflop += fb
    print("conv block %d %3d->%3d %3dx%2d: fwd %7.2f ms %6.1f GFLOP/s  bwd %7.2f ms %6.1f GFLOP/s" %
          (i + 1, ch[i], ch[i + 1], H, W, tf * 1e3, flop / tf / 1e9, tb * 1e3, fb / tb / 1e9))
    print("      bn+relu+pool: fwd %7.2f ms, bwd %7.2f ms" % (te * 1e3, tbe * 1e3))
print("five blocks (conv+bn+relu+pool), per segment: forward %.1f ms = %.1f GFLOP/s, "
      "backward %.1f ms = %.1f GFLOP/s" % (tot_f * 1e3 / B, tot_flop / tot_f / 1e9,
                                           tot_b * 1e3 / B, tot_bflop / tot_b / 1e9))
