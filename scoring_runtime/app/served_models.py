"""The models a deployment without an entry script serves: one model loaded at start-up, or a multi-model folder's
models loaded on demand; and the /score "script" that answers Azure ML's contract for the one model there is."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from scoring_runtime.config import Settings
from scoring_runtime.contract.script import Mode, UserScript
from scoring_runtime.cpus import threads_per_worker, usable_cpus
from scoring_runtime.errors import BadRequest, NotFound
from scoring_runtime.models import formats, openapi
from scoring_runtime.models.base import LoadOptions, Scored, ServedModel
from scoring_runtime.models.repository_state import EVICTED, NOT_LOADED, READY
from scoring_runtime.models.trust import confined

if TYPE_CHECKING:
    from scoring_runtime.models.repository import ModelRepository

logger = logging.getLogger("azmlinfsrv")


def serves_models_only(settings: Settings) -> bool:
    """No entry script and no `main` module to import, but a model folder: its model is served without a script."""
    if settings.entry_script is not None or settings.model_dir is None:
        return False
    root = settings.app_root
    return not (root / "main.py").is_file() and not (root / "main" / "__init__.py").is_file()


def load_options(settings: Settings) -> LoadOptions:
    threads = threads_per_worker(settings.model_threads, settings.worker_count, usable_cpus())
    return LoadOptions(settings.trust_pickle, settings.model_sha256, settings.skops_trusted, threads)


@dataclass(frozen=True)
class ModelState:
    name: str
    version: str | None
    state: str  # the repository extension's words: READY, LOADING, UNAVAILABLE, UNLOADING
    reason: str = ""
    servable: bool = True  # answers an inference, loading first if need be (not after an unload or a failed load)


class Catalogue:
    """The served models by name and version. Leases run on run threads (a first use of a multi-model folder's model
    loads it there), never on the event loop."""

    def __init__(self, single: ServedModel | None = None, repository: ModelRepository[ServedModel] | None = None):
        self._single = single
        self._repository = repository

    @property
    def is_repository(self) -> bool:
        return self._repository is not None

    def names(self) -> list[str]:
        if self._single is not None:
            return [self._single.name]
        return sorted({entry.name for entry in self.index()})

    def versions(self, name: str) -> list[str]:
        if self._single is not None:
            return [self._single.version] if self._single.version is not None else []
        return [entry.version for entry in self.index() if entry.name == name and entry.version is not None]

    def index(self) -> list[ModelState]:
        if self._repository is None:
            assert self._single is not None
            return [ModelState(self._single.name, self._single.version, "READY")]
        return [
            ModelState(e.name, e.version, e.state, e.reason, e.state == READY or e.reason in (NOT_LOADED, EVICTED))
            for e in self._repository.index()
        ]

    @contextmanager
    def lease(self, name: str, version: str | None = None) -> Iterator[ServedModel]:
        """The model, held for the with-block (a multi-model folder's idle models may be unloaded, not this one)."""
        if self._repository is not None:
            with self._repository.lease(name, version) as model:
                yield model
            return
        single = self._single
        assert single is not None
        if name != single.name:
            raise NotFound(f"Model {name!r} is not served here; this server serves {single.name!r}")
        if version is not None and version != single.version:
            served = f"version {single.version}" if single.version is not None else "no numbered version"
            raise NotFound(f"Model {name!r} has no version {version!r}: it is served as {served}")
        yield single

    def is_ready(self, name: str, version: str | None) -> bool:
        """Whether an inference would be answered: a model of a multi-model folder not loaded yet (or evicted) is
        ready, as it loads on its first request; one that was unloaded, or whose load failed, is not."""
        entries = [entry for entry in self.index() if entry.name == name]
        if version is None and entries:
            return any(entry.servable for entry in entries)
        for entry in entries:
            if entry.version == version:
                return entry.servable
        raise NotFound(f"Model {name!r}{_version_text(version)} is not served here; served: {self.names()}")

    # The repository extension's routes reach only the catalogue of a multi-model folder.

    def load(self, name: str) -> None:
        assert self._repository is not None
        self._repository.load(name)

    def unload(self, name: str) -> None:
        assert self._repository is not None
        self._repository.unload(name)

    def default_name(self) -> str | None:
        """The model /score serves: the only one there is."""
        names = self.names()
        return names[0] if len(names) == 1 else None


def _version_text(version: str | None) -> str:
    return "" if version is None else f" version {version!r}"


def single_model_name(model_dir: Path, given: str | None) -> tuple[str, str | None]:
    """The name (and version) a single model is served under: --model_name, else its folder's name; Azure ML's
    `<name>/<version>` folders (AZUREML_MODEL_DIR of a registered model) give both."""
    folder = model_dir.resolve()
    if folder.name.isdigit() and folder.parent.name:
        return given or folder.parent.name, folder.name
    return given or folder.name, None


def model_repository(settings: Settings) -> ModelRepository[ServedModel] | None:
    """The model folder as a repository of `<name>/<version>/` models loaded on demand; None for other layouts."""
    if settings.model_dir is None or not formats.is_multi_model(Path(settings.model_dir)):
        return None
    from scoring_runtime.models.repository import ModelRepository

    options = load_options(settings)

    root = Path(settings.model_dir)

    def load_one(name: str, version: str, path: Path) -> ServedModel:
        source = formats.find_model(confined(path, root), settings.model_framework)
        model = formats.load(source, name, version, options)
        for warning in model.loaded.warnings:
            logger.warning("Model %r version %s: %s", name, version, warning)
        return model

    return ModelRepository(root, load_one, budget_mb=settings.model_memory_mb, pinned=settings.model_pin)


def configure_script_models(settings: Settings) -> None:
    """A script on a multi-model folder gets its models from a repository (`scoring_runtime.load_model`), set up
    before its init() runs; pinned models are loaded first."""
    from scoring_runtime.models import script_models

    repository = model_repository(settings)
    script_models.configure(repository)
    if repository is not None:
        repository.load_pinned()


def script_repository() -> Catalogue | None:
    """The multi-model folder a script's models come from, for the repository extension's routes."""
    from scoring_runtime.models import script_models

    repository = script_models.configured()
    return Catalogue(repository=repository) if repository is not None else None


def load_catalogue(settings: Settings) -> Catalogue:
    """Load the model folder's one model, or index its multi-model layout (pinned models loaded). Raises
    ModelLoadError (exit 3) with one line saying what was found and what to do."""
    assert settings.model_dir is not None
    folder = Path(settings.model_dir)
    repository = model_repository(settings)
    if repository is not None:
        repository.load_pinned()
        catalogue = Catalogue(repository=repository)
        logger.info("Serving the multi-model folder %s: %s", folder, ", ".join(catalogue.names()) or "no models")
        return catalogue
    source = formats.find_model(folder, settings.model_framework)
    name, version = single_model_name(folder, settings.model_name)
    logger.info("Loading the %s model %s as %r", source.framework, source.path, name)
    model = formats.load(source, name, version, load_options(settings))
    for warning in model.loaded.warnings:
        logger.warning("Model %r: %s", name, warning)
    return Catalogue(single=model)


def script_catalogue(script: UserScript, settings: Settings) -> Catalogue | None:
    """A typed run() as the one model of the Open Inference Protocol's routes; None for other scripts."""
    if script.mode is not Mode.TYPED or script.is_async:
        return None
    from scoring_runtime.models.script_model import ScriptModel

    if settings.model_dir is not None:
        name, version = single_model_name(Path(settings.model_dir), settings.model_name)
    else:
        name, version = settings.model_name or Path(script.location).stem, None
    try:
        model = ScriptModel(script, name, version)
    except Exception:  # a schema we cannot read as tensors must not stop what /score serves
        logger.exception("run()'s schema cannot be described as tensors: the /v2 routes are not served")
        return None
    logger.info("run() is also served as model %r over the Open Inference Protocol (/v2)", name)
    return Catalogue(single=model)


def served_model_schemas(catalogue: Catalogue) -> tuple[dict[str, Any], dict[str, Any]]:
    """/score's documented body and answer: the one model's own, or a generic object for a multi-model folder."""
    name = catalogue.default_name()
    if name is None or catalogue.is_repository:
        return openapi.any_object("A multi-model folder: /score serves only a single model"), openapi.any_object("")
    with catalogue.lease(name) as model:
        return openapi.score_schemas(model)


def score_script(catalogue: Catalogue) -> UserScript:
    """/score for a deployment without a script, through the same machinery as a script's run(): run threads,
    limits, timeouts, metrics. It serves the only model there is; with several, /score names the V2 routes."""

    def init() -> None:
        pass

    # The served models are fixed at start-up (loads and unloads change their state, not the names).
    name = catalogue.default_name()

    def run(data: Any) -> Scored:
        if name is None:
            raise BadRequest(
                f"This server serves several models ({', '.join(catalogue.names())}): "
                "POST to /v2/models/<name>/infer instead of /score"
            )
        with catalogue.lease(name) as model:
            return model.score(data)

    module = ModuleType("scoring_runtime.served_model")
    return UserScript(
        module=module,
        location="(no entry script: the model folder's model)",
        init=init,
        run=run,
        mode=Mode.MODEL,
        is_async=False,
        parameters=("data",),
        required=frozenset({"data"}),
        wants_headers=False,
        user_code=None,
    )
