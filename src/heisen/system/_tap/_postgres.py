"""The PostgreSQL tap: statements and their outcomes from the v3 frontend/backend protocol.

Both directions are cut into messages (`_Messages`). The client's first
message has no type byte: a startup packet, an SSLRequest or GSSENCRequest
(answered by one byte: `N` goes on in clear, `S`/`G` means encryption and the
tap stops with `lost`), or a CancelRequest. Authentication (`R` one way, `p`
the other) passes by.

Matching answers to requests rests on one invariant of the protocol: the
server answers the client's messages in the order it sent them. Each message
that expects an answer appends a `_Waiting` to a queue; each answer completes
the head of the queue:

- a simple Query waits for one CommandComplete / EmptyQueryResponse per
  statement, an ErrorResponse ends it (the statements after the failing one
  never run), and its ReadyForQuery removes it;
- Parse, Bind, Describe and Close wait for their own answers; an Execute waits
  for CommandComplete, EmptyQueryResponse or PortalSuspended;
- after an ErrorResponse the server skips every extended-protocol message up
  to the next Sync: the waiting ones before that Sync are dropped (a skipped
  Execute ran nothing, so it makes no operation), and messages the client sends
  later are dropped too until its Sync.

A simple Query's string is split into statements by the tap (`_sql`); should
the split ever disagree with the server's, the query's ReadyForQuery still
ends it, so the next query starts aligned.

`in_transaction` is followed in the order statements complete: the status of
each ReadyForQuery, then BEGIN, COMMIT and ROLLBACK as they complete, so a
pipeline of BEGIN, statements, COMMIT before one Sync is read right.

Each operation's `detail` holds the statement's facts (`tables_read`,
`tables_written`, `columns_set`, `relative`, `lock`, `on_conflict`,
`conflict_columns`, `transaction`, `isolation`, `where_columns`) and
`in_transaction`, `rows` (from the CommandComplete tag), `sqlstate` (of an
ErrorResponse) and `prepared` (it ran as a named prepared statement).

Anything that does not fit the protocol stops the tap with `lost`; nothing raises.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from heisen._serialised import JsonObject
from heisen.system._tap._sql import StatementFacts, statement_facts
from heisen.system_protocol import DependencyOperation

__all__ = ["PostgresDecoder"]

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_PROTOCOL_MAJOR = 3  # 3.0, and 3.2 from PostgreSQL 18 on: the same messages here
_MAX_MESSAGE = 1 << 30
_MAX_STARTUP = 10_000
_TEXT_KEPT = 500

_HEADER = struct.Struct("!BI")
_FRONTEND = b"QPBEDCSHXdcfFp"
_FRONTEND_READ = b"QPBEC"  # Query, Parse, Bind, Execute, Close
_FRONTEND_IGNORED = b"HXdcfFp"  # Flush, Terminate, copy data, function call, passwords
_BACKEND = b"RKSZCEINTDtn123sAGHWcdVvN"
_BACKEND_READ = b"CEZ"  # CommandComplete, ErrorResponse, ReadyForQuery
_BACKEND_IGNORED = b"RKSNADtGHWcdVv"  # rows, copy data, notices, parameters, authentication
_EMPTY = StatementFacts("", "EMPTY")


@dataclass(slots=True)
class _Statement:
    """One statement sent for execution, until its answer."""

    facts: StatementFacts
    start: float
    prepared: bool


@dataclass(slots=True)
class _Waiting:
    """One client message (or simple query) the server has yet to answer."""

    kind: str  # query, parse, bind, describe, close, execute, sync
    statements: deque[_Statement] = field(default_factory=deque)


class _Messages:
    """Cuts a byte stream into messages and hands each to `handle(type, body)`.

    `typed=False` until the startup is read (its packets have no type byte;
    they are handed on as type 0). Only the types in `bodies` get their body;
    the others get `b""`, and types in `silent` are not handed on at all: most
    of a connection's bytes are rows the tap never reads, so they are skipped
    without being copied, even when they span many chunks.
    """

    __slots__ = (
        "_bodies",
        "_known",
        "_needed",
        "_rest",
        "_silent",
        "_skip",
        "fail",
        "handle",
        "typed",
    )

    def __init__(
        self,
        known: bytes,
        bodies: bytes,
        silent: bytes,
        handle: Callable[[int, bytes], None],
        fail: Callable[[str], None],
        *,
        typed: bool,
    ) -> None:
        self._rest = bytearray()
        self._needed = 0
        self._skip = 0
        self._known = frozenset(known)
        self._bodies = frozenset(bodies)
        self._silent = frozenset(silent)
        self.typed = typed
        self.handle = handle
        self.fail = fail

    def feed(self, data: bytes) -> None:
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return
            data = data[self._skip :]
            self._skip = 0
        if self._rest:
            self._rest += data
            if len(self._rest) < self._needed:
                return
            data = bytes(self._rest)
            self._rest = bytearray()
        position = 0 if self.typed else self._startup(data)
        if position < 0:
            return
        size = len(data)
        known, bodies, silent, handle = self._known, self._bodies, self._silent, self.handle
        while size - position >= 5:
            kind, length = _HEADER.unpack_from(data, position)
            if kind not in known or not 4 <= length <= _MAX_MESSAGE:
                self.fail(f"not the PostgreSQL protocol (message {chr(kind)!r}, length {length})")
                return
            end = position + 1 + length
            if end > size:
                if kind in silent:
                    self._skip = end - size
                    return
                self._keep(data, position, end - position)
                return
            if kind in bodies:
                handle(kind, data[position + 5 : end])
            elif kind not in silent:
                handle(kind, b"")
            position = end
        if position < size:
            self._keep(data, position, 5)

    def _keep(self, data: bytes, position: int, needed: int) -> None:
        """Keep the start of a message until `needed` bytes of it are in."""
        self._rest = bytearray(data[position:])
        self._needed = needed

    def _startup(self, data: bytes) -> int:
        """Past the untyped packets at the start of `data` (-1: stop)."""
        position, size = 0, len(data)
        while not self.typed and size - position >= 4:
            length = int.from_bytes(data[position : position + 4], "big")
            if not 8 <= length <= _MAX_STARTUP:
                self.fail(f"a startup packet of {length} bytes")
                return -1
            if size - position < length:
                break
            self.handle(0, data[position + 4 : position + length])
            position += length
        if not self.typed:
            if position < size:
                whole = int.from_bytes(data[position : position + 4], "big")
                self._keep(data, position, whole if size - position >= 4 else 4)
            return -1
        return position


def _cstring(body: bytes, start: int) -> tuple[str, int]:
    end = body.index(0, start)
    return body[start:end].decode("utf-8", "replace"), end + 1


def _rows(tag: str) -> int | None:
    last = tag.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else None


class PostgresDecoder:
    """The tap of one connection to PostgreSQL (see the module docstring)."""

    def __init__(self, link: str, connection: int) -> None:
        self.link = link
        self.connection = connection
        self.lost: str | None = None
        self._client = _Messages(
            _FRONTEND, _FRONTEND_READ, _FRONTEND_IGNORED, self._from_client, self._lose, typed=False
        )
        self._server = _Messages(
            _BACKEND, _BACKEND_READ, _BACKEND_IGNORED, self._from_server, self._lose, typed=True
        )
        self._one_byte_answer: str | None = None  # "SSL" or "GSS" while its answer is due
        self._waiting: deque[_Waiting] = deque()
        self._skipping_to_sync = False
        self._statements: dict[str, StatementFacts] = {}
        self._portals: dict[str, tuple[StatementFacts, bool]] = {}
        self._in_transaction = False
        self._done: list[DependencyOperation] = []
        self._now = 0.0

    # --- the Decoder protocol --------------------------------------------------------
    def from_client(self, data: bytes, now: float) -> None:
        if self.lost is None:
            self._now = now
            self._guarded(self._client.feed, data)

    def from_server(self, data: bytes, now: float) -> None:
        if self.lost is None:
            self._now = now
            if self._one_byte_answer is not None and data:
                data = self._answer_to_encryption_request(data)
            if data and self.lost is None:
                self._guarded(self._server.feed, data)

    def take(self) -> list[DependencyOperation]:
        done, self._done = self._done, []
        return done

    def close(self, now: float) -> None:
        for waiting in self._waiting:
            for statement in waiting.statements:
                self._finish(statement, None, rows=None, error=None, sqlstate=None)
        self._waiting.clear()

    # --- plumbing ----------------------------------------------------------------------
    def _lose(self, reason: str) -> None:
        if self.lost is None:
            self.lost = reason

    def _guarded(self, feed: Callable[[bytes], None], data: bytes) -> None:
        try:
            feed(data)
        except (ValueError, IndexError) as exc:
            self._lose(f"a malformed message: {type(exc).__name__}: {exc}")
        except Exception as exc:
            self._lose(f"the decoder failed: {type(exc).__name__}: {exc}")

    def _answer_to_encryption_request(self, data: bytes) -> bytes:
        request, self._one_byte_answer = self._one_byte_answer, None
        answer = data[0:1]
        if answer in (b"S", b"G"):
            self._lose("TLS" if request == "SSL" else "GSSAPI encryption")
        elif answer != b"N":
            self._lose(f"{answer!r} in answer to a {request} request")
        return data[1:]

    # --- the client's messages -----------------------------------------------------------
    def _from_client(self, kind: int, body: bytes) -> None:
        if kind == 0:
            self._startup(body)
        elif kind == 0x51:  # Q
            self._query(body)
        elif kind == 0x53:  # Sync
            self._skipping_to_sync = False
            self._waiting.append(_Waiting("sync"))
        elif kind in _EXTENDED and not self._skipping_to_sync:
            _EXTENDED[kind](self, body)

    def _startup(self, body: bytes) -> None:
        code = int.from_bytes(body[0:4], "big")
        if code == _SSL_REQUEST:
            self._one_byte_answer = "SSL"
        elif code == _GSSENC_REQUEST:
            self._one_byte_answer = "GSS"
        elif code >> 16 == _PROTOCOL_MAJOR or code == _CANCEL_REQUEST:
            self._client.typed = True
        else:
            self._lose(f"startup protocol {code >> 16}.{code & 0xFFFF} is not 3.x")

    def _query(self, body: bytes) -> None:
        text, _ = _cstring(body, 0)
        waiting = _Waiting("query")
        for facts in statement_facts(text):
            waiting.statements.append(_Statement(facts, self._now, prepared=False))
        self._waiting.append(waiting)

    def _parse(self, body: bytes) -> None:
        name, position = _cstring(body, 0)
        text, _ = _cstring(body, position)
        facts = statement_facts(text)
        self._statements[name] = facts[0] if facts else _EMPTY
        self._waiting.append(_Waiting("parse"))

    def _bind(self, body: bytes) -> None:
        portal, position = _cstring(body, 0)
        name, _ = _cstring(body, position)
        facts = self._statements.get(name) or StatementFacts("", "UNKNOWN", parsed=False)
        self._portals[portal] = (facts, name != "")
        self._waiting.append(_Waiting("bind"))

    def _execute(self, body: bytes) -> None:
        portal, _ = _cstring(body, 0)
        facts, prepared = self._portals.get(portal) or (StatementFacts("", "UNKNOWN"), False)
        waiting = _Waiting("execute")
        waiting.statements.append(_Statement(facts, self._now, prepared))
        self._waiting.append(waiting)

    def _describe(self, body: bytes) -> None:
        self._waiting.append(_Waiting("describe"))

    def _close(self, body: bytes) -> None:
        name, _ = _cstring(body, 1)
        if body[0:1] == b"S":
            self._statements.pop(name, None)
        else:
            self._portals.pop(name, None)
        self._waiting.append(_Waiting("close"))

    # --- the server's messages ----------------------------------------------------------
    def _from_server(self, kind: int, body: bytes) -> None:
        if kind == 0x43:  # CommandComplete
            tag, _ = _cstring(body, 0)
            self._complete(rows=_rows(tag), error=None, sqlstate=None)
        elif kind == 0x49:  # EmptyQueryResponse
            self._complete(rows=None, error=None, sqlstate=None)
        elif kind == 0x73:  # PortalSuspended
            self._complete(rows=None, error=None, sqlstate=None)
        elif kind == 0x45:  # ErrorResponse
            self._error(body)
        elif kind == 0x5A:  # ReadyForQuery
            self._ready(body[0:1])
        elif kind in _ANSWERS:
            self._answered(_ANSWERS[kind])

    def _answered(self, kinds: tuple[str, ...]) -> None:
        if self._waiting and self._waiting[0].kind in kinds:
            self._waiting.popleft()

    def _complete(self, rows: int | None, error: str | None, sqlstate: str | None) -> None:
        if not self._waiting:
            return
        head = self._waiting[0]
        if head.kind not in ("query", "execute") or not head.statements:
            return
        self._finish(head.statements.popleft(), self._now, rows, error, sqlstate)
        if head.kind == "execute":
            self._waiting.popleft()

    def _error(self, body: bytes) -> None:
        fields = _error_fields(body)
        sqlstate = fields.get("C", "")
        message = f"{sqlstate} {fields.get('M', '')}".strip()
        if not self._waiting:
            return
        head = self._waiting[0]
        if head.kind in ("query", "execute") and head.statements:
            self._finish(head.statements.popleft(), self._now, None, message, sqlstate or None)
        if head.kind == "query":
            head.statements.clear()
            return
        while self._waiting and self._waiting[0].kind != "sync":
            self._waiting.popleft()
        if not self._waiting:
            self._skipping_to_sync = True

    def _ready(self, status: bytes) -> None:
        while self._waiting:
            if self._waiting.popleft().kind in ("query", "sync"):
                break
        self._in_transaction = status in (b"T", b"E")

    def _finish(
        self,
        statement: _Statement,
        end: float | None,
        rows: int | None,
        error: str | None,
        sqlstate: str | None,
    ) -> None:
        facts = statement.facts
        detail = _detail(facts)
        detail.update(
            in_transaction=self._in_transaction,
            rows=rows,
            sqlstate=sqlstate,
            prepared=statement.prepared,
        )
        if error is None and facts.transaction == "begin":
            self._in_transaction = True
        elif error is None and facts.transaction in ("commit", "rollback"):
            self._in_transaction = False
        self._done.append(
            DependencyOperation(
                link=self.link,
                protocol="postgres",
                connection=self.connection,
                start=statement.start,
                end=end,
                command=facts.command,
                keys=facts.tables,
                access=facts.access,
                text=_shortened(facts.text),
                error=error,
                detail=detail,
            )
        )


_EXTENDED: dict[int, Callable[[PostgresDecoder, bytes], None]] = {
    0x50: PostgresDecoder._parse,
    0x42: PostgresDecoder._bind,
    0x45: PostgresDecoder._execute,
    0x44: PostgresDecoder._describe,
    0x43: PostgresDecoder._close,
}

_ANSWERS: dict[int, tuple[str, ...]] = {
    0x31: ("parse",),  # ParseComplete
    0x32: ("bind",),  # BindComplete
    0x33: ("close",),  # CloseComplete
    0x54: ("describe",),  # RowDescription (in a simple query: no describe waits, ignored)
    0x6E: ("describe",),  # NoData
}


def _error_fields(body: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    position = 0
    while position < len(body) and body[position] != 0:
        code = chr(body[position])
        value, position = _cstring(body, position + 1)
        fields[code] = value
    return fields


def _detail(facts: StatementFacts) -> JsonObject:
    return {
        "tables_read": list(facts.tables_read),
        "tables_written": list(facts.tables_written),
        "columns_set": list(facts.columns_set),
        "relative": facts.relative,
        "lock": facts.lock,
        "on_conflict": facts.on_conflict,
        "conflict_columns": list(facts.conflict_columns),
        "transaction": facts.transaction,
        "isolation": facts.isolation,
        "where_columns": list(facts.where_columns),
    }


def _shortened(text: str) -> str:
    return text if len(text) <= _TEXT_KEPT else text[: _TEXT_KEPT - 1] + "…"
