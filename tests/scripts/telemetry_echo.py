# Telemetry tests: run() prints (a log record to export), echoes its input, and fails on "fail" (exception telemetry).
def init():
    print("telemetry_echo init")


def run(data):
    print(f"scoring {data}")
    if data == "fail":
        raise ValueError("asked to fail")
    return {"echo": data}
