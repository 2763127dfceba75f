"""The data stager: one standard-library Python file, run inside init containers.

The operator passes this file's source to ``python3 -c`` in a stager image (any image with a
python3; the default is the workload image), so nothing has to be installed for it. It copies
data into a directory of a volume before the workload starts:

    python3 -c "$SOURCE" http URL DEST_DIR
        one HTTP(S) GET; the file is named after the URL's last path segment (or ``data``).
    python3 -c "$SOURCE" s3 ENDPOINT BUCKET KEY_OR_PREFIX DEST_DIR
        one object when KEY names one (HEAD succeeds), else every object under the prefix
        (ListObjectsV2, paged), keeping the path below the prefix. Path-style URLs, AWS
        Signature V4 with ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (region
        ``AWS_REGION``, default us-east-1) when set, anonymous otherwise.

Writes go to ``NAME.part`` and are renamed when complete; a failure exits 1 with one line on
stderr naming the URL and the cause (the Pod's termination message, which the operator copies
into the session's FAILED message). On success it prints one summary line (files, bytes, seconds,
MB/s). The operator's probe imports :func:`sign_v4` from here, so there is one SigV4.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Mapping

CHUNK = 1 << 20
TIMEOUT = 60.0
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class StageError(Exception):
    pass


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign_v4(
    method: str,
    url: str,
    access_key: str,
    secret_key: str,
    region: str = "us-east-1",
    now: datetime.datetime | None = None,
    service: str = "s3",
    payload_hash: str = EMPTY_SHA256,
) -> dict[str, str]:
    """The headers that sign a request with AWS Signature Version 4 (``payload_hash``: the hex
    SHA-256 of the body; a body-less request by default)."""
    when = now or datetime.datetime.now(datetime.UTC)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    day = when.strftime("%Y%m%d")
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in sorted(query)
    )
    path = urllib.parse.quote(urllib.parse.unquote(parts.path or "/"), safe="/-_.~")
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query,
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed,
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "x-amz-content-sha256": payload_hash,
        "x-amz-date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, "
        f"Signature={signature}",
    }


def s3_url(endpoint: str, bucket: str, key: str = "", query: Mapping[str, str] | None = None) -> str:
    """A path-style S3 URL."""
    base = endpoint.rstrip("/")
    url = f"{base}/{urllib.parse.quote(bucket, safe='')}"
    if key:
        url += "/" + urllib.parse.quote(key, safe="/-_.~")
    if query:
        url += "?" + urllib.parse.urlencode(sorted(query.items()), quote_via=urllib.parse.quote)
    return url


def _credentials(env: Mapping[str, str]) -> tuple[str, str, str] | None:
    access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        return None
    return access, secret, env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


def _request(method: str, url: str, creds: tuple[str, str, str] | None) -> urllib.request.Request:
    headers = sign_v4(method, url, *creds) if creds else {}
    return urllib.request.Request(url, method=method, headers=headers)


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"cannot connect: {e.reason}"
    return f"{type(e).__name__}: {e}"


def _download(req: urllib.request.Request, target: str) -> int:
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    part = target + ".part"
    total = 0
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp, open(part, "wb") as out:
        expected = resp.headers.get("Content-Length")
        while True:
            chunk = resp.read(CHUNK)
            if not chunk:
                break
            out.write(chunk)
            total += len(chunk)
    if expected is not None and expected.isdigit() and int(expected) != total:
        raise StageError(f"short read: {total} of {expected} bytes")
    os.replace(part, target)
    return total


def _safe_join(root: str, relative: str) -> str:
    path = os.path.normpath(os.path.join(root, relative))
    if path != root and not path.startswith(root.rstrip("/") + "/"):
        raise StageError(f"refusing to write outside {root}: {relative}")
    return path


def stage_http(url: str, dest: str) -> tuple[int, int]:
    name = os.path.basename(urllib.parse.urlsplit(url).path.rstrip("/")) or "data"
    try:
        return 1, _download(urllib.request.Request(url), _safe_join(dest, urllib.parse.unquote(name)))
    except (OSError, StageError, ValueError) as e:
        raise StageError(f"GET {url}: {_reason(e)}") from None


def _list(endpoint: str, bucket: str, prefix: str, creds: tuple[str, str, str] | None) -> list[str]:
    keys: list[str] = []
    token: str | None = None
    while True:
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        url = s3_url(endpoint, bucket, query=query)
        try:
            with urllib.request.urlopen(_request("GET", url, creds), timeout=TIMEOUT) as resp:
                root = ET.fromstring(resp.read())
        except (OSError, ET.ParseError) as e:
            raise StageError(f"list s3://{bucket}/{prefix} at {endpoint}: {_reason(e)}") from None
        ns = root.tag.partition("}")[0] + "}" if root.tag.startswith("{") else ""
        keys += [k.text or "" for k in root.iter(f"{ns}Key")]
        truncated = (root.findtext(f"{ns}IsTruncated") or "false").lower() == "true"
        token = root.findtext(f"{ns}NextContinuationToken")
        if not truncated or not token:
            return [k for k in keys if k and not k.endswith("/")]


def stage_s3(
    endpoint: str, bucket: str, key: str, dest: str, env: Mapping[str, str] = os.environ
) -> tuple[int, int]:
    creds = _credentials(env)
    if key and not key.endswith("/"):
        url = s3_url(endpoint, bucket, key)
        try:
            with urllib.request.urlopen(_request("HEAD", url, creds), timeout=TIMEOUT):
                pass
            single = True
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise StageError(f"HEAD s3://{bucket}/{key} at {endpoint}: {_reason(e)}") from None
            single = False
        except OSError as e:
            raise StageError(f"HEAD s3://{bucket}/{key} at {endpoint}: {_reason(e)}") from None
        if single:
            target = _safe_join(dest, os.path.basename(key))
            try:
                return 1, _download(_request("GET", url, creds), target)
            except (OSError, StageError) as e:
                raise StageError(f"GET s3://{bucket}/{key} at {endpoint}: {_reason(e)}") from None
    keys = _list(endpoint, bucket, key, creds)
    if not keys:
        raise StageError(f"s3://{bucket}/{key} at {endpoint}: no such object or prefix")
    files = size = 0
    for k in keys:
        relative = k[len(key) :].lstrip("/") if key else k
        try:
            size += _download(_request("GET", s3_url(endpoint, bucket, k), creds), _safe_join(dest, relative))
        except (OSError, StageError) as e:
            raise StageError(f"GET s3://{bucket}/{k} at {endpoint}: {_reason(e)}") from None
        files += 1
    return files, size


def main(argv: list[str]) -> int:
    began = time.monotonic()
    try:
        if len(argv) == 3 and argv[0] == "http":
            files, size = stage_http(argv[1], argv[2])
        elif len(argv) == 5 and argv[0] == "s3":
            files, size = stage_s3(argv[1], argv[2], argv[3], argv[4])
        else:
            print("usage: stager http URL DEST | s3 ENDPOINT BUCKET KEY DEST", file=sys.stderr)
            return 2
    except StageError as e:
        print(f"staging failed: {e}", file=sys.stderr)
        return 1
    seconds = max(time.monotonic() - began, 1e-6)
    print(f"staged {files} files, {size} bytes in {seconds:.2f} s ({size / seconds / 1e6:.1f} MB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
