def total_upto(n):
    """Sum of 1..n."""
    return sum(range(n))
