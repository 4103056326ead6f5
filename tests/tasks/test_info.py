"""lightcls-info: parameters and FLOPs of a backbone or checkpoint; a published checkpoint still works."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from helpers import compose_task, one_line_error, quoted
from lightcls.inference import CheckpointPredictor
from lightcls.tasks import evaluate, info


def test_named_backbone_counts(tmp_path: Path) -> None:
    facts = info(compose_task("info", ["model=resnet18"], tmp_path))
    assert facts["params"] == 11_689_512  # torchvision's resnet18 at 1000 classes
    assert abs(facts["macs"] / 1e9 - 1.82) < 0.02  # mmpretrain: 1.82 G (it also counts norms, activations)
    assert facts["flops"] == 2 * facts["macs"]


def test_checkpoint_facts_and_publish(trained_run: Path, digits_root: Path, tmp_path: Path, capsys) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    info(compose_task("info", [f"ckpt_path={quoted(ckpt)}", "publish=true", f"save_dir={tmp_path}/pub"]))
    shown = capsys.readouterr().out
    assert "61,706" in shown and "1 x 32 x 32" in shown
    (published,) = (tmp_path / "pub").glob("last-*.ckpt")
    assert published.stem == f"last-{hashlib.sha256(published.read_bytes()).hexdigest()[:8]}"
    slim = torch.load(published, weights_only=True)
    assert "optimizer_states" not in slim and "hyper_parameters" in slim
    assert published.stat().st_size < ckpt.stat().st_size

    batch = torch.randn(4, 1, 32, 32)
    torch.testing.assert_close(
        CheckpointPredictor(published).logits(batch), CheckpointPredictor(ckpt).logits(batch)
    )

    # the published copy still knows its data set: it evaluates alone, as the full checkpoint does
    reports = [
        evaluate(compose_task("eval", [f"ckpt_path={quoted(c)}"], tmp_path / name))
        for c, name in ((published, "published"), (ckpt, "full"))
    ]
    assert reports[0]["top1"] == reports[1]["top1"] and reports[0]["num_images"] == 270


def test_a_non_square_size_is_one_line(tmp_path: Path) -> None:
    cfg = compose_task("info", ["model=resnet18", "image_size=[224,160]"], tmp_path)
    assert one_line_error(info, cfg) == "image_size=[224, 160]: give a whole number >= 1 (or null)"


def test_lightcls_info_models_lists_the_zoo(tmp_path: Path, capsys, monkeypatch) -> None:
    from unittest import mock

    monkeypatch.setenv("COLUMNS", "150")
    from lightcls.cli import main

    with (
        mock.patch.object(main, "_info", lambda: list(main.sys.argv)),
        mock.patch.object(main.sys, "argv", ["lightcls-info", "models", "family=vit"]),
    ):
        assert main.info() == ["lightcls-info", "list=models", "family=vit"]
    facts = info(compose_task("info", ["list=models", "family=vit", "image_size=32"], tmp_path))
    rows = {row["model"]: row for row in facts["models"]}
    assert sorted(rows) == ["vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32"]
    assert rows["vit_h_14"]["flops"] is None and rows["vit_b_32"]["flops"] > 0  # 32 is no multiple of 14
    shown = capsys.readouterr().out
    assert "lightcls models: 5" in shown and "14+ x14" in shown and "IMAGENET1K_SWAG_E2E_V1" in shown
    assert (tmp_path / "models.json").is_file() or list(tmp_path.rglob("models.json"))
    cfg = compose_task("info", ["list=models", "family=resnets"], tmp_path)
    assert one_line_error(info, cfg).startswith("family=resnets: not a model family; choose one of lenet, ")
