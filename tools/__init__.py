"""The scripts of ``python tools/<name>.py``; they import their siblings by plain name."""
