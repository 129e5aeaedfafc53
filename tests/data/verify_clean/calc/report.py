"""Uses ops: a second-level importer."""

from calc.ops import sub


def balance(income, spent):
    return sub(income, spent)
