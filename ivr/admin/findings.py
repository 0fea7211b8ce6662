"""A check's result lines, shared by every part of `ivr-survey check`."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class Finding:
    status: Status
    topic: str
    message: str

    def line(self) -> str:
        return f"{self.status.value:<4} {self.topic}: {self.message}"
