"""The settings of models served without a script, declared as settings.py declares the others (Settings inherits
them): kept apart only to keep each module short."""

from __future__ import annotations

from dataclasses import dataclass

from scoring_runtime import config_values as values
from scoring_runtime.config_values import setting


@dataclass(frozen=True)
class ModelSettings:
    model_framework: str | None = setting(
        "AZUREML_MODEL_FRAMEWORK",
        values.model_framework,
        None,
        "Framework of a model served without an entry script (ScikitLearn, Onnx, TensorFlow, XGBoost, LightGBM); "
        "unset: recognised from the model folder's files.",
        "model_framework",
    )
    model_name: str | None = setting(
        "SCORING_MODEL_NAME",
        values.optional_text,
        None,
        "Name of a single model served without an entry script, in the /v2 routes (default: its folder's name).",
        "model_name",
    )
    trust_pickle: bool = setting(
        "SCORING_TRUST_PICKLE",
        values.boolean,
        False,
        "Load pickle and joblib model files whatever they name; by default only scikit-learn, numpy, scipy, pandas "
        "and the served estimator libraries' classes load.",
    )
    model_sha256: str | None = setting(
        "SCORING_MODEL_SHA256",
        values.sha256_hex,
        None,
        "SHA-256 digest the model file (or SavedModel folder) must have; a different one stops start-up.",
    )
    skops_trusted: tuple[str, ...] = setting(
        "SCORING_SKOPS_TRUSTED",
        values.comma_list,
        (),
        "Comma-separated types a .skops model file may hold beyond skops' defaults.",
    )
    model_memory_mb: int | None = setting(
        "SCORING_MODEL_MEMORY_MB",
        values.optional_megabytes,
        None,
        "Memory (MiB, measured as each load's growth) the models of a multi-model folder may hold; idle ones are "
        "unloaded, least recently used first. Unset: no limit.",
    )
    model_pin: tuple[str, ...] = setting(
        "SCORING_MODEL_PIN",
        values.comma_list,
        (),
        "Comma-separated models of a multi-model folder loaded at start and never unloaded.",
    )
    model_threads: int | None = setting(
        "SCORING_MODEL_THREADS",
        values.threads,
        None,
        "Threads per worker in each pool of the numerical libraries (OpenMP, BLAS, onnxruntime, TensorFlow). auto: "
        "the CPUs the container may use (affinity and cgroup quota) shared between the workers; 0: the libraries' "
        "own defaults. Thread variables set in the environment (OMP_NUM_THREADS...) are kept.",
    )
    model_max_batch: int = setting(
        "SCORING_MODEL_MAX_BATCH",
        values.integer(1, 1024),
        32,
        "Requests for a scikit-learn model served without a script that, waiting for a run thread at the same time, "
        "are scored in one call; nothing waits for a batch to fill. 1: each request alone.",
    )
