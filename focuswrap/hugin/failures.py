"""Both tools' failure rules side by side, and :func:`classify` by tool name.

Each tool module owns its rules and its ``classify``; this module only puts
them together for callers (and tests) that name the tool.
"""

from __future__ import annotations

import re

from focuswrap.diagnose import ALIGN, ANY, DIAGNOSES, ENFUSE, TOOLS, Diagnosis, Rule, final_advice
from focuswrap.hugin import align, enfuse

__all__ = ["ALIGN", "ANY", "DIAGNOSES", "ENFUSE", "RULES", "Diagnosis", "Rule", "classify", "final_advice"]

#: Every rule, each once (the shared ones appear in both tools' tables).
RULES: tuple[Rule, ...] = align.RULES + tuple(r for r in enfuse.RULES if r not in align.RULES)


def classify(tool: str, returncode: int | None, stdout: str, stderr: str) -> Diagnosis:
    """Say what a finished run of ``tool`` (align_image_stack or enfuse, a path or a name) means.

    Raises ValueError for a tool it does not know.
    """
    name = re.split(r"[\\/]", tool)[-1].lower().removesuffix(".exe")
    if name not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}: expected one of {', '.join(TOOLS)}")
    if name == ALIGN:
        return align.classify(returncode, stdout, stderr)
    return enfuse.classify(returncode, stdout, stderr)
