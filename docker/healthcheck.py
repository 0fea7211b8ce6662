"""Container health check: is the FastAGI port listening?

Reads the kernel's socket tables (/proc/net/tcp, tcp6) instead of opening a
connection: a connection that sends no AGI header is logged by the service as
a probe, and a check every 30 s would fill the log. Exits 0 when a socket of
this container listens on the port (IVR_SURVEY_AGI_PORT, default 4573), 1
otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_PORT = 4573
LISTEN = "0A"
TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def listening(port: int, tables: tuple[str, ...]) -> bool:
    """True when a row of a /proc/net/tcp-style table is a LISTEN socket on `port`."""
    for table in tables:
        for row in table.splitlines()[1:]:
            fields = row.split()
            if len(fields) < 4:
                continue
            _, _, local_port = fields[1].rpartition(":")
            if fields[3] == LISTEN and int(local_port, 16) == port:
                return True
    return False


def main() -> int:
    port = int(os.environ.get("IVR_SURVEY_AGI_PORT", DEFAULT_PORT))
    tables = tuple(path.read_text() for path in TABLES if path.exists())
    if listening(port, tables):
        return 0
    print(f"nothing listens on FastAGI port {port}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
