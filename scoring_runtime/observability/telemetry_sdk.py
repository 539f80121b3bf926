"""OpenTelemetry's SDK for log records, set up in each process as the reference sets it up: a logging handler whose
records are the trace and exception telemetry, exported in batches by the SDK's processor through Azure Monitor's
and the OTLP exporters. (Request telemetry does not go through the SDK: request_export.py.) Imported only when
telemetry is asked for and the `telemetry` extra is installed.
"""

from __future__ import annotations

import logging
import sys
import traceback

from opentelemetry._logs import Logger as OTelLogger, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import SERVICE_NAME, ProcessResourceDetector, Resource, get_aggregated_resources
from opentelemetry.util.types import AttributeValue

from scoring_runtime.observability.log import logger as server_logger, print_logger, request_id
from scoring_runtime.observability.telemetry import TelemetryPlan, client_request_id_of, request_headers

# The reference exports this logger's records (and the print() logger's) from INFO on; ours it exports from ERROR on:
# run() failures, timeouts and init() failures, with their tracebacks (exception telemetry).
TRACE_LOGGER = "azmlinfsrv.trace"
# Loggers of the Azure exporter that write a line for each export at INFO: only their warnings reach the server's log,
# unless a logging.json gave them a level.
QUIET_LOGGERS = ("azure.core.pipeline.policies.http_logging_policy", "azure.monitor.opentelemetry.exporter")


def resource(plan: TelemetryPlan) -> Resource:
    """The resource every signal is sent with: the service's name, the SDK's and the process's attributes."""
    return get_aggregated_resources([ProcessResourceDetector()], Resource.create({SERVICE_NAME: plan.service_name}))


class LogExport:
    """The logger provider, exporters and logging handler of one process: log records (few: the script's prints, the
    server's errors) go through the SDK and its exporters."""

    def __init__(self, plan: TelemetryPlan, resource: Resource) -> None:
        # The SDK's batch processor reads OTEL_BLRP_* (delay, batch size, queue) from the environment. The provider is
        # not made global: a score.py that sets up OpenTelemetry itself keeps its own.
        for name in QUIET_LOGGERS:
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        self._provider = LoggerProvider(resource=resource)
        for log_exporter in _log_exporters(plan):
            self._provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
        self._attached = attach_handlers(self._provider, plan.container_id)

    def shutdown(self) -> None:
        detach_handlers(self._attached)
        self._provider.shutdown()


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


Attached = list[tuple[logging.Logger, "ExportHandler"]]


def attach_handlers(provider: LoggerProvider, container_id: str) -> Attached:
    """Export the print() logger's and azmlinfsrv.trace's records from INFO on, and the server's other records from
    ERROR on. The server's are taken by a handler whose level is ERROR: the access log's fast path sees that its lines
    would not reach it (access_log.py), and stays fast."""
    from_info = frozenset({print_logger.name, TRACE_LOGGER})
    # Their records propagate to the server's logger: its handler leaves them to theirs, rather than send them twice.
    attached = [
        (logging.getLogger(server_logger.name), ExportHandler(provider, container_id, logging.ERROR, from_info))
    ]
    attached += [(logging.getLogger(name), ExportHandler(provider, container_id)) for name in sorted(from_info)]
    for target, handler in attached:
        target.addHandler(handler)
    return attached


def detach_handlers(attached: Attached) -> None:
    for target, handler in attached:
        target.removeHandler(handler)


class ExportHandler(logging.Handler):
    """Queues log records for export. A record emitted while a request is served carries its ids, and (a traceback)
    the exception."""

    def __init__(
        self,
        provider: LoggerProvider,
        container_id: str,
        level: int = logging.NOTSET,
        skipped: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(level)
        self._provider = provider
        self._container_id = container_id
        self._loggers: dict[str, OTelLogger] = {}
        self._skipped = skipped

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name not in self._skipped

    def emit(self, record: logging.LogRecord) -> None:
        try:
            otel_logger = self._loggers.get(record.name)
            if otel_logger is None:
                otel_logger = self._loggers[record.name] = self._provider.get_logger(record.name)
            attributes: dict[str, AttributeValue] = {"Container Id": self._container_id}
            current = request_id.get()
            if current is not None:
                attributes["Request Id"] = current
                attributes["Client Request Id"] = client_request_id_of(request_headers.get())
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
