"""A labelled corpus of answered calls, synthesised with espeak-ng and sox.

Every recording is built the same way whatever its class, so the classes differ only
in what a real call would differ in — what is said and how turns are taken:

* speech from espeak-ng in Polish or English, voice variant, speed (150–230 wpm; espeak-ng speaks slower than people answering a phone — "Hello?" takes 0.6 s at 130) and
  pitch drawn from the **same** pools for people, machines and announcements;
* the first sound starts 0.1–0.8 s after answer for every class;
* recordings end 0.5–3 s after their last event, so length says nothing about class;
* channel: optional noise (white/pink/brown, SNR 12–35 dB or none), overall gain
  −18…+6 dB (with clipping), and for 70 % of files telephone band-limiting 300–3400 Hz
  (ITU-T G.712) by ``sox sinc``.

Classes: ``human`` (a greeting — 60 % one or two words like "Halo?", 40 % a short
sentence like "Hello, this is Mark." — then silence or a short reply after 0.8–2.5 s),
``machine`` (a greeting of one to three sentences, 60 % ending with a beep of 400–2000 Hz
and 150–1000 ms), ``silence`` (line noise only), ``fax`` (CED + V.21 flags, or CNG
cadence), ``sit`` (a Bellcore or ITU SIT, then an announcement) and ``dtmf`` (all 16 keys
shuffled: 40–60 ms tones, 50–80 ms gaps, twist within ±rules, ±1.2 % offsets, noise).
Labels go to ``labels.csv`` beside the files.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from modem_drivers.emulator.sounds import (
    ANNOUNCEMENT,
    HUMAN,
    HUMAN_SHORT,
    MACHINE,
    NAMES,
    REPLY,
    SIT_PLANS,
    VARIANTS,
    VOICES,
    add_noise,
    dtmf_tone,
    speak,
    to_pcm,
    tone,
    zeros,
)

from .events import DTMF_KEYS
from .pcm import SAMPLE_RATE

LABELS_FILE: Final = "labels.csv"
CLASSES: Final = ("human", "machine", "silence", "fax", "sit", "dtmf")
#: Share of each class; AMD classes dominate because that is what the bench measures.
MIX: Final = (0.36, 0.36, 0.07, 0.07, 0.07, 0.07)
class CorpusError(RuntimeError):
    """The corpus cannot be made (missing espeak-ng/sox, bad arguments)."""


@dataclass(frozen=True, slots=True)
class CorpusItem:
    """One recording's recipe and its labels (one CSV row)."""

    file: str
    label: str
    seed: int
    lang: str = ""
    voice: str = ""
    speed: int = 0
    pitch: int = 0
    text: str = ""
    reply: str = ""
    onset_ms: int = 0
    snr_db: float = -1.0  # -1: no added noise
    noise: str = ""
    gain_db: float = 0.0
    band_limited: bool = False
    beep_hz: float = 0.0
    beep_ms: int = 0
    greeting_end_ms: int = -1  # end of the first utterance (filled in when rendered)
    beep_end_ms: int = -1  # filled in when rendered
    sit_kind: str = ""
    sit_end_ms: int = -1
    fax_kind: str = ""
    digits: str = ""
    duration_ms: int = 0


def _plan(i: int, label: str, rng: np.random.Generator) -> CorpusItem:
    lang = str(rng.choice(["en", "pl"]))
    voice = str(rng.choice(VOICES[lang])) + str(rng.choice(VARIANTS))
    name = str(rng.choice(NAMES[lang]))
    text = reply = ""
    beep_hz, beep_ms, sit_kind, fax_kind, digits = 0.0, 0, "", "", ""
    if label == "human":
        pool = HUMAN_SHORT if rng.random() < 0.6 else HUMAN
        text = str(rng.choice(pool[lang])).format(name=name)
        if rng.random() < 0.5:
            reply = str(rng.choice(REPLY[lang]))
    elif label == "machine":
        text = str(rng.choice(MACHINE[lang])).format(name=name)
        if rng.random() < 0.6:
            beep_hz, beep_ms = float(rng.uniform(400, 2000)), int(rng.uniform(150, 1000))
    elif label == "sit":
        sit_kind = str(rng.choice(list(SIT_PLANS)))
        text = str(rng.choice(ANNOUNCEMENT[lang]))
    elif label == "fax":
        fax_kind = str(rng.choice(["ced", "cng"]))
    elif label == "dtmf":
        digits = "".join(rng.permutation(list(DTMF_KEYS)))
    noisy = rng.random() < 0.75 or label == "silence"
    return CorpusItem(
        file=f"{i:04d}_{label}.wav", label=label, seed=int(rng.integers(2**31)), lang=lang,
        voice=voice, speed=int(rng.integers(150, 231)), pitch=int(rng.integers(25, 76)),
        text=text, reply=reply, onset_ms=int(rng.uniform(100, 800)),
        snr_db=float(rng.choice([35.0, 25.0, 18.0, 12.0])) if noisy else -1.0,
        noise=str(rng.choice(["white", "pink", "brown"])) if noisy else "",
        gain_db=round(float(rng.uniform(-18, 6)), 1), band_limited=bool(rng.random() < 0.7),
        beep_hz=round(beep_hz, 1), beep_ms=beep_ms, sit_kind=sit_kind, fax_kind=fax_kind, digits=digits,
    )


# -- rendering (runs in worker processes) ---------------------------------------------
def _speak(text: str, item: CorpusItem) -> npt.NDArray[np.float64]:
    return speak(text, item.voice, item.speed, item.pitch)


def _render(item: CorpusItem, out_dir: str) -> CorpusItem:
    rng = np.random.default_rng(item.seed)
    parts: list[npt.NDArray[np.float64]] = [zeros(item.onset_ms)]
    extra: dict[str, object] = {}
    pos = lambda: sum(len(p) for p in parts) * 1000 // SAMPLE_RATE  # noqa: E731
    if item.label == "human":
        parts.append(_speak(item.text, item))
        extra["greeting_end_ms"] = pos()
        if item.reply:
            parts += [zeros(rng.uniform(800, 2500)), _speak(item.reply, item)]
        parts.append(zeros(rng.uniform(1500, 3500)))
    elif item.label == "machine":
        parts.append(_speak(item.text, item))
        extra["greeting_end_ms"] = pos()
        if item.beep_ms:
            parts += [zeros(rng.uniform(200, 800)), tone(item.beep_hz, item.beep_ms, rng.uniform(-22, -10), rng)]
            extra["beep_end_ms"] = pos()
        parts.append(zeros(rng.uniform(500, 3000)))
    elif item.label == "sit":
        level = rng.uniform(-24, -14)  # ITU-T E.180: −24 dBm0 nominal
        for k, (f, ms) in enumerate(SIT_PLANS[item.sit_kind]):
            if k:
                parts.append(zeros(rng.uniform(0, 30)))
            parts.append(tone(f, ms, level + rng.uniform(-1, 1), rng))
        extra["sit_end_ms"] = pos()
        parts += [zeros(rng.uniform(300, 1000)), _speak(item.text, item), zeros(rng.uniform(500, 2000))]
    elif item.label == "fax":
        level = rng.uniform(-20, -10)
        if item.fax_kind == "ced":
            parts.append(tone(2100, rng.uniform(2600, 4000), level, rng))
            bits = rng.integers(0, 2, int(rng.uniform(1, 2) * 300))  # V.21 ch2 at 300 bit/s
            freq = np.repeat(np.where(bits, 1650.0, 1850.0), SAMPLE_RATE // 300)
            phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
            parts += [zeros(75), 32768 * 10 ** (level / 20) * np.sqrt(2) * np.sin(phase)]
        else:
            for _ in range(2):
                parts += [tone(1100, 500, level, rng), zeros(3000)]
        parts.append(zeros(rng.uniform(500, 1500)))
    elif item.label == "dtmf":
        for d in item.digits:
            ms = rng.uniform(40, 60)
            twist = rng.uniform(-3.5, 7.5)  # low minus high group, inside the 8/4 dB rules
            level = rng.uniform(-22, -10)
            parts += [dtmf_tone(d, ms, level, rng, twist, detune=0.012), zeros(rng.uniform(50, 80))]
        parts.append(zeros(rng.uniform(500, 1500)))
    else:  # silence
        parts.append(zeros(rng.uniform(4500, 8000)))
    x = np.concatenate(parts)
    if item.snr_db >= 0:
        x = add_noise(x, item.noise, item.snr_db, rng)
    x = x * 10 ** (item.gain_db / 20)
    raw = to_pcm(x)
    path = os.path.join(out_dir, item.file)
    effects = ["sinc", "300-3400"] if item.band_limited else []
    subprocess.run(
        ["sox", "-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed", "-b", "16", "-c", "1", "-",
         "-b", "16", path, *effects],
        input=raw, capture_output=True, check=True,
    )
    return _replace(item, duration_ms=len(x) * 1000 // SAMPLE_RATE, **extra)


def _replace(item: CorpusItem, **changes: object) -> CorpusItem:
    d = asdict(item)
    d.update(changes)
    return CorpusItem(**d)  # type: ignore[arg-type]


# -- public API -------------------------------------------------------------------
def plan_corpus(count: int, seed: int = 0) -> list[CorpusItem]:
    """The recipes, deterministic in ``seed``; classes interleaved, shares as :data:`MIX`."""
    if count < 1:
        raise CorpusError("count: expected at least 1 recording")
    rng = np.random.default_rng(seed)
    quotas = [int(round(count * m)) for m in MIX]
    quotas[0] += count - sum(quotas)
    labels = [c for c, q in zip(CLASSES, quotas) for _ in range(q)]
    labels = [labels[i] for i in rng.permutation(len(labels))]
    return [_plan(i, label, rng) for i, label in enumerate(labels)]


def make_corpus(out_dir: str | Path, count: int = 300, seed: int = 0, workers: int | None = None) -> list[CorpusItem]:
    """Render ``count`` recordings into ``out_dir`` with ``labels.csv``; returns the items."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise CorpusError(f"{tool} not found: install Debian's espeak-ng and sox")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = plan_corpus(count, seed)
    workers = workers or os.cpu_count() or 1
    try:
        if workers == 1:
            done = [_render(it, str(out)) for it in items]
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                done = list(pool.map(_render, items, [str(out)] * len(items), chunksize=4))
    except subprocess.CalledProcessError as exc:
        raise CorpusError(f"{exc.cmd[0]} failed: {exc.stderr.decode(errors='replace').strip()}") from None
    write_labels(out, done)
    return done


def write_labels(out: Path, items: list[CorpusItem]) -> None:
    with open(out / LABELS_FILE, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[f.name for f in fields(CorpusItem)])
        w.writeheader()
        for it in items:
            w.writerow(asdict(it))


def read_labels(corpus_dir: str | Path) -> list[CorpusItem]:
    """The corpus's ``labels.csv`` as items; raises :class:`CorpusError` when unusable."""
    path = Path(corpus_dir) / LABELS_FILE
    if not path.is_file():
        raise CorpusError(f"{path}: no labels file (make one with `simrotor audio corpus --out DIR`)")
    types = {f.name: f.type for f in fields(CorpusItem)}
    items = []
    with open(path, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            try:
                kw: dict[str, object] = {}
                for k, v in row.items():
                    t = types.get(k)
                    if t is None:
                        continue
                    kw[k] = (v == "True") if t == "bool" else int(v) if t == "int" else float(v) if t == "float" else v
                items.append(CorpusItem(**kw))  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                raise CorpusError(f"{path}:{n}: bad row ({exc})") from None
    return items
