"""What the FastAGI server's tests share with the `make_server` fixture (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ivr.adapters.fastagi.server import FastAgiServer

# `make_server(route, **options)`: a started server on a free loopback port.
StartServer = Callable[..., Awaitable[FastAgiServer]]
