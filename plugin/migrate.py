"""`gallra db upgrade`: Alembic migrations for the configured database."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from plugin.db import normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def _in_thread(fn: object, *args: object) -> None:
    # env.py runs its own event loop; keep it off any loop the caller is running.
    def run() -> None:
        fn(*args)  # type: ignore[operator]

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        run()
        return
    import threading

    error: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]


def upgrade(url: str, revision: str = "head") -> None:
    _in_thread(command.upgrade, alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


def regenerate_initial() -> Path:
    """Rewrite the single initial migration from the models. Pre-release only: nothing is deployed,
    so the schema is one migration until the first release; after it, add revisions instead."""
    versions = MIGRATIONS / "versions"
    for old in versions.glob("*_initial.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/empty.db"
        command.revision(alembic_config(url), message="initial", autogenerate=True, rev_id="0001")
    [created] = versions.glob("0001_initial.py")
    return created


if __name__ == "__main__":
    print(regenerate_initial())
