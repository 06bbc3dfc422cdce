"""How many connections the Wyoming door holds. One connection's own bounds are in ``connection``
and ``wire``; what every server door shares (the cap under the descriptor limit, throttled log
lines, failed accepts as one line) is ``agent.limits``."""

from __future__ import annotations

from agent.limits import ThrottledLog

MAX_CONNECTIONS = 64  # Home Assistant opens one per request; a household needs a handful


class ConnectionGate:
    """Counts the door's open connections; past ``cap`` a new one is refused (and logged once
    per interval)."""

    def __init__(self, cap: int, throttled: ThrottledLog) -> None:
        self.cap = cap
        self.open = 0
        self._throttled = throttled

    def enter(self, peer: str) -> bool:
        if self.open >= self.cap:
            self._throttled.warning("Wyoming: %d connections open (the cap): closed a new one from %s", self.open, peer)
            return False
        self.open += 1
        return True

    def leave(self) -> None:
        self.open -= 1
