"""After the job: satisfaction surveys, and check-ins weeks later."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models.customers import Contact
from crm.models.jobs import Job
from crm.models.promises import Question


class Survey(models.Model):
    """The satisfaction survey of one contact about one job: created when the invitation is
    queued (one per job and contact), answered — and answered again — from the survey link.

    Every question is optional on its own (a one-click score from the email is an answer); an
    answer has at least one score. The installers are copied from the job when the contact
    answers, so a report per installer keeps who did the work even if the job changes later.
    """

    # A product, workmanship or conduct score at or below this, or a recommendation at or below
    # LOW_RECOMMEND, is an unhappy customer: the owner is alerted and calls them.
    LOW_SCORE = 2
    LOW_RECOMMEND = 6
    SCORE_QUESTIONS = ("product_quality", "workmanship", "installer_conduct")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="surveys", verbose_name=_("job"))
    contact = models.ForeignKey(
        Contact,
        # The answers outlive the contact: reports keep counting them.
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="surveys",
        verbose_name=_("contact"),
    )
    invited_at = models.DateTimeField(_("invited at"), default=timezone.now)
    product_quality = models.PositiveSmallIntegerField(_("product quality (1–5)"), null=True, blank=True)
    workmanship = models.PositiveSmallIntegerField(_("workmanship (1–5)"), null=True, blank=True)
    installer_conduct = models.PositiveSmallIntegerField(_("installer conduct (1–5)"), null=True, blank=True)
    recommend = models.PositiveSmallIntegerField(_("likelihood to recommend (0–10)"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    # First answer; updated_at moves with every change of answer.
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), null=True, blank=True)
    installers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="+", blank=True, verbose_name=_("installers")
    )
    # The call the owner owes the contact after a low score (crm.services.surveys.recovery_open).
    recovery = models.ForeignKey(
        "Commitment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recovery call"),
    )

    class Meta:
        ordering = ["-invited_at", "-id"]
        verbose_name = _("satisfaction survey")
        verbose_name_plural = _("satisfaction surveys")
        constraints = [
            models.UniqueConstraint(fields=["job", "contact"], name="survey_one_per_job_contact"),
            models.CheckConstraint(
                condition=Q(product_quality__isnull=True) | Q(product_quality__gte=1, product_quality__lte=5),
                name="survey_product_quality_1_5",
            ),
            models.CheckConstraint(
                condition=Q(workmanship__isnull=True) | Q(workmanship__gte=1, workmanship__lte=5),
                name="survey_workmanship_1_5",
            ),
            models.CheckConstraint(
                condition=Q(installer_conduct__isnull=True) | Q(installer_conduct__gte=1, installer_conduct__lte=5),
                name="survey_installer_conduct_1_5",
            ),
            models.CheckConstraint(
                condition=Q(recommend__isnull=True) | Q(recommend__lte=10), name="survey_recommend_0_10"
            ),
            models.CheckConstraint(
                condition=Q(answered_at__isnull=True) | Q(updated_at__isnull=False),
                name="survey_answered_has_updated_at",
            ),
        ]
        indexes = [
            # Reports: answers over a period (satisfaction, NPS); response rate from invited_at.
            models.Index(fields=["answered_at"], condition=Q(answered_at__isnull=False), name="survey_answered_idx"),
            models.Index(fields=["invited_at"], name="survey_invited_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job.reference}: {self.contact or '—'}"

    @property
    def is_answered(self) -> bool:
        return self.answered_at is not None

    @property
    def is_low(self) -> bool:
        """An unhappy answer: a 1–5 score at or below LOW_SCORE, or a recommendation at or below
        LOW_RECOMMEND."""
        scores = [getattr(self, name) for name in self.SCORE_QUESTIONS]
        if any(score is not None and score <= self.LOW_SCORE for score in scores):
            return True
        return self.recommend is not None and self.recommend <= self.LOW_RECOMMEND


class CheckIn(models.Model):
    """A "has everything kept working?" to one contact, some weeks after a job was completed:
    created when the message is queued (one per job and contact), answered with one click."""

    class Answer(models.TextChoices):
        ALL_GOOD = "all_good", _("All good")
        PROBLEM = "problem", _("There is a problem")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="check_ins", verbose_name=_("job"))
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="check_ins", verbose_name=_("contact")
    )
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)
    answer = models.CharField(_("answer"), max_length=20, choices=Answer.choices, blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    # "There is a problem" opens a question on the job, acknowledged like any other.
    question = models.ForeignKey(
        Question, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("question opened")
    )

    class Meta:
        ordering = ["-sent_at", "-id"]
        verbose_name = _("check-in")
        verbose_name_plural = _("check-ins")
        constraints = [
            models.UniqueConstraint(fields=["job", "contact"], name="checkin_one_per_job_contact"),
            models.CheckConstraint(
                condition=Q(answer="", answered_at__isnull=True) | (~Q(answer="") & Q(answered_at__isnull=False)),
                name="checkin_answer_has_its_time",
            ),
        ]
        indexes = [
            # Reports: check-ins sent and answered over a period.
            models.Index(fields=["sent_at"], name="checkin_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job.reference}: {self.contact or '—'} ({self.get_answer_display() or _('no answer yet')})"


# --- Positive contact: campaigns ---
