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
from scoring_runtime.app.telemetry import RequestTelemetry
from scoring_runtime.config import load_settings
from scoring_runtime.observability import telemetry
from scoring_runtime.observability.log import print_logger, request_id
from scoring_runtime.observability.telemetry import RESPONSE_VALUE_BYTES, Telemetry, TelemetryPlan, plan

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
    assert type(app._http) is RequestContext
    connection = f"InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:9/"
    environ = {"AML_APP_INSIGHTS_ENABLED": "true", "APPLICATIONINSIGHTS_CONNECTION_STRING": connection}
    if plan(load_settings(environ=environ, cwd=tmp_path)[0], environ) is not None:
        served: object = ScoringApp(load_settings(environ=environ, cwd=tmp_path)[0])._http
        assert isinstance(served, RequestTelemetry)


class Recorded:
    """Stands for the SDK's pipelines: keeps what the middleware hands over for each request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def request(self, *args: Any) -> None:
        names = ("method", "path", "url", "status", "ids", "times", "body", "error")
        self.requests.append(dict(zip(names, args, strict=True)))


def middleware(app: Any, log_response: bool = True) -> tuple[RequestTelemetry, Recorded]:
    planned = TelemetryPlan(None, False, True, True, log_response, "svc", "", "Unknown")
    state = Telemetry(planned)
    recorded = Recorded()
    state.pipelines = recorded  # type: ignore[assignment]
    return RequestTelemetry(app, state, frozenset({"/score"})), recorded


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
    from scoring_runtime.observability.telemetry import client_request_id

    headers = [(b"x-request-id", b"rid"), (b"x-ms-client-request-id", client_request_id.get().encode())]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": b"x" * RESPONSE_VALUE_BYTES, "more_body": True})
    await send({"type": "http.response.body", "body": b"tail"})


def test_the_middleware_records_each_traced_request_once() -> None:
    app, recorded = middleware(answering)
    call(app, "/score", [(b"host", b"example.com"), (b"x-ms-request-id", b"legacy")])
    call(app, "/", [])
    assert len(recorded.requests) == 1
    request = recorded.requests[0]
    assert (request["method"], request["path"], request["status"]) == ("POST", "/score", 201)
    assert request["url"] == "http://example.com/score?a=1"
    assert request["ids"] == ("rid", "legacy")  # the client id the log records got, as the response carries it
    assert request["body"] == b"x" * RESPONSE_VALUE_BYTES and request["error"] is None
    assert request["times"][0] <= request["times"][1]


def test_no_body_is_kept_unless_it_is_sent() -> None:
    app, recorded = middleware(answering, log_response=False)
    call(app, "/score")
    assert recorded.requests[0]["body"] is None and recorded.requests[0]["url"] == "http://127.0.0.1:5001/score?a=1"


def test_a_failed_request_is_recorded_as_a_500_with_its_error() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    app, recorded = middleware(failing)
    with pytest.raises(RuntimeError):
        call(app, "/score")
    assert recorded.requests[0]["status"] == 500 and isinstance(recorded.requests[0]["error"], RuntimeError)


def test_formats_of_the_reference() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from scoring_runtime.observability.telemetry_sdk import NOT_TEXT, duration_text, response_value

    assert duration_text(1234) == "00:00:01.234"
    assert duration_text(((26 * 60 + 3) * 60 + 4) * 1000 + 5) == "1.02:03:04.005"
    assert response_value('{"a": "é"}'.encode()) == '{"a": "é"}'
    assert response_value(b"\xff\xfe") == NOT_TEXT
    long = "a" + "é" * RESPONSE_VALUE_BYTES
    assert response_value(long.encode()[:RESPONSE_VALUE_BYTES]) == long[:8192]  # cut inside a character
    assert response_value(long.encode()[: RESPONSE_VALUE_BYTES - 2]) == NOT_TEXT  # a whole body that is not UTF-8


def test_the_log_handler_exports_prints_and_errors_with_the_request_ids() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    from scoring_runtime.observability.telemetry_sdk import ExportHandler

    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = ExportHandler(provider, "box")
    handler.attach()
    server = logging.getLogger(print_logger.name.rpartition(".")[0])
    level, server.level = server.level, logging.INFO
    token = request_id.set("rid-1")
    client = telemetry.client_request_id.set("cid-1")
    try:
        print_logger.info("printed")
        server.info("not exported: the server's own lines below ERROR")
        try:
            raise ValueError("bad")
        except ValueError:
            server.error("Encountered Exception: traceback text")
    finally:
        request_id.reset(token)
        telemetry.client_request_id.reset(client)
        handler.detach()
        server.setLevel(level)
    logs = [record.log_record for record in exporter.get_finished_logs()]
    assert [log.body for log in logs] == ["printed", "Encountered Exception: traceback text"]
    assert logs[0].attributes is not None and logs[1].attributes is not None
    assert dict(logs[0].attributes) == {"Container Id": "box", "Request Id": "rid-1", "Client Request Id": "cid-1"}
    assert logs[1].attributes["exception.type"] == "ValueError"
    assert "raise ValueError" in str(logs[1].attributes["exception.stacktrace"])
    print_logger.info("after detach")
    assert len(exporter.get_finished_logs()) == 2
