"""/readyz: 200 only when the database answers, is at this code's schema and a sync worker beat
recently; otherwise 503 naming what failed. On the real app and both databases, and on real
`tally serve`, `tally api` and `tally worker` processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import health
from app.config import settings
from app.db import Database, session_scope, set_database
from app.main import create_app
from app.models import WorkerHeartbeat, utcnow
from tests.services import throwaway_postgres
from tests.test_startup import KEYS, migrate_to_one_before_head

TALLY = str(Path(sys.executable).parent / "tally")


def ready(client: TestClient, query: str = "") -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz" + query)
    return response.status_code, response.json()


@pytest.fixture
def heartbeat_every_15s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "worker_heartbeat_seconds", 15.0)
    monkeypatch.setattr(settings, "ready_heartbeat_age_seconds", None)  # so: 45 s


def test_ready_only_with_a_fresh_worker_heartbeat(
    client: TestClient, heartbeat_every_15s: None
) -> None:
    status, body = ready(client)
    assert status == 503 and body["status"] == "not_ready" and body["failed"] == ["worker"]
    assert body["checks"]["worker"]["detail"] == (
        "no sync worker is running (no heartbeat at all): start `tally worker`"
    )
    assert body["checks"]["database"]["ok"] and body["checks"]["schema"]["ok"]
    # an API whose workers run elsewhere may leave the heartbeat out
    assert ready(client, "?worker=false")[0] == 200

    health.beat("host-a:1:abc", utcnow())
    status, body = ready(client)
    assert status == 200 and body["status"] == "ready" and body["failed"] == []
    assert body["checks"]["worker"]["detail"] == "1 worker(s) beat in the last 45 s"


def test_a_stale_heartbeat_is_not_ready(client: TestClient, heartbeat_every_15s: None) -> None:
    ten_minutes_ago = utcnow() - timedelta(minutes=10)
    with session_scope() as session:
        session.add(
            WorkerHeartbeat(worker="gone:1:x", started_at=ten_minutes_ago, beat_at=ten_minutes_ago)
        )
    status, body = ready(client)
    assert status == 503 and body["failed"] == ["worker"]
    detail = body["checks"]["worker"]["detail"]
    assert detail.startswith("no worker heartbeat in the last 45 s (newest: ")
    # 600 s, or a few more when the machine is slow between the insert and the request
    assert 600 <= int(detail.split("newest: ")[1].split(" s ago")[0]) < 610, detail


def test_a_workers_scheduler_beats_and_a_clean_stop_forgets_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "worker_heartbeat_seconds", 0.2)
    two_days_ago = utcnow() - timedelta(days=2)
    with session_scope() as session:  # a worker that crashed long ago: pruned by any beat
        session.add(
            WorkerHeartbeat(worker="old:1:x", started_at=two_days_ago, beat_at=two_days_ago)
        )
    scheduler = BackgroundScheduler(timezone="UTC")
    health.schedule(scheduler, "host-b:2:def")
    scheduler.start()
    try:
        beats = []
        deadline = time.monotonic() + 20
        while len(set(beats)) < 3 and time.monotonic() < deadline:
            with session_scope() as session:
                rows = {r.worker: r.beat_at for r in session.scalars(select(WorkerHeartbeat))}
            if "host-b:2:def" in rows:
                beats.append(rows["host-b:2:def"])
            time.sleep(0.1)
    finally:
        scheduler.shutdown(wait=True)
    assert len(set(beats)) >= 3 and beats == sorted(beats)  # it beats, and moves on
    assert set(rows) == {"host-b:2:def"}
    health.forget("host-b:2:def")
    with TestClient(create_app()) as client:
        assert ready(client)[1]["checks"]["worker"]["detail"].startswith(
            "no sync worker is running"
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database, not migrated, as the app's database."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
        set_database(database)
        yield database
    else:
        with throwaway_postgres("tally_ready") as url:
            database = Database(url)
            set_database(database)
            yield database
            database.engine.dispose()
    set_database(None)


def test_an_unmigrated_or_older_schema_is_not_ready(unmigrated: Database) -> None:
    with TestClient(create_app()) as client:
        status, body = ready(client)
        assert status == 503 and body["failed"] == ["schema", "worker"]
        assert body["checks"]["schema"]["detail"] == (
            "the database has no Tally tables yet: create them with `tally migrate`"
        )
        head = migrate_to_one_before_head(unmigrated.url)
        status, body = ready(client, "?worker=false")
        assert status == 503 and body["failed"] == ["schema"]
        assert body["checks"]["schema"]["detail"].endswith(
            f"this Tally needs {head}: run `tally migrate`"
        )


def test_an_unreachable_database_is_not_ready() -> None:
    set_database(Database("postgresql://tally@127.0.0.1:1/tally"))  # nothing listens there
    try:
        with TestClient(create_app()) as client:
            status, body = ready(client)
    finally:
        set_database(None)
    assert status == 503 and body["failed"] == ["database", "schema", "worker"]
    assert body["checks"]["database"]["detail"].startswith("unreachable: ")


# Real processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    with log.open("wb") as out:
        return subprocess.Popen(
            [TALLY, *args], env={**clean, **env}, stdout=out, stderr=subprocess.STDOUT
        )


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(port: int, want: int, log: Path, seconds: float = 60) -> dict[str, Any]:
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            last = get(port, "/readyz")
            if last[0] == want:
                return last[1]
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"/readyz never answered {want} (last {last}):\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_embedded_server_is_ready_with_its_own_worker(tmp_path: Path) -> None:
    port = free_port()
    env = {"TALLY_DATA_DIR": str(tmp_path / "data"), "TALLY_WORKER_HEARTBEAT_SECONDS": "1"}
    server = start(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    try:
        body = wait_for(port, 200, tmp_path / "serve.log")
    finally:
        stop(server)
    assert body["checks"]["worker"] == {"ok": True, "detail": "1 worker(s) beat in the last 3 s"}


def test_api_and_worker_on_postgresql_ready_while_the_worker_runs(tmp_path: Path) -> None:
    with throwaway_postgres("tally_ready") as url:
        env = {**KEYS, "TALLY_DATABASE_URL": url, "TALLY_WORKER_HEARTBEAT_SECONDS": "1"}
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        migrated = subprocess.run([TALLY, "migrate"], env={**clean, **env}, capture_output=True)
        assert migrated.returncode == 0, migrated.stderr
        port = free_port()
        api = start(["api", "--port", str(port)], env, tmp_path / "api.log")
        worker = None
        try:
            body = wait_for(port, 503, tmp_path / "api.log")
            assert body["failed"] == ["worker"]
            worker = start(["worker"], env, tmp_path / "worker.log")
            body = wait_for(port, 200, tmp_path / "worker.log")
            assert body["checks"]["schema"]["ok"] and body["checks"]["database"]["ok"]
            stop(worker)  # a clean stop removes its heartbeat: not ready at once
            assert worker.returncode == 0, (tmp_path / "worker.log").read_text()
            status, body = get(port, "/readyz")
            assert status == 503 and body["checks"]["worker"]["detail"].startswith(
                "no sync worker is running"
            )
        finally:
            for process in (worker, api):
                if process is not None:
                    stop(process)
