"""Scan prompt sets that outgrow one machine with Ray Data.

::

    import ray
    from vgate.integrations.ray import scan_dataset

    ds = ray.data.read_parquet("s3://bucket/prompts/")
    scanned = scan_dataset(ds, column="prompt", policy="default", concurrency=8)
    scanned.write_parquet("s3://bucket/prompts-scanned/")

``scan_dataset`` adds ``score_<category>`` (float32, five columns), ``decision`` (block, warn,
allow or error), ``categories`` (the flagged categories), ``reasons``, ``suppressed_by`` and
``error`` to every row, keeping the input columns. It is one ``map_batches`` over a pool of Ray
actors: each actor unpickles the :class:`~vgate.core.gate.Gate` (which travels without model
sessions) and loads its detectors once. A row whose prompt is null or not a string gets
``decision = "error"``, null scores and a message in ``error``; the job goes on.

Needs the ``ray`` extra: ``pip install 'vgate[ray]'``. Importing this module does not import
Ray; the functions do.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.core.findings import BLOCK, WARN, InputIssue, ScanSummary
from vgate.errors import MissingExtraError, VgateError
from vgate.policy import Policy

if TYPE_CHECKING:
    import pyarrow as pa
    from ray.data import Dataset

    from vgate.core.gate import Gate

SCORE_COLUMNS: tuple[str, ...] = tuple(f"score_{cid}" for cid in CATEGORY_IDS)
OUTPUT_COLUMNS: tuple[str, ...] = (
    *SCORE_COLUMNS,
    "decision",
    "categories",
    "reasons",
    "suppressed_by",
    "error",
)
ERROR = "error"
"""``decision`` of a row that could not be scanned (null or non-string prompt)."""
BATCH_SIZE = 256
IO_RESERVE_CPUS = 1.0
"""CPUs ``scan_dataset`` leaves free for Ray's read and write tasks when it sizes the actor pool:
an actor pool holding every CPU starves the read tasks that feed it and the job stalls."""
SOURCE = "<dataset>"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def require_ray() -> Any:
    """Import Ray (with Ray Data) or say which extra installs it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingExtraError("ray", "ray") from None
    return ray


def describe_failure(exc: BaseException) -> str:
    """One line for a failure raised through Ray (the innermost cause's first line)."""
    for _ in range(16):
        inner = getattr(exc, "cause", None)
        if not isinstance(inner, BaseException) and type(exc).__name__ == "UserCodeException":
            inner = exc.__cause__
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    lines = [_ANSI.sub("", line).strip() for line in str(exc).splitlines()]
    first = next((line for line in lines if line and not line.startswith("ray::")), "")
    return first or type(exc).__name__


def malformed(value: object) -> str:
    """Why a prompt value cannot be scanned."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "prompt is null"
    return f"prompt is {type(value).__name__}, not a string"


def scan_table(gate: Gate, table: pa.Table, column: str) -> pa.Table:
    """Scan the ``column`` of one Arrow batch: the batch with the output columns appended."""
    import pyarrow as pa

    from vgate.inputs.prompts import make_record

    values = table.column(column).to_pylist()
    n = len(values)
    good = [i for i, v in enumerate(values) if isinstance(v, str)]
    verdicts = gate.judge([make_record(values[i], SOURCE, 0) for i in good]) if good else []
    scores = np.zeros((n, len(CATEGORY_IDS)), dtype=np.float32)
    invalid = np.ones(n, dtype=bool)
    decision: list[str] = [ERROR] * n
    categories: list[list[str]] = [[] for _ in range(n)]
    reasons: list[list[str]] = [[] for _ in range(n)]
    suppressed: list[str | None] = [None] * n
    errors: list[str | None] = [None if isinstance(v, str) else malformed(v) for v in values]
    for i, verdict in zip(good, verdicts, strict=True):
        scores[i] = verdict.scores
        invalid[i] = False
        decision[i] = verdict.decision
        if verdict.flagged:
            categories[i] = [hit.category for hit in verdict.hits]
        reasons[i] = list(verdict.reasons)
        suppressed[i] = verdict.suppressed_by
    for j, name in enumerate(SCORE_COLUMNS):
        table = table.append_column(name, pa.array(scores[:, j], pa.float32(), mask=invalid))
    table = table.append_column("decision", pa.array(decision, pa.string()))
    table = table.append_column("categories", pa.array(categories, pa.list_(pa.string())))
    table = table.append_column("reasons", pa.array(reasons, pa.list_(pa.string())))
    table = table.append_column("suppressed_by", pa.array(suppressed, pa.string()))
    return table.append_column("error", pa.array(errors, pa.string()))


class GateBatchScanner:
    """The ``map_batches`` callable: one Gate per Ray actor, detectors loaded once."""

    def __init__(self, gate: Gate, column: str, threads: int | None = None) -> None:
        self.gate = gate
        self.column = column
        if threads:
            for detector in gate.detectors:  # not loaded yet: set the model's intra-op threads
                if hasattr(detector, "threads"):
                    detector.threads = threads
        gate.warm_up()

    def __call__(self, batch: pa.Table) -> pa.Table:
        return scan_table(self.gate, batch, self.column)


@dataclass(frozen=True)
class PoolPlan:
    """How many scan actors and how many CPUs each asks Ray for."""

    min_size: int
    max_size: int
    cpus_per_actor: float
    fitted: bool = False
    """True when the per-actor CPUs were lowered so the pool leaves room for I/O tasks."""

    @property
    def threads(self) -> int:
        """Model intra-op threads per actor."""
        return max(1, int(self.cpus_per_actor))


def plan_pool(
    cluster_cpus: float,
    concurrency: int | tuple[int, int] | None = None,
    num_cpus: float = 1.0,
) -> PoolPlan:
    """Size the actor pool.

    ``None``: as many actors of ``num_cpus`` as fit in the cluster's CPUs less
    ``IO_RESERVE_CPUS``. ``N``: exactly N actors; when they would take the CPUs the read and write
    tasks need (which would stall the job), each asks for a fraction instead (Ray CPUs are
    logical: the actors still run, they share cores). ``(min, max)``: an autoscaling pool, taken
    as given (for autoscaling clusters).
    """
    if num_cpus <= 0:
        raise VgateError(f"num_cpus must be positive, got {num_cpus}")
    if isinstance(concurrency, tuple):
        low, high = concurrency
        if not 1 <= low <= high:
            raise VgateError(
                f"concurrency must be (min, max) with 1 <= min <= max, got {low, high}"
            )
        return PoolPlan(low, high, num_cpus)
    spare = cluster_cpus - IO_RESERVE_CPUS if cluster_cpus > IO_RESERVE_CPUS else cluster_cpus / 2
    if concurrency is None:
        size = max(1, int(spare // num_cpus))
    elif isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise VgateError(f"concurrency must be a positive number of workers, got {concurrency!r}")
    else:
        size = concurrency
    if size * num_cpus <= spare + 1e-9:
        return PoolPlan(size, size, num_cpus)
    return PoolPlan(size, size, max(spare / size, 0.01), fitted=True)


def _resolve_gate(
    policy: Gate | Policy | str | Path, detectors: str | Sequence[str] | None, model: str | None
) -> Gate:
    from vgate.core.gate import Gate

    if isinstance(policy, Gate):
        if detectors is not None or model is not None:
            raise VgateError("give detectors and model to the Gate, not to scan_dataset")
        return policy
    return Gate(policy, detectors=detectors, model=model)


def _schema_names(ds: Dataset) -> list[str] | None:
    try:
        schema = ds.schema()
    except VgateError:
        raise
    except Exception as exc:  # Ray and Arrow raise many types; all mean "cannot read"
        raise VgateError(f"cannot read the dataset: {describe_failure(exc)}") from None
    return None if schema is None else list(schema.names)


def _is_empty(ds: Dataset) -> bool:
    try:
        return ds.limit(1).count() == 0
    except Exception as exc:  # as above
        raise VgateError(f"cannot read the dataset: {describe_failure(exc)}") from None


def validate_dataset(ds: Dataset, column: str, *, check_empty: bool = True) -> list[str]:
    """Check, before any scan work, that ``ds`` has ``column``, rows, and no output columns.

    Returns the dataset's column names. ``check_empty`` runs ``ds.limit(1)`` (cheap: it stops at
    the first row) when the schema alone does not say.
    """
    names = _schema_names(ds)
    if names is None:
        raise VgateError("the dataset is empty: no rows to scan")
    if column not in names:
        raise VgateError(f"the dataset has no column '{column}' (columns: {', '.join(names)})")
    clash = [c for c in OUTPUT_COLUMNS if c in names]
    if clash:
        raise VgateError(
            f"the dataset already has vgate's output column(s) {', '.join(clash)} "
            "(is it a vgate output?); drop or rename them first"
        )
    if check_empty and _is_empty(ds):
        raise VgateError("the dataset is empty: no rows to scan")
    return names


def scan_dataset(
    ds: Dataset,
    column: str = "prompt",
    policy: Gate | Policy | str | Path = "default",
    *,
    detectors: str | Sequence[str] | None = None,
    model: str | None = None,
    batch_size: int = BATCH_SIZE,
    concurrency: int | tuple[int, int] | None = None,
    num_cpus: float = 1.0,
    check_empty: bool = True,
) -> Dataset:
    """The dataset with vgate's scores, decision and categories added to every row (lazy).

    ``policy``: a shipped policy name, a YAML path, a :class:`Policy` or a ready :class:`Gate`.
    ``concurrency``: scan actors (each loads the model once); ``None`` sizes the pool from the
    cluster's CPUs (see :func:`plan_pool`); ``(min, max)`` autoscales. ``num_cpus``: CPUs per
    actor, also the model's intra-op threads. Problems found before any work (no such column,
    empty or unreadable dataset, a broken policy or model) raise :class:`VgateError`.
    """
    ray = require_ray()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise VgateError(f"batch_size must be a positive number of rows, got {batch_size!r}")
    gate = _resolve_gate(policy, detectors, model)
    gate.warm_up()  # a broken policy or model fails here, not in every actor
    validate_dataset(ds, column, check_empty=check_empty)
    plan = plan_pool(float(ray.cluster_resources().get("CPU", 1.0)), concurrency, num_cpus)
    if plan.fitted and concurrency is not None:
        warnings.warn(
            f"{plan.max_size} scan workers x {num_cpus:g} CPUs leave no CPU for Ray's read and "
            f"write tasks; each worker asks for {plan.cpus_per_actor:.2f} CPUs instead",
            stacklevel=2,
        )
    strategy = (
        ray.data.ActorPoolStrategy(size=plan.min_size)
        if plan.min_size == plan.max_size
        else ray.data.ActorPoolStrategy(min_size=plan.min_size, max_size=plan.max_size)
    )
    return ds.map_batches(
        GateBatchScanner,
        fn_constructor_args=(gate, column, plan.threads),
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=strategy,
        num_cpus=plan.cpus_per_actor,
    )


@dataclass
class DatasetSummary:
    """Counts over a scanned dataset, as a local scan's summary has them."""

    rows: int = 0
    scanned: int = 0
    blocked: int = 0
    warned: int = 0
    suppressed: int = 0
    errors: int = 0
    per_category: Counter = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_scan_summary(self) -> ScanSummary:
        """The local :class:`ScanSummary` for exit codes: a few error rows kept as input issues,
        the others counted, so that ``error_count`` is every row that could not be scanned."""
        issues = [InputIssue(SOURCE, message) for message in self.error_examples]
        if self.errors and not issues:
            issues = [InputIssue(SOURCE, f"{self.errors} rows could not be scanned")]
        return ScanSummary(
            scanned=self.scanned,
            blocked=self.blocked,
            warned=self.warned,
            suppressed=self.suppressed,
            per_category=Counter(self.per_category),
            errors=issues,
            errors_not_kept=max(self.errors - len(issues), 0),
            seconds=self.seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "scanned": self.scanned,
            "blocked": self.blocked,
            "warned": self.warned,
            "suppressed": self.suppressed,
            "errors": self.errors,
            "per_category": {cid: self.per_category.get(cid, 0) for cid in CATEGORY_IDS},
            "error_examples": self.error_examples,
            "seconds": round(self.seconds, 3),
        }


_MAX_EXAMPLES = 5


def _count_batch(batch: pa.Table) -> pa.Table:
    """One row of counts for a batch of scanned rows (``map_batches`` task)."""
    import pyarrow as pa

    decision = batch.column("decision").to_pylist()
    suppressed = batch.column("suppressed_by").to_pylist()
    counts = Counter(decision)
    per_category: Counter = Counter()
    for cats in batch.column("categories").to_pylist():
        per_category.update(cats or ())
    examples = [e for e in batch.column("error").to_pylist() if e][:_MAX_EXAMPLES]
    row = {
        "rows": [len(decision)],
        "blocked": [counts[BLOCK]],
        "warned": [counts[WARN]],
        "errors": [counts[ERROR]],
        "suppressed": [sum(s is not None for s in suppressed)],
        "examples": pa.array([examples], pa.list_(pa.string())),
        **{f"n_{cid}": [per_category[cid]] for cid in CATEGORY_IDS},
    }
    return pa.table(row)


def summarize_dataset(ds: Dataset) -> DatasetSummary:
    """Count decisions over a scanned dataset (one more pass: materialize or re-read first).

    Reads only ``decision``, ``categories``, ``suppressed_by`` and ``error``.
    """
    require_ray()
    columns = ["decision", "categories", "suppressed_by", "error"]
    try:
        parts = (
            ds.select_columns(columns)
            .map_batches(_count_batch, batch_format="pyarrow", batch_size=None)
            .take_all()
        )
    except Exception as exc:  # as in _schema_names
        raise VgateError(f"cannot summarize the scan: {describe_failure(exc)}") from None
    summary = DatasetSummary()
    for part in parts:
        summary.rows += int(part["rows"])
        summary.blocked += int(part["blocked"])
        summary.warned += int(part["warned"])
        summary.errors += int(part["errors"])
        summary.suppressed += int(part["suppressed"])
        for cid in CATEGORY_IDS:
            summary.per_category[cid] += int(part[f"n_{cid}"])
        room = _MAX_EXAMPLES - len(summary.error_examples)
        summary.error_examples.extend(list(part["examples"])[:room])
    summary.per_category = +summary.per_category
    summary.scanned = summary.rows - summary.errors
    return summary


__all__ = [
    "ERROR",
    "OUTPUT_COLUMNS",
    "SCORE_COLUMNS",
    "DatasetSummary",
    "GateBatchScanner",
    "PoolPlan",
    "plan_pool",
    "scan_dataset",
    "scan_table",
    "summarize_dataset",
    "validate_dataset",
]
