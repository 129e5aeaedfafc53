from .pricing.rates import rate_for
from .text import label


class Cart:
    def __init__(self, region):
        self.region = region
        self.items = []

    def add(self, name, price):
        self.items.append((name, price))

    def total(self):
        subtotal = sum(price for _, price in self.items)
        return round(subtotal * (1 + rate_for(self.region)), 2)

    def receipt(self):
        return [label(name) for name, _ in self.items]
