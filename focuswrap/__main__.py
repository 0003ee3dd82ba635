"""``python -m focuswrap`` and the ``focuswrap`` command.

The stop signals are handled from the very first moment: importing the
command line (typer, click, pydantic) takes a while, and a Ctrl-C meanwhile
printed a KeyboardInterrupt traceback and ended the process by the signal.
Until :func:`focuswrap.cli.main` installs its own handler, a stop signal
simply ends focuswrap with exit code 130 (nothing has started yet that
needs cleaning up).
"""

# The C module, not ``signal``: importing ``signal`` imports ``enum``, itself
# slow enough for a Ctrl-C to land in it.  ``os`` is loaded already at start-up.
import os

# The type checker reads the stubs of ``signal`` (``_signal`` has none); Python runs the C module.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from types import FrameType
else:
    import _signal


def _stop_while_starting(signum: int, frame: "FrameType | None") -> None:
    try:
        os.write(2, b"focuswrap: error: Interrupted while starting; nothing was done.\n")
    except OSError:
        pass
    os._exit(130)


def main() -> None:
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(_signal, name):
            _signal.signal(getattr(_signal, name), _stop_while_starting)
    from focuswrap.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
