"""Request telemetry as OTLP/HTTP trace requests (protobuf), for any OpenTelemetry collector.

The spans are written straight in protobuf's wire format: building them as opentelemetry-proto messages costs about
40 µs a span from Python, the SDK's encoder about 70. What is the same for every span of a process (the resource,
the scope, the constant attributes) is encoded once with the message classes; each span is a few byte strings
joined. The tests read what is sent with those message classes.

Configured as OpenTelemetry's OTLP/HTTP span exporter is, from `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `_HEADERS`,
`_TIMEOUT` (seconds, as the Python SDK reads it), `_COMPRESSION` (gzip or none), `_CERTIFICATE`,
`_CLIENT_CERTIFICATE` and `_CLIENT_KEY`.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping, Sequence

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.util.re import parse_env_headers

from scoring_runtime._version import __version__
from scoring_runtime.observability.delivery import Destination
from scoring_runtime.observability.request_export import Request
from scoring_runtime.observability.telemetry_values import response_value

logger = logging.getLogger("azmlinfsrv")

DEFAULT_ENDPOINT = "http://localhost:4318"
TRACES_PATH = "v1/traces"
DEFAULT_TIMEOUT_S = 10.0
_SMALL = [bytes((value,)) for value in range(128)]
# Span's fields (trace.proto): trace_id 1, span_id 2, name 5, kind 6 (SERVER is 2), start and end 7 and 8 (fixed64),
# attributes 9, events 11, status 15. KeyValue: key 1, value 2; AnyValue: string 1, bool 2, int 3.
_SERVER_KIND = b"\x30\x02"
_ERROR_STATUS = b"\x7a\x02\x18\x02"


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _key(name: str) -> bytes:
    return _field(b"\x0a", name.encode())


def _text_attribute(key: bytes, value: str) -> bytes:
    return _field(b"\x4a", key + _field(b"\x12", _field(b"\x0a", value.encode())))


def _any_value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[_any_value(item) for item in value]))
    return AnyValue(string_value=str(value))


def key_values(attributes: Mapping[str, object]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_any_value(value)) for key, value in attributes.items()]


_REQUEST_ID, _CLIENT_ID, _METHOD, _URL, _ROUTE, _BODY = (
    _key(name)
    for name in ("Request Id", "Client Request Id", "http.request.method", "url.full", "http.route", "Response Value")
)
_STATUS = _key("http.response.status_code")


def encode_span(request: Request, constant: bytes) -> bytes:
    """One SERVER span: named `METHOD /path`, the request's times, its ids and the HTTP semantic conventions."""
    parts = [
        b"\x0a\x10",
        request.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        request.span_id.to_bytes(8, "big"),
        _field(b"\x2a", f"{request.method} {request.path}".encode()),
        _SERVER_KIND,
        b"\x39",
        request.start_ns.to_bytes(8, "little"),
        b"\x41",
        request.end_ns.to_bytes(8, "little"),
        constant,
        _text_attribute(_REQUEST_ID, request.request_id),
        _text_attribute(_CLIENT_ID, request.client_request_id),
        _text_attribute(_METHOD, request.method),
        _text_attribute(_URL, request.url),
        _text_attribute(_ROUTE, request.path),
        _field(b"\x4a", _STATUS + _field(b"\x12", b"\x18" + _varint(request.status))),
    ]
    if request.body is not None:
        parts.append(_text_attribute(_BODY, response_value(request.body)))
    if request.probability < 1.0:
        # How many requests this one stands for (sampling.py); OTLP has no field of its own for it.
        count = KeyValue(key="sampling.adjusted_count", value=AnyValue(double_value=1.0 / request.probability))
        parts.append(_field(b"\x4a", count.SerializeToString()))
    if request.error is not None:
        event = Span.Event(
            time_unix_nano=request.end_ns,
            name="exception",
            attributes=key_values(
                {"exception.type": type(request.error).__name__, "exception.message": str(request.error)}
            ),
        )
        parts.append(_field(b"\x5a", event.SerializeToString()))
    if request.status >= 500 or request.error is not None:
        parts.append(_ERROR_STATUS)
    return b"".join(parts)


class OtlpSpanSink:
    name = "OTLP"

    def __init__(
        self, environ: Mapping[str, str], resource: Mapping[str, object], constant: Mapping[str, object]
    ) -> None:
        def setting(name: str) -> str:
            return environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or environ.get(f"OTEL_EXPORTER_OTLP_{name}") or ""

        url = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
            f"{(environ.get('OTEL_EXPORTER_OTLP_ENDPOINT') or DEFAULT_ENDPOINT).removesuffix('/')}/{TRACES_PATH}"
        )
        compression = setting("COMPRESSION").strip().lower() or "none"
        if compression not in ("gzip", "none"):
            logger.warning("OTLP compression %r is not supported; request spans are sent uncompressed", compression)
        protocol = setting("PROTOCOL").strip().lower()
        if protocol and protocol != "http/protobuf":
            logger.warning("OTLP protocol %r is not supported; request spans are sent as http/protobuf", protocol)
        headers = {"Content-Type": "application/x-protobuf", "User-Agent": f"scoring_runtime/{__version__}"}
        headers |= parse_env_headers(setting("HEADERS"), liberal=True)
        self.destination = Destination(
            url,
            headers,
            _timeout(setting("TIMEOUT")),
            compress=compression == "gzip",
            ssl_context=_ssl_context(setting("CERTIFICATE"), setting("CLIENT_CERTIFICATE"), setting("CLIENT_KEY")),
        )
        resource_bytes = Resource(attributes=key_values(resource)).SerializeToString()
        scope_bytes = InstrumentationScope(name="scoring_runtime", version=__version__).SerializeToString()
        self._resource_field = _field(b"\x0a", resource_bytes)
        self._scope_field = _field(b"\x0a", scope_bytes)
        self._constant = b"".join(_field(b"\x4a", pair.SerializeToString()) for pair in key_values(constant))

    def encode(self, batch: Sequence[Request]) -> bytes:
        """An ExportTraceServiceRequest: one ResourceSpans holding one ScopeSpans with the batch's spans."""
        spans = b"".join(_field(b"\x12", encode_span(request, self._constant)) for request in batch)
        return _field(b"\x0a", self._resource_field + _field(b"\x12", self._scope_field + spans))

    def send(self, batch: Sequence[Request]) -> None:
        self.destination.deliver(self.encode(batch))

    def close(self) -> None:
        self.destination.close()


def _timeout(raw: str) -> float:
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        logger.warning("OTLP timeout %r is not a number of seconds; using %s", raw, DEFAULT_TIMEOUT_S)
        return DEFAULT_TIMEOUT_S


def _ssl_context(certificate: str, client_certificate: str, client_key: str) -> ssl.SSLContext | None:
    if not (certificate or client_certificate):
        return None
    context = ssl.create_default_context(cafile=certificate or None)
    if client_certificate:
        context.load_cert_chain(client_certificate, client_key or None)
    return context
