"""Line accuracy as `ocr-runtime evaluate` computes it: exact lines, spaces ignored."""

from __future__ import annotations

import pytest

from ocr_runtime.application.evaluation import Evaluation, normalise, score_image


def test_a_line_counts_when_its_spaceless_form_was_read() -> None:
    score = score_image("a.png", ["Order 12345", "total 7"], ["Order12345", "tota1 7"], 0.5)
    assert (score.expected, score.matched) == (2, 1)
    assert score.missed == ("total 7",)
    assert score.accuracy == 0.5
    assert normalise(" a b\tc ") == "abc"


def test_each_recognised_line_matches_one_expected_line() -> None:
    score = score_image("a.png", ["paid", "paid"], ["paid", "due"], 0.1)
    assert score.matched == 1


def test_accuracy_pools_lines_and_time_is_per_image() -> None:
    evaluation = Evaluation(
        (
            score_image("a.png", ["x", "y", "z"], ["x", "y", "z"], 1.0),
            score_image("b.png", ["w"], [], 3.0),
        )
    )
    assert evaluation.line_accuracy == pytest.approx(3 / 4)
    assert evaluation.seconds_per_image == pytest.approx(2.0)
    report = evaluation.as_dict()
    assert report["line_accuracy"] == pytest.approx(0.75)
    assert [image["missed"] for image in report["images"]] == [[], ["w"]]  # type: ignore[attr-defined]
