"""Signed URLs for the embedded S3 service and the HTTP endpoint that serves them.

Two URL shapes, both signed with HMAC-SHA256 under a secret the service draws at start:

* presigned URLs (``S3/PresignObject``), readable like S3's::

      http://127.0.0.1:<port>/s3/<bucket>/<key>?X-Gestalt-Method=GET&X-Gestalt-Expires=<unix>
          [&X-Gestalt-Content-Type=..][&X-Gestalt-Content-Disposition=..]
          [&X-Gestalt-Signed-Headers=a;b]&X-Gestalt-Signature=<hex>

  Signed header values are not in the URL: the request must carry them, and the
  signature is checked against the values it actually sends.
* object-access URLs (``S3ObjectAccess/CreateObjectAccessURL``), shaped like the host's::

      http://127.0.0.1:<port>/api/v1/s3/object-access/<base64url grant>.<base64url signature>

Either way the signature covers the kind of URL, method, bucket, key, expiry, content type,
content disposition and the required headers, so changing any of them gives 403, as does
an expired URL or a request with another method. The endpoint answers GET (with
``Range``), HEAD, PUT and DELETE on the object the URL names, with conditional headers
(``If-Match``, ``If-None-Match``, ``If-Modified-Since``, ``If-Unmodified-Since``).

The endpoint answers every request, however malformed: a bad or oversized URL or token is
403 (or 400 when it cannot even be parsed), a ``Range`` it cannot satisfy or read 416, a
body on GET, HEAD or DELETE 400. A client that goes away mid-reply costs one debug line.
Stored values are checked again before they become response headers: control characters
drop the header (logged), other non-ASCII text is sent as an RFC 2047 encoded word.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import logging
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import grpc

from gestalt.local._s3_store import (
    CHUNK_SIZE,
    Conditions,
    ObjectHeaders,
    RangeRequest,
    S3ServiceError,
    check_header_fields,
    has_control,
)

if TYPE_CHECKING:
    from gestalt.local._s3_store import LocalObjectStore, StoredObject

__all__ = ["METHODS", "Grant", "ObjectHttpServer", "UrlSigner"]

_log = logging.getLogger(__name__)

#: HTTP methods a URL can be minted for.
METHODS = ("GET", "PUT", "DELETE", "HEAD")

_PRESIGN_PREFIX = "/s3/"
_ACCESS_PREFIX = "/api/v1/s3/object-access/"
_META_PREFIX = "x-amz-meta-"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_RANGES = re.compile(r"^bytes=\s*\d*-\d*(\s*,\s*\d*-\d*)+\s*$")
#: Longest object-access token or URL target looked at; longer ones are refused with 403.
_MAX_TOKEN_CHARS = 16 * 1024
#: Range positions with more digits than this are beyond any object (2**63 has 19).
_MAX_RANGE_DIGITS = 19
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


@dataclass(frozen=True, slots=True)
class Grant:
    """What one signed URL allows: ``method`` on one object until ``expires`` (unix s)."""

    kind: str
    method: str
    bucket: str
    key: str
    expires: int
    content_type: str = ""
    content_disposition: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    def canonical(self) -> bytes:
        """The exact bytes the signature covers (JSON, so no field can bleed into another)."""
        fields = [
            self.kind,
            self.method,
            self.bucket,
            self.key,
            self.expires,
            self.content_type,
            self.content_disposition,
            [list(pair) for pair in self.headers],
        ]
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _Denied(Exception):
    """A URL that must not be honoured; the message is sent as the 403 body."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def normalize_headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Required headers as sorted ``(lower-case name, value)`` pairs."""
    return tuple(sorted((name.strip().lower(), value.strip()) for name, value in headers.items()))


class UrlSigner:
    """Mints and verifies signed URLs under one secret (see the module docstring)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the URL signing secret must have at least 16 bytes")
        self._secret = secret

    def _sign(self, grant: Grant) -> bytes:
        return hmac.new(self._secret, grant.canonical(), hashlib.sha256).digest()

    def presigned_url(self, base_url: str, grant: Grant) -> str:
        """A presigned URL for ``grant`` (kind ``presign``)."""
        path = "/".join(urllib.parse.quote(part, safe="") for part in (grant.bucket, grant.key))
        query = [("X-Gestalt-Method", grant.method), ("X-Gestalt-Expires", str(grant.expires))]
        if grant.content_type:
            query.append(("X-Gestalt-Content-Type", grant.content_type))
        if grant.content_disposition:
            query.append(("X-Gestalt-Content-Disposition", grant.content_disposition))
        if grant.headers:
            query.append(("X-Gestalt-Signed-Headers", ";".join(name for name, _ in grant.headers)))
        query.append(("X-Gestalt-Signature", self._sign(grant).hex()))
        return f"{base_url}{_PRESIGN_PREFIX}{path}?{urllib.parse.urlencode(query)}"

    def access_url(self, base_url: str, grant: Grant) -> str:
        """A host-style object-access URL for ``grant`` (kind ``access``)."""
        payload = grant.canonical()
        token = f"{_b64encode(payload)}.{_b64encode(self._sign(grant))}"
        return f"{base_url}{_ACCESS_PREFIX}{token}"

    def verify(self, target: str, headers: Mapping[str, str]) -> Grant | None:
        """The grant of a request path, or None if the path is no signed URL at all.

        Raises :class:`_Denied` for a signed URL that is malformed, tampered with,
        expired, or missing a header it requires.
        """
        if len(target) > _MAX_TOKEN_CHARS:
            raise _Denied("URL is too long")
        try:
            parsed = urllib.parse.urlsplit(target)
        except ValueError as exc:
            raise _Denied("malformed URL") from exc
        if parsed.path.startswith(_ACCESS_PREFIX):
            grant, signature = self._parse_access(parsed.path[len(_ACCESS_PREFIX) :])
        elif parsed.path.startswith(_PRESIGN_PREFIX):
            grant, signature = self._parse_presigned(parsed, headers)
        else:
            return None
        if not hmac.compare_digest(signature, self._sign(grant)):
            raise _Denied("signature does not match")
        if time.time() > grant.expires:
            raise _Denied("URL has expired")
        for name, value in grant.headers:
            if headers.get(name, "").strip() != value:
                raise _Denied(f"required header {name!r} is missing or differs")
        return grant

    @staticmethod
    def _parse_access(token: str) -> tuple[Grant, bytes]:
        try:
            payload_text, signature_text = token.split(".")
            fields = json.loads(_b64decode(payload_text))
            kind, method, bucket, key, expires, ctype, disposition, pairs = fields
            grant = Grant(
                kind=str(kind),
                method=str(method),
                bucket=str(bucket),
                key=str(key),
                expires=int(expires),
                content_type=str(ctype),
                content_disposition=str(disposition),
                headers=tuple((str(name), str(value)) for name, value in pairs),
            )
            signature = _b64decode(signature_text)
        except (ValueError, TypeError, binascii.Error, RecursionError) as exc:
            raise _Denied("malformed object-access token") from exc
        if grant.kind != "access":
            raise _Denied("signature does not match")
        return grant, signature

    @staticmethod
    def _parse_presigned(
        parsed: urllib.parse.SplitResult, headers: Mapping[str, str]
    ) -> tuple[Grant, bytes]:
        parts = parsed.path[len(_PRESIGN_PREFIX) :].split("/")
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        try:
            if len(parts) != 2:
                raise ValueError("path must be /s3/<bucket>/<key>")
            names = [n for n in query.get("X-Gestalt-Signed-Headers", "").split(";") if n]
            grant = Grant(
                kind="presign",
                method=query["X-Gestalt-Method"],
                bucket=urllib.parse.unquote(parts[0]),
                key=urllib.parse.unquote(parts[1]),
                expires=int(query["X-Gestalt-Expires"]),
                content_type=query.get("X-Gestalt-Content-Type", ""),
                content_disposition=query.get("X-Gestalt-Content-Disposition", ""),
                headers=tuple((name, headers.get(name, "").strip()) for name in names),
            )
            signature = bytes.fromhex(query["X-Gestalt-Signature"])
        except (KeyError, ValueError) as exc:
            raise _Denied("malformed presigned URL") from exc
        return grant, signature


def _http_date(micros: int) -> str:
    return email.utils.formatdate(micros // 1_000_000, usegmt=True)


def _parse_http_date(value: str | None) -> int | None:
    """An HTTP date as the last microsecond of its second (dates have 1 s resolution)."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * 1_000_000 + 999_999


class _BadRange(Exception):
    """A ``Range`` header the endpoint cannot serve (answered 416)."""


def _position(digits: str) -> int:
    """A range position; absurdly long numbers become one past any real object."""
    return int(digits) if len(digits) <= _MAX_RANGE_DIGITS else 2**63


def _parse_range(value: str | None) -> RangeRequest | None:
    """A single ``bytes=`` range. Several ranges are ignored (the whole object is sent, as
    RFC 9110 allows); anything else (other units, garbage, end before start) is
    :class:`_BadRange`."""
    if value is None:
        return None
    match = _RANGE.match(value.strip())
    if match is None:
        if _RANGES.match(value.strip()):
            return None
        raise _BadRange
    first, last = match.groups()
    if not first and not last:
        raise _BadRange
    if not first:
        return RangeRequest(suffix=_position(last))
    start = _position(first)
    end = _position(last) if last else None
    if end is not None and end < start:
        raise _BadRange
    return RangeRequest(start=start, end=end, clamp=True)


def _encoded(value: str) -> str:
    """``value`` as header text: ASCII as is, anything else as an RFC 2047 encoded word."""
    if value.isascii():
        return value
    return f"=?UTF-8?B?{base64.b64encode(value.encode('utf-8')).decode('ascii')}?="


def _safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` fit to send: names must be tokens and values free of control characters
    (anything else is dropped and logged), non-ASCII values are encoded."""
    out = {}
    for name, value in headers.items():
        if not name or not set(name) <= _TOKEN_CHARS or has_control(value):
            _log.warning("s3 http endpoint: not sending unsafe header %r", name)
            continue
        out[name] = _encoded(value)
    return out


class _Server(ThreadingHTTPServer):
    """The HTTP server with the store and signer its handlers use."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, store: LocalObjectStore, signer: UrlSigner) -> None:
        self.store = store
        self.signer = signer
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # socketserver would print the traceback to stderr; the library only logs, and a
        # client that went away is no failure of ours.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            _log.debug("s3 http client %s went away: %s", client_address, exc)
        else:
            _log.exception("s3 http endpoint failed while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    """Serves one request on a signed URL."""

    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "gestalt-local-s3"
    timeout = 30  # idle keep-alive connections end instead of holding a thread
    _started = False  # whether the reply to the current request has begun

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_POST(self) -> None:
        self._reply(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed\n", close=True)

    # -- plumbing -----------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def _reply(
        self,
        status: HTTPStatus,
        body: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        data = body.encode("utf-8")
        self._started = True
        self.send_response(status)
        for name, value in _safe_headers(headers or {}).items():
            self.send_header(name, value)
        if body:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if close:
            # The request body (if any) was not read, so the connection cannot be reused.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def _serve(self, method: str) -> None:
        try:
            self._answer(method)
        except (ConnectionError, TimeoutError) as exc:
            _log.debug("s3 http client went away: %s", exc)
            self.close_connection = True
        except Exception:
            _log.exception("s3 http endpoint failed on %s", method)
            self.close_connection = True
            if not self._started:  # else the reply is cut short: the client sees that
                self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n", close=True)

    def _answer(self, method: str) -> None:
        self._started = False
        if method != "PUT" and (
            self.headers.get("Content-Length", "0").strip() not in ("", "0")
            or "Transfer-Encoding" in self.headers
        ):
            self._reply(HTTPStatus.BAD_REQUEST, f"{method} takes no request body\n", close=True)
            return
        try:
            grant = self.server.signer.verify(self.path, self._headers())
        except _Denied as denied:
            self._reply(HTTPStatus.FORBIDDEN, f"{denied}\n", close=True)
            return
        if grant is None:
            self._reply(HTTPStatus.NOT_FOUND, "no such URL\n", close=True)
            return
        if grant.method != method:
            self._reply(HTTPStatus.FORBIDDEN, f"URL does not allow {method}\n", close=True)
            return
        try:
            if method in ("GET", "HEAD"):
                self._get(grant, head=method == "HEAD")
            elif method == "PUT":
                self._put(grant)
            else:
                self.server.store.delete(grant.bucket, grant.key)
                self._reply(HTTPStatus.NO_CONTENT)
        except S3ServiceError as err:
            self._error(err)
        except _BadRange:
            self._reply(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "unsupported Range\n", close=True
            )

    def _error(self, err: S3ServiceError) -> None:
        head = self.command in ("GET", "HEAD")
        if err.code == grpc.StatusCode.NOT_FOUND:
            self._reply(HTTPStatus.NOT_FOUND, f"{err.message}\n", close=True)
        elif err.code == grpc.StatusCode.FAILED_PRECONDITION:
            if head and err.not_modified:
                self._reply(HTTPStatus.NOT_MODIFIED, close=True)
            else:
                self._reply(HTTPStatus.PRECONDITION_FAILED, f"{err.message}\n", close=True)
        elif err.code == grpc.StatusCode.OUT_OF_RANGE:
            extra = {"Content-Range": f"bytes */{err.size}"} if err.size is not None else {}
            self._reply(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                f"{err.message}\n",
                headers=extra,
                close=True,
            )
        elif err.code == grpc.StatusCode.INVALID_ARGUMENT:
            self._reply(HTTPStatus.BAD_REQUEST, f"{err.message}\n", close=True)
        elif err.code == grpc.StatusCode.INTERNAL:
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, f"{err.message}\n", close=True)
        else:
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, f"{err.message}\n", close=True)

    def _conditions(self) -> Conditions:
        return Conditions(
            if_match=self.headers.get("If-Match", ""),
            if_none_match=self.headers.get("If-None-Match", ""),
            if_modified_since_us=_parse_http_date(self.headers.get("If-Modified-Since")),
            if_unmodified_since_us=_parse_http_date(self.headers.get("If-Unmodified-Since")),
        )

    @staticmethod
    def _object_headers(obj: StoredObject, grant: Grant) -> dict[str, str]:
        h = obj.headers
        out = {
            "Content-Type": grant.content_type or h.content_type or "application/octet-stream",
            "ETag": f'"{obj.etag}"',
            "Last-Modified": _http_date(obj.last_modified_us),
            "Accept-Ranges": "bytes",
        }
        optional = {
            "Cache-Control": h.cache_control,
            "Content-Disposition": grant.content_disposition or h.content_disposition,
            "Content-Encoding": h.content_encoding,
            "Content-Language": h.content_language,
        }
        out.update({name: value for name, value in optional.items() if value})
        out.update({f"{_META_PREFIX}{name}": value for name, value in h.metadata.items()})
        return out

    # -- operations ---------------------------------------------------------------------

    def _get(self, grant: Grant, *, head: bool) -> None:
        rng = None if head else _parse_range(self.headers.get("Range"))
        store = self.server.store
        with store.open_read(grant.bucket, grant.key, self._conditions(), rng) as reader:
            obj = reader.obj
            if rng is not None and reader.length == 0:
                # RFC 9110: a range selecting no bytes is unsatisfiable over HTTP.
                raise S3ServiceError(
                    grpc.StatusCode.OUT_OF_RANGE, "s3: invalid range", size=obj.size
                )
            headers = self._object_headers(obj, grant)
            status = HTTPStatus.OK
            if rng is not None:
                status = HTTPStatus.PARTIAL_CONTENT
                last = reader.offset + reader.length - 1
                headers["Content-Range"] = f"bytes {reader.offset}-{last}/{obj.size}"
            self._started = True
            self.send_response(status)
            for name, value in _safe_headers(headers).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(reader.length))
            self.end_headers()
            if not head:
                for chunk in reader.chunks():
                    self.wfile.write(chunk)

    def _put(self, grant: Grant) -> None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if length < 0:
            self._reply(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required\n", close=True)
            return
        content_type = self.headers.get("Content-Type", "").strip()
        if grant.content_type and content_type != grant.content_type:
            self._reply(
                HTTPStatus.FORBIDDEN,
                f"Content-Type must be {grant.content_type!r}\n",
                close=True,
            )
            return
        if len(self.headers.get("Content-Length", "")) > 19:
            self._reply(HTTPStatus.BAD_REQUEST, "Content-Length is too large\n", close=True)
            return
        headers = ObjectHeaders(
            content_type=content_type,
            cache_control=self.headers.get("Cache-Control", ""),
            content_disposition=grant.content_disposition
            or self.headers.get("Content-Disposition", ""),
            content_encoding=self.headers.get("Content-Encoding", ""),
            content_language=self.headers.get("Content-Language", ""),
            metadata={
                name[len(_META_PREFIX) :]: value
                for name, value in self._headers().items()
                if name.startswith(_META_PREFIX)
            },
        )
        check_header_fields(
            {
                "Content-Type": headers.content_type,
                "Cache-Control": headers.cache_control,
                "Content-Disposition": headers.content_disposition,
                "Content-Encoding": headers.content_encoding,
                "Content-Language": headers.content_language,
            },
            headers.metadata,
        )
        obj = self.server.store.write(
            grant.bucket, grant.key, self._body(length), headers, self._conditions()
        )
        self._reply(HTTPStatus.OK, headers={"ETag": f'"{obj.etag}"'})

    def _body(self, length: int) -> Iterator[bytes]:
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                raise ConnectionError("request body ended before Content-Length bytes")
            remaining -= len(chunk)
            yield chunk


class ObjectHttpServer:
    """The endpoint on ``127.0.0.1:<free port>``, served from a daemon thread."""

    def __init__(self, store: LocalObjectStore, signer: UrlSigner) -> None:
        self._server = _Server(store, signer)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="gestalt-local-s3-http",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting requests and release the port (requests in flight may finish)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
