"""A hostile local process for tests and benchmarks: COUNT FastAGI (or any TCP)
connections to PORT that never send a byte, each reopened as soon as the
server closes it. Prints `flooding` once they are started.

Usage: python -m ivr.sim.idle_flood PORT COUNT
"""

from __future__ import annotations

import asyncio
import contextlib
import sys


async def idle(port: int) -> None:
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        with contextlib.suppress(OSError):
            await reader.read()
        writer.close()


async def flood(port: int, count: int) -> None:
    tasks = [asyncio.create_task(idle(port)) for _ in range(count)]
    print("flooding", flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(flood(int(sys.argv[1]), int(sys.argv[2])))
