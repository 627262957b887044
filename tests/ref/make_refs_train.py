#!/usr/bin/python3
"""Writes tests/ref/train-plateau.tsv: the learning rate after each epoch of
torch.optim.lr_scheduler.ReduceLROnPlateau (mode min, threshold 1e-4 rel),
for lib/train.c's cmr_plateau_step (tests/unit/test-train.c).

Columns: case patience factor epoch loss lr_after. Run with Debian's
/usr/bin/python3 (python3-torch); make check never runs it."""
import os

import torch

# epoch losses: improvements, plateaus, improvements below the 1e-4 relative
# threshold, a rise, and long flat runs that drop the rate more than once
LOSSES = [5.0, 4.0, 3.5, 3.5, 3.4999, 3.49999, 3.6, 3.5, 3.5, 3.5,
          3.2, 3.2, 3.2, 3.2, 3.2, 3.2, 3.2, 3.2, 3.2, 3.2,
          3.2, 3.2, 3.2, 3.2, 3.1, 3.0999, 3.0999, 3.0999, 3.0999, 3.0999,
          3.0999, 3.0999, 3.0999, 3.0999, 3.0999, 3.0999, 3.0999, 2.0, 2.0, 2.0]
CASES = [(5, 0.2), (2, 0.5), (0, 0.2)]

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train-plateau.tsv")
with open(out, "w") as f:
    f.write("case\tpatience\tfactor\tepoch\tloss\tlr_after\n")
    for c, (patience, factor) in enumerate(CASES):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.Adam([p], lr=1e-3)
        sch = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=factor, patience=patience)
        for e, loss in enumerate(LOSSES):
            sch.step(loss)
            f.write("%d\t%d\t%r\t%d\t%r\t%r\n" % (c, patience, factor, e, loss, opt.param_groups[0]["lr"]))
print("wrote", out)
