"""One event the read model cannot take never stops the projection (issue 8, item 0b).

Poison events are appended straight to the log with the codec, as a buggy or older
writer could, bypassing the API's validation. The projector records each as rejected
("unprojectable: ..."), applies every event after it, and replay builds the same read
model. A database that fails is not a poison event: the batch is retried whole.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event as listen_event
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from chronolog.wiring import Runtime, open_read_model
from eventlog.port import Position
from events.codec import EventCodec
from events.model import Event, JobCreated, JobSpec, JobUpdated, RunRequested
from projector import api_reads
from projector.batch import read_checkpoints
from projector.loop import Projector
from projector.replay import differences, replay
from projector.tables import EventIndexRecord
from tests.conftest import wait_until

T0 = datetime(2026, 11, 1, tzinfo=UTC)
GOOD = JobSpec(name="good", type="shell", command="true", parameters={"k": "v"})


def event(payload: object, job_id: str, at: int, run_id: str | None = None) -> Event:
    return Event(
        payload=payload,  # type: ignore[arg-type]
        occurred_at=T0 + timedelta(seconds=at),
        actor="test",
        job_id=job_id,
        run_id=run_id,
        attempt=1 if run_id else None,
    )


def with_raw_parameters(codec: EventCodec, base: Event, parameters_json: str) -> bytes:
    """``base`` encoded with its parameters' JSON text replaced: what a writer that does
    not refuse NaN would have appended."""
    record = codec.decode_record(codec.encode(base))
    record["payload"][1]["parameters"] = parameters_json
    return codec.encode_record(record)


def append_poisoned_log(runtime: Runtime) -> tuple[list[Position], dict[str, str]]:
    """A log where poison events sit between good ones, in the good job's partition and
    in others. Returns every position, and the ids of the good job and its run."""
    codec = runtime.codec
    spec = dataclasses.replace
    bad_int = spec(GOOD, name="bad-int", parameters={"x": 2**64})
    nul = spec(GOOD, name="nul", description="a\x00b")
    duplicate = event(JobCreated(spec(GOOD, name="dup")), "job-dup", 3)
    nan_run = event(RunRequested(trigger="manual"), "job-good", 5, run_id="run-nan")
    records: list[tuple[str, bytes]] = [
        ("job-good", codec.encode(event(JobCreated(GOOD), "job-good", 0))),
        ("job-bad-int", codec.encode(event(JobCreated(bad_int), "job-bad-int", 1))),
        ("job-nul", codec.encode(event(JobCreated(nul), "job-nul", 2))),
        ("job-dup", codec.encode(duplicate)),
        ("job-dup", codec.encode(duplicate)),  # the same event id twice: a retried append
        ("job-good", with_raw_parameters(codec, nan_run, '{"x":NaN}')),
        (
            "job-good",
            codec.encode(
                event(
                    JobUpdated(spec(GOOD, parameters={"x": -(2**63) - 1}), ("parameters",)),
                    "job-good",
                    6,
                )
            ),
        ),
        (
            "job-good",
            codec.encode(event(JobUpdated(spec(GOOD, retries=7), ("retries",)), "job-good", 7)),
        ),
        (
            "job-good",
            codec.encode(
                event(
                    RunRequested(trigger="manual", parameters={"k": "v"}),
                    "job-good",
                    8,
                    run_id="run-good",
                )
            ),
        ),
    ]
    return runtime.log.append(records), {"job": "job-good", "run": "run-good"}


UNPROJECTABLE_AT = (1, 2, 4, 5, 6)  # indexes of the poison records above


def project_all(runtime: Runtime, positions: list[Position], batch_size: int) -> Projector:
    projector = Projector(runtime.log, runtime.engine, runtime.codec, batch_size=batch_size)
    project_all_with(projector, runtime, positions)
    return projector


def project_all_with(projector: Projector, runtime: Runtime, positions: list[Position]) -> None:
    ends = {p.partition: p.offset + 1 for p in positions}

    def caught_up() -> bool:
        projector.step(timeout=0.05)
        with Session(runtime.engine) as session:
            done = read_checkpoints(session)
        return all(done.get(p, 0) >= end for p, end in ends.items())

    wait_until(caught_up, timeout=30)
    projector.close()


def rejections(runtime: Runtime) -> dict[tuple[int, int], str | None]:
    with Session(runtime.engine) as session:
        rows = session.execute(
            select(EventIndexRecord.partition, EventIndexRecord.offset, EventIndexRecord.rejected)
        )
        return {(p, o): reason for p, o, reason in rows}


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_poison_events_are_recorded_as_rejected_and_the_events_after_them_applied(
    runtime: Runtime, tmp_path: Path, batch_size: int
) -> None:
    positions, ids = append_poisoned_log(runtime)
    projector = project_all(runtime, positions, batch_size)

    assert projector.unprojectable == len(UNPROJECTABLE_AT)
    reasons = rejections(runtime)
    assert sorted(reasons) == sorted((p.partition, p.offset) for p in positions)  # once each
    for index, position in enumerate(positions):
        reason = reasons[(position.partition, position.offset)]
        if index in UNPROJECTABLE_AT:
            assert reason is not None
            assert reason.startswith("unprojectable: "), reason
        else:
            assert reason is None, (index, reason)
    by_position = {(p.partition, p.offset): i for i, p in enumerate(positions)}
    why = {by_position[k]: r for k, r in reasons.items() if r}
    assert "64-bit" in why[1]
    assert "NUL" in why[2]
    assert "IntegrityError" in why[4]
    assert "finite" in why[5]

    with Session(runtime.engine) as session:
        assert api_reads.count_unprojectable(session) == len(UNPROJECTABLE_AT)
        good = api_reads.find_job(session, ids["job"])
        assert good is not None
        assert good.spec.retries == 7  # the update after the poison one is applied
        assert good.spec.parameters == {"k": "v"}  # the poison update is not
        assert good.version == 2
        assert api_reads.find_job(session, "job-dup") is not None  # its first event counts
        assert api_reads.find_job(session, "job-bad-int") is None
        run = api_reads.get_run(session, ids["run"])
        assert run is not None
        assert run.parameters == {"k": "v"}
        assert api_reads.get_run(session, "run-nan") is None
        # What the poison events said stays readable in the audit trail.
        history = api_reads.job_events(session, "job-bad-int")
        assert history[0].payload["spec"]["parameters"] == {"x": str(2**64)}

    fresh = open_read_model(f"sqlite:///{tmp_path / 'fresh.db'}", upgrade=True)
    assert replay(runtime.log, fresh, runtime.codec, batch_size=3) == len(positions)
    assert differences(runtime.engine, fresh) == []
    fresh.dispose()


def chronolog_cli(runtime: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    settings = runtime.settings
    env = {
        **os.environ,
        "CHRONOLOG_PARTITIONS": str(settings.partitions),
        "CHRONOLOG_DATABASE_URL": settings.database,
    }
    command = [sys.executable, "-m", "chronolog", *args, "--data-dir", str(settings.data_dir)]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_replay_and_replay_check_succeed_on_a_log_with_poison_events(
    runtime: Runtime, request: pytest.FixtureRequest
) -> None:
    positions, _ = append_poisoned_log(runtime)
    project_all(runtime, positions, batch_size=1000)
    if runtime.engine.dialect.name == "postgresql":
        create: Callable[[], str] = request.getfixturevalue("postgres_database")
        into = ["--into", create()]
        runs = [[*into, "--check"]]
    else:
        runs = [["--check"], [], ["--check"]]
    for extra in runs:
        result = chronolog_cli(runtime, "replay", *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Replayed {len(positions)} events" in result.stdout
    with Session(runtime.engine) as session:
        assert api_reads.count_unprojectable(session) == len(UNPROJECTABLE_AT)


# A real database error of the "failed" kind (not a refused row) on one event's audit row.
OUTAGE = {
    "sqlite": [
        "CREATE TRIGGER outage BEFORE INSERT ON event_index "
        "WHEN NEW.partition = {victim.partition} AND NEW.offset = {victim.offset} "
        "BEGIN SELECT injected_outage(); END"
    ],
    "postgresql": [
        "CREATE FUNCTION outage() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        'IF NEW.partition = {victim.partition} AND NEW."offset" = {victim.offset} THEN '
        "RAISE EXCEPTION 'injected outage' USING ERRCODE = '08006'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER outage BEFORE INSERT ON event_index FOR EACH ROW EXECUTE FUNCTION outage()",
    ],
}
END_OUTAGE = {"sqlite": "DROP TRIGGER outage", "postgresql": "DROP TRIGGER outage ON event_index"}


def _outage() -> None:
    raise RuntimeError("injected outage")


def test_a_failing_database_is_not_a_poison_event_the_batch_is_retried_whole(
    runtime: Runtime,
) -> None:
    engine = runtime.engine
    if engine.dialect.name == "sqlite":  # SQLite reports a failing function as OperationalError
        listen_event.listen(
            engine, "connect", lambda c, _: c.create_function("injected_outage", 0, _outage)
        )
        engine.dispose()
    good = [
        event(JobCreated(dataclasses.replace(GOOD, name=f"j{i}")), f"job-{i}", i) for i in range(20)
    ]
    positions = runtime.log.append([(e.key, runtime.codec.encode(e)) for e in good])
    victim = positions[10]
    with engine.begin() as connection:
        for statement in OUTAGE[engine.dialect.name]:
            connection.execute(text(statement.format(victim=victim)))
    projector = Projector(runtime.log, engine, runtime.codec, batch_size=1000)

    with pytest.raises(OperationalError, match=r"injected outage|function raised exception"):
        projector.step(timeout=1.0)

    assert rejections(runtime) == {}  # the whole batch waits: nothing committed or recorded
    with engine.begin() as connection:
        connection.execute(text(END_OUTAGE[engine.dialect.name]))
    project_all_with(projector, runtime, positions)
    assert all(reason is None for reason in rejections(runtime).values())
    assert len(rejections(runtime)) == len(positions)
    assert projector.unprojectable == 0
