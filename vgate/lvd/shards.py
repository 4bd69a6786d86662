"""On-disk format of collected latents, written by ``vgate probe collect`` and read by
``vgate probe train`` / ``vgate probe eval``.

A collection directory holds::

    manifest.json       what was collected (see :class:`Manifest`)
    shard-00000.npz     compressed arrays for up to ``SHARD_SIZE`` prompts:
                          x0      float16 [N, S, C, F, H, W]   x̂₀ at each collected step
                          labels  uint8   [N, 5]               multi-hot, CATEGORY_IDS order
                          ids     str     [N]                  the prompt ids of the csv
    shard-00001.npz ...

Shards are written whole (to a temporary name, then renamed), so an interrupted collection keeps
every finished shard and a rerun skips the ids already stored (resume).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.errors import InputError

SHARD_SIZE = 64
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """What a collection holds; a resumed collection must match it."""

    model: str
    pipeline: str
    latent_channels: int
    steps: tuple[int, ...]
    timesteps: tuple[float, ...]
    num_inference_steps: int
    num_frames: int
    height: int
    width: int
    seed: int
    categories: tuple[str, ...] = CATEGORY_IDS
    format_version: int = FORMAT_VERSION
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        fields = {**data}
        for key in ("steps", "timesteps", "categories"):
            fields[key] = tuple(fields[key])
        return cls(**fields)


@dataclass
class LatentSet:
    """Every collected prompt of a directory, in memory."""

    manifest: Manifest
    x0: np.ndarray  # float16 [N, S, C, F, H, W]
    labels: np.ndarray  # uint8 [N, 5]
    ids: np.ndarray  # str [N]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def unsafe(self) -> np.ndarray:
        """bool [N]: any category set."""
        return np.asarray(self.labels.any(axis=1))


def read_manifest(directory: Path) -> Manifest:
    """The manifest of a collection directory, or a clear error."""
    path = Path(directory) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest.from_dict(data)
    except FileNotFoundError:
        raise InputError(
            f"{directory}: not a latent collection (no {MANIFEST}); run 'vgate probe collect'"
        ) from None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{path}: unreadable manifest ({exc})") from None
    if manifest.format_version != FORMAT_VERSION:
        raise InputError(
            f"{path}: format version {manifest.format_version}, expected {FORMAT_VERSION}"
        )
    return manifest


def check_resume(directory: Path, **settings: object) -> None:
    """Refuse to add to a collection made with other settings (fields of :class:`Manifest`)."""
    if not (Path(directory) / MANIFEST).exists():
        return
    existing = read_manifest(directory)
    differs = [key for key, value in settings.items() if getattr(existing, key) != value]
    if differs:
        raise InputError(
            f"{directory}: holds a collection with other settings ({', '.join(differs)}); "
            "use a new --out directory or the same settings to resume"
        )


def _shards(directory: Path) -> list[Path]:
    return sorted(Path(directory).glob("shard-*.npz"))


def stored_ids(directory: Path) -> set[str]:
    """Prompt ids already collected (for resuming)."""
    ids: set[str] = set()
    for shard in _shards(directory):
        with np.load(shard, allow_pickle=False) as data:
            ids.update(str(i) for i in data["ids"])
    return ids


def read_latents(directory: Path) -> LatentSet:
    """Load every shard of a collection directory."""
    manifest = read_manifest(directory)
    parts: dict[str, list[np.ndarray]] = {"x0": [], "labels": [], "ids": []}
    for shard in _shards(directory):
        try:
            with np.load(shard, allow_pickle=False) as data:
                for key in parts:
                    parts[key].append(data[key])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise InputError(
                f"{shard}: corrupt shard ({exc}); delete it and collect again"
            ) from None
    if not parts["ids"]:
        raise InputError(f"{directory}: the collection has no shards yet")
    return LatentSet(
        manifest=manifest,
        x0=np.concatenate(parts["x0"]),
        labels=np.concatenate(parts["labels"]),
        ids=np.concatenate(parts["ids"]),
    )


class ShardWriter:
    """Buffer collected prompts and write them as numbered shards."""

    def __init__(self, directory: Path, manifest: Manifest, shard_size: int = SHARD_SIZE) -> None:
        self.directory = Path(directory)
        self.shard_size = shard_size
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest_path = self.directory / MANIFEST
        if manifest_path.exists():
            existing = read_manifest(self.directory)
            if existing != manifest:
                raise InputError(
                    f"{self.directory}: holds a collection with other settings; "
                    "use a new --out directory or the same settings to resume"
                )
        else:
            manifest_path.write_text(manifest.to_json(), encoding="utf-8")
        self._next = len(_shards(self.directory))
        self._buffer: list[tuple[np.ndarray, np.ndarray, str]] = []

    def add(self, x0: np.ndarray, labels: np.ndarray, prompt_id: str) -> None:
        """One prompt: x̂₀ ``[S, C, F, H, W]`` and its multi-hot labels ``[5]``."""
        self._buffer.append((x0.astype(np.float16), labels.astype(np.uint8), prompt_id))
        if len(self._buffer) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write the buffered prompts as one shard (atomically)."""
        if not self._buffer:
            return
        x0, labels, ids = zip(*self._buffer, strict=True)
        final = self.directory / f"shard-{self._next:05d}.npz"
        tmp = final.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, x0=np.stack(x0), labels=np.stack(labels), ids=np.array(ids))
        os.replace(tmp, final)
        self._next += 1
        self._buffer.clear()
