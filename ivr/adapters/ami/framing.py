"""AMI framing: where one manager message ends, decided on bytes alone.

Kept apart from the protocol (no IO, no asyncio) so every way a TCP stream
can be cut is testable as a table of bytes (tests/test_ami_framing.py), the
way wazo-amid's `parse_buffer` is. Framing works on bytes rather than text:
the separator is ASCII, so a UTF-8 character split across two reads is never
split by it, and only whole messages need decoding.
"""

from __future__ import annotations

EOL = b"\r\n"
MESSAGE_END = EOL + EOL
BANNER_PREFIX = b"Asterisk Call Manager/"
# Far above any real AMI message (a Status with all variables is a few KiB).
MAX_MESSAGE_BYTES = 1 << 20


def take_banner(buffer: bytes) -> tuple[str | None, bytes]:
    """The protocol version from a leading banner line, and what follows it.

    Asterisk sends the banner once, before any message and without the empty
    line that ends messages; until its line is whole, nothing is taken.
    """
    if not buffer.startswith(BANNER_PREFIX):
        return None, buffer
    banner, separator, rest = buffer.partition(EOL)
    if not separator:
        return None, buffer
    return banner.removeprefix(BANNER_PREFIX).decode("utf-8", "replace").strip(), rest


def split_messages(buffer: bytes, scan_from: int = 0) -> tuple[list[bytes], bytes]:
    """The complete messages in `buffer`, and the unfinished rest to keep.

    `scan_from` is where a message end can first start: a caller that only
    appended to a buffer already searched passes its old length minus 3, so
    a long message arriving in small reads is not rescanned each time.
    Only line breaks are trimmed from a message (a last header with an empty
    value, `Extra: `, needs its space to stay a header), and the empty ones
    that stray blank lines make are dropped.
    """
    if buffer.find(MESSAGE_END, scan_from) < 0:
        return [], buffer
    *complete, rest = buffer.split(MESSAGE_END)
    return [message for raw in complete if (message := raw.strip(EOL))], rest


def is_runaway(rest: bytes, limit: int = MAX_MESSAGE_BYTES) -> bool:
    """Whether an unfinished message has grown past what any real one could be."""
    return len(rest) > limit
