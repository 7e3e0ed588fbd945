"""Prompts rendered before the call: every prompt of a dialogue whose words are known from
the job alone, synthesised (once, into the cache) in a worker thread while the call rings.

Why: a prompt not in the cache is rendered when the dialogue first plays it, and the line
carries silence meanwhile (``live.py``); espeak-ng takes a few hundred milliseconds, and
issue 14 wants something said within 1 s of the end of a person's greeting. Only the
prompts naming ``{promise_date}`` (the read-back) wait for the call: their words are the
date he keys.
"""
from __future__ import annotations

import asyncio

from .load import Dialogue
from .tts import Synthesiser
from .variables import JobVariables, fill, placeholders

__all__ = ["known_prompts", "prepare_prompts"]


def known_prompts(dialogue: Dialogue, variables: JobVariables) -> list[str]:
    """The texts of the prompts the job's variables fill whole, in state order, once each."""
    values = variables.spoken(dialogue.lang)
    texts: list[str] = []
    for state in dialogue.states.values():
        if all(name in values for name in placeholders(state.say)):
            text = fill(state.say, values)
            if text not in texts:
                texts.append(text)
    return texts


async def prepare_prompts(dialogue: Dialogue, variables: JobVariables, synthesiser: Synthesiser) -> int:
    """Render the known prompts not yet cached, in a worker thread; returns how many were made.
    Raises ``TtsError`` as ``Synthesiser.render`` does."""
    lang = dialogue.lang
    missing = [t for t in known_prompts(dialogue, variables) if not synthesiser.path(t, lang).is_file()]

    def render_all() -> None:
        for text in missing:
            synthesiser.render(text, lang)

    if missing:
        await asyncio.to_thread(render_all)
    return len(missing)
