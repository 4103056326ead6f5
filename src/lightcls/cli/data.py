"""`lightcls-data check|split ...`: the dataset doctor and the splitter on the command line (key=value)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lightcls.errors import LightclsError, machine_refusal

USAGE = (
    "usage: lightcls-data check data.root=PATH [data.val_fraction=0.15 data.split_seed=0 cache=true "
    "data.train_list=FILE data.val_list=FILE data.test_list=FILE]"
)
KEYS = "data.root, data.val_fraction, data.split_seed, data.train_list, data.val_list, data.test_list, "
KEYS += "data.label_delim, cache"


@dataclass
class _Data:
    root: str | None = None
    val_fraction: float = 0.15
    split_seed: int = 0
    train_list: str | None = None
    val_list: str | None = None
    test_list: str | None = None
    label_delim: str | None = None


@dataclass
class CheckArgs:
    """`lightcls-data check` arguments (typed: OmegaConf refuses `data.val_fraction=abc` in one line)."""

    data: _Data = field(default_factory=_Data)
    cache: bool = True


SPLIT_USAGE = "usage: lightcls-data split SRC=DIR DST=DIR [val=0.15 test=0.15 seed=0 mode=copy|link|symlink]"
SPLIT_KEYS = "SRC, DST, val, test, seed, mode"


@dataclass
class SplitArgs:
    """`lightcls-data split` arguments."""

    SRC: str | None = None
    DST: str | None = None
    val: float = 0.15
    test: float = 0.15
    seed: int = 0
    mode: str = "copy"


PACK_USAGE = (
    "usage: lightcls-data pack SRC=DIR DST=DIR_OR_URL [shard_size=1000 short_side=256 seed=0 workers=N]"
)
PACK_KEYS = "SRC, DST, shard_size, short_side, seed, val_fraction, split_seed, workers"


@dataclass
class PackArgs:
    """`lightcls-data pack` arguments."""

    SRC: str | None = None
    DST: str | None = None
    shard_size: int = 1000
    short_side: int = 256
    seed: int = 0
    val_fraction: float = 0.15
    split_seed: int = 0
    workers: int | None = None


def _parse(argv: list[str], defaults: type, keys: str, usage: str) -> DictConfig:
    """`key=value` arguments merged over the `defaults` dataclass; an unknown key or bad value: one line."""
    cfg = OmegaConf.structured(defaults)
    for arg in argv:
        key = arg.partition("=")[0]
        if "=" not in arg or OmegaConf.select(cfg, key, default="missing") == "missing":
            raise LightclsError(f"unknown argument {arg!r}; valid keys: {keys}")
    try:
        cfg.merge_with_dotlist(argv)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        raise LightclsError(f"{key + ': ' if key else ''}{str(err).splitlines()[0]}; {usage}") from None
    return cfg


def check(argv: list[str]) -> int:
    """Check the data set named by `data.root=...`; print the findings; 1 when training would be wrong."""
    cfg = _parse(argv, CheckArgs, KEYS, USAGE)
    if not cfg.data.root:
        raise LightclsError(f"data.root is required; {USAGE}")
    from lightcls.data.check import check_dataset, print_findings  # torch: after the arguments are sound

    data = cfg.data
    lists = {split: data[f"{split}_list"] for split in ("train", "val", "test")}
    findings = check_dataset(
        data.root,
        data.val_fraction,
        data.split_seed,
        cache=cfg.cache,
        lists=lists,
        label_delim=data.label_delim,
    )
    print_findings(findings)
    return 0 if findings.ok else 1


def split(argv: list[str]) -> int:
    """Split the class folders of `SRC=...` into the split-folder layout at `DST=...`; print the counts."""
    cfg = _parse(argv, SplitArgs, SPLIT_KEYS, SPLIT_USAGE)
    for key in ("SRC", "DST"):
        if cfg[key] is None or str(cfg[key]) == "":
            raise LightclsError(f"{key} is required; {SPLIT_USAGE}")
    from rich.console import Console  # after the arguments are sound: a mistake is reported at once
    from rich.table import Table

    from lightcls.data.split import split_folders

    counts = split_folders(str(cfg.SRC), str(cfg.DST), cfg.val, cfg.test, cfg.seed, cfg.mode)
    table = Table(title="images per split")
    for column in ("class", *counts):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name in counts["train"]:
        table.add_row(name, *(str(counts[s][name]) for s in counts))
    table.add_row("total", *(str(sum(counts[s].values())) for s in counts), style="bold")
    console = Console()
    console.print(table)
    done = f"wrote {cfg.DST} from {cfg.SRC} ({cfg.mode}, seed {cfg.seed}); "
    done += f"check it: lightcls-data check data.root={cfg.DST}"
    console.print(done, highlight=False, soft_wrap=True)
    return 0


def pack(argv: list[str]) -> int:
    """Pack the split folder `SRC=...` into shards at `DST=...` (a folder or URL); print what it wrote."""
    cfg = _parse(argv, PackArgs, PACK_KEYS, PACK_USAGE)
    for key in ("SRC", "DST"):
        if cfg[key] is None or str(cfg[key]) == "":
            raise LightclsError(f"{key} is required; {PACK_USAGE}")
    import os

    from lightcls.data.shards import pack as pack_shards

    workers = cfg.workers if cfg.workers is not None else min(os.cpu_count() or 1, 8)
    summary = pack_shards(
        str(cfg.SRC),
        str(cfg.DST),
        cfg.shard_size,
        cfg.short_side,
        cfg.seed,
        cfg.val_fraction,
        cfg.split_seed,
        workers,
    )
    counts = ", ".join(
        f"{split} {n} images in {summary['shards'][split]} shards" for split, n in summary["splits"].items()
    )
    print(f"wrote {summary['root']}: {counts}; train with data=streaming data.root={summary['root']}")
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of `lightcls-data`."""
    args = sys.argv[1:] if argv is None else argv
    commands = {"check": check, "split": split, "pack": pack}
    usage = "\n       ".join([USAGE, *(u.removeprefix("usage: ") for u in (SPLIT_USAGE, PACK_USAGE))])
    if args and args[0] in ("-h", "--help"):
        print(usage)
        sys.exit(0)
    if not args or args[0] not in commands:
        problem = f"unknown command {args[0]!r}; " if args else ""
        print(f"error: {problem}{usage}", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(commands[args[0]](args[1:]))
    except LightclsError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:
        if machine_refusal(err) is None:
            raise
        print(f"error: {machine_refusal(err)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: Ctrl-C", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
