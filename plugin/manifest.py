"""Where `manifest.toml` — Gallra's one declarative description — is read from.

It sits at the top of the checkout Gallra runs from (`pip install -e .`); GALLRA_MANIFEST points
elsewhere, e.g. for a deployment that ships the file beside an installed wheel."""

from __future__ import annotations

import os
from pathlib import Path


def manifest_path() -> Path:
    configured = os.environ.get("GALLRA_MANIFEST")
    return Path(configured) if configured else Path(__file__).resolve().parents[1] / "manifest.toml"


def manifest_text() -> str:
    path = manifest_path()
    try:
        return path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"manifest.toml not found at {path}; run Gallra from its checkout or set GALLRA_MANIFEST"
        ) from None
