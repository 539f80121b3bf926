"""Builds the no-code iris samples: sample_models/iris (scikit-learn, joblib) and sample_models/iris-onnx (ONNX).

Usage: python sample_models/build_models.py   (needs scikit-learn, skl2onnx and onnxruntime)

The tests import this file by path and build the iris classifier with `fit()` for the scikit-learn that is installed:
a scikit-learn pickle is only good for the release that saved it, which each README names.

The classifier is a LogisticRegression on the iris set that scikit-learn ships (load_iris reads it from the
package, offline), fitted with a fixed random_state, so that a rebuild with the same versions writes the same model.
The ONNX file is the same classifier through skl2onnx with its default outputs: `output_label` and
`output_probability`, the latter a ZipMap (a sequence of {class: probability} maps). Each folder gets the model
under model/, a sample-request.json for /score and a README.md whose expected answers are computed here from the
model itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
# One flower of each species (rows 0, 50 and 100 of the data set): the answer shows all three classes.
ROWS = [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]
# Pinned so that a newer skl2onnx does not silently write a graph older runtimes cannot read.
OPSET = {"": 17, "ai.onnx.ml": 3}


def fit() -> LogisticRegression:
    iris = load_iris()
    return LogisticRegression(max_iter=1000, random_state=0).fit(iris.data, iris.target)


def v2_request(datatype: str, output: str) -> dict[str, Any]:
    return {
        # Flat, in row-major order: the form every V2 server takes (nested lists are optional in the protocol).
        "inputs": [{"name": "input", "shape": [len(ROWS), 4], "datatype": datatype, "data": sum(ROWS, [])}],
        "outputs": [{"name": output}],
    }


def readme(title: str, what: str, model_file: str, datatype: str, output: str, answers: dict[str, Any]) -> str:
    folder = f"sample_models/{title}"
    score_request = json.dumps({"data": ROWS})
    infer_request = json.dumps(v2_request(datatype, output))
    return f"""# {title}

{what}

Built by `python sample_models/build_models.py` with scikit-learn {sklearn.__version__} (fixed `random_state`; a
scikit-learn pickle is only good for the release that saved it: rebuild it after upgrading scikit-learn).
Served with no entry script: scoring_runtime finds `model/{model_file}` and serves it on Azure ML's `/score` and on
the Open Inference Protocol V2.

```sh
python -m scoring_runtime --model_dir {folder}/model --model_name iris
curl -s localhost:5001/score -H 'Content-Type: application/json' -d @{folder}/sample-request.json
curl -s localhost:5001/v2/models/iris/infer -H 'Content-Type: application/json' -d '{infer_request}'
```

`/score` with `{score_request}` answers {answers["score_what"]}, here rounded to 6 places:

```json
{json.dumps(answers["score"])}
```
{answers["score_more"]}
`/v2/models/iris/infer` answers the `{output}` output as a V2 tensor (other fields, such as `id`, aside):

```json
{json.dumps({"model_name": "iris", "outputs": [answers["v2"]]})}
```
"""


def write_sample(folder: Path, readme_text: str) -> None:
    (folder / "sample-request.json").write_text(json.dumps({"data": ROWS}) + "\n")
    (folder / "README.md").write_text(readme_text)


def main() -> None:
    # Only the ONNX sample needs these; fit() is imported by the tests, which need neither to build the classifier.
    import onnxruntime
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    model = fit()
    rows = np.asarray(ROWS)
    labels = model.predict(rows).tolist()
    probabilities = np.round(model.predict_proba(rows), 6).tolist()

    sklearn_dir = HERE / "iris"
    (sklearn_dir / "model").mkdir(parents=True, exist_ok=True)
    joblib.dump(model, sklearn_dir / "model" / "model.joblib")
    v2 = {"name": "predict", "datatype": "INT64", "shape": [len(ROWS)], "data": labels}
    what = (
        "The iris classifier for no-code serving: a scikit-learn `LogisticRegression` in `model/model.joblib`, "
        "4 features (sepal length, sepal width, petal length, petal width, in cm), classes 0, 1, 2 "
        "(setosa, versicolor, virginica)."
    )
    answers = {
        "score_what": "the class probabilities (`predict_proba`, the default for a classifier)",
        "score": probabilities,
        "score_more": f'\nWith `"method": "predict"` added to the body, the class labels: `{json.dumps(labels)}`.\n',
        "v2": v2,
    }
    write_sample(sklearn_dir, readme("iris", what, "model.joblib", "FP64", "predict", answers))

    onnx_dir = HERE / "iris-onnx"
    (onnx_dir / "model").mkdir(parents=True, exist_ok=True)
    # The input is named as in the V2 requests of both samples ("X" is skl2onnx's default name).
    graph = to_onnx(model, initial_types=[("input", FloatTensorType([None, 4]))], target_opset=OPSET)
    (onnx_dir / "model" / "model.onnx").write_bytes(graph.SerializeToString())
    session = onnxruntime.InferenceSession(str(onnx_dir / "model" / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_labels, zipmaps = session.run(None, {"input": rows.astype(np.float32)})
    # The converted graph must agree with the model it came from; float32 moves the probabilities a little.
    assert onnx_labels.tolist() == labels, (onnx_labels, labels)
    dense = np.array([[zipmap[c] for c in sorted(zipmap)] for zipmap in zipmaps])
    assert np.allclose(dense, model.predict_proba(rows), atol=1e-5), dense
    what = (
        "The same iris classifier as `sample_models/iris`, converted by skl2onnx to `model/model.onnx` with its "
        "default outputs: `output_label` (INT64 labels) and `output_probability` (a ZipMap, one {class: probability} "
        "map per row). The input `input` is FP32 [N, 4]."
    )
    v2 = {"name": "output_label", "datatype": "INT64", "shape": [len(ROWS)], "data": labels}
    answers = {
        "score_what": "every output of the graph by name, the ZipMap as one row of probabilities per input row",
        "score": {"output_label": labels, "output_probability": np.round(dense, 6).tolist()},
        "score_more": "",
        "v2": v2,
    }
    write_sample(onnx_dir, readme("iris-onnx", what, "model.onnx", "FP32", "output_label", answers))
    print(f"labels {labels}; wrote {sklearn_dir / 'model'} and {onnx_dir / 'model'}")


if __name__ == "__main__":
    main()
