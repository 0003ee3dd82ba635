"""``focuswrap gui``: a local web page for people who never open a terminal.

The package is a small Starlette app (:mod:`focuswrap.gui.app`) served by
uvicorn (:mod:`focuswrap.gui.server`) on this computer only.  It imports the
library; the library never imports it, and ``focuswrap --help`` never loads
it.  Stacks run as child processes of ``focuswrap stack --events`` whose
typed events (:mod:`focuswrap.events`) become the page's live progress
(:mod:`focuswrap.gui.jobs`).  The page itself is static HTML, CSS and
JavaScript in ``static/``: no build step, nothing fetched from the network.
"""
