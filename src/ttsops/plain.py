"""Plain data classes for the start-up path: what ``@dataclass`` gives the few classes a
``ttsops logs`` query creates (a field-wise ``repr`` and ``==``), without importing
``dataclasses``, which loads ``inspect`` (and with it ``ast``, ``dis``, ``tokenize``) and
compiles every class's methods at import: about a fifth of a small query's whole time.

A class lists its fields in ``FIELDS`` (``repr`` and ``==`` use them, in order; fields
left out of ``COMPARE`` are not compared) and writes its own ``__init__``. Like a
dataclass with ``eq=True``, an instance is unhashable unless the class says otherwise.
"""

from __future__ import annotations


class Plain:
    __slots__ = ()
    FIELDS: tuple[str, ...] = ()
    COMPARE: tuple[str, ...] | None = None  # None: every field

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.FIELDS)
        return f"{type(self).__qualname__}({body})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        keys = self.COMPARE if self.COMPARE is not None else self.FIELDS
        return tuple(getattr(self, k) for k in keys) == tuple(getattr(other, k) for k in keys)

    # no __hash__: defining __eq__ leaves a class unhashable (``__hash__`` set to None)


class Frozen(Plain):
    """A ``Plain`` class whose fields cannot be assigned once made (``frozen=True``):
    hashable, and pickled by its fields. ``__init__`` sets them with ``_set``."""

    __slots__ = ()

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} ({type(self).__name__} is "
                             "frozen)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} ({type(self).__name__} is "
                             "frozen)")

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, k) for k in self.FIELDS))

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), tuple(getattr(self, k) for k in self.FIELDS)
