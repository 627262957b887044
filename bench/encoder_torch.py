#!/usr/bin/python3
"""PyTorch CPU twin of cmr-encode for bench/encoder: the same architecture
(tests/ref/cmr_models.py's Encoder, MultiEncoder or MelCPC encoder) in
eval mode under torch.no_grad(), the same batch, on random log-mel-like
input held in memory, with torch.set_num_threads(THREADS).

  /usr/bin/python3 bench/encoder_torch.py [--kind encoder|multi|cpc] [--width 1]
      [--batch 16] [--segments 32] [--threads 1] [--models FILE]

Prints one line: "torch KIND width W batch B threads T: N segments, X seg/s";
timed with the wall clock after one warm-up batch, as cmr-encode -v times
itself after its first batch."""
import argparse
import importlib.util
import os
import sys
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--kind", default="encoder", choices=["encoder", "multi", "cpc"])
ap.add_argument("--width", type=float, default=1.0)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--segments", type=int, default=32)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--models", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "..", "tests", "ref", "cmr_models.py"),
                help="the Python file defining the models (default: this repository's tests/ref/cmr_models.py)")
a = ap.parse_args()
if not os.path.isfile(a.models):
    ap.error("--models %s: no such file" % a.models)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
spec = importlib.util.spec_from_file_location("cmr_models", os.path.abspath(a.models))
models = importlib.util.module_from_spec(spec)
spec.loader.exec_module(models)

torch.set_num_threads(a.threads)
torch.manual_seed(0)
if a.kind == "encoder":
    net = models.Encoder(a.width)
elif a.kind == "multi":
    net = models.MultiEncoder(a.width)
else:
    net = models.MelCPC(a.width)
net.eval()
x = torch.rand(a.batch, 1, 188, 96) * 2
with torch.no_grad():
    if a.kind == "cpc":
        run = lambda: net(x.view(1, a.batch, 1, 188, 96))  # noqa: E731  encoder + GRU over the batch
    else:
        run = lambda: net(x)  # noqa: E731
    run()
    n, t0 = 0, time.perf_counter()
    while n < a.segments:
        run()
        n += a.batch
    t = time.perf_counter() - t0
print("torch %s width %g batch %d threads %d: %d segments, %.3f seg/s" % (a.kind, a.width, a.batch, a.threads, n, n / t))
