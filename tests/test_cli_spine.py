"""The spine's commands as a newcomer runs them: serve, simulate, requests list, db upgrade, --help."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import AliasChoices

from tests.conftest import wait_for_health

ROOT = Path(__file__).resolve().parent.parent
GALLRA = [sys.executable, "-c", "from plugin.cli import main; main()"]
EMAIL = "newcomer.person@example.se"
PHONE = "+46 70 999 88 77"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any Gallra or Shopify settings, as on a fresh machine."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GALLRA_", "SHOPIFY_", "SMTP_")) and k != "DATABASE_URL"
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def gallra(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GALLRA, *args], cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=60
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_help_explains_every_command(tmp_path: Path) -> None:
    result = gallra("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "simulate", "db", "requests"):
        assert command in result.stdout
    assert "upgrade" in gallra("db", "--help", cwd=tmp_path).stdout
    assert "list" in gallra("requests", "--help", cwd=tmp_path).stdout
    simulate = gallra("simulate", "--help", cwd=tmp_path).stdout
    for option in ("--shop", "--customer-id", "--email", "--phone", "--orders", "--url"):
        assert option in simulate


def test_missing_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    result = gallra("requests", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "SHOPIFY_API_KEY is missing" in lines[0]
    assert "GALLRA_ENCRYPTION_KEY is missing" in lines[0]


@pytest.mark.postgres
def test_db_upgrade_hides_the_password(tmp_path: Path, postgres_url: str) -> None:
    with_password = postgres_url.replace("postgres@", "postgres:hunter2secret@")
    env = clean_env(
        SHOPIFY_API_KEY="k", SHOPIFY_API_SECRET="s", GALLRA_ENCRYPTION_KEY=_key(), DATABASE_URL=with_password
    )
    result = gallra("db", "upgrade", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "hunter2secret" not in result.stdout + result.stderr and "***" in result.stdout


def _key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    """`gallra serve --dev` in an empty directory, as README's first command runs it; its output
    goes to serve.log (a pipe nobody reads would fill up and stall the server)."""
    port = free_port()
    env = clean_env(GALLRA_LOG_LEVEL="DEBUG")
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [*GALLRA, "serve", "--dev", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, server, tmp_path / "serve.log")
        yield url, server, tmp_path
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_serve_simulate_and_list(served: tuple[str, subprocess.Popen[str], Path]) -> None:
    url, server, cwd = served
    assert (cwd / ".gallra-dev.env").exists() and (cwd / "gallra.db").exists()
    # the second terminal: same directory, same throwaway secrets (--dev), nothing configured
    sent = gallra(
        "--dev", "simulate", "customers/redact", "--shop", "demo-shop.myshopify.com", "--customer-id", "42",
        "--email", EMAIL, "--phone", PHONE, "--orders", "1001,1002", "--url", url, cwd=cwd,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert "HTTP 200 stored; ledger request: 1" in sent.stdout
    # another shop: a shop/redact erases everything Gallra holds for its shop, requests included
    again = gallra(
        "--dev", "simulate", "shop/redact", "--shop", "gone-shop.myshopify.com", "--url", url, cwd=cwd
    )
    assert "HTTP 200 stored; ledger request: 2" in again.stdout
    repeated = gallra(
        "--dev", "simulate", "shop/redact", "--shop", "gone-shop.myshopify.com", "--url", url, cwd=cwd
    )
    assert "HTTP 200 duplicate; ledger request: 2" in repeated.stdout
    bad_topic = gallra(
        "--dev", "simulate", "orders/create", "--shop", "demo-shop.myshopify.com", "--url", url, cwd=cwd
    )
    assert bad_topic.returncode != 0

    listed = gallra("--dev", "requests", "list", "--json", cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    # the workers inside `serve` may already be carrying them out, so the status is not fixed here
    assert [(r["id"], r["kind"], r["shop"], r["days_left"]) for r in rows] == [
        (2, "shop_redact", "gone-shop.myshopify.com", 30),
        (1, "customer_redact", "demo-shop.myshopify.com", 30),
    ]
    assert EMAIL not in listed.stdout and "999" not in listed.stdout
    table = gallra("--dev", "requests", "list", cwd=cwd).stdout
    assert "DAYS_LEFT" in table and "customer_redact" in table and "demo-shop.myshopify.com" in table

    server.terminate()
    server.wait(timeout=30)
    output = (cwd / "serve.log").read_text()
    assert f"Gallra listening on {url}" in output
    assert "database: sqlite+aiosqlite:///./gallra.db" in output
    assert "stored customers/redact delivery for demo-shop.myshopify.com (request 1)" in output
    # a full run at DEBUG: no e-mail or phone anywhere in what the server printed
    for secret in (EMAIL, PHONE, "newcomer", "999 88"):
        assert secret not in output


def test_simulate_without_server_says_so(tmp_path: Path) -> None:
    env = clean_env(SHOPIFY_API_KEY="k", SHOPIFY_API_SECRET="s", GALLRA_ENCRYPTION_KEY=_key())
    result = gallra(
        "simulate", "shop/redact", "--shop", "demo-shop.myshopify.com", "--url", f"http://127.0.0.1:{free_port()}",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 1 and "is `gallra serve` running?" in result.stderr
    assert "Traceback" not in result.stderr


def test_copied_env_example_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    result = gallra("requests", "list", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "SHOPIFY_API_SECRET is missing" in result.stderr


def test_env_example_documents_every_setting() -> None:
    from plugin.settings import Settings

    documented = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        name = str(alias.choices[0]) if isinstance(alias, AliasChoices) else str(alias)
        assert f"{name}=" in documented, name
        assert name in readme, name
