"""What `statement_facts` reads from SQL: commands, tables, assignments, locks, transactions.

Pure: no server. The ticketing service's own statements are read from its source, so a
change there that the reader no longer understands fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from heisen.system._tap._sql import StatementFacts, split_statements, statement_facts

TICKETING = Path(__file__).resolve().parents[2] / "examples" / "ticketing"


def one(sql: str) -> StatementFacts:
    facts = statement_facts(sql)
    assert len(facts) == 1, facts
    return facts[0]


def service_constant(name: str) -> str:
    tree = ast.parse((TICKETING / "inventory_service.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, str)
            return value
    raise AssertionError(f"no {name} in inventory_service.py")


# --- the ticketing service ---------------------------------------------------------------


def test_reserve_reads_events_and_orders_and_inserts_into_orders_not_into_its_ctes() -> None:
    facts = one(service_constant("RESERVE_SQL"))
    assert facts.command == "SELECT"
    assert facts.tables_read == ("events", "orders")
    assert facts.tables_written == ("orders",)
    assert facts.columns_set == ("event_id", "user_name", "qty", "amount", "status")
    assert facts.where_columns == ("id", "event_id")
    assert facts.access == "write"
    assert not facts.relative
    assert facts.parsed


def test_lock_of_the_event_row() -> None:
    facts = one("SELECT 1 FROM events WHERE id = %s FOR UPDATE")
    assert (facts.command, facts.tables_read, facts.lock) == ("SELECT", ("events",), "update")
    assert facts.where_columns == ("id",)
    assert facts.access == "read"


def test_upsert_of_an_event_is_a_relative_update_on_conflict() -> None:
    facts = one(
        "INSERT INTO events (id, name, capacity, price) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
        " capacity = excluded.capacity, price = excluded.price,"
        " version = events.version + 1, updated_at = now()"
    )
    assert facts.command == "INSERT"
    assert facts.tables_written == ("events",)
    assert facts.tables_read == ()
    assert facts.on_conflict == "update"
    assert facts.conflict_columns == ("id",)
    assert facts.columns_set == ("id", "name", "capacity", "price", "version", "updated_at")
    assert facts.relative
    assert facts.access == "rmw"


def test_event_update_computes_its_version_from_itself() -> None:
    facts = one(
        "UPDATE events SET name = coalesce(%s, name), price = coalesce(%s, price),"
        " capacity = coalesce(%s, capacity), version = version + 1, updated_at = now()"
        " WHERE id = %s RETURNING name, capacity, price, version"
    )
    assert facts.command == "UPDATE"
    assert facts.tables_written == ("events",)
    assert facts.columns_set == ("name", "price", "capacity", "version", "updated_at")
    assert facts.relative and facts.access == "rmw"
    assert facts.where_columns == ("id",)


@pytest.mark.parametrize(
    ("sql", "command", "read", "written", "access"),
    [
        ("INSERT INTO orders (event_id, user_name, qty, amount, charge_id)"
         " VALUES (%s, %s, %s, %s, %s) RETURNING id, created_at",
         "INSERT", (), ("orders",), "write"),
        ("UPDATE orders SET status = 'paid', charge_id = %s WHERE id = %s",
         "UPDATE", (), ("orders",), "write"),
        ("DELETE FROM orders WHERE event_id = %s", "DELETE", (), ("orders",), "write"),
        ("DELETE FROM orders", "DELETE", (), ("orders",), "write"),
        ("SELECT coalesce(sum(qty), 0) FROM orders WHERE event_id = %s",
         "SELECT", ("orders",), (), "read"),
        ("SELECT id, capacity, price, name FROM events", "SELECT", ("events",), (), "read"),
        ("SELECT pg_advisory_lock(%s)", "SELECT", (), (), "read"),
        ("SELECT 1", "SELECT", (), (), "read"),
    ],
)  # fmt: skip
def test_the_services_other_statements(
    sql: str, command: str, read: tuple[str, ...], written: tuple[str, ...], access: str
) -> None:
    facts = one(sql)
    assert (facts.command, facts.tables_read, facts.tables_written, facts.access) == (
        command,
        read,
        written,
        access,
    )


def test_the_schema_file_reads_as_its_statements() -> None:
    facts = statement_facts((TICKETING / "schema.sql").read_text())
    assert [f.command for f in facts] == ["CREATE", "CREATE", "CREATE"]
    assert [f.tables_written for f in facts[:2]] == [("events",), ("orders",)]


# --- tables ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "read", "written"),
    [
        ("SELECT * FROM Public.Items i JOIN stock s ON s.id = i.id", ("public.items", "stock"), ()),
        ("SELECT x FROM a WHERE y IN (SELECT y FROM b WHERE z = $1)", ("a", "b"), ()),
        ("WITH recent AS (SELECT * FROM orders) SELECT * FROM recent", ("orders",), ()),
        ("INSERT INTO archive SELECT * FROM orders WHERE id = $1", ("orders",), ("archive",)),
        ("UPDATE a SET x = b.y FROM b WHERE a.id = b.id", ("b",), ("a",)),
        ("DELETE FROM a USING b WHERE a.id = b.id AND a.k = $1", ("b",), ("a",)),
        ("SELECT 1 FROM a FOR UPDATE OF a SKIP LOCKED", ("a",), ()),
        ("SELECT * FROM generate_series(1, 3) g", (), ()),
        ("TRUNCATE a, b", (), ("a", "b")),
        ("COPY t FROM STDIN", (), ("t",)),
        ("COPY t TO STDOUT", ("t",), ()),
        ("select 1 union select 2 from z", ("z",), ()),
        ('SELECT * FROM "Quoted"', ("quoted",), ()),
    ],
)
def test_tables_read_and_written(sql: str, read: tuple[str, ...], written: tuple[str, ...]) -> None:
    facts = one(sql)
    assert (facts.tables_read, facts.tables_written) == (read, written)
    assert facts.tables == tuple(sorted({*read, *written}))


# --- assignments, conflicts, locks --------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "relative"),
    [
        ("UPDATE items SET stock = stock - 1 WHERE id = $1", True),
        ("UPDATE items i SET stock = i.stock - $1 WHERE id = $2", True),
        ("UPDATE items SET stock = $1 WHERE id = $2", False),
        ("UPDATE items SET stock = (SELECT stock FROM other LIMIT 1)", False),
        ("UPDATE items SET stock = other.stock FROM other WHERE other.id = items.id", False),
        ("INSERT INTO t (k, n) VALUES ($1, 1) ON CONFLICT (k) DO UPDATE SET n = t.n + 1", True),
        ("INSERT INTO t (k, n) VALUES ($1, 1) ON CONFLICT (k) DO UPDATE SET n = excluded.n", False),
    ],
)
def test_relative_assignments(sql: str, relative: bool) -> None:
    assert one(sql).relative is relative


def test_insert_on_conflict_do_nothing() -> None:
    facts = one("INSERT INTO t (a, b) VALUES (%s, %s) ON CONFLICT (a, b) DO NOTHING")
    assert (facts.on_conflict, facts.conflict_columns) == ("nothing", ("a", "b"))
    assert facts.columns_set == ("a", "b")
    assert facts.access == "write"


def test_insert_on_conflict_on_constraint_names_no_columns() -> None:
    facts = one("INSERT INTO t (a) VALUES (1) ON CONFLICT ON CONSTRAINT t_pkey DO NOTHING")
    assert (facts.on_conflict, facts.conflict_columns) == ("nothing", ())


@pytest.mark.parametrize(
    ("clause", "lock"),
    [
        ("FOR UPDATE", "update"),
        ("FOR NO KEY UPDATE", "no key update"),
        ("FOR SHARE", "share"),
        ("FOR KEY SHARE", "key share"),
        ("", None),
    ],
)
def test_locks(clause: str, lock: str | None) -> None:
    facts = one(f"SELECT * FROM t WHERE id = $1 {clause}")
    assert facts.lock == lock
    assert facts.access == "read"


def test_where_columns_are_those_compared_to_a_value() -> None:
    facts = one("SELECT * FROM t WHERE a = $1 AND b > 2 AND c = d AND (e = 'x' OR f = %s)")
    assert facts.where_columns == ("a", "e", "f")


# --- transactions and sessions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "command", "transaction", "isolation"),
    [
        ("BEGIN", "BEGIN", "begin", None),
        ("begin transaction isolation level serializable", "BEGIN", "begin", "serializable"),
        ("BEGIN ISOLATION LEVEL REPEATABLE  READ, READ ONLY", "BEGIN", "begin", "repeatable read"),
        ("START TRANSACTION ISOLATION LEVEL READ COMMITTED", "BEGIN", "begin", "read committed"),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET", None, "serializable"),
        ("SET search_path = public", "SET", None, None),
        ("COMMIT", "COMMIT", "commit", None),
        ("END", "COMMIT", "commit", None),
        ("ROLLBACK", "ROLLBACK", "rollback", None),
        ("ABORT", "ROLLBACK", "rollback", None),
        ("SAVEPOINT s1", "SAVEPOINT", "savepoint", None),
        ("RELEASE SAVEPOINT s1", "RELEASE", "release", None),
        ("ROLLBACK TO SAVEPOINT s1", "ROLLBACK", "rollback to savepoint", None),
        ("SHOW transaction_isolation", "SHOW", None, None),
        ("LISTEN jobs", "LISTEN", None, None),
    ],
)
def test_transaction_control(
    sql: str, command: str, transaction: str | None, isolation: str | None
) -> None:
    facts = one(sql)
    assert (facts.command, facts.transaction, facts.isolation) == (command, transaction, isolation)
    assert facts.access == "none"
    assert facts.tables == ()


# --- splitting, placeholders, failures ---------------------------------------------------------


def test_a_query_string_splits_into_its_statements() -> None:
    facts = statement_facts("BEGIN; UPDATE items SET stock = stock - 1 WHERE id = 1;; COMMIT;")
    assert [f.command for f in facts] == ["BEGIN", "UPDATE", "COMMIT"]
    assert facts[1].text == "UPDATE items SET stock = stock - 1 WHERE id = 1"


def test_semicolons_inside_quotes_and_comments_do_not_split() -> None:
    sql = (
        "SELECT 'a;''b' AS \"x;y\", $$;$$, $tag$ ; $$ $tag$ -- ; comment\n"
        "; /* a ; /* nested ; */ still ; */ SELECT E'\\';' ; -- only a comment"
    )
    assert split_statements(sql) == [
        "SELECT 'a;''b' AS \"x;y\", $$;$$, $tag$ ; $$ $tag$ -- ; comment",
        "/* a ; /* nested ; */ still ; */ SELECT E'\\';'",
    ]


def test_nothing_but_comments_is_no_statement() -> None:
    assert statement_facts("  -- nothing\n /* here */ ;") == []
    assert statement_facts("") == []


@pytest.mark.parametrize("placeholder", ["$1", "%s", "%(event)s"])
def test_placeholders_parse(placeholder: str) -> None:
    facts = one(f"UPDATE items SET stock = stock - {placeholder} WHERE id = {placeholder}")
    assert facts.parsed and facts.relative and facts.where_columns == ("id",)


def test_what_sqlglot_cannot_read_keeps_its_first_word() -> None:
    facts = one("FROBNICATE the ((( tables")
    assert facts == StatementFacts("FROBNICATE the ((( tables", "FROBNICATE", parsed=False)
    assert facts.access == "none"


def test_answers_are_cached_per_text_and_each_caller_gets_its_own_list() -> None:
    sql = "SELECT * FROM cached_items WHERE id = $1"
    first = statement_facts(sql)
    first.clear()
    again = statement_facts(sql)
    assert len(again) == 1 and again[0] is statement_facts(sql)[0]


@pytest.mark.parametrize(
    ("sql", "command", "transaction"),
    [
        ("/* app=shop */ BEGIN", "BEGIN", "begin"),
        ("-- why\nCOMMIT", "COMMIT", "commit"),
        ("/* a /* nested */ one */ UPDATE t SET n = n + 1", "UPDATE", None),
    ],
)
def test_leading_comments_do_not_hide_the_command(
    sql: str, command: str, transaction: str | None
) -> None:
    facts = one(sql)
    assert (facts.command, facts.transaction) == (command, transaction)
