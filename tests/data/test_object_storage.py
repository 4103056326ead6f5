"""Shards in object storage for real: `lightcls-data pack DST=s3://...` and `data=streaming` against an S3
server on a loopback port (moto), through s3fs, as a real bucket is read."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import compose_train, one_line_error
from lightcls.config.checks import check_command
from lightcls.tasks import train
from lightcls.workflows.checks import check_train

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

#: the tiny set's input contract, for data=streaming (its defaults are ImageNet's 224 px RGB)
TINY = ["data.image_size=16", "data.channels=1", "data.mean=[0.5]", "data.std=[0.5]"]


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """An S3 server on a free loopback port, the AWS variables pointing at it, and a bucket `lightcls`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as env:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }.items():
            env.setenv(key, value)
        import boto3

        boto3.client("s3").create_bucket(Bucket="lightcls")
        yield "s3://lightcls"
    server.stop()
    _forget_filesystems()


def _forget_filesystems() -> None:
    """fsspec caches a file system per set of options: a changed environment needs a new one."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


def _pack(src: Path, dst: str, capsys) -> str:
    from lightcls.cli.data import main

    with pytest.raises(SystemExit) as done:  # the console script's own main, in this process
        main(["pack", f"SRC={src}", f"DST={dst}", "shard_size=8", "workers=0"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_pack_to_s3_then_train_from_it_as_from_a_local_shard_folder(
    s3: str, make_split_folder, tmp_path: Path, capsys
) -> None:
    src = make_split_folder(per_class={"training_set": 12, "val_set": 4, "test_set": 4})
    url = f"{s3}/hand"
    said = _pack(src, url, capsys)
    assert said.strip().endswith(f"train with data=streaming data.root={url}")
    _pack(src, str(tmp_path / "local"), capsys)
    results = {}
    for name, root in (("s3", url), ("local", tmp_path / "local")):
        args = ["data=streaming", f"data.root={root}", *TINY, "trainer=cpu", "trainer.max_epochs=2"]
        args += ["data.batch_size=8", "data.num_workers=0", "logger=none", "seed=3"]
        results[name] = train(compose_train(args, tmp_path / name))
    s3_run, local_run = results["s3"], results["local"]
    assert s3_run["data"] == url and s3_run["global_step"] == local_run["global_step"] == 10
    assert s3_run["best_val_top1"] == local_run["best_val_top1"] > 1 / 3  # three classes
    assert s3_run["test_top1"] == local_run["test_top1"]


def test_a_wrong_bucket_or_no_credentials_is_one_line(
    s3: str, make_split_folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightcls.data.shards import pack

    src = make_split_folder()
    assert one_line_error(pack, src, "s3://no-such-bucket/hand") == (
        "s3://no-such-bucket/hand: no bucket 'no-such-bucket' there (create it first, or check the name)"
    )
    args = ["data=streaming", "data.root=s3://no-such-bucket/hand", *TINY]
    assert one_line_error(check_command, "train", args, check_train) == (
        "s3://no-such-bucket/hand: no bucket 'no-such-bucket' there (create it first, or check the name)"
    )
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to ask for
    _forget_filesystems()
    try:
        message = one_line_error(
            check_command, "train", ["data=streaming", f"data.root={s3}/hand", *TINY], check_train
        )
    finally:
        _forget_filesystems()
    assert message == (
        f"{s3}/hand: no credentials for it: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE; "
        "AWS_ENDPOINT_URL for an S3-compatible server), or the store's own"
    )
