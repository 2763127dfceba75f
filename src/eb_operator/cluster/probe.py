"""Can the platform reach the data a request names, and how big is it? Asked at offer time.

The spec requires NO when a client names a location the broker cannot reach (digest §5.1 item 6),
and the offer's start must leave time to stage the data (item 8). The wire model's judge checks
what needs no I/O (types, configured endpoints); this module does the I/O: one HTTP request per
data resource, all at once, each bounded by ``timeout``:

* simple (HTTP(S)) data, IVOA data (its access URL) and the notebook's location: ``HEAD``;
  any answer of 400 or more, or no answer, is a NO with the cause; ``Content-Length`` is the size;
* S3 data: ``HeadObject`` (or ``ListObjectsV2`` of the prefix, summing the first page's sizes)
  through botocore, with the endpoint's Secret from the platform when it has one (anonymous
  otherwise) and its addressing style; "no such object or prefix", "access denied" or no answer
  is a NO. botocore is synchronous: its calls run in a thread, bounded by ``timeout`` (connect
  and read) and one attempt;
* Rucio data: ``GET /ping`` of the Rucio server; no answer is a NO.

:func:`probe_request` never raises for a bad request: a request the wire model cannot read gives
an empty :class:`Probe`, and the judge says why.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import botocore.session
import httpx
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from eb_operator.model import (
    IvoaDataResource,
    JupyterNotebook,
    MessageItem,
    MessageLevel,
    MessageType,
    RequestError,
    RucioDataResource,
    S3DataResource,
    SimpleDataResource,
    parse_offerset_request,
)
from eb_operator.model.platform import DataEndpoint, PlatformPolicy

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

#: ``read_secret(namespace, name)`` -> the Secret's ``data`` (base64 values), or None if absent.
SecretReader = Callable[[str | None, str], Awaitable[Mapping[str, str] | None]]

DEFAULT_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class Probe:
    """What probing found: ERROR messages (the answer is NO) and the bytes to stage, when known."""

    messages: list[MessageItem] = field(default_factory=list)
    bytes: int | None = None


@dataclass(frozen=True, slots=True)
class _Found:
    problem: str | None = None  # the template of an ERROR message, with {path}
    values: Mapping[str, str] = field(default_factory=dict)
    size: int | None = None


def endpoint_of(url: str, policy: PlatformPolicy) -> DataEndpoint | None:
    """The platform's data endpoint for ``url`` (compared without case or a trailing slash)."""
    return policy.data_endpoint(url)


def _why(e: Exception) -> str:
    if isinstance(e, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(e, httpx.ConnectError):
        return f"connection failed ({e})" if str(e) else "connection failed"
    return f"{type(e).__name__}: {e}"


def _size(headers: httpx.Headers) -> int | None:
    value = headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


async def _head_url(http: httpx.AsyncClient, url: str) -> _Found:
    try:
        resp = await http.head(url, follow_redirects=True)
    except httpx.HTTPError as e:
        return _Found("{path}: the broker cannot reach {url}: {why}", {"url": url, "why": _why(e)})
    if resp.status_code in (405, 501):  # HEAD not allowed: reachable, size unknown
        return _Found()
    if resp.status_code >= 400:
        return _Found(
            "{path}: {url} answered HTTP {status}",
            {"url": url, "status": f"{resp.status_code} {resp.reason_phrase}".strip()},
        )
    return _Found(size=_size(resp.headers))


async def _credentials(
    endpoint: DataEndpoint | None, read_secret: SecretReader | None
) -> tuple[str, str, str] | None:
    if endpoint is None or endpoint.secret_name is None or read_secret is None:
        return None
    data = await read_secret(endpoint.secret_namespace, endpoint.secret_name)
    if not data:
        return None

    def value(key: str) -> str | None:
        raw = data.get(key)
        return base64.b64decode(raw).decode() if raw else None

    access, secret = value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        return None
    return access, secret, value("AWS_REGION") or value("AWS_DEFAULT_REGION") or "us-east-1"


@functools.cache
def _botocore() -> botocore.session.Session:
    """One botocore session for the process: it caches the S3 service model it loads."""
    return botocore.session.get_session()


def s3_client(
    endpoint: str,
    creds: tuple[str, str, str] | None,
    timeout: float,
    addressing: Literal["path", "virtual", "auto"] = "path",
) -> S3Client:
    """A botocore S3 client for a probe: path-style by default (versitygw, MinIO), SigV4 with
    ``creds`` (access key, secret, region) or unsigned, one attempt, ``timeout`` per connect and
    read."""
    access, secret, region = creds if creds else (None, None, "us-east-1")
    config = Config(
        region_name=region,
        signature_version="s3v4" if creds else UNSIGNED,
        s3={"addressing_style": addressing},
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=timeout,
        read_timeout=timeout,
    )
    client = _botocore().create_client(
        "s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret, config=config
    )
    return cast("S3Client", client)


def _s3_status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


async def _s3(
    resource: S3DataResource,
    policy: PlatformPolicy,
    read_secret: SecretReader | None,
    timeout: float,  # noqa: ASYNC109 - each botocore call's connect and read bound, not the whole probe
) -> _Found:
    endpoint, bucket, key = resource.endpoint or "", resource.bucket or "", resource.object or ""
    configured = endpoint_of(endpoint, policy)
    creds = await _credentials(configured, read_secret)
    where = {"endpoint": endpoint, "object": f"s3://{bucket}/{key}"}
    addressing = configured.addressing_style if configured is not None else "path"

    def find() -> int | None:
        s3 = s3_client(endpoint, creds, timeout, addressing)
        if key and not key.endswith("/"):
            try:
                return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
            except ClientError as e:
                if _s3_status(e) != 404:
                    raise
        page = s3.list_objects_v2(Bucket=bucket, Prefix=key)
        sizes = [int(item.get("Size", 0)) for item in page.get("Contents", [])]
        return sum(sizes) if sizes else None

    try:
        size = await asyncio.wait_for(asyncio.to_thread(find), timeout * 3)
    except ClientError as e:
        if _s3_status(e) == 404:
            return _Found("{path}: {object} does not exist at {endpoint}", where)
        return _denied(e, where)
    except (EndpointConnectionError, ConnectTimeoutError) as e:
        return _Found(
            "{path}: the broker cannot reach the S3 endpoint {endpoint}: {why}",
            {**where, "why": f"connection failed ({e})"},
        )
    except (ReadTimeoutError, TimeoutError) as e:
        return _Found(
            "{path}: the broker cannot reach the S3 endpoint {endpoint}: {why}",
            {**where, "why": f"no answer in time ({type(e).__name__})"},
        )
    except BotoCoreError as e:
        return _Found("{path}: {object} at {endpoint}: {why}", {**where, "why": str(e)})
    if size is None:
        return _Found("{path}: {object} does not exist at {endpoint}", where)
    return _Found(size=size)


def _denied(e: ClientError, where: Mapping[str, str]) -> _Found:
    code = str(e.response.get("Error", {}).get("Code") or "")
    status = str(_s3_status(e)) + (f" {code}" if code and not code.isdigit() else "")
    return _Found(
        "{path}: {endpoint} refused access to {object} (HTTP {status})", {**where, "status": status}
    )


async def _rucio(http: httpx.AsyncClient, resource: RucioDataResource) -> _Found:
    url = (resource.endpoint or "").rstrip("/") + "/ping"
    try:
        await http.get(url)
    except httpx.HTTPError as e:
        return _Found(
            "{path}: the broker cannot reach the Rucio server {endpoint}: {why}",
            {"endpoint": resource.endpoint or "", "why": _why(e)},
        )
    return _Found()


def _ivoa_url(resource: IvoaDataResource) -> str | None:
    block = resource.ivoa
    for holder in (block.datalink, block.obscore) if block else ():
        url = holder.access_url if holder is not None else None
        if url and url.startswith(("http://", "https://")):
            return url
    return None


async def probe_request(
    request: Mapping[str, Any] | None,
    policy: PlatformPolicy,
    read_secret: SecretReader | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - per request, not for the whole probe
) -> Probe:
    """Probe every data location ``request`` (a canonical ivoa-std request dict) names."""
    if not request:
        return Probe()
    try:
        req, _ = parse_offerset_request(dict(request))
    except RequestError:
        return Probe()
    exe = req.executable
    if not req.data and not (isinstance(exe, JupyterNotebook) and exe.location):
        return Probe()
    checks: list[tuple[str, Awaitable[_Found]]] = []
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
        if isinstance(exe, JupyterNotebook) and exe.location and exe.location.startswith(("http:", "https:")):
            checks.append(("executable/location", _head_url(http, exe.location)))
        for i, resource in enumerate(req.data):
            path = f"resources/data/{i}"
            if isinstance(resource, SimpleDataResource) and resource.location:
                if resource.location.startswith(("http://", "https://")):
                    checks.append((f"{path}/location", _head_url(http, resource.location)))
            elif isinstance(resource, S3DataResource) and resource.endpoint and resource.bucket:
                if endpoint_of(resource.endpoint, policy) is not None:
                    checks.append((f"{path}/endpoint", _s3(resource, policy, read_secret, timeout)))
            elif isinstance(resource, RucioDataResource) and resource.endpoint:
                if policy.images.rucio_stager is not None:
                    checks.append((f"{path}/endpoint", _rucio(http, resource)))
            elif isinstance(resource, IvoaDataResource):
                url = _ivoa_url(resource)
                if url is not None:
                    checks.append((f"{path}/ivoa", _head_url(http, url)))
        found = await asyncio.gather(*(c for _, c in checks))
    messages = []
    total: int | None = None
    for (path, _), result in zip(checks, found, strict=True):
        if result.problem is not None:
            values = {"path": path, **result.values}
            messages.append(
                MessageItem.make(MessageType.UNREACHABLE, MessageLevel.ERROR, result.problem, values)
            )
        elif result.size is not None and not path.startswith("executable"):
            total = (total or 0) + result.size
    return Probe(messages, total)
