"""Tables of this domain (registered on Base.metadata by app/tables.py).

The connection itself stays in app/models.py: ingest (app/activities) reads it, and that
domain sits below this one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models import UTCDateTime, utcnow


class ConnectionChange(Base):
    """A change asked of a connection while a worker held its row (app/connections/changes.py):
    new settings or credentials, or a sync request. The API appends it without waiting; the
    next write that holds the row (a worker's claim or the end of its run, or the next API
    write) applies the queue in order and deletes it."""

    __tablename__ = "connection_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))  # "settings" or "sync"
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # never holds secrets
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # Fernet token, as Connection's
    moved: Mapped[bool] = mapped_column(Boolean, default=False)  # the secret goes elsewhere now
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OAuthFlow(Base):
    """An OAuth consent in progress: the provider's flow (state, PKCE verifier, nonce)
    encrypted, found by the hash of its state, used once, and only until it expires."""

    __tablename__ = "oauth_flows"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    flow: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet token of the flow's JSON
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
