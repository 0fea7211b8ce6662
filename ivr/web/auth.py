"""Who is asking: bearer tokens, signed session cookies, roles and masking.

Tokens and users come from `[web]` in the configuration. A session cookie is
`payload.signature`, the payload naming the user, role and expiry, signed with
HMAC-SHA256 under `[web] session_secret` (or a random key per start, which logs
everyone out on restart). It is checked against the configuration on every
request, so removing a user or changing their role takes effect at once.

Passwords are stored as PBKDF2-SHA256 hashes. Checking one costs ~0.1 s of CPU
on purpose; that runs in a worker thread (hashlib releases the GIL while it
hashes), one at a time, because on the event loop it would stall AMI and every
FastAGI caller for that long - the only place this service uses a thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ivr.config import WebConfig

ADMIN = "admin"
VIEWER = "viewer"
PBKDF2_ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
_COOKIE = re.compile(r"^[A-Za-z0-9_-]{1,2048}\.[A-Za-z0-9_-]{43}$")
HASH_PREFIX = "pbkdf2_sha256"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user or token holder."""

    name: str
    role: str

    @property
    def masks_callers(self) -> bool:
        """Viewers see caller numbers and names masked."""
        return self.role != ADMIN


def hash_password(
    password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None
) -> str:
    """`pbkdf2_sha256$iterations$salt$hash`, salt and hash in unpadded base64."""
    chosen = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), chosen, iterations)
    return "$".join((HASH_PREFIX, str(iterations), _b64(chosen), _b64(digest)))


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches the hash; a malformed hash never matches."""
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != HASH_PREFIX or not parts[1].isdigit():
        return False
    try:
        salt, expected = _unb64(parts[2]), _unb64(parts[3])
    except (binascii.Error, ValueError):
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, int(parts[1]))
    return hmac.compare_digest(digest, expected)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mask_number(number: str | None) -> str | None:
    """+989121234567 -> +98912****567: enough to recognise a repeat caller's
    prefix, not enough to call them. Short numbers keep less."""
    if number is None:
        return None
    if len(number) >= 10:
        return f"{number[:6]}****{number[-3:]}"
    if len(number) >= 6:
        return f"{number[:2]}****{number[-2:]}"
    return "****"


def mask_name(name: str | None) -> str | None:
    """Ada Caller -> A. C.: initials only."""
    if name is None:
        return None
    return " ".join(f"{word[0]}." for word in name.split()) or None


class Authenticator:
    """Checks tokens, passwords and session cookies against `[web]`."""

    def __init__(
        self,
        config: WebConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._tokens = config.token_roles()
        self._users = config.web_users()
        secret = config.session_secret.encode("utf-8") or secrets.token_bytes(32)
        self._key = hashlib.sha256(b"ivr-survey session\0" + secret).digest()
        self._clock = clock
        self._hashing = asyncio.Lock()

    @property
    def configured(self) -> bool:
        """False when no token and no user is configured: nobody can get in."""
        return bool(self._tokens or self._users)

    def from_authorization(self, header: str | None) -> Principal | None:
        """The holder of `Authorization: Bearer <token>`, if the token is known."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        token = token.strip()
        found: Principal | None = None
        # Compare with every token, in constant time each, so timing tells nothing.
        for candidate, role in self._tokens.items():
            if hmac.compare_digest(candidate.encode("utf-8"), token.encode("utf-8")):
                found = Principal(name=f"token:{role}", role=role)
        return found

    async def login(self, name: str, password: str) -> Principal | None:
        """The user if the password matches; the hash is checked off the event loop."""
        user = self._users.get(name)
        async with self._hashing:
            if user is None:
                # Spend the same time as for a real user: timing must not reveal names.
                await asyncio.to_thread(hash_password, password)
                return None
            matches = await asyncio.to_thread(verify_password, password, user.password_hash)
        return Principal(name=user.name, role=user.role) if matches else None

    def session_cookie(self, principal: Principal) -> str:
        expires = int(self._clock() + self._config.session_hours * 3600)
        payload = _b64(
            json.dumps({"u": principal.name, "r": principal.role, "e": expires}).encode("utf-8")
        )
        return f"{payload}.{self._sign(payload)}"

    def from_cookie(self, cookie: str | None) -> Principal | None:
        """The session's user, if the cookie is authentic, unexpired and still valid."""
        if not cookie or not _COOKIE.match(cookie):
            return None
        payload, signature = cookie.split(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            data = json.loads(_unb64(payload))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        name, role, expires = data.get("u"), data.get("r"), data.get("e")
        if not isinstance(expires, int) or expires < self._clock():
            return None
        user = self._users.get(name) if isinstance(name, str) else None
        if user is None or user.role != role:
            return None
        return Principal(name=user.name, role=user.role)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())
