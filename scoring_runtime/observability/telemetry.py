"""Request telemetry and logs for Application Insights and OTLP/HTTP collectors: the optional `telemetry` extra.

Whether anything is sent is decided once, from the settings and the OTLP endpoint variables (`plan`): with nothing
asked for, or the extra missing, there is no Telemetry and the app serves exactly as without this module. The export
threads are started in each serving process (`Telemetry.start`, from the app's lifespan), after gunicorn has forked:
threads do not survive a fork. Requests are queued on the request path and sent in batches by our own export thread
(request_export.py); log records go through OpenTelemetry's SDK (telemetry_sdk.py).
"""

from __future__ import annotations

import contextvars
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scoring_runtime.config import AZURE_MODULES, OTLP_MODULES, Settings, missing_module, otlp_signals
from scoring_runtime.observability.log import logger
from scoring_runtime.observability.sampling import DEFAULT_PER_SECOND, SamplingPlan, sampling_plan

if TYPE_CHECKING:
    from scoring_runtime.observability.request_export import RequestExport, Sink
    from scoring_runtime.observability.telemetry_sdk import LogExport

# The headers of the traced request being served, for the log records it emits: read only if one is exported.
request_headers: contextvars.ContextVar[Sequence[tuple[bytes, bytes]]] = contextvars.ContextVar(
    "scoring_request_headers", default=()
)
_CLIENT_ID = b"x-ms-client-request-id"
_LEGACY_ID = b"x-ms-request-id"


def client_request_id_of(headers: Sequence[tuple[bytes, bytes]]) -> str:
    """The client's id for a request: its x-ms-client-request-id, else the legacy x-ms-request-id."""
    client = legacy = ""
    for name, value in headers:
        if name == _CLIENT_ID:
            client = client or value.decode("latin-1")
        elif name == _LEGACY_ID:
            legacy = legacy or value.decode("latin-1")
    return client or legacy


@dataclass(frozen=True)
class TelemetryPlan:
    """What to send, and where: settled before any process forks."""

    # Application Insights' connection string, when it is on.
    connection_string: str | None
    offline_storage: bool
    otlp_traces: bool
    otlp_logs: bool
    log_response: bool
    service_name: str
    # As the reference reads them, from the environment: AML sets WORKSPACE_NAME, Kubernetes HOSTNAME.
    workspace_name: str
    container_id: str
    # Which requests are sent (OTEL_TRACES_SAMPLER), and what was not understood of it.
    sampling: SamplingPlan = SamplingPlan(DEFAULT_PER_SECOND, 1.0)
    sampling_warnings: tuple[str, ...] = ()

    @property
    def traces(self) -> bool:
        return self.connection_string is not None or self.otlp_traces

    @property
    def logs(self) -> bool:
        return self.connection_string is not None or self.otlp_logs


def plan(settings: Settings, environ: Mapping[str, str] | None = None) -> TelemetryPlan | None:
    """What the settings and the environment ask to send, with what is installed; None: nothing (the default)."""
    env = os.environ if environ is None else environ
    connection_string = None
    if settings.app_insights_enabled and missing_module(AZURE_MODULES) is None:
        connection_string = settings.app_insights_connection_string or f"InstrumentationKey={settings.app_insights_key}"
    signals = otlp_signals(env) if missing_module(OTLP_MODULES) is None else frozenset()
    if connection_string is None and not signals:
        return None  # config.py has warned about what was asked for and cannot be done
    sampling, sampling_warnings = sampling_plan(env)
    return TelemetryPlan(
        connection_string=connection_string,
        offline_storage=settings.app_insights_offline_storage,
        otlp_traces="traces" in signals,
        otlp_logs="logs" in signals,
        log_response=settings.app_insights_log_response,
        service_name=env.get("OTEL_SERVICE_NAME") or settings.service_name,
        workspace_name=env.get("WORKSPACE_NAME", ""),
        container_id=env.get("HOSTNAME") or "Unknown",
        sampling=sampling,
        sampling_warnings=tuple(sampling_warnings),
    )


class Telemetry:
    """The export of one process: started by the app's lifespan in each worker, stopped (flushed) at its end.

    Until started, and if starting failed, `requests` is None and requests are served without telemetry.
    """

    def __init__(self, plan: TelemetryPlan) -> None:
        self.plan = plan
        for warning in plan.sampling_warnings:
            logger.warning(warning)
        self.requests: RequestExport | None = None
        self._logs: LogExport | None = None
        self._pid: int | None = None

    def start(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        # A process forked from one that had started inherits dead export threads: never reuse them.
        self.requests, self._logs = None, None
        try:
            self._start()
        except Exception:
            # As the reference: telemetry that cannot be set up stays off, and the server serves.
            logger.exception("Telemetry could not be started; serving without it")
            return
        sent = ["Application Insights"] if self.plan.connection_string is not None else []
        sent += ["OTLP"] if self.plan.otlp_traces or self.plan.otlp_logs else []
        logger.info("Sending telemetry to %s", " and ".join(sent))

    def _start(self) -> None:
        from scoring_runtime.observability.app_insights import AppInsightsSink
        from scoring_runtime.observability.otlp_spans import OtlpSpanSink
        from scoring_runtime.observability.request_export import RequestExport
        from scoring_runtime.observability.sampling import Sampler
        from scoring_runtime.observability.telemetry_sdk import LogExport, resource

        plan = self.plan
        described = resource(plan)
        common = {
            "Container Id": plan.container_id,
            "Workspace Name": plan.workspace_name,
            "Service Name": plan.service_name,
        }
        sinks: list[Sink] = []
        if plan.connection_string is not None:
            instance = plan.container_id if plan.container_id != "Unknown" else socket.gethostname()
            sinks.append(AppInsightsSink(plan.connection_string, common, plan.offline_storage, instance))
        if plan.otlp_traces:
            sinks.append(OtlpSpanSink(os.environ, dict(described.attributes), common))
        if plan.logs:
            self._logs = LogExport(plan, described)
        if sinks:
            self.requests = RequestExport(sinks, Sampler(plan.sampling), os.environ)

    def stop(self) -> None:
        """Send what is queued and stop the export threads (bounded by the export timeouts)."""
        requests, logs, self.requests, self._logs = self.requests, self._logs, None, None
        if self._pid != os.getpid():
            return
        if requests is not None:
            requests.stop()
        if logs is not None:
            logs.shutdown()
