def has_close_pair(values, threshold):
    """Whether any two of the values are closer to each other than threshold."""
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            if i != j:
                gap = a - b
                if gap < threshold:
                    return True
    return False
