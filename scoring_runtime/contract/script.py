"""A loaded score.py and how its run() is called. Nothing here knows about HTTP frameworks."""

from __future__ import annotations

import enum
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, Any

from scoring_runtime.contract import schema
from scoring_runtime.errors import BadRequest, HTTPError, ModelUnavailable, NotFound, RunFailed

if TYPE_CHECKING:
    # convert imports numpy and pandas (about 30 MiB and 0.3 s): loaded only for typed scripts, which need them anyway.
    from scoring_runtime.contract import convert

logger = logging.getLogger("azmlinfsrv.user_script")

HEADERS_PARAMETER = "request_headers"


class Mode(enum.Enum):
    PLAIN = "plain"  # run(data) gets the body as text
    TYPED = "typed"  # inference-schema decorated: run(**parameters) from a JSON object
    RAW = "raw"  # @rawhttp: run(request) gets the request object
    MODEL = "model"  # a model served without a script: run(data) gets the parsed JSON body (or the GET query)


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
    # TYPED: the parameters that have defaults, with them. The reference passes every parameter by keyword, a default
    # when the request has no value: inference-schema's wrapper looks a decorated parameter missing from the keywords
    # up by position, and fails (IndexError), so leaving it to Python is not an option. Passed as the very objects.
    defaults: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def input_parameter(self) -> str:
        return self.parameters[0]

    def call(self, kwargs: dict[str, Any]) -> tuple[Any, float]:
        """Call run(**kwargs), with the defaults of parameters kwargs lacks; return its result and the call's wall
        time in milliseconds.

        Raises BadRequest when inference-schema could not convert an input, RunFailed when run() raised.
        """
        arguments = {**self.defaults, **kwargs} if self.defaults else kwargs
        start = time.perf_counter()
        try:
            result = self._function(arguments)(**arguments)
        except BaseException as exc:  # SystemExit from run() must not take the worker down either
            raise self._failure(exc, kwargs) from None
        return result, (time.perf_counter() - start) * 1000.0

    async def call_async(self, kwargs: dict[str, Any]) -> tuple[Any, float]:
        arguments = {**self.defaults, **kwargs} if self.defaults else kwargs
        start = time.perf_counter()
        try:
            result = await self._function(arguments)(**arguments)
        except Exception as exc:
            raise self._failure(exc, kwargs) from None
        return result, (time.perf_counter() - start) * 1000.0

    def failure(self, exc: BaseException) -> HTTPError:
        """What the client gets when run() raised `exc` (logged when it is a failure of run() itself)."""
        return self._failure(exc, {})

    def _function(self, kwargs: dict[str, Any]) -> Callable[..., Any]:
        """What to call with kwargs: the function under the schema layers once our conversion did its work."""
        if self.fast is not None and self.fast.prepare(kwargs):
            return self.fast.target
        return self.run

    def _failure(self, exc: BaseException, supplied: dict[str, Any]) -> HTTPError:
        """What the client gets for `exc`: 400 for a value of theirs that inference-schema rejected, else 500."""
        if isinstance(exc, HTTPError) and (self.mode is Mode.MODEL or isinstance(exc, (ModelUnavailable, NotFound))):
            # A served model's own answer to bad input (400), or the model repository's to a script's load_model()
            # (an unknown model: 404; one that failed to load: 503): ours to tell the client, not a failure of run().
            return exc
        rejected = self._rejected(exc)
        if rejected is not None:
            parameter, message = rejected
            if parameter in supplied or parameter not in self.defaults:
                logger.info("Rejected input: %s", message)
                return BadRequest(message)
            # The script's own default failed its schema: no client input is at fault, and every request that leaves
            # the parameter out fails the same way (the reference's 500).
            logger.error("The default of run()'s %r parameter is not a valid input for its @input_schema", parameter)
        logger.error("Encountered Exception: %s", "".join(traceback.format_exception(exc)))
        return RunFailed()

    def _rejected(self, exc: BaseException) -> tuple[str, str] | None:
        """The parameter whose value inference-schema failed to convert, and the client's message; None when `exc`
        is a failure of run() itself."""
        if self.fast is not None:  # only then is convert loaded, and only then can it have raised
            from scoring_runtime.contract.convert import ConversionError

            if isinstance(exc, ConversionError):
                return exc.parameter, str(exc)
        if self.mode is Mode.TYPED:
            parameter = schema.conversion_failure(exc, self.user_code)
            if parameter is not None:
                return parameter, f"Invalid value for the {parameter!r} parameter: {exc}"
        return None
