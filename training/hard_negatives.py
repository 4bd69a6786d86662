"""Generated safe text that is not a prompt: version pins, code, numbers, paths, URLs, hashes.

Run over a repository, vgate meets such lines (``numpy==1.26``, ``torch>=2``) and the v1 model
scored some of them as unsafe. These rows are added to training as ``safe`` hard negatives; a
second set from another seed (and two kinds of text the training set never has: shell commands
and log lines) measures how low the model scores non-prompt text it did not train on.

    python training/hard_negatives.py --n 600 --seed 0
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable

PACKAGES = (
    "numpy", "torch", "scipy", "pandas", "requests", "flask", "django", "pytest", "ruff",
    "transformers", "onnxruntime", "tokenizers", "pillow", "opencv-python", "diffusers",
    "accelerate", "safetensors", "pyyaml", "click", "rich", "tqdm", "matplotlib", "sqlalchemy",
    "fastapi", "uvicorn", "boto3", "protobuf", "grpcio", "jax", "tensorflow", "keras", "xgboost",
)  # fmt: skip
OPERATORS = ("==", ">=", "<=", "~=", "!=", ">", "<", "@")
NAMES = (
    "x", "y", "data", "items", "result", "config", "path", "model", "batch", "scores", "frame",
    "video", "prompt", "label", "count", "total", "buffer", "node", "user", "token", "value",
)  # fmt: skip
FOLDERS = (
    "src", "lib", "tests", "docs", "scripts", "assets", "build", "dist", "vendor", "data",
    "models", "configs", "tmp", "app", "core", "utils", "bin", "include", "static", "templates",
)  # fmt: skip
EXTENSIONS = ("py", "json", "yaml", "toml", "md", "txt", "csv", "cfg", "sh", "js", "ts", "rs")
WORDS = (
    "kill", "shoot", "execute", "abort", "fatal", "dead", "bleed", "nuke", "bomb", "hang",
    "crash", "strip", "exploit", "zombie", "daemon", "master", "slave", "hit", "fire", "purge",
)  # fmt: skip
"""Words that alarm a prompt classifier but are plain jargon in code and logs."""


def version(r: random.Random) -> str:
    parts = [str(r.randint(0, 30)) for _ in range(r.randint(1, 3))]
    return ".".join(parts)


def pin(r: random.Random) -> str:
    pkg = r.choice(PACKAGES)
    if r.random() < 0.2:
        lo, hi = version(r), version(r)
        return f"{pkg}>={lo},<{hi}"
    return f"{pkg}{r.choice(OPERATORS[:-1])}{version(r)}"


def code_line(r: random.Random) -> str:
    a, b = r.sample(NAMES, 2)
    n = r.randint(0, 999)
    templates = (
        f"def {a}_{b}({a}, {b}=None): return {a}",
        f"for {a} in range({n}): {b} += {a}",
        f"{a} = [{b} for {b} in {a}s if {b} > {n}]",
        f"import {r.choice(PACKAGES).replace('-', '_')} as {a[:2]}",
        f"if {a} is None: raise ValueError('{b} missing')",
        f"{a}.{r.choice(WORDS)}({b}, timeout={n})",
        f"return {{'{a}': {b}, 'n': {n}}}",
        f"const {a} = await fetch(`/api/{b}/${{id}}`);",
        f"let mut {a}: Vec<u8> = Vec::with_capacity({n});",
        f"assert {a}.shape == ({n}, {r.randint(1, 9)})",
        f"os.{r.choice(WORDS)}(pid, signal.SIGTERM)",
        f"# TODO: {r.choice(WORDS)} the {a} when {b} is stale",
    )
    return r.choice(templates)


def number(r: random.Random) -> str:
    kinds = (
        lambda: str(r.randint(0, 10 ** r.randint(1, 9))),
        lambda: f"{r.uniform(-1000, 1000):.{r.randint(1, 6)}f}",
        lambda: f"{r.randint(1, 99)}%",
        lambda: f"{r.uniform(0, 1):.3e}",
        lambda: " ".join(str(r.randint(0, 255)) for _ in range(r.randint(2, 8))),
        lambda: f"{r.randint(1990, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
        lambda: f"0x{r.getrandbits(32):08x}",
    )
    return r.choice(kinds)()


def file_path(r: random.Random) -> str:
    parts = r.sample(FOLDERS, r.randint(1, 4))
    name = f"{r.choice(NAMES)}_{r.choice(WORDS) if r.random() < 0.3 else r.choice(NAMES)}"
    path = "/".join(parts) + f"/{name}.{r.choice(EXTENSIONS)}"
    if r.random() < 0.2:
        return "C:\\Users\\" + r.choice(NAMES) + "\\" + path.replace("/", "\\")
    return ("/" if r.random() < 0.3 else "") + path


def url(r: random.Random) -> str:
    host = r.choice(("github.com", "pypi.org", "docs.python.org", "example.com", "localhost:8000"))
    return f"https://{host}/{r.choice(FOLDERS)}/{r.choice(NAMES)}?v={version(r)}"


def digest(r: random.Random) -> str:
    kinds = (
        lambda: f"{r.getrandbits(160):040x}",
        lambda: f"sha256:{r.getrandbits(256):064x}",
        lambda: f"{r.getrandbits(28):07x} {r.choice(WORDS)} {r.choice(NAMES)} handling",
    )
    return r.choice(kinds)()


def config_line(r: random.Random) -> str:
    a, b = r.sample(NAMES, 2)
    templates = (
        f"{a}: {r.randint(0, 512)}",
        f'"{a}": "{b}",',
        f"{a}_{b} = {r.choice(('true', 'false', 'null'))}",
        f"[{r.choice(FOLDERS)}.{a}]",
        f"{a.upper()}_{b.upper()}={r.randint(0, 9999)}",
        f'"{r.choice(PACKAGES)}": "^{version(r)}"',
    )
    return r.choice(templates)


def shell_command(r: random.Random) -> str:
    """Only in the measurement set."""
    templates = (
        f"pip install {pin(r)}",
        f"kill -9 {r.randint(100, 99999)}",
        f"git commit -m 'fix {r.choice(WORDS)} in {r.choice(NAMES)}'",
        f"docker run --rm -v $PWD:/{r.choice(FOLDERS)} {r.choice(NAMES)}:{version(r)}",
        f"chmod {r.choice(('755', '644', '600'))} {file_path(r)}",
        f"python -m {r.choice(PACKAGES).replace('-', '_')} --{r.choice(NAMES)} {r.randint(1, 64)}",
    )
    return r.choice(templates)


def log_line(r: random.Random) -> str:
    """Only in the measurement set."""
    level = r.choice(("INFO", "WARNING", "ERROR", "DEBUG", "FATAL"))
    return (
        f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} {r.randint(0, 23):02d}:"
        f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d} {level} {r.choice(NAMES)}: "
        f"{r.choice(WORDS)} {r.choice(NAMES)} after {r.randint(1, 900)} ms"
    )


TRAIN_KINDS: dict[str, Callable[[random.Random], str]] = {
    "version_pin": pin,
    "code": code_line,
    "number": number,
    "file_path": file_path,
    "url": url,
    "digest": digest,
    "config": config_line,
}
HELD_OUT_KINDS: dict[str, Callable[[random.Random], str]] = {
    "shell_command": shell_command,
    "log_line": log_line,
}


def generate(n: int, seed: int, held_out_kinds: bool = False) -> list[tuple[str, str]]:
    """``n`` distinct ``(text, kind)`` pairs, kinds in turn; with ``held_out_kinds`` the two kinds
    training never sees are added (for the measurement set)."""
    r = random.Random(seed)
    kinds = dict(TRAIN_KINDS) | (HELD_OUT_KINDS if held_out_kinds else {})
    names = list(kinds)
    out: dict[str, str] = {}
    i = 0
    while len(out) < n and i < 50 * n:
        kind = names[i % len(names)]
        out.setdefault(kinds[kind](r), kind)
        i += 1
    return list(out.items())


TRAIN_SEED = 0
MEASURE_SEED = 1


def training_rows(n: int = 600) -> list[str]:
    """The generated safe rows added to training (seed ``TRAIN_SEED``)."""
    return [text for text, _ in generate(n, TRAIN_SEED)]


def measurement_rows(n: int = 450, exclude: set[str] | None = None) -> list[tuple[str, str]]:
    """``(text, kind)`` rows for measuring, none equal to a training row (seed ``MEASURE_SEED``)."""
    exclude = exclude if exclude is not None else set(training_rows())
    return [(t, k) for t, k in generate(n + len(exclude) // 10, MEASURE_SEED, True)
            if t not in exclude][:n]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--seed", type=int, default=TRAIN_SEED)
    args = p.parse_args(argv)
    for text, kind in generate(args.n, args.seed, held_out_kinds=True):
        print(f"{kind:14s} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
