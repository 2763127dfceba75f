"""S3 through boto3: downloads of an object or a prefix, uploads of a directory.

boto3 does the protocol: Signature V4, path-style or virtual-host addressing (path by default, as
versitygw, MinIO and Ceph without wildcard DNS need), multipart transfers with parallel parts,
retries with back-off, and a CRC32 checksum on every upload request that the server checks.
Credentials come only from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (and
``AWS_SESSION_TOKEN``), which the operator sets from the platform's Secret; without them requests
are anonymous (boto3's other credential sources, such as instance metadata, are never asked). An
S3 flavour that refuses checksum trailers works with ``AWS_REQUEST_CHECKSUM_CALCULATION=when_required``
in that Secret (botocore reads it).

After each upload the object's size and the checksum the server reports are compared with the
file: a full-object CRC32, or the composite one of a multipart upload (the CRC32 of the parts'
CRC32s, "-N"); a server that reports no checksum is checked by size alone, and said so.
"""

from __future__ import annotations

import base64
import os
import zlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, get_args

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from s3transfer.utils import ChunksizeAdjuster

from eb_operator.stager.common import CHUNK, TIMEOUT, StageError, Tally, files_under, part_path, safe_join

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

#: Files above this size go up and down in parts of this size, four at a time.
PART_SIZE = 64 * 1024 * 1024
TRANSFER = TransferConfig(
    multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=4, use_threads=True
)
AddressingStyle = Literal["path", "virtual", "auto"]
ADDRESSING_STYLES: tuple[AddressingStyle, ...] = get_args(AddressingStyle)


def client(endpoint: str, env: Mapping[str, str], addressing: AddressingStyle = "path") -> S3Client:
    """An S3 client for ``endpoint`` with the credentials in ``env`` (anonymous without them)."""
    access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = Config(
        region_name=region,
        signature_version="s3v4" if access and secret else UNSIGNED,
        s3={"addressing_style": addressing},
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=TIMEOUT,
        read_timeout=TIMEOUT,
    )
    session = boto3.session.Session(
        aws_access_key_id=access or None,
        aws_secret_access_key=secret or None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
        region_name=region,
    )
    try:
        return session.client("s3", endpoint_url=endpoint, config=config)
    except (BotoCoreError, ValueError) as e:
        raise StageError(f"S3 endpoint {endpoint}: {e}") from None


def reason(e: BaseException) -> str:
    """One line saying why an S3 call failed: the server's error code and message, or the
    connection problem."""
    if isinstance(e, StageError):
        return str(e)
    if isinstance(e, S3UploadFailedError) and isinstance(e.__context__, ClientError | BotoCoreError):
        e = e.__context__
    if isinstance(e, ClientError):
        error: Mapping[str, Any] = e.response.get("Error", {})
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code, message = str(error.get("Code") or ""), str(error.get("Message") or "")
        if not code or code.isdigit():  # a HEAD's error has no body: only the status
            return f"HTTP {status or code} {message}".rstrip()
        text = f"{code} (HTTP {status})" if status else code
        return f"{text}: {message}" if message and message != code else text
    if isinstance(e, EndpointConnectionError | ConnectTimeoutError):
        return f"cannot connect: {e}"
    if isinstance(e, ReadTimeoutError):
        return f"no answer in time: {e}"
    if isinstance(e, NoCredentialsError):
        return "no credentials"
    return f"{type(e).__name__}: {e}"


def _status(e: ClientError) -> int | None:
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _listing(s3: S3Client, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item.get("Key", "")
            if key and not key.endswith("/"):
                yield key, int(item.get("Size", 0))


def _download(s3: S3Client, bucket: str, key: str, size: int, target: str) -> int:
    part = part_path(target)
    s3.download_file(bucket, key, part, Config=TRANSFER)
    got = os.path.getsize(part)
    if got != size:
        raise StageError(f"short read: {got} of {size} bytes")
    os.replace(part, target)
    return got


def stage_in(
    endpoint: str,
    bucket: str,
    key: str,
    dest: str,
    env: Mapping[str, str] = os.environ,
    addressing: AddressingStyle = "path",
) -> Tally:
    """One object when ``key`` names one, else every object under the prefix ``key`` (the whole
    bucket when blank), keeping the path below the prefix."""
    s3, tally = client(endpoint, env, addressing), Tally()
    if key and not key.endswith("/"):
        try:
            size: int | None = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        except ClientError as e:
            if _status(e) != 404:
                raise StageError(f"HEAD s3://{bucket}/{key} at {endpoint}: {reason(e)}") from None
            size = None
        except BotoCoreError as e:
            raise StageError(f"HEAD s3://{bucket}/{key} at {endpoint}: {reason(e)}") from None
        if size is not None:
            try:
                tally.add(_download(s3, bucket, key, size, safe_join(dest, os.path.basename(key))))
            except (BotoCoreError, ClientError, OSError, StageError) as e:
                raise StageError(f"GET s3://{bucket}/{key} at {endpoint}: {reason(e)}") from None
            return tally
    try:
        objects = list(_listing(s3, bucket, key))
    except (BotoCoreError, ClientError) as e:
        raise StageError(f"list s3://{bucket}/{key} at {endpoint}: {reason(e)}") from None
    if not objects:
        raise StageError(f"s3://{bucket}/{key} at {endpoint}: no such object or prefix")
    for name, size in objects:
        relative = name[len(key) :].lstrip("/") if key else name
        try:
            tally.add(_download(s3, bucket, name, size, safe_join(dest, relative)))
        except (BotoCoreError, ClientError, OSError, StageError) as e:
            raise StageError(f"GET s3://{bucket}/{name} at {endpoint}: {reason(e)}") from None
    return tally


def object_key(prefix: str, relative: str) -> str:
    """The key of a file ``relative`` to the uploaded directory, under ``prefix`` (a folder:
    ``results`` and ``results/`` both give ``results/out.fits``)."""
    return f"{prefix.rstrip('/')}/{relative}" if prefix.strip("/") else relative


def crc32s(path: str, size: int) -> tuple[str, str]:
    """The file's CRC32 as S3 reports it (base64 of the big-endian value): whole, and composite
    over the parts a multipart upload of ``size`` bytes makes with :data:`TRANSFER`."""
    part = ChunksizeAdjuster().adjust_chunksize(TRANSFER.multipart_chunksize, size)
    whole, parts, current, in_part = 0, bytearray(), 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            whole = zlib.crc32(chunk, whole)
            view = memoryview(chunk)
            while view:
                take = min(len(view), part - in_part)
                current, in_part = zlib.crc32(view[:take], current), in_part + take
                view = view[take:]
                if in_part == part:
                    parts += current.to_bytes(4, "big")
                    current, in_part = 0, 0
    if in_part:
        parts += current.to_bytes(4, "big")
    count = len(parts) // 4

    def b64(value: int) -> str:
        return base64.b64encode(value.to_bytes(4, "big")).decode()

    return b64(whole), f"{b64(zlib.crc32(bytes(parts)))}-{count}"


def _verify(s3: S3Client, bucket: str, key: str, path: str, size: int) -> bool:
    """Compare the stored object with the file; True when a checksum was compared, False when
    only the size could be. A difference is a StageError."""
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    stored = int(head["ContentLength"])
    if stored != size:
        raise StageError(f"the server holds {stored} bytes, {size} were sent")
    remote = head.get("ChecksumCRC32")
    if not remote:
        return False
    whole, composite = crc32s(path, size)
    if remote not in (whole, composite):
        raise StageError(f"checksum mismatch: the server reports CRC32 {remote}, the file has {whole}")
    return True


def stage_out(
    endpoint: str,
    bucket: str,
    prefix: str,
    src: str,
    env: Mapping[str, str] = os.environ,
    addressing: AddressingStyle = "path",
) -> Tally:
    """Upload every file under ``src`` to ``s3://bucket/prefix/<path below src>``."""
    s3, tally = client(endpoint, env, addressing), Tally()
    for path, relative, size in files_under(src):
        key = object_key(prefix, relative)
        try:
            s3.upload_file(path, bucket, key, ExtraArgs={"ChecksumAlgorithm": "CRC32"}, Config=TRANSFER)
            tally.add(size, verified=_verify(s3, bucket, key, path, size))
        except (BotoCoreError, ClientError, S3UploadFailedError, OSError, StageError) as e:
            raise StageError(f"PUT s3://{bucket}/{key} at {endpoint}: {reason(e)}") from None
    return tally
