"""The job's variables and the prompt text they fill, spoken in the dialogue's language.

A prompt names variables in braces (``"{creditor}"``). Job variables come from the job;
``promise_date`` is the date the caller keyed in, known only after a ``date`` input.
Amounts and dates are turned into words here (:mod:`.spoken`), so espeak-ng reads
"piętnastego marca" rather than guessing at "15.03".
"""
from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from .spoken import say_amount, say_date

#: Variables a job carries.
JOB_VARIABLES: Final = ("creditor", "debtor_name", "amount", "due_date", "window_start", "window_end")
#: Variables the dialogue itself fills.
RUNTIME_VARIABLES: Final = ("promise_date",)
#: Variables that disclose the debt: a prompt naming one may be played only after the
#: identity is confirmed (the privacy rule checked at load).
DEBT_VARIABLES: Final = ("amount", "due_date")


class VariablesError(ValueError):
    """A prompt names a variable the job or the dialogue does not have."""


@dataclass(frozen=True, slots=True)
class JobVariables:
    """What a voicebot job tells the dialogue; the window is the acceptable promise dates."""

    creditor: str
    debtor_name: str
    amount: Decimal
    currency: str
    due_date: dt.date
    window_start: dt.date  # today, as a rule
    window_end: dt.date  # the latest acceptable promise date

    def __post_init__(self) -> None:
        if self.window_end < self.window_start:
            raise VariablesError(f"window_end {self.window_end} is before window_start {self.window_start}")
        if not self.creditor.strip() or not self.debtor_name.strip():
            raise VariablesError("creditor and debtor_name: expected non-empty text")

    def spoken(self, lang: str) -> dict[str, str]:
        return {
            "creditor": self.creditor,
            "debtor_name": self.debtor_name,
            "amount": say_amount(self.amount, self.currency, lang),
            "due_date": say_date(self.due_date, lang),
            "window_start": say_date(self.window_start, lang),
            "window_end": say_date(self.window_end, lang),
        }


def placeholders(text: str) -> list[str]:
    """The variable names a prompt uses, in order; raises on a malformed brace."""
    try:
        names = [field for _, field, spec, conv in string.Formatter().parse(text) if field is not None]
    except ValueError as exc:
        raise VariablesError(f"{text!r}: {exc}") from None
    for name in names:
        if not name.isidentifier():
            raise VariablesError(f"{text!r}: {{{name}}} is not a variable name")
    return names


def fill(text: str, values: dict[str, str]) -> str:
    """The prompt with its variables replaced by their spoken words."""
    missing = [n for n in placeholders(text) if n not in values]
    if missing:
        raise VariablesError(f"{text!r}: no value for {', '.join(missing)}")
    return text.format_map(values)


def example(today: dt.date) -> JobVariables:
    """Plausible variables for listening to a dialogue (``voicebot check``) and for tests."""
    return JobVariables(creditor="Kredyt Plus", debtor_name="Jan Kowalski", amount=Decimal("123.45"),
                        currency="PLN", due_date=today - dt.timedelta(days=14), window_start=today,
                        window_end=today + dt.timedelta(days=21))
