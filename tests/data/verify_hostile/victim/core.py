"""A module the hostile tests try to destroy."""


def answer():
    return 42
