"""Greedy line wrapping."""


def wrap_lines(words, width, *, break_long_words=True):
    """Lines of at most `width` characters; a longer word is cut into pieces unless break_long_words is False."""
    lines = []
    current = ""
    for word in words:
        while break_long_words and len(word) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current = current + " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines
