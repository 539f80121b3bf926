"""Finding, importing and validating score.py, describing its run(), and calling its init()."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from scoring_runtime._version import __version__
from scoring_runtime.config import Settings
from scoring_runtime.config_values import Listed
from scoring_runtime.contract import rawhttp, schema
from scoring_runtime.contract.script import HEADERS_PARAMETER, Mode, UserScript
from scoring_runtime.errors import ScriptLoadError

if TYPE_CHECKING:
    from scoring_runtime.contract import convert

logger = logging.getLogger("azmlinfsrv.user_script")


def script_environment(settings: Settings) -> dict[str, str]:
    """What the reference's launcher puts in the environment for the script, from the settings in force.

    An unset optional setting is left out, and its variable untouched, as there (a script's `os.getenv(name, default)`
    keeps working). So is HTTP_X_MS_SERVER_VERSION when the header is off.
    """
    environment = {
        "AML_APP_ROOT": str(settings.app_root),
        "WORKER_COUNT": str(settings.worker_count),
        "SERVER_PORT": str(settings.port),
        # Without a health port of its own, health is answered on the server port, as the reference's default says.
        "HEALTH_PORT": str(settings.port if settings.health_port is None else settings.health_port),
        "AML_APP_INSIGHTS_ENABLED": "true" if settings.app_insights_enabled else "false",
        "TRANSPORT_PROTOCOL": settings.transport_protocol,
    }
    path = settings.entry_script_path()
    optional = {
        "AZUREML_ENTRY_SCRIPT": None if path is None else str(path),
        "AZUREML_MODEL_DIR": settings.model_dir,
        "AZUREML_CONFIG_FILE": settings.config_file,
        "AML_APP_INSIGHTS_KEY": settings.app_insights_key,
        # The value the response header carries: ours, not azmlinfsrv's (app/application.py sends the same text).
        "HTTP_X_MS_SERVER_VERSION": f"scoring_runtime/{__version__}" if settings.server_version_header else None,
        "AML_CORS_ORIGINS": _origins_text(settings.cors_origins),
    }
    return environment | {name: value for name, value in optional.items() if value is not None}


def _origins_text(origins: tuple[str, ...]) -> str | None:
    if not origins:
        return None
    # As given (`a, b` stays `a, b`), the way the reference exports its flag.
    return origins.text if isinstance(origins, Listed) else ", ".join(origins)


def export_environment(settings: Settings) -> None:
    """Publish the settings a script reads from its environment, as the reference's launcher does: before the script
    is imported, in every process that imports it (each worker, or the master that preloads it for them)."""
    os.environ.update(script_environment(settings))


def load_script(settings: Settings) -> UserScript:
    """Import the entry script (or `main`), pick its input mode, and validate run()."""
    path = settings.entry_script_path()
    search = [settings.app_root]
    if settings.source_dir:
        search.insert(0, settings.app_root / settings.source_dir)
    if path is not None:
        search.insert(0, path.parent)
    for folder in reversed(search):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))

    uses_before = rawhttp.uses()
    module = _import_file(path) if path is not None else _import_main(settings.app_root)
    location = str(path) if path is not None else str(getattr(module, "__file__", "main"))
    init = getattr(module, "init", None)
    if not callable(init):
        raise _load_error(f"User script at {location} does not have a init() function defined.")
    run = getattr(module, "run", None)
    driver = getattr(module, "driver_module", None)
    if isinstance(driver, ModuleType) and callable(getattr(driver, "run", None)):
        run = driver.run
        logger.info(
            "Found driver script at %s and the score script at %s", location, getattr(driver, "__file__", driver)
        )
    else:
        logger.info("Found user script at %s", location)
    if not callable(run):
        raise _load_error(f"User script at {location} does not have a run() function defined.")
    return _describe(module, location, init, run, rawhttp.uses() > uses_before)


def _describe(
    module: ModuleType, location: str, init: Callable[[], Any], run: Callable[..., Any], raw_used: bool
) -> UserScript:
    params = inspect.signature(run).parameters
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY) for p in params.values()):
        raise _load_error("run() cannot accept positional-only arguments, *args, or **kwargs.")
    if not params:
        raise _load_error("run() needs to accept an argument for input data.")
    names = tuple(name for name in params if name != HEADERS_PARAMETER)
    if not names:
        raise _load_error('run() needs to accept an argument other than "request_headers".')
    required = frozenset(name for name in names if params[name].default is inspect.Parameter.empty)
    raw = raw_used or bool(getattr(inspect.unwrap(run), "__scoring_rawhttp__", False))
    typed = schema.is_decorated(run)
    if raw and typed:
        raise _load_error("run() cannot be decorated with both @rawhttp and @input_schema")
    if raw:
        mode = Mode.RAW
        logger.info("run() is decorated with @rawhttp. Server will invoke it with the request object.")
    elif typed:
        mode = Mode.TYPED
        logger.info(
            "run() is decorated with @input_schema. Server will invoke it with the following arguments: %s.",
            ", ".join(names),
        )
    else:
        mode = Mode.PLAIN
        logger.info("run() is not decorated. Server will invoke it with the input in JSON string.")
    return UserScript(
        module=module,
        location=location,
        init=init,
        run=run,
        mode=mode,
        is_async=inspect.iscoroutinefunction(inspect.unwrap(run)),
        parameters=names,
        required=required,
        # Only a typed call names every parameter; plain and raw ones leave the others to Python, as the reference's do.
        defaults={name: params[name].default for name in names if name not in required} if typed else {},
        wants_headers=HEADERS_PARAMETER in params,
        user_code=schema.user_code(run) if typed else None,
        fast=_plan_conversion(run) if typed else None,
    )


def _load_error(message: str) -> ScriptLoadError:
    logger.error(message)
    return ScriptLoadError(message)


def _unique_module_name() -> str:
    name, index = "entry_module", 1
    while name in sys.modules:
        index += 1
        name = f"entry_module_{index}"
    return name


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        logger.error("No such file or directory.")
        raise _load_error(f"Entry script not found: {path}")
    name = _unique_module_name()
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _load_error(f"Cannot load {path} as a Python module.")
    module = importlib.util.module_from_spec(spec)
    # Registered before running it, so that classes defined in score.py can be pickled and found again.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        raise _import_failure(exc) from None
    return module


def _import_main(app_root: Path) -> ModuleType:
    try:
        return importlib.import_module("main")
    except ModuleNotFoundError as exc:
        if exc.name != "main":
            raise _import_failure(exc) from None
        logger.error("No score script found. Expected score script main.py.")
        logger.error("Expected script to be found in PYTHONPATH: %s", sys.path)
        if app_root.is_dir():
            logger.error("Current contents of AML_APP_ROOT: %s", sorted(os.listdir(app_root)))
        else:
            logger.error("The directory %s not an accessible directory in the container.", app_root)
        raise ScriptLoadError("No score script found. Expected score script main.py.") from None
    except BaseException as exc:
        raise _import_failure(exc) from None


def _import_failure(exc: BaseException) -> ScriptLoadError:
    logger.error("Failed to import user script because it raised an unhandled exception")
    logger.error("%s", "".join(traceback.format_exception(exc)).rstrip())
    return ScriptLoadError(f"Failed to import user script: {type(exc).__name__}: {exc}")


def run_init(script: UserScript, model_dir: str | None) -> Any:
    """Call init() once. Returns what it returned (an awaitable for `async def init`, which the caller awaits)."""
    logger.info("Invoking user's init function")
    try:
        result = script.init()
    except BaseException as exc:  # SystemExit from init() is a start-up failure like any other
        raise init_failure(exc, model_dir) from None
    if not inspect.isawaitable(result):
        logger.info("Users's init has completed successfully")
    return result


def init_failure(exc: BaseException, model_dir: str | None) -> ScriptLoadError:
    logger.error("User's init function failed")
    logger.error("Encountered Exception %s", "".join(traceback.format_exception(exc)).rstrip())
    log_model_dir(model_dir)
    return ScriptLoadError(f"init() failed: {type(exc).__name__}: {exc}")


def log_model_dir(model_dir: str | None) -> None:
    """Show what the model folder holds: most start-up failures are a model file that is not where expected."""
    if model_dir and Path(model_dir).is_dir():
        logger.info("Model Directory Contents:")
        for line in tree_lines(Path(model_dir)):
            logger.info("%s", line)


def _plan_conversion(run: Callable[..., Any]) -> convert.FastCall | None:
    from scoring_runtime.contract import convert

    return convert.plan(run)


def tree_lines(root: Path, limit: int = 200) -> list[str]:
    """The folder tree as the reference logs it when init() fails: 4-space indents, folders end with a separator."""
    lines: list[str] = []
    for line in _walk(root, 0):
        if len(lines) == limit:
            lines.append(f"Output Truncated. First {limit} lines shown.")
            break
        lines.append(line)
    return lines


def _walk(path: Path, depth: int) -> Iterator[str]:
    indent = "    " * depth
    if not path.is_dir():
        yield f"{indent}{path.name}"
        return
    yield f"{indent}{path.name}{os.sep}"
    try:
        children = sorted(path.iterdir(), key=lambda child: child.name)
    except OSError:
        return
    for child in children:
        yield from _walk(child, depth + 1)
