"""``simrotor voicebot …``: check a dialogue file, hear a prompt.

``check`` loads a dialogue with every rule of :mod:`.load` and shows each prompt filled
with example variables; ``say`` renders text with espeak-ng to an 8 kHz mono WAV, so a
campaign manager can listen to what callers will hear.
"""
from __future__ import annotations

import datetime as dt
import shutil
import wave
from pathlib import Path

import click

from common.clikit import EXIT_USAGE, emit, fail, json_option

from .load import DialogueError, load
from .tts import DEFAULT_CACHE, VOICES, Synthesiser, TtsError
from .variables import example, fill


@click.group()
def voicebot() -> None:
    """The promise-to-pay voicebot: keypad dialogues written as TOML files.

    \b
    Examples:
      simrotor voicebot check my_dialogue.pl.toml
      simrotor voicebot say --lang pl "Dzień dobry." --out hello.wav
    """


@voicebot.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def check(file: Path, as_json: bool) -> None:
    """Check a dialogue file and show its prompts with example variables.

    Exits 2 with the file, state and key named when the dialogue is broken.

    \b
    Example:
      simrotor voicebot check appliance/voicebot/dialogues/promise_to_pay.pl.toml --json
    """
    try:
        dialogue = load(file)
    except DialogueError as exc:
        fail(str(exc), code=EXIT_USAGE, as_json=as_json)
    today = dt.date.today()
    values = example(today).spoken(dialogue.lang)
    values["promise_date"] = values["window_start"]
    emit({"file": str(file), "name": dialogue.name, "lang": dialogue.lang, "start": dialogue.header.start,
          "states": len(dialogue.states), "ends": [n for n, s in dialogue.states.items() if s.end],
          "prompts": {n: fill(s.say, values) for n, s in dialogue.states.items()}}, as_json)


@voicebot.command()
@click.argument("text")
@click.option("--lang", type=click.Choice(sorted(VOICES)), required=True, help="The voice's language.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="WAV file to write.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_CACHE,
              show_default=True, help="Where rendered prompts are kept.")
@json_option
def say(text: str, lang: str, out: Path, cache_dir: Path, as_json: bool) -> None:
    """Render TEXT to an 8 kHz mono 16-bit WAV with espeak-ng (cached by text and voice).

    \b
    Example:
      simrotor voicebot say --lang pl "Dziękujemy, do widzenia." --out bye.wav
    """
    synth = Synthesiser(cache_dir=cache_dir)
    cached = synth.path(text, lang).is_file() if text.strip() else False
    try:
        rendered = synth.render(text, lang)
    except TtsError as exc:
        fail(str(exc), as_json=as_json)
    shutil.copyfile(rendered, out)
    with wave.open(str(out), "rb") as w:
        duration = w.getnframes() / w.getframerate()
    emit({"out": str(out), "lang": lang, "voice": synth.voice(lang), "duration_s": round(duration, 3),
          "cached": cached}, as_json)
