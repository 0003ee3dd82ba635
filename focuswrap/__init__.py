"""focuswrap: focus-stack photos from the command line with Hugin's tools."""

__version__ = "0.1.0"
