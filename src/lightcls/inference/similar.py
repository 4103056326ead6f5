"""Similar-image search (faiss): an index of a folder's embeddings, exact inner product of unit vectors
(cosine) up to a size, HNSW above it; kept as a folder: index.faiss, files.txt, labels.txt, index.json."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from lightcls.errors import LightclsError
from lightcls.files import read_json, write_json, write_text
from lightcls.inference.embed import checkpoint_digest

INDEX_FILE, FILES_FILE, LABELS_FILE, META_FILE = "index.faiss", "files.txt", "labels.txt", "index.json"
#: HNSW's links per vector, and how many candidates a search keeps (more: better recall, slower)
HNSW_LINKS, HNSW_EF_SEARCH = 32, 128


def require_faiss() -> Any:
    """The faiss module; without it one line saying how to install it."""
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which CPU build it loaded, at INFO
    try:
        import faiss
    except ImportError:
        raise LightclsError("similar-image search needs faiss: pip install 'lightcls[index]'") from None
    return faiss


@dataclass
class ImageIndex:
    """Image embeddings in a faiss index, with each row's file and label (None: an unlabelled folder) and
    what built it (index.json)."""

    index: Any
    files: list[str]
    labels: list[str] | None
    meta: dict[str, Any]

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Per query row, its k nearest rows (row, cosine similarity), best first."""
        scores, ids = self.index.search(np.ascontiguousarray(queries, np.float32), k)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    def neighbours(self, queries: np.ndarray, k: int) -> list[list[dict[str, Any]]]:
        """Per query row, its k nearest images: rank, file, score and (a labelled index) label."""
        return [
            [
                {"rank": rank, "file": self.files[i], "score": score}
                | ({"label": self.labels[i]} if self.labels else {})
                for rank, (i, score) in enumerate(found, start=1)
            ]
            for found in self.search(queries, k)
        ]

    def save(self, folder: Path) -> None:
        """index.faiss, files.txt, labels.txt (a labelled index) and index.json in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        require_faiss().write_index(self.index, str(folder / INDEX_FILE))
        write_text(folder / FILES_FILE, "".join(f"{file}\n" for file in self.files))
        if self.labels:
            write_text(folder / LABELS_FILE, "".join(f"{label}\n" for label in self.labels))
        write_json(folder / META_FILE, self.meta)


def build_index(
    vectors: np.ndarray,
    files: list[Path],
    labels: list[str] | None,
    about: dict[str, Any],
    approximate_above: int,
) -> ImageIndex:
    """An index of unit `vectors` (one per file): exact (IndexFlatIP) up to `approximate_above` images, else
    HNSW; `about` (the checkpoint, its weights' digest, the model, the input) goes into index.json."""
    faiss = require_faiss()
    count, dim = vectors.shape
    exact = count <= approximate_above
    index = (
        faiss.IndexFlatIP(dim) if exact else faiss.IndexHNSWFlat(dim, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    )
    if not exact:
        index.hnsw.efSearch = HNSW_EF_SEARCH
    index.add(np.ascontiguousarray(vectors, np.float32))
    meta = {
        **about,
        "dim": dim,
        "count": count,
        "search": "exact" if exact else "approximate",
        "faiss_index": type(index).__name__,
        "metric": "cosine (inner product of unit vectors)",
        "labelled": labels is not None,
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    return ImageIndex(index, [str(f) for f in files], labels, meta)


def folder_labels(root: Path, files: list[Path]) -> list[str] | None:
    """Each file's label, its parent folder's name (class folders, or a split folder's class folders),
    when every file lies in a subfolder of `root` and there are two classes or more; else None."""
    root = root.resolve() if root.is_dir() else root.resolve().parent
    if any(file.parent == root for file in files):
        return None
    labels = [file.parent.name for file in files]
    return labels if len(set(labels)) > 1 else None


def load_index(folder: Path) -> ImageIndex:
    """The index lightcls-index wrote in `folder`; a missing folder or file is one line."""
    if not folder.is_dir():
        raise LightclsError(f"index={folder}: no such folder; build one with lightcls-index")
    for name in (INDEX_FILE, FILES_FILE, META_FILE):
        if not (folder / name).is_file():
            raise LightclsError(f"index={folder}: no {name} in it; build the index again with lightcls-index")
    meta = read_json(folder / META_FILE, "the index's description: build the index again")
    index = require_faiss().read_index(str(folder / INDEX_FILE))
    files = (folder / FILES_FILE).read_text(encoding="utf-8").splitlines()
    labels_file = folder / LABELS_FILE
    labels = labels_file.read_text(encoding="utf-8").splitlines() if labels_file.is_file() else None
    if index.ntotal != len(files) or (labels is not None and len(labels) != len(files)):
        raise LightclsError(
            f"index={folder}: {INDEX_FILE} holds {index.ntotal} images but {FILES_FILE} names {len(files)}; "
            "build the index again"
        )
    return ImageIndex(index, files, labels, meta)


def query_checkpoint(index: ImageIndex, folder: Path, ckpt_path: Path | None) -> Path:
    """The checkpoint to embed queries with: `ckpt_path`, else the one the index was built with; either must
    hold the weights the index was built with (else one line)."""
    built, digest = index.meta["ckpt"], str(index.meta["weights_sha256"])
    path = ckpt_path or Path(built)
    if ckpt_path is None and not path.is_file():
        raise LightclsError(
            f"index={folder} was built with {built}, which is gone; pass ckpt_path= a copy of it"
        )
    if checkpoint_digest(path) != digest:
        given = f"ckpt_path={ckpt_path}" if ckpt_path else f"{built} now"
        raise LightclsError(
            f"index={folder} was built with {built} (weights {digest[:12]}); {given} has other weights: "
            "build the index again with it"
        )
    return path


def leave_one_out(index: ImageIndex, vectors: np.ndarray, k: int) -> dict[str, Any]:
    """Each indexed image as a query against the others (itself dropped): recall@1 and recall@5 (an image of
    its label among the first 1 / 5) and mAP@k (precision at each same-label rank of the first k, over
    min(k, the other images of its label))."""
    if not index.labels:
        raise LightclsError("evaluate=true needs a labelled folder: images in class folders (<class>/*.png)")
    labels, depth = index.labels, max(k, 5)
    sizes = Counter(labels)
    hits1 = hits5 = 0
    precisions = []
    for row, found in enumerate(index.search(vectors, depth + 1)):
        same = [labels[i] == labels[row] for i, _ in found if i != row][:depth]
        hits1 += any(same[:1])
        hits5 += any(same[:5])
        precisions.append(average_precision(same[:k], min(k, sizes[labels[row]] - 1)))
    count = len(labels)
    return {
        "queries": count,
        "k": k,
        "recall@1": hits1 / count,
        "recall@5": hits5 / count,
        f"mAP@{k}": float(np.mean(precisions)),
    }


def average_precision(hits: list[bool], relevant: int) -> float:
    """AP of one ranked list: the precision at each hit, summed, over `relevant` (0 when there is none)."""
    found, total = 0, 0.0
    for rank, hit in enumerate(hits, start=1):
        if hit:
            found += 1
            total += found / rank
    return total / relevant if relevant else 0.0
