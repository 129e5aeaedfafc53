"""Prompt context: nearby code, definitions of names in use (from the workspace index), recent edits, budgets."""

from greenpatch.context.builder import (
    EditRegion,
    RecentEdits,
    RepoContext,
    names_near,
    nearby,
    repo_context,
    split_at,
)

__all__ = ["EditRegion", "RecentEdits", "RepoContext", "names_near", "nearby", "repo_context", "split_at"]
