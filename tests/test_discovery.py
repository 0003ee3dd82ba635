"""Tests for focuswrap.discovery: search order per OS, precedence, messages, versions.

Only ``test_real_tools`` needs Hugin; the rest use fake executables in
``tmp_path`` or injected look-ups, so all three OSes are covered on any box.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from focuswrap import discovery
from focuswrap.discovery import (
    ALIGN,
    ENFUSE,
    FLATPAK_APP,
    Tool,
    find_tools,
    locate,
    parse_align_version,
    parse_enfuse_version,
    probe_version,
    search_places,
)
from focuswrap.errors import ExitCode, MissingToolError, ToolTimeout, ToolTooOldError

# Recorded from the real tools on Debian (hugin-tools 2022.0.0, enfuse 4.2).
# `align_image_stack -h`, first lines of stdout (exit code 0 on this build):
ALIGN_H_2022 = (
    "align_image_stack: align overlapping images for HDR creation\n"
    "align_image_stack version 2022.0.0.a0962865f932\n"
    "\n"
    "Usage: align_image_stack [options] input files\n"
    "Valid options are:\n"
)
# `enfuse -V`, all of stdout:
ENFUSE_V_42 = (
    "enfuse 4.2\n"
    "\n"
    "Copyright (C) 2004-2009 Andrew Mihal.\n"
    "Copyright (C) 2009-2016 Christoph Spiel.\n"
    "\n"
    "License GPLv2+: GNU GPL version 2 or later <http://www.gnu.org/licenses/gpl.html>\n"
    "This is free software: you are free to change and redistribute it.\n"
    "There is NO WARRANTY, to the extent permitted by law.\n"
    "\n"
    "Written by Andrew Mihal, Christoph Spiel and others.\n"
)

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="fake tools are shebang scripts")


def fake_tool(folder: Path, name: str, *, stdout: str = "", stderr: str = "", code: int = 0) -> Path:
    """Write an executable Python script that replays the given output."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(
        "#!/usr/bin/env python3\n"
        "import sys\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({code})\n"
    )
    path.chmod(0o755)
    return path


def only(*paths: str):
    """An ``exists`` that knows exactly these files."""
    return lambda p: p in paths


def no_which(cmd: str, path: str | None = None) -> str | None:
    return None


NO_DIRS = only()  # an is_dir that finds nothing


# --- ordered search lists, one per OS ---------------------------------------------------


def test_linux_search_order() -> None:
    places = search_places(ALIGN, env={"PATH": ""}, platform="linux", home="/home/ann")
    assert places == [
        ("PATH", "align_image_stack"),
        ("Debian/Ubuntu package hugin-tools", "/usr/bin/align_image_stack"),
        ("Flatpak (system)", "/var/lib/flatpak/app/net.sourceforge.Hugin"),
        ("Flatpak (user)", "/home/ann/.local/share/flatpak/app/net.sourceforge.Hugin"),
    ]
    # enfuse is a separate Debian package; XDG_DATA_HOME moves the user Flatpak folder.
    places = search_places(ENFUSE, env={"XDG_DATA_HOME": "/data/ann"}, platform="linux", home="/home/ann")
    assert places[1] == ("Debian/Ubuntu package enfuse", "/usr/bin/enfuse")
    assert places[3] == ("Flatpak (user)", "/data/ann/flatpak/app/net.sourceforge.Hugin")


def test_macos_search_order_splits_the_app_bundles() -> None:
    assert search_places(ALIGN, env={}, platform="darwin") == [
        ("PATH", "align_image_stack"),
        ("macOS Hugin tools_mac", "/Applications/Hugin/tools_mac/align_image_stack"),
        ("macOS Hugin.app", "/Applications/Hugin/Hugin.app/Contents/MacOS/align_image_stack"),
        ("Homebrew", "/opt/homebrew/bin/align_image_stack"),
        ("Homebrew (Intel) or manual install", "/usr/local/bin/align_image_stack"),
        ("MacPorts", "/opt/local/bin/align_image_stack"),
    ]
    assert search_places(ENFUSE, env={}, platform="darwin")[2] == (
        "macOS PTBatcherGUI.app",
        "/Applications/Hugin/PTBatcherGUI.app/Contents/MacOS/enfuse",
    )


def test_windows_search_order_uses_exe_names_and_program_files() -> None:
    env = {"ProgramFiles": r"D:\Apps", "ProgramFiles(x86)": r"D:\Apps (x86)"}
    assert search_places(ENFUSE, env=env, platform="win32") == [
        ("PATH", "enfuse.exe"),
        ("Hugin installer (Program Files)", r"D:\Apps\Hugin\bin\enfuse.exe"),
        ("Hugin installer (Program Files (x86))", r"D:\Apps (x86)\Hugin\bin\enfuse.exe"),
    ]
    # Without the variables: the usual folders.
    assert [w for _, w in search_places(ALIGN, env={}, platform="win32")[1:]] == [
        r"C:\Program Files\Hugin\bin\align_image_stack.exe",
        r"C:\Program Files (x86)\Hugin\bin\align_image_stack.exe",
    ]


def test_windows_32bit_python_still_searches_64bit_program_files() -> None:
    # 32-bit Python on 64-bit Windows: ProgramFiles is the x86 folder, ProgramW6432 the real one.
    env = {
        "ProgramFiles": r"C:\Program Files (x86)",
        "ProgramFiles(x86)": r"C:\Program Files (x86)",
        "ProgramW6432": r"C:\Program Files",
    }
    assert [w for _, w in search_places(ENFUSE, env=env, platform="win32")[1:]] == [
        r"C:\Program Files\Hugin\bin\enfuse.exe",
        r"C:\Program Files (x86)\Hugin\bin\enfuse.exe",
    ]
    # 32-bit Windows: one Program Files folder, searched once.
    env = {"ProgramFiles": r"C:\Program Files", "ProgramFiles(x86)": r"c:\program files"}
    assert len(search_places(ENFUSE, env=env, platform="win32")) == 2


def test_explicit_dir_is_the_only_place_listed() -> None:
    assert search_places(ENFUSE, hugin_dir="/opt/hugin/bin", env={}, platform="linux") == [
        ("--hugin-dir", "/opt/hugin/bin/enfuse")
    ]


def test_unknown_tool_name_is_a_bug() -> None:
    with pytest.raises(ValueError):
        search_places("enblend", env={}, platform="linux")


# --- precedence ---------------------------------------------------------------------------


@posix_only
def test_precedence_hugin_dir_env_config_path_platform(tmp_path: Path) -> None:
    dirs = {k: tmp_path / k for k in ("cli", "env", "config", "path")}
    for d in dirs.values():
        fake_tool(d, ALIGN)
    system = "/usr/bin/align_image_stack"

    def exists(p: str) -> bool:
        return p == system or (p.startswith(str(tmp_path)) and discovery._is_executable(p))

    kw: dict = dict(platform="linux", exists=exists, is_dir=NO_DIRS, home=str(tmp_path))
    env = {"FOCUSWRAP_HUGIN_DIR": str(dirs["env"]), "PATH": str(dirs["path"])}
    args: dict = dict(hugin_dir=dirs["cli"], config_hugin_dir=dirs["config"])

    t = locate(ALIGN, env=env, **args, **kw)
    assert (t.source, t.command) == ("--hugin-dir", (str(dirs["cli"] / ALIGN),))
    del args["hugin_dir"]
    t = locate(ALIGN, env=env, **args, **kw)
    assert (t.source, t.command) == ("FOCUSWRAP_HUGIN_DIR", (str(dirs["env"] / ALIGN),))
    del env["FOCUSWRAP_HUGIN_DIR"]
    t = locate(ALIGN, env=env, **args, **kw)
    assert (t.source, t.command) == ("config.toml", (str(dirs["config"] / ALIGN),))
    del args["config_hugin_dir"]
    t = locate(ALIGN, env=env, **kw)
    assert (t.source, t.command) == ("PATH", (str(dirs["path"] / ALIGN),))
    t = locate(ALIGN, env={"PATH": ""}, **kw)
    assert (t.source, t.command) == ("Debian/Ubuntu package hugin-tools", (system,))


@posix_only
def test_empty_env_var_is_ignored(tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", ENFUSE)
    t = locate(ENFUSE, env={"FOCUSWRAP_HUGIN_DIR": "", "PATH": str(tmp_path / "bin")}, platform="linux")
    assert t.source == "PATH"


@posix_only
@pytest.mark.parametrize(
    ("option", "label"),
    [("hugin_dir", "--hugin-dir"), ("env", "FOCUSWRAP_HUGIN_DIR"), ("config_hugin_dir", "config.toml")],
)
def test_explicit_dir_without_the_tool_is_an_error(tmp_path: Path, option: str, label: str) -> None:
    chosen = tmp_path / "chosen"
    fake_tool(chosen, ALIGN)  # align is there, enfuse is not
    fake_tool(tmp_path / "bin", ENFUSE)  # ...but PATH has one, which must not be used
    env = {"PATH": str(tmp_path / "bin")}
    kw: dict = {}
    if option == "env":
        env["FOCUSWRAP_HUGIN_DIR"] = str(chosen)
    else:
        kw[option] = chosen
    assert locate(ALIGN, env=env, platform="linux", **kw).source == label
    with pytest.raises(MissingToolError) as info:
        locate(ENFUSE, env=env, platform="linux", **kw)
    assert str(info.value).startswith(f"enfuse not found in {chosen} (from {label}).")
    assert info.value.exit_code == ExitCode.MISSING_TOOL


@posix_only
def test_each_tool_is_found_on_its_own(tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", ALIGN)
    kw: dict = dict(env={"PATH": str(tmp_path / "bin")}, platform="linux", is_dir=NO_DIRS, home=str(tmp_path))

    def exists(p: str) -> bool:
        return p == "/usr/bin/enfuse" or discovery._is_executable(p)

    tools = find_tools(probe=False, exists=exists, **kw)
    assert tools.align.source == "PATH"
    assert tools.enfuse.command == ("/usr/bin/enfuse",)
    assert tools.enfuse.source == "Debian/Ubuntu package enfuse"


# --- per-OS specifics ---------------------------------------------------------------------


def test_windows_finds_exe_in_program_files_x86() -> None:
    exe = r"C:\Program Files (x86)\Hugin\bin\enfuse.exe"
    asked: list[str] = []

    def which(cmd: str, path: str | None = None) -> str | None:
        asked.append(cmd)
        return None

    t = locate(ENFUSE, env={}, platform="win32", which=which, exists=only(exe))
    assert t.command == (exe,)
    assert t.source == "Hugin installer (Program Files (x86))"
    assert asked == ["enfuse.exe"]


def test_windows_hugin_dir_joins_with_backslashes() -> None:
    exe = r"D:\Hugin\bin\align_image_stack.exe"
    t = locate(ALIGN, hugin_dir=r"D:\Hugin\bin", env={}, platform="win32", which=no_which, exists=only(exe))
    assert t.command == (exe,)
    with pytest.raises(MissingToolError, match=r"enfuse\.exe not found in D:\\Hugin\\bin \(from --hugin-dir\)"):
        locate(ENFUSE, hugin_dir=r"D:\Hugin\bin", env={}, platform="win32", which=no_which, exists=only(exe))


def test_macos_align_from_hugin_app_enfuse_from_ptbatchergui() -> None:
    align = "/Applications/Hugin/Hugin.app/Contents/MacOS/align_image_stack"
    enfuse = "/Applications/Hugin/PTBatcherGUI.app/Contents/MacOS/enfuse"
    kw: dict = dict(env={}, platform="darwin", which=no_which, exists=only(align, enfuse))
    tools = find_tools(probe=False, **kw)
    assert (tools.align.command, tools.align.source) == ((align,), "macOS Hugin.app")
    assert (tools.enfuse.command, tools.enfuse.source) == ((enfuse,), "macOS PTBatcherGUI.app")
    # The 2022 tools_mac symlinks come first.
    links = "/Applications/Hugin/tools_mac/enfuse"
    t = locate(ENFUSE, env={}, platform="darwin", which=no_which, exists=only(enfuse, links))
    assert t.command == (links,)


def test_flatpak_command_form() -> None:
    user_app = f"/home/ann/.local/share/flatpak/app/{FLATPAK_APP}"

    def which(cmd: str, path: str | None = None) -> str | None:
        return "/usr/bin/flatpak" if cmd == "flatpak" else None

    kw: dict = dict(env={"PATH": "/usr/bin"}, platform="linux", home="/home/ann")
    t = locate(ENFUSE, which=which, exists=only(), is_dir=only(user_app), **kw)
    assert t.command == ("/usr/bin/flatpak", "run", "--command=enfuse", "net.sourceforge.Hugin")
    assert t.flatpak and t.source == "Flatpak (user)"
    assert t.note is not None and "home folder" in t.note
    assert Tool(ENFUSE, ("/usr/bin/enfuse",), "PATH").note is None


def test_flatpak_app_without_flatpak_command_is_not_used() -> None:
    system_app = f"/var/lib/flatpak/app/{FLATPAK_APP}"
    with pytest.raises(MissingToolError):
        locate(ALIGN, env={}, platform="linux", which=no_which, exists=only(), is_dir=only(system_app))


# --- missing-tool messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "advice"),
    [
        ("linux", ["sudo apt-get install hugin-tools enfuse", "sudo dnf install hugin-base enblend"]),
        ("darwin", ["hugin.sourceforge.io", "brew install --cask hugin"]),
        ("win32", ["hugin.sourceforge.io", "installer"]),
    ],
)
def test_missing_tool_message_lists_places_and_install_advice(platform: str, advice: list[str]) -> None:
    kw: dict = dict(env={}, platform=platform, home="/home/ann")
    with pytest.raises(MissingToolError) as info:
        locate(ENFUSE, which=no_which, exists=only(), is_dir=NO_DIRS, **kw)
    lines = str(info.value).splitlines()
    assert lines[0] == "enfuse was not found. Searched, in this order:"
    places = search_places(ENFUSE, **kw)
    assert lines[1:-1] == [f"    {source}: {where}" for source, where in places]
    for text in advice:
        assert text in lines[-1]


# --- version parsing ----------------------------------------------------------------------


def test_parse_align_version() -> None:
    assert parse_align_version(ALIGN_H_2022) == "2022.0.0.a0962865f932"
    assert parse_align_version("align_image_stack version 2019.2.0.b690aa0334b0\n") == "2019.2.0.b690aa0334b0"
    assert parse_align_version("Usage: align_image_stack [options] input files\n") is None


def test_parse_enfuse_version() -> None:
    assert parse_enfuse_version(ENFUSE_V_42) == "4.2"
    assert parse_enfuse_version("enfuse 4.1.4\n\nCopyright ...") == "4.1.4"
    assert parse_enfuse_version("enfuse 4.0-753b534c819d\n") == "4.0-753b534c819d"
    assert parse_enfuse_version("enfuse 3.2\n") == "3.2"
    # "version 2 or later" in the licence line is not enfuse's version.
    assert parse_enfuse_version(ENFUSE_V_42.split("\n", 1)[1]) is None


# --- probing (fake executables, real process) ---------------------------------------------


@posix_only
def test_probe_reads_versions_from_stdout_or_stderr(tmp_path: Path) -> None:
    # Older align_image_stack builds print the banner on stderr and exit 1 after -h.
    fake_tool(tmp_path, ALIGN, stderr=ALIGN_H_2022.replace("2022.0.0.a0962865f932", "2020.0.0.2f576e5d5b4a"), code=1)
    fake_tool(tmp_path, ENFUSE, stdout=ENFUSE_V_42)
    tools = find_tools(hugin_dir=tmp_path, env={})
    assert tools.align.version == "2020.0.0.2f576e5d5b4a"
    assert tools.enfuse.version == "4.2"
    assert tools.enfuse.source == "--hugin-dir"


@posix_only
def test_probe_too_old_enfuse(tmp_path: Path) -> None:
    tool = Tool(ENFUSE, (str(fake_tool(tmp_path, ENFUSE, stdout="enfuse 3.2\n")),), "PATH")
    with pytest.raises(ToolTooOldError, match=r"too old, need 4\.0 or newer") as info:
        probe_version(tool)
    assert info.value.exit_code == ExitCode.MISSING_TOOL


@posix_only
def test_probe_accepts_enfuse_4_0(tmp_path: Path) -> None:
    tool = Tool(ENFUSE, (str(fake_tool(tmp_path, ENFUSE, stdout="enfuse 4.0-753b534c819d\n")),), "PATH")
    assert probe_version(tool).version == "4.0-753b534c819d"


@posix_only
def test_probe_unreadable_version_is_unknown(tmp_path: Path) -> None:
    tool = Tool(ENFUSE, (str(fake_tool(tmp_path, ENFUSE, stdout="what?\n", code=2)),), "PATH")
    assert probe_version(tool).version == "unknown"


def test_probe_timeout_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(argv, **kw):
        assert kw["timeout"] == 10
        raise ToolTimeout("slow", argv=argv, returncode=None)

    monkeypatch.setattr(discovery, "run", slow)
    assert probe_version(Tool(ALIGN, ("/x/align_image_stack",), "PATH")).version == "unknown"


def test_locate_and_find_tools_without_probe_start_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **kw):
        raise AssertionError("no process may start")

    monkeypatch.setattr(discovery, "run", boom)
    found = only("/usr/bin/align_image_stack", "/usr/bin/enfuse")
    tools = find_tools(probe=False, env={}, platform="linux", exists=found, which=no_which, is_dir=NO_DIRS)
    assert tools.align.version is None and tools.enfuse.version is None


@pytest.mark.real
@pytest.mark.skipif(
    shutil.which("align_image_stack") is None or shutil.which("enfuse") is None,
    reason="Hugin's align_image_stack and enfuse are not on PATH",
)
def test_real_tools() -> None:
    # Only PATH: a FOCUSWRAP_HUGIN_DIR in the developer's shell must not steer the test.
    tools = find_tools(env={"PATH": os.environ.get("PATH", "")})
    assert tools.align.version not in (None, "unknown")
    assert tools.enfuse.version not in (None, "unknown")
    assert discovery._version_tuple(tools.enfuse.version) >= (4, 0)
