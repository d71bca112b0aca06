"""The local S3 workflow end to end, against a moto S3 server on a free loopback port (fake
credentials, no real AWS): samples/blazingtext in a bucket → ``sagetext train --channel
train=s3://... --output s3://...`` → model.tar.gz in the bucket, unpacked safely → ``sagetext
serve --model-data s3://...`` under real gunicorn → one /invocations."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sagetext import model_archive
from sagetext.errors import ClientError
from sagetext.s3 import S3, S3Uri
from tests.conftest import REPO
from tests.serving.conftest import Server, free_port, server_env

boto3 = pytest.importorskip("boto3", reason="boto3 (the sagetext[s3] extra) is not installed")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed; it runs the local S3")

SAMPLE = REPO / "samples" / "blazingtext"
BUCKET = "sagetext-test"
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
HYPERPARAMETERS = ["mode=supervised", "epochs=5", "min_count=1", "vector_dim=16", "buckets=10000"]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process and its children talk to the moto server only, with fake credentials."""
    env = {**FAKE_AWS, "AWS_ENDPOINT_URL": endpoint}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "SAGETEXT_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def bucket(aws_env: dict[str, str]) -> object:
    client = boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def sagetext(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sagetext", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_train_from_s3_upload_model_and_serve_it(bucket, aws_env: dict[str, str], tmp_path: Path) -> None:
    for name in ("train", "validation"):
        bucket.upload_file(str(SAMPLE / f"{name}.txt"), BUCKET, f"data/{name}/{name}.txt")
    bucket.put_object(Bucket=BUCKET, Key="data/train/", Body=b"")  # a console "folder" key
    params = [arg for value in HYPERPARAMETERS for arg in ("-p", value)]
    result = sagetext("train", "--algorithm", "blazingtext", "--channel", f"train=s3://{BUCKET}/data/train",
                      "--channel", f"validation=s3://{BUCKET}/data/validation/", *params,
                      "--output", f"s3://{BUCKET}/jobs", "--job-name", "bt-1", env=aws_env)
    assert result.returncode == 0, result.stdout + result.stderr
    uri = f"s3://{BUCKET}/jobs/bt-1/output/model.tar.gz"
    assert f"uploaded {uri}" in result.stderr
    assert "#validation_accuracy" in result.stdout + result.stderr

    archive = S3().download_file(uri, tmp_path / "model.tar.gz")
    model = model_archive.unpack(archive, tmp_path / "model")
    assert sorted(p.name for p in model.iterdir()) == ["metrics.json", "model.bin"]  # files at the archive root

    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sagetext", "serve", "--algorithm", "blazingtext", "--model-data", uri,
             "--port", str(port)], env=server_env({**aws_env, "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}),
            stdout=log, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        server.wait_ready(120)
        answer = requests.post(f"{server.url}/invocations", timeout=30,
                               json={"instances": ["a sample sentence"], "configuration": {"k": 1}})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body) == 1 and body[0]["label"][0].startswith("__label__")
    finally:
        assert server.stop() == 0, server.log()


def test_output_dir_writes_a_local_model_tar_gz(tmp_path: Path) -> None:
    params = [arg for value in HYPERPARAMETERS for arg in ("-p", value)]
    result = sagetext("train", "--algorithm", "blazingtext", "--channel", f"train={SAMPLE / 'train.txt'}",
                      *params, "--output-dir", str(tmp_path / "out"), env={})
    assert result.returncode == 0, result.stdout + result.stderr
    model_archive.unpack(tmp_path / "out" / "model.tar.gz", tmp_path / "model")
    assert (tmp_path / "model" / "model.bin").is_file()


def test_missing_bucket_is_a_client_error_naming_uri_and_code(aws_env: dict[str, str], tmp_path: Path) -> None:
    result = sagetext("train", "--algorithm", "blazingtext", "--channel", "train=s3://no-such-bucket/data",
                      "-p", "mode=supervised", "--output-dir", str(tmp_path), env=aws_env)
    assert result.returncode == 1
    assert "s3://no-such-bucket/data" in result.stderr and "NoSuchBucket" in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_prefix_and_missing_key_are_client_errors(bucket, tmp_path: Path) -> None:
    store = S3()
    with pytest.raises(ClientError, match=r"s3://sagetext-test/nothing: no objects under this prefix"):
        store.download_prefix(f"s3://{BUCKET}/nothing", tmp_path / "channel")
    with pytest.raises(ClientError, match=r"s3://sagetext-test/model.tar.gz: S3 download failed: NoSuchKey"):
        store.download_file(f"s3://{BUCKET}/model.tar.gz", tmp_path / "model.tar.gz")
    result = sagetext("serve", "--algorithm", "blazingtext", "--model-data", f"s3://{BUCKET}/x/model.tar.gz",
                      env={})
    assert result.returncode == 1 and "NoSuchKey" in result.stderr and "Traceback" not in result.stderr


def test_access_denied_names_uri_and_code(tmp_path: Path) -> None:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import ClientError as BotoError

    class Denied:
        def get_object(self, **_: object) -> None:
            raise BotoError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

        def upload_file(self, *_: object) -> None:
            try:
                self.get_object()
            except BotoError as exc:  # boto3's transfer manager wraps the S3 error like this
                raise S3UploadFailedError(f"Failed to upload: {exc}") from exc

    store = S3(client=Denied())
    with pytest.raises(ClientError, match=r"^s3://b/k: S3 download failed: AccessDenied \(these credentials"):
        store.download_file("s3://b/k", tmp_path / "k")
    with pytest.raises(ClientError, match=r"^s3://b/out/model.tar.gz: S3 upload failed: AccessDenied"):
        store.upload_file(tmp_path, "s3://b/out/model.tar.gz")
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_prefix_layout_keeps_relative_paths(bucket, tmp_path: Path) -> None:
    for key in ("d/train/a.txt", "d/train/sub/b.txt", "d/train.txt", "d/trainer.txt", "d/train/", "e.txt"):
        bucket.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    store = S3()
    store.download_prefix(f"s3://{BUCKET}/d/train/", tmp_path / "folder")
    assert sorted(p.relative_to(tmp_path / "folder").as_posix() for p in (tmp_path / "folder").rglob("*.txt")) \
        == ["a.txt", "sub/b.txt"]
    store.download_prefix(f"s3://{BUCKET}/d/train.txt", tmp_path / "file")
    assert [p.name for p in (tmp_path / "file").iterdir()] == ["train.txt"]
    store.download_prefix(f"s3://{BUCKET}/d/train", tmp_path / "partial")  # S3Prefix: a key prefix
    assert sorted(p.relative_to(tmp_path / "partial").as_posix() for p in (tmp_path / "partial").rglob("*.txt")) \
        == ["a.txt", "sub/b.txt", "train.txt", "trainer.txt"]


def test_key_with_dotdot_cannot_leave_the_channel_folder(bucket, tmp_path: Path) -> None:
    bucket.put_object(Bucket=BUCKET, Key="p/../../evil.txt", Body=b"x")
    with pytest.raises(ClientError, match=r"would land outside the channel folder"):
        S3().download_prefix(f"s3://{BUCKET}/p/", tmp_path / "channel")
    assert not (tmp_path.parent / "evil.txt").exists()


def test_uri_parsing() -> None:
    assert S3Uri.parse("s3://b/p/q") == S3Uri("b", "p/q")
    assert str(S3Uri.parse("s3://b/jobs/").join("j", "output", "model.tar.gz")) == "s3://b/jobs/j/output/model.tar.gz"
    assert str(S3Uri.parse("s3://b").join("j", "output")) == "s3://b/j/output"
    for bad in ("s3://", "s3:///key", "http://b/k", "s3://b b/k"):
        with pytest.raises(ClientError, match="expected an S3 URI"):
            S3Uri.parse(bad)


def test_output_must_be_s3(tmp_path: Path) -> None:
    result = sagetext("train", "--algorithm", "blazingtext", "--channel", f"train={SAMPLE / 'train.txt'}",
                      "-p", "mode=supervised", "--output", str(tmp_path), env={})
    assert result.returncode != 0 and "expected s3://bucket/prefix" in result.stderr
