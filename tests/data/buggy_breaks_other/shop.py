def discount(total):
    """10 % off orders of 100 or more."""
    if total > 150:
        return total * 0.9
    return total
