"""Areas. rectangle() has a bug: it adds instead of multiplying."""


def rectangle(width, height):
    return width + height


def square(side):
    return side * side
