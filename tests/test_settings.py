"""Settings: `.gallra-dev.env` (throwaway secrets, development mode) is read only with `--dev`."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from plugin.settings import DEV_ENV_FILE, SettingsError, load_settings
from tests.test_cli_spine import clean_env, gallra

LEFTOVER = (
    "SHOPIFY_API_KEY=dev-leftover\n"
    "SHOPIFY_API_SECRET=leftover-secret\n"
    f"GALLRA_ENCRYPTION_KEY={Fernet.generate_key().decode()}\n"
    "GALLRA_DEV=1\n"
)


@pytest.fixture
def leftover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A production directory with a development file left in it, and no GALLRA_DEV anywhere."""
    (tmp_path / DEV_ENV_FILE).write_text(LEFTOVER)
    monkeypatch.chdir(tmp_path)
    for name in ("GALLRA_DEV", "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET", "GALLRA_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_leftover_dev_file_is_ignored(leftover: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="SHOPIFY_API_KEY is missing"):
        load_settings()
    monkeypatch.setenv("SHOPIFY_API_KEY", "production")
    monkeypatch.setenv("SHOPIFY_API_SECRET", "production-secret")
    monkeypatch.setenv("GALLRA_ENCRYPTION_KEY", Fernet.generate_key().decode())
    settings = load_settings()
    assert settings.dev is False
    assert settings.shopify_api_secret.get_secret_value() == "production-secret"


def test_dev_mode_reads_the_dev_file(leftover: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALLRA_DEV", "1")  # what --dev sets for its process and the ones it starts
    settings = load_settings()
    assert settings.dev is True
    assert settings.shopify_api_key == "dev-leftover"


def test_cli_reads_the_dev_file_only_with_dev(leftover: Path) -> None:
    env = clean_env()
    refused = gallra("admin", "dev-login", "demo.myshopify.com", cwd=leftover, env=env)
    assert refused.returncode == 2 and "SHOPIFY_API_KEY is missing" in refused.stderr
    assert "Traceback" not in refused.stderr
    # `--dev` before any command: the same file, development mode on
    login = gallra("--dev", "admin", "dev-login", "demo.myshopify.com", cwd=leftover, env=env)
    assert login.returncode == 0, login.stderr
    assert "/admin/dev-login?" in login.stdout


def test_dev_writes_the_file_private_and_without_the_switch(tmp_path: Path) -> None:
    upgraded = gallra("db", "upgrade", "--dev", cwd=tmp_path, env=clean_env())
    assert upgraded.returncode == 0, upgraded.stderr
    written = tmp_path / DEV_ENV_FILE
    assert written.stat().st_mode & 0o777 == 0o600
    # the switch is the flag; a file that says GALLRA_DEV=1 would switch itself on next time
    assert "GALLRA_DEV" not in written.read_text()
