"""Race candidates in observed traffic: each a pattern, where it happened, and what it showed.

The rules read one request's dependency operations in order (`ObservedRequest`):

- `check-then-act` / `lost-update` (Redis): a read of a key, then a write of the same key
  (a relative one such as DECRBY acts on the check; an absolute SET overwrites what others
  wrote), with no transaction, script or lock around them;
- `check-then-act` / `duplicate-insert` / `lost-update` (SQL): a SELECT of a table, then an
  INSERT or UPDATE of it (or one statement that reads and inserts into the same table),
  without FOR UPDATE in the transaction, a unique index covering the check, ON CONFLICT on
  such an index, or SERIALIZABLE;
- `stale-cache` (cache-aside): a reader that misses the cache, reads the database and sets
  the key, beside a writer that writes the database then deletes or sets the key;
- `lease-expiry`: a lock taken with `SET key NX PX ttl` whose critical section lasted half
  its lease or more, the writes inside it not fenced;
- `double-effect`: a call to an HTTP dependency sent again with the same body, without an
  idempotency key.

A pattern that is there but guarded (INCR, a script, WATCH/MULTI, a held lock, FOR UPDATE,
ON CONFLICT with a unique index, a fencing token, an idempotency key) becomes a candidate
with `protected_by` set: it is reported, not ranked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from heisen.predict._catalog import UniqueKeys
from heisen.predict._observe import Observation, ObservedRequest
from heisen.system_protocol import DependencyOperation

LEASE_SHARE = 0.5
"""A critical section this share of its lock's lease or more approaches the lease."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """One occurrence of a pattern in one observed send."""

    window_s: float
    """How long the race window stayed open: from the check's answer to the act's start."""
    offset_s: float
    """When the window opened, from the request's send."""
    evidence: tuple[str, ...]
    pair_offset_s: float = 0.0
    pair_window_s: float = 0.0
    """The other request's span that must fall inside the window (a writer's database write
    to its cache delete), from its own send."""


@dataclass(slots=True)
class Candidate:
    anomaly: str
    request: str
    method: str
    path: str
    link: str
    key: str = ""
    table: str = ""
    protected_by: str = ""
    pair: str = ""
    """The other request of a two-request pattern (the writer of a stale cache)."""
    lease_s: float | None = None
    sightings: list[Sighting] = field(default_factory=list)
    attempts: int = 0

    @property
    def service(self) -> str:
        return self.link.partition("->")[0]

    @property
    def resource(self) -> str:
        return self.link.partition("->")[2]

    @property
    def identity(self) -> tuple[str, ...]:
        return (self.anomaly, self.request, self.link, self.key, self.table, self.protected_by)


def find_candidates(observation: Observation, unique: UniqueKeys) -> list[Candidate]:
    """Every candidate of every observed request, sightings merged over its sends."""
    found: dict[tuple[str, ...], Candidate] = {}
    sends: dict[str, int] = {}
    for request in observation.requests:
        sends[request.name] = sends.get(request.name, 0) + 1
        for candidate in _in_one_send(request, unique):
            kept = found.setdefault(candidate.identity, candidate)
            if kept is not candidate:
                kept.sightings += candidate.sightings
    found.update({c.identity: c for c in _stale_caches(observation)})
    for candidate in found.values():
        candidate.attempts = sends.get(candidate.request, 0)
    return list(found.values())


def _in_one_send(request: ObservedRequest, unique: UniqueKeys) -> Iterable[Candidate]:
    operations = request.operations
    yield from _redis_read_then_write(request, operations)
    yield from _atomic_updates(request, operations)
    yield from _sql_check_then_write(request, operations, unique)
    yield from _leases(request, operations)
    yield from _retries(request, operations)


# --- Redis ---------------------------------------------------------------------------------


def _redis_read_then_write(
    request: ObservedRequest, operations: Sequence[DependencyOperation]
) -> Iterable[Candidate]:
    redis = [op for op in operations if op.protocol == "redis" and op.error is None]
    reported: set[tuple[str, str]] = set()
    for i, read in enumerate(redis):
        if read.access != "read" or read.end is None:
            continue
        for write in redis[i + 1 :]:
            key = next((k for k in write.keys if k in read.keys), None)
            if key is None or write.access not in ("write", "rmw") or write.link != read.link:
                continue
            if _cache_fill(read, write, operations):
                break  # a miss filled from the database: the cache-aside rule's business
            anomaly = "check-then-act" if write.access == "rmw" else "lost-update"
            if (anomaly, key) in reported:
                break
            reported.add((anomaly, key))
            yield _candidate(
                request,
                anomaly,
                write.link,
                read,
                write,
                key=key,
                protected_by=_redis_guard(read, write, redis),
            )
            break


def _atomic_updates(
    request: ObservedRequest, operations: Sequence[DependencyOperation]
) -> Iterable[Candidate]:
    """A read-modify-write done by the dependency in one step (INCR, a script, `x = x + 1`)
    with no separate read of its own before it: the lost update it would be is guarded."""
    read: set[str] = set()
    locks = {op.keys[0] for op in operations if _is_lock(op)}  # their release is no update
    reported: set[tuple[str, str]] = set()
    for op in operations:
        if op.error is not None or locks.intersection(op.keys):
            continue
        if op.protocol == "redis" and op.access == "read":
            read.update(op.keys)
        guard = _atomic_guard(op)
        if not guard or not op.keys or any(k in read for k in op.keys):
            continue
        where = op.keys[0]
        if (op.link, where) in reported:
            continue
        reported.add((op.link, where))
        table = where if op.protocol == "postgres" else ""
        yield _candidate(
            request,
            "lost-update",
            op.link,
            op,
            op,
            key="" if table else where,
            table=table,
            protected_by=guard,
        )


def _atomic_guard(op: DependencyOperation) -> str:
    if op.protocol == "redis" and op.access == "rmw" and not _is_lock(op):
        if op.command.startswith(("EVAL", "FCALL")):
            return f"{op.command}: a script reads and writes in one step"
        if op.detail.get("nx") or op.command == "SETNX":
            return "SET NX: written only if absent"
        return f"{op.command}: one atomic command"
    if op.protocol == "postgres" and op.command == "UPDATE" and op.detail.get("relative"):
        return "a relative UPDATE (the new value computed from the row's own)"
    return ""


def _redis_guard(
    read: DependencyOperation, write: DependencyOperation, redis: Sequence[DependencyOperation]
) -> str:
    detail = write.detail
    key = next(k for k in write.keys if k in read.keys)
    if detail.get("in_multi") and key in (detail.get("watched") or ()):
        return "WATCH/MULTI"
    if write.command.startswith(("EVAL", "FCALL")):
        return "a script that reads and writes the key in one step"
    if detail.get("nx") or write.command in ("SETNX", "MSETNX"):
        return "SET NX: written only if still absent"
    return _lock_held(write, redis, until=write)


def _lock_held(
    first: DependencyOperation,
    operations: Sequence[DependencyOperation],
    *,
    until: DependencyOperation,
) -> str:
    """`the lock K` when a `SET K NX PX` lock was taken before `first` and not released
    before `until` started; else ""."""
    for acquire in operations:
        if acquire.start >= until.start:
            break
        if not _is_lock(acquire) or acquire.keys[0] in until.keys:
            continue
        lock = acquire.keys[0]
        released = any(
            acquire.start < op.start < until.start
            and lock in op.keys
            and op.command in ("DEL", "UNLINK", "EVAL", "EVALSHA", "FCALL")
            for op in operations
        )
        if not released and acquire.start <= first.start:
            return f"the lock {lock}"
    return ""


def _is_lock(operation: DependencyOperation) -> bool:
    detail = operation.detail
    return (
        operation.command == "SET"
        and bool(detail.get("nx"))
        and detail.get("ttl_ms") is not None
        and detail.get("reply") == "OK"
        and bool(operation.keys)
    )


def _cache_fill(
    read: DependencyOperation, write: DependencyOperation, operations: Sequence[DependencyOperation]
) -> bool:
    """A cache miss (nil) followed by a database read before the write: cache-aside, not a
    read-modify-write of the key."""
    if read.detail.get("reply") != "nil":
        return False
    return any(
        op.protocol == "postgres" and op.detail.get("tables_read") and read.end <= op.start
        for op in operations
        if op.start < write.start and read.end is not None
    )


# --- SQL -----------------------------------------------------------------------------------


def _sql_check_then_write(
    request: ObservedRequest, operations: Sequence[DependencyOperation], unique: UniqueKeys
) -> Iterable[Candidate]:
    sql = [op for op in operations if op.protocol == "postgres" and op.error is None]
    reported: set[str] = set()
    for i, write in enumerate(sql):
        for table in sorted(write.detail.get("tables_written") or ()):
            if table in reported or write.command == "DELETE":
                continue
            if write.command == "UPDATE" and _inserted_earlier(sql[:i], table):
                continue  # the request updates the row it inserted itself
            check = _last_check(sql[:i], write, table)
            if check is None and table not in (write.detail.get("tables_read") or ()):
                continue
            reported.add(table)
            reader = check or write
            yield _candidate(
                request,
                _sql_anomaly(reader, write),
                write.link,
                reader,
                write,
                table=table,
                protected_by=_sql_guard(reader, write, table, sql[: i + 1], unique)
                or _lock_held(reader, operations, until=write),
            )


def _inserted_earlier(earlier: Sequence[DependencyOperation], table: str) -> bool:
    return any(_inserts(op) and table in (op.detail.get("tables_written") or ()) for op in earlier)


def _inserts(operation: DependencyOperation) -> bool:
    """An INSERT, or a statement with one inside it (`WITH ... INSERT ... SELECT`)."""
    return operation.command == "INSERT" or "INSERT" in operation.text.upper().split()


def _last_check(
    earlier: Sequence[DependencyOperation], write: DependencyOperation, table: str
) -> DependencyOperation | None:
    for op in reversed(earlier):
        if op.link == write.link and table in (op.detail.get("tables_read") or ()):
            if op.command == "SELECT":
                return op
    return None


def _sql_anomaly(check: DependencyOperation, write: DependencyOperation) -> str:
    """An INSERT after a count over-admits; after a lookup it duplicates; an UPDATE after a
    SELECT acts on what it read (relative) or overwrites what others wrote (absolute)."""
    if _inserts(write):
        return "check-then-act" if _aggregates(check) else "duplicate-insert"
    return "check-then-act" if write.detail.get("relative") else "lost-update"


def _aggregates(check: DependencyOperation) -> bool:
    text = check.text.lower().replace(" ", "")
    return "sum(" in text or "count(" in text


def _sql_guard(
    check: DependencyOperation,
    write: DependencyOperation,
    table: str,
    transaction: Sequence[DependencyOperation],
    unique: UniqueKeys,
) -> str:
    detail = write.detail
    if check.detail.get("lock"):
        return f"SELECT ... FOR {str(check.detail['lock']).upper()}"
    if write.detail.get("in_transaction"):
        for op in reversed(transaction):
            if op.detail.get("transaction") in ("begin",):
                break
            if op.detail.get("lock") and op.start <= write.start:
                tables = ", ".join(op.detail.get("tables_read") or op.keys)
                return f"SELECT ... FOR {str(op.detail['lock']).upper()} on {tables}"
        isolation = next(
            (op.detail.get("isolation") for op in transaction if op.detail.get("isolation")), None
        )
        if isolation == "serializable":
            return "SERIALIZABLE"
    covering = _covering_index(check, write, table, unique)
    if detail.get("on_conflict") and covering:
        return f"ON CONFLICT on the unique index ({', '.join(sorted(covering))})"
    if _inserts(write) and covering:
        return f"the unique index ({', '.join(sorted(covering))})"
    return ""


def _covering_index(
    check: DependencyOperation, write: DependencyOperation, table: str, unique: UniqueKeys
) -> frozenset[str]:
    compared = set(check.detail.get("where_columns") or ()) | set(
        write.detail.get("conflict_columns") or ()
    )
    for columns in unique.get(table, ()):
        if columns and columns <= compared:
            return columns
    return frozenset()


# --- leases and retries ----------------------------------------------------------------------


def _leases(
    request: ObservedRequest, operations: Sequence[DependencyOperation]
) -> Iterable[Candidate]:
    redis = [op for op in operations if op.protocol == "redis"]
    for acquire in redis:
        if not _is_lock(acquire) or acquire.end is None:
            continue
        lock = acquire.keys[0]
        release = next(
            (
                op
                for op in redis
                if op.start > acquire.start and lock in op.keys and op is not acquire
            ),
            None,
        )
        if release is None:
            continue
        lease_s = float(acquire.detail["ttl_ms"]) / 1e3
        section_s = release.start - acquire.end
        if section_s < LEASE_SHARE * lease_s:
            continue
        inside = [op for op in operations if acquire.end <= op.start <= release.start]
        candidate = _candidate(
            request,
            "lease-expiry",
            acquire.link,
            acquire,
            release,
            key=lock,
            protected_by="a fencing token" if _fenced(inside) else "",
        )
        candidate.lease_s = lease_s
        yield candidate


def _fenced(inside: Sequence[DependencyOperation]) -> bool:
    """A counter taken inside the lock and a later write that compares against it."""
    counters = [op for op in inside if op.command in ("INCR", "INCRBY")]
    if not counters:
        return False
    after = [op for op in inside if op.start > counters[0].start and op.access in ("write", "rmw")]
    return any(
        op.command.startswith(("EVAL", "FCALL"))
        or any(
            "fence" in column or "token" in column
            for column in op.detail.get("where_columns") or ()
        )
        for op in after
    )


def _retries(
    request: ObservedRequest, operations: Sequence[DependencyOperation]
) -> Iterable[Candidate]:
    calls = [op for op in operations if op.protocol == "http" and op.access == "write"]
    for i, first in enumerate(calls):
        again = next((op for op in calls[i + 1 :] if _same_call(first, op)), None)
        if again is None:
            continue
        keys = {first.detail.get("idempotency_key"), again.detail.get("idempotency_key")}
        protected = "an idempotency key" if None not in keys and len(keys) == 1 else ""
        yield _candidate(
            request,
            "double-effect",
            first.link,
            first,
            again,
            key=first.keys[0] if first.keys else "",
            protected_by=protected,
        )
        return


def _same_call(first: DependencyOperation, again: DependencyOperation) -> bool:
    return (
        first.command == again.command
        and first.keys == again.keys
        and first.detail.get("body_sha1") == again.detail.get("body_sha1")
    )


# --- cache-aside across requests -------------------------------------------------------------


def _stale_caches(observation: Observation) -> Iterable[Candidate]:
    fills: dict[str, tuple[ObservedRequest, DependencyOperation, DependencyOperation]] = {}
    for request in observation.requests:
        for key, db_read, cache_set in _fills(request.operations):
            fills.setdefault(key, (request, db_read, cache_set))
    if not fills:
        return
    found: dict[tuple[str, str], Candidate] = {}
    for request in observation.requests:
        for key, db_write, invalidate in _invalidations(request.operations, set(fills)):
            reader, db_read, cache_set = fills[key]
            versioned = cache_set.command.startswith(("EVAL", "FCALL"))
            candidate = found.get((key, request.name))
            if candidate is None:
                candidate = Candidate(
                    anomaly="stale-cache",
                    request=reader.name,
                    method=reader.method,
                    path=reader.path,
                    link=cache_set.link,
                    key=key,
                    pair=request.name,
                    protected_by="a versioned cache write (a script compares versions)"
                    if versioned
                    else "",
                )
                found[(key, request.name)] = candidate
            assert db_read.end is not None
            written = db_write.end if db_write.end is not None else db_write.start
            candidate.sightings.append(
                Sighting(
                    window_s=max(0.0, cache_set.start - db_read.start),
                    offset_s=max(0.0, db_read.start - reader.start),
                    pair_offset_s=max(0.0, written - request.start),
                    pair_window_s=max(0.0, invalidate.start - written),
                    evidence=(
                        f"{reader.name}: {_shown(db_read, reader.start)}",
                        f"{reader.name}: {_shown(cache_set, reader.start)}",
                        f"{request.name}: {_shown(db_write, request.start)}",
                        f"{request.name}: {_shown(invalidate, request.start)}",
                    ),
                )
            )
    yield from found.values()


def _fills(
    operations: Sequence[DependencyOperation],
) -> Iterable[tuple[str, DependencyOperation, DependencyOperation]]:
    for i, miss in enumerate(operations):
        if miss.protocol != "redis" or miss.access != "read" or miss.detail.get("reply") != "nil":
            continue
        key = miss.keys[0] if miss.keys else ""
        later = operations[i + 1 :]
        db_read = next(
            (op for op in later if op.protocol == "postgres" and op.command == "SELECT"), None
        )
        if db_read is None or db_read.end is None:
            continue
        cache_set = next(
            (
                op
                for op in later
                if op.protocol == "redis"
                and key in op.keys
                and op.start > db_read.start
                and op.access in ("write", "rmw")
                and not op.detail.get("nx")
            ),
            None,
        )
        if cache_set is not None:
            yield key, db_read, cache_set


def _invalidations(
    operations: Sequence[DependencyOperation], cached: set[str]
) -> Iterable[tuple[str, DependencyOperation, DependencyOperation]]:
    for i, db_write in enumerate(operations):
        if db_write.protocol != "postgres" or db_write.command not in (
            "UPDATE",
            "DELETE",
            "INSERT",
        ):
            continue
        for op in operations[i + 1 :]:
            if op.protocol != "redis" or not op.command.startswith(
                ("DEL", "UNLINK", "SET", "EVAL", "FCALL")
            ):
                continue
            for key in op.keys:
                if key in cached and not op.detail.get("in_multi"):
                    yield key, db_write, op


# --- building ----------------------------------------------------------------------------------


def _candidate(
    request: ObservedRequest,
    anomaly: str,
    link: str,
    opened: DependencyOperation,
    acted: DependencyOperation,
    *,
    key: str = "",
    table: str = "",
    protected_by: str = "",
) -> Candidate:
    opened_at = opened.end if opened.end is not None else opened.start
    sighting = Sighting(
        window_s=max(0.0, acted.start - opened_at),
        offset_s=max(0.0, opened_at - request.start),
        evidence=(_shown(opened, request.start), _shown(acted, request.start)),
    )
    return Candidate(
        anomaly=anomaly,
        request=request.name,
        method=request.method,
        path=request.path,
        link=link,
        key=key,
        table=table,
        protected_by=protected_by,
        sightings=[sighting],
    )


def _shown(operation: DependencyOperation, since: float) -> str:
    """`+1.2ms inventory->redis GET inventory:concert -> 100`: when, where, what, its answer."""
    reply = operation.detail.get("reply")
    answer = f" -> {reply}" if reply not in (None, "") else ""
    if operation.error:
        answer = f" -> error {operation.error}"
    return f"+{(operation.start - since) * 1e3:.1f}ms {operation.link} {operation.text}{answer}"
