"""Formatting, independent of ops."""


def money(value):
    return f"${value:,.2f}"


def shout(word):
    return word.upper() + "!"
