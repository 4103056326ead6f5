"""`lightcls-data split`: turn a plain tree of class folders into the split-folder layout (SPEC §1)."""

from __future__ import annotations

import logging
import os
import random
import shutil
from pathlib import Path

from lightcls.data.layout import IMAGE_SUFFIXES, split_sizes
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)

#: How files get into DST: copied (shutil.copy2), hard-linked (copied across filesystems), or symlinked.
MODES = ("copy", "link", "symlink")
#: Each split's folder in DST, and the listing written for it (train has none).
FOLDERS = {"train": "training_set", "val": "val_set", "test": "test_set"}
LISTINGS = {"val": "val.txt", "test": "test.txt"}


def split_folders(
    src: str | Path,
    dst: str | Path,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    mode: str = "copy",
) -> dict[str, dict[str, int]]:
    """Split SRC's class folders (stratified, seeded) into DST's split folders; images per split and class."""
    _check_args(val, test, seed, mode)
    src = Path(src).expanduser().resolve()
    dst = Path(dst).expanduser().resolve()
    sources = _read_source(src)
    _check_dst(src, dst)
    plan: dict[str, dict[str, list[Path]]] = {split: {} for split in FOLDERS}
    for name, files in sources.items():
        files = list(files)
        random.Random(f"{seed}/{name}").shuffle(files)  # per class: adding a class leaves the others alone
        n_val, n_test = split_sizes(len(files), val, test)
        plan["val"][name] = sorted(files[:n_val])
        plan["test"][name] = sorted(files[n_val : n_val + n_test])
        plan["train"][name] = sorted(files[n_val + n_test :])
    wanted = {"train": True, "val": val > 0, "test": test > 0}
    tmp = dst.parent / f".{dst.name}.tmp-{os.getpid()}"
    try:
        _write(plan, src, tmp, mode, wanted)
        if dst.exists():
            dst.rmdir()
        tmp.rename(dst)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LightclsError(f"cannot write {dst}: {err}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {split: {name: len(files) for name, files in plan[split].items()} for split in FOLDERS}


def _check_args(val: float, test: float, seed: int, mode: str) -> None:
    """Refuse fractions outside [0, 1) or summing to 1 or more, a seed that is not an integer, a bad mode."""
    for key, value in (("val", val), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise LightclsError(f"{key} must be a fraction in [0, 1), got {value!r}")
    if val + test >= 1:
        raise LightclsError(f"val + test must be below 1 (training needs images), got {val} + {test}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise LightclsError(f"seed must be an integer, got {seed!r}")
    if mode not in MODES:
        raise LightclsError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def _read_source(src: Path) -> dict[str, list[Path]]:
    """SRC's class folders (sorted) and each one's images (sorted, relative to the class folder)."""
    if not src.is_dir():
        raise LightclsError(f"SRC {src} does not exist or is not a folder")
    split = [n for n in FOLDERS.values() if (src / n).is_dir()]
    if split or (src / "classes.txt").is_file():
        found = f"{split[0]}/" if split else "classes.txt"
        raise LightclsError(f"SRC {src} is already split (it has {found}); give a tree of class folders")
    classes = sorted(p.name for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise LightclsError(f"SRC {src} has no class folders (expected {src}/<class>/<image>)")
    sources = {}
    for name in classes:
        if name != name.strip():
            raise LightclsError(f"{src / name}: a class name cannot start or end with whitespace")
        sources[name] = _images(src / name)
        if not sources[name]:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise LightclsError(f"{src / name}: class {name!r} has no images ({suffixes})")
    return sources


def _images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, relative to it and sorted; hidden files/folders skipped."""
    return sorted(
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


def _check_dst(src: Path, dst: Path) -> None:
    """Refuse a DST that holds anything (never overwrite user data) or that lies inside SRC."""
    if dst.exists() and not dst.is_dir():
        raise LightclsError(f"DST {dst} exists and is not a folder; refusing to overwrite it")
    if dst.exists() and any(dst.iterdir()):
        raise LightclsError(f"DST {dst} exists and is not empty; refusing to overwrite it (give a new one)")
    if src in dst.parents:
        raise LightclsError(f"DST {dst} is inside SRC {src}; it would become a class folder of SRC")


def _write(
    plan: dict[str, dict[str, list[Path]]], src: Path, out: Path, mode: str, wanted: dict[str, bool]
) -> None:
    """Write classes.txt, the split folders and val.txt/test.txt ('<class>/<file> <label>') under `out`."""
    out.mkdir(parents=True)
    classes = list(plan["train"])
    (out / "classes.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
    copied = 0
    for split, folder in FOLDERS.items():
        if not wanted[split]:
            continue
        (out / folder).mkdir()
        lines = []
        for label, name in enumerate(classes):
            for rel in plan[split][name]:
                target = out / folder / name / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                copied += _place(src / name / rel, target, mode)
                lines.append(f"{name}/{rel.as_posix()} {label}")
        if split in LISTINGS:
            (out / LISTINGS[split]).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    if copied:
        log.warning("%d file(s) copied instead of hard-linked (another filesystem?)", copied)


def _place(source: Path, target: Path, mode: str) -> int:
    """Copy, hard-link or symlink `source` to `target`; 1 when a hard link fell back to a copy."""
    if mode == "symlink":
        os.symlink(source, target)
        return 0
    if mode == "link":
        try:
            os.link(source, target)
            return 0
        except OSError:  # another filesystem, or one without hard links
            shutil.copy2(source, target)
            return 1
    shutil.copy2(source, target)
    return 0
