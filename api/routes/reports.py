"""The communication-health and satisfaction figures of a period, for the team (as the report
pages count them: crm.reports, crm.reports_satisfaction)."""

from datetime import date, timedelta

from django.http import HttpRequest
from ninja import Router

from api.auth import needs
from api.problems import Problem, field_error
from api.schemas import ReportOut
from crm.reports import Period, health_report
from crm.reports_satisfaction import satisfaction_report

router = Router(tags=["reports"])

# The longest period one call counts (the report pages allow the same).
MAX_DAYS = 366


def _period(first_day: date, last_day: date) -> Period:
    if last_day < first_day:
        raise Problem(422, "last_day is before first_day.", errors=[field_error("last_day", "before first_day")])
    if last_day >= date.max - timedelta(days=7):
        raise Problem(422, "last_day is too far in the future.", errors=[field_error("last_day", "out of range")])
    if (last_day - first_day).days >= MAX_DAYS:
        raise Problem(422, f"A period is at most {MAX_DAYS} days.", errors=[field_error("last_day", "period too long")])
    return Period(first_day=first_day, last_day=last_day)


def _figure(name: str, value: float | None, counted_from: int | None = None) -> dict[str, object]:
    return {"name": name, "value": None if value is None else round(value, 2), "counted_from": counted_from}


@router.get(
    "/reports/health/",
    response=ReportOut,
    summary="Communication health of the team over a period",
    **needs("reports:read"),
)
def health(request: HttpRequest, first_day: date, last_day: date) -> dict[str, object]:
    period = _period(first_day, last_day)
    team = health_report(period=period).team
    assert team is not None  # the whole team's report has its row
    f = team.total
    ack, answer = f.acknowledge.median, f.answer.median
    return {
        "first_day": period.first_day,
        "last_day": period.last_day,
        "figures": [
            _figure("kept_on_time_percent", f.kept_on_time.percent, f.kept_on_time.denominator),
            _figure("proactive_notice_percent", f.proactive_notice.percent, f.proactive_notice.denominator),
            _figure("acknowledge_median_seconds", ack.total_seconds() if ack else None, f.acknowledge.total),
            _figure("answer_median_seconds", answer.total_seconds() if answer else None, f.answer.total),
            _figure("silent_jobs_percent", f.silent_jobs.percent, f.silent_jobs.denominator),
            _figure("visit_windows_kept_percent", f.windows_kept.percent, f.windows_kept.denominator),
        ],
    }


@router.get(
    "/reports/satisfaction/",
    response=ReportOut,
    summary="Satisfaction of the team over a period",
    **needs("reports:read"),
)
def satisfaction(request: HttpRequest, first_day: date, last_day: date) -> dict[str, object]:
    period = _period(first_day, last_day)
    team = satisfaction_report(period=period).team
    assert team is not None
    s = team.total
    return {
        "first_day": period.first_day,
        "last_day": period.last_day,
        "figures": [
            _figure("response_percent", s.response.percent, s.response.denominator),
            _figure("csat_percent", s.csat.percent, s.csat.denominator),
            _figure("nps", s.nps, s.recommend.answers),
            _figure("product_quality_average", s.product_quality.average, s.product_quality.answers),
            _figure("workmanship_average", s.workmanship.average, s.workmanship.answers),
            _figure("installer_conduct_average", s.installer_conduct.average, s.installer_conduct.answers),
            _figure("low_scores", s.low, s.answered),
        ],
    }
