"""lightcls-serve under load: requests/s and latency with dynamic batching against one request at a time,
every answer checked against lightcls-predict's, and a soak that watches the server's memory.

    python benchmarks/serve_load.py                        # trains resnet18 on the embedded digits first
    python benchmarks/serve_load.py --ckpt RUN_OR_CKPT --requests 2000 --clients 16 --repeats 3 --soak 20000

The server is the real `lightcls-serve` on a loopback port (one web server process, one model worker);
the clients are threads in this process, each on its own keep-alive connection, sending the test split's
PNGs of scikit-learn's digits as raw `image/png` bodies, round robin. Each answer's top label is compared
with the label `lightcls-predict` gives the same file. The modes run alternately, `--repeats` times each,
one server start per run; the table shows medians. RSS is the server's whole process tree (the command,
its web server, model worker and LitServe's queue manager), after a warm-up and after the load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}


def train(out: Path, epochs: int) -> Path:
    """resnet18 on the embedded digits (the default data set), `epochs` epochs: its run dir."""
    run = out / "resnet18"
    command = [sys.executable, str(REPO / "train.py"), "model=resnet18", f"trainer.max_epochs={epochs}"]
    command += ["report=false", f"hydra.run.dir={run}", f"paths.outputs_root={out}"]
    subprocess.run(command, check=True, cwd=out, env=ENV, capture_output=True)
    return run


def predict_labels(ckpt: Path, images: Path, out: Path) -> dict[str, int]:
    """`lightcls-predict`'s label for each file under `images`."""
    command = [sys.executable, "-c", "from lightcls.cli.main import predict; predict()"]
    command += [f"ckpt_path={ckpt}", f"input={images}", f"save_dir={out}", f"paths.outputs_root={out}"]
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(command, check=True, cwd=out, env=ENV, capture_output=True)
    results = json.loads((out / "predictions.json").read_text())["results"]
    return {r["file"]: r["pred_label"] for r in results}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(ckpt: Path, out: Path, max_batch_size: int, extra: list[str] = ()) -> tuple[subprocess.Popen, int]:
    """A `lightcls-serve` process and its port, once /health answers."""
    port = free_port()
    command = [sys.executable, "-c", "from lightcls.cli.main import serve; serve()", f"ckpt_path={ckpt}"]
    command += [f"port={port}", f"max_batch_size={max_batch_size}", f"paths.outputs_root={out}", *extra]
    server = subprocess.Popen(command, cwd=out, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server ended: {server.stderr.read().decode()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return server, port
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not answer /health in 120 s")


def stop(server: subprocess.Popen) -> float:
    """SIGTERM; seconds until the process ended."""
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    return time.monotonic() - started


def rss_mb(pid: int) -> float:
    """Resident memory (MB) of a process and all its descendants."""
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def load(port: int, bodies: list[tuple[str, bytes]], expected: dict[str, int], n: int, clients: int) -> dict:
    """`n` requests from `clients` threads: requests/s, latency percentiles (ms), errors, wrong answers."""
    latencies: list[float] = []
    errors, wrong = [0], [0]
    lock = threading.Lock()

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, bad, miss = [], 0, 0
        for i in range(index, n, clients):
            name, body = bodies[i % len(bodies)]
            began = time.perf_counter()
            try:
                connection.request("POST", "/predict", body=body, headers={"Content-Type": "image/png"})
                answer = connection.getresponse()
                data = answer.read()
            except OSError:
                bad += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            mine.append(time.perf_counter() - began)
            if answer.status != 200:
                bad += 1
            elif json.loads(data)["predictions"][0]["label"] != expected[name]:
                miss += 1
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad
            wrong[0] += miss

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    return {
        "requests": n,
        "per_s": n / seconds,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "errors": errors[0],
        "wrong": wrong[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, help="a checkpoint or run dir (default: train resnet18 first)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the resnet18 trained without --ckpt")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 1], help="max_batch_size per mode")
    parser.add_argument("--soak", type=int, default=20000, help="requests of the soak (0: none)")
    parser.add_argument("--serve-args", nargs="*", default=[], help="more lightcls-serve overrides")
    args = parser.parse_args()

    from lightcls.ckpt import model_file
    from lightcls.data.digits import write_digits

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        ckpt = model_file(args.ckpt.resolve() if args.ckpt else train(out, args.epochs))
        write_digits(out / "digits")
        images = sorted((out / "digits" / "test_set").rglob("*.png"))
        expected = predict_labels(ckpt, out / "digits" / "test_set", out / "predict")
        bodies = [(str(f.resolve()), f.read_bytes()) for f in images]
        print(f"{ckpt}: {len(images)} test images, {args.clients} clients, {args.requests} requests a run")

        rows: dict[int, list[dict]] = {b: [] for b in args.batch_sizes}
        for rep in range(args.repeats):
            for size in (
                args.batch_sizes[rep % len(args.batch_sizes) :]
                + args.batch_sizes[: rep % len(args.batch_sizes)]
            ):
                server, port = start(ckpt, out, size, args.serve_args)
                load(port, bodies, expected, 100, args.clients)  # warm-up
                before = rss_mb(server.pid)
                row = load(port, bodies, expected, args.requests, args.clients)
                row.update(rss_before=before, rss_after=rss_mb(server.pid), stop_s=stop(server))
                rows[size].append(row)
                shown = json.dumps({k: round(v, 1) for k, v in row.items()})
                print(f"  max_batch_size={size} run {rep + 1}: {shown}")

        print("\n| max_batch_size | requests/s | p50 ms | p95 ms | p99 ms | errors | wrong | stop s |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        medians = {}
        for size, runs in rows.items():
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            medians[size] = med
            errors, wrong = sum(r["errors"] for r in runs), sum(r["wrong"] for r in runs)
            print(
                f"| {size} | {med['per_s']:.0f} | {med['p50']:.1f} | {med['p95']:.1f} | {med['p99']:.1f} | "
                f"{errors} | {wrong} | {med['stop_s']:.1f} |"
            )
        if len(medians) > 1:
            first, *rest = args.batch_sizes
            for size in rest:
                ratio = statistics.median(
                    a["per_s"] / b["per_s"] for a, b in zip(rows[first], rows[size], strict=False)
                )
                print(f"\nrequests/s, max_batch_size={first} / {size}: {ratio:.2f}x (median of runs' ratios)")

        if args.soak:
            server, port = start(ckpt, out, args.batch_sizes[0], args.serve_args)
            load(port, bodies, expected, 500, args.clients)
            marks = [(0, rss_mb(server.pid))]
            errors = wrong = 0
            step = max(1, args.soak // 4)
            for done in range(step, args.soak + 1, step):
                row = load(port, bodies, expected, step, args.clients)
                errors, wrong = errors + row["errors"], wrong + row["wrong"]
                marks.append((done, rss_mb(server.pid)))
            stop(server)
            print(
                f"\nsoak: {args.soak} requests, batch {args.batch_sizes[0]}: {errors} errors, {wrong} wrong"
            )
            print("| requests | server RSS MB |\n| ---: | ---: |")
            for done, mb in marks:
                print(f"| {done} | {mb:.0f} |")
            print(f"growth: {marks[-1][1] - marks[0][1]:+.1f} MB")


if __name__ == "__main__":
    main()
