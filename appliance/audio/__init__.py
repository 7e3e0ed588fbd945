"""Call audio analysis on 8 kHz s16 mono PCM in 20 ms frames: answering-machine detection
(and Asterisk's AMD() as a yardstick), voicemail beeps, special information tones, fax
tones and in-band DTMF. Every detector streams — ``feed(frame) -> list[event]`` then
``finish()`` — and the offline WAV path feeds the very same objects. See docs/audio.md.
"""
from .amd import AmdConfig, AmdDetector
from .analyze import CallAudio, CallReport, analyze_file, baseline_file
from .baseline import AsteriskAmd, AsteriskAmdConfig
from .config import AudioConfig, AudioConfigError, audio_config
from .dtmf import DtmfConfig, DtmfDetector
from .events import (AmdDecision, AmdEvidence, AmdResult, Beep, DtmfDigit, FaxKind, FaxTone,
                     Segment, Sit, SitKind, ToneEvent, ToneSegment)
from .pcm import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, FrameError
from .tones import ToneConfig, ToneDetector
from .wav import WavAudio, WavError, read_wav

__all__ = [
    "AmdConfig", "AmdDecision", "AmdDetector", "AmdEvidence", "AmdResult", "AsteriskAmd",
    "AsteriskAmdConfig", "AudioConfig", "AudioConfigError", "Beep", "CallAudio", "CallReport",
    "DtmfConfig", "DtmfDetector", "DtmfDigit", "FRAME_BYTES", "FRAME_MS", "FRAME_SAMPLES",
    "FaxKind", "FaxTone", "FrameError", "SAMPLE_RATE", "Segment", "Sit", "SitKind", "ToneConfig",
    "ToneDetector", "ToneEvent", "ToneSegment", "WavAudio", "WavError", "analyze_file",
    "audio_config", "baseline_file", "read_wav",
]
