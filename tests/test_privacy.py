"""Caller identities: normalised numbers, keyed hashes, and what may be stored."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from ivr.core.domain import CallRecord
from ivr.core.privacy import Privacy, normalise_number

KEY = "a-long-random-hash-key"


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+15550001111", "+15550001111"),
        ("+1 555-000 1111", "+15550001111"),
        ("(555) 000.1111", "5550001111"),
        (" +34 600 11 22 33 ", "+34600112233"),
        ("<unknown>", None),
        ("", None),
        (None, None),
        ("anonymous", None),
    ],
)
def test_numbers_are_normalised_to_digits_and_a_leading_plus(
    number: str | None, expected: str | None
) -> None:
    """Spacing and punctuation do not make two callers of one; no digits, no number."""
    assert expected == normalise_number(number)


def test_the_caller_key_is_the_hmac_of_the_normalised_number() -> None:
    """HMAC-SHA256 of the digits keyed with hash_key; every spelling shares the key."""
    expected = hmac.new(KEY.encode(), b"15550001111", hashlib.sha256).hexdigest()
    privacy = Privacy(hash_key=KEY)
    assert [expected, expected, expected] == [
        privacy.caller_key("+1 555 000 1111"),
        privacy.caller_key("+15550001111"),
        privacy.caller_key("15550001111"),
    ]


def test_without_a_hash_key_the_caller_key_is_the_normalised_number() -> None:
    """No key configured: cooldowns and opt-outs match on the plain digits."""
    assert "15550001111" == Privacy().caller_key("+1 555 000 1111")


@pytest.mark.parametrize(
    ("privacy", "expected"),
    [
        (Privacy(), ("+1 555 000 1111", "Ada", "15550001111")),
        (
            Privacy(hash_key=KEY),
            ("+1 555 000 1111", "Ada", Privacy(hash_key=KEY).caller_key("+15550001111")),
        ),
        (
            Privacy(anonymize=True, hash_key=KEY),
            (None, None, Privacy(hash_key=KEY).caller_key("+15550001111")),
        ),
    ],
    ids=["plain", "hashed key, numbers kept", "anonymous"],
)
def test_protect_gives_the_call_as_it_may_be_stored(
    privacy: Privacy, expected: tuple[str | None, str | None, str | None]
) -> None:
    """Anonymous mode drops number and name; every mode sets the caller key."""
    call = CallRecord(pbx="p", linkedid="1.1", caller_number="+1 555 000 1111", caller_name="Ada")
    protected = privacy.protect(call)
    assert expected == (protected.caller_number, protected.caller_name, protected.caller_key)


def test_the_hash_key_never_shows_in_repr() -> None:
    """Logged configuration cannot leak the key that protects the numbers."""
    assert KEY not in repr(Privacy(anonymize=True, hash_key=KEY))
