def is_adult(age):
    """Adults are 18 or older."""
    return age > 18
