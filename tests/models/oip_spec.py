"""The Open Inference Protocol's REST specification (tests/data/open_inference_rest.yaml, vendored from
kserve/open-inference-protocol) as a test oracle: its component schemas to validate documents against, its paths.

The schemas are OpenAPI 3.0 schema objects: they are checked with openapi-schema-validator's OAS30Validator, the
jsonschema validator for that dialect, with `$ref`s resolved inside the vendored document and nowhere else.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from openapi_schema_validator import OAS30Validator
from openapi_spec_validator.readers import read_from_filename
from referencing import Registry

from tests.helpers import ROOT

SPEC_PATH = ROOT / "tests" / "data" / "open_inference_rest.yaml"
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# The spec writes path parameters as `${MODEL_NAME}`; routes (and OpenAPI itself) write `{model_name}`.
_PARAMETER = re.compile(r"\$\{([A-Za-z_]+)\}")


@cache
def document() -> dict[str, Any]:
    """The whole specification, parsed."""
    spec, _ = read_from_filename(str(SPEC_PATH))
    return dict(spec)


def schema_names() -> list[str]:
    """The names of the spec's component schemas (`inference_request`, `metadata_model_response`, ...)."""
    return sorted(document()["components"]["schemas"])


def validate(schema_name: str, instance: Any) -> None:
    """Raise jsonschema's ValidationError unless `instance` conforms to the named component schema."""
    _validator(schema_name).validate(instance)


@cache
def _validator(schema_name: str) -> Any:
    if schema_name not in document()["components"]["schemas"]:
        raise KeyError(f"the specification has no schema {schema_name!r}; it has {', '.join(schema_names())}")
    # The schema is a reference into a copy of the document, so that the document's own `#/components/...`
    # references resolve against it; an empty registry keeps any other reference from being fetched.
    root = {"components": document()["components"], "$ref": f"#/components/schemas/{schema_name}"}
    validator = OAS30Validator(root, registry=Registry())
    validator.check_schema(document()["components"]["schemas"][schema_name])
    return validator


def paths() -> dict[str, frozenset[str]]:
    """Each path of the spec, its parameters written `{model_name}`, and the HTTP methods (upper case) it defines.
    The spec's own spelling is kept otherwise, such as the trailing slash of `/v2/`."""
    found: dict[str, frozenset[str]] = {}
    for path, item in document()["paths"].items():
        template = _PARAMETER.sub(lambda match: "{" + match.group(1).lower() + "}", path)
        found[template] = frozenset(method.upper() for method in item if method in _METHODS)
    return found
