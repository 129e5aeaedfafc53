"""Documents, tree-sitter parsing, the symbol index and the file watcher (the only package importing tree_sitter
and watchdog)."""
