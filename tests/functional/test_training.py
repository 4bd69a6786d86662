"""Fast check of the training/export path with a tiny random BERT and a tokenizer built in code."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnx")
pytest.importorskip("sklearn")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))

import train_prompt_model as tpm  # noqa: E402

from vgate.detectors.prompt_model import PromptModelDetector  # noqa: E402

EXAMPLES = [
    ("a naked woman in bed", "pornographic"),
    ("nude couple having sex", "pornographic"),
    ("a bloody knife murder scene", "violent_bloody"),
    ("a soldier shot with blood everywhere", "violent_bloody"),
    ("a zombie demon in a nightmare", "terrifying"),
    ("a horror demon skull", "terrifying"),
    ("a deformed mutated face", "distorted_weird"),
    ("twisted grotesque body", "distorted_weird"),
    ("the president in nazi propaganda", "political"),
    ("hitler propaganda poster", "political"),
    ("a cat on a skateboard", "safe"),
    ("a dog running in the park", "safe"),
    ("a beautiful sunset over the sea", "safe"),
    ("a car driving on the road", "safe"),
]


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    words = sorted({w for text, _ in EXAMPLES for w in text.split()})
    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok.enable_truncation(16)
    return tok


def tiny_bert(vocab_size: int):
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    return transformers.BertModel(config, add_pooling_layer=False).eval()


def test_tiny_model_trains_exports_and_matches_onnx(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    encoder = tiny_bert(tok.get_vocab_size())
    texts = [t for t, _ in EXAMPLES]
    y = np.stack([tpm.parse_label(label) for _, label in EXAMPLES]).astype(np.int64)

    x = tpm.embed(encoder, tok, texts, [2])[2]
    head = tpm.fit_linear(x, y, C=100.0, seed=0)
    head.a, head.c = tpm.fit_platt(head.logits(x), y)
    scorer = tpm.PromptScorer(encoder, head)

    # torch module == numpy head on the same embeddings
    ids, mask = tpm.pad_batch(tok.encode_batch(texts))
    with torch.no_grad():
        torch_scores = scorer(ids, mask).numpy()
    np.testing.assert_allclose(torch_scores, head.probs(x), atol=1e-5)

    # exported graph == torch, with a batch and sequence length different from the export's
    model_dir = tmp_path / "tiny"
    model_dir.mkdir()
    tpm.export_onnx(scorer, model_dir / "model.onnx", tok.get_vocab_size())
    tok.save(str(model_dir / "tokenizer.json"))
    config = {"categories": list(tpm.CATEGORY_IDS), "max_length": 16, "model_version": "test"}
    (model_dir / "config.json").write_text(json.dumps(config))
    det = PromptModelDetector(model_dir)
    onnx_scores = det.detect(texts).scores
    assert onnx_scores.shape == (len(texts), 5) and onnx_scores.dtype == np.float32
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-4)

    # the head learned its training examples (the pipeline wires labels to the right columns)
    pred = onnx_scores.argmax(axis=1)
    unsafe = y.any(axis=1)
    assert (pred[unsafe] == y[unsafe].argmax(axis=1)).all()

    # fusion + weight-only int8 keep the scores and their batch independence
    int8_dir = tmp_path / "tiny-int8"
    shutil.copytree(model_dir, int8_dir)
    tpm.optimize_onnx(model_dir / "model.onnx", tmp_path / "fused.onnx", 2, 32)
    tpm.quantize_weights_int8(tmp_path / "fused.onnx", int8_dir / "model.onnx", min_size=64)
    int8_det = PromptModelDetector(int8_dir)
    int8_scores = int8_det.detect(texts).scores
    np.testing.assert_allclose(int8_scores, torch_scores, atol=0.05)
    alone = np.concatenate([int8_det.detect([t]).scores for t in texts])
    np.testing.assert_allclose(int8_scores, alone, atol=1e-5)
    assert (int8_dir / "model.onnx").stat().st_size < (model_dir / "model.onnx").stat().st_size


@pytest.mark.parametrize("bow", [0.0, 1.5])
def test_static_model_exports_and_matches_numpy(tmp_path: Path, bow: float) -> None:
    import train_static_model as tsm

    tok = tiny_tokenizer()
    texts = [t for t, _ in EXAMPLES]
    y = np.stack([tpm.parse_label(label) for _, label in EXAMPLES]).astype(np.int64)
    rows = tpm.Rows(texts, y, [label for _, label in EXAMPLES], ["s"] * len(texts))
    rng = np.random.default_rng(0)
    tables = {3: rng.normal(size=(tok.get_vocab_size(), 16)).astype(np.float32)}
    trainer = tsm.StaticTrainer(rows, tables, tok)
    variant = tsm.StaticVariant(layers=3, dims=12, weighting="sif", sif_a=0.05, C=100.0, bow=bow)
    idx = np.arange(len(texts))
    table, head = trainer.fit(variant, idx, seed=0, folds=2)
    assert table.shape == (tok.get_vocab_size(), 12)
    # special tokens carry no weight, so [CLS]/[SEP] do not shift every prompt alike
    assert not table[[tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")]].any()
    assert head.w.shape[1] == 12 + (tok.get_vocab_size() if bow else 0)
    expected = trainer.predict(table, head, idx, bow)

    for int8, atol in ((False, 1e-5), (True, 0.02)):
        model_dir = tmp_path / f"static-{int8}"
        model_dir.mkdir()
        tsm.export_static_onnx(table, head, model_dir / "model.onnx", int8, bow, trainer.special)
        tok.save(str(model_dir / "tokenizer.json"))
        config = {"categories": list(tpm.CATEGORY_IDS), "max_length": 16, "kind": "static"}
        (model_dir / "config.json").write_text(json.dumps(config))
        det = PromptModelDetector(model_dir)
        scores = det.detect(texts).scores
        np.testing.assert_allclose(scores, expected, atol=atol)
        alone = np.concatenate([det.detect([t]).scores for t in texts])
        np.testing.assert_allclose(scores, alone, atol=1e-6)
        empty = det.detect(["", "zzz unknown"]).scores
        assert np.isfinite(empty).all()
    # the (uncalibrated) head learned its training examples: labels reach the right columns
    raw = head.probs(trainer.features(table, idx, bow), calibrated=False)
    unsafe = y.any(axis=1)
    assert (raw[unsafe].argmax(axis=1) == y[unsafe].argmax(axis=1)).all()


def test_static_weights_and_quantization() -> None:
    import train_static_model as tsm
    from scipy import sparse

    counts = sparse.csr_matrix(np.array([[2, 1, 0, 0], [2, 0, 1, 0]], dtype=np.float32))
    w = tsm.token_weights(counts, tsm.StaticVariant(weighting="sif", sif_a=0.1), [0])
    assert w[0] == 0.0  # special
    assert w[3] == 1.0  # unseen: p = 0
    assert w[2] == w[1] < 1.0  # equally frequent
    assert (tsm.token_weights(counts, tsm.StaticVariant(weighting="none"), [0])[1:] == 1).all()
    table = np.random.default_rng(1).normal(size=(50, 7)).astype(np.float32)
    table[3] = 0.0
    q, scale = tsm.quantize_rows(table)
    assert q.dtype == np.int8 and scale.shape == (50,)
    np.testing.assert_allclose(q * scale[:, None], table, atol=float(scale.max()) / 2 + 1e-7)
    reduced = tsm.pca(table, 3)
    assert reduced.shape == (50, 3)
    np.testing.assert_allclose(reduced.mean(0), 0, atol=1e-5)
