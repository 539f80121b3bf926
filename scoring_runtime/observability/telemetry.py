"""Request telemetry and logs for Application Insights (Azure Monitor's exporter) and OTLP/HTTP collectors, with
OpenTelemetry's SDK: the optional `telemetry` extra.

Whether anything is sent is decided once, from the settings and the OTLP endpoint variables (`plan`): with nothing
asked for, or the extra missing, there is no Telemetry and the app serves exactly as without this module. The SDK is
started in each serving process (`Telemetry.start`, from the app's lifespan), after gunicorn has forked: the batch
processors' export threads do not survive a fork. Spans and log records are queued on the request path and exported
in batches by those threads.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scoring_runtime.config import AZURE_MODULES, OTLP_MODULES, Settings, missing_module, otlp_signals
from scoring_runtime.observability.log import logger

if TYPE_CHECKING:
    from scoring_runtime.observability.telemetry_sdk import Pipelines

# Application Insights keeps the first 8192 characters of a property; a longer response body is cut there.
RESPONSE_VALUE_CHARS = 8192
# The bytes of a body kept for that (UTF-8 takes at most 4 bytes a character).
RESPONSE_VALUE_BYTES = 4 * RESPONSE_VALUE_CHARS

# The x-ms-client-request-id (or legacy x-ms-request-id) of the request being served, for the log records it emits.
client_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("scoring_client_request_id", default="")


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
    return TelemetryPlan(
        connection_string=connection_string,
        offline_storage=settings.app_insights_offline_storage,
        otlp_traces="traces" in signals,
        otlp_logs="logs" in signals,
        log_response=settings.app_insights_log_response,
        service_name=env.get("OTEL_SERVICE_NAME") or settings.service_name,
        workspace_name=env.get("WORKSPACE_NAME", ""),
        container_id=env.get("HOSTNAME") or "Unknown",
    )


class Telemetry:
    """The SDK's pipelines of one process: started by the app's lifespan in each worker, stopped (flushed) at its end.

    Until started, and if starting failed, `pipelines` is None and requests are served without telemetry.
    """

    def __init__(self, plan: TelemetryPlan) -> None:
        self.plan = plan
        self.pipelines: Pipelines | None = None
        self._pid: int | None = None

    def start(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        # A process forked from one that had started inherits dead export threads: never reuse them.
        self.pipelines = None
        try:
            from scoring_runtime.observability.telemetry_sdk import Pipelines

            self.pipelines = Pipelines(self.plan)
        except Exception:
            # As the reference: telemetry that cannot be set up stays off, and the server serves.
            logger.exception("Telemetry could not be started; serving without it")
            return
        sent = ["Application Insights"] if self.plan.connection_string is not None else []
        sent += ["OTLP"] if self.plan.otlp_traces or self.plan.otlp_logs else []
        logger.info("Sending telemetry to %s", " and ".join(sent))

    def failed(self) -> None:
        """A request's telemetry could not be recorded: said as the reference says it (and sent as an exception)."""
        logger.exception("Error while logging request")

    def stop(self) -> None:
        """Export what is queued and stop the export threads (bounded by the SDK's export timeouts)."""
        pipelines, self.pipelines = self.pipelines, None
        if pipelines is not None and self._pid == os.getpid():
            pipelines.shutdown()
