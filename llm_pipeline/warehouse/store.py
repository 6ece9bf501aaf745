"""Where the data lives: a local directory, or any fsspec URL (`s3://bucket/prefix`, `gs://`, `az://`).

universal_pathlib gives every location one path type (`UPath`): a local path (or a `file://` URL) is a
`PosixUPath`, which is also a `pathlib.Path`, so the local code stays plain `os`/pathlib; a URL gets
its fsspec filesystem (s3fs, gcsfs, adlfs) and the same path operations. This module holds the few
places where the two genuinely differ, so nothing else branches on the kind of store:

- Credentials never travel in the URL or in run config: the filesystem finds them in the store's
  standard chain (AWS environment variables, profiles, instance roles; Google application default
  credentials; Azure environment and managed identity). `AWS_ENDPOINT_URL`, as botocore reads it,
  points s3fs at an S3-compatible store (MinIO, Ceph, R2). A URL with `user:secret@` is refused.
- Replacing a partition in one step: a partition is always written in full to a local file first
  (`warehouse/files.py`); `upload` hands that complete file to the filesystem's `put_file`. On S3
  that is one PutObject (a file under 2 x s3fs's 50 MiB part size) or a multipart upload (larger):
  S3 stores an object only when its whole body has arrived, and a multipart upload becomes an object
  only at CompleteMultipartUpload, so a crash mid-upload leaves the previous object and no half one.
  GCS (resumable uploads finalize at the end) and Azure (staged blocks, one Put Block List) alike.
- Reading: pyarrow reads a local file natively and a remote one through its fsspec filesystem (range
  requests, a bounded read-ahead); JSONL is read through a buffered reader, a line at a time.
- `check_reachable` asks the bucket once, so a wrong bucket or an unreachable endpoint fails a step
  before it does any work, with a message naming the URL and never the credentials.
"""

from __future__ import annotations

import io
import urllib.parse
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

import fsspec
from upath import UPath

__all__ = [
    "Location",
    "StoreError",
    "arrow_source",
    "check_reachable",
    "data_root",
    "is_local",
    "open_binary",
    "upload",
]

#: A local path (`pathlib.Path`, including `PosixUPath`) or a `UPath` on an fsspec filesystem.
Location: TypeAlias = Path | UPath

_LOCAL_PROTOCOLS = ("", "file", "local")
#: The optional extra (pyproject `[project.optional-dependencies]`) that installs each store's package.
_EXTRAS = {"gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}
#: Bytes a remote JSONL stream is read ahead by; lines are cut from this buffer, not fetched one by one.
_LINE_BUFFER_BYTES = 1 << 20


class StoreError(OSError):
    """The store behind a data root cannot be used; the message names the URL and what is wrong."""


def data_root(value: str) -> UPath:
    """The data root for a local path or an fsspec URL; ValueError for one that cannot work.

    Refused: credentials in the URL (they belong in the store's standard chain, and a URL ends up in
    logs and metadata) and a protocol fsspec does not know or whose package is not installed (gcsfs
    for gs://, adlfs for az://: the message names the extra that installs it). A `file://` URL is
    the local directory it names.
    """
    if "://" in value and "@" in urllib.parse.urlsplit(value).netloc:
        raise ValueError(
            f"{_without_userinfo(value)!r} carries credentials in the URL; leave them out and let the "
            "store's standard chain provide them (e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a "
            "profile or an instance role)"
        )
    try:
        path = UPath(value)
        if path.protocol in _LOCAL_PROTOCOLS:
            return UPath(path.path)
        fsspec.get_filesystem_class(path.protocol)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"{value!r} cannot be opened: {exc}{_install_hint(value)}") from None
    return path


def _install_hint(value: str) -> str:
    """How to install the package a store's URL needs, when the project has an extra for it."""
    extra = _EXTRAS.get(value.partition("://")[0].lower())
    if extra is None:
        return ""
    return f" (install the extra: pip install 'llm-pipeline[{extra}]', or uv sync --extra {extra})"


def _without_userinfo(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def is_local(path: Location) -> bool:
    """Whether `path` is on the local disk (plain os calls, rename for atomic replacement)."""
    return isinstance(path, Path)


def arrow_source(path: Location) -> tuple[str, Any]:
    """`(source, filesystem)` for pyarrow: the local file natively, else the path on its fsspec fs."""
    if isinstance(path, Path):
        return str(path), None
    return path.path, path.fs


def open_binary(path: Location) -> BinaryIO:
    """`path` opened for reading bytes, buffered so that iterating it yields lines cheaply.

    fsspec's own `readline` reads a whole block per line; a `BufferedReader` over the remote file
    cuts lines out of one buffer instead, so a large day streams in bounded memory.
    """
    if isinstance(path, Path):
        return path.open("rb")
    return io.BufferedReader(path.open("rb"), buffer_size=_LINE_BUFFER_BYTES)


def upload(local: Path, remote: UPath) -> None:
    """Copy the complete local file `local` to `remote`; the object appears whole or not at all."""
    remote.fs.put_file(str(local), remote.path)


def check_reachable(root: Location) -> None:
    """Raise StoreError now if the bucket (container) of `root` is missing or cannot be reached.

    Local roots pass (a missing input file is reported by the step that needs it). The store's own
    client raises its own exception types (botocore, google-auth, azure-core): every one of them
    becomes a StoreError whose message names the URL; the original is not chained, so nothing it
    carried can reach a log beyond its message.
    """
    if isinstance(root, Path) or not root.drive:
        return
    bucket = root.drive
    try:
        root.fs.info(bucket)
    except FileNotFoundError:
        raise StoreError(f"{root}: the bucket {bucket!r} does not exist") from None
    except PermissionError as exc:
        raise StoreError(
            f"{root}: access to the bucket {bucket!r} was denied ({exc}); check the credentials the "
            "store's standard chain finds and that they may list the bucket"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any client's error, turned into one typed, named error
        raise StoreError(f"{root}: the store cannot be reached ({type(exc).__name__}: {exc})") from None
