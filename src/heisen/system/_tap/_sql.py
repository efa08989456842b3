"""What a PostgreSQL statement does to its tables, read from its text with sqlglot.

`statement_facts` splits a query string into statements (as the server does:
outside quotes, dollar quotes and comments) and reads each one. Transaction
control and session statements (BEGIN, START TRANSACTION, COMMIT, END,
ROLLBACK, ABORT, SAVEPOINT, RELEASE, SET, SHOW, ...) are read from their words:
sqlglot does not know several of them, and they are the most frequent. The
others go to sqlglot (`read="postgres"`); a statement it cannot read keeps its
first word as `command` and `parsed=False`.

Services repeat the same texts, so the answer is cached per text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

__all__ = ["StatementFacts", "split_statements", "statement_facts"]

_CACHED_TEXTS = 4096


@dataclass(frozen=True, slots=True)
class StatementFacts:
    """One statement: its command and what it reads, writes and locks.

    Table and column names are lower-case, a table schema-qualified only when
    the statement qualified it; a CTE's name is never a table.
    """

    text: str
    command: str
    tables_read: tuple[str, ...] = ()
    tables_written: tuple[str, ...] = ()
    columns_set: tuple[str, ...] = ()
    relative: bool = False
    """A SET (of UPDATE or ON CONFLICT DO UPDATE) computes a column from its current value."""
    lock: str | None = None
    """`update`, `no key update`, `share` or `key share` (SELECT ... FOR ...)."""
    on_conflict: str | None = None
    """`nothing` or `update` (INSERT ... ON CONFLICT DO ...)."""
    conflict_columns: tuple[str, ...] = ()
    transaction: str | None = None
    """`begin`, `commit`, `rollback`, `savepoint`, `release` or `rollback to savepoint`."""
    isolation: str | None = None
    """The isolation level the statement asks for, e.g. `serializable`, `repeatable read`."""
    where_columns: tuple[str, ...] = ()
    """Columns a WHERE compares with `=` to a value (no other column on the other side)."""
    parsed: bool = True

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table the statement touches, sorted."""
        return tuple(sorted({*self.tables_read, *self.tables_written}))

    @property
    def access(self) -> str:
        """`rmw` (relative SET, upsert), `write`, `read` or `none` (see DependencyOperation)."""
        if self.relative or self.on_conflict == "update":
            return "rmw"
        if self.tables_written:
            return "write"
        if self.tables_read or self.command in _READING_COMMANDS:
            return "read"
        return "none"


_READING_COMMANDS = frozenset({"SELECT", "VALUES", "TABLE", "COPY"})


def statement_facts(sql: str) -> list[StatementFacts]:
    """The facts of each statement in `sql`, in order (empty statements left out)."""
    return list(_cached_facts(sql))


@functools.lru_cache(maxsize=_CACHED_TEXTS)
def _cached_facts(sql: str) -> tuple[StatementFacts, ...]:
    return tuple(_facts(statement) for statement in split_statements(sql))


# --- splitting ------------------------------------------------------------------

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def split_statements(sql: str) -> list[str]:
    """The statements of `sql`, split at semicolons outside quotes and comments, stripped.

    A statement of nothing but comments and spaces is left out, as the server does.
    """
    statements: list[str] = []
    start = 0
    significant = False
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char == ";":
            if significant:
                statements.append(sql[start:i].strip())
            start, significant = i + 1, False
            i += 1
        elif char == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif char == "/" and sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif char.isspace():
            i += 1
        else:
            significant = True
            i = _skip_token(sql, i)
    if significant:
        statements.append(sql[start:].strip())
    return statements


def _without_leading_comments(sql: str) -> str:
    i = 0
    while i < len(sql):
        if sql[i].isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        else:
            break
    return sql[i:]


def _skip_block_comment(sql: str, i: int) -> int:
    depth, i = 0, i
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def _skip_token(sql: str, i: int) -> int:
    """Past the quoted string, quoted identifier or dollar-quoted string at `i`, else one char."""
    char = sql[i]
    if char in "'\"":
        escapes = char == "'" and i > 0 and sql[i - 1] in "eE" and not _word_char(sql, i - 2)
        return _skip_quoted(sql, i + 1, char, escapes)
    if char == "$" and not _word_char(sql, i - 1):
        tag = _DOLLAR_TAG.match(sql, i)
        if tag is not None:
            end = sql.find(tag.group(), tag.end())
            return len(sql) if end < 0 else end + len(tag.group())
    return i + 1


def _word_char(sql: str, i: int) -> bool:
    return i >= 0 and (sql[i].isalnum() or sql[i] == "_")


def _skip_quoted(sql: str, i: int, quote: str, escapes: bool) -> int:
    n = len(sql)
    while i < n:
        char = sql[i]
        if escapes and char == "\\":
            i += 2
        elif char == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n


# --- statements read from their words -----------------------------------------------

_ISOLATION = re.compile(
    r"\bisolation\s+level\s+(serializable|repeatable\s+read|read\s+committed|read\s+uncommitted)\b"
)
_WORDS = re.compile(r"[A-Za-z_]+")


def _isolation(lowered: str) -> str | None:
    found = _ISOLATION.search(lowered)
    return None if found is None else " ".join(found.group(1).split())


def _by_words(text: str, words: list[str]) -> StatementFacts | None:
    """Facts of transaction control and session statements, None for any other statement."""
    first = words[0]
    second = words[1] if len(words) > 1 else ""
    lowered = text.lower()
    if first == "BEGIN" or (first == "START" and second == "TRANSACTION"):
        return StatementFacts(text, "BEGIN", transaction="begin", isolation=_isolation(lowered))
    if first in ("COMMIT", "END") and second != "PREPARED":
        return StatementFacts(text, "COMMIT", transaction="commit")
    if first in ("ROLLBACK", "ABORT") and second != "PREPARED":
        if "TO" in words[1:3]:
            return StatementFacts(text, "ROLLBACK", transaction="rollback to savepoint")
        return StatementFacts(text, "ROLLBACK", transaction="rollback")
    if first == "SAVEPOINT":
        return StatementFacts(text, "SAVEPOINT", transaction="savepoint")
    if first == "RELEASE":
        return StatementFacts(text, "RELEASE", transaction="release")
    if first == "SET":
        return StatementFacts(text, "SET", isolation=_isolation(lowered))
    if first in _SESSION_COMMANDS:
        return StatementFacts(text, first)
    return None


_SESSION_COMMANDS = frozenset(
    {"SHOW", "RESET", "DISCARD", "LISTEN", "UNLISTEN", "NOTIFY", "DEALLOCATE", "CHECKPOINT"}
)


# --- statements read by sqlglot ---------------------------------------------------------

_COMMANDS: dict[type[exp.Expr], str] = {
    exp.Select: "SELECT",
    exp.Union: "SELECT",
    exp.Intersect: "SELECT",
    exp.Except: "SELECT",
    exp.Values: "VALUES",
    exp.Insert: "INSERT",
    exp.Update: "UPDATE",
    exp.Delete: "DELETE",
    exp.Merge: "MERGE",
    exp.TruncateTable: "TRUNCATE",
    exp.Copy: "COPY",
    exp.Create: "CREATE",
    exp.Drop: "DROP",
    exp.Alter: "ALTER",
}


def _facts(text: str) -> StatementFacts:
    words = [word.upper() for word in _WORDS.findall(_without_leading_comments(text)[:200])[:3]]
    if not words:
        return StatementFacts(text, text.split(None, 1)[0].upper(), parsed=False)
    by_words = _by_words(text, words)
    if by_words is not None:
        return by_words
    try:
        tree = sqlglot.parse_one(text, read="postgres")
    except SqlglotError:
        return StatementFacts(text, words[0], parsed=False)
    if isinstance(tree, exp.Command) or tree is None:
        return StatementFacts(text, words[0], parsed=False)
    return _read_tree(text, tree, _COMMANDS.get(type(tree), words[0]))


def _read_tree(text: str, tree: exp.Expr, command: str) -> StatementFacts:
    targets = _write_targets(tree)
    target_ids = {id(table) for table in targets}
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    read: set[str] = set()
    for table in tree.find_all(exp.Table):
        name = _table_name(table)
        if name is None or id(table) in target_ids or table.find_ancestor(exp.Lock) is not None:
            continue
        if name in ctes:
            continue
        read.add(name)
    written = {name for name in map(_table_name, targets) if name is not None and name not in ctes}
    if isinstance(tree, exp.Copy) and not tree.args.get("kind"):
        read |= written
        written = set()
    on_conflict, conflict_columns = _conflict(tree)
    return StatementFacts(
        text,
        command,
        tables_read=tuple(sorted(read)),
        tables_written=tuple(sorted(written)),
        columns_set=_columns_set(tree),
        relative=_relative(tree),
        lock=_lock(tree),
        on_conflict=on_conflict,
        conflict_columns=conflict_columns,
        where_columns=_where_columns(tree),
    )


def _table_name(table: exp.Table) -> str | None:
    if not isinstance(table.this, exp.Identifier):
        return None
    name = table.name.lower()
    return f"{table.db.lower()}.{name}" if table.db else name


def _target_table(node: exp.Expr | None) -> exp.Table | None:
    if isinstance(node, exp.Schema):
        node = node.this
    return node if isinstance(node, exp.Table) else None


def _write_targets(tree: exp.Expr) -> list[exp.Table]:
    targets: list[exp.Table] = []
    for node in tree.find_all(exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy):
        table = _target_table(node.this)
        if table is not None:
            targets.append(table)
    for node in tree.find_all(exp.TruncateTable):
        targets.extend(t for t in node.expressions if isinstance(t, exp.Table))
    if isinstance(tree, exp.Create | exp.Drop | exp.Alter):
        table = _target_table(tree.this)
        if table is not None and str(tree.args.get("kind", "")).upper() == "TABLE":
            targets.append(table)
    return targets


def _assignments(tree: exp.Expr) -> Iterator[tuple[exp.EQ, exp.Table | None]]:
    """Each `column = value` of an UPDATE's SET or an ON CONFLICT DO UPDATE, with its table."""
    for update in tree.find_all(exp.Update):
        for assignment in update.expressions:
            if isinstance(assignment, exp.EQ):
                yield assignment, _target_table(update.this)
    for insert in tree.find_all(exp.Insert):
        conflict = insert.args.get("conflict")
        if isinstance(conflict, exp.OnConflict):
            for assignment in conflict.expressions:
                if isinstance(assignment, exp.EQ):
                    yield assignment, _target_table(insert.this)


def _unique(names: Iterator[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _columns_set(tree: exp.Expr) -> tuple[str, ...]:
    def names() -> Iterator[str]:
        for insert in tree.find_all(exp.Insert):
            if isinstance(insert.this, exp.Schema):
                yield from (column.name.lower() for column in insert.this.expressions)
        for assignment, _ in _assignments(tree):
            yield assignment.this.name.lower()

    return _unique(names())


def _relative(tree: exp.Expr) -> bool:
    for assignment, table in _assignments(tree):
        column = assignment.this.name.lower()
        own = {""} | _table_names(table)
        for used in _columns_outside_subqueries(assignment.expression):
            if used.name.lower() == column and used.table.lower() in own:
                return True
    return False


def _table_names(table: exp.Table | None) -> set[str]:
    if table is None:
        return set()
    return {table.name.lower(), table.alias_or_name.lower()}


def _columns_outside_subqueries(node: exp.Expr) -> Iterator[exp.Column]:
    for found in node.walk(prune=lambda n: isinstance(n, exp.Query | exp.Subquery)):
        if isinstance(found, exp.Column):
            yield found


def _lock(tree: exp.Expr) -> str | None:
    lock = tree.find(exp.Lock)
    if lock is None:
        return None
    if lock.args.get("update"):
        return "no key update" if lock.args.get("key") else "update"
    return "key share" if lock.args.get("key") else "share"


def _conflict(tree: exp.Expr) -> tuple[str | None, tuple[str, ...]]:
    insert = tree.find(exp.Insert)
    conflict = None if insert is None else insert.args.get("conflict")
    if not isinstance(conflict, exp.OnConflict):
        return None, ()
    action = str(conflict.args.get("action") or "").upper()
    kind = "update" if "UPDATE" in action else "nothing"
    keys = conflict.args.get("conflict_keys") or []
    columns = _unique(column.name.lower() for key in keys for column in key.find_all(exp.Column))
    return kind, columns


def _where_columns(tree: exp.Expr) -> tuple[str, ...]:
    def names() -> Iterator[str]:
        for where in tree.find_all(exp.Where):
            if isinstance(where.parent, exp.OnConflict):
                continue
            for equal in where.this.walk(prune=lambda n: isinstance(n, exp.Query | exp.Subquery)):
                if not isinstance(equal, exp.EQ):
                    continue
                for side, other in ((equal.this, equal.expression), (equal.expression, equal.this)):
                    if isinstance(side, exp.Column) and other.find(exp.Column) is None:
                        yield side.name.lower()

    return _unique(names())
