"""Request telemetry as Application Insights envelopes, posted to its ingestion endpoint's `/v2.1/track`.

The envelopes are those Azure Monitor's OpenTelemetry exporter makes of the reference's request spans (the requests
table gets the same columns and custom dimensions), written with orjson: that exporter's model classes cost about
280 µs a span. Log records still go through the exporter (telemetry_sdk.py): there are few of them.
"""

from __future__ import annotations

import logging
import platform
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson

from scoring_runtime._version import __version__
from scoring_runtime.observability.delivery import RETRIABLE, Destination
from scoring_runtime.observability.request_export import Request
from scoring_runtime.observability.telemetry_values import duration_text, response_value, timespan_text, utc_text

logger = logging.getLogger("azmlinfsrv")

DEFAULT_INGESTION = "https://dc.services.visualstudio.com"
TRACK_PATH = "v2.1/track"
TIMEOUT_S = 10.0
REQUEST_ENVELOPE = "Microsoft.ApplicationInsights.Request"
# The values of a request that fill the envelope's template, in its order; `extra` is the optional properties.
TEMPLATE_FIELDS = (
    "time",
    "sample_rate",
    "operation_id",
    "operation_name",
    "id",
    "name",
    "timespan",
    "response_code",
    "success",
    "url",
    "request_id",
    "client_request_id",
    "path",
    "property_url",
    "start_time",
    "duration",
    "result_code",
    "success_text",
    "method",
    "extra",
)
_dumps = orjson.dumps


def parse_connection_string(connection_string: str) -> tuple[str, str]:
    """The instrumentation key and the ingestion endpoint (without a trailing /) of a connection string."""
    fields: dict[str, str] = {}
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            fields[name.strip().lower()] = value.strip()
    key = fields.get("instrumentationkey", "")
    if not key:
        raise ValueError("the connection string has no InstrumentationKey")
    endpoint = fields.get("ingestionendpoint")
    if not endpoint and fields.get("endpointsuffix"):
        location = fields.get("location")
        endpoint = f"https://{location + '.' if location else ''}dc.{fields['endpointsuffix']}"
    return key, (endpoint or DEFAULT_INGESTION).rstrip("/")


class AppInsightsSink:
    name = "Application Insights"

    def __init__(
        self, connection_string: str, common: Mapping[str, str], offline_storage: bool, role_instance: str
    ) -> None:
        key, endpoint = parse_connection_string(connection_string)
        storage = (
            Path(tempfile.gettempdir(), f"scoring_runtime-telemetry-{key}", "requests") if offline_storage else None
        )
        self.destination = Destination(
            f"{endpoint}/{TRACK_PATH}",
            {"Content-Type": "application/json", "Accept": "application/json"},
            TIMEOUT_S,
            compress=True,
            storage=storage,
        )
        service_name = common.get("Service Name", "")
        tags = {
            "ai.cloud.role": service_name,
            "ai.cloud.roleInstance": role_instance,
            "ai.internal.nodeName": role_instance,
            "ai.internal.sdkVersion": f"py{platform.python_version()}:scoring_runtime{__version__}",
        }
        self._template = envelope_template(key, tags, common)
        self._clock = UtcClock()

    def send(self, batch: Sequence[Request]) -> None:
        items = [self.envelope(request) for request in batch]
        answer = self.destination.deliver(b"[" + b",".join(items) + b"]")
        if answer is not None and answer[0] == 206:
            self._keep_refused(items, answer[1])

    def close(self) -> None:
        self.destination.close()

    def envelope(self, request: Request) -> bytes:
        """The request's envelope, as JSON."""
        started = _dumps(self._clock.text(request.start_ns))
        name = _dumps(f"{request.method} {request.path}")
        url = _dumps(request.url)
        milliseconds = (request.end_ns - request.start_ns) // 1_000_000
        code = b'"%d"' % request.status
        success = request.status < 400
        extra = b""
        if request.body is not None:
            extra = b',"Response Value":' + _dumps(response_value(request.body))
        if request.error is not None:
            extra += b',"Error":' + _dumps(f"{type(request.error).__name__}: {request.error}")
        duration = duration_text(milliseconds)
        # In the order of TEMPLATE_FIELDS.
        return self._template % (
            started,
            b"100.0" if request.probability >= 1.0 else _dumps(request.probability * 100.0),
            b'"%032x"' % request.trace_id,
            name,
            b'"%016x"' % request.span_id,
            name,
            _dumps(timespan_text(milliseconds)),
            code,
            b"true" if success else b"false",
            url,
            _dumps(request.request_id),
            _dumps(request.client_request_id),
            _dumps(request.path),
            url,
            started,
            _dumps(duration),
            code,
            b'"True"' if success else b'"False"',
            _dumps(request.method),
            extra,
        )

    def _keep_refused(self, items: list[bytes], answer: bytes) -> None:
        """Keep for another try the items of a partly accepted batch that were refused for a passing reason."""
        try:
            errors = orjson.loads(answer).get("errors", [])
            again = sorted({error["index"] for error in errors if error.get("statusCode") in RETRIABLE})
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
            logger.warning("Application Insights accepted part of a batch, and its answer could not be read")
            return
        kept = [items[index] for index in again if isinstance(index, int) and 0 <= index < len(items)]
        if kept:
            self.destination.keep(b"[" + b",".join(kept) + b"]")


def envelope_template(key: str, tags: Mapping[str, str], common: Mapping[str, str]) -> bytes:
    """A request envelope as bytes to fill with `%`: what is the same for every request of a process is encoded once.

    The envelope is the one Azure Monitor's exporter makes of the reference's request span; its properties are the
    span's attributes (the requests table's custom dimensions). Building it as a dict and encoding it for each request
    cost 14 µs; filling this costs about 4. Each `%s` takes JSON, in the order of TEMPLATE_FIELDS: the request's
    values, encoded by `AppInsightsSink.envelope`.
    """
    token = secrets.token_hex(8)

    def mark(field: str) -> str:
        return f"{token}:{field}"

    properties: dict[str, str] = dict(common)
    properties |= {"Request Id": mark("request_id"), "Client Request Id": mark("client_request_id")}
    properties |= {"name": mark("path"), "url": mark("property_url"), "start_time": mark("start_time")}
    properties |= {"duration": mark("duration"), "resultCode": mark("result_code"), "success": mark("success_text")}
    # Last: the optional properties follow it.
    properties["http_method"] = mark("method")
    shape = {
        "name": REQUEST_ENVELOPE,
        "time": mark("time"),
        # In percent: Application Insights counts the item as 100/sampleRate requests (its itemCount).
        "sampleRate": mark("sample_rate"),
        "iKey": key,
        "tags": {**tags, "ai.operation.id": mark("operation_id"), "ai.operation.name": mark("operation_name")},
        "data": {
            "baseType": "RequestData",
            "baseData": {
                "ver": 2,
                "id": mark("id"),
                "name": mark("name"),
                "duration": mark("timespan"),
                "responseCode": mark("response_code"),
                "success": mark("success"),
                "url": mark("url"),
                "properties": properties,
            },
        },
    }
    encoded = orjson.dumps(shape).replace(b"%", b"%%")
    marks = re.compile(rf'"{token}:(\w+)"'.encode())
    if tuple(field.decode() for field in marks.findall(encoded)) != TEMPLATE_FIELDS[:-1]:
        raise RuntimeError("the envelope's fields are not in the order envelope() fills them")  # pragma: no cover
    # The optional properties follow the last one.
    return marks.sub(b"%s", encoded).removesuffix(b"}}}}") + b"%s}}}}"


class UtcClock:
    """utc_text, with the date and time of day formatted once a second (a batch holds requests of the same seconds)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def text(self, time_ns: int) -> str:
        second, nanoseconds = divmod(time_ns, 1_000_000_000)
        if second != self._second:
            self._second, self._prefix = second, utc_text(second * 1_000_000_000)[:-8]
        return f"{self._prefix}.{nanoseconds // 1000:06d}Z"
