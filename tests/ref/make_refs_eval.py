#!/usr/bin/python3
"""Reference fixtures for cmr's evaluation code (summary, probe, knn).

Run offline with Debian's python3 (numpy, scikit-learn 1.2, msgpack):
    /usr/bin/python3 tests/ref/make_refs_eval.py            # rewrites tests/ref/eval/*
    /usr/bin/python3 tests/ref/make_refs_eval.py --bench DIR  # larger probe set for a timing
                                                              # and agreement run, not committed
Everything is seeded; a rerun writes identical files. make check never runs this.

Files (tests/ref/eval/):
  metrics.txt           ranking and classification cases with sklearn's roc_auc_score,
                        average_precision_score, accuracy_score, f1_score(average='macro')
  summary.txt           rows of a few tracks and numpy's mean / std (ddof=0)
  summary-in.msgpack    the same rows as a frame stream (embedding and mfcc frames)
  probe-genre.msgpack   "summary" frames with meta split/label (4 classes)
  probe-genre.sklearn.txt   sklearn LinearSVC / LogisticRegression(liblinear) on it
  probe-tags.msgpack    "summary" frames with meta split/tags (6 tags)
  probe-tags.sklearn.txt    sklearn per-tag LogisticRegression(liblinear) on it
  knn.txt               embeddings + playlists + results of the numpy ItemKNN reference
  knn.msgpack           the same embeddings as "summary" frames with meta playlists
  knn-expected.txt      the JSON lines cmr-knn prints for each configuration
  knn-playlists.tsv     the same playlists as a file (cmr-knn --playlists), plus a
                        track that is not in the stream
  summary-expected.txt  cmr-summarize --text -n 3 on summary-in.msgpack (numpy values)
  bad-*.msgpack         small broken streams for the command-line tests: a NaN
                        (bad-nan), a rank-3 frame (bad-rank3), vectors of two lengths
                        (bad-dims), a track that failed upstream (bad-failed)
"""
import os
import sys

import msgpack
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix,
                             f1_score, roc_auc_score)
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "eval")

C_GRID = [10.0 ** e for e in range(-4, 5)]  # cmr-probe's default grid
TOL = 1e-4                                   # cmr-probe's default --tol
M64 = (1 << 64) - 1


# ---------------------------------------------------------------- frames
def header(program="make_refs_eval.py"):
    return {"t": "header", "magic": "CMRF", "version": 1,
            "provenance": [{"program": program, "version": "0", "params": {}}]}


def tensor(kind, track, index, arr, meta):
    arr = np.ascontiguousarray(arr, dtype="<f4")
    return {"t": "tensor", "kind": kind, "track": track, "index": index, "offset": 0,
            "rate": 16000.0, "shape": list(arr.shape), "dtype": "f32",
            "data": arr.tobytes(), "meta": meta}


def end(track, frames):
    return {"t": "end", "track": track, "frames": frames}


def write_stream(path, frames):
    with open(path, "wb") as f:
        for fr in frames:
            f.write(msgpack.packb(fr, use_bin_type=True))


def summary_stream(path, ids, X, metas):
    frames = [header()]
    for tid, x, meta in zip(ids, X, metas):
        frames.append(tensor("summary", tid, 0, x, meta))
        frames.append(end(tid, 1))
    write_stream(path, frames)


# ---------------------------------------------------------------- cmr's RNG (lib/util/rng.c)
def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return x, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Rng:
    def __init__(self, seed):
        x = seed & M64
        self.s = []
        for _ in range(4):
            x, z = splitmix64(x)
            self.s.append(z)

    def u64(self):
        s = self.s
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        limit = M64 - (M64 % n)
        while True:
            x = self.u64()
            if x < limit:
                return x % n

    def split(self, stream):
        s = self.s
        x = s[0] ^ rotl(s[1], 13) ^ rotl(s[2], 29) ^ rotl(s[3], 47)
        _, z = splitmix64(stream & M64)
        r = Rng.__new__(Rng)
        Rng.__init__(r, x ^ z)
        return r


# ---------------------------------------------------------------- knn reference
def seqsum(a):
    """left-to-right sum along the last axis (the C loop's order, bit for bit)"""
    return np.cumsum(a, axis=-1)[..., -1]


def knn_reference(E, playlists, queries=3, negatives=-1, shuffle=False, seed=0, k=10):
    """numpy ItemKNN-CBF, the definition of lib/eval/knn.h, draw for draw"""
    E = E.astype(np.float64)
    n = E.shape[0]
    ss = seqsum(E * E)
    inv = np.where(ss > 0, 1.0 / np.sqrt(np.where(ss > 0, ss, 1.0)), 0.0)
    U = E * inv[:, None]
    base = Rng(seed)
    items = hits = evaluated = skipped = 0
    mpr_sum = 0.0
    for p, members in enumerate(playlists):
        m = len(members)
        if m <= queries:
            skipped += 1
            continue
        order = list(members)
        r = base.split(p)
        if shuffle:
            for i in range(m - 1, 0, -1):
                j = r.below(i + 1)
                order[i], order[j] = order[j], order[i]
        qmean = np.zeros(E.shape[1])
        for q in order[:queries]:
            qmean = qmean + U[q]
        qmean = qmean / queries
        score = seqsum(U * qmean[None, :])
        inside = set(members)
        pool = [c for c in range(n) if c not in inside]
        for it in order[queries:]:
            s = score[it]
            if negatives < 0:
                ge = int(np.sum(score[pool] >= s))
                nneg = len(pool)
            else:
                ge = 0
                nneg = negatives
                for i in range(negatives):
                    j = i + r.below(len(pool) - i)
                    pool[i], pool[j] = pool[j], pool[i]
                    ge += score[pool[i]] >= s
            rank = 1 + ge
            items += 1
            hits += rank <= k
            mpr_sum += (rank - 1) / nneg
        evaluated += 1
    return dict(hr10=hits / items, mpr=mpr_sum / items, playlists=evaluated,
                skipped=skipped, items=items, hits=hits)


def knn_json(res, queries, negatives, shuffle, seed):
    neg = '"all"' if negatives < 0 else str(negatives)
    return ('{"hr10":%.10g,"mpr":%.10g,"playlists":%d,"skipped":%d,"items":%d,"hits":%d,'
            '"queries":%d,"negatives":%s,"shuffle":%s,"seed":%d}'
            % (res["hr10"], res["mpr"], res["playlists"], res["skipped"], res["items"],
               res["hits"], queries, neg, "true" if shuffle else "false", seed))


KNN_CONFIGS = [  # (queries, negatives, shuffle, seed)
    (3, -1, False, 0),
    (3, -1, True, 7),
    (3, 20, False, 0),   # (cmr-knn --seed both seeds and shuffles: no seed without shuffle)
    (3, 20, True, 5),
    (2, 30, False, 0),
]


def make_knn():
    rng = np.random.default_rng(20240501)
    n, d, n_clusters = 60, 8, 5
    centres = rng.normal(size=(n_clusters, d))
    cluster = np.arange(n) % n_clusters
    E = (centres[cluster] + 0.9 * rng.normal(size=(n, d))).astype(np.float32)
    E[17] = E[5]          # an exact duplicate (a tie with its twin)
    E[23] = 0.0           # a zero vector (cosine 0 with everything)
    ids = ["t%02d" % i for i in range(n)]
    playlists = []
    for p in range(12):
        c = p % n_clusters
        pool = np.flatnonzero(cluster == c)
        size = 4 + p % 6
        mem = sorted(rng.choice(pool, size=min(size, len(pool)), replace=False).tolist())
        if p == 3:        # one foreign track in a playlist
            mem = sorted(set(mem) | {int((pool[0] + 1) % n)})
        playlists.append(mem)
    playlists.append([1, 6, 11])          # too short: skipped
    playlists.append([2, 8, 12, 17, 23])  # items: 17 (ties with its twin 5 outside), 23 (zero)
    # members in stream order (= track index order), as cmr-knn sees them
    playlists = [sorted(set(int(t) for t in mem)) for mem in playlists]
    names = ["pl%02d" % p for p in range(len(playlists))]
    member_of = [[] for _ in range(n)]
    for name, mem in zip(names, playlists):
        for t in mem:
            member_of[t].append(name)
    metas = [{"playlists": ",".join(member_of[i])} for i in range(n)]
    summary_stream(os.path.join(OUT, "knn.msgpack"), ids, E, metas)

    lines = ["cmr-eval-ref knn 1", "%d %d" % (n, d)]
    for row in E:
        lines.append(" ".join("%.9g" % v for v in row))
    lines.append("%d" % len(playlists))
    for mem in playlists:
        lines.append(" ".join(str(v) for v in [len(mem)] + list(mem)))
    expected = []
    lines.append("%d" % len(KNN_CONFIGS))
    for q, neg, sh, seed in KNN_CONFIGS:
        res = knn_reference(E, playlists, q, neg, sh, seed)
        lines.append("%d %d %d %d %d %d %d %d %.17g %.17g"
                     % (q, neg, int(sh), seed, res["playlists"], res["skipped"], res["items"],
                        res["hits"], res["hr10"], res["mpr"]))
        expected.append(knn_json(res, q, neg, sh, seed))
    with open(os.path.join(OUT, "knn-playlists.tsv"), "w") as f:
        f.write("path\ttrack\tplaylists\n")
        for i in range(n):
            f.write("/nonexistent/%s.flac\t%s\t%s\n" % (ids[i], ids[i], metas[i]["playlists"]))
        f.write("/nonexistent/x.flac\tnot-in-stream\tpl00,pl01\n")
    with open(os.path.join(OUT, "knn.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(OUT, "knn-expected.txt"), "w") as f:
        f.write("\n".join(expected) + "\n")
    for e in expected:
        print("knn:", e)


# ---------------------------------------------------------------- metrics
def make_metrics():
    rng = np.random.default_rng(7)
    lines = ["cmr-eval-ref metrics 1"]
    cases = []
    for n, tie_levels in [(10, 0), (50, 5), (200, 0), (200, 8), (7, 2)]:
        lab = (rng.random(n) < 0.35).astype(np.uint8)
        lab[0], lab[1] = 1, 0
        if tie_levels:
            s = rng.integers(0, tie_levels, n).astype(np.float64) + 0.5 * lab
        else:
            s = rng.normal(size=n) + lab
        cases.append((s, lab))
    for s, lab in cases:
        lines.append("rank %d %.17g %.17g" % (len(s), roc_auc_score(lab, s),
                                              average_precision_score(lab, s)))
        lines += ["%.17g %d" % (a, b) for a, b in zip(s, lab)]
    for n, k, absent in [(30, 3, False), (100, 5, True), (12, 4, False)]:
        y = rng.integers(0, k, n)
        pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))
        if absent:  # class k-1 neither true nor predicted: sklearn leaves it out of the macro
            y[y == k - 1] = 0
            pred[pred == k - 1] = 1
        lines.append("class %d %d %.17g %.17g" % (n, k, accuracy_score(y, pred),
                                                  f1_score(y, pred, average="macro")))
        lines += ["%d %d" % (a, b) for a, b in zip(y, pred)]
    with open(os.path.join(OUT, "metrics.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------- summary
def make_summary():
    rng = np.random.default_rng(3)
    frames = [header()]
    lines = ["cmr-eval-ref summary 1"]
    expected_text = []
    tracks = [("a", "embedding", [(1, 5)] * 4), ("b", "embedding", [(1, 5)]),
              ("c", "mfcc", [(7, 5), (3, 5), (11, 5)]), ("d", "embedding", [(1, 5)] * 2)]
    for tid, kind, shapes in tracks:
        rows = []
        for idx, (t, dd) in enumerate(shapes):
            x = (rng.normal(size=(t, dd)) * (1 + idx) + 100 * (tid == "d")).astype(np.float32)
            rows.append(x)
            frames.append(tensor(kind, tid, idx, x if kind == "mfcc" else x[0],
                                 {"split": "training", "label": "L" + tid}))
        frames.append(end(tid, len(shapes)))
        R = np.concatenate(rows).astype(np.float64)
        want = np.concatenate([R.mean(0), R.std(0)]).astype(np.float32)
        lines.append("%s %d %d" % (tid, R.shape[0], R.shape[1]))
        lines += [" ".join("%.9g" % v for v in r) for r in R.astype(np.float32)]
        lines.append(" ".join("%.9g" % v for v in want))
        expected_text.append("%s\t%d\t%d\t%s" % (tid, 2 * R.shape[1], R.shape[0],
                                                 ",".join("%.6g" % v for v in want[:3])))
    write_stream(os.path.join(OUT, "summary-in.msgpack"), frames)
    with open(os.path.join(OUT, "summary-expected.txt"), "w") as f:
        f.write("\n".join(expected_text) + "\n")
    with open(os.path.join(OUT, "summary.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------- probes
def sklearn_probe(X, split, y):
    """the protocol of lib/eval/probe.h with scikit-learn; returns text lines"""
    tr, va, te = split == "training", split == "validation", split == "test"
    sc = StandardScaler().fit(X[tr])
    Z = sc.transform(X)
    out = []
    for name in ["svm", "logreg"]:
        best = None
        for C in C_GRID:
            if name == "svm":
                clf = LinearSVC(C=C, loss="squared_hinge", dual=True, tol=TOL, max_iter=1000,
                                random_state=0)
            else:
                clf = LogisticRegression(C=C, solver="liblinear", tol=TOL, max_iter=1000)
            clf.fit(Z[tr], y[tr])
            acc = accuracy_score(y[va], clf.predict(Z[va]))
            if best is None or acc > best[0]:
                best = (acc, C, clf)
        pred = best[2].predict(Z[te])
        out.append("%s %.17g %.17g %.17g %.17g" % (name, best[1], best[0], accuracy_score(y[te], pred),
                                                  f1_score(y[te], pred, average="macro")))
    return out


def sklearn_tags(X, split, Y):
    tr, va, te = split == "training", split == "validation", split == "test"
    sc = StandardScaler().fit(X[tr])
    Z = sc.transform(X)
    T = Y.shape[1]
    fit_ok = [0 < Y[tr, t].sum() < tr.sum() for t in range(T)]

    def macro(models, rows):
        rocs, aps = [], []
        for t in range(T):
            if models[t] is None or len(set(Y[rows, t])) < 2:
                continue
            s = models[t].decision_function(Z[rows])
            rocs.append(roc_auc_score(Y[rows, t], s))
            aps.append(average_precision_score(Y[rows, t], s))
        return (np.mean(rocs) if rocs else 0.0), (np.mean(aps) if aps else 0.0), len(rocs)

    best = None
    for C in C_GRID:
        models = [LogisticRegression(C=C, solver="liblinear", tol=TOL, max_iter=1000).fit(Z[tr], Y[tr, t])
                  if fit_ok[t] else None for t in range(T)]
        v = macro(models, va)[0]
        if best is None or v > best[0]:
            best = (v, C, models)
    roc, ap, used = macro(best[2], te)
    return ["logreg %.17g %.17g %.17g %.17g %d" % (best[1], best[0], roc, ap, used)]


def make_genre(n_per, d, k, seed, sep):
    rng = np.random.default_rng(seed)
    n = n_per * k
    y = np.repeat(np.arange(k), n_per)
    centres = rng.normal(size=(k, d)) * sep
    X = centres[y] + rng.normal(size=(n, d))
    X *= rng.uniform(0.01, 100, size=d)   # wildly different scales: standardisation matters
    X += rng.normal(size=d) * 50
    X[:, 3] = 2.5                         # a constant feature (scale 1)
    u = rng.random(n)
    split = np.where(u < 0.6, "training", np.where(u < 0.8, "validation", "test"))
    return X.astype(np.float32), split, y


def make_bad():
    meta = {"split": "training", "label": "x"}
    v = np.arange(4, dtype=np.float32)
    nan = v.copy()
    nan[2] = np.nan
    write_stream(os.path.join(OUT, "bad-nan.msgpack"),
                 [header(), tensor("embedding", "a", 0, v, meta), end("a", 1),
                  tensor("embedding", "b", 0, nan, meta), end("b", 1)])
    write_stream(os.path.join(OUT, "bad-rank3.msgpack"),
                 [header(), tensor("sequence", "a", 0, np.zeros((2, 3, 4), np.float32), meta), end("a", 1)])
    write_stream(os.path.join(OUT, "bad-dims.msgpack"),
                 [header(), tensor("embedding", "a", 0, v, meta), end("a", 1),
                  tensor("embedding", "b", 0, v[:3], meta), end("b", 1)])
    failed = end("b", 1)
    failed["error"] = "cannot decode b.mp3"
    write_stream(os.path.join(OUT, "bad-failed.msgpack"),
                 [header(), tensor("embedding", "a", 0, v, meta), end("a", 1),
                  tensor("embedding", "b", 0, v, meta), failed,
                  tensor("embedding", "c", 0, v + 1, meta), end("c", 1)])


def make_probe():
    names = ["blues", "classical", "hiphop", "rock"]
    X, split, y = make_genre(100, 24, 4, 11, 0.35)
    split = split.astype(object)
    # the "train"/"valid" spellings are accepted too
    split[(split == "training") & (np.arange(len(y)) % 7 == 0)] = "train"
    split[(split == "validation") & (np.arange(len(y)) % 5 == 0)] = "valid"
    ids = ["g%03d" % i for i in range(len(y))]
    metas = [{"split": s, "label": names[c]} for s, c in zip(split, y)]
    summary_stream(os.path.join(OUT, "probe-genre.msgpack"), ids, X, metas)
    canon = np.array([{"train": "training", "valid": "validation"}.get(s, s) for s in split])
    lines = ["cmr-eval-ref probe 1"] + sklearn_probe(X.astype(np.float64), canon, y)
    with open(os.path.join(OUT, "probe-genre.sklearn.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("probe-genre:", lines[1:])

    rng = np.random.default_rng(5)
    n, d, T = 300, 16, 6
    Xt = rng.normal(size=(n, d))
    W = rng.normal(size=(d, T))
    logits = Xt @ W * 0.6 + rng.normal(size=(n, T)) - 1.0
    Y = (logits > 0).astype(np.uint8)
    u = rng.random(n)
    tsplit = np.where(u < 0.6, "training", np.where(u < 0.8, "validation", "test"))
    Y[tsplit == "test", 5] = 0            # tag 5: no positive test row, not scored
    tag_names = ["rock", "pop", "female vocalists", "jazz", "80s", "sad"]
    metas = [{"split": s, "tags": ",".join(tag_names[t] for t in range(T) if Y[i, t])}
             for i, s in enumerate(tsplit)]
    summary_stream(os.path.join(OUT, "probe-tags.msgpack"), ["m%03d" % i for i in range(n)],
                   Xt.astype(np.float32), metas)
    lines = ["cmr-eval-ref tags 1"] + sklearn_tags(Xt.astype(np.float32).astype(np.float64), tsplit, Y)
    with open(os.path.join(OUT, "probe-tags.sklearn.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("probe-tags:", lines[1:])


def bench(outdir):
    """FMA-sized genre set (8 x 1000 tracks, 256-d) for an agreement and timing run"""
    os.makedirs(outdir, exist_ok=True)
    names = ["g%d" % i for i in range(8)]
    X, split, y = make_genre(1000, 256, 8, 99, 0.12)
    metas = [{"split": s, "label": names[c]} for s, c in zip(split, y)]
    summary_stream(os.path.join(outdir, "bench-genre.msgpack"), ["b%05d" % i for i in range(len(y))],
                   X, metas)
    import time
    t = time.time()
    lines = sklearn_probe(X.astype(np.float64), split, y)
    print("\n".join(lines))
    print("sklearn seconds: %.1f" % (time.time() - t))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--bench":
        bench(sys.argv[2])
        sys.exit(0)
    os.makedirs(OUT, exist_ok=True)
    make_metrics()
    make_summary()
    make_knn()
    make_probe()
    make_bad()
