"""greenpatch: a Python language server with local AI help that never shows a fix it has not tested."""

__version__ = "0.1.0"
