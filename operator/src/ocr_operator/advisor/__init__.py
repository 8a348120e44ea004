"""The advisor: reads Prometheus, decides whether the stack should change architecture, and
(under the Recommend or Auto policy) moves `status.activeMode`. Rules in docs/advisor.md.

Only pure names are re-exported here; the kopf handlers live in `advisor.handlers` and the
Prometheus source in `advisor.metrics`, imported by the operator's entry point."""

from ocr_operator.advisor.backpressure import CapAction, CapPlan, CapState, plan_cap, replica_caps
from ocr_operator.advisor.checks import Check, Finding
from ocr_operator.advisor.evidence import Derived, Observation
from ocr_operator.advisor.policy import Action, Approval, Plan, is_pinned, plan
from ocr_operator.advisor.rules import (
    AdvisorWindow,
    Decision,
    Effect,
    Evidence,
    RuleName,
    Signal,
    Verdict,
    decide,
    observe,
)
from ocr_operator.model.advisor import AdvisorQueries, AdvisorSpec, AdvisorThresholds

__all__ = [
    "Action",
    "AdvisorQueries",
    "AdvisorSpec",
    "AdvisorThresholds",
    "AdvisorWindow",
    "Approval",
    "CapAction",
    "CapPlan",
    "CapState",
    "Check",
    "Decision",
    "Derived",
    "Effect",
    "Evidence",
    "Finding",
    "Observation",
    "Plan",
    "RuleName",
    "Signal",
    "Verdict",
    "decide",
    "is_pinned",
    "observe",
    "plan",
    "plan_cap",
    "replica_caps",
]
