"""How a Hugin tool reads its command line (GNU getopt), to vet a preset's ``extra_args``.

align_image_stack and enfuse parse their arguments with ``getopt_long``:
short options group (``-ma DIR`` is ``-m -a DIR``), a short option's value may
be attached (``-aDIR``) or be the next argument, a long option may be
abbreviated to any unambiguous prefix (``--out`` is ``--output``) and takes
its value after ``=`` or as the next argument.  :func:`options_set` reads a
token list exactly that way and returns every option it sets, so a managed
option is found however it is spelt; a plain name (not an option nor an
option's value) is reported too, since the tool would read it as a photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    """A tool's options, as its getopt string and long-option table declare them."""

    #: Short options taking a value (``a:`` in the getopt string).
    short_value: str
    #: Short options taking an optional value, attached only (``v::``).
    short_optional: str
    #: Short options taking none.
    short_flags: str
    #: Long options (without ``--``) -> "value" | "optional" | "none".
    long: dict[str, str]


class BadArgs(ValueError):
    """The tokens cannot be read as the tool would read them (the message says why)."""


def _long_name(spec: Spec, written: str) -> str:
    if written in spec.long:
        return written
    matches = [name for name in spec.long if name.startswith(written)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise BadArgs(f"--{written} is not an option of this tool")
    raise BadArgs(f"--{written} is ambiguous (it could be --{', --'.join(sorted(matches))})")


def options_set(spec: Spec, tokens: Sequence[str]) -> list[tuple[str, str, str | None]]:
    """Every option ``tokens`` set: (option as "-a" or "--name", the token it came from, its value).

    Raises :class:`BadArgs` for an unknown option, a missing value or a token
    the tool would take for a file name.
    """
    found: list[tuple[str, str, str | None]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            raise BadArgs("'--' would turn the options focuswrap adds after it into file names")
        if token.startswith("--"):
            written, eq, value = token[2:].partition("=")
            name = _long_name(spec, written)
            kind = spec.long[name]
            if kind == "none" and eq:
                raise BadArgs(f"--{name} takes no value ({token!r})")
            if kind == "value" and not eq:
                if i >= len(tokens):
                    raise BadArgs(f"--{name} needs a value")
                value = tokens[i]
                i += 1
            found.append((f"--{name}", token, value if (eq or kind == "value") else None))
            continue
        if not token.startswith("-") or token == "-":
            raise BadArgs(f"{token!r} is not an option: the tool would read it as a photo")
        k = 1
        while k < len(token):
            letter = token[k]
            k += 1
            if letter in spec.short_value:
                value = token[k:]
                if not value:
                    if i >= len(tokens):
                        raise BadArgs(f"-{letter} needs a value")
                    value = tokens[i]
                    i += 1
                found.append((f"-{letter}", token, value))
                break
            if letter in spec.short_optional:
                found.append((f"-{letter}", token, token[k:] or None))
                break
            if letter in spec.short_flags:
                found.append((f"-{letter}", token, None))
                continue
            raise BadArgs(f"-{letter} (in {token!r}) is not an option of this tool")
    return found


#: align_image_stack 2022.0 (its ``getopt_long`` string and long options).
ALIGN = Spec(
    short_value="apotfcsg",
    short_optional="",
    short_flags="vemdixyzSAPClh",
    long={
        "corr": "value",
        "threads": "value",
        "distortion": "none",
        "use-given-order": "none",
        "align-to-first": "none",
        "dont-remap-ref": "none",
        "gpu": "none",
    },
)

#: enfuse 4.2 (``enfuse --help``).
ENFUSE = Spec(
    short_value="bdflmo",
    short_optional="vw",
    short_flags="Vacghsx",
    long={
        "levels": "value",
        "output": "value",
        "verbose": "optional",
        "ciecam": "none",
        "no-ciecam": "none",
        "depth": "value",
        "wrap": "optional",
        "help": "none",
        "version": "none",
        "compression": "value",
        "blend-colorspace": "value",
        "exposure-weight": "value",
        "saturation-weight": "value",
        "contrast-weight": "value",
        "entropy-weight": "value",
        "exposure-optimum": "value",
        "exposure-width": "value",
        "soft-mask": "none",
        "hard-mask": "none",
        "save-masks": "optional",
        "load-masks": "optional",
        "fallback-profile": "value",
        "layer-selector": "value",
        "parameter": "value",
        "exposure-weight-function": "value",
        "exposure-cutoff": "value",
        "contrast-window-size": "value",
        "contrast-edge-scale": "value",
        "contrast-min-curvature": "value",
        "gray-projector": "value",
        "entropy-window-size": "value",
        "entropy-cutoff": "value",
        "show-globbing-algorithms": "none",
        "show-image-formats": "none",
        "show-signature": "none",
        "show-software-components": "none",
        "blend-exposure": "none",
        "mask-all": "none",
        "smooth-mask": "none",
    },
)
