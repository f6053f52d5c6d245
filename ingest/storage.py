"""A client of the TTS Storage Integration: the stored uplinks of one application, streamed line by line.

``GET {cluster}/api/v3/as/applications/{application_id}/packages/storage/uplink_message`` with
``Authorization: Bearer <API key>``, ``Accept: text/event-stream``, ``after`` / ``before`` (RFC 3339), ``limit``
and ``order=received_at``; the answer is newline-delimited JSON, one ``{"result": <ApplicationUp>}`` per line, the
same message as on MQTT. :meth:`StorageClient.uplinks` yields each line's result while the body is still arriving,
so a page never sits in memory whole.

Exceptions::

    StorageError            the request did not give a complete answer (attributes: status, 0 without one; detail)
     +-- StorageRefused     401/403/404: wrong key, missing rights, no such application or Storage Integration off;
     |                      retrying does not help
     +-- StorageRateLimited 429 (attribute: retry_after, seconds, from the Retry-After header; None without one)
     +-- StorageCut         connection refused or lost, a timeout, a 5xx, a broken line or an error line mid-answer
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

__all__ = ["StorageClient", "StorageCut", "StorageError", "StorageRateLimited", "StorageRefused", "StoredUplink"]


class StorageError(Exception):
    def __init__(self, detail: str, status: int = 0) -> None:
        super().__init__(f"HTTP {status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail


class StorageRefused(StorageError):
    pass


class StorageRateLimited(StorageError):
    def __init__(self, detail: str, retry_after: float | None) -> None:
        super().__init__(detail, 429)
        self.retry_after = retry_after


class StorageCut(StorageError):
    pass


@dataclass
class StoredUplink:
    """One line of the answer: the uplink (``message``, JSON bytes as on MQTT) and its ``received_at``."""

    message: bytes
    received_at: str  # the top-level received_at, RFC 3339 (the storage orders and filters by it)
    device_id: str


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class StorageClient:
    def __init__(self, cluster: str, application_id: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.url = f"{cluster}/api/v3/as/applications/{quote(application_id, safe='')}/packages/storage/uplink_message"
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )

    def close(self) -> None:
        self._http.close()

    def uplinks(
        self, after: datetime | str, before: datetime | None = None, limit: int = 1000
    ) -> Iterator[StoredUplink]:
        """Stored uplinks received after ``after`` (a time, or the RFC 3339 text of one as the storage gave it) and
        before ``before``, oldest first, at most ``limit``."""
        since = after if isinstance(after, str) else rfc3339(after)
        params: dict[str, Any] = {"after": since, "limit": limit, "order": "received_at"}
        if before is not None:
            params["before"] = rfc3339(before)
        try:
            with self._http.stream("GET", self.url, params=params) as response:
                if response.status_code != 200:
                    raise _status_error(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield _parse_line(line)
        except httpx.HTTPError as e:  # connect errors, timeouts, a body cut short
            raise StorageCut(f"{type(e).__name__}: {e}".rstrip(": ")) from e


def _status_error(response: httpx.Response) -> StorageError:
    status = response.status_code
    try:
        body = response.read()[:2000]
        detail = str(orjson.loads(body).get("message") or body.decode("utf-8", "replace"))
    except (orjson.JSONDecodeError, AttributeError, httpx.HTTPError):
        detail = response.reason_phrase
    detail = detail.strip()[:300] or response.reason_phrase
    if status == 429:
        return StorageRateLimited(detail, retry_after_seconds(response.headers.get("Retry-After")))
    if status in (401, 403, 404):
        return StorageRefused(detail, status)
    return StorageCut(detail, status)


def _parse_line(line: str) -> StoredUplink:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise StorageCut(f"broken line in the answer: {e}") from None
    result = doc.get("result") if type(doc) is dict else None
    if type(result) is not dict:
        error = doc.get("error") if type(doc) is dict else None
        what = orjson.dumps(error).decode()[:300] if error is not None else "a line without result"
        raise StorageCut(f"the storage stopped the answer: {what}")
    received = result.get("received_at")
    ids = result.get("end_device_ids")
    device = ids.get("device_id") if type(ids) is dict else None
    return StoredUplink(
        orjson.dumps(result),
        received if type(received) is str else "",
        device if type(device) is str else "",
    )
