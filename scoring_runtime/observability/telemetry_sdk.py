"""OpenTelemetry's SDK set up for one process, as the reference sets it up: a tracer whose SERVER spans are the
request telemetry, and a logging handler whose records are the trace and exception telemetry; each exported through
batch processors. Imported only when telemetry is asked for and the `telemetry` extra is installed.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import datetime, timezone

from opentelemetry._logs import Logger as OTelLogger, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import SERVICE_NAME, ProcessResourceDetector, Resource, get_aggregated_resources
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from scoring_runtime.observability.log import logger as server_logger, print_logger, request_id
from scoring_runtime.observability.telemetry import (
    RESPONSE_VALUE_BYTES,
    RESPONSE_VALUE_CHARS,
    TelemetryPlan,
    client_request_id,
)

# The reference exports this logger's records (and the print() logger's) from INFO on; ours it exports from ERROR on:
# run() failures, timeouts and init() failures, with their tracebacks (exception telemetry).
TRACE_LOGGER = "azmlinfsrv.trace"
# The reference's value for a body that is not UTF-8, JSON-quoted as there.
NOT_TEXT = json.dumps("Scoring request response payload is a non serializable object or raw binary")
# Loggers of the Azure exporter that write a line for each export at INFO: only their warnings reach the server's log,
# unless a logging.json gave them a level.
QUIET_LOGGERS = ("azure.core.pipeline.policies.http_logging_policy", "azure.monitor.opentelemetry.exporter")


class Pipelines:
    """The providers, exporters and logging handler of one process."""

    def __init__(self, plan: TelemetryPlan) -> None:
        self.plan = plan
        resource = get_aggregated_resources(
            [ProcessResourceDetector()], Resource.create({SERVICE_NAME: plan.service_name})
        )
        self.tracer: Tracer | None = None
        self._tracer_provider: TracerProvider | None = None
        self._logger_provider: LoggerProvider | None = None
        self._handler: ExportHandler | None = None
        # The SDK's batch processors read OTEL_BSP_* / OTEL_BLRP_* (delay, batch size, queue) from the environment.
        # The providers are not made global: a score.py that sets up OpenTelemetry itself keeps its own.
        for name in QUIET_LOGGERS:
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        if plan.traces:
            # The reference samples every request; OTEL_TRACES_SAMPLER (e.g. traceidratio) may send fewer: each span
            # costs the exporter far more CPU than the request it describes (docs/configuration.md, Telemetry).
            self._tracer_provider = TracerProvider(resource=resource)
            for exporter in _span_exporters(plan, self._tracer_provider):
                self._tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
            self.tracer = self._tracer_provider.get_tracer("scoring_runtime")
        if plan.logs:
            self._logger_provider = LoggerProvider(resource=resource)
            for log_exporter in _log_exporters(plan):
                self._logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
            self._handler = ExportHandler(self._logger_provider, plan.container_id)
            self._handler.attach()
        self._common: dict[str, AttributeValue] = {
            "Container Id": plan.container_id,
            "Workspace Name": plan.workspace_name,
            "Service Name": plan.service_name,
        }

    def request(
        self,
        method: str,
        path: str,
        url: str,
        status: int,
        ids: tuple[str, str],
        times_ns: tuple[int, int],
        body: bytes | None,
        error: BaseException | None,
    ) -> None:
        """One SERVER span for a request, with the reference's attributes and the semantic conventions' ones that
        Application Insights reads (its requests table's url and result code)."""
        if self.tracer is None:
            return
        start_ns, end_ns = times_ns
        started = datetime.fromtimestamp(start_ns / 1e9, timezone.utc).replace(tzinfo=None)
        attributes = self._common | {
            "Request Id": ids[0],
            "Client Request Id": ids[1],
            "name": path,
            "url": url,
            "start_time": started.isoformat() + "Z",
            "duration": duration_text((end_ns - start_ns) // 1_000_000),
            "resultCode": str(status),
            "success": status < 400,
            "http_method": method,
            "http.request.method": method,
            "http.response.status_code": status,
            "url.full": url,
        }
        if body is not None:
            attributes["Response Value"] = response_value(body)
        span = self.tracer.start_span(path, kind=SpanKind.SERVER, attributes=attributes, start_time=start_ns)
        if error is not None:
            span.record_exception(error)
        span.end(end_time=end_ns)

    def shutdown(self) -> None:
        if self._handler is not None:
            self._handler.detach()
        for provider in (self._tracer_provider, self._logger_provider):
            if provider is not None:
                provider.shutdown()


def duration_text(milliseconds: int) -> str:
    """The reference's duration: `HH:MM:SS.mmm`, with `D.` in front from a day on."""
    seconds, millis = divmod(milliseconds, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"
    return f"{days}.{text}" if days else text


def response_value(body: bytes) -> str:
    """The body as text, cut at RESPONSE_VALUE_CHARS; the reference's notice when it is not UTF-8."""
    try:
        text = body.decode()
    except UnicodeDecodeError as error:
        # A body captured up to RESPONSE_VALUE_BYTES may end inside a character: only that is forgiven.
        if len(body) < RESPONSE_VALUE_BYTES or error.start < len(body) - 3 or error.reason != "unexpected end of data":
            return NOT_TEXT
        text = body[: error.start].decode()
    return text[:RESPONSE_VALUE_CHARS]


def _span_exporters(plan: TelemetryPlan, provider: TracerProvider) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    if plan.connection_string is not None:
        from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter

        exporters.append(
            # Its resource envelope is read from the provider it is given, else from the global one (not set here).
            AzureMonitorTraceExporter(
                connection_string=plan.connection_string,
                disable_offline_storage=not plan.offline_storage,
                tracer_provider=provider,
            )
        )
    if plan.otlp_traces:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporters.append(OTLPSpanExporter())
    return exporters


def _log_exporters(plan: TelemetryPlan) -> list[LogRecordExporter]:
    exporters: list[LogRecordExporter] = []
    if plan.connection_string is not None:
        from azure.monitor.opentelemetry.exporter import AzureMonitorLogExporter

        exporters.append(
            AzureMonitorLogExporter(
                connection_string=plan.connection_string, disable_offline_storage=not plan.offline_storage
            )
        )
    if plan.otlp_logs:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        exporters.append(OTLPLogExporter())
    return exporters


class ExportHandler(logging.Handler):
    """Queues log records for export: the print() logger's and azmlinfsrv.trace's from INFO on, the server's from
    ERROR on. A record emitted while a request is served carries its ids, and (a traceback) the exception."""

    def __init__(self, provider: LoggerProvider, container_id: str) -> None:
        super().__init__()
        self._provider = provider
        self._container_id = container_id
        self._loggers: dict[str, OTelLogger] = {}
        self._from_info = frozenset({print_logger.name, TRACE_LOGGER})
        self._attached: list[logging.Logger] = []

    def attach(self) -> None:
        # Records propagate: a logger under another one exported is served by that one's handler, not twice.
        names = {server_logger.name, *self._from_info}
        for name in sorted(names):
            if not any(name.startswith(f"{other}.") for other in names):
                target = logging.getLogger(name)
                target.addHandler(self)
                self._attached.append(target)

    def detach(self) -> None:
        for target in self._attached:
            target.removeHandler(self)
        self._attached.clear()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or record.name in self._from_info

    def emit(self, record: logging.LogRecord) -> None:
        try:
            otel_logger = self._loggers.get(record.name)
            if otel_logger is None:
                otel_logger = self._loggers[record.name] = self._provider.get_logger(record.name)
            attributes: dict[str, AttributeValue] = {"Container Id": self._container_id}
            current = request_id.get()
            if current is not None:
                attributes["Request Id"] = current
                attributes["Client Request Id"] = client_request_id.get()
            # The server logs a failure of run() or init() with its traceback in the message, in its except clause:
            # the exception being handled is the record's.
            exc_info = record.exc_info or (sys.exc_info() if record.levelno >= logging.ERROR else None)
            if exc_info and exc_info[1] is not None:
                error = exc_info[1]
                # The semantic conventions' names: Azure Monitor's exporter sends such a record as an exception.
                attributes["exception.type"] = type(error).__name__
                attributes["exception.message"] = str(error)
                attributes["exception.stacktrace"] = "".join(traceback.format_exception(*exc_info))
            otel_logger.emit(
                timestamp=int(record.created * 1e9),
                severity_number=SeverityNumber(min(max(record.levelno // 10 * 4 + 1, 1), 24)),
                severity_text=record.levelname,
                body=record.getMessage(),
                attributes=attributes,
            )
        except Exception:
            self.handleError(record)
