"""Reads job rows straight from the database: completion counts while a run drains, then
created_at -> finished_at latencies once it is over. The table is found by its columns so
that the runtime's schema and the Celery baseline's table are read the same way."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pymysql

from benchmarks.services import MariaDb
from benchmarks.stats import latency_summary_ms

_REQUIRED = ("status", "created_at", "finished_at")


class DrainTimeoutError(RuntimeError):
    """Jobs were still unfinished when the wait ran out."""


@dataclass(frozen=True)
class JobTimes:
    created_at: list[datetime]
    finished_at: list[datetime]
    statuses: dict[str, int]
    fractional_seconds: bool

    @property
    def finished(self) -> int:
        return len(self.finished_at)

    def span_seconds(self) -> float:
        """First job created -> last job finished: the end-to-end window of the run."""
        if not self.finished_at:
            return 0.0
        return (max(self.finished_at) - min(self.created_at)).total_seconds()

    def latencies(self) -> dict[str, float]:
        pairs = zip(self.created_at, self.finished_at, strict=True)
        return latency_summary_ms([(end - begin).total_seconds() for begin, end in pairs])


class JobTable:
    def __init__(self, db: MariaDb, database: str, table: str | None = None) -> None:
        self.db, self.database, self._table = db, database, table

    @property
    def table(self) -> str:
        if self._table is None:
            self._table = self._discover()
        return self._table

    def _discover(self) -> str:
        with self.db.cursor(self.database) as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = %s "
                "AND column_name IN (%s, %s, %s) GROUP BY table_name HAVING COUNT(*) = 3",
                (self.database, *_REQUIRED),
            )
            names = sorted(str(row[0]) for row in cur.fetchall())
        if not names:
            raise RuntimeError(f"no table with {_REQUIRED} in database {self.database}")
        # prefer the plainest name (`jobs`) if there are several
        return min(names, key=len)

    def count_finished(self, since: datetime) -> int:
        with self.db.cursor(self.database) as cur:
            cur.execute(
                f"SELECT COUNT(*) FROM `{self.table}` WHERE finished_at IS NOT NULL "
                "AND created_at >= %s",
                (since,),
            )
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def wait_finished(
        self,
        expected: int,
        since: datetime,
        timeout: float,
        progress: Callable[[int], None] | None = None,
    ) -> float:
        """Poll until `expected` jobs are finished; returns the wall seconds waited."""
        started = time.monotonic()
        done = 0
        while time.monotonic() - started < timeout:
            try:
                done = self.count_finished(since)
            except pymysql.err.OperationalError:  # the shared server restarting: wait it out
                time.sleep(1.0)
                continue
            if progress is not None:
                progress(done)
            if done >= expected:
                return time.monotonic() - started
            time.sleep(0.25)
        raise DrainTimeoutError(f"{done}/{expected} jobs finished after {timeout:.0f}s")

    def result_texts(self, since: datetime) -> list[str]:
        """Every recognised line of the results: the runtime's `{"text", "lines", "pages"}`
        object, or a bare JSON list of lines (the Ray Serve baseline)."""
        with self.db.cursor(self.database) as cur:
            cur.execute(
                f"SELECT result FROM `{self.table}` WHERE result IS NOT NULL AND created_at >= %s",
                (since,),
            )
            rows = cur.fetchall()
        return [str(line["text"]) for (raw,) in rows for line in result_lines(json.loads(raw))]

    def page_counts(self, since: datetime) -> list[int]:
        """The number of pages in each stored result (1 for a result without `pages`)."""
        with self.db.cursor(self.database) as cur:
            cur.execute(
                f"SELECT result FROM `{self.table}` WHERE result IS NOT NULL AND created_at >= %s",
                (since,),
            )
            rows = cur.fetchall()
        results = [json.loads(raw) for (raw,) in rows]
        return [len(r.get("pages") or [r]) if isinstance(r, dict) else 1 for r in results]

    def times(self, since: datetime) -> JobTimes:
        with self.db.cursor(self.database) as cur:
            cur.execute(
                f"SELECT status, COUNT(*) FROM `{self.table}` WHERE created_at >= %s "
                "GROUP BY status",
                (since,),
            )
            statuses = {str(status): int(count) for status, count in cur.fetchall()}
            cur.execute(
                f"SELECT created_at, finished_at FROM `{self.table}` "
                "WHERE finished_at IS NOT NULL AND created_at >= %s",
                (since,),
            )
            rows = cur.fetchall()
        created = [row[0] for row in rows]
        finished = [row[1] for row in rows]
        fractional = any(stamp.microsecond for stamp in created + finished)
        return JobTimes(created, finished, statuses, fractional)


def result_lines(result: Any) -> list[dict[str, Any]]:
    """The lines of one stored result, whichever of the two shapes it has."""
    lines = result.get("lines", []) if isinstance(result, dict) else result
    return list(lines)
