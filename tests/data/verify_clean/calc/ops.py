"""Arithmetic."""

SCALE = 1


def add(a, b):
    return (a + b) * SCALE


def sub(a, b):
    return a - b


def mul(a, b):
    result = 0
    for _ in range(b):
        result = add(result, a)
    return result


def div(a, b):
    if b == 0:
        raise ZeroDivisionError("division by zero")
    return a / b
