# A 5 MB JSON answer to a small request: the records are built once in init(), serialised on every request.
def init():
    global records
    records = [{"id": i, "score": i * 0.25, "label": f"item-{i:06d}"} for i in range(100_000)]


def run(data):
    return records
