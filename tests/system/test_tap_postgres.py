"""The PostgreSQL tap: real psycopg traffic through a tapped TcpProxy, and the decoder alone.

The proxy runs on an event loop in a background thread and forwards to the session's embedded
PostgreSQL; psycopg connects to the proxy (sslmode=prefer: every connection starts with an
SSLRequest the server declines). The decoder tests feed it a conversation built message by
message, whole, cut at every byte and byte by byte.
"""

from __future__ import annotations

import random
import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

import psycopg
import pytest

from heisen.system import EmbeddedPostgres
from heisen.system._tap._postgres import PostgresDecoder
from heisen.system._tcpproxy import Address, TcpProxy
from heisen.system_protocol import DependencyOperation
from support import LoopThread, wait_until

T = TypeVar("T")
pytestmark = pytest.mark.timeout(60)


# --- a tapped proxy in front of the embedded server ---------------------------------------------


class Tapped:
    """A proxy tapping `postgres` in front of the embedded server, and a table of one's own."""

    def __init__(self, loop: LoopThread, server: EmbeddedPostgres) -> None:
        self.loop = loop
        self.server = server
        upstream = Address.parse(server.dsn.rsplit("@", 1)[1].split("/", 1)[0])
        self.proxy = TcpProxy("db", Address("127.0.0.1", 0), [upstream])
        loop.run(self.proxy.start())
        self.proxy.set_tap("postgres")
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.proxy.listen.port}/postgres"
        self.table = f"items_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server.dsn, autocommit=True) as direct:
            direct.execute(f"CREATE TABLE {self.table} (id int PRIMARY KEY, stock int NOT NULL)")
            direct.execute(f"INSERT INTO {self.table} VALUES (1, 10), (2, 20)")

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=autocommit)

    def operations(self, count: int) -> list[DependencyOperation]:
        """The operations tapped so far, once there are `count` of them."""

        def enough() -> list[DependencyOperation] | None:
            operations = self.proxy.operations()[1]
            return operations if len(operations) >= count else None

        operations = wait_until(enough, what=f"{count} tapped operations")
        assert self.proxy.tap_lost == {}
        for operation in operations:
            assert operation.protocol == "postgres" and operation.link == "db"
            assert operation.end is not None and operation.start <= operation.end
        starts = [operation.start for operation in operations]
        assert starts == sorted(starts)
        return operations

    def close(self) -> None:
        self.loop.run(self.proxy.stop())
        with psycopg.connect(self.server.dsn, autocommit=True) as direct:
            direct.execute(f"DROP TABLE {self.table}")


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.close()


@pytest.fixture
def tapped(loop: LoopThread, embedded_postgres: EmbeddedPostgres) -> Iterator[Tapped]:
    tap = Tapped(loop, embedded_postgres)
    try:
        yield tap
    finally:
        tap.close()


def commands(operations: list[DependencyOperation]) -> list[str]:
    return [operation.command for operation in operations]


# --- real traffic -------------------------------------------------------------------------------


def test_autocommit_statements_with_parameters(tapped: Tapped) -> None:
    table = tapped.table
    with tapped.connect(autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} (id, stock) VALUES (%s, %s)", (3, 30))
        conn.execute(f"SELECT stock FROM {table} WHERE id = %s", (3,))
        conn.execute(f"UPDATE {table} SET stock = %s WHERE id = %s", (5, 3))
        conn.execute(f"DELETE FROM {table} WHERE id > %s", (1,))
    insert, select, update, delete = tapped.operations(4)
    assert commands([insert, select, update, delete]) == ["INSERT", "SELECT", "UPDATE", "DELETE"]
    assert {op.keys for op in (insert, select, update, delete)} == {(table,)}
    assert [op.access for op in (insert, select, update, delete)] == [
        "write",
        "read",
        "write",
        "write",
    ]
    assert insert.text == f"INSERT INTO {table} (id, stock) VALUES ($1, $2)"
    assert insert.detail["columns_set"] == ["id", "stock"]
    assert update.detail["columns_set"] == ["stock"] and update.detail["relative"] is False
    assert select.detail["where_columns"] == ["id"]
    assert [op.detail["rows"] for op in (insert, select, update, delete)] == [1, 1, 1, 2]
    for op in (insert, select, update, delete):
        assert op.error is None and op.detail["sqlstate"] is None
        assert op.detail["in_transaction"] is False and op.detail["prepared"] is False
    assert len({op.connection for op in (insert, select, update, delete)}) == 1


def test_a_prepared_statement_is_known_by_its_name_on_later_executions(tapped: Tapped) -> None:
    sql = f"SELECT stock FROM {tapped.table} WHERE id = %s"
    with tapped.connect(autocommit=True) as conn:
        for _ in range(3):
            conn.execute(sql, (1,), prepare=True)
    operations = tapped.operations(3)
    assert commands(operations) == ["SELECT"] * 3
    for op in operations:
        assert op.detail["prepared"] is True
        assert op.text == f"SELECT stock FROM {tapped.table} WHERE id = $1"
        assert op.keys == (tapped.table,) and op.detail["rows"] == 1


def test_a_locking_transaction_with_a_relative_update(tapped: Tapped) -> None:
    table = tapped.table
    with tapped.connect() as conn:
        conn.execute(f"SELECT stock FROM {table} WHERE id = %s FOR UPDATE", (1,))
        conn.execute(f"UPDATE {table} SET stock = stock - 1 WHERE id = %s", (1,))
        conn.commit()
    begin, select, update, commit = tapped.operations(4)
    assert commands([begin, select, update, commit]) == ["BEGIN", "SELECT", "UPDATE", "COMMIT"]
    assert (begin.access, begin.detail["transaction"], begin.detail["in_transaction"]) == (
        "none",
        "begin",
        False,
    )
    assert (select.access, select.detail["lock"], select.detail["in_transaction"]) == (
        "read",
        "update",
        True,
    )
    assert (update.access, update.detail["relative"], update.detail["rows"]) == ("rmw", True, 1)
    assert update.detail["tables_written"] == [table] and update.detail["in_transaction"]
    assert (commit.detail["transaction"], commit.detail["in_transaction"]) == ("commit", True)


def test_a_pipeline_sends_begin_statements_and_commit_before_one_sync(tapped: Tapped) -> None:
    table = tapped.table
    with tapped.connect() as conn:
        with conn.pipeline(), conn.transaction():
            conn.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", (1,))
            conn.execute(f"UPDATE {table} SET stock = stock - %s WHERE id = %s", (2, 1))
    operations = tapped.operations(4)
    assert commands(operations) == ["BEGIN", "SELECT", "UPDATE", "COMMIT"]
    assert [op.detail["in_transaction"] for op in operations] == [False, True, True, True]
    assert operations[2].access == "rmw"


def test_a_pipelined_error_skips_the_statements_up_to_its_sync(tapped: Tapped) -> None:
    table = tapped.table
    with tapped.connect(autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            with conn.pipeline() as pipeline:
                conn.execute(f"INSERT INTO {table} VALUES (%s, %s)", (1, 1))
                conn.execute(f"UPDATE {table} SET stock = 0")
                pipeline.sync()
        conn.execute(f"SELECT count(*) FROM {table}")
    insert, select = tapped.operations(2)
    assert (insert.command, insert.detail["sqlstate"]) == ("INSERT", "23505")
    assert select.command == "SELECT" and select.detail["rows"] == 1


def test_an_upsert_is_a_read_modify_write(tapped: Tapped) -> None:
    table = tapped.table
    with tapped.connect(autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO {table} (id, stock) VALUES (%s, %s)"
            f" ON CONFLICT (id) DO UPDATE SET stock = {table}.stock + excluded.stock",
            (1, 5),
        )
        conn.execute(f"INSERT INTO {table} VALUES (%s, %s) ON CONFLICT DO NOTHING", (2, 0))
    upsert, ignore = tapped.operations(2)
    assert (upsert.command, upsert.access, upsert.keys) == ("INSERT", "rmw", (table,))
    assert upsert.detail["on_conflict"] == "update"
    assert upsert.detail["conflict_columns"] == ["id"]
    assert upsert.detail["relative"] is True and upsert.detail["rows"] == 1
    assert (ignore.access, ignore.detail["on_conflict"], ignore.detail["rows"]) == (
        "write",
        "nothing",
        0,
    )


def test_a_unique_violation_inside_a_transaction_then_rollback(tapped: Tapped) -> None:
    table = tapped.table
    with tapped.connect() as conn:
        conn.execute(f"SELECT stock FROM {table} WHERE id = %s", (2,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(f"INSERT INTO {table} (id, stock) VALUES (%s, %s)", (2, 1))
        conn.rollback()
    begin, select, insert, rollback = tapped.operations(4)
    assert commands([begin, select, insert, rollback]) == ["BEGIN", "SELECT", "INSERT", "ROLLBACK"]
    assert insert.error is not None
    assert insert.error.startswith("23505 duplicate key value violates unique constraint")
    assert insert.detail["sqlstate"] == "23505" and insert.detail["rows"] is None
    assert insert.detail["in_transaction"] is True and insert.access == "write"
    assert rollback.error is None and rollback.detail["transaction"] == "rollback"
    assert rollback.detail["in_transaction"] is True


def test_a_simple_query_of_several_statements(tapped: Tapped) -> None:
    table = tapped.table
    with tapped.connect(autocommit=True) as conn:
        cursor = psycopg.ClientCursor(conn)
        cursor.execute(
            f"BEGIN; UPDATE {table} SET stock = stock + 1 WHERE id = %s;"
            f" SELECT * FROM {table}; COMMIT",
            (1,),
        )
        with pytest.raises(psycopg.errors.DivisionByZero):
            cursor.execute("SELECT 1; SELECT 1 / 0; SELECT 2")
    begin, update, select, commit, first, failed = tapped.operations(6)
    assert commands([begin, update, select, commit]) == ["BEGIN", "UPDATE", "SELECT", "COMMIT"]
    assert update.text == f"UPDATE {table} SET stock = stock + 1 WHERE id = 1"
    assert (update.access, update.detail["rows"], update.detail["in_transaction"]) == (
        "rmw",
        1,
        True,
    )
    assert select.detail["rows"] == 2
    assert commit.detail["in_transaction"] is True
    assert begin.start == update.start == select.start == commit.start
    assert (first.text, first.error) == ("SELECT 1", None)
    assert failed.text == "SELECT 1 / 0" and failed.detail["sqlstate"] == "22012"
    assert failed.error == "22012 division by zero"
    time.sleep(0.05)
    assert len(tapped.proxy.operations()[1]) == 6  # SELECT 2 never ran


def test_set_transaction_isolation_level(tapped: Tapped) -> None:
    with tapped.connect() as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        conn.execute(f"SELECT sum(stock) FROM {tapped.table}")
        conn.commit()
    with tapped.connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.execute("SELECT 1")
        conn.commit()
    operations = tapped.operations(7)
    assert commands(operations) == ["BEGIN", "SET", "SELECT", "COMMIT", "BEGIN", "SELECT", "COMMIT"]
    assert operations[1].detail["isolation"] == "serializable"
    assert operations[1].access == "none" and operations[1].detail["in_transaction"] is True
    assert operations[4].detail["isolation"] == "repeatable read"
    assert operations[0].connection != operations[4].connection


def test_copy_from_the_client(tapped: Tapped) -> None:
    table = tapped.table
    with tapped.connect(autocommit=True) as conn:
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY {table} (id, stock) FROM STDIN") as copy:
                for row in range(3, 1003):
                    copy.write_row((row, row))
        conn.execute(f"SELECT count(*) FROM {table}")
    copied, counted = tapped.operations(2)
    assert (copied.command, copied.access, copied.keys) == ("COPY", "write", (table,))
    assert copied.detail["rows"] == 1000
    assert counted.command == "SELECT"


# --- the decoder alone ---------------------------------------------------------------------------


def message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def cstring(text: str) -> bytes:
    return text.encode() + b"\0"


def query(sql: str) -> bytes:
    return message(b"Q", cstring(sql))


def extended(sql: str, name: str = "", *, parse: bool = True) -> bytes:
    parsed = message(b"P", cstring(name) + cstring(sql) + b"\0\0") if parse else b""
    bind = message(b"B", cstring("") + cstring(name) + b"\0\0" + b"\0\0" + b"\0\0")
    return parsed + bind + message(b"D", b"P\0") + message(b"E", b"\0\0\0\0\0")


def complete(tag: str) -> bytes:
    return message(b"C", cstring(tag))


def error(sqlstate: str, text: str) -> bytes:
    fields = b"SERROR\0" + b"C" + cstring(sqlstate) + b"M" + cstring(text) + b"\0"
    return message(b"E", fields)


def ready(status: bytes) -> bytes:
    return message(b"Z", status)


SYNC = message(b"S")
PARSED_BOUND = message(b"1") + message(b"2")
ROW = message(b"T", b"\0\1" + cstring("stock") + bytes(18)) + message(b"D", b"\0\1\0\0\0\2" + b"10")
STARTUP = struct.pack("!II", 8, 80877103)
HELLO = struct.pack("!I", 3 << 16) + cstring("user") + cstring("postgres") + b"\0"

CONVERSATION: list[tuple[str, bytes, float]] = [
    ("client", STARTUP, 1.0),
    ("server", b"N", 1.1),
    ("client", struct.pack("!I", len(HELLO) + 4) + HELLO, 1.2),
    ("server", message(b"R", b"\0\0\0\x0a" + cstring("SCRAM-SHA-256") + b"\0"), 1.3),
    ("client", message(b"p", cstring("SCRAM-SHA-256") + b"\0\0\0\4abcd"), 1.4),
    ("server", message(b"R", b"\0\0\0\x0b" + b"r=xyz"), 1.5),
    ("client", message(b"p", b"c=biws,r=xyz"), 1.6),
    ("server", message(b"R", b"\0\0\0\x0c" + b"v=ok") + message(b"R", bytes(4)), 1.7),
    ("server", message(b"S", cstring("TimeZone") + cstring("UTC")), 1.8),
    ("server", message(b"K", bytes(8)) + ready(b"I"), 1.9),
    ("client", query("BEGIN; UPDATE items SET stock = stock - 1 WHERE id = 1; COMMIT"), 2.0),
    ("server", complete("BEGIN") + complete("UPDATE 1"), 2.1),
    ("server", complete("COMMIT") + ready(b"I"), 2.2),
    ("client", extended("SELECT stock FROM items WHERE id = $1 FOR UPDATE", "s1") + SYNC, 3.0),
    ("server", PARSED_BOUND + ROW + complete("SELECT 1") + ready(b"I"), 3.1),
    ("client", extended("", "s1", parse=False) + SYNC, 4.0),
    ("server", message(b"2") + ROW + complete("SELECT 1") + ready(b"I"), 4.1),
    ("client", extended("BEGIN") + extended("INSERT INTO items VALUES ($1, $2)"), 5.0),
    ("client", extended("INSERT INTO items VALUES ($1, $2)") + extended("COMMIT") + SYNC, 5.1),
    ("server", PARSED_BOUND + message(b"n") + complete("BEGIN"), 5.2),
    ("server", PARSED_BOUND + message(b"n") + complete("INSERT 0 1") + PARSED_BOUND, 5.3),
    ("server", message(b"n") + error("23505", "duplicate key") + ready(b"E"), 5.4),
    ("client", query("ROLLBACK"), 6.0),
    ("server", message(b"N", b"SWARNING\0Mno\0\0") + complete("ROLLBACK") + ready(b"I"), 6.1),
    ("client", query(" ; "), 7.0),
    ("server", message(b"I") + ready(b"I"), 7.1),
    ("client", message(b"X"), 8.0),
]

EXPECTED = [
    ("BEGIN", 2.0, 2.1, None, False, False),
    ("UPDATE", 2.0, 2.1, None, True, False),
    ("COMMIT", 2.0, 2.2, None, True, False),
    ("SELECT", 3.0, 3.1, None, False, True),
    ("SELECT", 4.0, 4.1, None, False, True),
    ("BEGIN", 5.0, 5.2, None, False, False),
    ("INSERT", 5.0, 5.3, None, True, False),
    ("INSERT", 5.1, 5.4, "23505 duplicate key", True, False),
    ("ROLLBACK", 6.0, 6.1, None, True, False),
]


def replay(chunks: list[tuple[str, bytes, float]]) -> tuple[PostgresDecoder, list[Any]]:
    decoder = PostgresDecoder("db", 7)
    operations: list[DependencyOperation] = []
    for side, data, now in chunks:
        if side == "client":
            decoder.from_client(data, now)
        else:
            decoder.from_server(data, now)
        operations += decoder.take()
    decoder.close(9.0)
    operations += decoder.take()
    return decoder, [op.to_json() for op in operations]


def test_a_conversation_decodes_to_its_statements() -> None:
    decoder, operations = replay(CONVERSATION)
    assert decoder.lost is None
    assert [
        (
            op["command"],
            op["start"],
            op["end"],
            op["error"],
            op["detail"]["in_transaction"],
            op["detail"]["prepared"],
        )
        for op in operations
    ] == EXPECTED
    assert operations[1]["detail"]["rows"] == 1 and operations[1]["access"] == "rmw"
    assert operations[3]["detail"]["lock"] == "update"
    assert operations[4]["text"] == "SELECT stock FROM items WHERE id = $1 FOR UPDATE"
    assert operations[7]["detail"]["sqlstate"] == "23505"
    assert {op["link"] for op in operations} == {"db"}
    assert {op["connection"] for op in operations} == {7}


def test_cutting_the_conversation_anywhere_changes_nothing() -> None:
    _, whole = replay(CONVERSATION)
    for index, (side, data, now) in enumerate(CONVERSATION):
        for cut in range(1, len(data)):
            chunks = list(CONVERSATION)
            chunks[index : index + 1] = [(side, data[:cut], now), (side, data[cut:], now)]
            decoder, operations = replay(chunks)
            assert decoder.lost is None, (index, cut)
            assert operations == whole, (index, cut)
    bytewise = [
        (side, data[i : i + 1], now) for side, data, now in CONVERSATION for i in range(len(data))
    ]
    assert replay(bytewise)[1] == whole


def test_statements_without_an_answer_end_with_the_connection() -> None:
    decoder = PostgresDecoder("db", 1)
    decoder.from_client(STARTUP[:0] + struct.pack("!I", len(HELLO) + 4) + HELLO, 1.0)
    decoder.from_server(message(b"R", bytes(4)) + ready(b"I"), 1.1)
    decoder.from_client(extended("UPDATE items SET stock = 0") + SYNC, 2.0)
    decoder.from_server(PARSED_BOUND, 2.1)
    assert decoder.take() == []
    decoder.close(3.0)
    (operation,) = decoder.take()
    assert (operation.command, operation.start, operation.end) == ("UPDATE", 2.0, None)


def test_an_error_before_the_sync_is_sent_skips_what_follows_up_to_it() -> None:
    decoder = PostgresDecoder("db", 1)
    hello_32 = struct.pack("!I", 3 << 16 | 2) + HELLO[4:]  # protocol 3.2 (PostgreSQL 18)
    decoder.from_client(struct.pack("!I", len(hello_32) + 4) + hello_32, 1.0)
    decoder.from_server(message(b"R", bytes(4)) + ready(b"I"), 1.1)
    prepare = message(b"P", cstring("s1") + cstring("SELECT 1 FROM items") + b"\0\0")
    decoder.from_client(prepare + SYNC, 1.2)
    decoder.from_server(message(b"1") + ready(b"I"), 1.3)
    decoder.from_client(extended("INSERT INTO items VALUES (1)") + message(b"H"), 2.0)
    decoder.from_server(PARSED_BOUND + message(b"n") + error("23505", "duplicate key"), 2.1)
    # the server skips these, the Close of s1 included: s1 still exists afterwards
    closed = message(b"C", b"S" + cstring("s1"))
    decoder.from_client(extended("UPDATE items SET stock = 0") + closed + SYNC, 3.0)
    decoder.from_server(ready(b"I"), 3.1)
    decoder.from_client(extended("", "s1", parse=False) + SYNC, 4.0)
    decoder.from_server(message(b"2") + ROW + complete("SELECT 1") + ready(b"I"), 4.1)
    decoder.close(5.0)
    operations = decoder.take()
    assert decoder.lost is None
    assert [(op.command, op.text, op.start, op.end, op.error) for op in operations] == [
        ("INSERT", "INSERT INTO items VALUES (1)", 2.0, 2.1, "23505 duplicate key"),
        ("SELECT", "SELECT 1 FROM items", 4.0, 4.1, None),
    ]


@pytest.mark.parametrize(
    ("request_code", "answer", "lost"),
    [(80877103, b"S", "TLS"), (80877104, b"G", "GSSAPI encryption")],
)
def test_an_encrypted_connection_stops_the_tap(request_code: int, answer: bytes, lost: str) -> None:
    decoder = PostgresDecoder("db", 1)
    decoder.from_client(struct.pack("!II", 8, request_code), 1.0)
    decoder.from_server(answer, 1.1)
    assert decoder.lost == lost
    decoder.from_client(b"\x16\x03\x01 random tls bytes", 1.2)
    decoder.from_server(b"\x16\x03\x03 more", 1.3)
    assert decoder.take() == [] and decoder.lost == lost


@pytest.mark.parametrize("seed", range(20))
def test_garbage_stops_the_tap_without_raising(seed: int) -> None:
    rng = random.Random(seed)
    decoder = PostgresDecoder("db", 1)
    if seed % 2:  # garbage after a proper startup
        decoder.from_client(struct.pack("!I", len(HELLO) + 4) + HELLO, 1.0)
    for step in range(20):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        if step % 2:
            decoder.from_server(data, 2.0)
        else:
            decoder.from_client(data, 2.0)
        decoder.take()
    decoder.close(3.0)
    decoder.take()
    assert decoder.lost is not None


def test_a_malformed_message_stops_the_tap() -> None:
    decoder = PostgresDecoder("db", 1)
    decoder.from_client(struct.pack("!I", len(HELLO) + 4) + HELLO, 1.0)
    decoder.from_client(message(b"P", b"no terminator"), 2.0)
    assert decoder.lost is not None and "malformed" in decoder.lost
