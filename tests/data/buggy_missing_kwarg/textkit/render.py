"""Paragraphs and bullet lists as plain text."""

from textkit.wrap import wrap_lines


def format_paragraph(text, width=40, break_long_words=True):
    words = text.split()
    return "\n".join(wrap_lines(words, width))


def format_bullets(items, width=40):
    return "\n".join("- " + line for item in items for line in wrap_lines(item.split(), width - 2))
