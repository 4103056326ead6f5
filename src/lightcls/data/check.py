"""The dataset doctor: check every file of a data set before training, with a cache keyed by size+mtime."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lightcls.data.decode import decode_check
from lightcls.data.layout import Layout, read_layout
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)

#: Where the per-file results are kept, in the data set's root (rewritten after each check).
CACHE_FILE = ".lightcls_check_cache.json"
#: Largest/smallest class count ratio above which the training split is called imbalanced.
IMBALANCE = 10.0
#: What training does with images that cannot be decoded (`data.on_broken`).
ON_BROKEN = ("fail", "skip")
#: How many images to read before the check decodes them in several processes.
PARALLEL_FROM = 500
#: How many broken files a one-line error names before "and N more".
SHOWN = 3


@dataclass
class Findings:
    """What a check found: per-split stats, errors (training would be wrong) and warnings."""

    layout: Layout
    files: dict[str, dict[str, Any]]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    read: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing would make training wrong."""
        return not self.errors

    def broken(self) -> list[Path]:
        """Files that cannot be decoded."""
        return [p for s in self.layout.splits.values() for p, _ in s if self.files[str(p)].get("error")]


def check_dataset(
    root: str | Path,
    val_fraction: float = 0.15,
    seed: int = 0,
    cache: bool = True,
    lists: Mapping[str, str | Path | None] | None = None,
    label_delim: str | None = None,
) -> Findings:
    """Read the layout at `root` and check every file (decodable, leakage, duplicates, counts)."""
    layout = read_layout(root, val_fraction, seed, lists, label_delim)
    cache_path = layout.root / CACHE_FILE
    cached = _load_cache(cache_path) if cache else {}
    files: dict[str, dict[str, Any]] = {}
    todo: list[Path] = []
    for samples in layout.splits.values():
        for path, _ in samples:
            stat = path.stat()
            entry = cached.get(str(path))
            if entry and entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns:
                files[str(path)] = entry
            else:
                files[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
                todo.append(path)
    for path, found in zip(todo, _inspect_all(todo), strict=True):
        files[str(path)].update(found)
    read = len(todo)
    if cache:
        _save_cache(cache_path, files)
    findings = Findings(layout, files, read=read)
    _find_problems(findings)
    return findings


def checked_layout(
    root: str | Path,
    val_fraction: float = 0.15,
    seed: int = 0,
    on_broken: str = "fail",
    lists: Mapping[str, str | Path | None] | None = None,
    label_delim: str | None = None,
) -> Layout:
    """The layout training uses: checked (cached); broken images fail the run or are skipped; leaks warned."""
    if on_broken not in ON_BROKEN:
        raise LightclsError(f"data.on_broken must be one of {', '.join(ON_BROKEN)}, got {on_broken!r}")
    findings = check_dataset(root, val_fraction, seed, lists=lists, label_delim=label_delim)
    for line in findings.leaks[:SHOWN]:
        log.warning("%s (see lightcls-data check data.root=%s)", line, findings.layout.root)
    if len(findings.leaks) > SHOWN:
        log.warning("and %d more images in more than one split", len(findings.leaks) - SHOWN)
    broken = findings.broken()
    if not broken:
        return findings.layout
    layout = findings.layout
    if on_broken == "fail":
        lines = [findings.files[str(p)]["error"] for p in broken]
        more = f"; and {len(lines) - SHOWN} more" if len(lines) > SHOWN else ""
        raise LightclsError(
            f"{len(broken)} broken image(s) in {layout.root}: {'; '.join(lines[:SHOWN])}{more}; "
            f"run `lightcls-data check data.root={layout.root}` for the full list, "
            "or set data.on_broken=skip to train without them"
        )
    log.warning(
        "data.on_broken=skip: training without %d broken image(s): %s",
        len(broken),
        ", ".join(map(str, broken)),
    )
    skipped = set(broken)
    splits = {s: [(p, c) for p, c in samples if p not in skipped] for s, samples in layout.splits.items()}
    kept = Layout(layout.root, layout.classes, splits, layout.multilabel)
    empty = [i for i, n in enumerate(kept.class_counts("train")) if n == 0]
    if empty:
        raise LightclsError(
            f"data.on_broken=skip leaves class {layout.classes[empty[0]]!r} "
            f"with no training images in {layout.root}"
        )
    return kept


def _inspect_all(paths: list[Path]) -> Iterator[dict[str, Any]]:
    """`_inspect` of each path, in order; in one process per CPU (up to 8) when there are many."""
    workers = min(os.cpu_count() or 1, 8)
    if len(paths) < PARALLEL_FROM or workers < 2:
        yield from map(_inspect, paths)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_inspect, paths, chunksize=64)


def _inspect(path: Path) -> dict[str, Any]:
    """Hash the bytes and fully decode the image: its size and mode, or why it cannot be used."""
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    info = decode_check(path)
    return {"sha1": digest, **info}


def _find_problems(findings: Findings) -> None:
    layout, files = findings.layout, findings.files
    for samples in layout.splits.values():
        for path, _ in samples:
            if files[str(path)].get("error"):
                findings.errors.append(files[str(path)]["error"])
    where: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for split, samples in layout.splits.items():
        for path, _ in samples:
            where[files[str(path)]["sha1"]].append((split, path))
    for copies in where.values():
        splits = sorted({s for s, _ in copies})
        if len(splits) > 1:
            names = ", ".join(f"{p} ({s})" for s, p in copies)
            findings.leaks.append(f"leakage: the same image is in {' and '.join(splits)}: {names}")
            findings.errors.append(findings.leaks[-1])
        for split in splits:
            same = [p for s, p in copies if s == split]
            if len(same) > 1:
                findings.warnings.append(f"duplicates in {split}: {', '.join(map(str, same))}")
    if not layout.has("val"):
        findings.warnings.append("no val split: training runs without validation and keeps last.ckpt only")
    counts = dict(enumerate(layout.class_counts("train")))
    if layout.multilabel:
        _multilabel_problems(findings)
    low, high = min(counts.values()), max(counts.values())
    if high > IMBALANCE * low:
        rare = [layout.classes[c] for c, n in counts.items() if n == low]
        findings.warnings.append(
            f"imbalanced training split: {high} images in the largest class, {low} in {', '.join(rare)}"
        )


def _multilabel_problems(findings: Findings) -> None:
    """Classes no training image has, classes never seen in val, images with no label."""
    layout = findings.layout
    train = layout.class_counts("train")
    never = [c for c, n in zip(layout.classes, train, strict=True) if n == 0]
    if never:
        findings.errors.append(f"no training image has class {', '.join(never)}: the model cannot learn it")
    if layout.has("val"):
        unseen = [c for c, n in zip(layout.classes, layout.class_counts("val"), strict=True) if n == 0]
        if unseen:
            findings.warnings.append(f"classes never seen in val (no AP for them): {', '.join(unseen)}")
    for split, samples in layout.splits.items():
        empty = sum(1 for _, label in samples if not label)
        if empty:
            findings.warnings.append(f"{split}: {empty} image(s) with no label (all negative)")


def print_findings(findings: Findings, console: Console | None = None) -> None:
    """A table per split (images and sizes per class, modes seen), then the errors and warnings."""
    console = console or Console()
    layout = findings.layout
    for split, samples in layout.splits.items():
        if not samples:
            continue
        table = Table(title=f"{split}: {len(samples)} images in {layout.root}")
        for column in ("class", "images", "broken", "sizes (WxH)", "modes"):
            table.add_column(column)
        by_class: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for path, label in samples:
            for index in (label,) if isinstance(label, int) else label:
                by_class[index].append(findings.files[str(path)])
        for label, name in enumerate(layout.classes):
            infos = by_class.get(label, [])
            good = [i for i in infos if not i.get("error")]
            sizes = sorted({(i["width"], i["height"]) for i in good})
            shown = ", ".join(f"{w}x{h}" for w, h in sizes[:3]) + (
                f" (+{len(sizes) - 3})" if len(sizes) > 3 else ""
            )
            modes = ", ".join(sorted({i["mode"] for i in good}))
            table.add_row(name, str(len(infos)), str(len(infos) - len(good)), shown or "-", modes or "-")
        console.print(table)
        if layout.multilabel:
            labels = Counter(len(label) for _, label in samples)
            spread = ", ".join(f"{labels[n]} with {n}" for n in sorted(labels))
            line = f"{split} is multi-label: an image counts once for each of its labels (images: {spread})"
            console.print(line, highlight=False, soft_wrap=True)
    for line in findings.errors:
        console.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
    for line in findings.warnings:
        console.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)
    verdict = "ok" if findings.ok else f"{len(findings.errors)} problem(s): training would be wrong"
    console.print(f"checked {len(findings.files)} images ({findings.read} read, the rest cached): {verdict}")


def _load_cache(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_cache(path: Path, files: dict[str, dict[str, Any]]) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(files), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only data set is checked every time
        tmp.unlink(missing_ok=True)
