"""Prices, discounts and totals for the shop."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Item:
    name: str
    unit_price: float
    quantity: int = 1


def apply_discount(price: float, percent: float) -> float:
    """Price after taking `percent` off, never below zero."""
    if percent < 0 or percent > 100:
        raise ValueError(f"discount must be between 0 and 100, got {percent}")
    return round(price * (100 - percent) / 100, 2)


def bulk_discount(quantity: int) -> float:
    """Percent off for buying in bulk: 10 % from ten items, 20 % from fifty."""
    if quantity >= 50:
        return 20.0
    if quantity > 10:
        return 10.0
    return 0.0


def line_total(item: Item) -> float:
    gross = item.unit_price * item.quantity
    return apply_discount(gross, bulk_discount(item.quantity))


def order_total(items: list[Item]) -> float:
    return round(sum(line_total(item) for item in items), 2)
