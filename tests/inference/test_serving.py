"""lightcls-serve: a real server on a loopback port, real images, real clients and a real browser."""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import signal
import socket
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from PIL import Image

from helpers import assert_refused, free_port, quoted, refused_in_process, start_entry
from lightcls.ckpt import model_file
from lightcls.inference import load_predictor

KEY = "s3cret-key"


def call(
    port: int, path: str, body: bytes | None = None, headers: dict[str, str] | None = None, method: str = ""
) -> tuple[int, dict]:
    """(status, JSON answer) of one request to the server on 127.0.0.1:`port`, the key sent unless
    `headers` say otherwise; a body the server refuses before reading it all still gets its answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        # a body refused (413) before it is all sent: the answer is read all the same
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.request(
                method or ("POST" if body is not None else "GET"),
                path,
                body=body,
                headers={"X-API-Key": KEY, **(headers or {})},
            )
        answer = connection.getresponse()
        status, text = answer.status, answer.read()
    finally:
        connection.close()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, {"text": text.decode(errors="replace")}


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` (a few hundred bytes: a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "lightclsboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def wait_ready(server, port: int, patience: float = 90) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1][-3000:]
        try:
            if call(port, "/health", headers={"X-API-Key": ""})[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not answer /health in time")


@pytest.mark.slow
def test_a_served_model_answers_as_predict_refuses_bad_input_and_stops_on_sigterm(
    trained_run: Path, digits_root: Path, tmp_path: Path, request, subtests
) -> None:
    port = free_port()
    args = [f"ckpt_path={quoted(trained_run)}", f"port={port}", f"api_key={KEY}"]
    server = start_entry("serve", [*args, "max_body_mb=1", "max_pixels=1000000"], tmp_path)
    try:
        wait_ready(server, port)
        workers = psutil.Process(server.pid).children(recursive=True)
        predictor = load_predictor(model_file(trained_run))
        files = sorted((digits_root / "test_set").rglob("*.png"))[::9][:12]
        expected = {f: predictor.probabilities([predictor.to_tensor(f)])[0] for f in files}

        def same_as_predict(file: Path, answer: dict) -> None:
            assert answer["model"] == "lenet" and answer["task"] == "multiclass"
            top = answer["predictions"]
            assert [p["label"] for p in top] == expected[file].topk(3).indices.tolist()
            for p in top:
                assert p["class"] == predictor.classes[p["label"]]
                assert p["score"] == pytest.approx(float(expected[file][p["label"]]), abs=1e-5)

        with subtests.test("raw, multipart and base64 JSON bodies answer as lightcls-predict does"):
            for file in files[:4]:
                data = file.read_bytes()
                same_as_predict(file, call(port, "/predict", data, {"Content-Type": "image/png"})[1])
                body, kind = multipart("file", data)
                same_as_predict(file, call(port, "/predict", body, {"Content-Type": kind})[1])
                payload = json.dumps({"image": base64.b64encode(data).decode()}).encode()
                same_as_predict(
                    file, call(port, "/predict", payload, {"Content-Type": "application/json"})[1]
                )

        with subtests.test("16 concurrent clients: batched answers equal predict's"):
            jobs = [files[i % len(files)] for i in range(96)]
            with ThreadPoolExecutor(16) as pool:
                answers = list(
                    pool.map(
                        lambda f: call(port, "/predict", f.read_bytes(), {"Content-Type": "image/png"}), jobs
                    )
                )
            assert [status for status, _ in answers] == [200] * len(jobs)
            for file, (_, answer) in zip(jobs, answers, strict=True):
                same_as_predict(file, answer)

        good = files[0].read_bytes()
        truncated = good[: len(good) // 2]
        big, _ = multipart("file", b"\0" * (1024 * 1024 + 10))
        hostile = [
            (
                "not an image",
                b"hello, world",
                "image/png",
                400,
                "not an image: Pillow cannot identify its format",
            ),
            ("truncated", truncated, "image/png", 400, "the image: cannot decode image"),
            ("empty body", b"", "image/png", 400, "empty image: the request carried no image bytes"),
            ("wrong content type", good, "text/plain", 415, "Content-Type text/plain: send the image itself"),
            (
                "a bomb over Pillow's limit",
                png_header(20000, 20000),
                "image/png",
                413,
                "image refused: Image size",
            ),
            (
                "over max_pixels",
                png_header(1200, 1000),
                "image/png",
                413,
                "image is 1200x1000 (1,200,000 pixels)",
            ),
            ("over max_body_mb", b"\0" * (1024 * 1024 + 10), "image/png", 413, "body over max_body_mb=1"),
            (
                "a form over max_body_mb",
                big,
                "multipart/form-data; boundary=lightclsboundary",
                413,
                "body over",
            ),
            ("bad base64", b'{"image": "%%%not base64"}', "application/json", 400, "image: not valid base64"),
            ("JSON without an image", b'{"picture": 1}', "application/json", 400, 'JSON body: give {"image"'),
            ("not JSON", b"{oops", "application/json", 400, "body is not valid JSON"),
            (
                "a form without 'file'",
                multipart("photo", good)[0],
                "multipart/form-data; boundary=lightclsboundary",
                400,
                "multipart body: no file in field 'file'",
            ),
        ]
        for name, body, kind, status, reason in hostile:
            with subtests.test(f"{name}: {status}, and the next good request succeeds"):
                answer = call(port, "/predict", body, {"Content-Type": kind})
                assert answer[0] == status and answer[1]["detail"].startswith(reason), answer
                assert "\n" not in answer[1]["detail"]
                assert call(port, "/predict", good, {"Content-Type": "image/png"})[0] == 200

        with subtests.test("a body streamed without a length is cut off at max_body_mb"):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            chunks = iter([b"\0" * 65536] * 20)
            headers = {"Content-Type": "image/png", "X-API-Key": KEY}
            connection.request("POST", "/predict", body=chunks, headers=headers, encode_chunked=True)
            answer = connection.getresponse()
            assert answer.status == 413 and "max_body_mb" in json.loads(answer.read())["detail"]
            connection.close()

        with subtests.test("an unknown path is 404, a wrong method 405, both JSON"):
            assert call(port, "/nothing", good, {"Content-Type": "image/png"})[0] == 404
            status, answer = call(port, "/predict")
            assert status == 405 and answer["detail"] == "Method Not Allowed"

        with subtests.test("api_key: 401 without it on every route but /health; either header works"):
            for path in ("/predict", "/info", "/", "/docs", "/openapi.json"):
                status, answer = call(port, path, headers={"X-API-Key": ""})
                assert status == 401 and answer["detail"].startswith("API key required"), (path, answer)
            assert call(port, "/predict", good, {"Content-Type": "image/png", "X-API-Key": "wrong"})[0] == 401
            bearer = {"X-API-Key": "", "Authorization": f"Bearer {KEY}", "Content-Type": "image/png"}
            assert call(port, "/predict", good, bearer)[0] == 200
            assert call(port, "/health", headers={"X-API-Key": ""})[0] == 200

        with subtests.test("/info: classes, input and provenance, no server path but the file name"):
            status, info = call(port, "/info")
            model = info["model"]
            assert status == 200 and model["classes"] == predictor.classes and model["name"] == "lenet"
            assert model["input"]["image_size"] == 32 and model["trained"]["data"] == "digits"
            assert model["file"] == model_file(trained_run).name
            assert str(tmp_path.parent) not in json.dumps(info) and str(digits_root) not in json.dumps(info)

        with subtests.test("not reachable on a non-loopback address"):
            addresses = [
                a.address
                for links in psutil.net_if_addrs().values()
                for a in links
                if a.family == socket.AF_INET and not a.address.startswith("127.")
            ]
            if not addresses:
                pytest.skip("this machine has no non-loopback IPv4 address")
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((addresses[0], port), timeout=5).close()

        with subtests.test("the page: a person picks an image and sees its class"):
            browser = request.getfixturevalue("browser")
            from selenium.webdriver.support.ui import WebDriverWait

            browser.get(f"http://127.0.0.1:{port}/?key={KEY}")
            file = files[1]
            browser.find_element("id", "file").send_keys(str(file))
            shown = WebDriverWait(browser, 20).until(
                lambda b: (
                    b.find_elements("css selector", "#result td.cls") or b.find_element("id", "error").text
                )
            )
            assert not isinstance(shown, str), shown
            assert shown[0].text == predictor.classes[int(expected[file].argmax())]
            about = browser.find_element("id", "about").text
            assert about.startswith("lenet, multiclass: 10 classes, 32x32 grayscale input"), about
            requests = browser.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)"
            )
            assert all(r.startswith((f"http://127.0.0.1:{port}/", "blob:")) for r in requests), requests

        with subtests.test("SIGTERM stops the server and its workers within seconds"):
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=20)
            assert code == 0 and time.monotonic() - started < 10, server.communicate()[1][-3000:]
            assert psutil.wait_procs(workers, timeout=5)[1] == []
    finally:  # a failed test leaves no server behind: its web server, model worker and queue manager too
        if server.poll() is None:
            for process in [*psutil.Process(server.pid).children(recursive=True), server]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
            server.wait()
    out, err = server.communicate()
    assert f"ready at http://127.0.0.1:{port}/" in out
    assert "Traceback" not in err, err[-3000:]


def test_serve_mistakes_are_one_line_before_anything_starts(trained_run: Path, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = refused_in_process("serve", [f"ckpt_path={quoted(trained_run)}", f"port={port}"], capsys)
        assert_refused(refused, f"port={port}: 127.0.0.1:{port} is in use; choose another port=")
    refused = refused_in_process("serve", [f"ckpt_path={quoted(trained_run)}", "host=10.0.0.7"], capsys)
    assert_refused(refused, "host=10.0.0.7: choose one of 127.0.0.1, 0.0.0.0, ::")
    refused = refused_in_process("serve", ["ckpt_path=/no/such/model.ckpt"], capsys)
    assert_refused(refused, "ckpt_path=/no/such/model.ckpt: no such file (or run or sweep dir)")
    refused = refused_in_process("serve", [f"ckpt_path={quoted(trained_run)}", "max_batch_size=0"], capsys)
    assert_refused(refused, "max_batch_size=0: give a whole number >= 1")


def test_an_image_reader_refuses_a_bomb_from_its_header_alone() -> None:
    from fastapi import HTTPException

    from lightcls.data.preprocess import Preprocess
    from lightcls.inference.serving import ImageReader

    reader = ImageReader(Preprocess(32, 3, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), max_pixels=10_000)
    with pytest.raises(HTTPException) as refused:
        reader.decode(png_header(101, 100))
    assert refused.value.status_code == 413
    image = io.BytesIO()
    Image.new("RGB", (100, 50), (200, 10, 10)).save(image, format="PNG")
    assert reader.decode(image.getvalue()).shape == (3, 32, 32)


def test_an_exported_onnx_is_served_as_predict_scores_it_and_a_broken_one_is_one_line(
    exported_onnx: Path, digits_root: Path, tmp_path: Path
) -> None:
    from helpers import compose_task, one_line_error
    from lightcls.inference.serving import ClassifierAPI, ImageReader, build_server, model_card
    from lightcls.tasks.serve import serve

    _, info = model_card(exported_onnx)
    assert info["file"] == "model.onnx" and info["trained"]["data"] == "digits"
    predictor = load_predictor(exported_onnx)
    reader = ImageReader(predictor.preprocess, max_pixels=10**7)
    api = ClassifierAPI(str(exported_onnx), topk=2)
    api.setup("cpu")
    files = sorted((digits_root / "test_set").rglob("*.png"))[:5]
    answers = api.predict(api.batch([reader.decode(f.read_bytes()) for f in files]))
    for file, answer in zip(files, answers, strict=True):
        expected = predictor.probabilities([predictor.to_tensor(file)])[0]
        assert [p["label"] for p in answer["predictions"]] == expected.topk(2).indices.tolist()
        assert answer["predictions"][0]["score"] == pytest.approx(float(expected.max()), abs=1e-5)
    assert build_server(exported_onnx).model_metadata == info
    api.min_score = 0.99  # an answer below it says so; the classes stay listed
    doubtful = api.predict(api.batch([reader.decode(f.read_bytes()) for f in files]))
    assert [a["unknown"] for a in doubtful] == [a["predictions"][0]["score"] < 0.99 for a in answers]
    assert any(a["unknown"] for a in doubtful) and "unknown" not in answers[0]

    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not a model")
    message = one_line_error(serve, compose_task("serve", [f"ckpt_path={quoted(broken)}"], tmp_path))
    assert message == f"ckpt_path={broken}: no model.json beside it (lightcls-export writes one)"
    (tmp_path / "model.json").write_text(exported_onnx.with_suffix(".json").read_text())
    message = one_line_error(serve, compose_task("serve", [f"ckpt_path={quoted(broken)}"], tmp_path))
    assert message == f"ckpt_path={broken}: ONNX Runtime cannot load it"


def test_a_multilabel_answer_lists_each_label_over_its_threshold_then_the_top_k() -> None:
    import torch

    from lightcls.inference import results_from_probs
    from lightcls.inference.serving import ClassifierAPI

    api = ClassifierAPI("unused.ckpt", topk=2)
    api.name, api.task = "resnet18", "multilabel"
    result = results_from_probs(torch.tensor([[0.9, 0.2, 0.7]]), ["cat", "dog", "sky"], 2, [0.5, 0.1, 0.8])[0]
    answer = api.answer(result)
    assert [p["class"] for p in answer["predictions"]] == ["cat", "dog"]  # sky's 0.7 is under its 0.8
    assert [p["class"] for p in answer["topk"]] == ["cat", "sky"] and answer["task"] == "multilabel"
