"""Presets: named, strict pydantic models of what each Hugin tool is given.

A preset is a TOML file whose name (without ``.toml``) is the preset's name.
The bundled ones live in the top-level ``presets/`` folder and ship inside the
package; a user's ``presets/`` folder (``focuswrap presets path``) may add new
ones or override a bundled one by using the same name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Optional

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)

from focuswrap import paths
from focuswrap.config import format_validation_error, read_toml
from focuswrap.errors import BadInputError, ConfigError

# Each tool's options model lives in its own module (presets import them, never the reverse).
from focuswrap.hugin.align import MANAGED as _ALIGN_MANAGED
from focuswrap.hugin.align import AlignOptions
from focuswrap.hugin.base import Strict as _Strict
from focuswrap.hugin.enfuse import MANAGED as _FUSE_MANAGED
from focuswrap.hugin.enfuse import FuseOptions, GrayProjector

DEFAULT_PRESET = "miniature"

__all__ = [
    "_ALIGN_MANAGED",
    "_FUSE_MANAGED",
    "AlignOptions",
    "FuseOptions",
    "GrayProjector",
    "NamedPreset",
    "Preset",
    "Rung",
]


# The changes a ladder rung may make: any align option, every field optional.
AlignChanges = create_model(  # type: ignore[call-overload]
    "AlignChanges",
    __config__=ConfigDict(extra="forbid", frozen=True),
    **{name: (Optional[f.annotation], None) for name, f in AlignOptions.model_fields.items()},  # noqa: UP045 - built at run time from each annotation
)


class Rung(_Strict):
    """One step of the fallback ladder: align options to change, and why."""

    set: AlignChanges = Field(description="Align options this rung changes (kept by later rungs).")
    why: str = Field(min_length=1, description="Shown to the user when the rung is tried.")
    helps: list[str] = Field(
        default_factory=list, description="Diagnosis ids this rung helps; empty means any retryable failure."
    )

    @field_validator("helps")
    @classmethod
    def _known_diagnoses(cls, v: list[str]) -> list[str]:
        # A misspelt id would load silently and the rung would never fire.
        import difflib

        from focuswrap.diagnose import DIAGNOSES

        for diag_id in v:
            if diag_id not in DIAGNOSES:
                close = difflib.get_close_matches(diag_id, list(DIAGNOSES), n=1)
                hint = f"did you mean {close[0]!r}?" if close else "see docs/troubleshooting.md for the ids"
                raise ValueError(f"{diag_id!r} is not a diagnosis focuswrap knows ({hint})")
        return v

    def changes(self) -> dict[str, object]:
        return self.set.model_dump(exclude_none=True)

    def flags(self) -> str:
        """The rung's changes as the flags a person would type."""
        from focuswrap.hugin.align import option_flags

        before = AlignOptions()
        after = AlignOptions.model_validate({**before.model_dump(), **self.changes()})
        return " ".join(option_flags(after, before)) or "(no flag change)"


class Preset(_Strict):
    """A named recipe: align options, fuse options and the fallback ladder."""

    description: str = Field(min_length=1, description="One line: when to use this preset.")
    align: AlignOptions = Field(default_factory=AlignOptions)
    fuse: FuseOptions = Field(default_factory=FuseOptions)
    ladder: list[Rung] = Field(
        default_factory=list,
        description="Tried in order after a retryable alignment failure; each rung keeps the previous ones.",
    )

    @field_validator("ladder")
    @classmethod
    def _ladder_applies(cls, ladder: list[Rung], info: ValidationInfo) -> list[Rung]:
        # Every cumulative step must itself be a valid set of align options.
        current = info.data.get("align")
        if current is None:  # [align] itself is invalid and already reported
            return ladder
        for i, rung in enumerate(ladder, 1):
            try:
                current = AlignOptions.model_validate({**current.model_dump(), **rung.changes()})
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                    for e in exc.errors()
                )
                raise ValueError(f"step {i} gives invalid align options: {problems}") from None
        return ladder

    def align_after(self, rungs: list[Rung]) -> AlignOptions:
        """The align options once ``rungs`` have been applied, in order."""
        current = self.align
        for rung in rungs:
            current = AlignOptions.model_validate({**current.model_dump(), **rung.changes()})
        return current


@dataclass(frozen=True)
class NamedPreset:
    name: str
    preset: Preset
    path: Path
    source: Literal["bundled", "user"]
    overrides_bundled: bool = False


def bundled_presets_dir() -> Path:
    """The presets shipped with focuswrap (inside the wheel, or the repo's presets/)."""
    inside = Path(__file__).with_name("presets")
    if inside.is_dir():
        return inside
    # Editable/development install: the top-level presets/ folder of the checkout.
    return Path(__file__).resolve().parent.parent / "presets"


def load_preset_file(path: Path) -> Preset:
    """Load and validate one preset file; any problem is a one-line-per-field ConfigError."""
    data = read_toml(path)
    try:
        return Preset.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, Preset)) from None


def _files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.toml")) if p.is_file()}


def available() -> dict[str, tuple[Path, Literal["bundled", "user"], bool]]:
    """name -> (file, source, overrides a bundled preset), user presets winning."""
    bundled = _files(bundled_presets_dir())
    user = _files(paths.user_presets_dir())
    found: dict[str, tuple[Path, Literal["bundled", "user"], bool]] = {
        n: (p, "bundled", False) for n, p in bundled.items()
    }
    for n, p in user.items():
        found[n] = (p, "user", n in bundled)
    return dict(sorted(found.items()))


def _find(name: str, names: list[str]) -> str | None:
    """``name`` itself, else the one name equal to it ignoring case ("Miniature" is "miniature")."""
    if name in names:
        return name
    folded = [n for n in names if n.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def get(name: str) -> NamedPreset:
    """The preset called ``name``, in any case (a user preset overrides a bundled one).

    An unknown name is a BadInputError that suggests the closest name ("miniture": miniature).
    """
    import difflib

    table = available()
    found = _find(name, list(table))
    if found is None:
        known = ", ".join(table) or "none"
        close = difflib.get_close_matches(name.casefold(), [n.casefold() for n in table], n=1, cutoff=0.6)
        guess = next((n for n in table if close and n.casefold() == close[0]), None)
        rest = f"; did you mean {guess!r}? The presets are: {known}." if guess else f"; the presets are: {known}."
        raise BadInputError(f"There is no preset called {name!r}{rest}")
    path, source, overrides = table[found]
    return NamedPreset(found, load_preset_file(path), path, source, overrides)


def load_all() -> list[NamedPreset]:
    """Every available preset, validated (a broken file raises ConfigError)."""
    return [get(n) for n in available()]


@dataclass(frozen=True)
class BrokenPreset:
    """A preset file that does not load: what ``presets list`` flags instead of failing."""

    name: str
    path: Path
    source: Literal["bundled", "user"]
    problem: str  #: the ConfigError's message: one "FILE: FIELD: what is wrong" line per problem


def scan() -> list[NamedPreset | BrokenPreset]:
    """Every available preset; a file that does not load is a :class:`BrokenPreset`, the others still load."""
    found: list[NamedPreset | BrokenPreset] = []
    for name, (path, source, overrides) in available().items():
        try:
            found.append(NamedPreset(name, load_preset_file(path), path, source, overrides))
        except ConfigError as exc:
            found.append(BrokenPreset(name, path, source, str(exc)))
    return found


def listing() -> tuple[list[str], str | None]:
    """``presets list``: two lines per preset (a broken file says what is wrong), and a warning or None."""
    from focuswrap import streams

    lines: list[str] = []
    broken = 0
    for item in scan():
        if isinstance(item, BrokenPreset):
            broken += 1
            lines.append(f"{item.name} ({item.source}) CANNOT BE USED: its file has mistakes")
            lines.extend(f"    {streams.clean(line)}" for line in item.problem.splitlines())
            continue
        tag = " (user, overrides bundled)" if item.overrides_bundled else (" (user)" if item.source == "user" else "")
        default = " [default]" if item.name == DEFAULT_PRESET else ""
        # A preset file is the user's: escape codes in it must not drive the terminal.
        lines.append(f"{item.name}{default}{tag}\n    {streams.clean(item.preset.description)}")
    if not broken:
        return lines, None
    files = f"{broken} preset file{'s' if broken > 1 else ''}"
    return lines, f"{files} cannot be used (shown above); fix the named fields, or delete the file."


def with_crop(item: NamedPreset, crop: bool | None) -> NamedPreset:
    """``item`` with align.crop forced on or off (``--crop``/``--no-crop``); None keeps the preset's."""
    if crop is None or crop == item.preset.align.crop:
        return item
    align = item.preset.align.model_copy(update={"crop": crop})
    return replace(item, preset=item.preset.model_copy(update={"align": align}))


def describe(item: NamedPreset) -> str:
    """A preset as a person reads it: where it comes from, both argv lists, the ladder."""
    import shlex

    from focuswrap.hugin import align, enfuse, nona

    p = item.preset
    origin = f"{item.source} preset, {item.path}" + (" (overrides the bundled one)" if item.overrides_bundled else "")
    # The same builders the real run uses, with placeholders for the paths.
    photos = ["PHOTO1", "PHOTO2", "..."]
    if p.align.remap == "nona":
        align_argv = align.build_argv(
            command=[align.NAME], options=p.align, inputs=[], prefix=None, pto="WORK/debug.pto"
        )
        remap_argv = nona.build_argv(command=[nona.NAME], project="WORK/debug.pto", prefix="WORK/aligned_", only=[1, 2])
        at = remap_argv.index("-o")
        remap_argv[at:at] = ["..."]
        fused = ["PHOTO1", "WORK/aligned_0001.tif", "..."]
    else:
        align_argv, remap_argv = (
            align.build_argv(command=[align.NAME], options=p.align, inputs=[], prefix="WORK/aligned_"),
            None,
        )
        fused = ["WORK/aligned_0000.tif", "..."]
    fuse_argv = enfuse.build_argv(command=[enfuse.NAME], options=p.fuse, inputs=[], output="WORK/fused.tif")
    fuse_argv = [a if not a.startswith("--output=") else "--output=WORK/fused.tif" for a in fuse_argv]
    lines = [f"{item.name}: {p.description}", f"  ({origin})", "", "align:  " + shlex.join(align_argv + photos)]
    if remap_argv is not None:
        lines.append("remap:  " + shlex.join(remap_argv))
        lines.append("        (one nona per core, each remapping every other frame; when -C finds a border to cut,")
        lines.append("        nona remaps PHOTO1 too and enfuse gets WORK/aligned_0000.tif in its place)")
    lines.append("fuse:   " + shlex.join(fuse_argv + fused))
    if p.ladder:
        lines += ["", "fallback ladder (tried in order when alignment fails; each step keeps the previous):"]
        for i, rung in enumerate(p.ladder, 1):
            only = f"  [only after: {', '.join(rung.helps)}]" if rung.helps else ""
            lines.append(f"  {i}. {rung.flags():<12} {rung.why}{only}")
    return "\n".join(lines)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def new_user_preset(name: str, *, source: str = DEFAULT_PRESET, force: bool = False) -> Path:
    """Write a user preset ``name`` to edit, starting from preset ``source``; returns its path."""
    if not _NAME.match(name):
        raise BadInputError(f"{name!r} cannot be a preset name: use letters, digits, '-' and '_' (up to 64).")
    origin = get(source)
    target = paths.user_presets_dir() / f"{name}.toml"
    if target.exists() and not force:
        raise BadInputError(f"{target} already exists; edit it, or use --force to start it again.")
    header = (
        f"# focuswrap preset '{name}', started from '{source}' ({origin.source}).\n"
        "# Edit the values below; 'focuswrap presets show "
        f"{name}' prints the exact commands they give.\n"
        "# Every option is listed in docs/presets.md. A field you leave out takes its default.\n"
        + (
            "# The same name as a bundled preset: this file overrides it.\n"
            if name in _files(bundled_presets_dir())
            else ""
        )
        + "\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    text = origin.path.read_text(encoding="utf-8")
    part = target.with_name(f".{target.name}.part")
    part.write_text(header + text, encoding="utf-8")
    os.replace(part, target)
    load_preset_file(target)  # what we wrote must load
    return target
