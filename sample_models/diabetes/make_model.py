"""Writes model/coef.npy and model/intercept.npy: a ridge regression over 10 features, fitted in closed form.

The data is synthetic and seeded (scikit-learn is not needed), shaped like the classic diabetes set: 442 rows, 10
standardised features, a target around 150.
"""

from pathlib import Path

import numpy as np

rng = np.random.default_rng(442)
features = rng.normal(0.0, 0.05, size=(442, 10))
true_coef = np.array([-10.0, -240.0, 520.0, 325.0, -790.0, 475.0, 100.0, 180.0, 750.0, 70.0])
target = features @ true_coef + 152.0 + rng.normal(0.0, 50.0, size=442)

alpha = 0.1
centred = features - features.mean(axis=0)
coef = np.linalg.solve(centred.T @ centred + alpha * np.eye(10), centred.T @ (target - target.mean()))
intercept = target.mean() - features.mean(axis=0) @ coef

out = Path(__file__).parent / "model"
out.mkdir(exist_ok=True)
np.save(out / "coef.npy", coef)
np.save(out / "intercept.npy", np.array(intercept))
print("coef", np.round(coef, 3), "intercept", round(float(intercept), 3))
