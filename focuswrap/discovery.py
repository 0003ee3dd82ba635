"""Find Hugin's ``align_image_stack`` and ``enfuse`` and read their versions.

Each tool is looked for on its own (align_image_stack may come from one place
and enfuse from another); tried in order, first hit wins:

1. ``--hugin-dir``, else ``FOCUSWRAP_HUGIN_DIR``, else ``hugin_dir`` in
   config.toml.  The first of these that is set is the *only* place searched:
   a folder the user chose that lacks the tool is an error, never a reason to
   run some other copy silently.
2. ``PATH``.
3. The usual install places of the OS (see :func:`_platform_places`).

:func:`locate` and :func:`search_places` start no process; only
:func:`probe_version` runs the tool (through :func:`focuswrap.proc.run`).
Every file-system and environment look-up can be injected, so the search for
all three OSes is testable on one machine.
"""

from __future__ import annotations

import contextlib
import logging
import ntpath
import os
import posixpath
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any, Literal

from focuswrap.errors import MissingToolError, ToolTimeout, ToolTooOldError
from focuswrap.hugin import align as align_tool
from focuswrap.hugin import enfuse as enfuse_tool
from focuswrap.hugin.base import version_tuple
from focuswrap.proc import run, stop_all

log = logging.getLogger("focuswrap.discovery")

ALIGN = "align_image_stack"
ENFUSE = "enfuse"
TOOL_NAMES = (ALIGN, ENFUSE)
HUGIN_DIR_ENV = "FOCUSWRAP_HUGIN_DIR"
FLATPAK_APP = "net.sourceforge.Hugin"
MIN_ENFUSE = enfuse_tool.MIN_VERSION
PROBE_TIMEOUT = 10.0
#: How to un-choose each explicit folder, for the error message.
_SETTING = {"--hugin-dir": "--hugin-dir", HUGIN_DIR_ENV: HUGIN_DIR_ENV, "config.toml": "hugin_dir from config.toml"}
FLATPAK_NOTE = "runs inside the Flatpak sandbox: it sees only files under your home folder"

#: ``which(command, path=PATH) -> full path or None`` (shutil.which's signature).
Which = Callable[..., "str | None"]
#: Is there a runnable file at this path?
Exists = Callable[[str], bool]


@dataclass(frozen=True)
class Tool:
    """A found tool: how to start it and where it came from."""

    name: str  # "align_image_stack" | "enfuse"
    command: tuple[str, ...]  # argv prefix
    source: str  # where it was found, for people: "PATH", "--hugin-dir", "Flatpak (user)"...
    version: str | None = None  # filled by probe_version ("unknown" if unreadable)
    flatpak: bool = False

    @property
    def note(self) -> str | None:
        """A caveat to show with the tool (the Flatpak sandbox), or None."""
        return FLATPAK_NOTE if self.flatpak else None


@dataclass(frozen=True)
class Tools:
    """Both tools a focus stack needs."""

    align: Tool
    enfuse: Tool


@dataclass(frozen=True)
class _Place:
    source: str
    where: str  # a file path, the name looked up on PATH, or a Flatpak app folder
    kind: Literal["explicit", "path", "file", "flatpak"]
    folder: str = ""  # for "explicit": the folder the user chose


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _platform(platform: str | None) -> str:
    plat = platform or sys.platform
    # Anything that is neither macOS nor Windows (linux, freebsd...) gets the Unix places.
    return plat if plat in ("darwin", "win32") else "linux"


def _platform_places(name: str, exe: str, plat: str, env: Mapping[str, str], home: str) -> list[_Place]:
    """The usual install places of ``name`` on ``plat``, most likely first."""
    if plat == "darwin":
        # The Hugin .dmg bundles align_image_stack in Hugin.app but enfuse in
        # PTBatcherGUI.app; 2022 builds also add tools_mac/ with symlinks to both.
        bundle = "Hugin.app" if name == ALIGN else "PTBatcherGUI.app"
        return [
            _Place("macOS Hugin tools_mac", f"/Applications/Hugin/tools_mac/{name}", "file"),
            _Place(f"macOS {bundle}", f"/Applications/Hugin/{bundle}/Contents/MacOS/{name}", "file"),
            _Place("Homebrew", f"/opt/homebrew/bin/{name}", "file"),
            _Place("Homebrew (Intel) or manual install", f"/usr/local/bin/{name}", "file"),
            _Place("MacPorts", f"/opt/local/bin/{name}", "file"),
        ]
    if plat == "win32":
        # A 32-bit Python on 64-bit Windows sees ProgramFiles pointing at
        # "Program Files (x86)"; ProgramW6432 always names the 64-bit folder.
        pf = env.get("ProgramW6432") or env.get("ProgramFiles") or r"C:\Program Files"
        pf86 = env.get("ProgramFiles(x86)") or r"C:\Program Files (x86)"
        places = [_Place("Hugin installer (Program Files)", ntpath.join(pf, "Hugin", "bin", exe), "file")]
        if ntpath.normcase(pf86) != ntpath.normcase(pf):
            places.append(
                _Place("Hugin installer (Program Files (x86))", ntpath.join(pf86, "Hugin", "bin", exe), "file")
            )
        return places
    # Debian/Ubuntu split the tools: align_image_stack is in hugin-tools, enfuse in enfuse.
    package = "hugin-tools" if name == ALIGN else "enfuse"
    data_home = env.get("XDG_DATA_HOME") or posixpath.join(home, ".local", "share")
    return [
        _Place(f"Debian/Ubuntu package {package}", f"/usr/bin/{name}", "file"),
        _Place("Flatpak (system)", f"/var/lib/flatpak/app/{FLATPAK_APP}", "flatpak"),
        _Place("Flatpak (user)", posixpath.join(data_home, "flatpak", "app", FLATPAK_APP), "flatpak"),
    ]


def _places(
    name: str,
    *,
    hugin_dir: str | os.PathLike[str] | None,
    config_hugin_dir: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    plat: str,
    home: str | os.PathLike[str] | None,
) -> list[_Place]:
    if name not in TOOL_NAMES:
        raise ValueError(f"unknown tool {name!r}; expected one of {TOOL_NAMES}")
    join = ntpath.join if plat == "win32" else posixpath.join
    exe = f"{name}.exe" if plat == "win32" else name
    explicit = (
        ("--hugin-dir", hugin_dir),
        (HUGIN_DIR_ENV, env.get(HUGIN_DIR_ENV) or None),  # set but empty counts as unset
        ("config.toml", config_hugin_dir),
    )
    for source, folder in explicit:
        if folder is not None:
            folder = os.path.expanduser(os.fspath(folder))
            return [_Place(source, join(folder, exe), "explicit", folder)]
    home_str = os.fspath(home) if home is not None else os.path.expanduser("~")
    return [_Place("PATH", exe, "path"), *_platform_places(name, exe, plat, env, home_str)]


def search_places(
    name: str,
    *,
    hugin_dir: str | os.PathLike[str] | None = None,
    config_hugin_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
    which: Which = shutil.which,
    exists: Exists = _is_executable,
    is_dir: Exists = os.path.isdir,
    home: str | os.PathLike[str] | None = None,
) -> list[tuple[str, str]]:
    """The places :func:`locate` searches for ``name``, in order, as (source, path or name).

    Takes the same arguments as :func:`locate` so callers can pass one set;
    ``which``, ``exists`` and ``is_dir`` are unused because listing checks nothing.
    """
    env = os.environ if env is None else env
    places = _places(
        name, hugin_dir=hugin_dir, config_hugin_dir=config_hugin_dir, env=env, plat=_platform(platform), home=home
    )
    return [(p.source, p.where) for p in places]


def install_advice(platform: str | None = None) -> str:
    """One line telling how to install Hugin's tools on ``platform`` (default: this OS)."""
    plat = _platform(platform)
    if plat == "darwin":
        return (
            "Install Hugin: the .dmg from https://hugin.sourceforge.io/download/ (copy the Hugin folder "
            "into /Applications), or: brew install --cask hugin"
        )
    if plat == "win32":
        return "Install Hugin with the installer from https://hugin.sourceforge.io/download/ (it includes enfuse)."
    return (
        "Install Hugin's tools: Debian/Ubuntu: sudo apt-get install hugin-tools enfuse; "
        "Fedora: sudo dnf install hugin-base enblend; or the Flatpak: flatpak install flathub " + FLATPAK_APP
    )


def _missing_message(name: str, places: list[_Place], plat: str) -> str:
    lines = [f"{name} was not found. Searched, in this order:"]
    lines += [f"    {p.source}: {p.where}" for p in places]
    lines.append(install_advice(plat))
    return "\n".join(lines)


def locate(
    name: str,
    *,
    hugin_dir: str | os.PathLike[str] | None = None,
    config_hugin_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
    which: Which = shutil.which,
    exists: Exists = _is_executable,
    is_dir: Exists = os.path.isdir,
    home: str | os.PathLike[str] | None = None,
) -> Tool:
    """Find ``name`` without running it; raise :class:`MissingToolError` naming every place searched."""
    env = os.environ if env is None else env
    plat = _platform(platform)
    places = _places(name, hugin_dir=hugin_dir, config_hugin_dir=config_hugin_dir, env=env, plat=plat, home=home)
    # An empty PATH finds nothing (shutil.which would fall back to os.environ's PATH on None).
    search_path = env.get("PATH", "")
    for place in places:
        if place.kind == "explicit":
            if exists(place.where):
                return Tool(name, (place.where,), place.source)
            exe = ntpath.basename(place.where) if plat == "win32" else posixpath.basename(place.where)
            raise MissingToolError(
                f"{exe} not found in {place.folder} (from {place.source}).\n"
                f"Put {exe} there, or drop {_SETTING[place.source]} to search PATH and the usual install places.\n"
                + install_advice(plat)
            )
        if place.kind == "file" and exists(place.where):
            return Tool(name, (place.where,), place.source)
        if place.kind == "path":
            found = which(place.where, path=search_path)
            if found:
                return Tool(name, (found,), place.source)
        if place.kind == "flatpak" and is_dir(place.where):
            flatpak = which("flatpak", path=search_path)
            if flatpak:
                command = (flatpak, "run", f"--command={name}", FLATPAK_APP)
                return Tool(name, command, place.source, flatpak=True)
    raise MissingToolError(_missing_message(name, places, plat))


# Each tool module knows how to ask its tool's version and the oldest that works.
parse_align_version = align_tool.parse_version
parse_enfuse_version = enfuse_tool.parse_version
_version_tuple = version_tuple
_TOOL_MODULES = {ALIGN: align_tool, ENFUSE: enfuse_tool}


def probe_version(tool: Tool, *, timeout: float = PROBE_TIMEOUT) -> Tool:
    """Run the tool once to read its version; a copy of ``tool`` with ``version`` set.

    An unreadable version gives ``"unknown"`` rather than a failure; an enfuse
    older than 4.0 raises :class:`ToolTooOldError`.
    """
    module = _TOOL_MODULES[tool.name]
    flag = module.VERSION_FLAG
    try:
        done = run([*tool.command, flag], timeout=timeout)
    except ToolTimeout:
        # A cold Flatpak start can be slow; not knowing the version is no reason to stop.
        log.warning("%s did not report its version within %g s", tool.name, timeout)
        return replace(tool, version="unknown")
    # The exit code is ignored: some align_image_stack builds exit 1 after -h.
    text = done.stdout + "\n" + done.stderr
    version = module.parse_version(text)
    if version is None:
        log.debug("no version in the output of %s %s", shlex.join(tool.command), flag)
        return replace(tool, version="unknown")
    minimum = module.MIN_VERSION
    if minimum is not None and version_tuple(version) < minimum:
        need = ".".join(map(str, minimum))
        raise ToolTooOldError(
            f"{tool.name} {version} ({shlex.join(tool.command)}, from {tool.source}) is too old, "
            f"need {need} or newer.\n"
            f"Install a newer one, or point --hugin-dir at a folder holding {tool.name} {need} or newer.\n"
            + install_advice()
        )
    return replace(tool, version=version)


def find_tools(
    *,
    hugin_dir: str | os.PathLike[str] | None = None,
    config_hugin_dir: str | os.PathLike[str] | None = None,
    probe: bool = True,
    timeout: float = PROBE_TIMEOUT,
    **injections: Any,
) -> Tools:
    """Locate both tools (each on its own) and, if ``probe``, read their versions."""
    align = locate(ALIGN, hugin_dir=hugin_dir, config_hugin_dir=config_hugin_dir, **injections)
    enfuse = locate(ENFUSE, hugin_dir=hugin_dir, config_hugin_dir=config_hugin_dir, **injections)
    for tool in (align, enfuse):
        log.debug("found %s: %s (via %s)", tool.name, shlex.join(tool.command), tool.source)
    if probe:
        # Both probes at once: each is a process start (about 10 ms), paid before every stack.
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="focuswrap-probe")
        try:
            probes = [pool.submit(probe_version, t, timeout=timeout) for t in (align, enfuse)]
            align, enfuse = (p.result() for p in probes)
        except BaseException:
            # Ctrl-C (or a failure) while a probe runs: stop the probes now rather
            # than wait for a hanging tool's whole timeout on the worker thread.
            stop_all()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    return Tools(align=align, enfuse=enfuse)


@contextlib.contextmanager
def finding_tools(
    *, hugin_dir: str | os.PathLike[str] | None = None, config_hugin_dir: str | os.PathLike[str] | None = None
) -> Iterator[Future[Tools]]:
    """:func:`find_tools` on a side thread while the caller goes on (loading the stack's modules).

    Ctrl-C (or any failure) in the caller stops the version probes at once rather than wait
    for a hanging tool's whole timeout on the side thread.
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="focuswrap-find")
    try:
        yield pool.submit(find_tools, hugin_dir=hugin_dir, config_hugin_dir=config_hugin_dir)
    except BaseException:
        stop_all()
        raise
    finally:
        pool.shutdown(wait=True)


def companion(tool: Tool, name: str) -> Tool | None:
    """Another Hugin tool installed beside ``tool`` (e.g. ``nona`` beside align_image_stack), or None.

    Hugin's command-line tools ship together (Debian's hugin-tools, the
    macOS bundle, the Windows bin folder, the Flatpak), so the companion is
    looked for in the same place rather than searched for again.
    """
    if tool.flatpak:
        command = tuple(f"--command={name}" if part.startswith("--command=") else part for part in tool.command)
        return replace(tool, name=name, command=command, version=None)
    program = tool.command[0]
    folder = os.path.dirname(program)
    exe = name + (".exe" if program.lower().endswith(".exe") else "")
    candidate = os.path.join(folder, exe) if folder else shutil.which(exe)
    if candidate and _is_executable(candidate):
        return replace(tool, name=name, command=(candidate,), version=None)
    return None
