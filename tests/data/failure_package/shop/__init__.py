"""A small shop: carts priced through several modules (a sample for reading failures)."""

from shop.cart import Cart

__all__ = ["Cart"]
