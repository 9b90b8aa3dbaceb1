"""Storing and reading documents: encrypted `Artifact` rows, replaced when re-issued."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.crypto import Vault
from plugin.i18n import words
from plugin.models import Artifact, artifact_cell, cell_of, utcnow


@lru_cache(maxsize=1)
def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("plugin.documents", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["words"] = words
    return env


async def replace_artifacts(
    session: AsyncSession,
    vault: Vault,
    shop_domain: str,
    request_id: int,
    documents: Sequence[tuple[str, str, str]],
    *,
    expires_at: datetime | None = None,
) -> list[Artifact]:
    """Store (kind, content type, text) documents for a request, replacing earlier versions."""
    kinds = [kind for kind, _, _ in documents]
    await session.execute(
        delete(Artifact).where(
            Artifact.shop_domain == shop_domain, Artifact.request_id == request_id, Artifact.kind.in_(kinds)
        )
    )
    now = utcnow()
    rows = []
    for kind, content_type, text in documents:
        content = vault.encrypt(text, artifact_cell(shop_domain, request_id, kind))
        assert content is not None
        row = Artifact(
            shop_domain=shop_domain,
            request_id=request_id,
            kind=kind,
            content_type=content_type,
            content_enc=content,
            created_at=now,
            expires_at=expires_at,
        )
        session.add(row)
        rows.append(row)
    await session.flush()
    return rows


async def read_artifact(
    session: AsyncSession, vault: Vault, shop_domain: str, artifact_id: int
) -> tuple[Artifact, str] | None:
    """An unexpired document of the shop, decrypted; None when missing or expired."""
    row = (
        await session.execute(
            select(Artifact).where(Artifact.id == artifact_id, Artifact.shop_domain == shop_domain)
        )
    ).scalar_one_or_none()
    if row is None or (row.expires_at is not None and row.expires_at <= utcnow()):
        return None
    text = vault.decrypt(row.content_enc, cell_of(row, "content_enc"))
    return (row, text or "")


async def artifacts_of(session: AsyncSession, shop_domain: str, request_id: int) -> list[Artifact]:
    statement = (
        select(Artifact)
        .where(Artifact.shop_domain == shop_domain, Artifact.request_id == request_id)
        .order_by(Artifact.id)
    )
    return list((await session.execute(statement)).scalars())
