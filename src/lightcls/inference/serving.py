"""Serve a model over HTTP on LitServe: the web server reads, checks and resizes each request's image, a
model worker scores them in dynamic batches."""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import io
import json
import os
import signal
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import torch
from PIL import Image

from lightcls.ckpt import DIGEST_KEY, data_provenance, read_checkpoint
from lightcls.data.decode import load_image
from lightcls.data.preprocess import Preprocess
from lightcls.errors import LightclsError, one_line
from lightcls.inference.predictor import UNKNOWN, contract, load_predictor, results_from_probs

try:
    import litserve as ls
    from fastapi import HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from litserve.loops.simple_loops import BatchedLoop
    from litserve.server import RegularRequestHandler
    from starlette.concurrency import run_in_threadpool
except ImportError as missing:  # pragma: no cover - the serve extra is not installed
    raise LightclsError(
        f"serving needs LitServe ({missing.name} is missing): pip install 'lightcls[serve]'"
    ) from None

PAGE = Path(__file__).with_name("serve.html")
#: The body `/predict` reads, by Content-Type (also named in the 415 answer and the OpenAPI page).
ACCEPTED = "the image itself (image/*), a form with the image in field 'file' (multipart/form-data) or JSON "
ACCEPTED += '{"image": "<base64>"}'
#: An image body smaller than this is decoded in the event loop (well under a millisecond), larger in a
#: thread
INLINE_BYTES = 64 * 1024


class ImageReader:
    """A request's image as the model's resized uint8 array (C, S, S), decoded as `lightcls-predict` decodes
    a file, or an HTTPException with a 4xx code and the reason in one line."""

    def __init__(self, preprocess: Preprocess, max_pixels: int) -> None:
        self.preprocess = preprocess
        self.resize = preprocess.resize()
        self.max_pixels = max_pixels

    async def read(self, request: Request) -> np.ndarray:
        """The request's image, read, decoded and resized (a large one in a thread: the server goes on)."""
        data = await self.image_bytes(request)
        return self.decode(data) if len(data) < INLINE_BYTES else await run_in_threadpool(self.decode, data)

    async def image_bytes(self, request: Request) -> bytes:
        """The encoded image a request carries, however it was sent."""
        kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind == "multipart/form-data":
            return await _form_file(request)
        if kind.startswith("image/") or kind == "application/octet-stream":
            return await request.body()
        if kind == "application/json":
            return _base64_image(await request.body())
        raise HTTPException(415, f"Content-Type {kind or '(none)'}: send {ACCEPTED}")

    def decode(self, data: bytes) -> np.ndarray:
        """Encoded image bytes to the resized uint8 array; over the pixel limits is refused unread."""
        if not data:
            raise HTTPException(400, "empty image: the request carried no image bytes")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as img:  # the header only
                    width, height = img.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise HTTPException(413, f"image refused: {str(err).split('.')[0]}") from None
        except (OSError, ValueError, SyntaxError):
            raise HTTPException(400, "not an image: Pillow cannot identify its format") from None
        if width * height > self.max_pixels:
            raise HTTPException(
                413,
                f"image is {width}x{height} ({width * height:,} pixels), over max_pixels={self.max_pixels:,}",
            )
        try:
            image = load_image(
                io.BytesIO(data), self.preprocess.channels, self.preprocess.resize_side, name="the image"
            )
        except LightclsError as err:
            raise HTTPException(400, str(err)) from None
        return self.resize(image).numpy()


async def _form_file(request: Request) -> bytes:
    """The file in a multipart form's field `file`."""
    try:
        form = await request.form(max_files=1, max_fields=8)
    except HTTPException:
        raise
    except Exception as err:  # noqa: BLE001 - starlette's parser errors: a malformed form
        raise HTTPException(
            400, f"multipart body cannot be read ({one_line(str(err)) or type(err).__name__})"
        ) from None
    field = form.get("file")
    if field is None or isinstance(field, str):
        raise HTTPException(400, "multipart body: no file in field 'file'")
    return await field.read()


def _base64_image(body: bytes) -> bytes:
    """The image of a JSON body `{"image": "<base64>"}` (a data: URL's base64 part too)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "body is not valid JSON") from None
    image = payload.get("image") if isinstance(payload, dict) else None
    if not isinstance(image, str):
        raise HTTPException(400, 'JSON body: give {"image": "<base64 of the image file>"}')
    if image.startswith("data:"):
        image = image.partition(",")[2]
    try:
        return base64.b64decode("".join(image.split()), validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "image: not valid base64") from None


class _Primed:
    """A request queue whose next `get` is an item already taken from it."""

    def __init__(self, first: Any, queue: Any) -> None:
        self.first, self.queue = [first], queue

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return self.first.pop() if self.first else self.queue.get(block, timeout)

    def get_nowait(self) -> Any:
        return self.first.pop() if self.first else self.queue.get_nowait()


class WaitingBatchedLoop(BatchedLoop):
    """LitServe's batched loop, except that an idle worker waits on the queue: LitServe's polls it every
    millisecond through its queue manager (about 16% of a core while nothing comes)."""

    def get_batch_requests(self, lit_api: Any, request_queue: Any, transport: Any) -> tuple[list, list]:
        try:
            first = request_queue.get(timeout=1.0)
        except Empty:
            return [], []
        return super().get_batch_requests(lit_api, _Primed(first, request_queue), transport)


class ClassifierAPI(ls.LitAPI):
    """The model worker: scores batches of resized images and answers each with its top classes."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        provider: str | None = None,
        topk: int = 3,
        max_batch_size: int = 16,
        batch_timeout: float = 0.005,
        threads: int | None = None,
        min_score: float | None = None,
    ) -> None:
        loop = WaitingBatchedLoop() if max_batch_size > 1 else "auto"
        super().__init__(
            max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path="/predict", loop=loop
        )
        self.model, self.device_name, self.provider, self.topk = model, device, provider, topk
        self.threads, self.min_score = threads, min_score

    def setup(self, device: str) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        self.predictor = load_predictor(self.model, device=self.device_name, provider=self.provider)
        self.name = self.predictor.meta["model"]
        self.task = "multilabel" if self.predictor.multilabel else "multiclass"

    def decode_request(self, request: np.ndarray) -> np.ndarray:
        return request

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, x: np.ndarray) -> dict[str, Any] | list[dict[str, Any]]:
        single = x.ndim == 3  # max_batch_size=1: LitServe passes each request alone
        probs = self.predictor.scores(torch.from_numpy(x[None] if single else x))
        predictor = self.predictor
        answers = [
            self.answer(result)
            for result in results_from_probs(
                probs, predictor.classes, self.topk, predictor.thresholds, self.min_score
            )
        ]
        return answers[0] if single else answers

    def unbatch(self, output: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return output

    def encode_response(self, output: dict[str, Any]) -> bytes:
        return json.dumps(output).encode()

    def answer(self, result: dict[str, Any]) -> dict[str, Any]:
        """An image's answer: its top-k (a multi-label model: each label at or above its threshold, and the
        top-k scores); with `min_score`, `unknown`: whether the best score is below it."""
        answer = {"predictions": result.get("labels", result["topk"]), "model": self.name, "task": self.task}
        if "labels" in result:
            answer["topk"] = result["topk"]
        elif self.min_score is not None:
            answer["unknown"] = result["pred_class"] == UNKNOWN
        return answer


def model_card(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model's contract (classes, preprocessing, task) and what `/info` says of it: no server path
    beyond the model file's name."""
    if path.suffix.lower() == ".onnx" or (
        path.suffix.lower() == ".pt" and path.with_suffix(".json").is_file()
    ):
        # loaded once here, so a model the worker could not load is one line before anything starts
        meta = load_predictor(path).meta
        trained = {"data": (meta.get("data") or {}).get("name"), "precision": meta.get("precision")}
    else:
        ckpt = read_checkpoint(path)
        meta = contract(ckpt["hyper_parameters"], ckpt["state_dict"])
        digest = ckpt.get(DIGEST_KEY)
        trained = {
            "data": (data_provenance(ckpt) or {}).get("name"),
            "epoch": ckpt.get("epoch"),
            "global_step": ckpt.get("global_step"),
            "weights_digest": digest[:16] if isinstance(digest, str) else None,
        }
    if not isinstance(meta, dict) or "classes" not in meta or "preprocess" not in meta:
        raise LightclsError(f"ckpt_path={path}: not a lightcls model (no classes and preprocessing)")
    info = {
        "name": meta["model"],
        "task": meta.get("task", "multiclass"),
        "classes": list(meta["classes"]),
        "input": meta["preprocess"],
        "file": path.name,
        "trained": {k: v for k, v in trained.items() if v is not None},
    }
    if meta.get("thresholds"):
        info["thresholds"] = meta["thresholds"]
    return meta, info


def build_server(
    path: Path,
    device: str = "cpu",
    provider: str | None = None,
    topk: int = 3,
    max_batch_size: int = 16,
    batch_timeout_ms: float = 5.0,
    workers: int = 1,
    max_body_mb: float = 20.0,
    max_pixels: int = 40_000_000,
    api_key: str | None = None,
    threads: int | None = None,
    min_score: float | None = None,
) -> ls.LitServer:
    """A LitServer for the model at `path` (`.ckpt`, `.onnx` or TorchScript `.pt`): `POST /predict`,
    `GET /health`, `GET /info`, `GET /` (a page to try it), `GET /docs`."""
    meta, info = model_card(path)
    reader = ImageReader(Preprocess.from_dict(meta["preprocess"]), max_pixels)
    gpu = (
        device in ("gpu", "cuda")
        or device.startswith("cuda:")
        or (device == "auto" and torch.cuda.is_available())
    )
    if threads is None and not gpu:  # a core left to the web server: 161 -> 347 requests/s on 2 cores
        threads = max(1, len(os.sched_getaffinity(0)) - 1) if hasattr(os, "sched_getaffinity") else None
    api = ClassifierAPI(
        str(path), device, provider, topk, max_batch_size, batch_timeout_ms / 1000, threads, min_score
    )
    server = ls.LitServer(
        api,
        accelerator="cuda" if gpu else "cpu",
        devices=1,
        workers_per_device=workers,
        model_metadata=info,
    )
    # LitServe reads /predict's body as JSON or a form inside the model worker, where one bad image
    # fails the whole batch: the route is replaced by one that reads and checks each image first.
    server.app.router.routes = [
        route for route in server.app.router.routes if getattr(route, "path", None) not in ("/", "/predict")
    ]
    handler = RegularRequestHandler(api, server)

    async def predict(request: Request) -> Response:
        answer = await handler.handle_request(await reader.read(request), np.ndarray)
        return Response(answer, media_type="application/json")

    server.app.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        summary="Classify an image",
        description=f"Send {ACCEPTED}. Answers the top classes, best first; a bad image is a 4xx with its "
        "reason in `detail`.",
        openapi_extra=_PREDICT_OPENAPI,
    )
    page = PAGE.read_text(encoding="utf-8").replace("{{TITLE}}", html.escape(f"lightcls: {info['name']}"))
    server.app.add_api_route("/", lambda: HTMLResponse(page), methods=["GET"], include_in_schema=False)
    server.app.add_middleware(BodyLimitMiddleware, max_mb=max_body_mb)
    if api_key:  # outermost: checked first
        server.app.add_middleware(ApiKeyMiddleware, key=api_key)
    return server


_PREDICT_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            "application/json": {
                "schema": {"type": "object", "properties": {"image": {"type": "string", "format": "byte"}}}
            },
        },
    },
    "responses": {
        "200": {
            "description": 'e.g. {"predictions": [{"class": "seven", "label": 7, "score": 0.98}], '
            '"model": "resnet18", "task": "multiclass"}'
        },
        "400": {"description": "not an image, truncated, empty, or bad base64"},
        "401": {"description": "no or a wrong API key (when the server has one)"},
        "413": {"description": "over max_body_mb or max_pixels"},
        "415": {"description": "a Content-Type it does not read"},
    },
}


class BodyLimitMiddleware:
    """A body over `max_mb` is refused with 413: at once when its Content-Length says so, else as soon as
    that much has arrived (LitServe's own limit answers without naming it)."""

    def __init__(self, app: Callable[..., Any], max_mb: float) -> None:
        self.app, self.max_mb, self.max_bytes = app, max_mb, int(max_mb * 2**20)

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await JSONResponse({"detail": self.refusal()}, 413)(scope, receive, send)
            return
        size = 0

        async def counted() -> dict[str, Any]:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                raise HTTPException(413, self.refusal())
            return message

        await self.app(scope, counted, send)

    def refusal(self) -> str:
        return f"body over max_body_mb={self.max_mb:g}"


class ApiKeyMiddleware:
    """Every route but `/health` needs the key: `Authorization: Bearer KEY`, `X-API-Key: KEY`, or `?key=KEY`
    in the address (how the page is opened in a browser)."""

    def __init__(self, app: Callable[..., Any], key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http" or scope["path"] == "/health" or self._given(scope):
            await self.app(scope, receive, send)
            return
        detail = "API key required: send Authorization: Bearer <key> or X-API-Key: <key>"
        await JSONResponse({"detail": detail}, 401, {"WWW-Authenticate": "Bearer"})(scope, receive, send)

    def _given(self, scope: dict[str, Any]) -> bool:
        headers = dict(scope["headers"])
        offered = [headers.get(b"x-api-key", b"")]
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer":
            offered.append(token.strip())
        offered += [k.encode() for k in parse_qs(scope.get("query_string", b"").decode()).get("key", [])]
        return any(hmac.compare_digest(candidate, self.key) for candidate in offered if candidate)


def run_server(server: ls.LitServer, host: str, port: int, log_level: str = "warning") -> None:
    """Serve until Ctrl-C or SIGTERM (both stop the web server and the model workers); says once when
    the model answers."""
    address = f"http://{'[::1]' if host == '::' else '127.0.0.1' if host == '0.0.0.0' else host}:{port}"
    threading.Thread(target=_say_when_ready, args=(address,), daemon=True).start()

    server_pid = os.getpid()

    def stop(signum: int, _: Any) -> None:
        if os.getpid() == server_pid:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)  # a forked web server: as if this handler were not there
        signal.raise_signal(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.run(
            host=host,
            port=port,
            log_level=log_level,
            generate_client_file=False,
            api_server_worker_type="process",
        )
    except RuntimeError as err:  # LitServe's "workers failed to start": the worker logged why
        raise LightclsError(
            f"the model worker did not start ({one_line(str(err)) or type(err).__name__}); its error is above"
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say_when_ready(address: str, patience: float = 600) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{address}/health", timeout=1) as answer:
                if answer.status == 200:
                    print(
                        f"lightcls-serve: ready at {address}/ (POST /predict, GET /info, /docs); Ctrl-C stops"
                    )
                    return
        except OSError:
            pass
        time.sleep(0.2)
