"""The study: the advisor's day and the fixed modes' days against the oracle, as Markdown
tables and a plot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ocr_operator.model import Mode, Policy
from ocr_operator.simulate.drive import Run, simulate
from ocr_operator.simulate.oracle import oracle
from ocr_operator.simulate.outcome import (
    LATENCY_TARGET_S,
    Summary,
    hourly,
    minute_modes,
    minute_p95,
    summarise,
)
from ocr_operator.simulate.scenario import Day, db_slowness
from ocr_operator.simulate.stack import StackConfig

__all__ = ["Day", "Study", "render_markdown", "run_study", "write_plot"]

MAX_TRANSITIONS = 12
MIN_IN_ORACLE_MODE = 0.90
MIN_WITHIN_TARGET = 0.99


@dataclass(frozen=True)
class Study:
    day: Day
    oracle: list[Mode]
    advisor: Run
    fixed: tuple[Run, ...]

    def summaries(self) -> list[Summary]:
        return [summarise(run, self.oracle) for run in (self.advisor, *self.fixed)]

    def targets(self) -> list[tuple[str, bool]]:
        s = summarise(self.advisor, self.oracle)
        return [
            (f"time in the oracle's mode {s.in_oracle_mode:.1%} >= 90%",
             s.in_oracle_mode >= MIN_IN_ORACLE_MODE),
            (f"transitions {s.transitions} <= {MAX_TRANSITIONS}",
             s.transitions <= MAX_TRANSITIONS),
            (f"oscillations {s.oscillations} == 0", s.oscillations == 0),
            (f"minutes with p95 <= {LATENCY_TARGET_S:g} s: {s.within_target:.2%} >= 99%",
             s.within_target >= MIN_WITHIN_TARGET),
        ]  # fmt: skip


def run_study(day: Day) -> Study:
    advisor = simulate("advisor (Auto)", Mode.STANDARD, Policy.AUTO, day)
    fixed = tuple(
        simulate(f"fixed {mode.value}", mode, Policy.MANUAL, day)
        for mode in (Mode.STANDARD, Mode.BATCHED, Mode.WRITER)
    )
    return Study(day=day, oracle=oracle(day, StackConfig()), advisor=advisor, fixed=fixed)


def render_markdown(study: Study, plot: str | None = None) -> str:
    lines = [
        "| run | minutes with p95 <= 60 s | worst minute p95 | time in oracle's mode "
        "| transitions | oscillations | GPU worker-hours | writer-hours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in study.summaries():
        lines.append(
            f"| {s.name} | {s.within_target:.2%} | {_duration(s.worst_p95)} | "
            f"{s.in_oracle_mode:.1%} | {s.transitions} | {s.oscillations} | "
            f"{s.worker_hours:.0f} | {s.writer_hours:.1f} |"
        )
    lines += ["", "The advisor's day, hour by hour:", ""]
    lines += [
        "| hour | advisor's mode | oracle's mode | mean lag (jobs) | worst minute p95 "
        "| worker-seconds |",
        "|---|---|---|---|---|---|",
    ]
    for hour, mode, best, lag, p95, cost in hourly(study.advisor, study.oracle):
        lines.append(
            f"| {hour:02d}:00 | {mode} | {best} | {lag:.0f} | {_duration(p95)} | {cost:.0f} |"
        )
    lines += ["", "Transitions (status.transitions of the simulated resource):", ""]
    for item in study.advisor.transitions:
        lines.append(f"- {item['time'][11:16]} {item['from']} -> {item['to']}: {item['reason']}")
    caps = [e for e in study.advisor.events if e[1].startswith("ReplicaCap")]
    advice = [e for e in study.advisor.events if e[1] == "AsyncClientsRecommended"]
    lines += ["", f"Replica-cap events: {len(caps)}; async-client advice events: {len(advice)}."]
    for t, reason, message in caps + advice:
        lines.append(f"- {int(t // 3600):02d}:{int(t % 3600 // 60):02d} {reason}: {message}")
    if plot:
        lines += ["", f"![The simulated day]({plot})"]
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def write_plot(study: Study, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 (a development dependency: only the plot needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    hours = [m / 60 for m in range(len(study.oracle))]
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    top.plot(hours, list(study.day.arrivals), color="black", linewidth=0.8, label="arrivals")
    top.fill_between(hours, 0, [80 * db_slowness(m * 60) for m in range(len(hours))],
                     color="tab:red", alpha=0.2, label="slow database")  # fmt: skip
    top.set_ylabel("jobs/s")
    top.legend(loc="upper left")
    order = {Mode.STANDARD: 0, Mode.BATCHED: 1, Mode.WRITER: 2}
    middle.step(hours, [order[m] for m in study.oracle], where="post", color="tab:green",
                linewidth=3, alpha=0.5, label="oracle")  # fmt: skip
    modes = minute_modes(study.advisor)
    middle.step(hours, [order[m] for m in modes], where="post", color="tab:blue",
                label="advisor")  # fmt: skip
    middle.set_yticks([0, 1, 2], ["Standard", "Batched", "Writer"])
    middle.legend(loc="upper left")
    for run in (study.advisor, *study.fixed):
        bottom.plot(hours, [max(v, 0.05) for v in minute_p95(run)], linewidth=0.8,
                    label=run.name)  # fmt: skip
    bottom.axhline(LATENCY_TARGET_S, color="tab:red", linestyle="--", label="target")
    bottom.set_yscale("log")
    bottom.set_ylabel("p95 job latency (s)")
    bottom.set_xlabel("hour of the day")
    bottom.set_xticks(range(0, 25, 2))
    bottom.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
