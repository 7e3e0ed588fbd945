"""Opt-out words: does an inbound SMS ask us to stop?

Its own module because two places need the list and neither owns the other: the
configuration's default (``[inbound] stop_words``) and the link that matches each SMS.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Final

#: Opt-out words (case- and accent-insensitive, the whole message or its first word):
#: the CTIA/MMA set for English, and the Polish words debtors actually send.
DEFAULT_STOP_WORDS: Final = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
                             "NIE", "REZYGNUJE", "REZYGNUJĘ", "WYPISZ", "WYPISZ MNIE", "KONIEC", "NIE DZWON", "NIE DZWOŃ")


def _fold(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text.upper()) if not unicodedata.combining(ch))


def stop_matcher(words: tuple[str, ...]) -> Callable[[str | None], bool]:
    folded = {re.sub(r"\s+", " ", _fold(w)).strip() for w in words}

    def is_stop(text: str | None) -> bool:
        if not text:
            return False
        t = re.sub(r"[^\w\s]", " ", _fold(text))
        t = re.sub(r"\s+", " ", t).strip()
        if t in folded:
            return True
        first = t.split(" ", 1)[0] if t else ""
        return first in folded

    return is_stop
