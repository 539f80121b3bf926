"""Server memory while a client sends a 2 GB body, declared (Content-Length) and chunked.

Usage: python benchmarks/body_limit_memory.py [--gigabytes 2]

Starts scoring_runtime (one worker, default 100 MiB body limit) on a free loopback port, samples the server's RSS
every 20 ms from /proc while one client streams the body as fast as the server takes it, and prints one JSON line
per case: RSS before, peak RSS during, RSS after, the status the client got, and how many bytes it managed to send.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def send_body(port: int, total: int, chunked: bool) -> tuple[str, int]:
    """Stream `total` bytes as one POST; return the status line the server answered with and the bytes sent."""
    block = b"x" * (1 << 20)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        framing = b"Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}".encode()
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: bench\r\nContent-Type: text/plain\r\n" + framing + b"\r\n\r\n")
        try:
            while sent < total:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                sent += len(block)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed the connection before the whole body was sent
        try:
            answer = sock.recv(4096).split(b"\r\n", 1)[0].decode()
        except OSError as exc:
            answer = f"no answer ({exc})"
    return answer, sent


def _sample(pid: int, samples: list[int], done: threading.Event) -> None:
    while not done.is_set():
        samples.append(rss_kib(pid))
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    args = parser.parse_args()
    total = int(args.gigabytes * (1 << 30))
    port = free_port()
    command = [sys.executable, "-m", "scoring_runtime", "--entry_script", str(ROOT / "sample_models/echo/score.py")]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "AZUREML_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        for chunked in (False, True):
            time.sleep(1.0)
            before = rss_kib(server.pid)
            samples = [before]
            done = threading.Event()
            sampler = threading.Thread(target=_sample, args=(server.pid, samples, done))
            sampler.start()
            started = time.monotonic()
            status, sent = send_body(port, total, chunked)
            elapsed = time.monotonic() - started
            time.sleep(1.0)
            done.set()
            sampler.join()
            after = rss_kib(server.pid)
            peak = max(samples)
            print(
                json.dumps(
                    {
                        "framing": "chunked" if chunked else "content-length",
                        "body_bytes": total,
                        "answer": status,
                        "client_sent_mib": round(sent / (1 << 20), 1),
                        "seconds": round(elapsed, 2),
                        "rss_before_mib": round(before / 1024, 1),
                        "rss_peak_rise_mib": round((peak - before) / 1024, 1),
                        "rss_after_rise_mib": round((after - before) / 1024, 1),
                    }
                )
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
