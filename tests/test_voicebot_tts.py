"""Prompts rendered to audio with espeak-ng (8 kHz mono 16-bit, not silent, cached once),
and the ``simrotor voicebot`` commands."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from appliance.voicebot.cli import voicebot
from appliance.voicebot.engine import Engine, Play, PromptDone
from appliance.voicebot.load import shipped
from appliance.voicebot.tts import Synthesiser, TtsError
from appliance.voicebot.variables import example

DIALOGUES = Path(__file__).resolve().parent.parent / "appliance" / "voicebot" / "dialogues"


def samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_a_filled_prompt_renders_to_8khz_mono_16bit_speech_once(tmp_path: Path) -> None:
    for tool in ("espeak-ng", "sox"):
        assert shutil.which(tool), f"{tool} missing: apt-get install espeak-ng sox"
    engine = Engine(shipped("promise_to_pay", "pl"), example(dt.date(2026, 3, 10)))
    engine.start()
    (identity,) = engine.handle(PromptDone())
    assert isinstance(identity, Play) and identity.prompt_id == "identity"
    greet = identity  # the longest prompt before the debt, with {debtor_name} filled
    synth = Synthesiser(cache_dir=tmp_path / "cache")
    first = synth.render(greet.text, "pl")
    x = samples(first)
    assert len(x) > 8000 * 1.0  # a sentence lasts more than a second
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) > 300  # speech, not silence
    mtime = first.stat().st_mtime_ns
    again = synth.render(greet.text, "pl")
    assert again == first and again.stat().st_mtime_ns == mtime  # made once
    assert synth.path(greet.text, "en") != first  # the voice is part of the key
    assert synth.pcm(greet.text, "pl") == x.tobytes()
    assert list((tmp_path / "cache").iterdir()) == [first]  # no temporary files left


def test_what_cannot_be_rendered_is_refused(tmp_path: Path) -> None:
    synth = Synthesiser(cache_dir=tmp_path)
    with pytest.raises(TtsError, match="empty"):
        synth.render("  ", "pl")
    with pytest.raises(TtsError, match="language 'de'"):
        synth.render("Hallo", "de")


def test_cli_say_writes_the_wav(tmp_path: Path) -> None:
    out = tmp_path / "bye.wav"
    args = ["say", "--lang", "en", "Thank you, goodbye.", "--out", str(out), "--cache-dir", str(tmp_path / "c"),
            "--json"]
    res = CliRunner().invoke(voicebot, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["out"] == str(out) and doc["voice"] == "en" and doc["duration_s"] > 0.5 and not doc["cached"]
    assert samples(out).any()
    assert json.loads(CliRunner().invoke(voicebot, args).output)["cached"] is True


@pytest.mark.parametrize("lang", ["pl", "en"])
def test_cli_check_shows_every_prompt_filled(lang: str) -> None:
    res = CliRunner().invoke(voicebot, ["check", str(DIALOGUES / f"promise_to_pay.{lang}.toml"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["name"] == "promise_to_pay" and doc["lang"] == lang
    assert set(doc["ends"]) == {"thanks", "wrong_person", "callback", "no_input"}
    assert all(text and "{" not in text for text in doc["prompts"].values())


def test_cli_check_names_the_broken_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text((DIALOGUES / "promise_to_pay.en.toml").read_text().replace('"2" = "wrong_person"',
                                                                             '"2" = "wrong_persn"'))
    res = CliRunner().invoke(voicebot, ["check", str(bad), "--json"])
    assert res.exit_code == 2
    assert "[states.identity] menu.2: no state 'wrong_persn'" in json.loads(res.stdout)["error"]
