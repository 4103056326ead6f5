"""A training run's start: the line that says the effective optimization settings and where each came from."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from lightcls.config import config_dir
from lightcls.workflows.training import settings_line


def _line(overrides: list[str]) -> str:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides, return_hydra_config=True)  # as the command line composes it
    return settings_line(cfg, overrides, cfg.hydra.runtime.choices)


def test_the_start_of_run_line_names_each_setting_and_its_source() -> None:
    assert _line(["model=resnet18"]) == (
        "optimizer adamw, lr 0.001, wd 0.05 (model=resnet18: the resnet family's default); schedule cosine "
        "over 10 epochs (the default); batch 64 (data=digits)"
    )
    assert _line(["model=resnet18", "optimizer.lr=0.01", "data.batch_size=16"]) == (
        "optimizer adamw (model=resnet18: the resnet family's default); lr 0.01; wd 0.05 (model=resnet18: "
        "the resnet family's default); schedule cosine over 10 epochs (the default); batch 16"
    )
    assert "schedule cosine over 1 epoch (the default)" in _line(["trainer.max_epochs=1"])
    assert _line(["model=resnet50", "optimizer=sgd", "scheduler=warmup_cosine"]) == (
        "optimizer sgd; lr 0.01 (model=resnet50's sgd lr); wd 0.0001 (optimizer=sgd's default); "
        "schedule warmup_cosine over 10 epochs, warmup 1; batch 64 (data=digits)"
    )
    assert _line(["model=vit_b_32"]).startswith(
        "optimizer adamw, lr 0.001, wd 0.05 (model=vit_b_32: the vit family's default); "
    )


def test_a_run_started_from_python_names_values_without_guessing_their_source() -> None:
    from helpers import compose_train

    assert settings_line(compose_train(["model=resnet18", "data.batch_size=16"])) == (
        "optimizer adamw, lr 0.001, wd 0.05; schedule CosineAnnealingLR over 10 epochs, batch 16"
    )
