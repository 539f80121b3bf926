"""Writes the parts of KServe's CRD schemas that deploy/kserve's manifests use, for tests/deploy to check them.

KServe's full CRDs are large (its InferenceService schema is about 2 MB of YAML); the tests need only the paths the
manifests set. Kept along each such path: the node's type, enum, required names and x-kubernetes markers, and the
names of all its properties (so that a misspelt field is still found unknown), each unused one as an empty schema.

    python tests/data/kserve/prune_crds.py <a kserve checkout> deploy/kserve/*.yaml

Source: kserve/kserve at aaac4e294dae (2026-08-21), charts/kserve-crd/templates/serving.kserve.io_<plural>.yaml
(Apache-2.0).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
KEPT = ("type", "enum", "required", "format", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields")


def prune(schema: dict[str, Any], used: Any) -> dict[str, Any]:
    pruned = {key: schema[key] for key in KEPT if key in schema}
    if isinstance(used, dict) and "properties" in schema:
        pruned["properties"] = {
            name: prune(sub, used[name]) if name in used else {} for name, sub in schema["properties"].items()
        }
    if isinstance(used, dict) and isinstance(schema.get("additionalProperties"), dict):
        merged: dict[str, Any] = {}
        for value in used.values():
            merged = _merge(merged, value)
        pruned["additionalProperties"] = prune(schema["additionalProperties"], merged)
    if isinstance(used, list) and "items" in schema:
        merged_items: Any = {}
        for item in used:
            merged_items = _merge(merged_items, item)
        pruned["items"] = prune(schema["items"], merged_items)
    return pruned


def _merge(left: Any, right: Any) -> Any:
    if isinstance(left, dict) and isinstance(right, dict):
        return {key: _merge(left.get(key), right.get(key)) if key in left else right[key] for key in {**left, **right}}
    return right if right is not None else left


def main(checkout: Path, manifests: list[Path]) -> None:
    for manifest in manifests:
        document = yaml.safe_load(manifest.read_text())
        kind, version = document["kind"], document["apiVersion"].split("/")[1]
        plural = f"{kind.lower()}s"
        crd = yaml.safe_load((checkout / f"charts/kserve-crd/templates/serving.kserve.io_{plural}.yaml").read_text())
        (entry,) = [entry for entry in crd["spec"]["versions"] if entry["name"] == version]
        schema = prune(entry["schema"]["openAPIV3Schema"], document)
        out = HERE / f"{kind}.{version}.schema.json"
        out.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(f"wrote {out.name}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(arg) for arg in sys.argv[2:]])
