"""The distribution: installed as ``vgate-cli`` (``vgate`` on PyPI is another project), command
and package ``vgate``, Apache-2.0 with its LICENSE, and every install hint naming ``vgate-cli``."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import tomllib

import vgate
from tests.helpers import REPO
from vgate.errors import MissingExtraError

ROOT = REPO
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
WRONG_INSTALL = re.compile(r"""(?<![\w-])vgate\[""")
"""``vgate[extra]``: the unrelated PyPI project, never ours."""


def test_pyproject_names_the_distribution_and_keeps_the_command() -> None:
    project = PYPROJECT["project"]
    assert project["name"] == vgate.DISTRIBUTION == "vgate-cli"
    assert project["scripts"] == {"vgate": "vgate.cli:main"}
    assert PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["vgate"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert project["urls"]["Homepage"] == vgate.HOMEPAGE


def test_license_file_is_the_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text


def shipped_text_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "action.yml", *sorted((ROOT / "vgate").rglob("*.py"))]
    return [*files, *sorted((ROOT / "scripts").glob("*"))]


def test_no_install_hint_names_the_unrelated_vgate_project() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in shipped_text_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WRONG_INSTALL.search(line) or re.search(r"pip install\s+(-\S+\s+)*vgate\b(?!-)", line)
    ]
    assert offenders == []


def test_missing_extra_hint_installs_vgate_cli() -> None:
    assert "pip install 'vgate-cli[ray]'" in str(MissingExtraError("ray", "ray"))


def test_sarif_information_uri_is_this_project() -> None:
    from vgate.reports.sarif import information_uri

    assert information_uri() == vgate.HOMEPAGE
    assert "pypi.org/project/vgate/" not in information_uri()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel as hatchling builds it from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    build = f"from hatchling.build import build_wheel; build_wheel({str(out)!r})"
    subprocess.run(
        [sys.executable, "-c", build],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("*.whl")
    return built


def test_wheel_metadata(wheel: Path) -> None:
    assert wheel.name.startswith("vgate_cli-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(archive.read(info).decode("utf-8"))
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode("utf-8")
    assert meta["Name"] == "vgate-cli"
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert f"Homepage, {vgate.HOMEPAGE}" in meta.get_all("Project-URL")
    assert "vgate = vgate.cli:main" in entry_points
    assert "vgate/__init__.py" in names


def test_wheel_installs_as_vgate_cli_with_the_vgate_command(wheel: Path, tmp_path: Path) -> None:
    """Installed in a fresh venv (dependencies from this interpreter's site-packages)."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=300,
    )  # fmt: skip
    probe = (
        "import importlib.metadata as m, vgate; "
        "print(m.version('vgate-cli'), m.metadata('vgate-cli')['Name'], vgate.__file__)"
    )
    out = subprocess.run(
        [str(python), "-I", "-c", probe], check=True, capture_output=True, text=True, timeout=60
    ).stdout.split()
    assert out[:2] == [vgate.__version__, "vgate-cli"]
    assert Path(out[2]).is_relative_to(env_dir)
    version = subprocess.run(
        [str(env_dir / "bin" / "vgate"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.stdout.strip() == f"vgate {vgate.__version__}"
