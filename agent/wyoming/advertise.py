"""Zeroconf (mDNS) for the Wyoming server, on with VOICE_AGENT_WYOMING_ZEROCONF=true: Home
Assistant then offers the agent under Settings > Devices & services > Discovered. Off by default,
because it announces the agent to the whole network."""

from __future__ import annotations

import logging
import socket
from typing import Any

log = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."
_MDNS_GROUP = "224.0.0.251"


class Advertisement:
    def __init__(self, host: str, port: int, name: str | None = None) -> None:
        self.host = host if host not in ("", "0.0.0.0", "::") else outward_address()
        self.port = port
        self.name = name or f"voice-agent-{socket.gethostname().split('.')[0]}"
        self._zeroconf: Any = None
        self._info: Any = None

    async def start(self) -> None:
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf  # the wyoming extra

        self._info = AsyncServiceInfo(
            SERVICE_TYPE, f"{self.name}.{SERVICE_TYPE}", addresses=[socket.inet_aton(self.host)], port=self.port
        )
        self._zeroconf = AsyncZeroconf()
        await self._zeroconf.async_register_service(self._info)
        log.info("Wyoming server announced over zeroconf as %s at %s:%d", self.name, self.host, self.port)

    async def close(self) -> None:
        if self._zeroconf is None:
            return
        try:
            await self._zeroconf.async_unregister_service(self._info)
        finally:
            await self._zeroconf.async_close()
            self._zeroconf = None


def outward_address() -> str:
    """The IPv4 address this machine's multicast traffic leaves from (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((_MDNS_GROUP, 1))
        return str(probe.getsockname()[0])
