"""Shards: `lightcls-data pack` writes WebDataset tar files; data=streaming trains from them, each rank
and epoch reading every image once, resuming mid-epoch where it stopped; a damaged shard is one line."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from PIL import Image

from helpers import compose_train, one_line_error, run_cli
from lightcls.config.checks import check_command
from lightcls.data import Preprocess, StreamingDataModule, read_layout
from lightcls.data.base import DeviceWork
from lightcls.data.shards import (
    MANIFEST,
    Manifest,
    ShardDataset,
    ShardLoader,
    ShardReader,
    decode_images,
    pack,
)
from lightcls.errors import Interrupted
from lightcls.tasks import train

#: digits' input contract, for data=streaming (its defaults are ImageNet's 224 px RGB)
DIGITS = ["data.image_size=32", "data.channels=1", "data.mean=[0.5]", "data.std=[0.5]"]
PRE = Preprocess(32, 1, (0.5,), (0.5,))


def on_shards(root: Path) -> list[str]:
    """The overrides that train on the digits packed at `root`."""
    return ["data=streaming", f"data.root={root}", *DIGITS]


@pytest.fixture(scope="module")
def packed(digits_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's digits packed 200 images a shard."""
    return Path(pack(digits_root, str(tmp_path_factory.mktemp("shards") / "digits"), shard_size=200)["root"])


def _digest(image: torch.Tensor) -> str:
    return hashlib.sha1(image.numpy().tobytes()).hexdigest()


def test_pack_writes_each_image_once_as_webdataset_reads_it(packed: Path, digits_root: Path) -> None:
    import webdataset as wds

    layout = read_layout(digits_root)
    manifest = Manifest.read(str(packed))
    assert manifest.classes == layout.classes and manifest.source == str(layout.root)
    for split in ("train", "val", "test"):
        urls = sorted(str(p) for p in packed.glob(f"{split}-*.tar"))
        assert len(urls) == -(-len(layout.splits[split]) // 200)
        stored = Counter(
            (hashlib.sha1(s["png"]).hexdigest(), int(s["cls"]))
            for s in wds.WebDataset(urls, shardshuffle=False)
        )
        files = Counter(
            (hashlib.sha1(p.read_bytes()).hexdigest(), label) for p, label in layout.splits[split]
        )
        assert stored == files  # small PNGs byte for byte, with their labels
        assert len(manifest.samples[split]) == len(layout.splits[split])


def test_pack_stores_a_large_photo_resized_once_and_a_small_one_as_it_is(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (src / "train" / name).mkdir(parents=True)
        pixels = rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(src / "train" / name / "big.jpg", quality=90)
        Image.fromarray(pixels[:48, :64]).save(src / "train" / name / "small.png")
    deep = (np.arange(600 * 800).reshape(600, 800) % 800 * 80).astype(np.uint16)  # 16-bit, up to 63,920
    Image.fromarray(deep).save(src / "train" / "dog" / "deep.png")
    out = pack(src, str(tmp_path / "shards"), short_side=256)
    manifest = Manifest.read(out["root"])
    reader = ShardReader(manifest.root, manifest.shards["train"])
    sizes = Counter()
    for row in manifest.samples["train"]:
        data, _ = reader.read(row)
        with Image.open(io.BytesIO(data)) as img:
            sizes[(img.format, img.size)] += 1
    assert sizes == {("JPEG", (341, 256)): 2, ("PNG", (64, 48)): 2, ("PNG", (341, 256)): 1}
    opened = [Image.open(io.BytesIO(reader.read(r)[0])) for r in manifest.samples["train"]]
    (packed_deep,) = [img for img in opened if img.format == "PNG" and img.size == (341, 256)]
    assert packed_deep.mode == "L" and abs(np.asarray(packed_deep).mean() - deep.mean() / 257) < 2  # scaled
    small = (src / "train" / "cat" / "small.png").read_bytes()
    assert any(reader.read(row)[0] == small for row in manifest.samples["train"])


def _epoch_images(manifest: Manifest, rank: int, world: int, epoch: int) -> tuple[list[str], int]:
    dataset = ShardDataset(
        manifest, "val", PRE, batch_size=16, shuffle=True, seed=3, rank=rank, world_size=world
    )
    loader = ShardLoader(dataset, epoch=lambda: epoch, num_workers=2)
    seen = [_digest(image) for images, _ in loader for image in images]
    return seen, len(loader)


def test_each_rank_reads_its_own_part_and_every_image_once_an_epoch(packed: Path) -> None:
    manifest = Manifest.read(str(packed))  # val: 270 images, 135 a rank
    everything = Counter(_epoch_images(manifest, 0, 1, 0)[0])
    (rank0, len0), (rank1, len1) = (_epoch_images(manifest, r, 2, 0) for r in (0, 1))
    assert len(rank0) == len(rank1) == 135 and len0 == len1 == 9  # 8 full batches and one of 7
    assert Counter(rank0 + rank1) == everything and sum(everything.values()) == 270
    again, _ = _epoch_images(manifest, 0, 2, 0)
    later, _ = _epoch_images(manifest, 0, 2, 1)
    assert again == rank0  # the order is the seed's and the epoch's, not the workers'
    assert later != rank0 and Counter(later + _epoch_images(manifest, 1, 2, 1)[0]) == everything


def test_train_from_shards_learns_and_eval_finds_the_packed_folder(packed: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = compose_train(
        [
            *on_shards(packed),
            "trainer=cpu",
            "trainer.max_epochs=1",
            "data.batch_size=32",
            "data.num_workers=0",
        ],
        run,
        report=True,  # its eval/ evaluates the best checkpoint on the folder the shards were packed from
    )
    metrics = train(cfg)
    assert metrics["test_top1"] > 0.5 and metrics["data"] == str(packed)  # 10 classes: chance is 0.1
    assert metrics["global_step"] == 40  # 1257 images in batches of 32
    result = json.loads((run / "eval" / "eval.json").read_text())
    assert result["data"] == Manifest.read(str(packed)).source and (run / "report.html").is_file()
    assert result["top1"] == pytest.approx(metrics["test_top1"])  # same images, same contract


class _Record(L.Callback):
    """The digest of every image trained, with the batch's index in its epoch."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int, list[str]]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches.append((trainer.current_epoch, batch_idx, [_digest(i) for i in batch[0].cpu()]))


class _StopAt(L.Callback):
    """SIGTERM's way out of Lightning as batch `index` starts."""

    def __init__(self, index: int) -> None:
        self.index = index

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.index:
            from lightning.pytorch.utilities.exceptions import SIGTERMException

            raise SIGTERMException()


def test_a_run_stopped_mid_epoch_resumes_where_it_stopped(packed: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [
        *on_shards(packed),
        "trainer=cpu",
        "trainer.max_epochs=1",
        "data.batch_size=64",
        "augment=none",
        "logger=none",
    ]
    first, second = _Record(), _Record()
    with pytest.raises(Interrupted):
        train(compose_train(args, run), callbacks=[first, _StopAt(7)])
    last = run / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["global_step"] == 7
    assert state["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 0, "completed": 7}]

    metrics = train(compose_train([*args, f"ckpt_path={last}"], run), callbacks=[second])
    assert metrics["global_step"] == 20  # 1257 images in batches of 64
    assert [b for _, b, _ in first.batches] == list(range(7))
    assert [b for _, b, _ in second.batches] == list(range(7, 20))  # not the epoch again from batch 0
    trained = Counter(d for record in (first, second) for _, _, digests in record.batches for d in digests)
    dataset = ShardDataset(Manifest.read(str(packed)), "train", PRE, batch_size=64)
    normalized = (PRE.normalize(images) for images, _ in ShardLoader(dataset))  # as the module sees them
    assert trained == Counter(_digest(i) for images in normalized for i in images)

    third = _Record()  # on from the end-of-epoch last.ckpt: epoch 1's own order, not epoch 0's again
    train(compose_train([*args, "trainer.max_epochs=2", f"ckpt_path={last}"], run), callbacks=[third])
    plan = ShardDataset(Manifest.read(str(packed)), "train", PRE, batch_size=64, shuffle=True, seed=42)
    epoch1 = ShardLoader(plan, epoch=lambda: 1)
    assert [d for _, _, digests in third.batches for d in digests] == [
        _digest(i) for images, _ in epoch1 for i in PRE.normalize(images)
    ]


def test_a_corrupt_shard_stops_training_with_one_line_naming_it(packed: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(packed, broken)
    manifest = Manifest.read(str(broken))
    row = manifest.samples["train"][manifest.samples["train"][:, 0] == 1][5]  # an image in the second shard
    shard = broken / "train-000001.tar"
    data = bytearray(shard.read_bytes())
    data[row[1] + 40] ^= 0xFF
    shard.write_bytes(bytes(data))
    args = [*on_shards(broken), "trainer=cpu", "data.num_workers=2"]
    message = one_line_error(train, compose_train([*args, "logger=none"], tmp_path / "run"))  # from a worker
    assert (
        message
        == f"{shard}: corrupt: the image at byte {row[1]:,} fails its checksum; pack the data set again"
    )


def test_tampered_labels_are_one_line_before_training_and_at_read_time(packed: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(packed, broken)
    written = json.loads((broken / MANIFEST).read_text())
    cfg = compose_train([*on_shards(broken), "trainer=cpu", "logger=none"], tmp_path / "run")

    def tamper(label_of) -> str:
        data = json.loads(json.dumps(written))
        for i, row in enumerate(data["samples"]["train"]):
            row[3] = label_of(i, row[3])
        (broken / MANIFEST).write_text(json.dumps(data))
        return one_line_error(train, cfg)

    where = broken / MANIFEST
    assert tamper(lambda i, label: 10 if i == 3 else label) == (
        f"{where}: train image 3 has label 10, but there are 10 classes (0-9); pack the data set again"
    )
    assert tamper(lambda i, label: 0) == (
        f"{where}: class 'one' has no training images (labels cover 1 of 10 classes); pack the data set again"
    )
    row = written["samples"]["train"][0]  # the tar's own .cls entry disagrees: found as the image is read
    message = tamper(lambda i, label: (label + 1) % 10 if i == 0 else label)
    assert message == (
        f"{broken}/train-{row[0]:06d}.tar: the image at byte {row[1]:,} is labelled {row[3]} in the shard "
        f"but {(row[3] + 1) % 10} in {MANIFEST}; pack the data set again"
    )
    assert not list((tmp_path / "run").glob("checkpoints/*.ckpt"))


def test_a_truncated_or_missing_shard_is_one_line_before_training(packed: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(packed, broken)
    shard = broken / "train-000002.tar"
    size = shard.stat().st_size
    with open(shard, "r+b") as f:
        f.truncate(size // 2)
    cfg = compose_train([*on_shards(broken), "trainer=cpu"], tmp_path / "run")
    assert one_line_error(train, cfg) == (
        f"{shard}: {size // 2:,} bytes, {MANIFEST} says {size:,}: the shard is truncated or was replaced; "
        "pack the data set again"
    )
    shard.unlink()
    assert one_line_error(train, cfg) == f"{shard}: shard missing (listed in {MANIFEST})"
    (broken / MANIFEST).unlink()
    assert "no such file; data=streaming reads shards written by `lightcls-data pack" in one_line_error(
        train, cfg
    )


def test_shards_in_object_storage_read_through_the_same_code(make_split_folder, tmp_path: Path) -> None:
    src = make_split_folder(per_class={"training_set": 6, "val_set": 2})
    url = "memory://lightcls-test/hand"
    assert pack(src, url, shard_size=4)["root"] == url
    data = StreamingDataModule(
        url, image_size=16, channels=1, mean=[0.5], std=[0.5], batch_size=4, num_workers=0
    )
    data.setup("fit")
    labels = [int(y) for _, labels in data.train_dataloader() for y in labels]
    assert Counter(labels) == {0: 6, 1: 6, 2: 6} and data.classes == ["paper", "rock", "scissors"]
    assert data.hparams["root"] == url


def test_pack_on_the_command_line(make_split_folder, tmp_path: Path, capsys) -> None:
    from lightcls.cli.data import main

    src = make_split_folder()
    with pytest.raises(SystemExit) as done:  # the console script's own main, in this process
        main(["pack", f"SRC={src}", f"DST={tmp_path / 'shards'}", "shard_size=5", "workers=0"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"wrote {tmp_path / 'shards'}: train 12 images in 3 shards, val 6 images in 2 shards, "
        f"test 6 images in 2 shards; train with data=streaming data.root={tmp_path / 'shards'}"
    )
    assert one_line_error(pack, src, "s3x://bucket/set") == "s3x://bucket/set: Protocol not known: s3x"
    refused = one_line_error(pack, src, str(src))
    assert refused == f"DST={src}: exists and is not a shard folder; choose a new or empty folder"


def test_the_epoch_order_follows_the_runs_seed_and_folder_keys_are_not_keys_of_shards(packed: Path) -> None:
    def first_labels(seed: int) -> torch.Tensor:
        data = StreamingDataModule(str(packed), 32, 1, [0.5], [0.5], batch_size=64, num_workers=0)
        torch.manual_seed(seed)  # a run seeds after building its DataModule (Lightning again on each rank)
        data.setup("fit")
        return next(iter(data.train_dataloader()))[1]

    assert torch.equal(first_labels(0), first_labels(0)) and not torch.equal(first_labels(0), first_labels(1))
    message = one_line_error(check_command, "train", [*on_shards(packed), "data.cache=false"])
    assert message == (
        "data.cache is a key of folder data sets (conf/base/folder.yaml), not of data=streaming: shards are "
        "read as they were packed; leave it out"
    )


@pytest.mark.slow
def test_ddp_inside_a_multirun_splits_each_epoch_between_the_ranks_and_stays_in_its_job_dir(
    packed: Path, tmp_path: Path
) -> None:
    args = ["-m", *on_shards(packed), "trainer=ddp_cpu", "trainer.max_epochs=1", "data.batch_size=64"]
    result = run_cli([*args, "data.num_workers=0", "logger=none", f"paths.outputs_root={tmp_path}"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "using ddp_spawn" in result.stdout + result.stderr
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()  # no second sweep launched by rank 1
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0"]
    metrics = json.loads((sweep / "0" / "metrics.json").read_text())  # handed back from the spawned ranks
    assert metrics["epochs"] == 1 and metrics["best_epoch"] == 1 and metrics["best_val_top1"] is not None
    assert metrics["global_step"] == 10  # 1257 images: 629 a rank (one repeated), 10 batches of 64
    assert metrics["test_images"] == 270 and metrics["test_top1"] > 0.3  # rank 0 tests every image once
    assert metrics["last_ckpt"] == "checkpoints/last.ckpt"
    assert not (tmp_path / "train" / "runs").exists()


def test_device_decode_gives_the_loaders_pixels_and_is_inert_on_a_cpu(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (src / "train" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(
                src / "train" / name / f"{i}.jpg", quality=90
            )
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(
            src / "train" / name / "p.png"
        )
    turned = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    exif = turned.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    turned.save(src / "train" / "cat" / "turned.jpg", quality=90, exif=exif)
    manifest = Manifest.read(pack(src, str(tmp_path / "shards"), val_fraction=0.0)["root"])
    pre = Preprocess(48, 3, (0.5,) * 3, (0.5,) * 3)
    ((images, labels),) = ShardDataset(manifest, "train", pre, batch_size=16)
    ((encoded, same),) = ShardDataset(manifest, "train", pre, batch_size=16, encoded=True)
    assert all(isinstance(e, bytes) for e in encoded) and len(encoded) == 9 and torch.equal(labels, same)
    assert move_data_to_device((encoded, same), "cpu")[0] is encoded  # Lightning's transfer leaves it be
    assert torch.equal(decode_images(encoded, pre, [], "cpu"), images)  # JPEGs batched, PNG and EXIF not

    data = StreamingDataModule(
        str(tmp_path / "shards"),
        image_size=48,
        channels=3,
        mean=[0.5] * 3,
        std=[0.5] * 3,
        batch_size=16,
        num_workers=0,
        device_decode=True,
    )
    data.setup("fit")  # no GPU: the loader decodes, as without the switch
    assert data.device_work() == DeviceWork()
    batch, _ = next(iter(data.train_dataloader()))
    assert isinstance(batch, torch.Tensor) and batch.dtype == torch.uint8 and batch.shape == (9, 3, 48, 48)
    assert one_line_error(
        StreamingDataModule,
        str(tmp_path / "shards"),
        image_size=48,
        channels=3,
        mean=[0.5] * 3,
        std=[0.5] * 3,
        device_decode="yes",
    ) == ("data.device_decode must be true or false, got 'yes'")


def test_shards_packed_elsewhere_still_get_a_report_without_the_evaluation(
    packed: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    moved = tmp_path / "shards"
    shutil.copytree(packed, moved)
    manifest = json.loads((moved / "lightcls_shards.json").read_text())
    manifest["source"] = str(tmp_path / "on_another_machine")  # the folder it was packed from is not here
    (moved / "lightcls_shards.json").write_text(json.dumps(manifest))
    args = [*on_shards(moved), "trainer=cpu", "data.num_workers=0"]
    args += ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        metrics = train(compose_train(args, run, report=True))
    assert metrics["test_images"] == 270 and (run / "report.html").is_file() and not (run / "eval").exists()
    (warning,) = [r.getMessage() for r in caplog.records if "no evaluation in the report" in r.getMessage()]
    assert warning.endswith(f"pass the split folder they were packed from: data.root={manifest['source']}")
