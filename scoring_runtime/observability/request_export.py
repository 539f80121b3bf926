"""Request telemetry queued on the request path and sent in batches by one thread.

OpenTelemetry's SDK costs more CPU per request than the request itself (a span through its tracer, its batch
processor and an exporter's encoder: 25 to 280 µs where an echo request costs about 90): the request path only
appends a `RequestRecord`, a tuple of what it already holds, to a deque. The export thread turns records into `Request`
facts once, and hands them to each sink (Application Insights, OTLP) to encode and post.

The batching follows the SDK's batch span processor and reads its variables: a batch leaves every
`OTEL_BSP_SCHEDULE_DELAY` ms, or as soon as `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` records wait; past
`OTEL_BSP_MAX_QUEUE_SIZE` waiting, records are dropped (and counted) rather than held.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

from scoring_runtime.observability.sampling import Sampler

logger = logging.getLogger("azmlinfsrv")

DEFAULT_DELAY_MS = 5000
DEFAULT_BATCH = 512
DEFAULT_QUEUE = 2048
_HOST = b"host"
_DEFAULT_PORTS = {("http", 80), ("https", 443)}


class RequestRecord(NamedTuple):
    """What the request path holds when a traced request ends, untouched: all decoding waits for the export thread."""

    scope: Mapping[str, object]
    status: int
    request_id: str
    client_request_id: str
    # Wall-clock nanoseconds.
    start_and_end: tuple[int, int]
    # The start of the response body (APP_INSIGHTS_LOG_RESPONSE_ENABLED), or None.
    body: bytes | None
    # An exception that escaped the application (the client got a 500 or a cut response).
    error: BaseException | None


class Request(NamedTuple):
    """One request's telemetry, as every sink sends it."""

    method: str
    path: str
    url: str
    status: int
    request_id: str
    client_request_id: str
    start_ns: int
    end_ns: int
    body: bytes | None
    error: BaseException | None
    trace_id: int
    span_id: int
    # The probability this request was chosen with (sampling.py): it stands for 1/probability requests.
    probability: float


def describe(record: RequestRecord, probability: float = 1.0) -> Request:
    """The record decoded, with new trace and span ids (the reference starts a trace for each request)."""
    scope = record.scope
    return Request(
        str(scope["method"]),
        str(scope["path"]),
        request_url(scope),
        record.status or 500,
        record.request_id,
        record.client_request_id,
        *record.start_and_end,
        record.body,
        record.error,
        random.getrandbits(128) or 1,
        random.getrandbits(64) or 1,
        probability,
    )


def request_url(scope: Mapping[str, object]) -> str:
    """The URL the client asked for, as the reference's `request.url`: from the Host header, else the server."""
    scheme = str(scope.get("scheme", "http"))
    headers: Sequence[tuple[bytes, bytes]] = scope["headers"]  # type: ignore[assignment]
    host = next((value.decode("latin-1") for name, value in headers if name == _HOST), None)
    if host is None:
        server: tuple[str, int | None] | None = scope.get("server")  # type: ignore[assignment]
        if server is None:
            host = "localhost"
        elif (scheme, server[1]) in _DEFAULT_PORTS or server[1] is None:
            host = server[0]
        else:
            host = f"{server[0]}:{server[1]}"
    query: bytes = scope.get("query_string", b"")  # type: ignore[assignment]
    target = f"{scope.get('root_path', '')}{scope['path']}"
    return f"{scheme}://{host}{target}?{query.decode('latin-1')}" if query else f"{scheme}://{host}{target}"


class Sink(Protocol):
    """Where a batch goes: encodes it and posts it, retrying as it sees fit; never raises."""

    name: str

    def send(self, batch: Sequence[Request]) -> None: ...

    def close(self) -> None: ...


class RequestExport:
    """The queue and export thread of one process. `add` is the only call made on the request path."""

    def __init__(self, sinks: Sequence[Sink], sampler: Sampler, environ: Mapping[str, str]) -> None:
        self.sinks = list(sinks)
        self.sampler = sampler
        self.delay_s = _positive(environ, "OTEL_BSP_SCHEDULE_DELAY", DEFAULT_DELAY_MS) / 1000.0
        self.queue_size = _positive(environ, "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_QUEUE)
        self.batch_size = min(_positive(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_BATCH), self.queue_size)
        self.dropped = 0
        self._queue: deque[tuple[RequestRecord, float]] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="scoring-telemetry", daemon=True)
        self._thread.start()

    def add(self, record: RequestRecord) -> None:
        """Queue a record, if the sampler chooses it. deque.append is atomic: the request path takes no lock, and wakes
        the thread only once a batch is full."""
        probability = self.sampler.chosen(record.status == 0 or record.status >= 500 or record.error is not None)
        if probability is None:
            return
        queue = self._queue
        waiting = len(queue)
        if waiting >= self.queue_size:
            self.dropped += 1
            return
        queue.append((record, probability))
        if waiting + 1 == self.batch_size:
            self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Send what is queued, then end the thread (bounded by `timeout_s`) and close the sinks."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout_s)
        for sink in self.sinks:
            sink.close()
        if self.dropped:
            logger.warning("Request telemetry: %d request(s) not sent, the queue was full", self.dropped)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.delay_s)
            self._wake.clear()
            while self._queue:
                self._export(self._take())
            if self._stopping:
                return

    def _take(self) -> list[tuple[RequestRecord, float]]:
        queue, batch = self._queue, []
        for _ in range(min(self.batch_size, len(queue))):
            batch.append(queue.popleft())
        return batch

    def _export(self, records: list[tuple[RequestRecord, float]]) -> None:
        try:
            batch = [describe(record, probability) for record, probability in records]
        except Exception:
            logger.exception("Request telemetry could not be described; %d request(s) not sent", len(records))
            return
        for sink in self.sinks:
            sink.send(batch)


def _positive(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        if raw:
            logger.warning("%s=%s is not a whole number; using %d", name, raw, default)
        return default
    return value if value > 0 else default
