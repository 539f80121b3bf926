"""A loaded score.py and how its run() is called. Nothing here knows about HTTP frameworks."""

from __future__ import annotations

import enum
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, Any

from scoring_runtime.contract import schema
from scoring_runtime.errors import BadRequest, RunFailed

if TYPE_CHECKING:
    # convert imports numpy and pandas (about 30 MiB and 0.3 s): loaded only for typed scripts, which need them anyway.
    from scoring_runtime.contract import convert

logger = logging.getLogger("scoring_runtime.user_script")

HEADERS_PARAMETER = "request_headers"


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
            from scoring_runtime.contract.convert import ConversionError

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
