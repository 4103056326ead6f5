"""Every value of every command, fed wrong types and ranges, is one line naming its key before any work."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from helpers import one_line_error
from lightcls.config import compose
from lightcls.config.checks import check_command, check_composed
from lightcls.config.values import RULES, broken
from lightcls.workflows.checks import check_eval, check_export, check_search, check_train

#: values checked by the object or command that uses them (the DataModule, the optimizer, Lightning...)
CHECKED_ELSEWHERE = {
    "train": {
        "data.batch_size": "int:1",
        "data.image_size": "int:1",
        "data.num_workers": "int:0",
        "data.val_fraction": "number:0-<1",
        "data.channels": "choice:1|3",
        "data.cache": "choice:auto|true|false|disk",
        "data.balance": "choice:none|sampler|loss",
        "data.device_augment": "flag",
        "trainer.max_epochs": "int:1",
        "optimizer.lr": "number:>0",
        "optimizer.weight_decay": "number:>=0",
        "mixup": "number:>=0",
        "cutmix": "number:>=0",
        "scheduler.interval": "choice:epoch|step",
    },
    "eval": {"split": "choice:train|val|test", "gallery": "int:0", "report": "flag", "save_scores": "flag"},
    "export": {"format": "choice:onnx|torchscript", "fp16": "flag", "parity_images": "int:0"},
    "search": {"search.direction": "choice:maximize|minimize"},
}


def _wrong(rule: str) -> list[str]:
    """Values `rule` refuses: another type, and each side of its range."""
    kind, _, arg = rule.rstrip("?").partition(":")
    if kind == "flag":
        return ["abc", "2"]
    if kind == "choice":
        return ["nope"] + (["true"] if "true" not in arg.split("|") else [])
    if kind == "device":
        return ["tpu", "3"]
    if kind == "workers":
        return ["abc", "-1", "1.5"]
    values = ["abc", "true"]
    if kind == "int":
        low, _, high = arg.partition("-")
        values += ["1.5", str(int(low) - 1)] + ([str(int(high) + 1)] if high else [])
    else:  # number
        low = arg.lstrip(">=").partition("-")[0]
        values += ["0" if arg.startswith(">") and not arg.startswith(">=") else str(float(low) - 0.5)]
        if "-" in arg:
            high = arg.partition("-")[2].lstrip("<")
            values.append(high if "<" in arg else str(float(high) + 0.5))
    return values


def _cases(every_value: bool = True) -> list[tuple[str, str, str, str]]:
    """(command, key, rule, wrong value); without `every_value`, one wrong value for each RULES key (the
    rule's own function is checked on every value), and for the keys checked elsewhere a wrong type and
    a value out of range."""
    cases = []
    for command in (
        "train",
        "search",
        "eval",
        "predict",
        "explain",
        "export",
        "info",
        "serve",
        "index",
        "similar",
    ):
        elsewhere = CHECKED_ELSEWHERE.get(command, {})
        for key, rule in {**RULES.get(command, {}), **elsewhere}.items():
            wrong = _wrong(rule)
            values = wrong if every_value else [wrong[0], wrong[-1]] if key in elsewhere else wrong[-1:]
            cases += [(command, key, rule, value) for value in values]
    return cases


CASES = _cases()
#: what the commands are fed: set on each command's composed config, checked as the command checks
COMMAND_CASES = _cases(every_value=False)
TASK_CHECKS = {"train": check_train, "search": check_search, "eval": check_eval, "export": check_export}


def test_the_fuzz_covers_every_rule_with_values_each_rule_refuses() -> None:
    covered = {(command, key) for command, key, _, _ in CASES}
    assert {(c, k) for c, rules in RULES.items() for k in rules} <= covered
    for _, _, rule, value in CASES:  # the generated values are wrong by the rule's own reading
        parsed = {"abc": "abc", "true": True, "nope": "nope", "tpu": "tpu"}.get(value)
        if parsed is None:
            parsed = float(value) if "." in value else int(value)
        assert broken(parsed, rule) is not None, (rule, value)
    assert len(CASES) > 150


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, bool], DictConfig]:
    """Each command's config composed once (with `loss=asl` where asked): a case sets its one wrong value
    on a copy, as a command-line override would (Hydra's own parser reads the value)."""
    folder = tmp_path_factory.mktemp("values")
    ckpt = folder / "model.ckpt"
    ckpt.write_bytes(b"")
    required = {
        "eval": [f"ckpt_path={ckpt}"],
        "export": [f"ckpt_path={ckpt}"],
        "serve": [f"ckpt_path={ckpt}"],
        "predict": [f"ckpt_path={ckpt}", f"input={folder}"],
        "index": [f"ckpt_path={ckpt}", f"input={folder}"],
        "similar": [f"index={folder}", f"query={folder}"],
        "explain": [f"ckpt_path={ckpt}", f"input={folder}"],
        "train": [f"data.root={folder}"],
        "search": [f"data.root={folder}"],
    }
    configs: dict[tuple[str, bool], DictConfig] = {}

    def get(command: str, asl: bool) -> DictConfig:
        if (command, asl) not in configs:
            overrides = required.get(command, []) + (["loss=asl"] if asl else [])
            configs[command, asl] = compose(command, overrides)
        return configs[command, asl].copy()

    return get


@pytest.mark.parametrize(
    ("command", "key", "rule", "value"), COMMAND_CASES, ids=[f"{c}-{k}={v}" for c, k, _, v in COMMAND_CASES]
)
def test_a_wrong_value_is_one_line_naming_its_key(
    command: str, key: str, rule: str, value: str, composed: Callable[[str, bool], DictConfig]
) -> None:
    cfg = composed(command, key.startswith("loss.") and key != "loss.name")  # the asymmetric loss's keys
    OmegaConf.update(cfg, key, OverridesParser.create().parse_override(f"{key}={value}").value())
    message = one_line_error(check_composed, cfg, command, TASK_CHECKS.get(command))
    assert message.startswith(key), message
    assert "Traceback" not in message and "\n" not in message


def test_a_swept_wrong_value_is_found_before_the_first_job() -> None:
    message = one_line_error(check_command, "train", ["-m", "label_smoothing=0.1,2"], check_train)
    assert message == "label_smoothing=2: give a number from 0 to below 1"
