"""The README's two set-up commands are the ones the project really uses."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)\n```", text, re.S).group(1)
    return block.splitlines()


def test_readme_opens_with_exactly_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0] == "# portal" and lines[2] == "```sh" and lines[5] == "```"
    demo, tests = _readme_commands()
    assert demo.endswith(".venv/bin/portal demo")
    assert tests.endswith(".venv/bin/python -m pytest")


def test_the_demo_and_the_image_install_like_a_user():
    """A regular install (as from a wheel), not an editable one: what users and the image
    get must carry its migrations (tests/integration/test_install.py)."""
    demo = _readme_commands()[0]
    assert ".venv/bin/pip install -q . && " in demo and " -e " not in demo
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "/venv/bin/pip install -q .\n" in dockerfile and " -e " not in dockerfile


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^TEST_COMMAND='(.*)'$", ci, re.M).group(1)
    assert _readme_commands()[1] == command


def test_every_setting_is_documented():
    from portal.config import DEFAULTS

    readme = (ROOT / "README.md").read_text()
    flask_own = {"WTF_CSRF_TIME_LIMIT", "WTF_CSRF_HEADERS", "SESSION_COOKIE_HTTPONLY",
                 "SESSION_COOKIE_SAMESITE", "MAX_CONTENT_LENGTH"}
    for name in set(DEFAULTS) - flask_own:
        assert f"PORTAL_{name}" in readme or f"PORTAL_{name.rsplit('_', 1)[0]}" in readme \
            or name.startswith("PASSWORD_HASH"), name
