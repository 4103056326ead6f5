"""Write conf/model/NAME.yaml for every model in lightcls.models.zoo, and a family base
conf/base/family/FAMILY.yaml where one is missing (those are edited by hand: a family's optimizer).

    python tools/model_configs.py        # `make model-configs`; tests/models/test_zoo.py checks it was run
"""

from __future__ import annotations

from pathlib import Path

from lightcls.config import config_dir
from lightcls.models.registry import model_lines
from lightcls.models.zoo import FAMILIES, family_of, zoo_names


def model_config(name: str, line: str) -> str:
    """conf/model/NAME.yaml: the family base and the name."""
    family = family_of(name).name
    return (
        "# @package _global_\n"
        f"# {name}: {line}\n"
        f"# written by tools/model_configs.py; a family's settings are in conf/base/family/{family}.yaml\n"
        "defaults:\n"
        f"  - /base/family/{family}\n"
        "  - _self_\n"
        "\n"
        "model:\n"
        f"  name: {name}\n"
    )


def family_config(title: str) -> str:
    """A new family base: the model keys and the optimizer (AdamW until measured otherwise)."""
    return (
        "# @package _global_\n"
        f"# {title}: what every model of the family starts from\n"
        "defaults:\n"
        "  - /base/model@model\n"
        "  - override /optimizer: adamw\n"
        "  - _self_\n"
    )


def write(conf: Path) -> list[Path]:
    """Write the configs under `conf`; return the files written."""
    written = []
    lines = model_lines()
    for name in zoo_names():
        path = conf / "model" / f"{name}.yaml"
        text = model_config(name, lines[name])
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    for family in FAMILIES:
        path = conf / "base" / "family" / f"{family.name}.yaml"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(family_config(family.title), encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    for path in write(config_dir()):
        print(path)
