"""States: one enum per state column, and the database refuses any other value, on both databases."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import CheckConstraint, inspect, text
from sqlalchemy.exc import IntegrityError

from plugin.db import Database
from plugin.migrate import upgrade
from plugin.models import Base, Request, Shop, Step
from plugin.states import STATE_COLUMNS, RequestStatus, ShopStatus, StepState, check_name, one_of

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def test_every_state_column_of_the_models_is_checked_against_its_enum() -> None:
    found = {}
    for table in Base.metadata.sorted_tables:
        for constraint in table.constraints:
            if isinstance(constraint, CheckConstraint):
                found[str(constraint.name)] = str(constraint.sqltext)
    expected = {
        check_name(table, column): one_of(column, states) for (table, column), states in STATE_COLUMNS.items()
    }
    assert found == expected


def test_a_state_never_stored_is_not_allowed_by_the_constraint() -> None:
    assert "'unknown'" not in one_of("status", ShopStatus)
    assert "'active'" in one_of("status", ShopStatus)


async def test_the_migrated_database_has_the_models_constraints(db: Database) -> None:
    async with db.engine.connect() as conn:

        def checks(sync_conn: object) -> dict[str, str]:
            inspector = inspect(sync_conn)
            return {
                str(check["name"]): str(check["sqltext"])
                for table, _column in STATE_COLUMNS
                for check in inspector.get_check_constraints(table)
            }

        found = await conn.run_sync(checks)
    assert set(found) == {check_name(table, column) for table, column in STATE_COLUMNS}
    for (table, column), states in STATE_COLUMNS.items():
        for state in states:
            stored = f"'{state.value}'" in found[check_name(table, column)]
            assert stored == (state is not ShopStatus.UNKNOWN), (table, state)


async def test_a_state_outside_the_enum_is_refused_and_one_inside_is_stored(db: Database) -> None:
    async with db.transaction() as session:
        session.add(Shop(domain="a.myshopify.com"))
        request = Request(shop_domain="a.myshopify.com", kind="sweep", business_key="k", due_at=NOW)
        session.add(request)
        await session.flush()
        session.add(
            Step(request_id=request.id, shop_domain="a.myshopify.com", key="k", system="x", action="erase")
        )
    async with db.session() as session:
        step = (await session.execute(Step.__table__.select())).one()
        assert step.state == StepState.PENDING
        stored = (await session.execute(Request.__table__.select())).one()
        assert stored.status == RequestStatus.RECEIVED
    for table, column in (("steps", "state"), ("requests", "status"), ("shops", "status")):
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                await session.execute(text(f"UPDATE {table} SET {column} = 'no_such_state'"))
    async with db.transaction() as session:
        await session.execute(text(f"UPDATE steps SET state = '{StepState.AWAITING_CONFIRMATION}'"))


def test_adding_the_constraints_to_a_sqlite_database_keeps_every_row(tmp_path: Path) -> None:
    """The SQLite migration rebuilds the tables; rows that refer to a rebuilt table survive it."""
    path = tmp_path / "old.db"
    upgrade(f"sqlite:///{path}", "0009")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO requests (shop_domain, kind, business_key, order_ids, received_at, due_at, status,"
            " dry_run, attempts, updated_at) VALUES ('a', 'sweep', 'k', '[]', '2026-01-01', '2026-01-01',"
            " 'in_progress', 0, 0, '2026-01-01')"
        )
        conn.execute(
            "INSERT INTO steps (request_id, shop_domain, key, system, action, decision, state, attempts,"
            " max_attempts, created_at) VALUES (1, 'a', 'k', 'x', 'erase', '{}', 'held', 0, 8, '2026-01-01')"
        )
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT state FROM steps").fetchall() == [("held",)]
        assert conn.execute("SELECT status FROM requests").fetchall() == [("in_progress",)]
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE steps SET state = 'no_such_state'")
