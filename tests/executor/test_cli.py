"""`gallra requests show ID [--json]` and `gallra requests document ID` on a finished request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from plugin.cli import _assemble
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.conftest import cli_environment
from tests.executor.doubles import FakeSources, add_request, newsletter_holding


@pytest.fixture
def cli_env(runtime: Runtime) -> Iterator[pytest.MonkeyPatch]:
    patch = pytest.MonkeyPatch()
    for name, value in cli_environment(runtime.db.url).items():
        patch.setenv(name, value)
    yield patch
    patch.undo()


async def test_show_and_document(
    runtime: Runtime, worker: Worker, sources: FakeSources, cli_env: pytest.MonkeyPatch
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding()]
    request_id = await add_request(runtime)
    await worker.drain(limit=20)
    app = _assemble()
    runner = CliRunner()
    shown = await asyncio.to_thread(runner.invoke, app, ["requests", "show", str(request_id), "--json"])
    assert shown.exit_code == 0, shown.output
    details = json.loads(shown.output)
    assert details["status"] == "done"
    assert {s["step"] for s in details["steps"]} >= {"newsletter:erase:profile:1"}
    assert details["evidence"][0]["kind"] == "planned"
    assert "anna@example.se" not in shown.output
    text = await asyncio.to_thread(runner.invoke, app, ["requests", "show", str(request_id)])
    assert "newsletter" in text.output and "evidence:" in text.output
    # The shop is Swedish: the stored certificate is in Swedish; --lang renders either from its JSON.
    document = await asyncio.to_thread(runner.invoke, app, ["requests", "document", str(request_id)])
    assert document.exit_code == 0 and "Raderingsintyg" in document.output
    assert '<html lang="sv">' in document.output
    english = await asyncio.to_thread(
        runner.invoke, app, ["requests", "document", str(request_id), "--lang", "en"]
    )
    assert english.exit_code == 0 and "Certificate of erasure" in english.output
    assert "Raderingsintyg" not in english.output
    swedish = await asyncio.to_thread(
        runner.invoke, app, ["requests", "document", str(request_id), "--lang", "sv"]
    )
    assert swedish.exit_code == 0 and "Raderingsintyg" in swedish.output
    bad = await asyncio.to_thread(
        runner.invoke, app, ["requests", "document", str(request_id), "--lang", "fi"]
    )
    assert bad.exit_code == 2
    missing = await asyncio.to_thread(
        runner.invoke, app, ["requests", "document", str(request_id), "--kind", "extract_json"]
    )
    assert missing.exit_code == 1
