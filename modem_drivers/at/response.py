"""The successful answer to one AT command."""

from __future__ import annotations

from dataclasses import dataclass

from .events import Final

__all__ = ["Response"]


def _head(prefix: str) -> str:
    return prefix.strip().rstrip(":").rstrip() + ":"


@dataclass(frozen=True, slots=True)
class Response:
    """Information lines of a command in arrival order, and the final result that ended it."""

    command: str
    lines: tuple[str, ...]
    final: Final

    def value(self, prefix: str) -> str | None:
        """Text after ``PREFIX:`` of the first line with that prefix, stripped; else None.

        ``Response(..., lines=("+CSQ: 20,99",)).value("+CSQ") == "20,99"``.
        """
        head = _head(prefix)
        for line in self.lines:
            if line.startswith(head):
                return line[len(head) :].strip()
        return None

    def values(self, prefix: str) -> list[str]:
        """Text after ``PREFIX:`` of every line with that prefix (e.g. one per ``+CLCC`` call)."""
        head = _head(prefix)
        return [line[len(head) :].strip() for line in self.lines if line.startswith(head)]
