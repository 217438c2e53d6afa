"""What customers ask (questions) and every date given to them (commitments), with each move."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models.customers import Contact
from crm.models.jobs import Job, Milestone
from crm.models.messages import Message
from crm.models.promise_kinds import CommitmentKind, promise_staff_title


class Question(models.Model):
    """Something a customer asked. Acknowledged at once with the date they will have an answer by
    (a date we can beat); answered when staff reply."""

    class Source(models.TextChoices):
        PORTAL = "portal", _("Portal question")
        EMAIL = "email", _("Email")
        SMS = "sms", _("Text message")
        PHONE = "phone", _("Phone call")
        IN_PERSON = "in_person", _("In person")
        STAFF = "staff", _("Entered by staff")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="questions", verbose_name=_("job"))
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="questions", verbose_name=_("contact")
    )
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    body = models.TextField(_("question"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    # Our own target (internal); the date promised to the customer adds a buffer to it.
    target_at = models.DateTimeField(_("internal target"), null=True, blank=True)
    # The date promised to the customer in the acknowledgement.
    answer_due_on = models.DateField(_("answer promised by"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    # The inbound email this question came from, if any.
    message = models.OneToOneField(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="question", verbose_name=_("message")
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        indexes = [
            # Dashboard "questions waiting for an answer", oldest promise first.
            models.Index(fields=["answer_due_on"], condition=Q(answered_at__isnull=True), name="question_open_due_idx"),
            # The health report: questions received in a period.
            models.Index(fields=["received_at"], name="question_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job.reference}: {self.body[:60]}"

    @property
    def is_open(self) -> bool:
        return self.answered_at is None


class Commitment(models.Model):
    """A date given to a customer: a stage by a date, an answer by a date, a call back, a document.

    Its history is never overwritten: the first promised time stays, every move is a
    Renegotiation saying whether the customer was told before the old time passed.
    """

    Kind = CommitmentKind

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        RENEGOTIATED = "renegotiated", _("Moved")
        KEPT = "kept", _("Kept")
        BROKEN = "broken", _("Broken")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    OPEN_STATES = (State.OPEN, State.RENEGOTIATED)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="commitments", verbose_name=_("job"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    title = models.CharField(_("what was promised"), max_length=200)
    # Whoever must keep it: the job's owner (it follows a reassignment while open).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="commitments", verbose_name=_("owner")
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="commitments", verbose_name=_("to")
    )
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.OPEN)
    first_due_at = models.DateTimeField(_("first promised for"))
    due_at = models.DateTimeField(_("due"))
    created_at = models.DateTimeField(_("promised at"), default=timezone.now)
    kept_at = models.DateTimeField(_("kept at"), null=True, blank=True)
    broken_at = models.DateTimeField(_("broken at"), null=True, blank=True)
    # Who held it when it broke (the figures credit them, whoever owns it after a late new date).
    broken_holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("held by when it broke"),
    )
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    # The owner was warned it is about to slip (once), and a manager told when it broke (once).
    nudged_at = models.DateTimeField(_("owner nudged at"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("manager alerted at"), null=True, blank=True)
    milestone = models.ForeignKey(
        Milestone, on_delete=models.CASCADE, null=True, blank=True, related_name="commitments", verbose_name=_("stage")
    )
    question = models.ForeignKey(
        Question,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="commitments",
        verbose_name=_("question"),
    )
    call = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="commitments", verbose_name=_("call")
    )

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("promise")
        verbose_name_plural = _("promises")
        constraints = [
            models.UniqueConstraint(
                fields=["milestone"],
                condition=Q(state__in=["open", "renegotiated"]),
                name="commitment_one_open_per_milestone",
            ),
            models.UniqueConstraint(fields=["question"], name="commitment_one_per_question"),
            models.CheckConstraint(
                condition=Q(state="kept", kept_at__isnull=False)
                | Q(state="broken", broken_at__isnull=False)
                | Q(state="withdrawn", withdrawn_at__isnull=False)
                | Q(state__in=["open", "renegotiated"]),
                name="commitment_state_has_its_time",
            ),
        ]
        indexes = [
            # The at-risk scan (every few minutes): open promises by due time.
            models.Index(
                fields=["due_at"], condition=Q(state__in=["open", "renegotiated"]), name="commitment_open_due_idx"
            ),
            # The health report: promises by owner first due in a period, and the team's.
            models.Index(fields=["owner", "first_due_at"], name="commitment_owner_due_idx"),
            models.Index(fields=["first_due_at"], name="commitment_first_due_idx"),
            # The health report: promises broken in a period.
            models.Index(fields=["broken_at"], condition=Q(broken_at__isnull=False), name="commitment_broken_idx"),
            # The dashboard and the navigation's counts: each person's broken promises, and the
            # calls owed to unhappy customers (a few rows of a big table each).
            models.Index(fields=["owner", "due_at"], condition=Q(state="broken"), name="commitment_owner_broken_idx"),
            models.Index(
                fields=["job"],
                condition=Q(kind="recovery", state__in=["open", "renegotiated", "broken"]),
                name="commitment_recovery_owed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_state_display()})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def staff_title(self) -> str:
        """What was promised, as the team reads it in the active language (select_related
        ``milestone__stage`` and ``contact`` to save queries); a promise typed by staff as typed."""
        if self.kind == self.Kind.MILESTONE and self.milestone is not None:
            return self.milestone.stage.label
        return promise_staff_title(self.kind, self.title, contact_name=self.contact.name if self.contact else None)

    @property
    def label(self) -> str:
        """What was promised, in the active language (customers read it in theirs)."""
        if self.kind == self.Kind.MILESTONE and self.milestone is not None:
            return self.milestone.stage.label
        if self.kind == self.Kind.ANSWER:
            return str(_("An answer to your question"))
        if self.kind == self.Kind.CALLBACK:
            return str(_("A call back"))
        if self.kind == self.Kind.RECOVERY:
            return str(_("A call from us"))
        if self.kind == self.Kind.VISIT:
            return str(_("Our arrival within the agreed window"))
        return self.title

    @property
    def kept_on_time(self) -> bool:
        return self.state == self.State.KEPT and self.kept_at is not None and self.kept_at <= self.first_due_at


class RenegotiationQuerySet(models.QuerySet["Renegotiation"]):
    def untold(self, job: Any) -> RenegotiationQuerySet:
        """Moves of ``job``'s open stage promises the customer has not been told of (``job``: a
        job, or an OuterRef to one): the dashboard's "new dates the customer was not told", and
        what crm.services.jobs.dates_tell tells."""
        return self.filter(
            commitment__job=job,
            commitment__kind=Commitment.Kind.MILESTONE,
            commitment__state__in=Commitment.OPEN_STATES,
            told_customer_at__isnull=True,
        )


class Renegotiation(models.Model):
    """One move of a promise's date. Proactive when the customer was told before the old time."""

    commitment = models.ForeignKey(
        Commitment, on_delete=models.CASCADE, related_name="renegotiations", verbose_name=_("promise")
    )
    old_due_at = models.DateTimeField(_("was due"))
    new_due_at = models.DateTimeField(_("now due"))
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    told_customer_at = models.DateTimeField(_("customer told at"), null=True, blank=True)
    proactive = models.BooleanField(_("told before the old date"), default=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    # Who held the promise when it moved (the figures credit them, whoever owns it later).
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("held by"),
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    objects = RenegotiationQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("date change")
        verbose_name_plural = _("date changes")
        indexes = [
            # The health report: renegotiations over a period.
            models.Index(fields=["created_at"], name="renegotiation_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.old_due_at:%Y-%m-%d} → {self.new_due_at:%Y-%m-%d}"


# --- After the job: surveys and check-ins ---
