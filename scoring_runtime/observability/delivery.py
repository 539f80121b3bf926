"""Posting telemetry batches: one kept-alive connection per destination, gzip, and what was not accepted kept for the
next round (in memory, or in a folder that outlives the process: Application Insights' offline storage).

Runs on the export thread only, so nothing here is shared between threads.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import os
import ssl
import time
import urllib.parse
from collections import deque
from collections.abc import Mapping
from pathlib import Path

logger = logging.getLogger("azmlinfsrv")

# What a collector or Application Insights answers when a later try may succeed (and 206: some items were refused).
RETRIABLE = frozenset({408, 429, 500, 502, 503, 504})
# Batches kept in memory for another try; older ones are dropped first.
KEPT_IN_MEMORY = 8
# What a storage folder may hold (Azure Monitor's exporter keeps 50 MB); files older than this are not sent again.
STORAGE_BYTES = 50 * 1024 * 1024
STORAGE_MAX_AGE_S = 48 * 3600.0
# Stored batches sent again after each accepted one: the backlog drains without starving new batches.
RESENT_PER_ROUND = 4


class Destination:
    """One URL that batches are POSTed to."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        compress: bool,
        ssl_context: ssl.SSLContext | None = None,
        storage: Path | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {**headers, **({"Content-Encoding": "gzip"} if compress else {})}
        self._compress = compress
        self._timeout_s = timeout_s
        self._ssl_context = ssl_context
        self._connection: http.client.HTTPConnection | None = None
        self._kept: deque[bytes] = deque(maxlen=KEPT_IN_MEMORY)
        self._storage = storage
        self._failing = False

    def post(self, body: bytes) -> tuple[int, bytes] | None:
        """POST one body; the answer's status and body, or None if no answer came (logged once per outage)."""
        payload = gzip.compress(body, compresslevel=1) if self._compress else body
        for attempt in (1, 2):
            reused = self._connection is not None
            connection = self._connection or self._connect()
            try:
                connection.request("POST", self._target, payload, self._headers)
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                self._connection = None
                # A kept-alive connection the other side has closed meanwhile fails: one new connection is tried.
                if attempt == 2 or not reused:
                    self._report(f"{type(error).__name__}: {error}")
                    return None
                continue
            if response.will_close:
                connection.close()
                self._connection = None
            return response.status, answer
        return None  # pragma: no cover - the loop returns

    def deliver(self, body: bytes) -> tuple[int, bytes] | None:
        """POST `body`, keeping it for another try if it was not accepted for a reason that may pass; then, if it was,
        send again what was kept. The answer as `post` gives it."""
        answer = self.post(body)
        if answer is None or answer[0] in RETRIABLE:
            self.keep(body)
            if answer is not None:
                self._report(f"HTTP {answer[0]}")
            return answer
        if answer[0] >= 300 and answer[0] != 206:
            self._report(f"HTTP {answer[0]}, {len(body)} bytes dropped: {answer[1][:200]!r}")
            return answer
        if self._failing:
            self._failing = False
            logger.info("Telemetry is accepted again by %s", self.url)
        self._resend()
        return answer

    def keep(self, body: bytes) -> None:
        """Keep a body for another try: in the storage folder when there is one, else in memory."""
        if self._storage is None:
            self._kept.append(body)
            return
        try:
            self._storage.mkdir(parents=True, exist_ok=True)
            if _folder_bytes(self._storage) + len(body) <= STORAGE_BYTES:
                name = f"{time.time_ns()}-{os.getpid()}.json"
                (self._storage / f"{name}.tmp").write_bytes(body)
                (self._storage / f"{name}.tmp").rename(self._storage / name)
        except OSError as error:
            logger.warning("Telemetry could not be stored in %s: %s", self._storage, error)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _resend(self) -> None:
        for _ in range(RESENT_PER_ROUND):
            body = self._next_kept()
            if body is None:
                return
            answer = self.post(body)
            if answer is None or answer[0] in RETRIABLE:
                self.keep(body)
                return

    def _next_kept(self) -> bytes | None:
        if self._storage is None:
            return self._kept.popleft() if self._kept else None
        for path in sorted(self._storage.glob("*.json")) if self._storage.is_dir() else ():
            try:
                body = path.read_bytes()
                stale = time.time() - path.stat().st_mtime > STORAGE_MAX_AGE_S
                path.unlink()
            except OSError:
                continue  # another worker took it
            if not stale:
                return body
        return None

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            self._connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout_s, context=self._ssl_context
            )
        else:
            self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
        return self._connection

    def _report(self, problem: str) -> None:
        if not self._failing:
            self._failing = True
            logger.warning(
                "Telemetry not accepted by %s (%s); kept for another try where that may help", self.url, problem
            )


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.iterdir():
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total
