"""Constraints the migrations build from `plugin.states`, so they match the models' exactly."""

from __future__ import annotations

from alembic import op

from plugin.states import STATE_COLUMNS, check_name, one_of


def replace_state_checks(*tables: str, create_only: bool = False) -> None:
    """(Re)create the state CHECK constraints of `tables` (all state columns when none is named)
    from the enums as they are now. A migration that adds a state calls it for the state's table.
    On SQLite the table is rebuilt (batch mode); `plugin.migrations.env` turns foreign keys off
    for the run, so rebuilding a referenced table does not cascade into the rows that refer to it."""
    for (table, column), states in STATE_COLUMNS.items():
        if tables and table not in tables:
            continue
        with op.batch_alter_table(table, schema=None) as batch_op:
            if not create_only:
                batch_op.drop_constraint(batch_op.f(check_name(table, column)), type_="check")
            batch_op.create_check_constraint(batch_op.f(check_name(table, column)), one_of(column, states))


def drop_state_checks(*tables: str) -> None:
    for table, column in STATE_COLUMNS:
        if tables and table not in tables:
            continue
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(check_name(table, column)), type_="check")
