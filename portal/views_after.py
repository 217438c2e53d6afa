"""After the job: the satisfaction survey and the check-in, opened from a link without signing in.

Each link carries its own signed token (crm.links: salts "portal.survey", "portal.checkin",
no expiry) naming one job and one contact. ``_get_survey`` and ``_get_check_in`` are the only way
these views find a row: the one of that job and that contact, whose customer the job belongs to —
a token for another job, or a tampered one, is a 404 page that says what to do instead. The links
never sign anyone in to the portal: a forwarded email opens the survey, not the customer's jobs.

GET never changes anything (mail scanners follow links). The survey email's scores open the survey
with that score chosen (``?product=5``); a link cannot POST, so the person sends the form with one
more tap on a big button. The check-in email's "all good" and "there is a problem" open a page that
asks to confirm. Answering again updates the answer; an answered link shows what was answered and
how to change it, however old the link is.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods

from crm.errors import DomainError
from crm.links import read_checkin_token, read_survey_token
from crm.models import CheckIn, Contact, Survey
from crm.people import person_card
from crm.services.checkins import check_in_answer
from crm.services.surveys import survey_answer
from crm.workdays import customer_zone
from portal.access import SESSION_LANGUAGE_KEY, portal_language
from portal.forms import CheckInForm, SurveyForm

SCORE_FIELDS = ("product_quality", "workmanship", "installer_conduct", "recommend")


def _get_survey(token: str) -> Survey | None:
    """The survey a link names: that contact's survey of that job, or None (never another's)."""
    ids = read_survey_token(token)
    if ids is None:
        return None
    job_id, contact_id = ids
    return (
        Survey.objects.select_related(
            "job__owner__staff_profile", "job__customer", "job__pipeline__survey_stage", "contact", "recovery"
        )
        .filter(job__public_id=job_id, contact_id=contact_id, contact__customer_id=F("job__customer_id"))
        .first()
    )


def _get_check_in(token: str) -> CheckIn | None:
    """The check-in a link names: that contact's check-in of that job, or None."""
    ids = read_checkin_token(token)
    if ids is None:
        return None
    job_id, contact_id = ids
    return (
        CheckIn.objects.select_related("job__owner__staff_profile", "job__customer", "contact", "question")
        .filter(job__public_id=job_id, contact_id=contact_id, contact__customer_id=F("job__customer_id"))
        .first()
    )


def _as_contact(request: HttpRequest, contact: Contact | None, render_page: Any) -> HttpResponse:
    """Render in the language chosen on this browser, else the contact's, and in their time zone.
    Personal answers: never cached."""
    if contact is not None:
        language = request.session.get(SESSION_LANGUAGE_KEY) or contact.language
        zone = customer_zone(contact.time_zone)
    else:
        language, zone = portal_language(request), customer_zone(settings.DEFAULT_CONTACT_TIME_ZONE)
    with translation.override(language), timezone.override(zone):
        response = render_page()
    response.headers["Content-Language"] = language
    add_never_cache_headers(response)
    return response


def _invalid(request: HttpRequest, template: str) -> HttpResponse:
    return _as_contact(request, None, lambda: render(request, template, status=404))


# --- The survey ---------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def survey(request: HttpRequest, token: str) -> HttpResponse:
    found = _get_survey(token)
    if found is None:
        return _invalid(request, "portal/survey_invalid.html")
    return _as_contact(request, found.contact, lambda: _survey_page(request, found, token))


def _survey_page(request: HttpRequest, survey: Survey, token: str) -> HttpResponse:
    here = reverse("portal:survey", args=[token])
    if request.method == "POST":
        form = SurveyForm(request.POST)
        if form.is_valid():
            try:
                survey_answer(survey=survey, **{name: form.cleaned_data[name] for name in (*SCORE_FIELDS, "comment")})
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                return redirect(here)
        return _survey_form(request, survey, form, status=400)
    chosen = SurveyForm.prefill(request.GET)
    if survey.is_answered and not chosen and "edit" not in request.GET:
        return _survey_thanks(request, survey, here)
    initial: dict[str, Any] = {name: getattr(survey, name) for name in SCORE_FIELDS} if survey.is_answered else {}
    initial["comment"] = survey.comment
    return _survey_form(request, survey, SurveyForm(initial={**initial, **chosen}), chosen=chosen)


def _installer_names(survey: Survey) -> str:
    users = survey.job.installers.all()
    return ", ".join(user.first_name or user.get_username() for user in users)


def _survey_form(
    request: HttpRequest, survey: Survey, form: SurveyForm, *, chosen: dict[str, int] | None = None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "portal/survey.html",
        {
            "survey": survey,
            "job": survey.job,
            "form": form,
            "chosen": chosen or {},
            "installer_names": _installer_names(survey),
            "owner": person_card(survey.job.owner),
        },
        status=status,
    )


def _survey_thanks(request: HttpRequest, survey: Survey, here: str) -> HttpResponse:
    # The call owed after a low score is a promise to the customer too: they are told its time.
    recovery = survey.recovery if survey.recovery_id and survey.recovery.is_open else None  # type: ignore[union-attr]
    questions = SurveyForm.base_fields
    return render(
        request,
        "portal/survey_thanks.html",
        {
            "survey": survey,
            "job": survey.job,
            "answers": [
                (questions[name].label, getattr(survey, name), 10 if name == "recommend" else 5)
                for name in SCORE_FIELDS
            ],
            "recovery": recovery,
            "owner": person_card(survey.job.owner),
            "edit_url": f"{here}?edit=1",
        },
    )


# --- The check-in -------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def checkin(request: HttpRequest, token: str) -> HttpResponse:
    found = _get_check_in(token)
    if found is None:
        return _invalid(request, "portal/checkin_invalid.html")
    return _as_contact(request, found.contact, lambda: _checkin_page(request, found, token))


def _checkin_page(request: HttpRequest, check_in: CheckIn, token: str) -> HttpResponse:
    here = reverse("portal:checkin", args=[token])
    if request.method == "POST":
        form = CheckInForm(request.POST)
        if form.is_valid():
            try:
                check_in_answer(
                    check_in=check_in, answer=form.cleaned_data["answer"], details=form.cleaned_data["details"]
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                return redirect(here)
        return _checkin_form(request, check_in, form, here, status=400)
    asked = request.GET.get("answer", "")
    if asked not in CheckIn.Answer.values:
        asked = ""
    if check_in.answer and not asked:
        return render(
            request,
            "portal/checkin_done.html",
            {
                "check_in": check_in,
                "job": check_in.job,
                "owner": person_card(check_in.job.owner),
                "problem_url": f"{here}?answer=problem",
            },
        )
    return _checkin_form(request, check_in, CheckInForm(initial={"answer": asked}), here)


def _checkin_form(
    request: HttpRequest, check_in: CheckIn, form: CheckInForm, here: str, *, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "portal/checkin.html",
        {
            "check_in": check_in,
            "job": check_in.job,
            "form": form,
            "asked": form["answer"].value() or "",
            "owner": person_card(check_in.job.owner),
            "here": here,
        },
        status=status,
    )


# Included by portal/urls.py; swept like every portal URL (tests/portal/test_access_sweep.py).
urlpatterns = [
    path("survey/<str:token>/", survey, name="survey"),
    path("check-in/<str:token>/", checkin, name="checkin"),
]
