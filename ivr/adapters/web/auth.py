"""Who is asking: bearer tokens, signed session cookies, roles and masking.

Tokens and users come from `[web]` in the configuration. A session cookie is
`payload.signature`, the payload naming the user, role, expiry, a session id
and a fingerprint of the user's password hash, signed with HMAC-SHA256 under
`[web] session_secret` (or a random key per start, which logs everyone out on
restart). It is checked against the configuration on every request, so
removing a user, changing their role or their password ends their sessions.
Logging out puts the session id on a revocation list kept until the cookie
would have expired anyway, so a copied cookie stops working too; `ivr-survey
web sessions revoke` ends every session of a user (or of everyone) signed
before it, by the issue time each cookie carries. The lists live in the
database (`ivr.adapters.web.revocation_sync`), so they hold on every node and after a
restart.

A one-time sign-in link carries the same kind of signed payload, marked as a
link, with a short expiry and a nonce spent on first use: `ivr-survey web
login-link` signs one for a configured user with the configured
`session_secret`, and the demo signs one for its own run.

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
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ivr.config.settings import WebConfig
from ivr.ports import Revocation, RevocationKind

log = logging.getLogger(__name__)

ADMIN = "admin"
VIEWER = "viewer"
PBKDF2_ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
_COOKIE = re.compile(r"^[A-Za-z0-9_-]{1,2048}\.[A-Za-z0-9_-]{43}$")
HASH_PREFIX = "pbkdf2_sha256"
SESSION_KIND = "session"
LINK_KIND = "link"
# Spent nonces and revoked sessions are remembered until they expire; past this
# many, new ones are refused rather than let the lists grow without bound.
MAX_REMEMBERED = 100_000


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
        self._revoked: dict[str, int] = {}
        self._cut_off: dict[tuple[RevocationKind, str], float] = {}
        self._unsynced_since: float | None = None
        self._spent_links: dict[str, int] = {}

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
        return self._issue(
            SESSION_KIND, principal.name, principal.role, self._config.session_hours * 3600
        )

    def from_cookie(self, cookie: str | None) -> Principal | None:
        """The session's user, if the cookie is authentic, unexpired and still valid."""
        data = self._verified(cookie, SESSION_KIND)
        if data is None:
            return None
        session = data.get("s")
        if (
            not isinstance(session, str)
            or session in self._revoked
            or self._signed_before_cut(data)
        ):
            return None
        return self._current_user(data)

    def revoke(self, cookie: str | None) -> Revocation | None:
        """End the cookie's session here and now; what to store so that every node
        and the next start refuse it too. None when it was no valid session."""
        data = self._verified(cookie, SESSION_KIND)
        session = None if data is None else data.get("s")
        if not isinstance(session, str) or data is None:
            return None
        revocation = Revocation(
            kind=RevocationKind.SESSION,
            subject=session,
            revoked_at=datetime.fromtimestamp(self._clock(), UTC),
            expires_at=datetime.fromtimestamp(_expiry(data), UTC),
        )
        return revocation if self.apply(revocation) else None

    def apply(self, revocation: Revocation) -> bool:
        """Honour a revocation made here, on another node or by the CLI; False
        when the list of signed-out sessions is full."""
        if revocation.kind is not RevocationKind.SESSION:
            key = (revocation.kind, revocation.subject)
            cut = revocation.revoked_at.timestamp()
            self._cut_off[key] = max(cut, self._cut_off.get(key, cut))
            return True
        if revocation.subject in self._revoked:
            return True
        self._forget_expired()
        if len(self._revoked) >= MAX_REMEMBERED:
            log.warning(
                "dashboard: the list of signed-out sessions is full (%d not yet expired); "
                "a signed-out cookie stays valid until it expires",
                MAX_REMEMBERED,
            )
            return False
        expires = revocation.expires_at
        self._revoked[revocation.subject] = int(expires.timestamp()) if expires else 2**62
        return True

    def revocations_known(self, known: bool) -> None:
        """Until the stored revocations have been read, refuse what was signed
        before: it may have been signed out on another node or before a
        restart. What is signed from then on cannot have been, so signing in
        again works."""
        if known:
            self._unsynced_since = None
        elif self._unsynced_since is None:
            self._unsynced_since = self._clock()

    def _signed_before_cut(self, data: dict[str, object]) -> bool:
        """Signed no later than a revocation of its user or of everyone, or before
        the stored revocations could be read; a cookie from before issue times
        were carried counts as signed at 0."""
        issued = data.get("i")
        signed = issued if isinstance(issued, int) else 0
        if self._unsynced_since is not None and signed < self._unsynced_since:
            return True
        if not self._cut_off:
            return False
        user = data.get("u")
        cuts = (
            self._cut_off.get((RevocationKind.EVERYONE, "")),
            self._cut_off.get((RevocationKind.USER, user)) if isinstance(user, str) else None,
        )
        return any(cut is not None and signed <= cut for cut in cuts)

    def sign_in_link_token(self, name: str, *, valid_seconds: float) -> str:
        """A token for `/login/link?token=...` that signs `name` in once."""
        user = self._users.get(name)
        if user is None:
            raise KeyError(name)
        return self._issue(LINK_KIND, user.name, user.role, valid_seconds)

    def redeem_sign_in_link(self, token: str | None) -> Principal | None:
        """The link's user, once: a second use, an expired or forged link gives None."""
        data = self._verified(token, LINK_KIND)
        if data is None:
            return None
        nonce = data.get("n")
        if (
            not isinstance(nonce, str)
            or nonce in self._spent_links
            or self._signed_before_cut(data)
        ):
            return None
        principal = self._current_user(data)
        if principal is None:
            return None
        self._forget_expired()
        if len(self._spent_links) >= MAX_REMEMBERED:
            return None
        self._spent_links[nonce] = _expiry(data)
        return principal

    def _issue(self, kind: str, name: str, role: str, valid_seconds: float) -> str:
        """A signed token: a session's id ("s") is revoked on logout, a link's nonce
        ("n") is spent on first use; both carry the user's password mark."""
        return self._signed(
            {
                "k": kind,
                "u": name,
                "r": role,
                "i": int(self._clock()),
                "e": int(self._clock() + valid_seconds),
                "s" if kind == SESSION_KIND else "n": secrets.token_urlsafe(12),
                "p": self._password_mark(name),
            }
        )

    def _signed(self, data: dict[str, object]) -> str:
        payload = _b64(json.dumps(data, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def _verified(self, token: str | None, kind: str) -> dict[str, object] | None:
        """The payload of an authentic, unexpired token of this kind."""
        if not token or not _COOKIE.match(token):
            return None
        payload, signature = token.split(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            data = json.loads(_unb64(payload))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(data, dict) or data.get("k") != kind:
            return None
        expires = data.get("e")
        if not isinstance(expires, int) or expires < self._clock():
            return None
        return data

    def _current_user(self, data: dict[str, object]) -> Principal | None:
        """The named user if they still exist with the same role and password."""
        name, role = data.get("u"), data.get("r")
        user = self._users.get(name) if isinstance(name, str) else None
        if user is None or user.role != role or data.get("p") != self._password_mark(user.name):
            return None
        return Principal(name=user.name, role=user.role)

    def _password_mark(self, name: str) -> str:
        """A short keyed digest of the user's password hash: a new password ends old sessions."""
        user = self._users.get(name)
        material = b"" if user is None else user.password_hash.encode("utf-8")
        return _b64(hmac.new(self._key, b"password\0" + material, hashlib.sha256).digest()[:9])

    def _forget_expired(self) -> None:
        now = self._clock()
        for remembered in (self._revoked, self._spent_links):
            for key in [key for key, expires in remembered.items() if expires < now]:
                del remembered[key]

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())


def revocation_of(user: str | None, at: datetime) -> Revocation:
    """Every session of `user` (None: of everyone) signed no later than `at`."""
    if user is None:
        return Revocation(RevocationKind.EVERYONE, "", revoked_at=at, expires_at=None)
    return Revocation(RevocationKind.USER, user, revoked_at=at, expires_at=None)


def _expiry(data: dict[str, object]) -> int:
    """The verified token's expiry; `_verified` has already checked it is an int."""
    expires = data["e"]
    return expires if isinstance(expires, int) else 0
