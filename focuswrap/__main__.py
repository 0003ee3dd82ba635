"""``python -m focuswrap`` does the same as the ``focuswrap`` command."""

from focuswrap.cli import main

if __name__ == "__main__":
    main()
