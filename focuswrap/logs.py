"""The library's log, configured once (by ``cli.main``): warnings always, its debug log with --verbose.

Every module logs under ``focuswrap.*`` and never configures logging itself. The tools' own
commands and output lines (``focuswrap.tool.*``) are left out even with --verbose: the display
shows them already, in order with the progress.
"""

from __future__ import annotations

import logging
import sys

_FORMAT = "focuswrap: %(levelname)s: %(name)s: %(message)s"


#: focuswrap's own handler, told apart from any a host program added.
_handler: logging.Handler | None = None


def configure(*, verbose: bool = False) -> None:
    """Send focuswrap's log to stderr (once; again only changes the level)."""
    global _handler
    root = logging.getLogger("focuswrap")
    if _handler is None or _handler not in root.handlers:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(_handler)
        root.propagate = False
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("focuswrap.tool").setLevel(logging.INFO)
