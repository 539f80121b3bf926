"""The Open Inference Protocol's REST routes (KServe V2) and TensorFlow Serving's predict route, for the models a
deployment without an entry script serves.

Decoding, inference and encoding run on a run thread under /score's rules (admission, body limit, timeout), through
`Scorer.serve`; what is answered on the event loop (metadata, readiness) reads only what is already loaded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scoring_runtime._version import __version__
from scoring_runtime.app.scoring import Scorer
from scoring_runtime.app.served_models import Catalogue
from scoring_runtime.auth import Authenticator
from scoring_runtime.contract import payload
from scoring_runtime.contract.batches import Batch
from scoring_runtime.errors import BadRequest, InternalError, NotFound
from scoring_runtime.models import v2_codec
from scoring_runtime.models.base import ServedModel

SERVER_NAME = "scoring_runtime"
EXTENSIONS = ("binary_tensor_data", "model_repository")
# The platform each framework's models are announced with: Triton's names where it has one.
PLATFORMS = {
    "sklearn": "sklearn",
    "onnx": "onnxruntime_onnx",
    "tensorflow": "tensorflow_savedmodel",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
}
_JSON = "application/json"
# Requests access-logged (and traced) as /score is: the model routes; the server-wide health routes are not.
LOGGED_PREFIXES = ("/v2/models/", "/v2/repository/", "/v1/models/")
NOT_SERVED = (
    "No model is served over the Open Inference Protocol: it serves a model folder without an entry script, or a "
    "score.py whose run() is typed with inference-schema's decorators (not async)"
)

Endpoint = Callable[[Request], Awaitable[Response]]


class OpenInference:
    """Answers the V2 routes from a catalogue of served models; the scorer runs the work on run threads."""

    def __init__(self, auth: Authenticator | None) -> None:
        self.auth = auth
        self._catalogue: Catalogue | None = None
        self._repository: Catalogue | None = None
        self._scorer: Scorer | None = None
        self._batch: Batch | None = None
        self._attached = False

    def attach(
        self,
        catalogue: Catalogue | None,
        scorer: Scorer,
        repository: Catalogue | None = None,
        batch: Batch | None = None,
    ) -> None:
        """What the lifespan loaded: the routes answer from now on (with 404s when nothing is served over V2).
        `repository`: the multi-model folder the repository extension manages, when a script's models are held in
        one; by default the catalogue's own. `batch`: the infer route's, when its requests are scored together."""
        self._catalogue = catalogue
        self._batch = batch
        self._repository = repository or (catalogue if catalogue is not None and catalogue.is_repository else None)
        self._scorer = scorer
        self._attached = True

    @property
    def repository(self) -> Catalogue:
        if self._repository is None:
            if self._attached:
                raise NotFound("No multi-model folder is served here: the repository extension has no models to list")
            raise InternalError()
        return self._repository

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            if self._attached:
                raise NotFound(NOT_SERVED)
            raise InternalError()  # only when the app is served without running its lifespan
        return self._catalogue

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            raise InternalError()
        return self._scorer

    def routes(self) -> list[Route]:
        model = "/v2/models/{model}"
        versioned = "/v2/models/{model}/versions/{version}"
        server = self._guarded(self._server_metadata)
        # The specification writes `/v2/`; clients use both.
        routes = [Route("/v2", server, methods=["GET"]), Route("/v2/", server, methods=["GET"])]
        for prefix in (model, versioned):
            routes += [
                Route(prefix, self._guarded(self._model_metadata), methods=["GET"]),
                Route(f"{prefix}/ready", self._guarded(self._model_ready), methods=["GET"]),
                Route(f"{prefix}/infer", self._guarded(self._infer), methods=["POST"]),
            ]
        routes += [
            Route("/v2/repository/index", self._guarded(self._repository_index), methods=["POST"]),
            Route("/v2/repository/models/{model}/load", self._guarded(self._load), methods=["POST"]),
            Route("/v2/repository/models/{model}/unload", self._guarded(self._unload), methods=["POST"]),
            Route("/v1/models/{model}:predict", self._guarded(self._predict), methods=["POST"]),
            Route("/v1/models/{model}/versions/{version}:predict", self._guarded(self._predict), methods=["POST"]),
        ]
        return routes

    def hot_routes(self) -> dict[tuple[str, str], Endpoint]:
        """The single model's infer route, looked up ahead of Starlette's router as /score is."""
        if self._catalogue is None:
            return {}
        name = self._catalogue.default_name()
        if name is None or self._catalogue.is_repository:
            return {}
        infer = self._guarded(self._infer)

        async def endpoint(request: Request) -> Response:
            request.scope["path_params"] = {"model": name}
            return await infer(request)

        return {("POST", f"/v2/models/{name}/infer"): endpoint}

    def _guarded(self, endpoint: Endpoint) -> Endpoint:
        auth = self.auth
        if auth is None:
            return endpoint

        async def checked(request: Request) -> Response:
            auth.check(request.headers.get("authorization"))
            return await endpoint(request)

        return checked

    async def _server_metadata(self, request: Request) -> Response:
        return _json(v2_codec.server_metadata(SERVER_NAME, __version__, EXTENSIONS))

    async def _model_metadata(self, request: Request) -> Response:
        name, version = _target(request)
        return await self.scorer.serve(request, lambda body: self._metadata(name, version))

    def _metadata(self, name: str, version: str | None) -> Response:
        with self.catalogue.lease(name, version) as model:
            document = v2_codec.model_metadata(
                model.name,
                self.catalogue.versions(model.name),
                PLATFORMS.get(model.framework, model.framework),
                model.signature,
                _describe(model),
            )
        return _json(document)

    async def _model_ready(self, request: Request) -> Response:
        name, version = _target(request)
        ready = self.catalogue.is_ready(name, version)
        answer = {"name": name, "ready": ready}
        # A model that is not ready is a 503, so that clients reading only the status (tritonclient) say False.
        return _json(answer, 200 if ready else 503)

    async def _infer(self, request: Request) -> Response:
        name, version = _target(request)
        header_length = v2_codec.parse_header_length(request.headers.get(v2_codec.HEADER_LENGTH))
        if self._batch is not None:
            return await self.scorer.serve_batched(request, self._batch, (header_length, name, version))
        catalogue = self.catalogue

        def infer(body: bytes) -> Response:
            decoded = v2_codec.decode_request(body, header_length)
            with catalogue.lease(name, version) as model:
                return infer_response(model, decoded, model.infer(decoded.inputs, decoded.output_names()))

        return await self.scorer.serve(request, infer)

    async def _predict(self, request: Request) -> Response:
        """TensorFlow Serving's REST predict: what a SavedModel answers on /score, under its own route."""
        name, version = _target(request)
        catalogue = self.catalogue

        def predict(body: bytes) -> Response:
            data = payload.model_input("POST", body, b"")
            with catalogue.lease(name, version) as model:
                if model.framework != "tensorflow":
                    raise NotFound(f"Model {name!r} is a {model.framework} model: use /v2/models/{name}/infer")
                scored = model.score(data)
            body_bytes, media_type = payload.encode_result(scored.value)
            return Response(body_bytes, media_type=media_type, headers=dict(scored.headers))

        return await self.scorer.serve(request, predict)

    async def _repository_index(self, request: Request) -> Response:
        return await self.scorer.serve(request, self._index)  # the body under the same limit as any other

    def _index(self, body: bytes) -> Response:
        only_ready = False
        if body.strip():
            options = payload.parse_json(body)
            if not isinstance(options, dict):
                raise BadRequest('The repository index request must be a JSON object, such as {"ready": true}')
            only_ready = options.get("ready") is True
        entries = []
        for entry in self.repository.index():
            if only_ready and entry.state != "READY":
                continue
            item: dict[str, Any] = {"name": entry.name, "state": entry.state}
            if entry.version is not None:
                item["version"] = entry.version
            if entry.reason:
                item["reason"] = entry.reason
            entries.append(item)
        return _json(entries)

    async def _load(self, request: Request) -> Response:
        name = request.path_params["model"]
        return await self.scorer.serve(request, lambda body: self._change(self.repository.load, name))

    async def _unload(self, request: Request) -> Response:
        name = request.path_params["model"]
        return await self.scorer.serve(request, lambda body: self._change(self.repository.unload, name))

    @staticmethod
    def _change(action: Callable[[str], None], name: str) -> Response:
        action(name)
        return Response(b"", media_type=_JSON)


def infer_response(model: ServedModel, request: v2_codec.InferRequest, outputs: dict[str, Any]) -> Response:
    """The V2 answer to `request`, from the output arrays the model returned."""
    parameters = model.signature.output_parameters
    encoded, headers = v2_codec.encode_response(model.name, model.version, request, outputs, parameters)
    return Response(encoded, headers=headers)


def _target(request: Request) -> tuple[str, str | None]:
    params = request.path_params
    return params["model"], params.get("version")


def _describe(model: ServedModel) -> dict[str, Any] | None:
    describe = getattr(model, "describe", None)
    details: dict[str, Any] = describe() if callable(describe) else {}
    if model.loaded.warnings:
        details["warnings"] = list(model.loaded.warnings)
    return details or None


def _json(value: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status_code, media_type=_JSON)
