"""``focuswrap doctor``: where the Hugin tools are, their versions, and focuswrap's folders."""

from __future__ import annotations

from pathlib import Path

from focuswrap import __version__, discovery, paths
from focuswrap.config import Config, load_config
from focuswrap.errors import FocuswrapError


def report(*, hugin_dir: Path | None = None) -> tuple[str, bool]:
    """The doctor's text and whether both tools are usable."""
    lines = [f"focuswrap {__version__}", ""]
    ok = True
    limit_mb = Config().cache_max_mb
    try:
        config = load_config()
        config_hugin_dir, limit_mb = config.hugin_dir, config.cache_max_mb
        config_note = str(paths.config_file()) + ("" if paths.config_file().exists() else " (not present: defaults)")
    except FocuswrapError as exc:
        config_hugin_dir = None
        config_note = f"{paths.config_file()} (broken: {exc.message})"
        ok = False
    for name in ("align_image_stack", "enfuse"):
        try:
            tool = discovery.probe_version(
                discovery.locate(name, hugin_dir=hugin_dir, config_hugin_dir=config_hugin_dir)
            )
            where = " ".join(tool.command)
            lines.append(f"{name:<18} {tool.version or 'unknown version'}  {where}  (found via {tool.source})")
            if tool.flatpak:
                lines.append(f"{'':<18} Flatpak: Hugin can read only files under your home folder.")
        except FocuswrapError as exc:
            ok = False
            lines.append(f"{name:<18} NOT USABLE")
            lines.extend("    " + ln for ln in str(exc).splitlines())
            if exc.hint:
                lines.append("    " + exc.hint)
    lines += [
        "",
        f"config file        {config_note}",
        f"user presets       {paths.user_presets_dir()}",
        f"cache              {paths.cache_dir()}",
        f"{'':<18} {_cache_size(limit_mb)}",
    ]
    return "\n".join(lines), ok


def _cache_size(limit_mb: int) -> str:
    """How full the cache of aligned photos is, against its limit, and how to empty it."""
    from focuswrap import cache

    found = cache.entries()
    used = sum(e.bytes for e in found) / 2**20
    limit = "the cache is off (cache_max_mb = 0)" if limit_mb <= 0 else f"of at most {limit_mb} MB"
    stacks = f"{len(found)} stack{'s' if len(found) != 1 else ''}"
    return f"{used:.1f} MB {limit} ({stacks}; 'focuswrap cache clear' empties it)"
