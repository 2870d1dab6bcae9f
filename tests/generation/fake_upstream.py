"""A real HTTP server on loopback that speaks OpenAI's images API, as an upstream would."""

import base64
import io
import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict  # names lower-cased
    body: bytes
    client: str  # the caller's address

    def json(self):
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    # Hundreds of worker slots may call at once (bench/sync_waits.py): the default backlog
    # of 5 would drop their connections into TCP's retry delays.
    request_queue_size = 512


class FakeUpstream:
    """POST /v1/images/generations renders plain images; GET /files/<name> serves `url` ones.

    Change its answer with the attributes: `image_size` and `image_format` (the images it
    renders; None size means the requested one), `reply` ((status, body bytes) sent instead
    of images), `delay` (seconds it waits before answering) and `gate` (an Event every
    answer waits for until the test sets it). It listens on `host` (loopback by default),
    on a free port.
    """

    def __init__(self, host: str = "127.0.0.1"):
        self.received: list[Received] = []
        self.files: dict[str, bytes] = {}
        self.image_size: tuple[int, int] | None = None
        self.image_format = "PNG"
        self.reply: tuple[int, bytes] | None = None
        self.delay = 0.0
        self.gate: threading.Event | None = None
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> Received:
                length = int(self.headers.get("Content-Length") or 0)
                received = Received(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                    client=self.client_address[0],
                )
                upstream.received.append(received)
                return received

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up waiting, as it should

            def do_POST(self):
                received = self._record()
                if upstream.delay:
                    time.sleep(upstream.delay)
                if upstream.gate is not None:
                    upstream.gate.wait()
                if upstream.reply is not None:
                    self._send(*upstream.reply, "application/json")
                elif self.path != "/v1/images/generations":
                    self._send(404, b'{"error": {"message": "Not found"}}', "application/json")
                else:
                    self._send(200, upstream.images_answer(received.json()), "application/json")

            def do_GET(self):
                self._record()
                data = upstream.files.get(self.path.removeprefix("/files/"))
                if data is None:
                    self._send(404, b"not found", "text/plain")
                else:
                    self._send(200, data, f"image/{upstream.image_format.lower()}")

            def log_message(self, *args):
                pass

        self.host = host
        self.server = _Server((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def render(self, index: int, size: tuple[int, int]) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", size, (40 * index % 256, 120, 200)).save(buffer, self.image_format)
        return buffer.getvalue()

    def images_answer(self, body: dict) -> bytes:
        width, height = (int(side) for side in body["size"].split("x"))
        size = self.image_size or (width, height)
        data = []
        for index in range(body.get("n", 1)):
            image = self.render(index, size)
            if body.get("response_format") == "url":
                name = f"{uuid.uuid4().hex}.{self.image_format.lower()}"
                self.files[name] = image
                data.append({"url": f"http://{self.host}:{self.port}/files/{name}"})
            else:
                data.append({"b64_json": base64.b64encode(image).decode()})
        return json.dumps({"created": int(time.time()), "data": data}).encode()

    def generation_requests(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST"]
