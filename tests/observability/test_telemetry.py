"""Telemetry in-process: what turns it on, the warnings when it cannot be, the request middleware, the log handler and
the reference's attribute formats."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from scoring_runtime.app.application import ScoringApp
from scoring_runtime.app.request_context import RequestContext
from scoring_runtime.config import load_settings
from scoring_runtime.observability.log import print_logger, request_id
from scoring_runtime.observability.request_export import Request, RequestRecord, describe, request_url
from scoring_runtime.observability.telemetry import (
    Telemetry,
    TelemetryPlan,
    client_request_id_of,
    plan,
    request_headers,
)
from scoring_runtime.observability.telemetry_values import (
    NOT_TEXT,
    RESPONSE_VALUE_BYTES,
    duration_text,
    response_value,
    timespan_text,
    utc_text,
)

KEY = "11111111-2222-3333-4444-555555555555"
ON = {"AML_APP_INSIGHTS_ENABLED": "true", "AML_APP_INSIGHTS_KEY": KEY}


def planned(tmp_path: Path, environ: dict[str, str]) -> TelemetryPlan | None:
    return plan(load_settings(environ=environ, cwd=tmp_path)[0], environ)


def test_nothing_is_sent_by_default(tmp_path: Path) -> None:
    assert planned(tmp_path, {}) is None
    assert planned(tmp_path, {"AML_APP_INSIGHTS_KEY": KEY}) is None


def test_application_insights_takes_the_key_or_the_connection_string(tmp_path: Path) -> None:
    by_key = planned(tmp_path, {**ON, "HOSTNAME": "box", "WORKSPACE_NAME": "ws"})
    assert by_key is not None and by_key.connection_string == f"InstrumentationKey={KEY}"
    assert (by_key.traces, by_key.logs, by_key.otlp_traces, by_key.log_response) == (True, True, False, True)
    assert (by_key.container_id, by_key.workspace_name, by_key.service_name) == ("box", "ws", "ML service")
    connection = f"InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:9/"
    settings, warnings = load_settings(
        environ={"AML_APP_INSIGHTS_ENABLED": "true", "APPLICATIONINSIGHTS_CONNECTION_STRING": connection},
        cwd=tmp_path,
    )
    assert settings.app_insights_enabled and warnings == []  # no key needed with a connection string
    by_string = plan(settings, {})
    assert by_string is not None and by_string.connection_string == connection
    assert KEY not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "traces", "logs"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", True, True),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", True, False),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", False, True),
    ],
)
def test_otlp_is_turned_on_by_its_endpoint_variables(tmp_path: Path, variable: str, traces: bool, logs: bool) -> None:
    found = planned(tmp_path, {variable: "http://127.0.0.1:4318", "OTEL_SERVICE_NAME": "svc"})
    assert found is not None and found.connection_string is None
    assert (found.otlp_traces, found.otlp_logs, found.service_name) == (traces, logs, "svc")


def test_without_the_extra_nothing_is_sent_and_start_up_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *args: None)
    environ = {**ON, "APP_INSIGHTS_LOG_RESPONSE_ENABLED": "false", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x"}
    settings, warnings = load_settings(environ=environ, cwd=tmp_path)
    assert plan(settings, environ) is None
    missing = "the telemetry extra is not installed (pip install 'scoring-runtime[telemetry]'): no opentelemetry.sdk"
    assert warnings == [
        f"AML_APP_INSIGHTS_ENABLED=true is accepted but not acted on: {missing}",
        f"APP_INSIGHTS_LOG_RESPONSE_ENABLED=false is accepted but not acted on: {missing}",
        f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set but not acted on: {missing}",
    ]


def test_with_the_extra_the_settings_are_acted_on(tmp_path: Path) -> None:
    pytest.importorskip("azure.monitor.opentelemetry.exporter")
    environ = {**ON, "APP_INSIGHTS_LOG_RESPONSE_ENABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}
    assert load_settings(environ=environ, cwd=tmp_path)[1] == []


def test_telemetry_off_leaves_the_request_path_as_it_is(tmp_path: Path) -> None:
    app = ScoringApp(load_settings(environ={}, cwd=tmp_path)[0])
    assert type(app._http) is RequestContext and app._http.telemetry is None
    connection = f"InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:9/"
    environ = {"AML_APP_INSIGHTS_ENABLED": "true", "APPLICATIONINSIGHTS_CONNECTION_STRING": connection}
    if plan(load_settings(environ=environ, cwd=tmp_path)[0], environ) is not None:
        served = ScoringApp(load_settings(environ=environ, cwd=tmp_path)[0])._http
        assert isinstance(served, RequestContext) and served.telemetry is not None


class Recorded:
    """Stands for the export thread: keeps what the middleware queues for each request, decoded as it would be."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def add(self, record: RequestRecord) -> None:
        self.requests.append(describe(record))


def middleware(app: Any, log_response: bool = True) -> tuple[RequestContext, Recorded]:
    planned = TelemetryPlan(None, False, True, True, log_response, "svc", "", "Unknown")
    state = Telemetry(planned)
    recorded = Recorded()
    state.requests = recorded  # type: ignore[assignment]
    return RequestContext(app, None, logged_paths=frozenset({"/score"}), telemetry=state), recorded


def call(app: Any, path: str, headers: list[tuple[bytes, bytes]] = ()) -> list[Message]:  # type: ignore[assignment]
    sent: list[Message] = []
    scope = {"type": "http", "method": "POST", "path": path, "headers": list(headers), "query_string": b"a=1"}
    scope |= {"scheme": "http", "server": ("127.0.0.1", 5001), "root_path": ""}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


async def answering(scope: Scope, receive: Receive, send: Send) -> None:
    # What the log records emitted here get.
    assert client_request_id_of(request_headers.get()) == ("legacy" if scope["headers"] else "")
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"x" * RESPONSE_VALUE_BYTES, "more_body": True})
    await send({"type": "http.response.body", "body": b"tail"})


def test_the_middleware_records_each_traced_request_once() -> None:
    app, recorded = middleware(answering)
    sent = call(app, "/score", [(b"host", b"example.com"), (b"x-ms-request-id", b"legacy")])
    call(app, "/", [])
    assert len(recorded.requests) == 1
    request = recorded.requests[0]
    assert (request.method, request.path, request.status) == ("POST", "/score", 201)
    assert request.url == "http://example.com/score?a=1"
    # The ids the response carries.
    answered = dict(sent[0]["headers"])
    assert request.request_id == answered[b"x-request-id"].decode() and len(request.request_id) == 36
    assert request.client_request_id == answered[b"x-ms-client-request-id"].decode() == "legacy"
    assert request.body == b"x" * RESPONSE_VALUE_BYTES and request.error is None
    assert request.start_ns <= request.end_ns


def test_no_body_is_kept_unless_it_is_sent() -> None:
    app, recorded = middleware(answering, log_response=False)
    call(app, "/score")
    assert recorded.requests[0].body is None and recorded.requests[0].url == "http://127.0.0.1:5001/score?a=1"


def test_a_failed_request_is_recorded_as_a_500_with_its_error() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    app, recorded = middleware(failing)
    with pytest.raises(RuntimeError):
        call(app, "/score")
    assert recorded.requests[0].status == 500 and isinstance(recorded.requests[0].error, RuntimeError)


def test_the_url_falls_back_to_the_server_address() -> None:
    base = {"method": "GET", "path": "/score", "headers": [], "query_string": b"", "root_path": "/p"}
    assert request_url({**base, "scheme": "https", "server": ("h", 443)}) == "https://h/p/score"
    assert request_url({**base, "scheme": "http", "server": ("h", 81)}) == "http://h:81/p/score"
    assert request_url({**base, "server": ("sock", None)}) == "http://sock/p/score"
    assert request_url(base) == "http://localhost/p/score"


def test_formats_of_the_reference() -> None:
    assert duration_text(1234) == "00:00:01.234"
    assert duration_text(((26 * 60 + 3) * 60 + 4) * 1000 + 5) == "1.02:03:04.005"
    assert timespan_text(1234) == "0.00:00:01.234"
    assert utc_text(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456Z"
    assert response_value('{"a": "é"}'.encode()) == '{"a": "é"}'
    assert response_value(b"\xff\xfe") == NOT_TEXT
    long = "a" + "é" * RESPONSE_VALUE_BYTES
    assert response_value(long.encode()[:RESPONSE_VALUE_BYTES]) == long[:8192]  # cut inside a character
    assert response_value(long.encode()[: RESPONSE_VALUE_BYTES - 2]) == NOT_TEXT  # a whole body that is not UTF-8


def test_the_log_handler_exports_prints_and_errors_with_the_request_ids() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    from scoring_runtime.observability.telemetry_sdk import attach_handlers, detach_handlers

    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    attached = attach_handlers(provider, "box")
    server = logging.getLogger(print_logger.name.rpartition(".")[0])
    level, server.level = server.level, logging.INFO
    token = request_id.set("rid-1")
    client = request_headers.set([(b"x-ms-client-request-id", b"cid-1")])
    try:
        print_logger.info("printed")
        server.info("not exported: the server's own lines below ERROR")
        # The access log's short way stays open (test_access_log.py): the server's logger gets a handler at ERROR.
        assert [handler.level for target, handler in attached if target is server] == [logging.ERROR]
        try:
            raise ValueError("bad")
        except ValueError:
            server.error("Encountered Exception: traceback text")
        print_logger.error("printed to stderr")  # exported once, by the print logger's handler
    finally:
        request_id.reset(token)
        request_headers.reset(client)
        detach_handlers(attached)
        server.setLevel(level)
    logs = [record.log_record for record in exporter.get_finished_logs()]
    assert [log.body for log in logs] == ["printed", "Encountered Exception: traceback text", "printed to stderr"]
    assert logs[0].attributes is not None and logs[1].attributes is not None
    assert dict(logs[0].attributes) == {"Container Id": "box", "Request Id": "rid-1", "Client Request Id": "cid-1"}
    assert logs[1].attributes["exception.type"] == "ValueError"
    assert "raise ValueError" in str(logs[1].attributes["exception.stacktrace"])
    print_logger.info("after detach")
    assert len(exporter.get_finished_logs()) == 3
