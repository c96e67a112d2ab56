"""The wheel installs into a clean virtual environment and every subpackage imports from it.

Builds the real wheel and installs it with its dependencies, as a user's ``pip install`` would.
"""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


@pytest.mark.slow
def test_wheel_installs_and_imports_in_a_clean_venv(tmp_path):
    wheel_dir = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(ROOT)],
        check=True,
    )
    (wheel,) = wheel_dir.glob("agentkit-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True)

    code = "import importlib\n" + "".join(f"importlib.import_module({p!r})\n" for p in PACKAGES)
    subprocess.run([str(python), "-c", code], check=True, cwd=tmp_path)

    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    for generic in ("evals", "training", "scaffolds", "backends"):
        assert not (site / generic).exists(), f"{generic} leaked into site-packages"
    assert (site / "agentkit" / "scaffolds" / "mini" / "mini.yaml").exists()

    help_text = subprocess.run(
        [str(venv / "bin" / "agentkit"), "--help"], check=True, capture_output=True, text=True
    ).stdout
    assert "run" in help_text


def test_every_package_in_the_tree_is_listed():
    """A new folder with an __init__.py must be added to pyproject's explicit package list."""
    mapping = {
        "scaffolds": "agentkit.scaffolds",
        "backends": "agentkit.backends",
        "training": "agentkit.training",
        "evals": "agentkit.evals",
        "agentkit": "agentkit",
    }
    found = set()
    for root, name in mapping.items():
        for init in (ROOT / root).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / root)
            found.add(".".join([name, *relative.parts]))
    assert found == set(PACKAGES)


def test_version_option_prints_the_project_version() -> None:
    from typer.testing import CliRunner

    from agentkit.cli import app

    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"agentkit {project['project']['version']}\n"
