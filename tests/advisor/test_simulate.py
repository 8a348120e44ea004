"""The simulated day: the operator's advisor against each fixed mode and the oracle. The
simulation is deterministic, so its targets are asserted exactly (no timing involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocr_operator.model import Mode
from ocr_operator.simulate.__main__ import BEGIN, END, main
from ocr_operator.simulate.drive import merge_patch
from ocr_operator.simulate.figures import Study, run_study
from ocr_operator.simulate.oracle import oracle
from ocr_operator.simulate.outcome import minute_p95, oscillations, summarise
from ocr_operator.simulate.scenario import Day
from ocr_operator.simulate.stack import StackConfig


@pytest.fixture(scope="module")
def study() -> Study:
    return run_study(Day.build())


def test_the_advisor_meets_every_target_of_the_day(study: Study) -> None:
    advisor = summarise(study.advisor, study.oracle)
    assert advisor.in_oracle_mode >= 0.90
    assert advisor.transitions <= 12
    assert advisor.oscillations == 0
    assert advisor.within_target >= 0.99
    assert all(ok for _, ok in study.targets())


def test_no_fixed_mode_is_as_close_to_the_oracle(study: Study) -> None:
    advisor = summarise(study.advisor, study.oracle)
    fixed = {run.name: summarise(run, study.oracle) for run in study.fixed}
    assert all(s.in_oracle_mode < advisor.in_oracle_mode for s in fixed.values())
    # Standard cannot carry the day, Batched not the slow database; Writer can, with writers
    # running all day.
    assert fixed["fixed Standard"].within_target < 0.99
    assert fixed["fixed Batched"].within_target < 0.99
    assert fixed["fixed Writer"].writer_hours > 2 * advisor.writer_hours


def test_the_advisor_climbs_for_the_day_and_the_slow_database_and_comes_back(
    study: Study,
) -> None:
    moves = [(t["from"], t["to"], t["rule"]) for t in study.advisor.transitions]
    assert moves == [
        ("Standard", "Batched", "GpuSaturated"),
        ("Batched", "Writer", "DownstreamBound"),
        ("Writer", "Batched", "DownstreamRecovered"),
        ("Batched", "Standard", "GpuIdle"),
    ]
    assert all(t["signals"] for t in study.advisor.transitions)
    hours = [int(t["time"][11:13]) for t in study.advisor.transitions]
    assert hours[0] in (9, 10) and hours[1] == 16 and hours[2] == 17


def test_the_oracle_picks_the_lightest_mode_that_carries_the_load() -> None:
    config = StackConfig()
    plan = oracle(Day.build(), config)
    assert plan[3 * 60] is Mode.STANDARD  # night
    assert plan[12 * 60] is Mode.BATCHED  # day: beyond Standard's capacity
    assert plan[17 * 60] is Mode.WRITER  # the slow database
    assert plan[23 * 60] is Mode.STANDARD
    quiet = oracle(Day(arrivals=(2.0,) * (24 * 60)), config)
    assert set(quiet[: 16 * 60]) == {Mode.STANDARD}  # before the slow database
    # Even 2 jobs/s is too much for Standard when every write takes 1.5 s.
    assert quiet[17 * 60] is not Mode.STANDARD


def test_latency_and_oscillation_figures(study: Study) -> None:
    p95 = minute_p95(study.advisor)
    assert len(p95) == 24 * 60
    assert max(p95[: 6 * 60]) < 1.0  # the night: service time only
    assert oscillations(study.advisor) == 0
    flapping = study.advisor.__class__(name="flap", modes=[Mode.STANDARD, Mode.BATCHED] * 50)
    assert oscillations(flapping) > 0


def test_merge_patch_follows_rfc_7386() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"c": None, "e": 4}}) == {
        "b": {"d": 3, "e": 4}
    }


def test_the_command_rewrites_the_figures_block_and_writes_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "advisor.md"
    doc.write_text(f"# Title\n\n{BEGIN}\nold figures\n{END}\n\nafter\n")
    plot = tmp_path / "day.png"
    assert main(["--doc", str(doc), "--plot", str(plot)]) == 0
    text = doc.read_text()
    assert "old figures" not in text and text.endswith(f"{END}\n\nafter\n")
    assert "| advisor (Auto) |" in text and "![The simulated day](day.png)" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| fixed Standard |" in capsys.readouterr().out
