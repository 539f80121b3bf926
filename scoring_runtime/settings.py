"""Settings, declared once. Each field names its environment variable, its CLI flag where it has one, and its doc.

How the sources are merged is config.py's business.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from scoring_runtime import config_values as values
from scoring_runtime.config_values import setting
from scoring_runtime.settings_models import ModelSettings


@dataclass(frozen=True)
class Settings(ModelSettings):
    app_root: Path = setting(
        "AML_APP_ROOT",
        lambda raw: Path(values.text(raw)),
        Path.cwd,
        "Folder the entry script and its relative paths are resolved from (default: the current directory).",
    )
    entry_script: str | None = setting(
        "AZUREML_ENTRY_SCRIPT",
        values.optional_text,
        None,
        "Path of score.py; relative paths are taken from the app root. Unset: `import main`.",
        "entry_script",
    )
    source_dir: str | None = setting(
        "AZUREML_SOURCE_DIRECTORY", values.optional_text, None, "Folder under the app root that is put on sys.path."
    )
    model_dir: str | None = setting(
        "AZUREML_MODEL_DIR",
        values.optional_text,
        None,
        "Model folder given to the script as AZUREML_MODEL_DIR, verbatim.",
        "model_dir",
    )
    config_file: str | None = setting(
        "AZUREML_CONFIG_FILE",
        values.optional_text,
        None,
        "JSON file of settings keyed by environment name.",
        "config_file",
    )
    service_name: str = setting("SERVICE_NAME", values.text, "ML service", "Service name used in the swagger document.")
    service_version: str = setting(
        "SERVICE_VERSION", values.text, "1.0", "Service version used in the swagger document."
    )
    service_path_prefix: str = setting(
        "SERVICE_PATH_PREFIX",
        values.path_prefix,
        "",
        "Path prefix the routes are served under (as well as at the root) and documented with in the swagger.",
    )
    scoring_timeout_ms: int = setting(
        "SCORING_TIMEOUT_MS",
        values.integer(0),
        3_600_000,
        "Longest run() call in milliseconds before the client gets a 500; 0 disables it.",
        "scoring_timeout_ms",
    )
    worker_count: int = setting(
        "WORKER_COUNT",
        values.integer(1),
        1,
        "Worker processes; 1 serves from this process with uvicorn, more use gunicorn.",
        "worker_count",
    )
    worker_timeout: int = setting(
        "WORKER_TIMEOUT",
        values.integer(1),
        300,
        "Seconds a run() call may take (then stopped; under gunicorn its worker is replaced), or a silent worker.",
        "worker_timeout",
    )
    worker_preload: bool = setting(
        "WORKER_PRELOAD",
        values.any_case_true,
        False,
        "Import score.py and run init() once before forking workers, sharing the model's memory.",
    )
    log_level: str = setting(
        "AZUREML_LOG_LEVEL", values.log_level, "INFO", "Level of the server's and the script's logs."
    )
    log_format: str = setting(
        "SCORING_LOG_FORMAT",
        values.log_format,
        "text",
        "text: the reference's log lines; json: one JSON object per line, with the request id.",
        "log_format",
    )
    cors_origins: tuple[str, ...] = setting(
        "AML_CORS_ORIGINS",
        values.listed,
        (),
        "Comma-separated origins allowed by CORS.",
        "access_control_allow_origins",
    )
    host: str = setting("SCORING_HOST", values.text, "0.0.0.0", "Address to listen on.", "host")
    port: int = setting("SERVER_PORT", values.port, 5001, "Port of the scoring server.", "port")
    health_port: int | None = setting(
        "HEALTH_PORT", values.optional_port, None, "A second port serving the same routes, for probes.", "health_port"
    )
    separate_health_endpoint: bool = setting(
        "SEPERATE_HEALTH_ENDPOINT", values.exact_true, False, "Exactly `true`: the health port defaults to 5000."
    )
    max_concurrency: int = setting(
        "SCORING_MAX_CONCURRENCY",
        values.integer(1),
        1,
        "run() calls allowed at once in each worker.",
        "max_concurrency",
    )
    max_request_bytes: int = setting(
        "SCORING_MAX_REQUEST_BYTES",
        values.integer(1),
        100 * 1024 * 1024,
        "Largest request body accepted, in bytes; larger ones get 413 before they are read.",
        "max_request_bytes",
    )
    max_header_bytes: int = setting(
        "SCORING_MAX_HEADER_BYTES",
        values.integer(1024),
        64 * 1024,
        "Largest request head (request line and headers), in bytes; a larger one gets 431 and the connection closes.",
        "max_header_bytes",
    )
    header_timeout_s: int = setting(
        "SCORING_HEADER_TIMEOUT_S",
        values.integer(0),
        60,
        "Seconds a client gets to send a request's headers before it gets 408 and the connection closes; 0: no limit.",
        "header_timeout_s",
    )
    max_queue: int = setting(
        "SCORING_MAX_QUEUE",
        values.integer(0),
        100,
        "Requests each worker lets wait for a run slot; beyond that it answers 503 with Retry-After at once.",
        "max_queue",
    )
    max_abandoned_runs: int = setting(
        "SCORING_MAX_ABANDONED_RUNS",
        values.integer(0),
        2,
        "Threads of timed-out run() calls stuck in C a worker keeps serving beside; one more and it is replaced.",
        "max_abandoned_runs",
    )
    graceful_timeout_s: int = setting(
        "SCORING_GRACEFUL_TIMEOUT_S",
        values.integer(0),
        30,
        "Seconds in-flight requests get to finish after SIGTERM before the process stops anyway.",
        "graceful_timeout_s",
    )
    auth_keys: tuple[str, ...] = setting(
        "SCORING_AUTH_KEYS",
        values.auth_keys,
        (),
        "Comma-separated API keys (primary,secondary) accepted as `Authorization: Bearer <key>`.",
        "auth_keys",
        secret=True,
    )
    auth_key_file: str | None = setting(
        "SCORING_AUTH_KEY_FILE",
        values.optional_text,
        None,
        "File of API keys, one per line (primary, secondary); re-read when it changes.",
        "auth_key_file",
    )
    jwt_secret: str | None = setting(
        "SCORING_JWT_SECRET",
        values.optional_text,
        None,
        "HS256 secret (at least 32 bytes) that bearer JWTs are checked with.",
        "jwt_secret",
        secret=True,
    )
    jwt_public_key_file: str | None = setting(
        "SCORING_JWT_PUBLIC_KEY_FILE",
        values.optional_text,
        None,
        "PEM public key that bearer JWTs are checked with: RSA means RS256, EC P-256 means ES256.",
        "jwt_public_key_file",
    )
    jwt_jwks_file: str | None = setting(
        "SCORING_JWT_JWKS_FILE",
        values.optional_text,
        None,
        "JWKS file whose keys (picked by kid) bearer JWTs are checked with; re-read when it changes.",
        "jwt_jwks_file",
    )
    jwt_audience: str | None = setting(
        "SCORING_JWT_AUDIENCE", values.optional_text, None, "Required `aud` of bearer JWTs.", "jwt_audience"
    )
    jwt_issuer: str | None = setting(
        "SCORING_JWT_ISSUER", values.optional_text, None, "Required `iss` of bearer JWTs.", "jwt_issuer"
    )
    jwt_leeway_s: int = setting(
        "SCORING_JWT_LEEWAY_S",
        values.integer(0, 300),
        30,
        "Clock skew, in seconds, allowed when checking a JWT's exp, nbf and iat.",
        "jwt_leeway_s",
    )
    auth_swagger: bool = setting(
        "SCORING_AUTH_SWAGGER",
        values.boolean,
        False,
        "Require authentication for /swagger.json too (when authentication is on).",
        "auth_swagger",
    )
    heap_keep_mb: int = setting(
        "SCORING_HEAP_KEEP_MB",
        values.integer(0, 2047),
        # benchmarks/heap_policy.py: 64 saves as much CPU as 128 or 256 on 1 MB bodies at c=64, holding less.
        64,
        "Freed memory (MiB) each worker's C heap keeps for reuse while serving; 0 leaves the C library's policy.",
    )
    metrics: bool = setting(
        "SCORING_METRICS", values.boolean, True, "Serve Prometheus metrics at GET /metrics.", "metrics"
    )
    api_page: bool = setting(
        "SCORING_API_PAGE", values.boolean, True, "Serve the API page (Swagger UI) at GET /docs.", "api_page"
    )
    server_version_header: bool = setting(
        "SERVER_VERSION_LOG_RESPONSE_ENABLED",
        values.any_case_true,
        True,
        "Send the x-ms-server-version response header (and export its value as HTTP_X_MS_SERVER_VERSION).",
    )
    # The reference's Application Insights settings, acted on with the `telemetry` extra (observability/telemetry.py).
    app_insights_enabled: bool = setting(
        "AML_APP_INSIGHTS_ENABLED",
        values.exact_true,
        False,
        "Exactly `true`, with a valid AML_APP_INSIGHTS_KEY or a connection string: send telemetry to Application "
        "Insights (needs the `telemetry` extra).",
    )
    app_insights_key: str | None = setting(
        "AML_APP_INSIGHTS_KEY",
        values.optional_text,
        None,
        "Application Insights instrumentation key (a UUID); the flag also sets AML_APP_INSIGHTS_ENABLED=true.",
        "appinsights_instrumentation_key",
        secret=True,
    )
    app_insights_connection_string: str | None = setting(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        values.optional_text,
        None,
        "Application Insights connection string (it names the ingestion endpoint); used instead of the key.",
        secret=True,
    )
    app_insights_log_response: bool = setting(
        "APP_INSIGHTS_LOG_RESPONSE_ENABLED",
        values.pydantic_boolean,
        True,
        "Put response bodies (their first 8192 characters) in the request telemetry.",
    )
    app_insights_offline_storage: bool = setting(
        "SCORING_APP_INSIGHTS_OFFLINE_STORAGE",
        values.boolean,
        True,
        "Keep telemetry Application Insights did not accept in a local folder and send it again later.",
    )
    # The reference's data collection, debugger and transport settings: accepted, so that a container that sets them
    # keeps starting; not acted on. Some are exported for the script (contract/loading.py).
    mdc_storage_enabled: bool = setting(
        "AML_MDC_STORAGE_ENABLED", values.pydantic_boolean, False, "Model data collection (not implemented).",
        ignored="model data collection is not implemented"
    )  # fmt: skip
    debug_port: str | None = setting(
        "AZUREML_DEBUG_PORT", values.optional_text, None, "Debugger port to connect to (not implemented).",
        ignored="debugpy is not implemented"
    )  # fmt: skip
    transport_protocol: str = setting(
        "TRANSPORT_PROTOCOL",
        values.text,
        "grpc",
        "Exported to the script: `grpc`, or `rest` with --rest, as the reference's launcher does; nothing reads it.",
        "rest",
        const="rest",
        ignored="nothing reads it, as in azmlinfsrv",
    )

    def entry_script_path(self) -> Path | None:
        if self.entry_script is None:
            return None
        return (self.app_root / self.entry_script).absolute()


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
ENV_NAMES = {f.metadata["env"]: f.name for f in FIELDS.values()}
