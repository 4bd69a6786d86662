"""``vgate policy check|show|list``."""

from __future__ import annotations

import yaml
from rich.console import Console

from vgate.errors import EXIT_OK
from vgate.policy import load_policy, shipped_policies
from vgate.terminal import terminal_safe


def check_policies(refs: list[str]) -> int:
    """Validate each policy; the first invalid one raises PolicyError (exit 2)."""
    for ref in refs:
        policy = load_policy(ref)
        summary = f"{ref}: ok ({', '.join(policy.detectors)}; model {policy.model})"
        print(terminal_safe(summary))
    return EXIT_OK


def show_policy(ref: str, origin: str = "") -> None:
    """Print the resolved policy as YAML, after a comment naming it and where it came from."""
    print(terminal_safe(f"# resolved policy: {ref}" + (f" ({origin})" if origin else "")))
    print(yaml.safe_dump(load_policy(ref).to_dict(), sort_keys=False, width=100), end="")


def list_policies() -> None:
    """Print the shipped policies with their descriptions."""
    console = Console(highlight=False)
    for name in shipped_policies():
        console.print(f"[bold]{name}[/bold]: {load_policy(name).description}")
