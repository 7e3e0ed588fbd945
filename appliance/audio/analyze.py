"""One call's audio through every detector, and the offline (WAV file) path.

:class:`CallAudio` is what the live call path feeds: one front-end pass per frame
(:class:`.FrameFeatures`), then AMD until it decides, tones and DTMF for the whole call.
The offline functions read a WAV, cut it into the same 20 ms frames and feed the very
same objects — there is no second, batch implementation to drift from the live one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .amd import AmdConfig, AmdDetector
from .baseline import AsteriskAmd, AsteriskAmdConfig
from .dtmf import DtmfConfig, DtmfDetector
from .events import AmdDecision, DtmfDigit, ToneEvent
from .features import FrameFeatures
from .pcm import FRAME_MS, Frame, iter_frames
from .tones import ToneConfig, ToneDetector
from .wav import WavAudio, read_wav


@dataclass(slots=True)
class CallReport:
    """Everything the detectors said about one call."""

    amd: AmdDecision | None = None
    tones: list[ToneEvent] = field(default_factory=list)
    digits: list[DtmfDigit] = field(default_factory=list)
    duration_ms: int = 0


class CallAudio:
    """All detectors on one call, sharing the per-frame front end.

    ``feed(frame)`` returns the new events (AMD decision, tone events, digits) in order.
    """

    def __init__(self, amd: AmdConfig | None = None, tones: ToneConfig | None = None,
                 dtmf: DtmfConfig | None = None, *, run_amd: bool = True) -> None:
        self.amd = AmdDetector(amd, own_tones=False) if run_amd else None
        self.tones = ToneDetector(tones)
        self.dtmf = DtmfDetector(dtmf)
        self.report = CallReport()
        self._index = 0

    def feed(self, frame: Frame) -> list[AmdDecision | ToneEvent | DtmfDigit]:
        ft = FrameFeatures.of(frame, self._index)
        self._index += 1
        rep = self.report
        rep.duration_ms = self._index * FRAME_MS
        tone_events = self.tones.feed_features(ft)
        out: list[AmdDecision | ToneEvent | DtmfDigit] = list(tone_events)
        rep.tones.extend(tone_events)
        if self.amd is not None and not self.amd.done:
            for d in self.amd.feed_features(ft, tone_events):
                rep.amd = d
                out.append(d)
        digits = self.dtmf.feed_features(ft)
        if digits:
            rep.digits.extend(digits)
            out.extend(digits)
        return out

    def finish(self) -> list[AmdDecision | ToneEvent | DtmfDigit]:
        tone_events = self.tones.finish()
        out: list[AmdDecision | ToneEvent | DtmfDigit] = list(tone_events)
        self.report.tones.extend(tone_events)
        if self.amd is not None and not self.amd.done:
            # tones that ended with the audio still count as AMD evidence
            for ev in tone_events:
                d = self.amd._on_tone(ev, self.report.duration_ms)
                if d:
                    break
            for d in ([self.amd.decision] if self.amd.decision else self.amd.finish()):
                self.report.amd = d
                out.append(d)
        digits = self.dtmf.finish()
        self.report.digits.extend(digits)
        return out + list(digits)


def analyze_samples(audio: WavAudio, *, run_amd: bool = True, amd: AmdConfig | None = None) -> CallReport:
    call = CallAudio(amd, run_amd=run_amd)
    for frame in iter_frames(audio.samples):
        call.feed(frame)
    call.finish()
    return call.report


def baseline_samples(audio: WavAudio, config: AsteriskAmdConfig | None = None) -> AmdDecision:
    det = AsteriskAmd(config)
    for frame in iter_frames(audio.samples):
        if det.feed(frame):
            break
    return det.decision or det.finish()[0]


def analyze_file(path: str | Path, *, run_amd: bool = True) -> tuple[WavAudio, CallReport]:
    """Read ``path`` (converting as needed) and run every detector over it, frame by frame."""
    audio = read_wav(path)
    return audio, analyze_samples(audio, run_amd=run_amd)


def baseline_file(path: str | Path) -> tuple[WavAudio, AmdDecision]:
    audio = read_wav(path)
    return audio, baseline_samples(audio)
