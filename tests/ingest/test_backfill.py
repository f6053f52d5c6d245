"""The TTS Storage Integration backfill against a real HTTP server of our own and the real database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stadtpuls.cli import main
from stadtpuls.ingest.backfill import Backfill, BackfillScheduler
from stadtpuls.ingest.backfill_cli import CommitFeed
from stadtpuls.ingest.sources import TtsSource, load_sources
from stadtpuls.settings import Settings

from .backfilltest import APP, FLEET, KEY, KEY_ENV, sources_file, uplinks
from .conftest import register, scalar, wait_for
from .storage_server import Fault, StorageServer


def _source(tmp_path: Path, storage: StorageServer, **backfill: Any) -> TtsSource:
    path = sources_file(tmp_path, storage.url, "mqtt://127.0.0.1:1", **backfill)
    (source,) = load_sources(Settings(sources_file=path), {KEY_ENV: KEY})
    assert isinstance(source, TtsSource)
    return source


Make = Callable[[TtsSource], tuple[Backfill, CommitFeed]]


@pytest.fixture
def make_backfill(clean_db: str) -> Iterator[Make]:
    """``make_backfill(source)``: a backfill of ``source`` committing straight into the database; closed at the end."""
    made: list[tuple[Backfill, CommitFeed]] = []

    def make(source: TtsSource) -> tuple[Backfill, CommitFeed]:
        feed = CommitFeed(clean_db)
        made.append((Backfill(source, clean_db, feed), feed))
        return made[-1]

    yield make
    for backfill, feed in made:
        backfill.close()
        feed.close()


def _cursor(db: str) -> datetime | None:
    value: datetime | None = scalar(db, "SELECT cursor FROM source_cursors WHERE source = 'stadtwerke'")
    return value


def _received(up: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(up["received_at"])


def test_backfill_pages_through_the_storage_and_a_second_run_stores_nothing_twice(
    clean_db: str, storage: StorageServer, tmp_path: Path, make_backfill: Make
) -> None:
    register(clean_db, FLEET)
    storage.uplinks = uplinks(20)
    backfill, feed = make_backfill(_source(tmp_path, storage))
    report = backfill.run()
    assert (report.state, report.fetched, report.requests) == ("caught_up", 20, 3)  # pages of 7, 7 and 6
    assert [r.lines for r in storage.requests] == [7, 7, 6]
    assert all(r.params["order"] == "received_at" and r.params["limit"] == "7" for r in storage.requests)
    assert feed.counts() == {"new": 20, "already_stored": 0, "dead": 0}
    assert _cursor(clean_db) == _received(storage.uplinks[-1])
    # the next run starts a margin (5 min) before the cursor: it overlaps, and stores nothing again
    again = backfill.run()
    assert again.state == "caught_up" and again.fetched == 20
    assert feed.counts() == {"new": 20, "already_stored": 20, "dead": 0}
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 20
    assert scalar(clean_db, "SELECT count(DISTINCT dedup_key) FROM uplinks") == 20
    assert scalar(clean_db, "SELECT count(*) FROM parking_events") == 0  # devices without a site: raw only


def test_rate_limit_with_retry_after_is_honoured(
    clean_db: str, storage: StorageServer, tmp_path: Path, make_backfill: Make
) -> None:
    storage.uplinks = uplinks(5)
    storage.faults.append(Fault("status", status=429, retry_after="1"))
    backfill, feed = make_backfill(_source(tmp_path, storage))
    report = backfill.run()
    assert (report.state, report.fetched, report.retries) == ("caught_up", 5, 1)
    first, second = storage.requests[:2]
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0
    assert second.params["after"] == first.params["after"]
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 5


def test_answer_cut_mid_body_resumes_from_the_cursor(
    clean_db: str, storage: StorageServer, tmp_path: Path, make_backfill: Make
) -> None:
    storage.uplinks = uplinks(20)
    storage.faults.append(Fault("cut", lines=4))
    backfill, feed = make_backfill(_source(tmp_path, storage, page_size=100))
    report = backfill.run()
    assert (report.state, report.retries) == ("caught_up", 1)
    assert report.fetched == 20  # the four lines before the cut are not fetched again
    assert storage.requests[0].lines == 4
    assert storage.requests[1].params["after"] == storage.uplinks[3]["received_at"]
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 20
    assert scalar(clean_db, "SELECT count(DISTINCT dedup_key) FROM uplinks") == 20
    assert _cursor(clean_db) == _received(storage.uplinks[-1])


def test_server_errors_are_retried_then_the_run_fails_and_the_next_one_catches_up(
    clean_db: str, storage: StorageServer, tmp_path: Path, make_backfill: Make
) -> None:
    storage.uplinks = uplinks(6)
    storage.faults.extend([Fault("error_line", lines=2), Fault("status", status=503)])
    backfill, feed = make_backfill(_source(tmp_path, storage, attempts=2))
    backfill._sleep = lambda seconds: False  # no pause between the tries
    report = backfill.run()
    assert report.state == "failed" and "HTTP 503" in report.error
    assert report.fetched == 2  # the results before the error line were stored, and the cursor moved past them
    assert _cursor(clean_db) == _received(storage.uplinks[1])
    report = backfill.run()
    assert (report.state, report.fetched) == ("caught_up", 6)
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 6


def test_wrong_key_is_refused_without_retrying(
    clean_db: str, storage: StorageServer, tmp_path: Path, make_backfill: Make
) -> None:
    storage.uplinks = uplinks(3)
    source = _source(tmp_path, storage)
    source.api_key = "NNSXS.WRONG"
    backfill, feed = make_backfill(source)
    report = backfill.run()
    assert report.state == "refused" and "HTTP 401" in report.error and "token_invalid" in report.error
    assert len(storage.requests) == 1
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 0 and _cursor(clean_db) is None


def test_gap_older_than_the_storage_keeps_is_recorded_not_fetched(
    clean_db: str, storage: StorageServer, tmp_path: Path, make_backfill: Make
) -> None:
    storage.uplinks = uplinks(3)
    old = datetime.now(UTC) - timedelta(days=3)
    scalar(
        clean_db,
        "INSERT INTO source_cursors (source, application_id, cursor) VALUES ('stadtwerke', %s, %s) RETURNING 1",
        (APP, old),
    )
    backfill, feed = make_backfill(_source(tmp_path, storage, retention="1d"))
    report = backfill.run()
    assert report.state == "caught_up" and report.fetched == 3 and report.gap is not None
    with psycopg.connect(clean_db) as conn:
        gaps = conn.execute("SELECT gap_from, gap_to, reason FROM backfill_gaps WHERE source = 'stadtwerke'").fetchall()
    assert len(gaps) == 1 and gaps[0][2] == "older than the storage retention"
    gap = gaps[0]
    assert abs((gap[0] - old).total_seconds()) < 1e-3
    assert abs((gap[1] - (datetime.now(UTC) - timedelta(days=1))).total_seconds()) < 60
    after = datetime.fromisoformat(storage.requests[0].params["after"])
    assert abs((after - gap[1]).total_seconds() - 1) < 1e-3  # fetched from just inside the retention


def test_backfill_command_prints_what_was_new_already_stored_and_dead_lettered(
    clean_db: str,
    storage: StorageServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    make_backfill: Make,
) -> None:
    register(clean_db, FLEET)
    ups = uplinks(12)
    broken = dict(ups[11], uplink_message={**ups[11]["uplink_message"], "frm_payload": "not base64!"})
    storage.uplinks = ups[:11] + [broken]
    backfill, feed = make_backfill(_source(tmp_path, storage))
    storage.uplinks, kept = ups[:4], storage.uplinks
    backfill.run()  # four of them are stored already
    storage.uplinks = kept
    monkeypatch.setenv("STADTPULS_DATABASE_URL", clean_db)
    monkeypatch.setenv("STADTPULS_SOURCES_FILE", str(sources_file(tmp_path, storage.url, "mqtt://127.0.0.1:1")))
    monkeypatch.setenv(KEY_ENV, KEY)
    since = (_received(ups[0]) - timedelta(minutes=1)).isoformat()
    assert main(["backfill", "--source", "stadtwerke", "--since", since, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "stadtwerke: fetched 12, new 7, already stored 4, dead-lettered 1;" in out
    assert "caught_up" in out
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 11
    assert scalar(clean_db, "SELECT stage FROM dead_letters") == "envelope"
    assert main(["backfill", "--source", "nope", "--since", since]) == 2
    monkeypatch.setenv(KEY_ENV, "NNSXS.WRONG")
    assert main(["backfill", "--source", "stadtwerke", "--since", since, "--quiet"]) == 1
    assert "backfill refused: HTTP 401" in capsys.readouterr().err


def test_scheduler_runs_at_start_and_every_interval(
    clean_db: str, storage: StorageServer, tmp_path: Path, make_backfill: Make
) -> None:
    storage.uplinks = uplinks(3)
    backfill, _ = make_backfill(_source(tmp_path, storage, interval="0.3s"))
    reports: list[str] = []
    scheduler = BackfillScheduler(backfill, lambda name, report: reports.append(f"{name}:{report.state}"))
    scheduler.start()
    try:
        wait_for(lambda: len(reports) >= 3, timeout=20)
    finally:
        scheduler.stop()
    assert reports[:3] == ["stadtwerke:caught_up"] * 3
    assert set(reports) <= {"stadtwerke:caught_up", "stadtwerke:stopped"}  # a run may be cut short by stop()
    assert len(storage.requests) >= 3
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 3


@pytest.mark.parametrize("page_size", [1, 2])
def test_a_storage_whose_after_includes_the_instant_neither_loops_nor_loses_the_rest_silently(
    clean_db: str, storage: StorageServer, tmp_path: Path, make_backfill: Make, page_size: int
) -> None:
    storage.uplinks = uplinks(5)
    storage.after_inclusive = True
    backfill, _ = make_backfill(_source(tmp_path, storage, page_size=page_size))
    report = backfill.run()
    if page_size == 2:  # pages of two move on by one uplink each time
        assert report.state == "caught_up" and report.requests == 5
        assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 5
    else:  # pages of one cannot move past their uplink: the run ends with a clear error instead of asking forever
        assert report.state == "failed" and "raise backfill.page_size" in report.error and report.requests == 2
        assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 1
