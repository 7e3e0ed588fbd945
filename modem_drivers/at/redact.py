"""Masking of phone numbers in log lines and exception messages (docs/architecture.md: logs keep
only the last 3 digits of a number). AT commands and URCs carry numbers (``ATD+48...;``,
``+CLIP: "+48..."``), so everything this layer logs about them passes through ``mask``.
"""

from __future__ import annotations

import re

__all__ = ["mask"]

# 6+ digits: shortest national numbers (E.164 allows 15; short codes like *100# and
# index/length fields stay readable).
_NUMBER = re.compile(r"\d{6,}")


def _star(match: re.Match[str]) -> str:
    digits = match.group()
    return "*" * (len(digits) - 3) + digits[-3:]


def mask(text: object) -> str:
    """``str(text)`` with every run of 6+ digits masked but its last 3."""
    return _NUMBER.sub(_star, str(text))
