"""report.html: one self-contained page per run, checked in a real headless Chromium."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from helpers import compose_train, quoted
from lightcls.workflows.page import build_report


@pytest.mark.slow
def test_a_training_runs_report_renders_with_every_image_and_no_request_out(
    trained_run: Path, tmp_path: Path, browser
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)  # the report adds eval/ and report.html to the run dir
    page = build_report(run)
    assert page == run / "report.html" and (run / "eval" / "eval.json").is_file()

    browser.set_window_size(1200, 900)
    browser.get(page.as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
    )
    assert len(images) >= 5 and all(done and width > 0 for _, done, width in images), images
    alts = [alt for alt, _, _ in images]
    assert {"loss", "top-1", "confusion matrix"} <= set(alts)  # curves from TensorBoard, the matrix
    assert {"reliability diagram", "risk-coverage curve"} <= set(alts)  # how far the scores can be trusted
    assert any(alt.startswith("mistakes of ") for alt in alts) and any("predicted" in alt for alt in alts)
    requests = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(r.startswith(("data:", "file:")) for r in requests), requests
    rows = browser.execute_script("return document.querySelectorAll('#per-class tr').length")
    assert rows == 1 + 10  # header + the ten digits
    assert "FLOPs per image" in browser.find_element("id", "model").text
    assert "model:" in browser.find_element("id", "settings").text
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1200, min(height + 100, 8000))
    assert browser.save_screenshot(str(tmp_path / "report.png"))
    print(f"screenshot: {tmp_path / 'report.png'}")


def test_a_run_without_a_test_split_reports_its_val_split(
    make_split_folder, tmp_path: Path, monkeypatch
) -> None:
    from lightcls.tasks import train
    from lightcls.workflows import page

    def predicted_again(*_: object) -> None:
        raise AssertionError("the val split was predicted again: the best validation's predictions were kept")

    monkeypatch.setattr(page, "evaluate_checkpoint", predicted_again)
    root = make_split_folder(per_class={"training_set": 4, "val_set": 2})
    args = [f"data.root={root}", "data=folder", "data.image_size=16", "trainer=cpu"]  # num_workers=auto
    run = tmp_path / "run"
    metrics = train(compose_train([*args, "trainer.max_epochs=2", "logger=none"], run, report=True))
    assert json.loads((run / "eval" / "eval.json").read_text())["top1"] == pytest.approx(
        metrics["best_val_top1"]
    )
    assert metrics["test_top1"] is None and not (run / "tensorboard").exists()  # curves from metrics.csv
    evaluation = json.loads((run / "eval" / "eval.json").read_text())
    assert evaluation["split"] == "val" and evaluation["num_images"] == 6  # 2 a class
    assert evaluation["ckpt"] == str(run / metrics["best_ckpt"])
    page = (run / "report.html").read_text()
    assert "Per class (val split, 6 images)" in page and 'alt="loss"' in page


def test_a_continued_run_reports_its_new_checkpoint_not_the_old_eval(
    make_split_folder, tmp_path: Path
) -> None:
    from lightcls.tasks import train

    root = make_split_folder()
    args = [f"data.root={root}", "data=folder", "data.image_size=16", "data.num_workers=0", "trainer=cpu"]
    args += [
        "callbacks.model_checkpoint.monitor=null",
        "callbacks.model_checkpoint.save_top_k=0",
    ]  # last only
    run, last = tmp_path / "run", tmp_path / "run" / "checkpoints" / "last.ckpt"
    train(compose_train([*args, "trainer.max_epochs=1"], run, report=True))
    done = run / "eval" / "eval.json"
    done.write_text(json.dumps({**json.loads(done.read_text()), "top1": -1.0}))  # marks the first run's eval
    (run / "eval" / "gallery" / "wrong_gone.png").write_bytes(b"")
    metrics = train(compose_train([*args, "trainer.max_epochs=2", f"ckpt_path={quoted(last)}"], run))
    assert metrics["epochs"] == 2 and not (run / "report.html").stat().st_mtime > last.stat().st_mtime
    build_report(run)  # lightcls-report RUN_DIR after a continued run that wrote no report
    evaluation = json.loads(done.read_text())
    assert evaluation["ckpt"] == str(last) and evaluation["top1"] == pytest.approx(metrics["test_top1"])
    assert not (run / "eval" / "gallery" / "wrong_gone.png").exists()


def test_a_limited_test_reports_the_images_it_tested(make_split_folder, tmp_path: Path) -> None:
    from lightcls.tasks import train

    root = make_split_folder()  # 2 test images a class, in class order
    args = [f"data.root={root}", "data=folder", "data.image_size=16", "data.num_workers=0", "trainer=cpu"]
    args += ["trainer.max_epochs=1", "data.batch_size=4", "trainer.limit_test_batches=1"]
    metrics = train(compose_train(args, tmp_path / "run", report=True))
    assert metrics["test_images"] == 4
    with (tmp_path / "run" / "eval" / "predictions.csv").open() as f:
        files = [row["file"] for row in csv.DictReader(f)]
    assert files == [
        f"test_set/{n}"
        for n in ("paper/paper00.png", "paper/paper01.png", "rock/rock00.png", "rock/rock01.png")
    ]


def test_a_page_that_cannot_be_written_is_a_warning_and_the_run_stands(
    make_split_folder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from lightcls.tasks import train

    root = make_split_folder()
    args = [f"data.root={root}", "data=folder", "data.image_size=16", "data.num_workers=0", "trainer=cpu"]
    run = tmp_path / "run"
    (run / "report.html").mkdir(parents=True)  # in the page's way
    with caplog.at_level(logging.WARNING):
        metrics = train(compose_train([*args, "trainer.max_epochs=1"], run, report=True))
    assert metrics["epochs"] == 1 and json.loads((run / "metrics.json").read_text()) == metrics
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("report.html not written")]
    assert "Is a directory" in line and line.endswith(f"(`lightcls-report {run}` tries again)")
