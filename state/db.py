"""A small SQL database for state that several processes share: SQLite (WAL) on one host, PostgreSQL when
they run on several.

The escalator's incidents and the chat workers' conversations are kept alike: one URL setting each
(`state_store`, `conversations.store`) in the same style, `sqlite:///var/alertq.db` (a path relative to
the working directory), `sqlite:////abs/path.db`, or `postgresql://user@host/db` (`?schema=NAME` keeps the
tables in a schema of their own). Statements are written once with `%s` placeholders; SQLite gets them
as `?`. `{id_type}` in a schema statement becomes each database's auto-increment key.

A `Database` is thread-safe: each statement, or each `transaction()`, holds the connection alone. SQLite
transactions start with BEGIN IMMEDIATE (the write lock up front, so two processes never deadlock
upgrading a read lock); PostgreSQL's run at READ COMMITTED, so a statement that must see another
transaction's work takes its row lock (`for_update`).
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class Transaction(Protocol):
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (a SELECT's, or RETURNING's), [] for none."""

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""


class Database(ABC):
    """One connection, shared by the threads of a process."""

    for_update: str  # appended to a SELECT that must lock the rows it reads until the transaction ends

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Statements that commit together (or, on an exception, not at all)."""

    @abstractmethod
    def describe(self) -> str:
        """Which database this is, for logs: never a password."""

    @abstractmethod
    def close(self) -> None: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement in its own transaction; its rows (RETURNING included)."""
        with self.transaction() as tx:
            return tx.rows(sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One SELECT, which changes nothing: no write lock needed."""
        return self.execute(sql, params)

    def execute_counts(self, *statements: tuple[str, Sequence[Any]]) -> list[int]:
        """Statements in one transaction; the number of rows each changed."""
        with self.transaction() as tx:
            return [tx.count(sql, params) for sql, params in statements]


class _SqliteTransaction:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._cursor.execute(sql.replace("%s", "?"), tuple(params)).fetchall()

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._cursor.execute(sql.replace("%s", "?"), tuple(params)).rowcount


class SqliteDatabase(Database):
    """One file, WAL mode: several processes on one host may share it; writers wait for each other."""

    for_update = ""  # BEGIN IMMEDIATE already holds the whole database

    def __init__(self, path: Path, schema: Sequence[str], busy_timeout: float = 30.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a write takes the lock up front.
        self._db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self.transaction() as tx:
            for statement in schema:
                tx.rows(statement.format(id_type="INTEGER"))

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # Autocommit: the SELECT is its own read transaction, which waits for no writer (WAL).
        with self._lock:
            return self._db.execute(sql.replace("%s", "?"), tuple(params)).fetchall()

    def close(self) -> None:
        self._db.close()

    def describe(self) -> str:
        return f"sqlite {self.path}"


class _PostgresTransaction:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._connection.execute(sql.encode(), tuple(params))
        return list(cursor.fetchall()) if cursor.description is not None else []

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        rowcount: int = self._connection.execute(sql.encode(), tuple(params)).rowcount
        return rowcount


class PostgresDatabase(Database):
    """PostgreSQL (psycopg 3): one database serves the processes of several hosts."""

    for_update = " FOR UPDATE"

    def __init__(self, dsn: str, schema: Sequence[str], *, pg_schema: str | None = None, lock_name: str) -> None:
        import psycopg
        from psycopg import sql

        self._db = psycopg.connect(dsn, autocommit=True)
        info = self._db.info
        self._description = f"postgresql {info.user}@{info.host}:{info.port}/{info.dbname}" + (
            f" schema {pg_schema}" if pg_schema else ""
        )
        self._lock = threading.Lock()
        with self._db.transaction():
            # Two processes starting at once would race on CREATE ... IF NOT EXISTS: take turns.
            self._db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock_name,))
            if pg_schema is not None:
                self._db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(pg_schema)))
                # A plain SET (not LOCAL) outlives the transaction: the session keeps this schema.
                self._db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
            for statement in schema:
                self._db.execute(statement.format(id_type="BIGINT GENERATED ALWAYS AS IDENTITY").encode())

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock, self._db.transaction():
            yield _PostgresTransaction(self._db)

    def close(self) -> None:
        self._db.close()

    def describe(self) -> str:
        return self._description


def sqlite_path(url: str, setting: str = "state_store") -> Path | None:
    """The file of a `sqlite:` URL; None for any other scheme."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        return None
    if parts.netloc:
        raise ValueError(f"{setting}: a sqlite URL has no host: sqlite:///relative/path or sqlite:////abs/path")
    return Path(parts.path[1:])


def postgres_dsn(url: str, setting: str = "state_store") -> tuple[str, str | None]:
    """The connection string and the `?schema=` of a `postgresql:` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"{setting}: unknown scheme {parts.scheme!r}; use sqlite:///path or postgresql://…")
    query = dict(parse_qsl(parts.query))
    pg_schema = query.pop("schema", None)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment)), pg_schema


def open_database(url: str, schema: Sequence[str], *, setting: str, lock_name: str) -> Database:
    """The database a store URL names, its tables made if missing. `setting` names the URL's setting in
    errors, `lock_name` serialises PostgreSQL's schema creation among processes starting at once."""
    path = sqlite_path(url, setting)
    if path is not None:
        return SqliteDatabase(path, schema)
    dsn, pg_schema = postgres_dsn(url, setting)
    return PostgresDatabase(dsn, schema, pg_schema=pg_schema, lock_name=lock_name)
