"""HTTP(S) and WebDAV through httpx and webdav4: a GET into a file, a PUT per file, or a WebDAV
collection (MKCOL for every folder, then PUT).

Credentials come only from the environment the operator sets from the platform's Secret:
``EB_HTTP_TOKEN`` (a bearer token) or ``EB_HTTP_USERNAME``/``EB_HTTP_PASSWORD`` (basic). Proxies
and CA bundles follow the usual variables (``HTTPS_PROXY``, ``SSL_CERT_FILE``, ...).

Bytes are moved as served: ``Accept-Encoding: identity``, so a compressed transfer encoding never
changes what lands in the volume. An upload is verified by asking for the stored size (HEAD, or
PROPFIND for WebDAV); a server that tells neither is said so in the summary.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator, Mapping
from typing import IO
from urllib.parse import quote, unquote, urlsplit

import httpx
from webdav4.client import Client as DavClient
from webdav4.client import ClientError as DavError
from webdav4.client import HTTPError as DavHTTPError
from webdav4.client import ResourceAlreadyExists, ResourceConflict

from eb_operator.stager.common import CHUNK, TIMEOUT, StageError, Tally, files_under, part_path, safe_join

IDENTITY = {"Accept-Encoding": "identity"}


def auth(env: Mapping[str, str]) -> httpx.Auth | None:
    """The credentials in ``env``, if any."""
    token = env.get("EB_HTTP_TOKEN")
    if token:
        return _Bearer(token)
    user, password = env.get("EB_HTTP_USERNAME"), env.get("EB_HTTP_PASSWORD")
    if user and password is not None:
        return httpx.BasicAuth(user, password)
    return None


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def reason(e: BaseException) -> str:
    """One line saying why an HTTP exchange failed."""
    if isinstance(e, StageError):
        return str(e)
    if isinstance(e, DavHTTPError):
        return f"HTTP {e.status_code} {e.response.reason_phrase}".rstrip()
    if isinstance(e, httpx.HTTPStatusError):
        return f"HTTP {e.response.status_code} {e.response.reason_phrase}".rstrip()
    if isinstance(e, httpx.ConnectError | httpx.ConnectTimeout):
        return f"cannot connect: {e}" if str(e) else "cannot connect"
    if isinstance(e, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(e, DavError) and e.__cause__ is not None:
        return f"{e}: {reason(e.__cause__)}"
    return f"{type(e).__name__}: {e}"


def _client(env: Mapping[str, str]) -> httpx.Client:
    return httpx.Client(
        auth=auth(env), timeout=httpx.Timeout(TIMEOUT), follow_redirects=True, headers=IDENTITY
    )


def stage_in(url: str, dest: str, env: Mapping[str, str] = os.environ) -> Tally:
    """One GET; the file is named after the URL's last path segment (or ``data``)."""
    tally = Tally()
    name = os.path.basename(urlsplit(url).path.rstrip("/")) or "data"
    try:
        target = safe_join(dest, unquote(name))
        part = part_path(target)
        with _client(env) as http, http.stream("GET", url) as resp:
            if resp.status_code >= 400:
                raise StageError(f"HTTP {resp.status_code} {resp.reason_phrase}".rstrip())
            expected = resp.headers.get("Content-Length")
            total = 0
            with open(part, "wb") as out:
                for chunk in resp.iter_raw(CHUNK):
                    out.write(chunk)
                    total += len(chunk)
        if expected is not None and expected.isdigit() and int(expected) != total:
            raise StageError(f"short read: {total} of {expected} bytes")
        os.replace(part, target)
    except (OSError, StageError, ValueError, httpx.HTTPError) as e:
        raise StageError(f"GET {url}: {reason(e)}") from None
    tally.add(total)
    return tally


def _reader(f: IO[bytes]) -> Iterator[bytes]:
    while chunk := f.read(CHUNK):
        yield chunk


def file_url(base: str, relative: str) -> str:
    """The URL a file ``relative`` to the uploaded directory goes to, below ``base``."""
    return base.rstrip("/") + "/" + quote(relative, safe="/-_.~")


def _stored_size(http: httpx.Client, url: str) -> int | None:
    resp = http.head(url)
    if resp.status_code in (405, 501):
        return None
    resp.raise_for_status()
    value = resp.headers.get("Content-Length")
    return int(value) if value is not None and value.isdigit() else None


def stage_out(url: str, src: str, env: Mapping[str, str] = os.environ) -> Tally:
    """PUT every file under ``src`` to ``url/<path below src>``; the server makes any folders."""
    tally = Tally()
    with _client(env) as http:
        for path, relative, size in files_under(src):
            target = file_url(url, relative)
            try:
                with open(path, "rb") as f:
                    resp = http.put(target, content=_reader(f), headers={"Content-Length": str(size)})
                if resp.status_code >= 400:
                    raise StageError(f"HTTP {resp.status_code} {resp.reason_phrase}".rstrip())
                stored = _stored_size(http, target)
                if stored is not None and stored != size:
                    raise StageError(f"the server holds {stored} bytes, {size} were sent")
            except (OSError, StageError, httpx.HTTPError) as e:
                raise StageError(f"PUT {target}: {reason(e)}") from None
            tally.add(size, verified=stored is not None)
    return tally


def stage_out_webdav(url: str, src: str, env: Mapping[str, str] = os.environ) -> Tally:
    """Upload every file under ``src`` into the WebDAV collection ``url``, making it and every
    folder below it with MKCOL where missing (climbing only as far as a parent is missing);
    each file's stored size is read back with PROPFIND."""
    tally = Tally()
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}/"
    base = unquote(parts.path).strip("/")
    dav = DavClient(origin, auth=auth(env), timeout=httpx.Timeout(TIMEOUT), headers=IDENTITY)
    made: set[str] = set()

    def collection(path: str) -> None:
        if not path or path in made:
            return
        try:
            dav.mkdir(path)
        except ResourceAlreadyExists:
            pass
        except ResourceConflict:  # its parent is missing: make that first
            collection(path.rpartition("/")[0])
            dav.mkdir(path)
        made.add(path)

    try:
        collection(base)
    except (DavError, httpx.HTTPError) as e:
        raise StageError(f"MKCOL {url}: {reason(e)}") from None
    for path, relative, size in files_under(src):
        remote = f"{base}/{relative}" if base else relative
        target = file_url(url, relative)
        try:
            collection(remote.rpartition("/")[0])
            dav.upload_file(path, remote, overwrite=True)
            stored = dav.content_length(remote)
            if stored is not None and stored != size:
                raise StageError(f"the server holds {stored} bytes, {size} were sent")
        except (OSError, StageError, DavError, httpx.HTTPError) as e:
            raise StageError(f"PUT {target}: {reason(e)}") from None
        tally.add(size, verified=stored is not None)
    return tally
