"""Named registries: how a new head, objective, reader or task type joins the library without an if-chain.

A `Registry` is a read-only mapping (name -> entry) plus `register`, usable as a decorator. Looking up an
unknown name with `lookup` raises the registry's own `RewardlabError` subclass, listing the known names,
so a typo on the command line reads as one clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar, overload

from rewardlab.errors import RewardlabError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Entries by name, in registration order (which is the order listings show)."""

    def __init__(self, what: str, error: type[RewardlabError] = RewardlabError) -> None:
        self.what = what  # "head kind", "objective", ... (for messages)
        self.error = error
        self._entries: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, entry: T, *, replace: bool = False) -> T: ...

    def register(self, name: str, entry: T | None = None, *, replace: bool = False) -> T | Callable[[T], T]:
        """``register(name, entry)``, or ``@register(name)`` above a class or function.

        Registering a taken name is an error unless ``replace=True``: two plugins silently shadowing
        each other would be worse.
        """
        if entry is None:
            return lambda value: self.register(name, value, replace=replace)
        if not name or not isinstance(name, str):
            raise self.error(f"a {self.what} needs a non-empty name")
        if name in self._entries and not replace:
            raise self.error(f"{self.what} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register toys clean up with this)."""
        self._entries.pop(name, None)

    def lookup(self, name: str) -> T:
        """The entry for ``name``, or the registry's error naming the known ones."""
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(f"unknown {self.what} {name!r}; known: {', '.join(self._entries)}") from None

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"
