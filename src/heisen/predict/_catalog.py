"""What the database itself guarantees: its unique indexes, read once from the catalog."""

from __future__ import annotations

from collections.abc import Mapping

from heisen.errors import SystemUnavailable
from heisen.schema import DependencyKind, Pipeline
from heisen.system_protocol import System

UNIQUE_INDEXES = """
SELECT lower(t.relname), array_agg(lower(a.attname) ORDER BY k.ordinality)
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ordinality)
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE i.indisunique AND i.indpred IS NULL
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
GROUP BY i.indexrelid, t.relname
"""

UniqueKeys = Mapping[str, tuple[frozenset[str], ...]]
"""{table: the column sets each unique index (or primary key) covers}."""


def unique_keys(pipeline: Pipeline, system: System) -> dict[str, tuple[frozenset[str], ...]]:
    """The unique column sets of every table in the pipeline's PostgreSQL dependencies."""
    import psycopg

    found: dict[str, list[frozenset[str]]] = {}
    for name, dependency in pipeline.dependencies.items():
        if dependency.kind is not DependencyKind.POSTGRES:
            continue
        dsn = system.dependency_address(name)
        try:
            with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
                rows = conn.execute(UNIQUE_INDEXES).fetchall()
        except psycopg.Error as exc:
            raise SystemUnavailable(
                f"predict could not read {name}'s unique indexes: {exc}"
            ) from exc
        for table, columns in rows:
            found.setdefault(str(table), []).append(frozenset(str(c) for c in columns))
    return {table: tuple(sets) for table, sets in found.items()}
