"""Where focuswrap keeps the user's config, presets and cache.

``FOCUSWRAP_HOME`` relocates every user directory at once (tests isolate
themselves with it); otherwise platformdirs picks the usual place per OS.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "focuswrap"
HOME_ENV = "FOCUSWRAP_HOME"


def config_dir() -> Path:
    """The user config folder (holds ``config.toml`` and ``presets/``)."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def cache_dir() -> Path:
    """The user cache folder (aligned frames kept for instant re-fuse)."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def config_file() -> Path:
    return config_dir() / "config.toml"


def user_presets_dir() -> Path:
    return config_dir() / "presets"
