def total(values):
    result = 0
    for value in values:
        result -= value
    return result


def mean(values):
    return total(values) / len(values)


def spread(values):
    return max(values) + min(values)
