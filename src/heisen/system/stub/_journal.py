"""The request journal: the last `limit` requests, so memory stays bounded.

WireMock keeps every request by default, and its memory grows for as long as
load runs (0.65 → 1.4 GB in three 10 s runs on this machine). Here the journal
is a ring of `limit` entries (10,000 by default, `0` disables it); `total`
counts every request ever recorded, `len(journal)` what is still held.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from heisen._serialised import JsonObject
from heisen.system.stub._http import HttpRequest


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    seq: int
    request: HttpRequest
    logged_at: float
    stub_id: str | None
    status: int
    added_delay_ms: float = 0.0
    served_after_ms: float | None = None  # arrival to first response byte, as the loop saw it

    @property
    def id(self) -> str:
        return str(uuid.UUID(int=self.seq))

    def to_json(self) -> JsonObject:
        r = self.request
        headers: JsonObject = {}
        for name, value in r.raw_headers:
            headers[name] = value if name not in headers else [*_listed(headers[name]), value]
        logged = {
            "url": r.target,
            "absoluteUrl": f"http://{r.headers.get('host', ['localhost'])[0]}{r.target}",
            "method": r.method,
            "clientIp": r.client,
            "headers": headers,
            "cookies": {k: v[0] for k, v in r.cookies.items()},
            "body": r.body_text(),
            "loggedDate": int(self.logged_at * 1000),
            "loggedDateString": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.logged_at)),
        }
        entry: JsonObject = {
            "id": self.id,
            "request": logged,
            "responseDefinition": {"status": self.status},
            "wasMatched": self.stub_id is not None,
        }
        if self.stub_id is not None:
            entry["stubMapping"] = {"id": self.stub_id}
        if self.served_after_ms is not None:
            entry["timing"] = {
                "addedDelay": round(self.added_delay_ms, 3),
                "totalTime": round(self.served_after_ms, 3),
            }
        return entry


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class Journal:
    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self._entries: deque[LoggedRequest] = deque(maxlen=self.limit or 1)
        self.total = 0

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def record(
        self,
        request: HttpRequest,
        stub_id: str | None,
        status: int,
        added_delay_ms: float = 0.0,
        served_after_ms: float | None = None,
    ) -> None:
        self.total += 1
        if self.limit:
            self._entries.append(
                LoggedRequest(
                    self.total,
                    request,
                    time.time(),
                    stub_id,
                    status,
                    added_delay_ms,
                    served_after_ms,
                )
            )

    def __len__(self) -> int:
        return len(self._entries) if self.limit else 0

    def newest_first(self) -> Iterator[LoggedRequest]:
        return reversed(self._entries) if self.limit else iter(())

    def clear(self) -> None:
        self._entries.clear()
