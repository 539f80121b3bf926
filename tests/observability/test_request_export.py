"""Request telemetry off the request path, in-process: the export queue and thread, Application Insights' envelopes,
OTLP spans in protobuf's wire format, and posting with retries and offline storage (to receivers on 127.0.0.1)."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scoring_runtime.observability import delivery
from scoring_runtime.observability.app_insights import AppInsightsSink, parse_connection_string
from scoring_runtime.observability.delivery import Destination
from scoring_runtime.observability.request_export import Request, RequestExport, RequestRecord, describe
from scoring_runtime.observability.sampling import Sampler, SamplingPlan

KEY = "11111111-2222-3333-4444-555555555555"
COMMON = {"Container Id": "box", "Workspace Name": 'ws "1" 100%', "Service Name": "svc"}
EVERY = Sampler(SamplingPlan(None, 1.0))


def record(path: str = "/score", status: int = 200, body: bytes | None = b'{"a": 1}', **extra: Any) -> RequestRecord:
    scope = {"method": "POST", "path": path, "headers": [(b"host", b"h:5001")], "query_string": b"q=%22"}
    scope |= {"scheme": "http", "server": ("127.0.0.1", 5001), "root_path": ""}
    fields: dict[str, Any] = {"request_id": "rid", "client_request_id": 'c"1', "error": None}
    fields |= extra
    start = 1_700_000_000_123_456_789
    ids = (fields["request_id"], fields["client_request_id"])
    return RequestRecord(scope, status, *ids, (start, start + 1_500_000_000), body, fields["error"])


class Kept:
    name = "kept"

    def __init__(self) -> None:
        self.batches: list[list[Request]] = []
        self.closed = False

    def send(self, batch: Sequence[Request]) -> None:
        self.batches.append(list(batch))

    def close(self) -> None:
        self.closed = True


def test_records_leave_in_batches_and_all_are_sent_at_stop() -> None:
    sink = Kept()
    export = RequestExport([sink], EVERY, {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4"})
    for index in range(4):
        export.add(record(request_id=f"r{index}"))
    deadline = time.monotonic() + 10
    while not sink.batches and time.monotonic() < deadline:  # a full batch wakes the thread before its delay
        time.sleep(0.01)
    assert [request.request_id for request in sink.batches[0]] == ["r0", "r1", "r2", "r3"]
    export.add(record(request_id="last"))
    export.stop()
    assert [request.request_id for batch in sink.batches for request in batch][-1] == "last" and sink.closed


def test_a_full_queue_drops_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    sink = Kept()
    export = RequestExport([sink], EVERY, {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_BSP_MAX_QUEUE_SIZE": "3"})
    for _ in range(5):
        export.add(record())
    assert export.dropped == 2
    with caplog.at_level(logging.WARNING, "azmlinfsrv"):
        export.stop()
    assert sum(len(batch) for batch in sink.batches) == 3
    assert "2 request(s) not sent, the queue was full" in caplog.text


def test_bad_batch_variables_keep_the_defaults(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "azmlinfsrv"):
        export = RequestExport([], EVERY, {"OTEL_BSP_SCHEDULE_DELAY": "soon", "OTEL_BSP_MAX_QUEUE_SIZE": "0"})
    export.stop()
    assert (export.delay_s, export.queue_size, export.batch_size) == (5.0, 2048, 512)
    assert "OTEL_BSP_SCHEDULE_DELAY=soon is not a whole number" in caplog.text


def test_the_sampler_decides_what_is_queued() -> None:
    sink = Kept()
    export = RequestExport([sink], Sampler(SamplingPlan(None, 0.0)), {})
    export.add(record())
    export.add(record(status=503))
    export.add(record(status=0))  # no response started
    export.add(record(error=RuntimeError("x")))
    export.stop()
    assert [request.status for batch in sink.batches for request in batch] == [503, 500, 200]


def test_connection_strings() -> None:
    assert parse_connection_string(f"InstrumentationKey={KEY}") == (KEY, "https://dc.services.visualstudio.com")
    given = f" instrumentationkey = {KEY} ; IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;"
    assert parse_connection_string(given) == (KEY, "https://westeurope-5.in.applicationinsights.azure.com")
    suffixed = f"InstrumentationKey={KEY};EndpointSuffix=applicationinsights.azure.cn;Location=chinaeast2"
    assert parse_connection_string(suffixed)[1] == "https://chinaeast2.dc.applicationinsights.azure.cn"
    with pytest.raises(ValueError, match="no InstrumentationKey"):
        parse_connection_string("IngestionEndpoint=https://x/")


def test_the_envelope_is_the_reference_span_as_azure_monitor_sends_it() -> None:
    sink = AppInsightsSink(f"InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:9/", COMMON, False, "box")
    request = describe(record(), 0.25)
    envelope = json.loads(sink.envelope(request))
    assert envelope["name"] == "Microsoft.ApplicationInsights.Request" and envelope["iKey"] == KEY
    assert envelope["time"] == "2023-11-14T22:13:20.123456Z" and envelope["sampleRate"] == 25.0
    assert envelope["tags"]["ai.operation.id"] == f"{request.trace_id:032x}"
    assert envelope["tags"]["ai.operation.name"] == "POST /score" and envelope["tags"]["ai.cloud.role"] == "svc"
    data = envelope["data"]["baseData"]
    assert data["id"] == f"{request.span_id:016x}" and data["duration"] == "0.00:00:01.500"
    assert (data["responseCode"], data["success"], data["url"]) == ("200", True, "http://h:5001/score?q=%22")
    assert data["properties"] == {
        **COMMON,
        "Request Id": "rid",
        "Client Request Id": 'c"1',
        "name": "/score",
        "url": "http://h:5001/score?q=%22",
        "start_time": "2023-11-14T22:13:20.123456Z",
        "duration": "00:00:01.500",
        "resultCode": "200",
        "success": "True",
        "http_method": "POST",
        "Response Value": '{"a": 1}',
    }
    failed = json.loads(sink.envelope(describe(record(status=500, body=None, error=ValueError("no")))))
    assert failed["sampleRate"] == 100.0 and failed["data"]["baseData"]["success"] is False
    assert failed["data"]["baseData"]["properties"]["success"] == "False"
    assert failed["data"]["baseData"]["properties"]["Error"] == "ValueError: no"
    assert "Response Value" not in failed["data"]["baseData"]["properties"]


def test_otlp_spans_read_back_with_the_message_classes() -> None:
    pytest.importorskip("opentelemetry.proto")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from scoring_runtime.observability.otlp_spans import OtlpSpanSink

    sink = OtlpSpanSink({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9/"}, {"service.name": "svc", "n": 3}, COMMON)
    assert sink.destination.url == "http://127.0.0.1:9/v1/traces"
    long_path = "/score" + "x" * 300  # lengths past one byte of varint
    batch = [describe(record(long_path), 0.5), describe(record(status=503, body=None, error=KeyError("k")))]
    decoded = ExportTraceServiceRequest.FromString(sink.encode(batch))
    (resource_spans,) = decoded.resource_spans
    resource = {pair.key: pair.value for pair in resource_spans.resource.attributes}
    assert resource["service.name"].string_value == "svc" and resource["n"].int_value == 3
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "scoring_runtime"
    first, second = scope_spans.spans
    assert first.name == f"POST {long_path}" and first.kind == first.SPAN_KIND_SERVER
    assert first.trace_id == batch[0].trace_id.to_bytes(16, "big") and len(first.span_id) == 8
    assert (first.start_time_unix_nano, first.end_time_unix_nano) == (batch[0].start_ns, batch[0].end_ns)
    attributes = {pair.key: pair.value for pair in first.attributes}
    assert attributes["Workspace Name"].string_value == 'ws "1" 100%'
    assert attributes["Client Request Id"].string_value == 'c"1'
    assert attributes["url.full"].string_value == f"http://h:5001{long_path}?q=%22"
    assert attributes["http.response.status_code"].int_value == 200
    assert attributes["Response Value"].string_value == '{"a": 1}'
    assert attributes["sampling.adjusted_count"].double_value == 2.0
    assert first.status.code == first.status.STATUS_CODE_UNSET
    assert second.status.code == second.status.STATUS_CODE_ERROR and second.events[0].name == "exception"
    assert {pair.key: pair.value.string_value for pair in second.events[0].attributes}["exception.type"] == "KeyError"
    assert "Response Value" not in {pair.key for pair in second.attributes}


def test_otlp_settings_come_from_the_exporter_variables(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("opentelemetry.proto")
    from scoring_runtime.observability.otlp_spans import OtlpSpanSink

    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector:4318/custom",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=secret%20value,x=1",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2.5",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
    }
    sink = OtlpSpanSink(environ, {}, {})
    destination = sink.destination
    assert destination.url == "https://collector:4318/custom" and destination._timeout_s == 2.5
    assert destination._headers["api-key"] == "secret value" and destination._headers["Content-Encoding"] == "gzip"
    with caplog.at_level(logging.WARNING, "azmlinfsrv"):
        odd = OtlpSpanSink({"OTEL_EXPORTER_OTLP_TIMEOUT": "x", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd",
                            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, {}, {})  # fmt: skip
    assert odd.destination.url == "http://localhost:4318/v1/traces" and odd.destination._timeout_s == 10.0
    assert "Content-Encoding" not in odd.destination._headers
    for warning in ("'zstd' is not supported", "'grpc' is not supported", "'x' is not a number"):
        assert warning in caplog.text


class Receiver:
    """Answers each POST with the next of `answers` (status, body), the last one again once they run out."""

    def __init__(self, answers: list[tuple[int, bytes]], hang_up: bool = False) -> None:
        self.bodies: list[bytes] = []
        bodies, pending = self.bodies, list(answers)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                bodies.append(gzip.decompress(body) if self.headers.get("content-encoding") == "gzip" else body)
                status, reply = pending.pop(0) if len(pending) > 1 else pending[0]
                self.send_response(status)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                # Closed without saying so, as an idle kept-alive connection is closed by a proxy or a collector.
                self.close_connection = hang_up

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[[list[tuple[int, bytes]]], Receiver]]:
    made: list[Receiver] = []

    def make(answers: list[tuple[int, bytes]]) -> Receiver:
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for one in made:
        one.close()


def test_what_is_not_accepted_for_a_passing_reason_is_sent_again(
    receiver: Callable[[list[tuple[int, bytes]]], Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    target = receiver([(503, b"busy"), (200, b""), (200, b"")])
    destination = Destination(target.url + "/v1/traces", {}, 5.0, compress=True)
    with caplog.at_level(logging.INFO, "azmlinfsrv"):
        assert destination.deliver(b"first") == (503, b"busy")
        assert destination.deliver(b"second") == (200, b"")
    assert target.bodies == [b"first", b"second", b"first"]
    assert "not accepted by" in caplog.text and "HTTP 503" in caplog.text and "accepted again" in caplog.text
    destination.close()


def test_what_is_refused_for_good_is_dropped(
    receiver: Callable[[list[tuple[int, bytes]]], Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    target = receiver([(400, b"bad"), (200, b"")])
    destination = Destination(target.url, {}, 5.0, compress=False)
    with caplog.at_level(logging.WARNING, "azmlinfsrv"):
        destination.deliver(b"one")
        destination.deliver(b"two")
    destination.close()
    assert target.bodies == [b"one", b"two"] and "dropped" in caplog.text


def test_with_nobody_listening_batches_wait_in_storage_for_the_next_process(tmp_path: Path) -> None:
    gone = Receiver([(200, b"")])
    url = gone.url
    gone.close()
    stored = tmp_path / "store"
    Destination(url, {}, 1.0, compress=False, storage=stored).deliver(b"kept")
    assert [path.read_bytes() for path in stored.glob("*.json")] == [b"kept"]
    # A later process (the same folder) sends what is stored after its own batch is accepted.
    back = Receiver([(200, b"")])
    later = Destination(back.url, {}, 1.0, compress=False, storage=stored)
    try:
        later.deliver(b"new")
        assert back.bodies == [b"new", b"kept"] and not list(stored.glob("*.json"))
    finally:
        later.close()
        back.close()


def test_storage_is_bounded_and_stale_batches_are_not_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "STORAGE_BYTES", 10)
    destination = Destination("http://127.0.0.1:9", {}, 1.0, compress=False, storage=tmp_path)
    destination.keep(b"12345678")
    destination.keep(b"12345678")  # over the bound: not kept
    assert len(list(tmp_path.glob("*.json"))) == 1
    monkeypatch.setattr(delivery, "STORAGE_MAX_AGE_S", -1.0)
    assert destination._next_kept() is None and not list(tmp_path.glob("*.json"))


def test_a_closed_keep_alive_connection_is_opened_again() -> None:
    target = Receiver([(200, b"")], hang_up=True)
    destination = Destination(target.url, {}, 5.0, compress=False)
    try:
        assert destination.deliver(b"a") == (200, b"")
        time.sleep(0.1)
        assert destination.deliver(b"b") == (200, b"")
        assert target.bodies == [b"a", b"b"]
    finally:
        destination.close()
        target.close()


def test_only_http_urls_are_destinations() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Destination("ftp://x/", {}, 1.0, compress=False)


def test_items_application_insights_refused_for_a_passing_reason_are_sent_again(
    receiver: Callable[[list[tuple[int, bytes]]], Receiver],
) -> None:
    errors = [{"index": 0, "statusCode": 429, "message": "slow down"}, {"index": 2, "statusCode": 400, "message": "no"}]
    partial = {"itemsReceived": 3, "itemsAccepted": 1, "errors": errors}
    target = receiver([(206, json.dumps(partial).encode()), (200, b"{}"), (200, b"{}")])
    sink = AppInsightsSink(f"InstrumentationKey={KEY};IngestionEndpoint={target.url}", COMMON, False, "box")
    batch = [describe(record(request_id=f"r{index}")) for index in range(3)]
    sink.send(batch)
    sink.send([describe(record(request_id="r3"))])
    sink.close()
    sent = [
        [item["data"]["baseData"]["properties"]["Request Id"] for item in json.loads(body)] for body in target.bodies
    ]
    assert sent == [["r0", "r1", "r2"], ["r3"], ["r0"]]


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_otlp_over_tls_with_the_certificate_variables(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.proto")
    import ssl

    from scoring_runtime.observability.otlp_spans import OtlpSpanSink

    cert, key = _certificate(tmp_path)
    target = Receiver([(200, b"")])
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    server_side.load_verify_locations(cert)
    server_side.verify_mode = ssl.CERT_REQUIRED  # the client's certificate is asked for, and checked
    target.server.socket = server_side.wrap_socket(target.server.socket, server_side=True)
    environ = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": target.url.replace("http:", "https:") + "/v1/traces",
        "OTEL_EXPORTER_OTLP_CERTIFICATE": str(cert),
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(cert),
        "OTEL_EXPORTER_OTLP_CLIENT_KEY": str(key),
    }
    sink = OtlpSpanSink(environ, {}, {})
    try:
        sink.send([describe(record())])
        assert len(target.bodies) == 1
    finally:
        sink.close()
        target.close()
