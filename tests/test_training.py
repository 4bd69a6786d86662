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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

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
