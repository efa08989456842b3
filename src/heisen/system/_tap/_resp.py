"""The Redis tap: RESP2 and RESP3 commands matched with their replies.

Both directions are parsed incrementally from a `bytearray` that only ever
holds what is not consumed yet, so a command or reply split at any byte
boundary is read once it is whole, and a large value arriving in many chunks
costs one pass, not one per chunk.

- Client side: arrays of bulk strings (what every driver sends) and inline
  commands, pipelined. A command's `start` is the `now` of the chunk that
  carried its first byte.
- Server side: every RESP2/RESP3 type, nested, with RESP3 attributes dropped
  and pushes (`>`) kept apart from replies. The reply parser is a stack of
  open aggregates that survives between chunks; only the outermost aggregate
  keeps its elements (EXEC's replies, a push's kind), inner ones keep their
  size, so a million-element reply costs no more memory than a counter.
- Replies answer commands in order. Inside MULTI a command's `+QUEUED` only
  parks it; EXEC's array completes each parked command with its own element.

The decoder stops (`lost`) at what it cannot follow: TLS, bytes that are not
RESP, a connection that subscribed (RESP2 pub/sub) or asked for MONITOR.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from heisen.system_protocol import DependencyOperation

__all__ = ["RespDecoder"]

_SHORT_BULK = 64  # bulk replies longer than this are kept as a summary only
_ARG_SHOWN = 24  # a non-key argument longer than this is shortened in `text`
_TEXT_MAX = 200
_SCRIPT_MAX = 300
_INLINE_MAX = 64 * 1024  # Redis's own limit for an inline command line
_SCRIPTS_KEPT = 1024

_scripts: dict[str, str] = {}
"""sha1 -> script text of every script seen loaded (SCRIPT LOAD, EVAL) by this process."""


class _Error:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Aggregate:
    __slots__ = ("count", "items", "kind")

    def __init__(self, kind: str, count: int, items: list[Any] | None) -> None:
        self.kind = kind
        self.count = count
        self.items = items


class _Frame:
    """An aggregate whose elements are still arriving."""

    __slots__ = ("attribute", "count", "items", "kind", "left")

    def __init__(self, kind: str, count: int, left: int, outermost: bool) -> None:
        self.kind = kind
        self.count = count
        self.left = left
        self.attribute = kind == "attribute"
        self.items: list[Any] | None = [] if outermost and not self.attribute else None


class _Command:
    __slots__ = ("args", "in_multi", "name", "start", "watched")

    def __init__(
        self, args: list[bytes], name: str, start: float, in_multi: bool, watched: list[str]
    ) -> None:
        self.args = args
        self.name = name
        self.start = start
        self.in_multi = in_multi
        self.watched = watched


# --- the command table --------------------------------------------------------

KeyFinder = Callable[[Sequence[bytes]], Sequence[bytes]]


def _positions(first: int, last: int, step: int) -> KeyFinder:
    """Keys from argument `first` to `last` (negative: from the end, -1 the last one)."""

    def keys(args: Sequence[bytes]) -> Sequence[bytes]:
        stop = last + 1 if last >= 0 else len(args) + last + 1
        return args[first:stop:step]

    return keys


def _numkeys(at: int, before: int = 0) -> KeyFinder:
    """`numkeys` at argument `at`, the keys right after it, and `before` keys ahead of it."""

    def keys(args: Sequence[bytes]) -> Sequence[bytes]:
        try:
            count = int(args[at])
        except (IndexError, ValueError):
            return ()
        return list(args[1 : 1 + before]) + list(args[at + 1 : at + 1 + max(0, count)])

    return keys


def _after_streams(args: Sequence[bytes]) -> Sequence[bytes]:
    upper = [arg.upper() for arg in args]
    if b"STREAMS" not in upper:
        return ()
    rest = args[upper.index(b"STREAMS") + 1 :]
    return rest[: len(rest) // 2]


_ONE = _positions(1, 1, 1)
_ALL = _positions(1, -1, 1)
_TWO = _positions(1, 2, 1)
_SECOND_WORD = _positions(2, 2, 1)

_READS = """GET MGET GETRANGE SUBSTR STRLEN LCS EXISTS TTL PTTL EXPIRETIME PEXPIRETIME TYPE TOUCH
DUMP HGET HMGET HEXISTS HGETALL HKEYS HVALS HLEN HSTRLEN HRANDFIELD HSCAN LRANGE LLEN LINDEX LPOS
SMEMBERS SISMEMBER SMISMEMBER SCARD SRANDMEMBER SSCAN SINTER SUNION SDIFF SINTERCARD ZSCORE
ZMSCORE ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZRANK ZREVRANK
ZCARD ZCOUNT ZLEXCOUNT ZRANDMEMBER ZSCAN ZUNION ZINTER ZDIFF ZINTERCARD XLEN XRANGE XREVRANGE
XREAD XPENDING GETBIT BITCOUNT BITPOS PFCOUNT GEODIST GEOPOS GEOSEARCH SORT_RO KEYS SCAN DBSIZE
RANDOMKEY""".split()
_WRITES = """SET SETEX PSETEX MSET SETRANGE SETBIT DEL UNLINK EXPIRE PEXPIRE EXPIREAT PEXPIREAT
PERSIST RENAME COPY RESTORE HSET HMSET HDEL LPUSH RPUSH LPUSHX RPUSHX LSET LREM LTRIM LINSERT SADD
SREM SINTERSTORE SUNIONSTORE SDIFFSTORE ZADD ZREM ZREMRANGEBYSCORE ZREMRANGEBYRANK
ZREMRANGEBYLEX ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZRANGESTORE XADD XDEL XTRIM XACK PFADD PFMERGE
BITOP GEOADD FLUSHDB FLUSHALL""".split()
_RMWS = """INCR DECR INCRBY DECRBY INCRBYFLOAT HINCRBY HINCRBYFLOAT ZINCRBY APPEND SETNX GETSET
GETDEL GETEX MSETNX HSETNX RENAMENX EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO LPOP RPOP
SPOP ZPOPMIN ZPOPMAX BLPOP BRPOP BZPOPMIN BZPOPMAX RPOPLPUSH BRPOPLPUSH LMOVE BLMOVE SMOVE LMPOP
BLMPOP ZMPOP BZMPOP XREADGROUP XCLAIM XAUTOCLAIM""".split()

ACCESS: dict[str, str] = {
    **dict.fromkeys(_READS, "read"),
    **dict.fromkeys(_WRITES, "write"),
    **dict.fromkeys(_RMWS, "rmw"),
}
"""Command -> what it does to its keys; anything not named here is `none`."""

KEYS: dict[str, KeyFinder] = {
    **dict.fromkeys(_READS + _WRITES + _RMWS, _ONE),
    **dict.fromkeys(
        """MGET EXISTS TOUCH DEL UNLINK WATCH SINTER SUNION SDIFF SINTERSTORE SUNIONSTORE
        SDIFFSTORE PFCOUNT PFMERGE""".split(),
        _ALL,
    ),
    **dict.fromkeys(["MSET", "MSETNX"], _positions(1, -1, 2)),
    **dict.fromkeys(["BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX"], _positions(1, -2, 1)),
    **dict.fromkeys(
        "RENAME RENAMENX COPY RPOPLPUSH BRPOPLPUSH LMOVE BLMOVE SMOVE ZRANGESTORE".split(), _TWO
    ),
    **dict.fromkeys("EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO".split(), _numkeys(2)),
    **dict.fromkeys(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"], _numkeys(2, before=1)),
    **dict.fromkeys("ZUNION ZINTER ZDIFF SINTERCARD ZINTERCARD LMPOP ZMPOP".split(), _numkeys(1)),
    **dict.fromkeys(["BLMPOP", "BZMPOP"], _numkeys(2)),
    **dict.fromkeys(["XREAD", "XREADGROUP"], _after_streams),
    "BITOP": _positions(2, -1, 1),
    **dict.fromkeys(["KEYS", "SCAN", "DBSIZE", "RANDOMKEY", "FLUSHDB", "FLUSHALL"], lambda a: ()),
    **dict.fromkeys(
        "XGROUP CREATE,XGROUP DESTROY,XGROUP SETID,XINFO STREAM,XINFO GROUPS,OBJECT ENCODING,"
        "OBJECT FREQ,OBJECT IDLETIME,MEMORY USAGE".split(","),
        _SECOND_WORD,
    ),
}
"""Command -> the arguments that are keys (Redis's own first/last/step, or a rule)."""

_CONTAINERS = frozenset(
    """CLIENT SCRIPT CONFIG OBJECT MEMORY XGROUP XINFO CLUSTER COMMAND FUNCTION ACL MODULE
    SLOWLOG LATENCY DEBUG PUBSUB""".split()
)
_CONDITIONS = frozenset([b"NX", b"XX", b"GT", b"LT"])
_SUBSCRIBES = frozenset(["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"])
_PUBSUB = _SUBSCRIBES | {"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"}
_VALUE_COMMANDS = frozenset(
    """GET GETSET GETDEL GETEX HGET LINDEX LPOP RPOP SET INCR DECR INCRBY DECRBY HINCRBY""".split()
)
_EXPIRES = {"EXPIRE": 1000, "PEXPIRE": 1, "EXPIREAT": -1000, "PEXPIREAT": -1}
"""Milliseconds per unit of the expiry argument; negative: an absolute Unix time."""
_SET_TTLS = {b"EX": 1000, b"PX": 1, b"EXAT": -1000, b"PXAT": -1}
_WATCH_ABORTED = "EXEC aborted: a watched key changed"
_DISCARDED = "DISCARD: the transaction was dropped"


def command_name(args: Sequence[bytes]) -> str:
    """The command, upper-case; a container and its subcommand as two words."""
    name = args[0].decode("ascii", "replace").upper()
    if name in _CONTAINERS and len(args) > 1:
        return f"{name} {args[1].decode('ascii', 'replace').upper()}"
    return name


# --- the decoder ----------------------------------------------------------------


class RespDecoder:
    """The tap of one Redis connection (see the module docstring)."""

    def __init__(self, link: str, connection: int) -> None:
        self.link = link
        self.connection = connection
        self.lost: str | None = None
        self._client = bytearray()
        self._client_start = 0.0  # when the first byte still in `_client` arrived
        self._client_seen = False
        self._client_need = 0  # `_client` cannot hold a whole command before this length
        self._server = bytearray()
        self._server_need = 0
        self._stack: list[_Frame] = []
        self._waiting: deque[_Command] = deque()
        self._subscribing: deque[_Command] = deque()  # RESP3: confirmed by a push
        self._queued: list[_Command] = []
        self._in_multi = False
        self._watched: list[str] = []
        self._resp3 = False
        self._done: list[DependencyOperation] = []

    # --- Decoder -------------------------------------------------------------
    def from_client(self, data: bytes, now: float) -> None:
        if self.lost is not None:
            return
        buffer = self._client
        if not buffer:
            if data[:1] == b"\x16" and not self._client_seen:
                self._lose("TLS: the client began a TLS handshake, its bytes cannot be read")
                return
            self._client_start = now
        self._client_seen = True
        before = len(buffer)
        buffer += data
        if len(buffer) < self._client_need:
            return
        try:
            self._read_commands(before, now)
        except (ValueError, IndexError) as exc:
            self._lose(f"unparseable client bytes: {exc}")

    def from_server(self, data: bytes, now: float) -> None:
        if self.lost is not None:
            return
        self._server += data
        if len(self._server) < self._server_need:
            return
        try:
            self._read_replies(now)
        except (ValueError, IndexError) as exc:
            self._lose(f"unparseable reply: {exc}")

    def take(self) -> list[DependencyOperation]:
        done, self._done = self._done, []
        return done

    def close(self, now: float) -> None:
        self._cut()

    # --- client side ---------------------------------------------------------
    def _read_commands(self, before: int, now: float) -> None:
        buffer = self._client
        size = len(buffer)
        pos = 0
        while pos < size and self.lost is None:
            start = self._client_start if pos < before else now
            if buffer[pos] == 42:  # '*'
                header_end = buffer.find(b"\r\n", pos)
                if header_end < 0:
                    break
                count = int(buffer[pos + 1 : header_end])
                at = header_end + 2
                args: list[bytes] = []
                while len(args) < count:
                    if at >= size:
                        break
                    if buffer[at] != 36:  # '$'
                        raise ValueError(f"expected a bulk string, found {buffer[at : at + 1]!r}")
                    line_end = buffer.find(b"\r\n", at)
                    if line_end < 0:
                        break
                    length = int(buffer[at + 1 : line_end])
                    if length < 0:
                        raise ValueError(f"negative argument length {length}")
                    end = line_end + 2 + length
                    if end + 2 > size:
                        self._client_need = end + 2 - pos
                        break
                    if buffer[end : end + 2] != b"\r\n":
                        raise ValueError("an argument does not end with CRLF")
                    args.append(bytes(buffer[line_end + 2 : end]))
                    at = end + 2
                if len(args) < count:
                    break
                pos = at
            else:
                line_end = buffer.find(b"\n", pos)
                if line_end < 0:
                    if size - pos > _INLINE_MAX:
                        raise ValueError("an inline command longer than 64 KiB")
                    break
                first = buffer[pos]
                if not (32 < first < 127 or first in b" \t\r"):
                    raise ValueError(f"byte {first:#04x} starts no command")
                args = bytes(buffer[pos:line_end]).split()
                pos = line_end + 1
            self._client_need = 0
            if args:
                self._command(args, start)
        if pos:
            del buffer[:pos]
            if pos >= before:
                self._client_start = now

    def _command(self, args: list[bytes], start: float) -> None:
        name = command_name(args)
        command = _Command(args, name, start, self._in_multi, self._watched)
        if name == "MULTI":
            self._in_multi = True
            command.in_multi = False
        elif name in ("EXEC", "DISCARD"):
            self._in_multi = False
            command.in_multi = False
            self._watched = []
        elif name == "UNWATCH" or name == "RESET":
            self._watched = []
            self._in_multi = self._in_multi and name != "RESET"
        elif name == "WATCH" and not self._in_multi:
            self._watched = self._watched + [_text_of(key) for key in args[1:]]
        elif name == "HELLO" and len(args) > 1:
            self._resp3 = args[1] == b"3"
        elif name == "CLIENT REPLY" and len(args) > 2 and args[2].upper() != b"ON":
            self._lose("CLIENT REPLY OFF/SKIP: replies no longer answer every command")
            return
        elif name == "SCRIPT LOAD" and len(args) > 2:
            _remember_script(args[2])
        elif name in ("EVAL", "EVAL_RO") and len(args) > 1:
            _remember_script(args[1])
        if self._resp3 and name in _PUBSUB:
            self._subscribing.append(command)
        else:
            self._waiting.append(command)

    # --- server side ---------------------------------------------------------
    def _read_replies(self, now: float) -> None:
        buffer = self._server
        size = len(buffer)
        stack = self._stack
        pos = 0
        value: Any
        while pos < size and self.lost is None:
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                break
            kind = buffer[pos]
            if kind == 43:  # '+' simple string
                value = buffer[pos + 1 : line_end].decode("utf-8", "replace")
            elif kind == 36 or kind == 33 or kind == 61:  # '$' bulk, '!' blob error, '=' verbatim
                length = int(buffer[pos + 1 : line_end])
                if length < 0:
                    value = None
                else:
                    end = line_end + 2 + length
                    if end + 2 > size:
                        self._server_need = end + 2 - pos
                        break
                    value = _bulk(buffer, line_end + 2, end, kind)
                    line_end = end
            elif kind == 58:  # ':' integer
                value = int(buffer[pos + 1 : line_end])
            elif kind in _AGGREGATES:
                count = int(buffer[pos + 1 : line_end])
                pos = line_end + 2
                if count < 0:
                    value = None
                elif count:
                    name = _AGGREGATES[kind]
                    left = count * 2 if name in ("map", "attribute") else count
                    stack.append(_Frame(name, count, left, not stack))
                    continue
                elif kind == 124:  # an empty attribute describes nothing
                    continue
                else:
                    value = _Aggregate(_AGGREGATES[kind], 0, [])
                self._complete(value, now)
                continue
            elif kind == 45:  # '-' error
                value = _Error(buffer[pos + 1 : line_end].decode("utf-8", "replace"))
            elif kind == 95:  # '_' null
                value = None
            elif kind == 35:  # '#' boolean
                value = buffer[pos + 1 : line_end] == b"t"
            elif kind == 44 or kind == 40:  # ',' double, '(' big number
                value = buffer[pos + 1 : line_end].decode("ascii", "replace")
            else:
                raise ValueError(f"type byte {kind:#04x} is not RESP")
            pos = line_end + 2
            self._server_need = 0
            self._complete(value, now)
        if pos:
            del buffer[: min(pos, size)]

    def _complete(self, value: Any, now: float) -> None:
        """A value is whole: it fills its aggregate, or it is a reply or a push."""
        stack = self._stack
        while stack:
            frame = stack[-1]
            if frame.items is not None:
                frame.items.append(value)
            frame.left -= 1
            if frame.left:
                return
            stack.pop()
            if frame.attribute:
                return
            value = _Aggregate(frame.kind, frame.count, frame.items)
        if isinstance(value, _Aggregate) and value.kind == "push":
            self._push(value, now)
        else:
            self._reply(value, now)

    def _push(self, push: _Aggregate, now: float) -> None:
        """RESP3 out-of-band data; a (un)subscribe confirmation answers its command."""
        kind = push.items[0] if push.items else None
        if not self._subscribing or not isinstance(kind, bytes):
            return
        if kind.decode("ascii", "replace").upper() == self._subscribing[0].name:
            self._finish(self._subscribing.popleft(), push, now)

    def _reply(self, value: Any, now: float) -> None:
        if not self._waiting:
            self._lose("unparseable reply: a reply came with no command waiting for it")
            return
        command = self._waiting.popleft()
        name = command.name
        if command.in_multi and value == "QUEUED":
            self._queued.append(command)
            return
        if name == "EXEC" or name == "DISCARD" or name == "RESET":
            self._end_transaction(value, now)
        elif name == "HELLO" and isinstance(value, _Error):
            self._resp3 = False
        self._finish(command, value, now)
        if isinstance(value, _Error):
            return
        if name in _SUBSCRIBES:
            self._lose("pub/sub")
        elif name == "MONITOR":
            self._lose("monitor")

    def _end_transaction(self, value: Any, now: float) -> None:
        queued, self._queued = self._queued, []
        if isinstance(value, _Aggregate) and value.items is not None:
            for command, result in zip(queued, value.items, strict=False):
                self._finish(command, result, now)
            return
        if value is None:
            reason = _WATCH_ABORTED
        elif isinstance(value, _Error):
            reason = value.text
        else:
            reason = _DISCARDED
        for command in queued:
            self._finish(command, None, now, error=reason)

    # --- operations ----------------------------------------------------------
    def _finish(
        self, command: _Command, value: Any, end: float | None, error: str | None = None
    ) -> None:
        args = command.args
        name = command.name
        finder = KEYS.get(name)
        keys = finder(args) if finder is not None else ()
        access = ACCESS.get(name, "none")
        detail: dict[str, Any] = {"reply": _summary(value)} if end is not None else {}
        options = _OPTIONS.get(name)
        if options is not None:
            access = options(name, args, detail, access)
        if name in _VALUE_COMMANDS:
            number = _integer(value)
            if number is not None:
                detail["value"] = number
        if command.in_multi:
            detail["in_multi"] = True
        if command.watched:
            detail["watched"] = list(command.watched)
        if isinstance(value, _Error):
            error = value.text
        elif value is None and name == "EXEC" and end is not None:
            error = _WATCH_ABORTED
        self._done.append(
            DependencyOperation(
                link=self.link,
                protocol="redis",
                connection=self.connection,
                start=command.start,
                end=end,
                command=name,
                keys=tuple(map(_text_of, keys)),
                access=access,
                text=_command_text(args, keys),
                error=error,
                detail=detail,
            )
        )

    def _cut(self) -> None:
        """The connection ended or the tap stopped: what waited for an answer ends unanswered."""
        waiting = sorted([*self._queued, *self._waiting, *self._subscribing], key=lambda c: c.start)
        self._queued, self._waiting, self._subscribing = [], deque(), deque()
        for command in waiting:
            self._finish(command, None, None)

    def _lose(self, reason: str) -> None:
        self.lost = reason
        self._client.clear()
        self._server.clear()
        self._stack.clear()
        self._cut()


_AGGREGATES = {42: "array", 37: "map", 126: "set", 62: "push", 124: "attribute"}


def _bulk(buffer: bytearray, start: int, end: int, kind: int) -> Any:
    if kind == 33:  # '!'
        return _Error(buffer[start:end].decode("utf-8", "replace"))
    if kind == 61:  # '=' verbatim: "txt:" then the text
        start = min(start + 4, end)
    if end - start <= _SHORT_BULK:
        return bytes(buffer[start:end])
    head = buffer[start : start + 40].decode("utf-8", "replace")
    return f"{head}… ({end - start} bytes)"


def _summary(value: Any) -> Any:
    """A short, JSON-safe picture of a reply."""
    if value is None:
        return "nil"
    if isinstance(value, bytes):
        text = value.decode("utf-8", "backslashreplace")
        return text if len(text) <= 40 else text[:39] + "…"
    if isinstance(value, _Aggregate):
        return f"{value.kind}({value.count})"
    if isinstance(value, _Error):
        return value.text if len(value.text) <= 80 else value.text[:79] + "…"
    return value  # str, int, bool


def _integer(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, bytes) and 0 < len(value) <= 19:
        digits = value[1:] if value[:1] == b"-" else value
        if digits.isdigit():
            return int(value)
    return None


def _text_of(arg: bytes) -> str:
    return arg.decode("utf-8", "backslashreplace")


def _command_text(args: Sequence[bytes], keys: Sequence[bytes]) -> str:
    """The command line as one would type it, long values shortened, at most ~200 chars."""
    parts = [args[0].decode("utf-8", "backslashreplace").upper()]
    length = len(parts[0])
    for arg in args[1:]:
        if len(arg) > _ARG_SHOWN and arg not in keys:
            text = arg[:4].decode("utf-8", "backslashreplace") + "…"
        else:
            text = arg.decode("utf-8", "backslashreplace")
            if not arg or b" " in arg:
                text = '"' + text.replace('"', '\\"') + '"'
        parts.append(text)
        length += len(text) + 1
        if length > _TEXT_MAX:
            break
    line = " ".join(parts)
    return line if len(line) <= _TEXT_MAX else line[: _TEXT_MAX - 1] + "…"


def _ttl_ms(argument: bytes, unit_ms: int) -> int | None:
    try:
        amount = int(argument)
    except ValueError:
        return None
    if unit_ms > 0:
        return amount * unit_ms
    return max(0, amount * -unit_ms - round(time.time() * 1000))


def _set_options(name: str, args: Sequence[bytes], detail: dict[str, Any], access: str) -> str:
    """SET's (and GETEX's) options into `detail`; a conditional SET or SET GET reads what it
    replaces."""
    options = [arg.upper() for arg in args[3 if name == "SET" else 2 :]]
    for index, option in enumerate(options):
        if option in (b"NX", b"XX"):
            detail[option.decode().lower()] = True
            access = "rmw"
        elif option == b"GET":
            access = "rmw"
        elif option in _SET_TTLS and index + 1 < len(options):
            ttl = _ttl_ms(options[index + 1], _SET_TTLS[option])
            if ttl is not None:
                detail["ttl_ms"] = ttl
    return access


def _conditions(name: str, args: Sequence[bytes], detail: dict[str, Any], access: str) -> str:
    """EXPIRE-like and ZADD: a condition (NX XX GT LT, ZADD INCR) makes them read first."""
    first_option = 3 if name in _EXPIRES else 2
    if name in _EXPIRES and len(args) > 2:
        ttl = _ttl_ms(args[2], _EXPIRES[name])
        if ttl is not None:
            detail["ttl_ms"] = ttl
    for arg in args[first_option:]:
        option = arg.upper()
        if option in _CONDITIONS or option == b"INCR":
            access = "rmw"
            if option in (b"NX", b"XX"):
                detail[option.decode().lower()] = True
        elif name == "ZADD" and option not in (b"CH",):
            break  # the score/member pairs start here
    return access


def _remember_script(script: bytes) -> None:
    if len(_scripts) >= _SCRIPTS_KEPT:
        _scripts.pop(next(iter(_scripts)))
    _scripts[hashlib.sha1(script).hexdigest()] = _text_of(script)


def _script_detail(name: str, args: Sequence[bytes], detail: dict[str, Any], access: str) -> str:
    if len(args) < 2:
        return access
    if name in ("EVAL", "EVAL_RO"):
        script: str | None = _text_of(args[1])
    else:
        sha = args[1].decode("ascii", "replace").lower()
        detail["sha1"] = sha
        script = _scripts.get(sha)
    if script is not None:
        detail["script"] = script if len(script) <= _SCRIPT_MAX else script[: _SCRIPT_MAX - 1] + "…"
    return access


def _setex_ttl(name: str, args: Sequence[bytes], detail: dict[str, Any], access: str) -> str:
    if len(args) > 2:
        ttl = _ttl_ms(args[2], 1000 if name == "SETEX" else 1)
        if ttl is not None:
            detail["ttl_ms"] = ttl
    return access


OptionReader = Callable[[str, Sequence[bytes], dict[str, Any], str], str]
_OPTIONS: dict[str, OptionReader] = {
    "SET": _set_options,
    "GETEX": _set_options,
    "ZADD": _conditions,
    **dict.fromkeys(_EXPIRES, _conditions),
    "SETEX": _setex_ttl,
    "PSETEX": _setex_ttl,
    **dict.fromkeys(["EVAL", "EVAL_RO", "EVALSHA", "EVALSHA_RO"], _script_detail),
}
"""Commands whose options change their access or add to `detail`: (name, args, detail,
access) -> access."""
