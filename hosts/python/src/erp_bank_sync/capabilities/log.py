"""`interface log`: the plugin's diagnostics into `logging` (logger `erp_bank_sync.plugin`),
tagged with the plugin and the connection, throttled (200 lines at once, then 20 a second) and
cut at 2048 bytes, as in the Rust host. Control characters are shown escaped: the text is the
plugin's, and may quote upstream data."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("erp_bank_sync.plugin")

MAX_LINE_BYTES = 2048
LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_CONTROL = {c: f"\\x{c:02x}" for c in list(range(0x20)) + [0x7F]}


def neutralise(text: str) -> str:
    return text.translate(_CONTROL)


class LogCapability:
    def __init__(self, plugin: str, connection: str, burst: int = 200, per_second: int = 20):
        self.plugin, self.connection = plugin, connection
        self.burst, self.per_second = burst, per_second
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.unreported = self.dropped = self.written = 0

    def write(self, _store: object, level: str, message: str) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.per_second)
        self.last = now
        if self.tokens < 1:
            self.dropped += 1
            self.unreported += 1
            return
        self.tokens -= 1
        if self.unreported:
            self._emit(logging.WARNING, f"log throttled: {self.unreported} lines dropped")
            self.unreported = 0
        self.written += 1
        cut = message.encode()[:MAX_LINE_BYTES].decode(errors="ignore")
        self._emit(LEVELS.get(level, logging.INFO), neutralise(cut))

    def _emit(self, level: int, text: str) -> None:
        log.log(
            level,
            "[%s %s] %s",
            self.plugin,
            self.connection,
            text,
            extra={"plugin": self.plugin, "connection": self.connection},
        )
