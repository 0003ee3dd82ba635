"""One module per Hugin tool: pure argv builders plus output checks."""
