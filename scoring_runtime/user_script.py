"""Finding, importing, validating and calling the user's score.py. Nothing here knows about HTTP frameworks."""

from __future__ import annotations

import enum
import importlib
import importlib.util
import inspect
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from scoring_runtime import schema
from scoring_runtime.config import Settings
from scoring_runtime.errors import BadRequest, RunFailed, ScriptLoadError
from scoring_runtime.models import tree_lines

if TYPE_CHECKING:
    # convert imports numpy and pandas (about 30 MiB and 0.3 s): loaded only for typed scripts, which need them anyway.
    from scoring_runtime import convert

logger = logging.getLogger("scoring_runtime.user_script")

HEADERS_PARAMETER = "request_headers"

F = TypeVar("F", bound=Callable[..., Any])

# Counts uses of @rawhttp. The reference switches run() to raw mode when @rawhttp is applied to any function while
# the script is imported; load_script compares this count before and after the import to do the same per script.
_rawhttp_uses = 0


def rawhttp(func: F) -> F:
    """Mark `run` as taking the HTTP request object and returning a response."""
    global _rawhttp_uses
    _rawhttp_uses += 1
    func.__scoring_rawhttp__ = True  # type: ignore[attr-defined]
    return func


class Mode(enum.Enum):
    PLAIN = "plain"  # run(data) gets the body as text
    TYPED = "typed"  # inference-schema decorated: run(**parameters) from a JSON object
    RAW = "raw"  # @rawhttp: run(request) gets the request object


@dataclass(frozen=True)
class UserScript:
    module: ModuleType
    location: str
    init: Callable[[], Any]
    run: Callable[..., Any]
    mode: Mode
    is_async: bool
    parameters: tuple[str, ...]  # run()'s parameters, without request_headers
    required: frozenset[str]  # ...those without a default
    wants_headers: bool
    user_code: CodeType | None  # where user code starts under the schema decorators
    fast: convert.FastCall | None = None  # our own input conversion, when it covers run()'s schema layers

    @property
    def input_parameter(self) -> str:
        return self.parameters[0]

    def call(self, kwargs: dict[str, Any]) -> tuple[Any, float]:
        """Call run(**kwargs); return its result and the call's wall time in milliseconds.

        Raises BadRequest when inference-schema could not convert an input, RunFailed when run() raised.
        """
        start = time.perf_counter()
        try:
            result = self._function(kwargs)(**kwargs)
        except BaseException as exc:  # SystemExit from run() must not take the worker down either
            raise self._failure(exc) from None
        return result, (time.perf_counter() - start) * 1000.0

    async def call_async(self, kwargs: dict[str, Any]) -> tuple[Any, float]:
        start = time.perf_counter()
        try:
            result = await self._function(kwargs)(**kwargs)
        except Exception as exc:
            raise self._failure(exc) from None
        return result, (time.perf_counter() - start) * 1000.0

    def _function(self, kwargs: dict[str, Any]) -> Callable[..., Any]:
        """What to call with kwargs: the function under the schema layers once our conversion did its work."""
        if self.fast is not None and self.fast.prepare(kwargs):
            return self.fast.target
        return self.run

    def _failure(self, exc: BaseException) -> BadRequest | RunFailed:
        if self.fast is not None:  # only then is convert loaded, and only then can it have raised
            from scoring_runtime.convert import ConversionError

            if isinstance(exc, ConversionError):
                logger.info("Rejected input: %s", exc)
                return BadRequest(str(exc))
        if self.mode is Mode.TYPED:
            parameter = schema.conversion_failure(exc, self.user_code)
            if parameter is not None:
                message = f"Invalid value for the {parameter!r} parameter: {exc}"
                logger.info("Rejected input: %s", message)
                return BadRequest(message)
        logger.error("Encountered Exception: %s", "".join(traceback.format_exception(exc)))
        return RunFailed()


def export_environment(settings: Settings) -> None:
    """Publish the settings a script reads from its environment, as the reference's launcher does."""
    os.environ["AML_APP_ROOT"] = str(settings.app_root)
    if settings.model_dir is not None:
        os.environ["AZUREML_MODEL_DIR"] = settings.model_dir
    path = settings.entry_script_path()
    if path is not None:
        os.environ["AZUREML_ENTRY_SCRIPT"] = str(path)


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

    uses_before = _rawhttp_uses
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
    return _describe(module, location, init, run, _rawhttp_uses > uses_before)


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
        required=frozenset(name for name in names if params[name].default is inspect.Parameter.empty),
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
    from scoring_runtime import convert

    return convert.plan(run)
