"""Telemetry sent by a real server (one worker, and two gunicorn workers) to receivers on 127.0.0.1: Application
Insights' ingestion endpoint (what Azure Monitor's exporter POSTs to /v2.1/track) and an OTLP/HTTP collector."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import ServerFactory

pytest.importorskip("azure.monitor.opentelemetry.exporter")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

KEY = "11111111-2222-3333-4444-555555555555"
# Exported within a tenth of a second, and nothing of the exporter's own going anywhere but the receiver.
FAST_EXPORT = {
    "OTEL_BSP_SCHEDULE_DELAY": "100",
    "OTEL_BLRP_SCHEDULE_DELAY": "100",
    "SCORING_APP_INSIGHTS_OFFLINE_STORAGE": "false",
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
}


class Receiver:
    """An HTTP server on 127.0.0.1 that answers every POST 200 and keeps (path, body) of each, un-gzipped."""

    def __init__(self, answer: Callable[[str, bytes], bytes]) -> None:
        self.posts: list[tuple[str, bytes]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                received.append((self.path, body))
                reply = answer(self.path, body)
                self.send_response(200)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _track_answer(path: str, body: bytes) -> bytes:
    count = len(json.loads(body))
    return json.dumps({"itemsReceived": count, "itemsAccepted": count, "errors": []}).encode()


@pytest.fixture
def ingestion() -> Iterator[Receiver]:
    receiver = Receiver(_track_answer)
    yield receiver
    receiver.close()


@pytest.fixture
def collector() -> Iterator[Receiver]:
    receiver = Receiver(lambda path, body: b"")
    yield receiver
    receiver.close()


def wait_for(found: Callable[[], list[Any]], count: int, timeout: float = 20.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(items := found()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return items


def envelopes(receiver: Receiver, kind: str) -> list[dict[str, Any]]:
    every = [item for path, body in list(receiver.posts) if path == "/v2.1/track" for item in json.loads(body)]
    return [item for item in every if item["name"] == f"Microsoft.ApplicationInsights.{kind}"]


def _attributes(pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        assert isinstance(pair, KeyValue)
        kind = pair.value.WhichOneof("value")
        found[pair.key] = None if kind is None else getattr(pair.value, kind)
    return found


def otlp_spans(receiver: Receiver) -> list[tuple[str, dict[str, Any]]]:
    spans = []
    for path, body in list(receiver.posts):
        if path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    spans += [(span.name, _attributes(span.attributes)) for span in scope.spans]
    return spans


def otlp_logs(receiver: Receiver) -> list[tuple[str, dict[str, Any]]]:
    records = []
    for path, body in list(receiver.posts):
        if path == "/v1/logs":
            request = ExportLogsServiceRequest.FromString(body)
            for resource in request.resource_logs:
                for scope in resource.scope_logs:
                    records += [(log.body.string_value, _attributes(log.attributes)) for log in scope.log_records]
    return records


@pytest.mark.slow
def test_application_insights_gets_requests_logs_and_exceptions(
    serve: ServerFactory, ingestion: Receiver, workers: int
) -> None:
    connection = f"InstrumentationKey={KEY};IngestionEndpoint={ingestion.url}/"
    env = {"AML_APP_INSIGHTS_ENABLED": "true", "APPLICATIONINSIGHTS_CONNECTION_STRING": connection, **FAST_EXPORT}
    server = serve("telemetry_echo.py", workers=workers, env={**env, "HOSTNAME": "box-1", "WORKSPACE_NAME": "ws"})
    ok = server.post("/score", content="hello", headers={"x-ms-client-request-id": "client-7"})
    failed = server.post("/score", content="fail")
    assert server.get("/").status_code == 200  # the liveness probe is not request telemetry, as in the reference
    assert (ok.status_code, failed.status_code) == (200, 500)

    requests = wait_for(lambda: envelopes(ingestion, "Request"), 2)
    by_id = {item["data"]["baseData"]["properties"]["Request Id"]: item["data"]["baseData"] for item in requests}
    assert len(requests) == 2 and set(by_id) == {ok.headers["x-request-id"], failed.headers["x-request-id"]}
    answered = by_id[ok.headers["x-request-id"]]
    assert answered["responseCode"] == "200" and answered["url"] == f"{server.url}/score"
    assert {item["sampleRate"] for item in requests} == {100.0}  # below the default rate limit: every request
    properties = answered["properties"]
    assert properties["Client Request Id"] == "client-7"
    assert properties["Response Value"] == '{"echo":"hello"}'
    assert (properties["name"], properties["resultCode"], properties["success"]) == ("/score", "200", "True")
    assert (properties["http_method"], properties["Container Id"], properties["Workspace Name"]) == (
        "POST",
        "box-1",
        "ws",
    )
    assert properties["Service Name"] == "ML service" and properties["start_time"].endswith("Z")
    assert properties["duration"].startswith("00:00:")
    assert by_id[failed.headers["x-request-id"]]["properties"]["success"] == "False"

    messages = wait_for(lambda: envelopes(ingestion, "Message"), 3)
    printed = {item["data"]["baseData"]["message"]: item["data"]["baseData"]["properties"] for item in messages}
    assert printed["scoring hello"]["Request Id"] == ok.headers["x-request-id"]
    assert printed["scoring hello"]["Client Request Id"] == "client-7"
    assert printed["scoring hello"]["logger_name"] == "azmlinfsrv.print"
    exceptions = wait_for(lambda: envelopes(ingestion, "Exception"), 1)
    assert len(exceptions) == 1
    exception = exceptions[0]["data"]["baseData"]
    assert exception["exceptions"][0]["typeName"] == "ValueError"
    # Its message is the server's log line, traceback included; the stack comes with it.
    assert "ValueError: asked to fail" in exception["exceptions"][0]["message"]
    assert "telemetry_echo.py" in exception["exceptions"][0]["stack"]
    assert exception["properties"]["Request Id"] == failed.headers["x-request-id"]
    server.stop()
    assert "Sending telemetry to Application Insights" in server.log()
    assert "Transmission succeeded" not in server.log()  # the exporter's lines for each export stay quiet


@pytest.mark.slow
def test_an_otlp_collector_gets_request_spans_and_logs(serve: ServerFactory, collector: Receiver, workers: int) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "APP_INSIGHTS_LOG_RESPONSE_ENABLED": "false", **FAST_EXPORT}
    server = serve("telemetry_echo.py", workers=workers, env=env)
    sent = [server.post("/score", content=f"n{index}", headers={"x-request-id": f"rid-{index}"}) for index in range(4)]
    assert [response.status_code for response in sent] == [200] * 4
    assert server.get("/swagger.json").status_code == 200

    spans = wait_for(lambda: otlp_spans(collector), 5)
    scored = sorted(attributes["Request Id"] for name, attributes in spans if name == "POST /score")
    assert scored == [f"rid-{index}" for index in range(4)]
    assert {name for name, _ in spans} == {"POST /score", "GET /swagger.json"}
    attributes = next(attributes for name, attributes in spans if name == "POST /score")
    assert attributes["http.response.status_code"] == 200 and attributes["http.route"] == "/score"
    assert attributes["url.full"] == f"{server.url}/score" and attributes["Container Id"] == "Unknown"
    assert "Response Value" not in attributes  # APP_INSIGHTS_LOG_RESPONSE_ENABLED=false
    logs = wait_for(lambda: [log for log in otlp_logs(collector) if log[0].startswith("scoring n")], 4)
    assert sorted((body, attributes["Request Id"]) for body, attributes in logs) == [
        (f"scoring n{index}", f"rid-{index}") for index in range(4)
    ]
    assert "Sending telemetry to OTLP" in server.log()


@pytest.mark.slow
def test_the_sampler_variables_choose_the_requests_sent_and_failures_are_always_sent(
    serve: ServerFactory, ingestion: Receiver
) -> None:
    connection = f"InstrumentationKey={KEY};IngestionEndpoint={ingestion.url}/"
    env = {"AML_APP_INSIGHTS_ENABLED": "true", "APPLICATIONINSIGHTS_CONNECTION_STRING": connection, **FAST_EXPORT}
    server = serve("telemetry_echo.py", env={**env, "OTEL_TRACES_SAMPLER": "always_off"})
    answered = [server.post("/score", content=text).status_code for text in ("a", "fail", "b")]
    assert answered == [200, 500, 200]
    requests = wait_for(lambda: envelopes(ingestion, "Request"), 1)
    time.sleep(0.5)  # anything else would have come by now
    requests = envelopes(ingestion, "Request")
    assert [item["data"]["baseData"]["responseCode"] for item in requests] == ["500"]
