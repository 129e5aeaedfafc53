"""Stock levels."""

from __future__ import annotations


class Inventory:
    def __init__(self) -> None:
        self._stock: dict[str, int] = {}

    def add(self, name: str, count: int) -> None:
        if count <= 0:
            raise ValueError("count must be positive")
        self._stock[name] = self._stock.get(name, 0) + count

    def take(self, name: str, count: int) -> bool:
        """Take `count` items if there are enough; return whether it worked."""
        have = self._stock.get(name, 0)
        if count > have:
            return False
        self._stock[name] = have - count
        return True

    def count(self, name: str) -> int:
        return self._stock.get(name, 0)
