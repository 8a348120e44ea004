"""Conditions keep their transition time while unchanged and never drop the advisor's."""

from __future__ import annotations

from ocr_operator.conditions import ConditionUpdate, merge_conditions, progressing_blocks_advisor
from ocr_operator.model import ConditionStatus, ConditionType, Reason

READY_TRUE = ConditionUpdate(ConditionType.READY, ConditionStatus.TRUE, Reason.RECONCILED)
READY_FALSE = ConditionUpdate(
    ConditionType.READY, ConditionStatus.FALSE, Reason.COMPONENTS_NOT_READY, "waiting"
)


def test_transition_time_changes_only_with_status() -> None:
    first = merge_conditions([], [READY_FALSE], 1, "t1")
    same = merge_conditions(first, [READY_FALSE], 2, "t2")
    flipped = merge_conditions(same, [READY_TRUE], 3, "t3")
    assert first[0]["lastTransitionTime"] == "t1"
    assert same[0]["lastTransitionTime"] == "t1"
    assert same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "t3"
    assert flipped[0]["reason"] == "Reconciled"


def test_other_conditions_are_kept_and_order_is_stable() -> None:
    advisor = {
        "type": "AdvisorAvailable",
        "status": "True",
        "reason": "MetricsAvailable",
        "message": "",
        "lastTransitionTime": "t0",
    }
    merged = merge_conditions([advisor], [READY_TRUE], None, "t1")
    assert [c["type"] for c in merged] == ["Ready", "AdvisorAvailable"]
    assert merged[1] == advisor
    assert "observedGeneration" not in merged[0]


def test_only_autoscaling_leaves_the_advisor_free_to_act() -> None:
    def progressing(status: str, reason: str) -> list[dict[str, object]]:
        return [{"type": "Progressing", "status": status, "reason": reason}]

    assert not progressing_blocks_advisor(progressing("True", "ScalingReplicas"))
    assert not progressing_blocks_advisor(progressing("False", "Reconciled"))
    assert not progressing_blocks_advisor([])
    for reason in ("RollingOut", "Migrating", "WaitingForWriter", "DrainingResults"):
        assert progressing_blocks_advisor(progressing("True", reason))
