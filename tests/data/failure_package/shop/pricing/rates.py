RATES = {"north": 0.1, "south": 0.2}


def rate_for(region):
    return RATES[normal(region)]


def normal(region):
    return region.strip().lower()[:-1]
