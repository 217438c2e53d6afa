"""The kinds of promise (Commitment.Kind) and what each is called in the team's words: apart from
the models, so that a job's history (crm.models.jobs.JobEvent) names a promise as the promises
list does without the two model modules importing each other."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CommitmentKind(models.TextChoices):
    MILESTONE = "milestone", _("Stage date")
    ANSWER = "answer", _("Answer to a question")
    CALLBACK = "callback", _("Call back")
    DOCUMENT = "document", _("Quote or document")
    # A low survey score: the owner calls the customer within one business day.
    RECOVERY = "recovery", _("Call an unhappy customer")
    # A visit's arrival window: kept when the crew arrives by its end.
    VISIT = "visit", _("Arrival window")


def promise_staff_title(kind: str, title: str, *, contact_name: str | None = None) -> str:
    """What a promise of ``kind`` is, in the team's words and the active language: the ones the
    system makes have a name of their own (their ``title`` is what the customer read, in their
    language); a promise typed by staff, or a stage's, is its title."""
    if kind == CommitmentKind.ANSWER:
        return str(_("Answer the customer's question"))
    if kind == CommitmentKind.CALLBACK:
        return str(_("Call back"))
    if kind == CommitmentKind.RECOVERY:
        return str(_("Call %(name)s: low survey score") % {"name": contact_name or _("the customer")})
    if kind == CommitmentKind.VISIT:
        return str(_("Arrive within the visit's window"))
    return title
