"""portal installed as a user installs it: a wheel in a fresh virtual environment, away
from the source tree. Offline: the wheel is built with this environment's setuptools,
and the fresh environment borrows this one's dependencies through a .pth file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from portal import migrate
from tests.conftest import TEST_ENCRYPTION_KEY

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
# What the Dockerfile copies into its build stage: the wheel must need nothing else.
SOURCES = ("pyproject.toml", "README.md", "portal", "migrations")


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None):
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding only the portal wheel; returns its bin folder."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--wheel-dir", tmp / "dist", source, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("portal-*.whl")
    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
         "--no-deps", "--no-index", wheel, cwd=tmp)
    # Only now: pip would take this environment's portal for one installed there.
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run(python, "-c", purelib, cwd=tmp).stdout.strip())
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update({"PORTAL_SECRET_KEY": "install-test-secret-key",
                "PORTAL_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
                "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
                "PORTAL_LOG_LEVEL": "WARNING",
                "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'installed.db'}"})
    return env


def test_the_wheel_runs_from_its_own_copy(installed, tmp_path):
    where = _run(installed / "python", "-c", "import portal; print(portal.__file__)",
                 cwd=tmp_path).stdout.strip()
    assert where.startswith(str(installed.parent)), where
    help_text = _run(installed / "portal", "--help", cwd=tmp_path).stdout
    for command in ("demo", "db", "serve", "worker", "sandbox"):
        assert f"  {command} " in help_text


def test_the_wheel_carries_its_migrations(installed, tmp_path):
    env = _env(tmp_path)
    head = migrate.heads(env["PORTAL_DATABASE_URL"])[0]
    upgraded = _run(installed / "portal", "db", "upgrade", cwd=tmp_path, env=env)
    assert upgraded.stdout.strip() == f"Database schema is at {head}."
    assert migrate.current(env["PORTAL_DATABASE_URL"]) == (head,)
    current = _run(installed / "portal", "db", "current", cwd=tmp_path, env=env).stdout
    assert current.splitlines() == [f"database: {head}", f"code:     {head}"]
