"""The evaluation splits (training/splits.py) and generated hard negatives."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))

import hard_negatives
import splits


def test_jaccard_threshold_groups_near_copies_only() -> None:
    texts = [
        "a red car on a wet road at night",  # 0
        "a red car on a wet road at dusk",  # 1: 7 shared of 9 words -> 0.78, same cluster
        "a cat sleeping on a sofa",  # 2
        "a cat sleeping on a green sofa today",  # 3: 5 of 7 -> 0.71
        "a cat sleeping on a rug by the door",  # 4: with 2, 4 of 9 -> 0.44
        "A RED car, on a wet road at night!",  # 5: same word set as 0
    ]
    c = splits.near_duplicate_clusters(texts)
    assert c[0] == c[1] == c[5]
    assert c[2] == c[3]
    assert len({c[0], c[2], c[4]}) == 3


def test_split_keeps_clusters_whole_and_generated_rows_in_train() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    base = [" ".join(rng.choice(words, 8, replace=False)) for _ in range(200)]
    texts = base + [t + " extra" for t in base[:100]]  # near-copies of the first 100
    texts += ["numpy==1.26", "torch>=2"]
    labels = ["safe" if i % 2 else "violent_bloody" for i in range(len(texts))]
    sources = ["a" if i % 3 else "b" for i in range(len(texts) - 2)]
    sources += [splits.GENERATED] * 2
    tr, dv = splits.near_dup_free_split(texts, labels, 0.2, 0, sources)
    assert len(np.intersect1d(tr, dv)) == 0 and len(tr) + len(dv) == len(texts)
    assert 0.1 < len(dv) / len(texts) < 0.3
    assert {len(texts) - 2, len(texts) - 1} <= set(tr.tolist())
    near = splits.max_jaccard_to([texts[i] for i in dv], [texts[i] for i in tr])
    assert (near < splits.JACCARD).all()
    # the same rows without the generated ones give the same dev split
    _, dv2 = splits.near_dup_free_split(texts[:-2], labels[:-2], 0.2, 0, sources[:-2])
    assert dv2.tolist() == dv.tolist()


def test_families_pair_sources_and_never_hold_out_generated_rows() -> None:
    sources = ["copro2", "copro2-safe", "vbench", "ringabell-adv", "ringabell", splits.GENERATED]
    folds = {f: (tr.tolist(), te.tolist()) for f, tr, te in splits.loso_folds(sources)}
    assert set(folds) == {"copro2", "vbench", "ringabell"}
    assert folds["copro2"][1] == [0, 1]
    assert folds["ringabell"][1] == [3, 4]
    assert all(5 in tr for tr, _ in folds.values())


def test_hard_negatives_are_deterministic_and_measurement_is_disjoint() -> None:
    train = hard_negatives.training_rows(200)
    assert train == hard_negatives.training_rows(200) and len(set(train)) == 200
    measured = hard_negatives.measurement_rows(100, exclude=set(train))
    kinds = {k for _, k in measured}
    assert not {t for t, _ in measured} & set(train)
    assert {"shell_command", "log_line"} <= kinds  # kinds training never sees
    assert any("==" in t or ">=" in t for t in train)
