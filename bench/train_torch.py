#!/usr/bin/python3
"""PyTorch CPU twin of cmr-train for bench/train: the same model
(tests/ref/cmr_models.py's Encoder, MultiEncoder or MelCPC), batch, loss
(InfoNCE with in-batch negatives, temperature 1) and optimiser (Adam, lr 1e-3,
betas 0.9/0.999), on random log-mel-like input held in memory.

  /usr/bin/python3 bench/train_torch.py [--model siamese|multi|cpc] [--width 1]
      [--batch 16] [--warmup 1] [--steps 3] [--threads 1] [--models FILE]

Prints one line: "torch MODEL width W batch B threads N: S steps, X seg/s
(step Y s)"; segments = the 188x96 inputs through the encoder (2 per pair,
context + K per sequence). Timed with wall clock over the steps after warm-up,
as bench/train times cmr-train (from its log's elapsed_s)."""
import argparse
import importlib.util
import os
import sys
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="siamese", choices=["siamese", "multi", "cpc"])
ap.add_argument("--width", type=float, default=1.0)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--context", type=int, default=4)
ap.add_argument("--predict", type=int, default=2)
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
B = a.batch
if a.model == "siamese":
    net = models.Encoder(a.width)
elif a.model == "multi":
    net = models.MultiEncoder(a.width)
else:
    net = models.MelCPC(a.width, k=a.predict)
net.train()
opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
rows = 2 if a.model != "cpc" else a.context + a.predict
# one distinct batch per step, like a stream (about the range of log10(1 + 10 mel))
data = [(0.3 + 0.2 * torch.randn(B, rows, 1, 188, 96)) for _ in range(min(a.warmup + a.steps, 4))]


def step(x):
    opt.zero_grad()
    if a.model == "siamese":
        z = net(torch.cat([x[:, 0], x[:, 1]]))
        loss = models.info_nce(z[:B], z[B:])
    elif a.model == "multi":
        lv = net.levels(torch.cat([x[:, 0], x[:, 1]]))
        loss = models.multi_info_nce([l[:B] for l in lv], [l[B:] for l in lv])
    else:
        loss = net.loss(x, a.context)
    loss.backward()
    opt.step()
    return loss.item()


for i in range(a.warmup):
    step(data[i % len(data)])
t0 = time.perf_counter()
for i in range(a.steps):
    step(data[(a.warmup + i) % len(data)])
dt = time.perf_counter() - t0
segs = a.steps * B * rows
print("torch %s width %g batch %d threads %d: %d steps, %.2f seg/s (step %.2f s)" %
      (a.model, a.width, B, torch.get_num_threads(), a.steps, segs / dt, dt / a.steps))
