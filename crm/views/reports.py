"""The communication-health page: per owner and for the team, over a chosen period, with a chart
per figure and a CSV export of the table (``?format=csv``).

Managers see every owner and the team; anyone else sees their own figures only, and asking for
someone else's (``?owner=<id>``) is refused. The figures are computed by crm.reports.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.forms import Form
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import formats
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET

from crm import charts
from crm import reports_satisfaction as satisfaction
from crm.access import StaffRequest, is_manager, staff_required
from crm.dates import duration_text
from crm.forms.reports import HealthForm, SatisfactionForm
from crm.models import AccessRecord, Pipeline, Survey
from crm.report_tables import Cell, FigureChart, day_label, percent, week_label, weekly_chart
from crm.reports import (
    Figures,
    HealthReport,
    InstallerWindows,
    OwnerHealth,
    Period,
    health_csv,
    health_report,
    windows_by_installer,
)
from crm.selectors import staff_users
from crm.text import person_name
from crm.views.access_log import seen

# --- What the page shows ------------------------------------------------------------------------


def silence_title(report: HealthReport) -> str:
    days = {days for _name, days in report.silence_days}
    if len(days) == 1:
        (limit,) = days
        return ngettext("Jobs silent more than %(days)s day", "Jobs silent more than %(days)s days", limit) % {
            "days": limit
        }
    return _("Jobs silent too long")


def cells(figures: Figures) -> list[Cell]:
    kept, notice, ack, answer, silent, nudges, windows = (
        figures.kept_on_time,
        figures.proactive_notice,
        figures.acknowledge,
        figures.answer,
        figures.silent_jobs,
        figures.nudges,
        figures.windows_kept,
    )
    return [
        Cell(
            percent(kept.percent) if kept.percent is not None else "",
            _("%(kept)s of %(total)s promises") % {"kept": kept.numerator, "total": kept.denominator},
        ),
        Cell(
            percent(notice.percent) if notice.percent is not None else "",
            ngettext(
                "%(told)s of %(total)s slip told in time",
                "%(told)s of %(total)s slips told in time",
                notice.denominator,
            )
            % {"told": notice.numerator, "total": notice.denominator},
        ),
        Cell(
            duration_text(ack.median) if ack.median is not None else "",
            _("%(done)s of %(total)s acknowledged") % {"done": ack.count, "total": ack.total},
        ),
        Cell(
            duration_text(answer.median) if answer.median is not None else "",
            _("%(done)s of %(total)s answered") % {"done": answer.count, "total": answer.total},
        ),
        Cell(
            formats.number_format(silent.numerator) if silent.denominator else "",
            ngettext("of %(total)s active job", "of %(total)s active jobs", silent.denominator)
            % {"total": silent.denominator},
        ),
        Cell(
            formats.number_format(nudges),
            ngettext("digest of promises about to slip", "digests of promises about to slip", nudges),
        ),
        Cell(
            percent(windows.percent) if windows.percent is not None else "",
            ngettext(
                "%(kept)s of %(total)s arrival window", "%(kept)s of %(total)s arrival windows", windows.denominator
            )
            % {"kept": windows.numerator, "total": windows.denominator},
        ),
    ]


def installer_cells(row: InstallerWindows) -> list[Cell]:
    """An installer's arrival windows: kept by their first end, and the slips told in time."""
    kept, notice = row.kept, row.notice
    return [
        Cell(
            percent(kept.percent) if kept.percent is not None else "",
            ngettext("%(kept)s of %(total)s arrival window", "%(kept)s of %(total)s arrival windows", kept.denominator)
            % {"kept": kept.numerator, "total": kept.denominator},
        ),
        Cell(
            percent(notice.percent) if notice.percent is not None else "",
            ngettext(
                "%(told)s of %(total)s slip told in time",
                "%(told)s of %(total)s slips told in time",
                notice.denominator,
            )
            % {"told": notice.numerator, "total": notice.denominator},
        ),
    ]


def figure_titles(report: HealthReport) -> list[str]:
    return [
        _("Promises kept on time"),
        _("Proactive notice"),
        _("Median time to acknowledge"),
        _("Median time to first answer"),
        silence_title(report),
        _("Nudges"),
        _("Arrival windows kept"),
    ]


# A chart of lengths of time is drawn in the largest unit that keeps its tallest bar above 2.
TIME_UNITS = (("days", 86400), ("hours", 3600), ("minutes", 60))


def time_axis(lengths: list[timedelta | None]) -> tuple[list[float | None], dict[str, Any]]:
    """Bars of lengths of time in the unit people use for them — minutes, hours or days, whole
    steps up the axis ("0, 1, 2, 3, 4 minutes", never "0.0100 minutes") — each bar labelled with
    its exact duration."""
    longest = max((length.total_seconds() for length in lengths if length is not None), default=0)
    name, seconds = next(((n, s) for n, s in TIME_UNITS if longest >= 2 * s), TIME_UNITS[-1])
    labels = {"days": _("days"), "hours": _("hours"), "minutes": _("minutes")}
    values = [length.total_seconds() / seconds if length is not None else None for length in lengths]
    options = {
        "format_value": lambda value: duration_text(timedelta(seconds=value * seconds)),
        "y_label": labels[name],
        "integer": True,
    }
    return values, options


def figure_charts(report: HealthReport, row: OwnerHealth) -> list[FigureChart]:
    """A chart per figure, week by week, for one owner or the team."""
    labels = [week_label(week) for week in report.weeks]
    titles = figure_titles(report)
    weekly_cells = [cells(figures) for figures in row.weeks]
    acknowledge, acknowledge_axis = time_axis([f.acknowledge.median for f in row.weeks])
    answer, answer_axis = time_axis([f.answer.median for f in row.weeks])
    specs: list[tuple[str, str, list[float | None], dict[str, Any]]] = [
        (
            "kept",
            "line",
            [f.kept_on_time.percent for f in row.weeks],
            {"y_max": 100, "format_value": percent, "y_label": "%"},
        ),
        (
            "notice",
            "line",
            [f.proactive_notice.percent for f in row.weeks],
            {"y_max": 100, "format_value": percent, "y_label": "%"},
        ),
        ("acknowledge", "bar", acknowledge, acknowledge_axis),
        ("answer", "bar", answer, answer_axis),
        (
            "silent",
            "bar",
            [f.silent_jobs.numerator if f.silent_jobs.denominator else None for f in row.weeks],
            {"format_value": charts.format_number, "y_label": _("jobs"), "integer": True},
        ),
        (
            "nudges",
            "bar",
            [float(f.nudges) for f in row.weeks],
            {"format_value": charts.format_number, "y_label": _("digests"), "integer": True},
        ),
        (
            "windows",
            "line",
            [f.windows_kept.percent for f in row.weeks],
            {"y_max": 100, "format_value": percent, "y_label": "%"},
        ),
    ]
    description = _("Weeks of %(start)s to %(end)s.") % {
        "start": day_label(report.period.first_day),
        "end": day_label(report.period.last_day),
    }
    return [
        weekly_chart(
            key=key,
            figure=titles[index],
            who=row.name,
            kind=kind,
            labels=labels,
            values=values,
            cells=[week_cells[index] for week_cells in weekly_cells],
            description=description,
            **options,
        )
        for index, (key, kind, values, options) in enumerate(specs)
    ]


# --- The page -----------------------------------------------------------------------------------


def _csv_response(request: StaffRequest, text: str, name: str) -> HttpResponse:
    """An export, recorded in the access log."""
    seen(request, AccessRecord.Kind.EXPORT, subject=name)
    # The byte-order mark makes spreadsheet programs read the file as UTF-8.
    response = HttpResponse("\ufeff" + text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, name) or "attachment"
    return response


def _invalid_response(
    request: StaffRequest, form: Form, *, template: str, context: dict[str, Any], wants_csv: bool
) -> HttpResponse:
    """A period or filter that makes no sense: the errors as text for a CSV download, else the
    page again with its form and what was typed (400)."""
    if wants_csv:
        problems = [str(error) for errors in form.errors.values() for error in errors]
        return HttpResponse(" ".join(problems), status=400, content_type="text/plain; charset=utf-8")
    context["values"] = {"from": request.GET.get("from", ""), "to": request.GET.get("to", "")}
    return render(request, template, context, status=400)


def _query(period: Period, **extra: Any) -> str:
    return "?" + urlencode({"from": period.first_day, "to": period.last_day, **extra})


def _health_for(
    user: Any, *, period: Period, owner_id: int | None, staff: list[Any]
) -> tuple[HealthReport, OwnerHealth]:
    """Every figure on the page comes from here. A manager gets every owner and the team, with
    the charts of the team or of ``owner_id``; anyone else gets their own figures, and a 403 when
    asking for someone else's."""
    if not is_manager(user):
        if owner_id is not None and owner_id != user.pk:
            raise PermissionDenied
        report = health_report(period=period, owner=user)
        return report, report.owners[0]
    report = health_report(period=period)
    if owner_id is None:
        assert report.team is not None
        return report, report.team
    selected = report.for_owner(owner_id)
    if selected is None:
        # A colleague with nothing in the period: empty charts, not an error.
        person = next((u for u in staff if u.pk == owner_id), None)
        if person is None:
            raise Http404("No such owner")
        selected = OwnerHealth.empty(person.pk, person_name(person), len(report.weeks))
    return report, selected


@staff_required
@require_GET
def health(request: StaffRequest) -> HttpResponse:
    form = HealthForm(request.GET)
    manager = is_manager(request.user)
    wants_csv = request.GET.get("format") == "csv"
    context: dict[str, Any] = {"nav": "health", "form": form, "manager": manager}
    if not form.is_valid():
        return _invalid_response(
            request, form, template="crm/reports/health.html", context=context, wants_csv=wants_csv
        )

    period = form.period
    staff = list(staff_users()) if manager else []
    report, selected = _health_for(request.user, period=period, owner_id=form.cleaned_data["owner"], staff=staff)
    if wants_csv:
        name = f"communication-health-{report.period.first_day}-{report.period.last_day}.csv"
        return _csv_response(request, health_csv(report), name)
    context.update(
        {
            "values": {"from": period.first_day.isoformat(), "to": period.last_day.isoformat()},
            "report": report,
            "period": period,
            "staff": staff,
            "selected": selected,
            "titles": figure_titles(report),
            "silence_title": silence_title(report),
            "table": [(row, cells(row.total), _query(period, owner=row.owner_id)) for row in report.owners],
            "team_cells": cells(report.team.total) if report.team else None,
            "installers": [
                (row, installer_cells(row))
                for row in windows_by_installer(period=period, installer=None if manager else request.user)
            ],
            "charts": figure_charts(report, selected),
            "csv_url": _query(period, format="csv"),
            "team_url": _query(period),
            "time_zone": settings.BUSINESS_TIME_ZONE,
        }
    )
    return render(request, "crm/reports/health.html", context)


# --- The satisfaction page ----------------------------------------------------------------------


def _satisfaction_for(
    user: Any, *, period: Period, chosen: tuple[str, int] | None
) -> tuple[satisfaction.SatisfactionReport, satisfaction.Group]:
    """Every figure on the page comes from here. A manager gets every survey; anyone else the
    surveys of their own jobs, and a 403 when asking for another owner's."""
    manager = is_manager(user)
    if not manager and chosen is not None and chosen[0] == satisfaction.OWNER and chosen[1] != user.pk:
        raise PermissionDenied
    report = satisfaction.satisfaction_report(period=period, owner=None if manager else user)
    if chosen is None:
        selected = report.team if manager else report.find(satisfaction.OWNER, user.pk)
        assert selected is not None
        return report, selected
    dimension, key = chosen
    selected = report.find(dimension, key)
    if selected is None:
        # Someone or a pipeline with no survey in the period: empty charts, not an error.
        if dimension == satisfaction.PIPELINE:
            name = Pipeline.objects.filter(pk=key).values_list("name", flat=True).first()
        else:
            person = get_user_model().objects.filter(pk=key).first()
            name = person_name(person) if person else None
        if name is None:
            raise Http404("Nothing to show")
        selected = satisfaction.Group.empty(dimension, key, name, len(report.weeks))
    return report, selected


@staff_required
@require_GET
def satisfaction_page(request: StaffRequest) -> HttpResponse:
    """Satisfaction per question, NPS and response rate, per installer, owner and pipeline and
    for the team, over a period, with a chart per figure and a CSV export (``?format=csv``)."""
    form = SatisfactionForm(request.GET)
    manager = is_manager(request.user)
    wants_csv = request.GET.get("format") == "csv"
    context: dict[str, Any] = {"nav": "satisfaction", "form": form, "manager": manager}
    if not form.is_valid():
        return _invalid_response(
            request, form, template="crm/reports/satisfaction.html", context=context, wants_csv=wants_csv
        )

    period = form.period
    chosen = form.chosen
    report, selected = _satisfaction_for(request.user, period=period, chosen=chosen)
    if wants_csv:
        name = f"satisfaction-{period.first_day}-{period.last_day}.csv"
        return _csv_response(request, satisfaction.satisfaction_csv(report), name)

    def linked(rows: list[Any], dimension: str) -> list[tuple[Any, list[Any], str]]:
        return [
            (row, satisfaction.cells(row.total), _query(period, **{dimension: row.key}) if row.key else "")
            for row in rows
        ]

    selected_cells = satisfaction.cells(selected.total)
    sections = [
        ("owners", _("Per owner") if manager else _("Your jobs"), _("Owner"), linked(report.owners, "owner")),
        ("installers", _("Per installer"), _("Installer"), linked(report.installers, "installer")),
        ("pipelines", _("Per pipeline"), _("Pipeline"), linked(report.pipelines, "pipeline")),
    ]
    context.update(
        {
            "values": {"from": period.first_day.isoformat(), "to": period.last_day.isoformat()},
            "chosen": chosen,
            "report": report,
            "period": period,
            "selected": selected,
            "titles": satisfaction.figure_titles(),
            "team_cells": satisfaction.cells(report.team.total) if report.team else None,
            "team_url": _query(period),
            "sections": sections,
            "distribution": satisfaction.distribution_rows(selected.total),
            "selected_csat": selected_cells[satisfaction.cell_index("csat")],
            "selected_nps": selected_cells[satisfaction.cell_index("nps")],
            "charts": satisfaction.figure_charts(report, selected),
            "csv_url": _query(period, format="csv"),
            "time_zone": settings.BUSINESS_TIME_ZONE,
            "low_score": Survey.LOW_SCORE,
            "low_recommend": Survey.LOW_RECOMMEND,
        }
    )
    return render(request, "crm/reports/satisfaction.html", context)


urlpatterns: list[URLPattern] = [
    path("reports/health/", health, name="health"),
    path("reports/satisfaction/", satisfaction_page, name="satisfaction"),
]
