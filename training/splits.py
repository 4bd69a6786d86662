"""Evaluation splits of the labelled prompt data, shared by training and every benchmark.

- **Source families** for leave-one-family-out (LOSO): paired sources stay together (an unsafe
  set and its safe rewrites), every other source is its own family.
- **A near-duplicate-free dev split**: prompts whose word sets overlap by Jaccard >= 0.6 are one
  cluster, and whole clusters go to train or dev, so no dev prompt has a near-copy in training.

    python training/splits.py --data ../shared/data/prompts_train_v2.csv
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FAMILIES: dict[str, str] = {
    "nibbler-rewritten": "nibbler",
    "ringabell-adv": "ringabell",
    "copro2-safe": "copro2",
    "overt-benign": "overt",
    "xsafe-genbreak": "xsafe",
    "xsafe-pgj": "xsafe",
}
"""Source tag -> family, for the sources that are paired with another; others are their own."""
GENERATED = "generated-nonprompt"
"""Source tag of the generated hard negatives (training/hard_negatives.py): never held out."""
JACCARD = 0.6
WORD = re.compile(r"\w+")


def family(source: str) -> str:
    """The LOSO family of a source tag (``ringabell-adv`` -> ``ringabell``)."""
    return FAMILIES.get(source, source)


def families(sources: Sequence[str]) -> np.ndarray:
    return np.array([family(s) for s in sources])


def loso_folds(sources: Sequence[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(family, train_idx, test_idx)`` per held-out family (generated rows always train)."""
    fam = families(sources)
    return [
        (f, np.flatnonzero(fam != f), np.flatnonzero(fam == f))
        for f in sorted(set(fam.tolist()) - {GENERATED})
    ]


def word_sets(texts: Sequence[str]) -> list[frozenset[str]]:
    return [frozenset(WORD.findall(t.lower())) for t in texts]


def near_duplicate_clusters(texts: Sequence[str], threshold: float = JACCARD) -> np.ndarray:
    """Cluster id per text: connected components of the "word-set Jaccard >= threshold" graph.

    Exact: intersections come from a sparse word-incidence product, in row blocks.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    sets = word_sets(texts)
    vocab: dict[str, int] = {}
    indices = [vocab.setdefault(w, len(vocab)) for s in sets for w in s]
    indptr = np.cumsum([0] + [len(s) for s in sets])
    n = len(sets)
    inc = sparse.csr_matrix(
        (np.ones(len(indices), np.float32), indices, indptr), shape=(n, max(len(vocab), 1))
    )
    size = np.asarray(inc.sum(1)).ravel()
    inc_t = inc.T.tocsc()
    rows, cols = [], []
    for start in range(0, n, 2000):
        block = (inc[start : start + 2000] @ inc_t).tocoo()
        i, j, inter = block.row + start, block.col, block.data
        keep = (i < j) & (inter >= threshold * (size[i] + size[j] - inter) - 1e-6)
        rows.append(i[keep])
        cols.append(j[keep])
    # identical word sets (including empty ones) are near-duplicates too
    first: dict[frozenset[str], int] = {}
    same = [(first.setdefault(s, k), k) for k, s in enumerate(sets) if first.get(s, k) != k]
    if same:
        a, b = zip(*same, strict=True)
        rows.append(np.array(a))
        cols.append(np.array(b))
    r = np.concatenate(rows) if rows else np.zeros(0, int)
    c = np.concatenate(cols) if cols else np.zeros(0, int)
    graph = sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def near_dup_free_split(
    texts: Sequence[str],
    labels: Sequence[str],
    fraction: float = 0.2,
    seed: int = 0,
    sources: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Train/dev indices with whole near-duplicate clusters on one side.

    Clusters are shuffled (seeded) and, per stratum (a cluster's most common label string, and
    source family when ``sources`` is given), go to dev until the stratum's dev share reaches
    ``fraction``. Rows of the generated source always go to train.
    """
    fam = families(sources) if sources is not None else np.array([""] * len(texts))
    real = np.flatnonzero(fam != GENERATED)  # generated rows always train, never shift the split
    clusters = near_duplicate_clusters([texts[i] for i in real])
    members: dict[int, list[int]] = {}
    for i, c in zip(real, clusters, strict=True):
        members.setdefault(int(c), []).append(int(i))
    stratum = {
        c: (Counter(labels[i] for i in idx).most_common(1)[0][0], fam[idx[0]])
        for c, idx in members.items()
    }
    totals: Counter = Counter()
    for c, idx in members.items():
        totals[stratum[c]] += len(idx)
    taken: Counter = Counter()
    rng = np.random.default_rng(seed)
    order = list(members)
    rng.shuffle(order)
    dev: list[int] = []
    for c in order:
        key, idx = stratum[c], members[c]
        if taken[key] + len(idx) / 2 <= fraction * totals[key]:
            taken[key] += len(idx)
            dev.extend(idx)
    dev_idx = np.sort(np.array(dev, dtype=int))
    train_idx = np.setdiff1d(np.arange(len(texts)), dev_idx)
    return train_idx, dev_idx


def max_jaccard_to(texts_a: Sequence[str], texts_b: Sequence[str]) -> np.ndarray:
    """For each text of ``a``, the largest word-set Jaccard with any text of ``b``."""
    sets_a, sets_b = word_sets(texts_a), word_sets(texts_b)
    index: dict[str, list[int]] = {}
    for j, s in enumerate(sets_b):
        for w in s:
            index.setdefault(w, []).append(j)
    out = np.zeros(len(sets_a))
    for i, s in enumerate(sets_a):
        counts: Counter = Counter()
        for w in s:
            counts.update(index.get(w, ()))
        out[i] = max((k / (len(s) + len(sets_b[j]) - k) for j, k in counts.items()), default=0.0)
    return out


def write_sample(data: Path, dev_idx: np.ndarray, n: int, seed: int, out: Path) -> None:
    """A seeded ``n``-row sample of the dev rows (every column of ``data``), in file order."""
    import csv

    with open(data, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames or [], list(reader)
    pick = np.sort(
        np.random.default_rng(seed).choice(dev_idx, size=min(n, len(dev_idx)), replace=False)
    )
    with open(out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows[i] for i in pick)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import train_prompt_model as tpm

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dev-fraction", type=float, default=0.2)
    p.add_argument("--sample", type=int, default=0, help="write a sample of N dev rows")
    p.add_argument("--sample-out", type=Path, default=Path("tests/data/prompts_dev_sample.csv"))
    args = p.parse_args(argv)
    rows = tpm.load_rows(args.data)
    clusters = near_duplicate_clusters(rows.texts)
    tr, dv = near_dup_free_split(
        rows.texts, rows.labels, args.dev_fraction, args.seed, rows.sources
    )
    sizes = Counter(clusters.tolist())
    print(f"{len(rows.texts)} rows, {len(sizes)} clusters (largest {max(sizes.values())})")
    print(f"train {len(tr)}, dev {len(dv)}")
    near = max_jaccard_to([rows.texts[i] for i in dv], [rows.texts[i] for i in tr])
    print(f"dev rows with a Jaccard >= 0.6 / 0.8 match in train: {(near >= 0.6).sum()} / "
          f"{(near >= 0.8).sum()}")  # fmt: skip
    for f, _, te in loso_folds(rows.sources):
        print(f"  family {f:16s} {len(te):5d} rows")
    if args.sample:
        write_sample(args.data, dv, args.sample, args.seed, args.sample_out)
        print(f"wrote {args.sample_out} ({args.sample} dev rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
