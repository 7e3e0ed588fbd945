"""The promise-to-pay voicebot: keypad dialogues written as data (TOML, one file per
dialogue and language), checked at load, run by a sans-I/O engine (events in, actions
out) so the live call path and the tests drive it the same way; amounts and dates said
in words (num2words, babel); prompts synthesised with espeak-ng and cached on disk. ``live.run_dialogue`` runs a
dialogue on an answered call's audio port (imported from its module: it brings the audio
detectors, which ``voicebot check`` does not need). See docs/voicebot.md.
"""
from .engine import (
                     Action,
                     Collect,
                     Digit,
                     End,
                     Engine,
                     EngineError,
                     Event,
                     Hangup,
                     Phase,
                     Play,
                     PromptDone,
                     Result,
                     Timeout,
)
from .load import Dialogue, DialogueError, load, parse, shipped, shipped_names
from .model import Identity
from .spoken import SpokenError, say_amount, say_date
from .variables import JobVariables, VariablesError

__all__ = [
    "Action", "Collect", "Dialogue", "DialogueError", "Digit", "End", "Engine", "EngineError", "Event",
    "Hangup", "Identity", "JobVariables", "Phase", "Play", "PromptDone", "Result", "SpokenError",
    "Timeout", "VariablesError", "load", "parse", "say_amount", "say_date", "shipped", "shipped_names",
]
