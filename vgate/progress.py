"""A rich progress bar on stderr, shared by the long-running commands."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(label: str, total: int | None, show: bool | None) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1)``: a transient rich bar on stderr when ``show`` (default: when stderr
    is a terminal), a no-op otherwise."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)
