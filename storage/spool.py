"""A durable local spool of writes the database could not take.

One JSON object per line, appended and fsync'd before the writer tells anyone
their write is safe, so a crash or a power cut right after loses nothing.
What it holds is replayed in order once the database is back, then the file is
removed. A replay cut short (crash, database gone again) simply replays again:
the writes are upserts and the writer recognizes its own surveys
(`storage.grouped_writes`, replaying), so nothing counts twice.

A line that cannot be read back (torn by a crash mid-write, edited by hand) is
never dropped silently: it is logged, with its Linkedid when one is readable,
and moved to `<spool>.rejected` for an operator to look at.

The file is locked (flock) while open, so two services pointed at the same
spool directory and database cannot replay and remove each other's lines.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, TypeVar

from storage.database import DatabaseError, normalize_url

log = logging.getLogger(__name__)

T = TypeVar("T")

_LINKEDID = re.compile(r'"linkedid"\s*:\s*"([^"\\]*)"')


SPOOL_PREFIX = "writes-"


class SpoolError(DatabaseError):
    """The spool cannot be used (locked by another process, unwritable)."""


def default_spool_dir(environ: dict[str, str] | None = None) -> Path:
    """$XDG_STATE_HOME/ivr-survey/spool where the XDG variable is set, else ./spool
    (next to the default SQLite database, which also lives in the working directory)."""
    state = (os.environ if environ is None else environ).get("XDG_STATE_HOME")
    return Path(state) / "ivr-survey" / "spool" if state else Path("spool")


def spool_path(spool_dir: str, database_url: str) -> Path:
    """The spool of one database: its name is a digest of the URL without the
    password, so services on different databases can share a directory and a
    spool is never replayed into another database."""
    url = normalize_url(database_url).set(password=None).render_as_string()
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    folder = Path(spool_dir).expanduser() if spool_dir else default_spool_dir()
    return folder / f"{SPOOL_PREFIX}{digest}.jsonl"


def other_spools(path: Path) -> list[Path]:
    """Non-empty spools of other databases in the same directory (a changed
    database URL would otherwise leave one behind unnoticed)."""
    if not path.parent.is_dir():
        return []
    return sorted(
        candidate
        for candidate in path.parent.glob(f"{SPOOL_PREFIX}*.jsonl")
        if candidate != path and candidate.stat().st_size > 0
    )


def linkedid_in(text: str) -> str:
    """The Linkedid named in a (possibly corrupt) line, or "-" when none is readable."""
    found = _LINKEDID.search(text)
    return found.group(1) if found else "-"


class Spool:
    """Append-only JSON lines at `path`, created on the first append."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rejected_path = path.with_name(path.name + ".rejected")
        self._file: IO[bytes] | None = None
        self._depth = self._count_lines() if path.exists() else 0

    @property
    def depth(self) -> int:
        """Lines waiting to be replayed."""
        return self._depth

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Write the records and fsync: when this returns, they survive a crash."""
        lines = [json.dumps(record, separators=(",", ":")) + "\n" for record in records]
        if not lines:
            return
        handle = self._open()
        size = handle.seek(0, os.SEEK_END)
        data = memoryview("".join(lines).encode())
        try:
            while data:
                written = handle.write(data)
                data = data[written or 0 :]
            os.fsync(handle.fileno())
        except OSError:
            self._undo_append(handle, size)
            raise
        self._depth += len(lines)

    def _undo_append(self, handle: IO[bytes], size: int) -> None:
        """Cut what a failed append (a full disk) left, so the next append does not
        glue a line to a torn one. The file is unbuffered: nothing else is pending."""
        try:
            os.ftruncate(handle.fileno(), size)
        except OSError:
            log.exception("the spool %s could not be cut back after a failed write", self.path)

    def read(self, decode: Callable[[dict[str, Any]], T]) -> list[T]:
        """Every readable line, decoded, in the order written.

        Lines that are not JSON objects or that `decode` refuses (KeyError,
        TypeError, ValueError) are moved to the `.rejected` file, and the spool
        is rewritten without them, so they are reported exactly once.
        """
        if not self.path.exists():
            return []
        handle = self._open()
        handle.seek(0)
        text = handle.read().decode(errors="replace")
        decoded: list[T] = []
        kept: list[str] = []
        rejected: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise TypeError("not a JSON object")
                decoded.append(decode(record))
            except (ValueError, KeyError, TypeError) as error:
                log.error(
                    "spool %s line %d (Linkedid=%s) cannot be read (%s): kept aside in %s",
                    self.path,
                    number,
                    linkedid_in(line),
                    error,
                    self.rejected_path,
                )
                rejected.append(line)
            else:
                kept.append(line)
        if rejected:
            self.reject(rejected)
            self._rewrite(kept)
        return decoded

    def reject(self, lines: Iterable[str]) -> None:
        """Keep lines aside in the `.rejected` file (fsync'd), for an operator."""
        self.rejected_path.parent.mkdir(parents=True, exist_ok=True)
        with self.rejected_path.open("a", encoding="utf-8") as handle:
            handle.write("".join(line.rstrip("\n") + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())

    def clear(self) -> None:
        """Everything was replayed: remove the file (and release the lock)."""
        if self._file is not None:
            self.path.unlink(missing_ok=True)
            self._close()
        else:
            self.path.unlink(missing_ok=True)
        self._sync_directory()
        self._depth = 0

    def close(self) -> None:
        self._close()

    def _open(self) -> IO[bytes]:
        if self._file is not None:
            return self._file
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered, so a failed append leaves nothing queued to be written later.
            handle = self.path.open("a+b", buffering=0)
        except OSError as error:
            raise SpoolError(f"cannot open the spool {self.path}: {error}") from error
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise SpoolError(
                f"the spool {self.path} is in use by another ivr-survey process "
                "(give each service its own [database] spool_dir)"
            ) from None
        # A crash mid-append may have left a torn last line; a new line must
        # not be glued to it, or both would be unreadable.
        size = handle.seek(0, os.SEEK_END)
        if size > 0:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
        self._file = handle
        return handle

    def _rewrite(self, lines: list[str]) -> None:
        """Replace the spool's content atomically (temporary file, fsync, rename)."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
        self._close()
        temporary.replace(self.path)
        self._sync_directory()
        self._depth = len(lines)
        self._open()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _count_lines(self) -> int:
        with self.path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())

    def _sync_directory(self) -> None:
        """Make a rename or removal itself durable."""
        try:
            descriptor = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
