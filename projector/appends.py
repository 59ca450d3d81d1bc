"""Where a batch may end: never inside one append of the log.

One ``EventLog.append`` can hold events that only make sense together (the API's
``RunRequested`` and ``RunQueued`` of one run, keyed by the job, so consecutive in one
partition). A batch that ends between them would commit a run that is requested and
not yet queued, which a scheduler round could read.

The log does not number its appends, but it stamps them: every record of one SQLite
append (one transaction) has that transaction's timestamp, and records of one partition
are in append order. So a partition's consecutive records with one timestamp hold whole
appends (perhaps several, when appends share a millisecond or a group commit: holding
more together is harmless). A poll that returned fewer records than it asked for read
every partition to its end, so it cut nothing; a full poll may have cut each partition's
last group, which waits for the next poll (see ``Projector.step``).

On Kafka neither holds for certain: a poll returns what has been fetched, which may end
anywhere, and records share a broker timestamp (``LogAppendTime``) per produced batch,
which one append may span. The rule still keeps most appends whole there, but not all,
so the scheduler keeps its grace for the API's queued runs on Kafka
(``keeps_appends_whole``; docs/decisions.md, issue 11).
"""

from __future__ import annotations

from collections.abc import Sequence, Set

from eventlog.port import EventLog, LogRecord
from eventlog.sqlite import SqliteEventLog


def keeps_appends_whole(log: EventLog) -> bool:
    """Whether the projector's batches over ``log`` never split one of its appends."""
    return isinstance(log, SqliteEventLog)


def possibly_cut(records: Sequence[LogRecord], *, full_poll: bool) -> set[int]:
    """The partitions of ``records`` whose last append may go on past them: none after a
    poll that returned fewer records than asked for (it read every partition to its
    end), else every partition they hold (a full poll may stop anywhere)."""
    return {record.partition for record in records} if full_poll else set()


def split_open_appends(
    records: Sequence[LogRecord], cut: Set[int]
) -> tuple[list[LogRecord], list[LogRecord]]:
    """``(whole, open)``: the records to apply now, and those of an append that may go on
    past ``records`` (the trailing group of one timestamp of each partition in ``cut``),
    both in log order."""
    if not cut:
        return list(records), []
    last: dict[int, LogRecord] = {}
    for record in records:
        if record.partition in cut:
            last[record.partition] = record
    # Per partition, the first offset of its trailing group: walking backwards (records
    # are in offset order per partition), until another timestamp closes the group.
    open_from: dict[int, int] = {}
    closed: set[int] = set()
    for record in reversed(records):
        partition = record.partition
        if partition not in last or partition in closed:
            continue
        if record.timestamp == last[partition].timestamp:
            open_from[partition] = record.offset
        else:
            closed.add(partition)
    whole = [r for r in records if r.offset < open_from.get(r.partition, r.offset + 1)]
    held = [r for r in records if r.offset >= open_from.get(r.partition, r.offset + 1)]
    return whole, held
