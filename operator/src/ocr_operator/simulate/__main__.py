"""`python -m ocr_operator.simulate`: the simulated day, its comparison table and its plot.

Prints the comparison (advisor, each fixed mode, against the oracle) and the advisor's hours;
`--plot PATH` writes the PNG, `--doc PATH` rewrites the figures between the simulate markers
of that Markdown file (docs/advisor.md). Deterministic: the same figures on every run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ocr_operator.model import Mode, Policy
from ocr_operator.simulate.drive import simulate
from ocr_operator.simulate.figures import Day, Study, render_markdown, run_study, write_plot
from ocr_operator.simulate.oracle import oracle
from ocr_operator.simulate.outcome import summarise
from ocr_operator.simulate.stack import StackConfig

CONFIG = StackConfig()

BEGIN = "<!-- simulate:begin (make simulate rewrites this block) -->"
END = "<!-- simulate:end -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocr_operator.simulate")
    parser.add_argument("--seed", type=int, default=7, help="noise of the arrival curve")
    parser.add_argument("--plot", type=Path, help="write the plot (PNG) here")
    parser.add_argument("--doc", type=Path, help="rewrite the figures block of this file")
    parser.add_argument(
        "--seeds", type=int, help="only the advisor's summary for seeds 1..N (robustness)"
    )
    args = parser.parse_args(argv)
    if args.seeds:
        return _robustness(args.seeds)
    study = run_study(Day.build(seed=args.seed))
    text = render_markdown(study, plot=args.plot.name if args.plot else None)
    print(text)
    if args.plot:
        write_plot(study, args.plot)
        print(f"plot written to {args.plot}")
    if args.doc:
        _rewrite(args.doc, text)
        print(f"figures written to {args.doc}")
    return 0 if _targets_met(study) else 1


def _robustness(seeds: int) -> int:
    print(
        "| seed | minutes with p95 <= 60 s | time in oracle's mode | transitions | oscillations |"
    )
    print("|---|---|---|---|---|")
    met = True
    for seed in range(1, seeds + 1):
        day = Day.build(seed=seed)
        s = summarise(simulate("advisor", Mode.STANDARD, Policy.AUTO, day), oracle(day, CONFIG))
        print(f"| {seed} | {s.within_target:.2%} | {s.in_oracle_mode:.1%} | {s.transitions} | "
              f"{s.oscillations} |")  # fmt: skip
        met = met and s.within_target >= 0.99 and s.in_oracle_mode >= 0.9 and not s.oscillations
    return 0 if met else 1


def _rewrite(path: Path, text: str) -> None:
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} block")
    head, rest = doc.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{BEGIN}\n\n{text}\n{END}{tail}")


def _targets_met(study: Study) -> bool:
    checks = study.targets()
    for name, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}", file=sys.stderr)
    return all(ok for _, ok in checks)


if __name__ == "__main__":
    raise SystemExit(main())
