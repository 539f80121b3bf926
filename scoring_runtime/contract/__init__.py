"""What score.py is and how it is called: loading, describing, init() and run(), inference-schema, input conversion,
the payload codec, run threads and deadlines. This layer knows no web framework and no server."""
