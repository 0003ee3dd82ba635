"""The documentation stays true to the code: generated pages current, every diagnosis explained, links working."""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from pathlib import Path

import pytest

from focuswrap.diagnose import DIAGNOSES

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
GENERATOR = REPO / "scripts" / "gen_presets_doc.py"

#: The pages written for users and contributors (README links to them).
PAGES = ["getting-started.md", "troubleshooting.md", "how-it-works.md", "presets.md", "json.md"]
#: The labels every troubleshooting section gives, in this order.
SECTION_LABELS = ("**What you see.", "**Why it happens.", "**What focuswrap already tried.", "**What you can do.")

_FENCE = re.compile(r"^(```|~~~)")
_LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_DOC_REF = re.compile(r"\bdocs/[A-Za-z0-9_.-]+\.md\b")


def _generator():
    spec = importlib.util.spec_from_file_location("gen_presets_doc", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """Every anchor a page offers: heading slugs (with GitHub's -1, -2 for repeats) and explicit ids."""
    text = path.read_text(encoding="utf-8")
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose_lines(text):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
        found.update(re.findall(r'<a\s+(?:name|id)="([^"]+)"', line))
    return found


def _links(path: Path) -> list[str]:
    return [m.group(1) for line in _prose_lines(path.read_text(encoding="utf-8")) for m in _LINK.finditer(line)]


def _sections(text: str) -> dict[str, str]:
    """Level-2 heading text -> the section's body (up to the next level-2 heading)."""
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


# --- the generated presets page ---------------------------------------------------------------


def test_presets_doc_is_current():
    assert _generator().check(), "docs/presets.md is out of date: run python scripts/gen_presets_doc.py"


def test_presets_doc_is_deterministic_and_machine_independent():
    gen = _generator()
    text = gen.render()
    assert text == gen.render()
    assert str(REPO) not in text
    if len(str(Path.home())) > 1:
        assert str(Path.home()) not in text
    assert "\r" not in text
    assert "(bundled preset, presets/miniature.toml)" in text


def test_presets_doc_covers_every_bundled_preset_and_field():
    from focuswrap import presets

    text = (DOCS / "presets.md").read_text(encoding="utf-8")
    for item in presets.load_all():
        if item.source == "bundled":
            assert f"\n## {item.name}\n" in text
    for model in (presets.AlignOptions, presets.FuseOptions, presets.Rung):
        for name in model.model_fields:
            assert f"| `{name}` |" in text, f"{model.__name__}.{name} is missing from docs/presets.md"


def test_check_mode_reports_an_outdated_page(tmp_path):
    gen = _generator()
    page = tmp_path / "presets.md"
    assert not gen.check(page)  # missing
    gen.write(page)
    assert gen.check(page)
    page.write_text(page.read_text(encoding="utf-8") + "edited by hand\n", encoding="utf-8")
    assert not gen.check(page)


# --- troubleshooting ----------------------------------------------------------------------------


@pytest.mark.parametrize("diag_id", sorted(DIAGNOSES))
def test_every_diagnosis_has_a_troubleshooting_section(diag_id: str):
    sections = _sections((DOCS / "troubleshooting.md").read_text(encoding="utf-8"))
    assert diag_id in sections, f"docs/troubleshooting.md has no '## {diag_id}' section"
    body = sections[diag_id]
    if diag_id == "ok":
        return
    positions = [body.find(label) for label in SECTION_LABELS]
    missing = [label.strip("*.") for label, pos in zip(SECTION_LABELS, positions) if pos < 0]
    assert not missing, f"'## {diag_id}' lacks: {', '.join(missing)}"
    assert positions == sorted(positions), f"'## {diag_id}': the parts are out of order"


def test_troubleshooting_index_lists_every_diagnosis():
    text = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    for diag_id in DIAGNOSES:
        assert f"| [{diag_id}](#{diag_id}) |" in text


# --- pages and links ----------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_page_exists(page: str):
    path = DOCS / page
    assert path.is_file(), f"docs/{page} is missing"
    assert path.read_text(encoding="utf-8").lstrip().startswith(("#", "<!--"))


def test_pages_named_in_the_code_and_readme_exist():
    sources = [
        *sorted((REPO / "focuswrap").rglob("*.py")),
        *sorted((REPO / "scripts").glob("*.py")),
        REPO / "README.md",
    ]
    named = {ref for src in sources if src.is_file() for ref in _DOC_REF.findall(src.read_text(encoding="utf-8"))}
    missing = sorted(ref for ref in named if not (REPO / ref).is_file())
    assert not missing, f"named but missing: {', '.join(missing)}"


def _link_cases() -> list[tuple[str, str]]:
    cases = []
    for page in sorted(DOCS.glob("*.md")):
        for target in _links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
                continue
            cases.append((page.name, target))
    return cases


@pytest.mark.parametrize(("page", "target"), _link_cases())
def test_relative_link_resolves(page: str, target: str):
    source = DOCS / page
    file_part, _, anchor = target.partition("#")
    dest = (source.parent / file_part).resolve() if file_part else source
    assert dest.exists(), f"{page}: link to {target}: {file_part} does not exist"
    if anchor and dest.suffix == ".md":
        assert anchor in _anchors(dest), f"{page}: link to {target}: no heading with anchor #{anchor} in {dest.name}"


def test_link_finder_sees_links():
    # Guards the test above against a regex that silently finds nothing.
    assert ("getting-started.md", "troubleshooting.md#hugin-is-not-found") in _link_cases()
    assert _slug("`[align]`: what align_image_stack gets") == "align-what-align_image_stack-gets"
    assert _slug("Problems found before Hugin runs") == "problems-found-before-hugin-runs"
