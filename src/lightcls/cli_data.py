"""`lightcls-data check data.root=PATH`: the dataset doctor's command line (key=value arguments)."""

from __future__ import annotations

import sys

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lightcls.errors import LightclsError

USAGE = "usage: lightcls-data check data.root=PATH [data.val_fraction=0.15 data.split_seed=0 cache=true]"
KEYS = "data.root, data.val_fraction, data.split_seed, cache"
DEFAULTS = {"data": {"root": None, "val_fraction": 0.15, "split_seed": 0}, "cache": True}


def check(argv: list[str]) -> int:
    """Check the data set named by `data.root=...`; print the report; 1 when training would be wrong."""
    from lightcls.data.check import check_dataset, print_report

    cfg = OmegaConf.create(DEFAULTS)
    OmegaConf.set_struct(cfg, True)
    for arg in argv:
        key = arg.partition("=")[0]
        if "=" not in arg or OmegaConf.select(cfg, key, default="missing") == "missing":
            raise LightclsError(f"unknown argument {arg!r}; valid keys: {KEYS}")
    try:
        cfg.merge_with_dotlist(argv)
    except OmegaConfBaseException as err:
        raise LightclsError(f"{str(err).splitlines()[0]}; {USAGE}") from None
    if not cfg.data.root:
        raise LightclsError(f"data.root is required; {USAGE}")
    report = check_dataset(cfg.data.root, cfg.data.val_fraction, cfg.data.split_seed, cache=cfg.cache)
    print_report(report)
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> None:
    """Entry point of `lightcls-data`."""
    args = sys.argv[1:] if argv is None else argv
    commands = {"check": check}
    if not args or args[0] not in commands:
        print(f"error: {USAGE}", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(commands[args[0]](args[1:]))
    except LightclsError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
