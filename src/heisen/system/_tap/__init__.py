"""Protocol taps: read the bytes a link proxy forwards and name the operations in them.

A tap never changes a byte and never slows the forwarding path more than it
must: the proxy writes a chunk on, then hands a copy to its connection's
`Decoder`. A decoder that cannot follow the stream (TLS, a protocol it does
not know, a bug of its own) stops decoding that connection and says so in
`lost`; the bytes keep flowing.

One decoder per connection, per protocol:

- `redis`: RESP2 and RESP3 (`_resp`),
- `postgres`: the frontend/backend protocol, statements read with sqlglot (`_postgres`, `_sql`),
- `http`: HTTP/1.1 requests and responses (`_http`).

Each completed operation becomes a `DependencyOperation` (`heisen.system_protocol`),
whose `detail` holds what only its protocol has:

- redis: `reply` (a short summary: "OK", "nil", an integer, "array(3)", the error),
  `nx`/`xx`, `ttl_ms` (SET EX/PX, EXPIRE...), `in_multi` (queued between MULTI and
  EXEC, answered at EXEC), `watched` (keys under WATCH when it was sent), `script`
  and `sha1` (EVAL/EVALSHA), `value` (an integer a read returned);
- postgres: `tables_read`, `tables_written`, `columns_set`, `relative` (a column set from
  its own value), `lock` (FOR UPDATE...), `on_conflict`, `conflict_columns`, `transaction`
  (begin, commit, rollback, savepoint...), `isolation`, `where_columns`, `in_transaction`,
  `rows`, `sqlstate`, `prepared`;
- http: `method`, `path`, `query`, `status`, `request_bytes`, `response_bytes`,
  `idempotency_key`, `body_sha1`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from heisen.system_protocol import DependencyOperation

__all__ = ["PROTOCOLS", "Decoder", "decoder_for"]


class Decoder(Protocol):
    """The tap of one proxied connection."""

    lost: str | None
    """Why the decoder stopped following the connection (None while it follows)."""

    def from_client(self, data: bytes, now: float) -> None:
        """Bytes the client sent towards the dependency, as the proxy read them at `now`."""

    def from_server(self, data: bytes, now: float) -> None:
        """Bytes the dependency sent back, as the proxy read them at `now`."""

    def take(self) -> list[DependencyOperation]:
        """The operations completed since the last call (answered, or cut by the end of the
        connection after `close`), oldest first."""

    def close(self, now: float) -> None:
        """The connection ended: what was still waiting for an answer is complete, `end` None."""


DecoderFactory = Callable[[str, int], Decoder]
"""(link name, connection number) -> a decoder for that connection."""


def _factories() -> dict[str, DecoderFactory]:
    from heisen.system._tap._http import HttpDecoder
    from heisen.system._tap._postgres import PostgresDecoder
    from heisen.system._tap._resp import RespDecoder

    return {"redis": RespDecoder, "postgres": PostgresDecoder, "http": HttpDecoder}


PROTOCOLS = ("redis", "postgres", "http")


def decoder_for(protocol: str, link: str, connection: int) -> Decoder:
    """A new decoder of `protocol` (one of PROTOCOLS) for one connection of `link`."""
    return _factories()[protocol](link, connection)
