"""Engine and session set-up, schema version checks and programmatic migration.

The service refuses to start on a database that is not at the migration head
(`check_migrated`) instead of upgrading it silently: a schema change on a
production PostgreSQL is an operator's decision (`ivr-survey db upgrade`), and a
half-migrated schema found at the first caller's answer would be worse.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"
SQLITE_FILENAME = "ivr-survey.sqlite3"
UPGRADE_COMMAND = "ivr-survey db upgrade"

# How long a writer waits for another writer's lock on SQLite before failing.
# Surveys write one short transaction per keypress, so a wait this long means
# something is wrong, yet it is long enough to ride out a burst at shift end.
SQLITE_BUSY_TIMEOUT_MS = 10_000
# asyncpg's own default is 60 s: far too long for a caller waiting in silence.
POSTGRES_CONNECT_TIMEOUT_S = 10.0

_SQLITE_ALIASES = frozenset({"sqlite", "sqlite+aiosqlite"})
_POSTGRES_ALIASES = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})
_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^/@:]*:)[^/@]*@")


class DatabaseError(Exception):
    """The database cannot be used; the message is one line, fit for an operator.

    It never carries a password, and callers print `str(error)` instead of a
    traceback: an unreachable database is an operating condition, not a bug.
    """


class DatabaseNotMigrated(DatabaseError):
    """The schema is not at the revision this version of the code needs."""


def redact_url(url: str | URL) -> str:
    """The URL with its password masked, safe for logs and error messages.

    Falls back to a regular expression when SQLAlchemy cannot parse the text,
    because a malformed URL is exactly the one that ends up in an error message.
    """
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return _PASSWORD_IN_URL.sub(r"\g<head>***@", url)


def normalize_url(url: str | URL) -> URL:
    """Map the accepted spellings onto the async drivers this service runs on.

    Operators write `postgresql://` and `sqlite:///path` as every other tool
    documents them; the service only has asyncpg and aiosqlite, so other
    explicit drivers are refused with a message rather than failing on import.
    """
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as error:
        raise DatabaseError(f"invalid database URL {redact_url(url)}: {error}") from None
    if parsed.drivername in _SQLITE_ALIASES:
        return parsed.set(drivername=SQLITE_DRIVER)
    if parsed.drivername in _POSTGRES_ALIASES:
        return parsed.set(drivername=POSTGRES_DRIVER)
    raise DatabaseError(
        f"unsupported database URL {redact_url(parsed)}: "
        "use sqlite:///path or postgresql://user@host/database"
    )


def create_engine(url: str | URL, *, connections: int | None = None) -> AsyncEngine:
    """An async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg).

    `connections` fixes the pool at that many, none opened past it: for an
    engine one task owns (the writer) or one bounded kind of caller shares.
    SQLAlchemy's default pool opens overflow connections under load and closes
    each when it comes back; on PostgreSQL that is a TCP connect, a
    negotiation and a backend process per busy moment.

    SQLite gets WAL (readers, such as the dashboard, never block the survey's
    writes), enforced foreign keys (off by default in SQLite) and a busy timeout
    (concurrent surveys queue for the write lock instead of failing at once).
    PostgreSQL gets a connect timeout and pre-ping, so a restarted server costs
    one reconnect rather than one failed answer per pooled connection, and
    plans every statement for its own parameters: asyncpg prepares statements,
    and after five runs PostgreSQL may reuse one generic plan whatever the
    values, so the responses list of one agent over a year ran with the plan
    chosen for a month and took 1.6 s instead of 0.1 s (bench/reports_5m.py).
    Planning these statements costs well under a millisecond.
    """
    normalized = normalize_url(url)
    in_memory = normalized.database in (None, "", ":memory:")
    pool: dict[str, Any] = (
        {}
        if connections is None or (normalized.drivername == SQLITE_DRIVER and in_memory)
        else {"pool_size": connections, "max_overflow": 0}
    )
    if normalized.drivername == SQLITE_DRIVER:
        engine = _create_async_engine(normalized, **pool)

        def _configure_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            finally:
                cursor.close()
            dbapi_connection.create_function("local_day", 2, local_day, deterministic=True)

        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    return _create_async_engine(
        normalized,
        **pool,
        pool_pre_ping=True,
        connect_args={
            "timeout": POSTGRES_CONNECT_TIMEOUT_S,
            "server_settings": {"plan_cache_mode": "force_custom_plan"},
        },
    )


def local_day(moment: str | None, zone: str) -> str | None:
    """The day ('YYYY-MM-DD') in `zone` of a stored UTC timestamp, for SQLite.

    SQLite has no time zones, and the reports count the days of `[reports]
    timezone` (`storage.report_sql.day_of`), so each SQLite connection gets
    this function. zoneinfo applies the zone's rules of that very moment, DST
    included. Registered as deterministic (the same text always gives the
    same day), so SQLite treats it like its own date(). Stored text is naive UTC
    ("2025-03-03 09:00:00.000000"); an offset, if any, is honoured.
    """
    if moment is None:
        return None
    parsed = datetime.fromisoformat(moment)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(ZoneInfo(zone)).date().isoformat()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit, since callers get domain
    objects built from rows after the transaction has already ended."""
    return async_sessionmaker(engine, expire_on_commit=False)


def default_sqlite_url(data_dir: str | Path) -> str:
    """The SQLite database used when no URL is configured, inside `data_dir`."""
    path = Path(data_dir).expanduser().resolve() / SQLITE_FILENAME
    return f"{SQLITE_DRIVER}:///{path}"


def describe_error(error: BaseException) -> str:
    """The first line of the driver's own message, without SQLAlchemy's wrapping.

    SQLAlchemy appends the SQL and a documentation link over several lines; an
    operator needs the driver's reason ("connection refused", "database "x" does
    not exist") on one line.
    """
    reason: BaseException = error
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.orig is not None:
        reason = error.orig
    text = str(reason).strip() or type(reason).__name__
    first_line = text.splitlines()[0]
    return _PASSWORD_IN_URL.sub(r"\g<head>***@", first_line)


# What a dead, unreachable or misconfigured database raises: the network
# (OSError, TimeoutError), the drivers (wrapped as DBAPIError) and SQLAlchemy's
# pool timeout. IntegrityError is a DBAPIError too, but it means bad data (a
# score of 11, an unknown survey id), not an unusable database: it passes through.
_UNUSABLE = (OSError, TimeoutError, sqlalchemy.exc.DBAPIError, sqlalchemy.exc.TimeoutError)


@asynccontextmanager
async def database_errors(action: str) -> AsyncIterator[None]:
    """Turn failures of the database itself into a one-line `DatabaseError`.

    `action` completes "cannot ...", e.g. "save call 1700000000.1".
    """
    try:
        yield
    except sqlalchemy.exc.IntegrityError:
        raise
    except _UNUSABLE as error:
        raise DatabaseError(f"cannot {action}: {describe_error(error)}") from error


def alembic_config(url: str | URL | None = None) -> Config:
    """Alembic configuration built in code, so no alembic.ini has to be shipped
    or found: the scripts are located inside the installed package."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("storage") / "migrations"))
    if url is not None:
        rendered = normalize_url(url).render_as_string(hide_password=False)
        # ConfigParser interpolation would read a '%' in a password as a reference.
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The revision the code expects the database to be at."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migration scripts have no head"
    return head


def _known_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(revision.revision for revision in script.walk_revisions())


def _read_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision stamped in the database, or None when it was never migrated."""
    action = f"read the schema revision of database {redact_url(engine.url)}"
    async with database_errors(action), engine.connect() as connection:
        return await connection.run_sync(_read_revision)


async def check_migrated(engine: AsyncEngine) -> None:
    """Raise `DatabaseNotMigrated` unless the database is at the head revision."""
    current = await current_revision(engine)
    head = head_revision()
    if current == head:
        return
    where = redact_url(engine.url)
    if current is None:
        raise DatabaseNotMigrated(
            f"database {where} is empty (no schema revision), needs revision {head}: "
            f"run `{UPGRADE_COMMAND}`"
        )
    if current not in _known_revisions():
        raise DatabaseNotMigrated(
            f"database {where} is at revision {current}, which this version of ivr-survey "
            f"does not know (it needs revision {head}): upgrade ivr-survey itself"
        )
    raise DatabaseNotMigrated(
        f"database {where} is at revision {current}, needs revision {head}: run `{UPGRADE_COMMAND}`"
    )


def _sqlite_path(url: URL) -> Path | None:
    if url.drivername == SQLITE_DRIVER and url.database and url.database != ":memory:":
        return Path(url.database).expanduser()
    return None


async def open_migrated(url: str | URL) -> AsyncEngine:
    """An engine on an existing database at the head revision, for the commands
    that only use one (`report`, `export`, `optout`, `purge`): they must never
    create a database.

    SQLite creates a missing file on first connect, so its file is looked for
    before any connection is made.
    """
    normalized = normalize_url(url)
    path = _sqlite_path(normalized)
    if path is not None and not path.exists():
        raise DatabaseNotMigrated(
            f"database {redact_url(normalized)} does not exist (no such file), needs revision "
            f"{head_revision()}: run `{UPGRADE_COMMAND}` to create it, or point "
            "IVR_SURVEY_DATABASE_URL ([database] url) at the service's database"
        )
    engine = create_engine(normalized)
    try:
        await check_migrated(engine)
    except BaseException:
        await engine.dispose()
        raise
    return engine


def missing_directory(url: str | URL) -> Path | None:
    """The folder `upgrade` would create for a SQLite file, if it does not exist yet."""
    path = _sqlite_path(normalize_url(url))
    if path is None or path.parent.exists():
        return None
    return path.parent


def _run_upgrade(connection: Connection, config: Config) -> str | None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    return _read_revision(connection)


def _create_sqlite_directory(url: URL) -> None:
    """Create the directory of a SQLite file: upgrading is how a fresh
    installation creates its database, and SQLite will not create folders."""
    path = _sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseError(
                f"cannot create the directory of database {redact_url(url)}: {error}"
            ) from error


async def upgrade(url: str | URL) -> str:
    """Migrate the database at `url` to the head revision and return it."""
    normalized = normalize_url(url)
    config = alembic_config()
    _create_sqlite_directory(normalized)
    engine = create_engine(normalized)
    try:
        action = f"upgrade database {redact_url(normalized)}"
        async with database_errors(action), engine.begin() as connection:
            revision = await connection.run_sync(_run_upgrade, config)
    finally:
        await engine.dispose()
    assert revision is not None
    return revision
