"""The package is ready to publish: one version source, its metadata, its changelog, its check script.

Building and installing the wheel is scripts/check_package.sh's job (it needs the
network for build and twine); these checks need nothing but the source tree.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import focuswrap

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
_VERSION = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)


def test_the_version_has_one_source():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "focuswrap/__init__.py"
    found = _VERSION.findall((REPO / "focuswrap" / "__init__.py").read_text(encoding="utf-8"))
    assert found == [focuswrap.__version__]
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?", focuswrap.__version__)
    # No other file hard-codes it (docs show it only in sample output, which says "focuswrap X").
    for path in sorted((REPO / "focuswrap").rglob("*.py")):
        if path.name != "__init__.py" or path.parent.name != "focuswrap":
            assert "__version__ = " not in path.read_text(encoding="utf-8"), path


def test_the_changelog_starts_with_the_current_version():
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\] - (.+)$", text, re.MULTILINE)
    assert headings, "CHANGELOG.md has no '## [VERSION] - DATE' heading"
    released = [v for v, _ in headings if v != "Unreleased"]
    assert released[0] == focuswrap.__version__, "the newest version in CHANGELOG.md is not focuswrap.__version__"
    for version, date in headings:
        assert date == "Unreleased" or re.fullmatch(r"\d{4}-\d{2}-\d{2}", date), f"[{version}] - {date}"
    # Every heading has its link at the bottom (Keep a Changelog).
    for version, _ in headings:
        assert re.search(rf"^\[{re.escape(version)}\]: https://", text, re.MULTILINE), version


def test_the_metadata_a_package_index_shows():
    project = PYPROJECT["project"]
    assert project["readme"] == "README.md" and project["license"]
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(project["urls"])
    assert all(url.startswith("https://") for url in project["urls"].values())
    assert "focus stacking" in project["keywords"]
    classifiers = project["classifiers"]
    assert "Typing :: Typed" in classifiers
    # Each supported Python minor version is listed, from requires-python up.
    low = int(project["requires-python"].removeprefix(">=3."))
    assert f"Programming Language :: Python :: 3.{low}" in classifiers
    # A license expression and a license classifier may not both be given (PEP 639).
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert project["scripts"]["focuswrap"] == "focuswrap.__main__:main"


def test_py_typed_is_in_the_package_folder():
    assert (REPO / "focuswrap" / "py.typed").is_file()


def test_the_releasing_page_gives_the_exact_commands():
    text = (REPO / "docs" / "releasing.md").read_text(encoding="utf-8")
    for command in (
        "python -m build",
        "twine check --strict dist/*",
        "twine upload --repository testpypi dist/*",
        "twine upload dist/*",
        "bash scripts/check_package.sh",
        "git tag -a v",
    ):
        assert command in text, command


def test_the_check_script_is_valid_bash_and_checks_what_it_promises():
    script = REPO / "scripts" / "check_package.sh"
    text = script.read_text(encoding="utf-8")
    for needed in ("-m build", "twine", "check --strict", "py.typed", "gui/static", "--version", "doctor", "demo"):
        assert needed in text, needed
    assert "stacks/pcb" in text and "skipped" in text
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash on this machine")
    result = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
