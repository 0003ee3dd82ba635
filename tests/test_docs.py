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
PAGES = [
    "getting-started.md",
    "troubleshooting.md",
    "how-it-works.md",
    "presets.md",
    "json.md",
    "batch.md",
    "map.md",
    "cache.md",
    "releasing.md",
]
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
    missing = [label.strip("*.") for label, pos in zip(SECTION_LABELS, positions, strict=False) if pos < 0]
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


# --- every command and option a user meets is documented, and every documented command runs ----------


def _options(callback) -> list[str]:
    """The option names (``-p``, ``--preset``, ``--no-crop``, ...) a Typer command function declares."""
    import inspect

    from typer.models import OptionInfo

    names = []
    for param in inspect.signature(callback).parameters.values():
        info = param.default
        if not isinstance(info, OptionInfo) or info.hidden:
            continue
        decls = [d for decl in (info.param_decls or ()) for d in decl.split("/")]
        names += decls or ["--" + param.name.replace("_", "-")]
    return names


def _commands() -> dict[tuple[str, ...], list[str] | None]:
    """Every command --help lists, by its path (("stack",), ("presets", "list"), ...): its options
    (None for a group of commands).  ``()`` is ``focuswrap`` itself."""
    from focuswrap.cli import app

    found: dict[tuple[str, ...], list[str] | None] = {}
    root = ["--help", "-h", "--install-completion", "--show-completion"]
    if app.registered_callback is not None:
        root += _options(app.registered_callback.callback)
    found[()] = root

    def walk(typer_app, prefix: tuple[str, ...]) -> None:
        for info in typer_app.registered_commands:
            if info.hidden:
                continue
            name = info.name or info.callback.__name__.lower().replace("_", "-")
            found[(*prefix, name)] = ["--help", "-h", *_options(info.callback)]
        for group in typer_app.registered_groups:
            if group.hidden:
                continue
            name = group.name or group.typer_instance.info.name
            found[(*prefix, name)] = None
            walk(group.typer_instance, (*prefix, name))

    walk(app, ())
    return found


def _user_text() -> str:
    """Everything a user reads: README and every page under docs/."""
    pages = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in pages)


def test_every_command_in_help_is_documented():
    text = _user_text()
    paths = [path for path in _commands() if path]
    assert ("stack",) in paths and ("presets", "new") in paths and ("cache", "clear") in paths
    missing = [" ".join(path) for path in paths if f"focuswrap {' '.join(path)}" not in text]
    assert not missing, f"commands on no docs page: {', '.join('focuswrap ' + m for m in missing)}"


def test_every_option_in_help_is_documented():
    text = _user_text()
    missing = []
    for path, options in _commands().items():
        for name in options or []:
            if name.startswith("--") and name != "--help" and not re.search(rf"`[^`]*{re.escape(name)}\b[^`]*`", text):
                missing.append(" ".join(["focuswrap", *path, name]))
    assert "--map" in (_commands()[("stack",)] or [])  # the check sees options at all
    assert not missing, f"options on no docs page: {', '.join(missing)}"


_COMMAND_LINE = re.compile(r"^\s*(?:\$ )?(focuswrap(?: [a-z~.\-].*)?)$")


def _documented_commands() -> list[tuple[str, str]]:
    """(page, command line) for every ``focuswrap ...`` line in a fenced block of README and docs/.

    Sample output (``focuswrap 0.1.0``, ``focuswrap: error: ...``) is not a command: the word
    after ``focuswrap`` of a command is a command name or an option.
    """
    found = []
    # performance.md's fenced blocks are benchmark output ("focuswrap classic  7.07 ..."), not commands.
    for page in [REPO / "README.md", *sorted(p for p in DOCS.glob("*.md") if p.name != "performance.md")]:
        fenced = False
        language = ""
        for line in page.read_text(encoding="utf-8").splitlines():
            fence = _FENCE.match(line.strip())
            if fence:
                fenced = not fenced
                language = line.strip()[3:].strip()
                continue
            if not fenced or language not in ("", "sh", "bash", "console"):
                continue
            m = _COMMAND_LINE.match(line)
            if m:
                found.append((page.name, m.group(1).split(" #", 1)[0].strip()))
    return found


def test_the_command_finder_sees_the_documented_commands():
    commands = _documented_commands()
    assert ("batch.md", "focuswrap batch ~/Pictures/OpenCamera") in commands
    assert ("README.md", "focuswrap presets show miniature") in commands
    assert not [c for _, c in commands if c.startswith("focuswrap 0.")]


def _check_command_line(argv: list[str]) -> str | None:
    """What is wrong with ``focuswrap ARGV`` (an unknown command or option), or None."""
    commands = _commands()
    path: tuple[str, ...] = ()
    rest = list(argv)
    while rest and not rest[0].startswith("-") and (path == () or commands[path] is None):
        if (*path, rest[0]) not in commands:
            return f"no command 'focuswrap {' '.join((*path, rest[0]))}'"
        path, rest = (*path, rest[0]), rest[1:]
    options = commands[path]
    if options is None:
        return None if not rest or rest == ["--help"] else f"'focuswrap {' '.join(path)}' needs a command after it"
    for token in rest:
        if token.startswith("-") and token != "-":
            name = token.split("=", 1)[0]
            if name not in options:
                return f"'focuswrap {' '.join(path)}' has no option {name}"
    return None


@pytest.mark.parametrize(("page", "line"), _documented_commands())
def test_documented_command_exists(page: str, line: str):
    import shlex

    problem = _check_command_line(shlex.split(line)[1:])
    assert problem is None, f"{page}: '{line}': {problem}"


def test_the_command_line_check_can_fail():
    assert _check_command_line(["stack", "a.jpg", "--map", "m.png"]) is None
    assert _check_command_line(["stack", "a.jpg", "--mapp", "m.png"]) == "'focuswrap stack' has no option --mapp"
    assert _check_command_line(["presets", "lst"]) == "no command 'focuswrap presets lst'"
    assert _check_command_line(["stak", "a.jpg"]) == "no command 'focuswrap stak'"
    assert _check_command_line(["presets"]) is None


#: Documented commands that change nothing outside FOCUSWRAP_HOME and need no photos: run them for real.
_RUNNABLE = ("--version", "doctor", "presets list", "presets show", "presets path", "presets new", "cache info")


@pytest.mark.parametrize(
    ("page", "line"),
    sorted({(p, c) for p, c in _documented_commands() if c.removeprefix("focuswrap ").startswith(_RUNNABLE)}),
)
def test_documented_command_runs(page: str, line: str, run):
    import shlex
    import shutil

    done = run(*shlex.split(line)[1:])
    if line == "focuswrap doctor" and not all(shutil.which(t) for t in ("align_image_stack", "enfuse")):
        assert done.returncode == 3, done.stderr  # MISSING_TOOL: it ran, and said so
    else:
        assert done.returncode == 0, f"{page}: '{line}' exited {done.returncode}: {done.stderr}"
    assert "Traceback" not in done.stdout + done.stderr


def _open_camera_folder(folder: Path, stamps: list[str], frames: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for stamp in stamps:
        for i in range(frames):
            Image.new("RGB", (32, 24), (40 * i, 80, 120)).save(folder / f"{stamp}_{i}.jpg", quality=90)


def test_the_batch_page_first_example_is_what_batch_says(run, tmp_path: Path):
    # docs/batch.md shows the dry run of an Open Camera folder with two brackets; the same
    # folder, laid out under a home folder of its own, must give the same listing.
    text = (DOCS / "batch.md").read_text(encoding="utf-8")
    shown = re.search(r"```\n(2 brackets in /home/sam/.*?)```", text, re.DOTALL)
    assert shown, "docs/batch.md lacks the sample dry-run output"
    home = tmp_path / "sam"
    _open_camera_folder(home / "Pictures" / "OpenCamera", ["IMG_20240601_141502", "IMG_20240601_142230"], 4)
    done = run("batch", home / "Pictures" / "OpenCamera", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.replace(str(home), "/home/sam") == shown.group(1)


def test_the_map_page_shows_a_map_made_by_focuswrap():
    from PIL import Image

    from focuswrap import contribution

    text = (DOCS / "map.md").read_text(encoding="utf-8")
    assert "(img/map-pcb.png)" in text and "(img/map-pcb-result.jpg)" in text
    with Image.open(DOCS / "img" / "map-pcb.png") as im:
        assert im.format == "PNG"
        rgb = im.convert("RGB")
        # A real map: the colours of several frames (the pcb stack has 7), not a drawing.
        colours = {c for _, c in rgb.getcolors(maxcolors=1 << 20) or []}
    assert len(set(contribution.PALETTE[:7]) & colours) == 7


def test_the_json_page_documents_every_key(run, hugin, tmp_path: Path):
    import json

    from helpers import photos

    shots = photos(tmp_path / "shots", 3)
    done = run("stack", *shots, "--hugin-dir", hugin.bin_dir, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    text = (DOCS / "json.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, re.MULTILINE))
    keys = set(data) | set(data["seconds"]) | set(data["sharpness"] or {}) | {k for a in data["attempts"] for k in a}
    assert keys - documented == set(), "keys of --json missing from docs/json.md"


def test_install_docs_are_true_before_and_after_publishing():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    for text in (readme, start):
        assert re.search(r"not on PyPI( \(the Python package index\))? yet", text)
        assert "git clone https://" in text and "pipx install ./focuswrap" in text  # works today
        assert re.search(r"pipx install focuswrap(\n|`)", text)  # once published
        assert ".whl" in text
    # No install line that works only once published, outside the section that says so.
    assert start.count("pipx install focuswrap\n") == 1
    assert 'pipx install "focuswrap[' not in start and 'pip install "focuswrap[' not in start
