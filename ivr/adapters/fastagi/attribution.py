"""Which PBX a FastAGI request comes from, when one service follows several.

Linkedids are only unique per Asterisk, so a survey request must be matched
to the PBX that sent it before its call is looked up: the same Linkedid can
be live on two PBXs at once. The rule, first match wins:

1. the `pbx=<name>` AGI argument, when the dialplan passes it (a name that is
   not configured is refused: the dialplan and the configuration disagree,
   and guessing would credit another PBX's agent);
2. the connection's source address, matched against each PBX's
   `agi_addresses`;
3. the only PBX, when only one is configured (a single-PBX service needs
   neither).

Otherwise the request is refused with a log line naming the Linkedid and
the source address. Before any of this, when `[agi] shared_key` is set, a
request without the matching `key=` argument is refused: FastAGI has no
authentication of its own, and any process on an allowed address could
otherwise store scores against an agent it names. `attribute` is pure;
`PbxRouter` applies it to a FastAGI channel and hands the channel to that
PBX's route.
"""

from __future__ import annotations

import collections
import hmac
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ivr.adapters.fastagi.protocol import options
from ivr.adapters.fastagi.server import AgiChannel, Route
from ivr.adapters.guard import RateLimitedWarnings, since_last
from ivr.config.pbx import PbxConfig

log = logging.getLogger(__name__)

PBX_OPTION = "pbx"
KEY_OPTION = "key"


@dataclass(frozen=True, slots=True)
class Attribution:
    """The PBX a request belongs to (None: refused) and how that was decided, or why not."""

    pbx: str | None
    reason: str


def attribute(
    pbxs: Sequence[PbxConfig], *, argument: str | None, address: str | None
) -> Attribution:
    """Pick the PBX for a request from its `pbx=` argument and its source address."""
    names = [pbx.name for pbx in pbxs]
    if argument:
        if argument in names:
            return Attribution(argument, "pbx= argument")
        return Attribution(
            None, f"pbx={argument} names no configured PBX (configured: {', '.join(names)})"
        )
    if address:
        senders = [pbx.name for pbx in pbxs if pbx.sends_from(address)]
        if len(senders) == 1:
            return Attribution(senders[0], "agi_addresses")
    if len(names) == 1:
        return Attribution(names[0], "the only PBX")
    return Attribution(
        None,
        f"source address {address or '?'} is in no PBX's agi_addresses and no pbx= "
        "argument was given",
    )


class PbxRouter:
    """Hands each FastAGI channel to the route of the PBX it comes from."""

    def __init__(
        self,
        pbxs: Sequence[PbxConfig],
        routes: Mapping[str, Route],
        *,
        shared_key: str = "",
        refused: collections.Counter[str] | None = None,
    ) -> None:
        self._pbxs = tuple(pbxs)
        self._routes = dict(routes)
        self._key = shared_key.encode()
        self._refused = refused if refused is not None else collections.Counter()
        self._warnings = RateLimitedWarnings(time.monotonic)

    async def __call__(self, channel: AgiChannel) -> None:
        request = channel.request
        given = options(request.arguments)
        if self._key and not hmac.compare_digest(given.get(KEY_OPTION, "").encode(), self._key):
            self._refused["bad_key"] += 1
            suppressed = self._warnings.due(f"key {channel.peer_address}")
            if suppressed is not None:
                log.warning(
                    "Linkedid=%s: FastAGI %s from %s refused: no key= argument matching "
                    "[agi] shared_key; no survey%s",
                    request.linkedid_argument or "-",
                    request.channel,
                    channel.peer_address or "?",
                    since_last(suppressed),
                )
            return
        decided = attribute(
            self._pbxs, argument=given.get(PBX_OPTION), address=channel.peer_address
        )
        if decided.pbx is None:
            log.error(
                "Linkedid=%s: FastAGI %s from %s refused: %s (set agi_addresses in "
                "[pbx.<name>] or pass pbx=<name> after the Linkedid); no survey",
                request.linkedid_argument or "-",
                request.channel,
                channel.peer_address or "?",
                decided.reason,
            )
            return
        log.debug(
            "Linkedid=%s: FastAGI from %s is PBX %s (%s)",
            request.linkedid_argument or "-",
            channel.peer_address or "?",
            decided.pbx,
            decided.reason,
        )
        await self._routes[decided.pbx](channel)
