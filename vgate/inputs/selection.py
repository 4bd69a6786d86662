"""Which files a scan reads: excludes, the policy's includes and the files changed against a ref.

- ``--exclude GLOB`` (relative to the working directory), ``.vgateignore`` (relative to its
  folder) and the policy's ``files.exclude`` (relative to the policy file's folder) are
  gitignore-style globs; a file they match is not read, whether named or found in a directory.
- The policy's ``files.include`` narrows directory walks to the files it matches (a file named on
  the command line is read unless excluded, or with ``--respect-include`` unless outside the
  includes, for pre-commit, which names every changed file); with no path given, vgate scans the
  policy file's folder through it.
- ``--diff-base REF`` keeps only files changed between the merge base of REF and HEAD and the
  working tree, plus untracked files (as ``git diff --merge-base REF`` and ``git status`` see them).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from vgate.errors import VgateError

GIT_TIMEOUT_S = 60
MAX_IGNORE_BYTES = 1 << 20


def real_location(path: Path) -> Path:
    """``path`` absolute, its folders resolved (a symlinked file keeps its own name)."""
    absolute = Path(os.path.abspath(path))
    return Path(os.path.realpath(absolute.parent)) / absolute.name


@dataclass(frozen=True)
class GlobSet:
    """gitignore-style globs and the folder they are relative to."""

    base: Path
    spec: pathspec.PathSpec
    source: str

    @classmethod
    def of(cls, base: Path, globs: Sequence[str], source: str) -> GlobSet:
        spec = pathspec.GitIgnoreSpec.from_lines(globs)
        return cls(Path(os.path.realpath(base)), spec, source)

    def matches(self, location: Path) -> bool:
        try:
            relative = location.relative_to(self.base)
        except ValueError:
            return False
        return self.spec.match_file(relative.as_posix())


@dataclass
class FileSelection:
    """Decides, file by file, whether the scan reads it; remembers what it left out."""

    excludes: list[GlobSet] = field(default_factory=list)
    include: GlobSet | None = None
    changed: set[Path] | None = None
    include_named: bool = False
    """Apply ``include`` to files named on the command line too (``--respect-include``)."""
    excluded: set[Path] = field(default_factory=set)
    unchanged: set[Path] = field(default_factory=set)

    def allows(self, path: Path, *, named: bool) -> bool:
        """True to read ``path``; ``named`` when it was given on the command line."""
        location = real_location(path)
        if any(globs.matches(location) for globs in self.excludes) or (
            (self.include_named or not named)
            and self.include is not None
            and not self.include.matches(location)
        ):
            self.excluded.add(location)
            return False
        if self.changed is not None and location not in self.changed:
            self.unchanged.add(location)
            return False
        return True

    def notes(self) -> list[str]:
        """What was left out, for stderr (never silently)."""
        notes = []
        if self.excluded:
            sources = ", ".join(dict.fromkeys(g.source for g in self.excludes)) or "files.include"
            if self.include is not None and "files.include" not in sources:
                sources += ", files.include"
            n = len(self.excluded)
            notes.append(f"{n:,} file{'' if n == 1 else 's'} not scanned ({sources})")
        if self.unchanged:
            n = len(self.unchanged)
            notes.append(f"{n:,} unchanged file{'' if n == 1 else 's'} not scanned (--diff-base)")
        return notes


def read_ignore_file(path: Path) -> list[str]:
    """The globs of a ``.vgateignore`` (gitignore syntax: ``#`` comments, ``!`` negation)."""
    try:
        raw = path.read_bytes()[: MAX_IGNORE_BYTES + 1]
    except OSError as exc:
        raise VgateError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_IGNORE_BYTES:
        raise VgateError(f"{path}: larger than {MAX_IGNORE_BYTES:,} bytes")
    try:
        return raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise VgateError(f"{path}: not valid UTF-8 (byte {exc.start + 1})") from None


def _git(args: Sequence[str], cwd: Path) -> str:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise VgateError("--diff-base needs git on PATH") from None
    except subprocess.TimeoutExpired:
        raise VgateError(f"--diff-base: git {args[0]} took over {GIT_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VgateError(f"--diff-base: git {args[0]} failed: {message[-1] if message else '?'}")
    return proc.stdout.decode("utf-8", "surrogateescape")


def changed_files(ref: str, cwd: Path | None = None) -> set[Path]:
    """Files added, copied, modified, renamed or retyped since the merge base of ``ref`` and
    HEAD (committed or not), and untracked files not ignored by git."""
    if ref.startswith("-"):
        raise VgateError(f"--diff-base must be a git ref, got '{ref}'")
    here = cwd or Path.cwd()
    top = Path(_git(["rev-parse", "--show-toplevel"], here).strip())
    base = _git(["merge-base", ref, "HEAD"], here).strip()
    diff = _git(["diff", "--name-only", "-z", "--no-renames", "--diff-filter=d", base, "--"], top)
    untracked = _git(["ls-files", "--others", "--exclude-standard", "-z"], top)
    names = [n for n in (diff + untracked).split("\0") if n]
    return {real_location(top / name) for name in names}
