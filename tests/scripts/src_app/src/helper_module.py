VALUE = {"key": "value"}
