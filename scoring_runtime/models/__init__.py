"""Models served without a script: finding, trusting and loading a model file, describing it as tensors, answering
Azure ML's /score contract and the Open Inference Protocol for it, and holding several models within a memory budget.

This layer knows no web framework: the app turns what it returns into responses. Framework libraries (scikit-learn,
onnxruntime, tensorflow, xgboost, lightgbm) are imported only by the backend that serves their format.
"""
