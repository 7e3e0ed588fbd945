"""Call recordings (issue 14, off by default): a call whose job says ``call.record`` is
recorded both ways while its audio port carries it, kept as a compressed file under the
appliance's data directory, and sent to the controller after its result.

* ``tap.py``    — a wrapper around the call's ``AudioPort`` that copies the frames read (the
  far end) and written (ours) into a stereo buffer on the 20 ms frame clock, bounded;
* ``encode.py`` — that buffer to Ogg Opus and back (soundfile, libsndfile);
* ``store.py``  — the files and their rows in the appliance store (``recordings``);
* ``upload.py`` — sends each file to the controller with backoff, then deletes it.

The wire contract already carries ``CallOptions.record`` and ``Result.recording``.
"""
from __future__ import annotations

from .encode import CONTENT_TYPE, FORMAT, decode, encode
from .store import RecordingRows, Recordings
from .tap import MAX_SECONDS, Tap
from .upload import Uploader

__all__ = ["CONTENT_TYPE", "FORMAT", "MAX_SECONDS", "RecordingRows", "Recordings", "Tap", "Uploader", "decode", "encode"]
