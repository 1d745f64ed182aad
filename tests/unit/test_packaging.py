"""pyproject.toml lists every package: mapping migrations/ into the package rules out
setuptools' automatic discovery, so a new subpackage must be added there by hand."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _packages_in(folder: str, name: str) -> set[str]:
    base = ROOT / folder
    return {".".join((name, *path.parent.relative_to(base).parts))
            for path in base.rglob("*.py") if "__pycache__" not in path.parts}


def test_every_package_and_the_migrations_are_in_the_wheel_list():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"portal.migrations": "migrations"}
    wanted = (_packages_in("portal", "portal")
              | _packages_in("migrations", "portal.migrations"))
    missing = wanted - set(setuptools["packages"])
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages"
    assert {"portal.migrations", "portal.migrations.versions"} <= wanted
