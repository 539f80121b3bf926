"""A receiver of telemetry on 127.0.0.1 for benchmarks: answers every POST as Application Insights' ingestion endpoint
would (all items accepted; an OTLP collector ignores the body) and counts what arrives."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class TelemetrySink:
    def __init__(self) -> None:
        self.posts = 0
        self.received = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                sink.posts += 1
                sink.received += len(body)
                reply = b""
                if self.path.endswith("/v2.1/track"):
                    items = json.loads(
                        gzip.decompress(body) if self.headers.get("content-encoding") == "gzip" else body
                    )
                    reply = json.dumps(
                        {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}
                    ).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TelemetrySink:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
