"""Recorded comments: the file name and the RECORD FILE command and reply, pure.

Asterisk writes the recording on its own host, at the absolute path given to
RECORD FILE (a relative one would land in its sounds folder). The service
only ever knows the file by its stem under `[survey] recordings_dir`, which is
built here from the PBX name and the Linkedid: unique per call (a call has
one survey) and safe (nothing but letters, digits, `.`, `_` and `-`, so
never a path of its own).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ivr.adapters.fastagi.protocol import AgiReply
from ivr.core import survey

SAMPLE_RATE = 8000
"""RECORD FILE's `endpos` counts samples at 8 kHz (fact: 16000 for a 2 s timeout)."""

END_KEY = "#"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_stem(pbx: str, linkedid: str) -> str:
    """`<pbx>-<linkedid>` with anything unsafe replaced by `_` (and no leading dot)."""
    stem = _UNSAFE.sub("_", f"{pbx}-{linkedid}")
    return "_" + stem[1:] if stem.startswith(".") else stem


def record_command(directory: str, stem: str, file_format: str, command: survey.Record) -> str:
    """`RECORD FILE <dir>/<stem> <format> "#" <ms> BEEP s=<seconds>` (res_agi's syntax)."""
    path = PurePosixPath(directory) / stem
    milliseconds = round(command.max_seconds * 1000)
    silence = max(1, round(command.silence_seconds))
    return f'RECORD FILE {path} {file_format} "{END_KEY}" {milliseconds} 0 BEEP s={silence}'


def record_reply(reply: AgiReply) -> survey.Reply:
    """Map res_agi's replies: `result=35 (dtmf)`, `result=0 (timeout)` (the time
    limit or silence), `result=-1 (hangup)`, each with `endpos`; `result=-1`
    with `(writefile)` or `(waitfor)` and no endpos means nothing was kept."""
    if not reply.ok:
        return survey.HungUp()
    endpos = reply.endpos
    ends = {"dtmf": survey.RecordEnd.DTMF, "timeout": survey.RecordEnd.TIMEOUT}
    ends["hangup"] = survey.RecordEnd.HANGUP
    ended_by = ends.get(reply.data or "")
    if ended_by is None or endpos is None:
        return survey.RecordFailed()
    return survey.Recorded(ended_by, max(0, endpos) / SAMPLE_RATE)
