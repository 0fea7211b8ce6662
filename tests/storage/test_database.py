"""Engine set-up, URL handling and the migration checks, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.database import (
    DatabaseError,
    DatabaseNotMigrated,
    alembic_config,
    check_migrated,
    create_engine,
    current_revision,
    default_sqlite_url,
    head_revision,
    normalize_url,
    redact_url,
    upgrade,
)
from storage.models import Base

TABLES = {
    "calls",
    "call_agents",
    "surveys",
    "answers",
    "optouts",
    "comments",
    "web_revocations",
    "report_nps_daily",
    "report_duration_daily",
    "report_funnel_daily",
    "report_rollup_state",
}


def test_redact_url_hides_the_password() -> None:
    """A URL printed in a log or an error never shows the password."""
    url = "postgresql://survey:s3cr%40t@db.example:5432/ivr"

    assert "postgresql://survey:***@db.example:5432/ivr" == redact_url(url)


def test_redact_url_hides_the_password_of_an_unparsable_url() -> None:
    """The URL that fails to parse is the one that ends up in an error message."""
    assert "weird:://survey:***@db" == redact_url("weird:://survey:s3cret@db")


def test_redact_url_leaves_a_url_without_password_alone() -> None:
    """Nothing to hide, nothing changed (no misleading '***')."""
    assert "sqlite+aiosqlite:////var/lib/ivr.db" == redact_url(
        "sqlite+aiosqlite:////var/lib/ivr.db"
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h:6432/d", "postgresql+asyncpg://u@h:6432/d"),
        ("sqlite:////var/lib/ivr.db", "sqlite+aiosqlite:////var/lib/ivr.db"),
        ("sqlite+aiosqlite:///relative.db", "sqlite+aiosqlite:///relative.db"),
    ],
)
def test_urls_are_normalised_to_the_async_drivers(given: str, expected: str) -> None:
    """Operators write URLs as other tools document them; the service runs them
    on asyncpg and aiosqlite."""
    assert expected == normalize_url(given).render_as_string(hide_password=False)


@pytest.mark.parametrize(
    "url", ["mysql://u:pw@h/d", "postgresql+psycopg2://u:pw@h/d", "sqlite+pysqlite:///x.db"]
)
def test_unsupported_drivers_are_refused_with_a_redacted_message(url: str) -> None:
    """A driver this service does not ship is named in a message, not an ImportError."""
    with pytest.raises(DatabaseError) as caught:
        normalize_url(url)

    assert "pw" not in str(caught.value)
    assert str(caught.value).startswith("unsupported database URL ")


def test_default_sqlite_url_points_into_the_data_directory(tmp_path: Path) -> None:
    """Without configuration the database is one file in the data directory."""
    expected = f"sqlite+aiosqlite:///{tmp_path.resolve()}/ivr-survey.sqlite3"

    assert expected == default_sqlite_url(tmp_path)


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    """Every pooled SQLite connection is configured, not just the first one."""
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        async with engine.connect() as connection:
            actual = (
                (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar(),
                (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar(),
                (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar(),
            )
    finally:
        await engine.dispose()

    assert ("wal", 1, 10_000) == actual


async def test_unreachable_database_gives_one_line_without_password() -> None:
    """A dead server is an operating condition: one line, no traceback, no secret."""
    engine = create_engine("postgresql://survey:s3cret@127.0.0.1:1/ivr")
    try:
        with pytest.raises(DatabaseError) as caught:
            await check_migrated(engine)
    finally:
        await engine.dispose()

    message = str(caught.value)
    assert "s3cret" not in message
    assert "\n" not in message
    assert message.startswith(
        "cannot read the schema revision of database "
        "postgresql+asyncpg://survey:***@127.0.0.1:1/ivr: "
    )


async def test_check_migrated_refuses_an_empty_database(database_engine: AsyncEngine) -> None:
    """An empty database is refused with the revision needed and the command to run."""
    with pytest.raises(DatabaseNotMigrated) as caught:
        await check_migrated(database_engine)

    expected = (
        f"database {redact_url(database_engine.url)} is empty (no schema revision), "
        f"needs revision {head_revision()}: run `ivr-survey db upgrade`"
    )
    assert expected == str(caught.value)


async def test_check_migrated_names_the_current_and_needed_revisions(
    database_engine: AsyncEngine,
) -> None:
    """A database behind the code says where it is and where it must go."""
    async with database_engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        await connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('0000')")

    with pytest.raises(DatabaseNotMigrated) as caught:
        await check_migrated(database_engine)

    expected = (
        f"database {redact_url(database_engine.url)} is at revision 0000, "
        "which this version of ivr-survey does not know (it needs revision "
        f"{head_revision()}): upgrade ivr-survey itself"
    )
    assert expected == str(caught.value)


async def test_upgrade_reaches_head_and_then_the_check_passes(
    database_url: str, database_engine: AsyncEngine
) -> None:
    """`upgrade` returns the head revision and the service may then start."""
    assert None is await current_revision(database_engine)

    revision = await upgrade(database_url)
    await check_migrated(database_engine)

    assert (head_revision(), head_revision()) == (
        revision,
        await current_revision(database_engine),
    )


async def test_upgrade_twice_is_harmless(database_url: str) -> None:
    """Running `ivr-survey db upgrade` on an up-to-date database changes nothing."""
    first = await upgrade(database_url)
    second = await upgrade(database_url)

    assert first == second


async def test_upgrade_creates_the_directory_of_a_sqlite_file(tmp_path: Path) -> None:
    """A fresh installation creates its data directory with the database."""
    url = default_sqlite_url(tmp_path / "data" / "nested")

    await upgrade(url)

    assert (tmp_path / "data" / "nested" / "ivr-survey.sqlite3").is_file()


def _schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(
    migrated_database_url: str, database_engine: AsyncEngine
) -> None:
    """The hand-written migration creates exactly the schema models.py declares
    (tables, columns, types, nullability, server defaults, keys, indexes)."""
    async with database_engine.connect() as connection:
        diff = await connection.run_sync(_schema_diff)

    assert [] == diff


async def test_schema_comparison_would_notice_a_difference(
    migrated_database_url: str, database_engine: AsyncEngine
) -> None:
    """Guard for the test above: the comparison does see a missing index."""
    async with database_engine.begin() as connection:
        await connection.exec_driver_sql("DROP INDEX ix_calls_queue")
        diff = await connection.run_sync(_schema_diff)

    assert [("add_index", "ix_calls_queue")] == [(entry[0], entry[1].name) for entry in diff]


def _check_constraints(connection: Connection) -> dict[str, set[str]]:
    inspector = sa.inspect(connection)
    return {
        table: {str(check["name"]) for check in inspector.get_check_constraints(table)}
        for table in TABLES
    }


async def test_migrations_create_the_check_constraints_of_the_models(
    migrated_database_url: str, database_engine: AsyncEngine
) -> None:
    """Alembic does not compare CHECK constraints, so their names are compared here."""
    expected = {
        table.name: {
            str(constraint.name)
            for constraint in table.constraints
            if isinstance(constraint, sa.CheckConstraint)
        }
        for table in Base.metadata.sorted_tables
    }

    async with database_engine.connect() as connection:
        actual = await connection.run_sync(_check_constraints)

    assert expected == actual


def _downgrade_to_base(connection: Connection) -> set[str]:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")
    return set(sa.inspect(connection).get_table_names())


async def test_downgrade_removes_every_table(
    migrated_database_url: str, database_engine: AsyncEngine
) -> None:
    """The initial migration can be undone completely (only Alembic's own table stays)."""
    async with database_engine.begin() as connection:
        tables = await connection.run_sync(_downgrade_to_base)

    assert {"alembic_version"} == tables


def _check_conditions(connection: Connection) -> dict[str, str]:
    inspector = sa.inspect(connection)
    return {
        str(check["name"]): str(check["sqltext"])
        for table in TABLES
        for check in inspector.get_check_constraints(table)
    }


async def test_sqlite_check_constraints_have_the_conditions_of_the_models(tmp_path: Path) -> None:
    """SQLite reflects a CHECK's text as written, so there the conditions can be
    compared too (PostgreSQL rewrites them, so only their names are compared)."""
    url = f"sqlite:///{tmp_path / 'checks.db'}"
    await upgrade(url)
    expected = {
        str(constraint.name): str(constraint.sqltext)
        for table in Base.metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, sa.CheckConstraint)
    }
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            actual = await connection.run_sync(_check_conditions)
    finally:
        await engine.dispose()

    assert expected == actual


def test_the_plain_alembic_path_runs_on_its_own_async_engine(tmp_path: Path) -> None:
    """Without a connection handed over, env.py opens its own engine from the URL
    (how `alembic` itself, or a debugging session, would run the migrations)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    command.upgrade(alembic_config(url), "head")

    async def revision() -> str | None:
        engine = create_engine(url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    assert head_revision() == asyncio.run(revision())


def test_offline_mode_writes_the_postgresql_script(capsys: pytest.CaptureFixture[str]) -> None:
    """A DBA can review the SQL before it runs: `upgrade --sql` needs no server."""
    command.upgrade(alembic_config("postgresql://survey:pw@db.invalid/ivr"), "head", sql=True)

    script = capsys.readouterr().out
    markers = ("CREATE TABLE calls", "CREATE TABLE answers", "TIMESTAMP WITH TIME ZONE")
    assert dict.fromkeys(markers, True) == {marker: marker in script for marker in markers}


async def test_postgresql_plans_every_statement_for_its_own_values(
    postgres_database_url: str,
) -> None:
    """A generic plan made for one agent's month was reused for a year and took
    16 times longer (bench/reports_5m.py); every connection must plan per values."""
    engine = create_engine(postgres_database_url)
    try:
        async with engine.connect() as connection:
            mode = (await connection.execute(sa.text("SHOW plan_cache_mode"))).scalar_one()
    finally:
        await engine.dispose()
    assert "force_custom_plan" == mode
