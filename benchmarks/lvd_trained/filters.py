"""The filters compared with LVD, and the metrics every filter is scored with.

Every filter gives, per prompt, whether it stops the prompt and how many denoising steps the
prompt ran: a prompt filter stops before the first step (0 steps), an output filter after the
last one, LVD at its stop step. Ground truth is what the generated video shows.

Prompt filters, all trained on the same set-A prompts and their video-content labels:

- ``tfidf_filter``: TF-IDF of word 1-2-grams + logistic regression;
- ``minilm_filter``: vgate's prompt model retrained on set A: the shipped ``prompt-minilm``
  recipe (all-MiniLM-L6-v2 cut to 3 layers, mean-pooled embedding, logistic regression C=16;
  ``training/train_prompt_model.py``) with its head fitted on set A;
- ``vgate_gate_filter``: vgate's shipped prompt gate as it is (rules + default model), which
  never saw these words.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

TRAINING = Path(__file__).resolve().parents[2] / "training"


def filter_metrics(
    flagged: np.ndarray, steps_run: np.ndarray, unsafe: np.ndarray, schedule: int
) -> dict[str, Any]:
    """Accuracy, unsafe recall, false stops and the unsafe prompts' denoising steps saved (also
    as a factor: steps of plain generation / steps run) of one filter on one set of prompts."""
    flagged, unsafe = np.asarray(flagged, bool), np.asarray(unsafe, bool)
    steps_run = np.asarray(steps_run, np.int64)
    n_unsafe, n_safe = int(unsafe.sum()), int((~unsafe).sum())
    plain = schedule * n_unsafe
    ran = int(steps_run[unsafe].sum())
    return {
        "n": len(unsafe),
        "n_unsafe": n_unsafe,
        "accuracy": float((flagged == unsafe).mean()) if len(unsafe) else None,
        "unsafe_recall": float(flagged[unsafe].mean()) if n_unsafe else None,
        "false_stops": int(flagged[~unsafe].sum()),
        "false_stop_rate": float(flagged[~unsafe].mean()) if n_safe else None,
        "unsafe_steps_saved": 1 - ran / plain if plain else None,
        "unsafe_speedup": plain / ran if ran else None,
    }


def majority_baseline(unsafe: np.ndarray) -> float:
    """Accuracy of always answering the commoner of unsafe/safe."""
    share = float(np.mean(unsafe))
    return max(share, 1 - share)


def tfidf_filter(
    train_texts: Sequence[str], train_unsafe: np.ndarray, texts: Sequence[str]
) -> np.ndarray:
    """TF-IDF + logistic regression fitted on (``train_texts``, ``train_unsafe``)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    clf = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(C=10.0, max_iter=1000)
    )
    clf.fit(list(train_texts), np.asarray(train_unsafe, bool))
    return clf.predict(list(texts)).astype(bool)


def minilm_embeddings(texts: Sequence[str]) -> np.ndarray:
    """The shipped prompt-minilm model's sentence embeddings (3 layers of all-MiniLM-L6-v2,
    mean-pooled, L2-normalised), via training/train_prompt_model.py; offline."""
    import json

    if str(TRAINING) not in sys.path:
        sys.path.insert(0, str(TRAINING))
    import train_prompt_model as tpm

    config = Path(__file__).resolve().parents[2] / "models" / "prompt-minilm" / "config.json"
    layers = int(json.loads(config.read_text(encoding="utf-8"))["encoder_layers"])
    tokenizer = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json")
    encoder = tpm.load_encoder(layers)
    return tpm.embed(encoder, tokenizer, list(texts), [layers])[layers]


def minilm_filter(
    train_texts: Sequence[str], train_unsafe: np.ndarray, texts: Sequence[str]
) -> np.ndarray:
    """vgate's prompt-minilm recipe with its logistic-regression head (C=16) fitted on set A."""
    from sklearn.linear_model import LogisticRegression

    x = minilm_embeddings([*train_texts, *texts])
    head = LogisticRegression(C=16.0, max_iter=2000)
    head.fit(x[: len(train_texts)], np.asarray(train_unsafe, bool))
    return head.predict(x[len(train_texts) :]).astype(bool)


def vgate_gate_filter(policy: Path, texts: Sequence[str]) -> np.ndarray:
    """vgate's prompt gate (``vgate scan``) under ``policy``: flagged = a block decision."""
    from vgate.core.findings import BLOCK, Record
    from vgate.core.gate import Gate

    verdicts = Gate(policy).judge([Record(t, "prompts.csv", i + 1) for i, t in enumerate(texts)])
    return np.array([v.decision == BLOCK for v in verdicts], dtype=bool)
