#!/usr/bin/python3
"""Reference fixtures for cmr-train, from PyTorch:

tests/ref/train-plateau.tsv: the learning rate after each epoch of
torch.optim.lr_scheduler.ReduceLROnPlateau (mode min, threshold 1e-4 rel),
for lib/train.c's cmr_train_plateau_step (tests/unit/test-train.c). Columns: case
patience factor epoch loss lr_after.

tests/ref/train-torch-steps.tsv (only when given a build directory, whose
cmr-model and tests/tools/cmr-mkpairs it runs): see below.

  /usr/bin/python3 tests/ref/make_refs_train.py [BUILDDIR]

Run with Debian's /usr/bin/python3 (python3-torch, python3-msgpack); make
check never runs it."""
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

# ---- training steps against PyTorch (needs a build directory) ----
# tests/ref/train-torch-steps.tsv: the batch losses of cmr-train's first steps
# as PyTorch computes them from the same initial weights (cmr-model init,
# exported) on the same stream (tests/tools/cmr-mkpairs): cmr_models.py's Encoder,
# MultiEncoder and MelCPC in train() mode, InfoNCE with in-batch negatives,
# torch.optim.Adam(lr 1e-3). tests/cli/055-train.bats compares cmr-train's
# log with it. Usage: make_refs_train.py BUILDDIR
import subprocess
import sys
import tempfile

if len(sys.argv) > 1:
    import msgpack
    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    import cmr_models as models  # tests/ref/cmr_models.py, the project's reference

    build = sys.argv[1]
    tmp = tempfile.mkdtemp()
    rows_out = []
    for kind, model, rows, extra in (("encoder", "siamese", 2, []), ("multi", "multi", 2, []),
                                     ("cpc", "cpc", 3, ["--context", "2", "--steps", "1"])):
        stream = os.path.join(tmp, kind + ".cmr")
        with open(stream, "wb") as f:
            subprocess.run([build + "/tests/tools/cmr-mkpairs", "--tracks", "8", "--seed", "1",
                            "--kind", "pair" if rows == 2 else "sequence", "--rows", str(rows)],
                           stdout=f, check=True)
        init = os.path.join(tmp, kind + ".init")
        subprocess.run([build + "/filters/cmr-model", "init", "-q", "--kind", kind, "--width", "0.0625",
                        "--seed", "1"] + extra + [init], check=True)
        subprocess.run([build + "/filters/cmr-model", "export", init, init + ".st"], check=True)
        st, meta = models.load_safetensors(init + ".st")
        if kind == "encoder":
            net = models.Encoder(0.0625)
        elif kind == "multi":
            net = models.MultiEncoder(0.0625)
        else:
            net = models.MelCPC(0.0625, k=1)
        net.load_state_dict(st)
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        X = [np.frombuffer(fr["data"], dtype="<f4").reshape(fr["shape"])
             for fr in msgpack.Unpacker(open(stream, "rb"), raw=False, max_buffer_size=1 << 30)
             if fr["t"] == "tensor"]
        X = torch.tensor(np.stack(X)).unsqueeze(2)  # (8, rows, 1, 188, 96)
        for step in range(2):
            x = X[4 * step:4 * step + 4]
            opt.zero_grad()
            if kind == "encoder":
                z = net(torch.cat([x[:, 0], x[:, 1]]))
                loss = models.info_nce(z[:4], z[4:])
            elif kind == "multi":
                lv = net.levels(torch.cat([x[:, 0], x[:, 1]]))
                loss = models.multi_info_nce([l[:4] for l in lv], [l[4:] for l in lv])
            else:
                loss = net.loss(x, 2)
            loss.backward()
            opt.step()
            rows_out.append((model, step + 1, loss.item()))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train-torch-steps.tsv")
    with open(out, "w") as f:
        f.write("model\tstep\tloss\n")
        for m, s, l in rows_out:
            f.write("%s\t%d\t%.9g\n" % (m, s, l))
    print("wrote", out)
