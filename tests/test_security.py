"""Credentials at rest: encrypted, rotatable, and a lost key is a state, not a crash."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from app import security
from app.cli import cli
from app.config import settings
from app.connections import leases as connections
from app.db import Database, session_scope
from app.models import ApiKey, Connection, ConnectionStatus, utcnow
from app.sync import runner
from tests.world import make_world

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def use_keys(monkeypatch: pytest.MonkeyPatch, *keys: str) -> None:
    monkeypatch.setattr(settings, "secret_keys", SecretStr(",".join(keys)))


def test_rotation_re_encrypts_every_secret_with_the_newest_key(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world()
    use_keys(monkeypatch, OLD)
    with session_scope() as session:
        connection = session.get_one(Connection, world.connections["ana"])
        connection.secret = security.encrypt_secret({"password": "pw-1"})
    use_keys(monkeypatch, NEW, OLD)
    result = CliRunner().invoke(cli, ["rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 connection secrets" in result.output
    use_keys(monkeypatch, NEW)  # the old key can now be dropped
    with session_scope() as session:
        secret = session.get_one(Connection, world.connections["ana"]).secret
    assert secret is not None and security.decrypt_secret(secret) == {"password": "pw-1"}


def test_a_secret_whose_key_is_gone_asks_for_a_reconnect(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world()
    use_keys(monkeypatch, OLD)
    with session_scope() as session:
        connection = session.get_one(Connection, world.connections["ana"])
        connection.secret, connection.next_sync_at = (
            security.encrypt_secret({"password": "x"}),
            utcnow(),
        )
        leases = connections.claim_due(session, owner="t", limit=5, now=utcnow())
    use_keys(monkeypatch, NEW)
    runner.run(next(lease for lease in leases if lease.connection_id == world.connections["ana"]))
    with session_scope() as session:
        connection = session.get_one(Connection, world.connections["ana"])
    assert connection.status == ConnectionStatus.needs_reconnect
    assert connection.last_error is not None and "cannot be decrypted" in connection.last_error


def test_an_embedded_install_makes_and_keeps_its_own_key(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "secret_keys", None)
    monkeypatch.setattr(settings, "data_dir", tmp_path)
    first = security.encryption_keys()
    assert first == security.encryption_keys()  # kept, not remade
    key_file = settings.data_dir / security.KEY_FILE
    assert key_file.read_text().strip() == first[0]
    assert key_file.stat().st_mode & 0o077 == 0  # readable by the owner only
    assert security.decrypt_secret(security.encrypt_secret({"a": 1})) == {"a": 1}


def test_api_keys_are_stored_as_digests(database: Database) -> None:
    make_world()
    with session_scope() as session:
        digests = session.scalars(select(ApiKey.key_hash)).all()
    assert digests and all(len(d) == 64 and not d.startswith("tly_") for d in digests)
