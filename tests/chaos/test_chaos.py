"""Chaos, per mode (standard, batched, writer): 300 jobs submitted by a retrying client while
the API, the worker and the writer are SIGKILLed at random points (several times each), the
Kafka broker and MariaDB are restarted, a poison image kills whichever worker runs it, and a
deadlock storm makes 5% of the recordings fail. The database judges: every job that got a
202 ends `succeeded` exactly once with its own text (the poison job `failed`), nothing stays
queued or running, and the dead-letter topic holds the poison job only."""

from __future__ import annotations

import json
import random

import pytest

from tests.chaos.harness import Client, Faults, Plane, judge, schedule
from tests.dataplane.conftest import Stack
from tests.dataplane.faults import deadlocks_on_success
from tests.dataplane.support import LOCAL, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.restarts_services]

JOBS = 300
FAULT_EVERY_S = 5.0
RESULTS = LOCAL / "logs" / "chaos"


@pytest.mark.parametrize("mode", ["standard", "batched", "writer"])
def test_every_accepted_job_ends_once_under_chaos(stack: Stack, mode: str) -> None:
    rng = random.Random(f"chaos-{mode}")
    seeds = list(range(1, JOBS + 1))
    poison = rng.choice(seeds[10:-10])
    deadlocks_on_success(stack.db, chance=0.05)
    plane = Plane(stack, mode).start()
    try:
        client = Client(plane, seeds, poison, pace_s=1.0).start()
        faults = Faults(plane, schedule(mode, rng), FAULT_EVERY_S).start()
        injected = faults.join()
        accepted = client.join()
        ids = list(accepted.values())
        wait_until(lambda: stack.db.count_done(ids) >= len(ids), 300,
                   f"{len(ids)} jobs finished", interval=1.0)  # fmt: skip
    finally:
        plane.stop()
    faults_injected = sum(injected.values()) + 1  # + the storm; the poison's crashes aside
    verdict = judge(stack, mode, accepted, poison=poison, faults=faults_injected,
                    restarts=plane.restarts["worker"])  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{mode}.json").write_text(json.dumps({**vars(verdict), "injected": injected}))
    print(f"\n| mode | jobs | faults injected | lost | duplicated | stuck |\n{verdict.row()}")
    assert verdict.jobs == JOBS
    counts = (verdict.lost, verdict.duplicated, verdict.stuck, verdict.wrong_text)
    assert counts == (0, 0, 0, 0), f"lost, duplicated, stuck, wrong: {counts}; {verdict.lost_jobs}"
    assert verdict.dead_letters_ok, "the dead-letter topic does not hold exactly the poison job"
    assert injected["broker restart"] == injected["mariadb restart"] == 1
    assert injected["kill api"] >= 2 and injected["kill worker"] >= 3
