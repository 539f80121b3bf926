"""Schemathesis against the OpenAPI documents the runtime serves for typed scripts: whatever the request, the
runtime answers it properly. A 500 is allowed only from user code, labelled `x-ms-run-function-failed: True`.

Bounded and deterministic: a fixed number of examples per operation, derandomized, no shrinking, no example database.
Every case is counted; the counts are printed (`pytest -s tests/test_schemathesis.py`). Cases come from
`APIOperation.as_strategy` under our own hypothesis settings, because schemathesis's pytest integration for a
schema that a fixture serves (`schemathesis.pytest.from_fixture`) reads a private pytest attribute that pytest 9.2
no longer has; so schemathesis's separate coverage phase (undocumented methods, missing headers) does not run here.

Which checks, and why:
- ours: no 5xx without `x-ms-run-function-failed: True`; every error is JSON `{"message": "..."}` with that header.
- status_code_conformance: every documented operation declares `default`, so this holds unless that changes.
- content_type_conformance, on /score only. The document's `text/plain` for `/` and `/swagger.json` is the
  reference's, and so are the `text/html` and `application/json` those routes send; neither is
  ours to change.
- response_schema_conformance, on /score of scripts with @output_schema. Without one, the document's 200 schema is
  the reference's placeholder (`{"type": "object"}`), which says nothing about what run() returns. Error bodies
  are checked by our own check for every script.
Left out:
- negative_data_rejection: the document is drawn from the samples and says more than inference-schema enforces
  (int64 bounds, formats, the types inside a dict, properties beyond the sample's). Like the reference, the runtime
  hands run() whatever inference-schema converts; checking the whole document would be a stricter contract than
  the reference's. Negative cases still run, under our checks: the runtime must answer them without failing.
- positive_data_acceptance: the reference's document does not mark run()'s parameters `required`, so `{}` is
  "valid" by the document while the runtime, rightly, answers 400 `A value is not provided for the 'data' parameter.`
- ignored_auth, missing_required_header and security parameters: the document describes the platform's `Bearer`
  key, which the platform checks in front of the server; the server itself, like the reference, checks none.
- unsupported_method (a coverage-phase check): `GET /score` and `OPTIONS` are served, as the reference serves them,
  without being documented.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import APIOperation, Case, CheckContext, GenerationMode, Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import SAMPLES, SCRIPTS, Server, clean_env

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 50
DIABETES = ["--entry_script", str(SAMPLES / "diabetes" / "score.py"), "--model_dir", str(SAMPLES / "diabetes/model")]


def _script(name: str) -> list[str]:
    return ["--entry_script", str(SCRIPTS / name)]


# Each typed script, the swagger version it is tested with, and whether it declares @output_schema: numpy,
# pandas and standard types, a DataFrame of records with a dict of options, a mixed-type list (no Swagger 2 form).
TARGETS = {
    "diabetes-v3": (DIABETES, "3", True),
    "diabetes-v2": (DIABETES, "2", True),
    "typed_pandas-v3": (_script("typed_pandas.py"), "3", False),
    "typed_num-v3": (_script("typed_num.py"), "3", False),
    "swagger_powerbi-v3": (_script("swagger_powerbi.py"), "3", True),
    "swagger_mixed-v3": (_script("swagger_mixed.py"), "3", False),
}


def runtime_did_not_fail(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    if response.status_code >= 500:
        assert response.headers.get("x-ms-run-function-failed") == ["True"], (
            f"{response.status_code} from the runtime, not from run(): {response.text[:500]}"
        )
    return None


def errors_are_json_messages(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    if response.status_code >= 400:
        assert response.headers.get("content-type") == ["application/json"], response.headers
        body = response.json()
        assert isinstance(body, dict) and list(body) == ["message"] and isinstance(body["message"], str), body
        assert response.headers.get("x-ms-run-function-failed") in (["True"], ["False"]), response.headers
    return None


OURS = [runtime_did_not_fail, errors_are_json_messages]
EVERYWHERE = [*OURS, status_code_conformance]
ON_SCORE = [*EVERYWHERE, content_type_conformance]


@pytest.mark.parametrize("name", list(TARGETS))
def test_the_runtime_answers_every_generated_request(name: str, tmp_path: Path) -> None:
    args, version, declares_output = TARGETS[name]
    server = Server(*args, env=clean_env(), log_dir=tmp_path).wait_ready()
    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    try:
        # from_dict, not from_url: from_url leaves out the operation that served the document, /swagger.json.
        document = server.get(f"/swagger.json?version={version}").json()
        schema = schemathesis.openapi.from_dict(document)
        schema.config.update(base_url=server.url)
        # The platform's Bearer key is checked in front of the server, never by it (see the module docstring).
        schema.config.generation.update(with_security_parameters=False)
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert sorted(operation.label for operation in operations) == ["GET /", "GET /swagger.json", "POST /score"]
        for operation in operations:
            checks = EVERYWHERE
            if operation.path == "/score":
                checks = ON_SCORE + ([response_schema_conformance] if declares_output else [])
            # `GET /` takes no input, so it has nothing to negate.
            negative = [GenerationMode.NEGATIVE] if operation.label != "GET /" else []
            # (schemathesis declares its modes' members as str, though they are GenerationMode at run time.)
            for mode in cast("list[GenerationMode]", [GenerationMode.POSITIVE, *negative]):
                _exercise(operation, mode, checks, cases, statuses)
    finally:
        server.stop()
        tally = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
        print(f"\nschemathesis {name}: {sum(cases.values())} cases {dict(cases)}; statuses {tally}")
    assert set(cases) == {
        "GET / positive",
        "GET /swagger.json positive",
        "GET /swagger.json negative",
        "POST /score positive",
        "POST /score negative",
    }


def _exercise(
    operation: APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    checks: list[Any],
    cases: Counter[str],
    statuses: Counter[int],
) -> None:
    """Up to MAX_EXAMPLES generated cases of one operation in one mode, each sent and checked."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # no shrinking: a failure is reported as found, within the time bound
        # A small document has few distinct inputs: hypothesis may stop early or filter, as expected.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def exercise(case: Case[Any]) -> None:
        cases[f"{operation.label} {mode.value}"] += 1
        statuses[case.call_and_validate(checks=checks).status_code] += 1

    exercise()
