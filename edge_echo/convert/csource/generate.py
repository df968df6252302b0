"""One model's C, made once per subject: the step form where the model has one, else the
whole-sequence form."""

from __future__ import annotations

from ...forms import Subject, Unavailable
from .plan import Plan, plan
from .sequence import SeqPlan, seq_header, seq_source, sequence_plan
from .step import header, source


def _generated(subject: Subject) -> tuple[Plan | SeqPlan, str, str]:
    """The model as step-by-step cells and a head (NAME_step and NAME_predict), or else as
    whole-sequence layers (NAME_predict only); with the header and the source."""
    if "c_source" not in subject.cache:
        try:
            p = plan(subject)
            subject.cache["c_source"] = (p, header(subject.name, p), source(subject.name, p))
        except Unavailable as stepwise:
            try:
                p = sequence_plan(subject)
            except Unavailable as whole:
                # The whole-sequence reading takes more; its reason names what neither takes.
                raise whole from stepwise
            subject.cache["c_source"] = (p, seq_header(subject.name, p), seq_source(subject.name, p))
    return subject.cache["c_source"]
