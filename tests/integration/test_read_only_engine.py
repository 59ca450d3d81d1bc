"""The dashboard's engine reads the read model and the database refuses its writes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError

from projector.database import create_read_only_engine
from projector.tables import JobTagRecord


def test_reads_work_and_writes_are_refused_by_the_database(read_model_url: str) -> None:
    engine = create_read_only_engine(read_model_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(JobTagRecord)) == 0
            with pytest.raises(DBAPIError, match=r"(?i)read.only|readonly"):
                connection.execute(insert(JobTagRecord).values(job_id="job-1", tag="x"))
    finally:
        engine.dispose()
