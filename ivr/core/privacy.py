"""Who a caller is, as far as storage is concerned: a number, or only a keyed hash.

Pure. The `caller_key` is what cooldowns and the opt-out list match on, on
every PBX: the digits of the caller's number (so `+1 555-000 1111`,
`+15550001111` and `15550001111` are one caller), then HMAC-SHA256 with the configured
`hash_key`. Keyed rather than plain SHA-256 because phone numbers are few
enough to hash them all: without the key, a leaked table is a phone book.
Without a `hash_key` the key is the digits themselves. Changing the
`hash_key` later makes every stored key unmatchable: cooldowns start over
and the opt-out list must be entered again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from dataclasses import dataclass, field

from ivr.core.domain import CallRecord


def normalise_number(number: str | None) -> str | None:
    """Digits with the leading `+` kept; None when no digit is left (`<unknown>`, empty)."""
    if number is None:
        return None
    digits = "".join(character for character in number if character.isdigit())
    if not digits or not digits.isascii():
        return None
    return f"+{digits}" if number.strip().startswith("+") else digits


@dataclass(frozen=True, slots=True)
class Privacy:
    """How caller identities are stored: `anonymize` keeps only the keyed hash."""

    anonymize: bool = False
    hash_key: str = field(default="", repr=False)

    def caller_key(self, number: str | None) -> str | None:
        normalised = normalise_number(number)
        if normalised is None:
            return None
        digits = normalised.lstrip("+")
        if not self.hash_key:
            return digits
        return hmac.new(self.hash_key.encode(), digits.encode(), hashlib.sha256).hexdigest()

    def stored_number(self, number: str | None) -> str | None:
        """The number as it may be written anywhere: never in anonymous mode."""
        return None if self.anonymize else normalise_number(number) or number

    def protect(self, call: CallRecord) -> CallRecord:
        """The call as it may be stored: with its caller key, without number and name
        when anonymous. Applied before any write, so no code path can leak them."""
        key = self.caller_key(call.caller_number)
        if self.anonymize:
            return dataclasses.replace(call, caller_key=key, caller_number=None, caller_name=None)
        return dataclasses.replace(call, caller_key=key)
