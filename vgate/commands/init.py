"""``vgate init``: a starter ``.vgate.yaml`` and a GitHub workflow that runs the Action."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from vgate import HOMEPAGE, __version__
from vgate.errors import EXIT_OK, VgateError

CONFIG_FILE = ".vgate.yaml"
WORKFLOW_FILE = Path(".github") / "workflows" / "vgate.yml"
DEFAULT_INCLUDE = ("prompts/",)


def action_ref() -> str:
    """``owner/repo@vX.Y.Z``: this repository's Action at the release of this vgate."""
    return f"{HOMEPAGE.removeprefix('https://github.com/')}@v{__version__}"


def _template(name: str) -> str:
    return resources.files("vgate.templates").joinpath(name).read_text(encoding="utf-8")


def config_text(include: Sequence[str]) -> str:
    """The starter ``.vgate.yaml``: extends default, names the files to scan, with comments."""
    globs = "\n    ".join(f"- {json.dumps(glob)}" for glob in include)
    return _template("vgate.yaml").replace("{include}", globs)


def workflow_text() -> str:
    """``.github/workflows/vgate.yml``: checkout, the Action, SARIF upload, annotations."""
    return _template("vgate.yml").replace("{action}", action_ref())


def init_project(directory: Path, include: Sequence[str], force: bool = False) -> int:
    """Write both files under ``directory``; refuse to overwrite either without ``force``."""
    if not directory.is_dir():
        raise VgateError(f"{directory}: not a directory")
    files = {directory / CONFIG_FILE: config_text(include or DEFAULT_INCLUDE)}
    files[directory / WORKFLOW_FILE] = workflow_text()
    existing = [str(path) for path in files if path.exists() or path.is_symlink()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise VgateError(f"{' and '.join(existing)} already {verb}; use --force to overwrite")
    for path, text in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                path.unlink()  # never write through a link
            path.write_text(text, encoding="utf-8", newline="\n")
        except OSError as exc:
            raise VgateError(f"{path}: cannot write ({exc.strerror or exc})") from None
        print(f"vgate: wrote {path}")
    print(
        "vgate: next: list your prompt files under files.include in "
        f"{directory / CONFIG_FILE}, run 'vgate scan', and commit both files"
    )
    return EXIT_OK
