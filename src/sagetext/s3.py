"""``s3://`` data for ``sagetext`` runs outside SageMaker: download a channel's objects, upload
and download ``model.tar.gz``.

On SageMaker the platform copies channels from S3 into /opt/ml and uploads the model; on a
laptop or a GPU box ``sagetext train --channel train=s3://bucket/prefix --output
s3://bucket/prefix`` does the same through boto3, and so does ``sagetext serve --model-data
s3://...``. boto3 is the optional extra ``s3`` (``pip install 'sagetext[s3]'``), imported only
when an ``s3://`` URI is used.

Credentials and region come from boto3's usual chain (environment, ``~/.aws``, instance
role). For an S3-compatible store (MinIO, Ceph, moto) set ``SAGETEXT_S3_ENDPOINT_URL`` or
``AWS_ENDPOINT_URL`` (the first wins), or pass ``endpoint_url``.

Which objects a channel gets, as SageMaker's ``S3Prefix``: every object whose key starts with
the URI's key. Each lands at its key relative to the prefix when the prefix names a folder
(``s3://b/data/train`` or ``.../train/`` with objects ``data/train/a.txt``), else relative to
the prefix's folder (``s3://b/data/train.txt`` → ``train.txt``). Zero-byte "folder" keys
(ending in ``/``) are skipped.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagetext.errors import ClientError

ENDPOINT_ENVS = ("SAGETEXT_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL")
SCHEME = "s3://"
_CHUNK = 1 << 20


def is_s3_uri(value: str) -> bool:
    return value.startswith(SCHEME)


@dataclass(frozen=True)
class S3Uri:
    """``s3://bucket/key``; ``key`` may be a prefix or empty (the whole bucket)."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> "S3Uri":
        if not is_s3_uri(uri):
            raise ClientError(f"{uri!r}: expected an S3 URI, s3://bucket/key")
        bucket, _, key = uri[len(SCHEME):].partition("/")
        if not bucket or "/" in bucket or not all(c.isalnum() or c in ".-_" for c in bucket):
            raise ClientError(f"{uri!r}: expected an S3 URI, s3://bucket/key, with a bucket name "
                              "of letters, digits, '.', '-' and '_'")
        return cls(bucket, key)

    def join(self, *parts: str) -> "S3Uri":
        """This URI with ``parts`` appended as folders, e.g. ``join("job", "output")``."""
        key = "/".join([self.key.rstrip("/"), *parts]) if self.key.strip("/") else "/".join(parts)
        return S3Uri(self.bucket, key)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


def endpoint_from_env(env: dict[str, str] | None = None) -> str | None:
    env = dict(os.environ) if env is None else env
    return next((env[name] for name in ENDPOINT_ENVS if env.get(name)), None)


class S3:
    """One boto3 S3 client (built on first use) and the transfers sagetext needs."""

    def __init__(self, endpoint_url: str | None = None, client: Any = None) -> None:
        self.endpoint_url = endpoint_url if endpoint_url is not None else endpoint_from_env()
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError as exc:
                raise ClientError("s3:// URIs need boto3, which is not installed: "
                                  "pip install 'sagetext[s3]'") from exc
            self._client = boto3.session.Session().client("s3", endpoint_url=self.endpoint_url)
        return self._client

    def download_prefix(self, uri: str, target: Path) -> list[Path]:
        """Every object under ``uri`` into ``target`` (see the module docstring for the
        layout); returns the files written. No objects at all is a ClientError, as on SageMaker."""
        location = S3Uri.parse(uri)
        written = []
        for key in self._keys(location, uri):
            relative = _relative_key(location.key, key)
            if relative is None:
                raise ClientError(f"{uri}: object key {key!r} would land outside the channel "
                                  "folder ('..' or an empty path component); rename the object")
            written.append(self._download(location.bucket, key, target / relative, uri))
        if not written:
            raise ClientError(f"{uri}: no objects under this prefix (bucket {location.bucket!r}, "
                              f"key prefix {location.key!r})")
        return written

    def download_file(self, uri: str, path: Path) -> Path:
        """The single object ``uri`` into ``path``."""
        location = S3Uri.parse(uri)
        if not location.key or location.key.endswith("/"):
            raise ClientError(f"{uri}: expected the URI of one object, e.g. s3://bucket/prefix/model.tar.gz")
        return self._download(location.bucket, location.key, path, uri)

    def upload_file(self, path: Path, uri: str) -> str:
        """``path`` to the object ``uri`` (multipart for large files); returns the URI."""
        location = S3Uri.parse(uri)
        try:
            self.client.upload_file(str(path), location.bucket, location.key)
        except Exception as exc:  # noqa: BLE001 - boto3 wraps the S3 error in S3UploadFailedError
            raise _client_error(uri, "upload", exc) from exc
        return str(location)

    def _keys(self, location: S3Uri, uri: str) -> Iterator[str]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=location.bucket, Prefix=location.key)
            for page in pages:
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):
                        yield item["Key"]
        except ClientError:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore's errors become one ClientError
            raise _client_error(uri, "list", exc) from exc

    def _download(self, bucket: str, key: str, path: Path, uri: str) -> Path:
        """Stream one object to ``path`` through a temporary file beside it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            with open(partial, "wb") as f:
                shutil.copyfileobj(body, f, _CHUNK)
            os.replace(partial, path)
        except Exception as exc:  # noqa: BLE001
            partial.unlink(missing_ok=True)
            if isinstance(exc, OSError) and not _is_boto_error(exc):
                raise ClientError(f"{uri}: cannot write {path}: {exc.strerror or exc}") from exc
            raise _client_error(f"{SCHEME}{bucket}/{key}", "download", exc) from exc
        return path


def _relative_key(prefix: str, key: str) -> str | None:
    """Where ``key`` lands inside the channel folder, or None if that would leave it."""
    if prefix == "" or prefix.endswith("/"):
        relative = key[len(prefix):]
    elif key == prefix or not key.startswith(prefix + "/"):
        relative = key[len(posixpath.dirname(prefix)):].lstrip("/")  # a file, or a partial name
    else:
        relative = key[len(prefix) + 1:]
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts):
        return None
    return relative


def _is_boto_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("botocore", "boto3", "urllib3")


def _client_error(uri: str, action: str, exc: Exception) -> ClientError:
    """A ClientError naming the URI and S3's error code (NoSuchBucket, AccessDenied, ...)."""
    code, message = _s3_error(exc)
    hints = {"NoSuchBucket": "the bucket does not exist", "NoSuchKey": "no object with this key",
             "404": "no object with this key", "AccessDenied": "these credentials may not access it",
             "403": "these credentials may not access it",
             "InvalidAccessKeyId": "the access key is not known to this endpoint",
             "SignatureDoesNotMatch": "the secret key does not match the access key"}
    hint = hints.get(code, message)
    return ClientError(f"{uri}: S3 {action} failed: {code}" + (f" ({hint})" if hint else ""))


def _s3_error(exc: Exception) -> tuple[str, str]:
    """(S3 error code, message) from a botocore/boto3 exception, or its class name."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # S3UploadFailedError wraps the error
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, dict) and "Error" in response:
            error = response["Error"]
            return str(error.get("Code", "Unknown")), str(error.get("Message", ""))
        current = current.__cause__ or current.__context__
    text = str(exc)
    for code in ("NoSuchBucket", "NoSuchKey", "AccessDenied", "InvalidAccessKeyId", "404", "403"):
        if code in text:
            return code, ""
    return type(exc).__name__, text
