"""The satisfaction report: how customers rated the work, per installer, per owner, per pipeline
and for the team, over a chosen period and week by week.

Every figure is computed here, when asked, from the Survey rows; nothing is stored. The surveys
counted are those whose invitation went out in the period (``invited_at``), answered or not, so
the response rate and the scores describe the same surveys; a survey counts in the week of its
invitation (weeks as in crm.reports: 7-day steps from the period's first day, in
BUSINESS_TIME_ZONE).

- Each 1–5 question (product quality, workmanship, installer conduct): the average of the
  answers given to it and how many gave each score. A question left blank is not an answer.
- CSAT: the share of satisfied answers, the answers scoring 4 or 5 over the three 1–5
  questions together ÷ all the answers to those questions (a survey answering all three counts
  three answers).
- Recommendation (0–10): the Net Promoter Score, % promoters (9–10) − % detractors (0–6) of
  those who answered that question, from −100 to +100; 7–8 are passives.
- Response rate: surveys answered (at least one score) ÷ surveys sent.
- Low-score surveys: answered surveys with a 1–5 score at or below Survey.LOW_SCORE or a
  recommendation at or below Survey.LOW_RECOMMEND (the rule that opens a recovery call).

A survey counts for the job's owner and pipeline, and for each installer recorded on it (copied
from the job when the contact answers, so a later change of crew does not move old answers); a
survey with two installers counts for both, so installer rows can add up to more than the team.
Surveys with no installer recorded have their own row.

A report is four queries whatever the amount of data: the surveys, their installers, the names
of the people and the names of the pipelines.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from crm import charts
from crm.models import Pipeline, Survey
from crm.report_tables import Cell, FigureChart, day_label, percent, rounded, week_label, weekly_chart
from crm.reports import Period, Ratio
from crm.text import person_name, spreadsheet_safe

TEAM = "team"
OWNER = "owner"
INSTALLER = "installer"
PIPELINE = "pipeline"
DIMENSIONS = (TEAM, OWNER, INSTALLER, PIPELINE)
# The 1–5 questions, in the order of the survey page.
SCORE_QUESTIONS = Survey.SCORE_QUESTIONS
QUESTION_TITLES = {
    "product_quality": gettext_lazy("Product quality"),
    "workmanship": gettext_lazy("Workmanship"),
    "installer_conduct": gettext_lazy("Installer conduct"),
}
PROMOTER_FROM = 9
DETRACTOR_UP_TO = 6
# A 1–5 answer at or above this is a satisfied customer (CSAT).
SATISFIED_FROM = 4


# --- Figures ------------------------------------------------------------------------------------


@dataclass
class Distribution:
    """How many answered each score of one question (``counts[i]`` is the count of ``low + i``)."""

    low: int
    high: int
    counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (self.high - self.low + 1)

    def add(self, score: int | None) -> None:
        if score is not None:
            self.counts[score - self.low] += 1

    def count(self, score: int) -> int:
        return self.counts[score - self.low]

    @property
    def scores(self) -> list[tuple[int, int]]:
        """(score, how many) from the lowest score to the highest."""
        return [(self.low + index, count) for index, count in enumerate(self.counts)]

    @property
    def answers(self) -> int:
        return sum(self.counts)

    @property
    def total(self) -> int:
        return sum(score * count for score, count in self.scores)

    @property
    def average(self) -> float | None:
        return self.total / self.answers if self.answers else None


def _scores() -> Distribution:
    return Distribution(1, 5)


def _recommendations() -> Distribution:
    return Distribution(0, 10)


@dataclass
class Satisfaction:
    """The figures of a set of surveys (one group, the whole period or one week)."""

    # Surveys sent ÷ answered.
    response: Ratio = field(default_factory=Ratio)
    product_quality: Distribution = field(default_factory=_scores)
    workmanship: Distribution = field(default_factory=_scores)
    installer_conduct: Distribution = field(default_factory=_scores)
    recommend: Distribution = field(default_factory=_recommendations)
    # Answered surveys with a low score.
    low: int = 0

    @property
    def invited(self) -> int:
        return self.response.denominator

    @property
    def answered(self) -> int:
        return self.response.numerator

    def question(self, name: str) -> Distribution:
        return getattr(self, name)

    @property
    def csat(self) -> Ratio:
        """Answers scoring 4 or 5 ÷ all answers, over the three 1–5 questions together."""
        questions = [self.question(name) for name in SCORE_QUESTIONS]
        satisfied = sum(count for q in questions for score, count in q.scores if score >= SATISFIED_FROM)
        return Ratio(satisfied, sum(q.answers for q in questions))

    @property
    def promoters(self) -> int:
        return sum(count for score, count in self.recommend.scores if score >= PROMOTER_FROM)

    @property
    def detractors(self) -> int:
        return sum(count for score, count in self.recommend.scores if score <= DETRACTOR_UP_TO)

    @property
    def passives(self) -> int:
        return self.recommend.answers - self.promoters - self.detractors

    @property
    def nps(self) -> float | None:
        """% promoters − % detractors, from −100 to +100; None when nobody answered."""
        answers = self.recommend.answers
        return 100 * (self.promoters - self.detractors) / answers if answers else None

    @property
    def low_share(self) -> Ratio:
        return Ratio(self.low, self.answered)


@dataclass
class Group:
    """One row of the report: an owner, an installer, a pipeline or the team, with its figures
    for the whole period and for each week. ``key`` is the person's or pipeline's id; None for
    the team and for the surveys with no installer recorded."""

    dimension: str
    key: int | None
    name: str
    total: Satisfaction
    weeks: list[Satisfaction]

    @classmethod
    def empty(cls, dimension: str, key: int | None, name: str, weeks: int) -> Group:
        return cls(dimension, key, name, Satisfaction(), [Satisfaction() for _ in range(weeks)])

    @property
    def is_team(self) -> bool:
        return self.dimension == TEAM


@dataclass
class SatisfactionReport:
    period: Period
    weeks: list[Period]
    # None when the report was asked for one owner only.
    team: Group | None
    owners: list[Group]
    installers: list[Group]
    pipelines: list[Group]

    @property
    def rows(self) -> list[Group]:
        """Every row: the team, then each owner, each installer, each pipeline."""
        return [*([self.team] if self.team else []), *self.owners, *self.installers, *self.pipelines]

    def find(self, dimension: str, key: int | None) -> Group | None:
        return next((row for row in self.rows if row.dimension == dimension and row.key == key), None)


# --- The report ---------------------------------------------------------------------------------


def _tally(weeks: int) -> tuple[Satisfaction, list[Satisfaction]]:
    return Satisfaction(), [Satisfaction() for _ in range(weeks)]


def _count(figures: Satisfaction, answers: dict[str, int | None], *, answered: bool, low: bool) -> None:
    figures.response.denominator += 1
    if not answered:
        return
    figures.response.numerator += 1
    for name, score in answers.items():
        figures.question(name).add(score)
    figures.low += int(low)


def satisfaction_report(*, period: Period, owner: AbstractBaseUser | None = None) -> SatisfactionReport:
    """The figures of the surveys sent in ``period`` per owner, installer and pipeline and for
    the team (or only the surveys of ``owner``'s jobs, with no team row), overall and week by
    week. Four queries, whatever the amount of data."""
    weeks = period.weeks()
    surveys = Survey.objects.filter(invited_at__gte=period.start, invited_at__lt=period.end)
    if owner is not None:
        surveys = surveys.filter(job__owner_id=owner.pk)

    # 1. The surveys and 2. who installed each.
    rows = list(
        surveys.values_list(
            "pk",
            "job__owner_id",
            "job__pipeline_id",
            "invited_at",
            "answered_at",
            "product_quality",
            "workmanship",
            "installer_conduct",
            "recommend",
        ).order_by()
    )
    installed: dict[int, list[int]] = defaultdict(list)
    through = Survey.installers.through.objects.filter(survey__in=surveys.values("pk"))
    for survey_id, user_id in through.values_list("survey_id", "user_id").order_by():
        installed[survey_id].append(user_id)

    groups: dict[tuple[str, int | None], tuple[Satisfaction, list[Satisfaction]]] = defaultdict(
        lambda: _tally(len(weeks))
    )
    if owner is not None:
        # The owner's row is there even before their first survey.
        groups[(OWNER, owner.pk)]
    for pk, owner_id, pipeline_id, invited_at, answered_at, *scores in rows:
        answers = dict(zip((*SCORE_QUESTIONS, "recommend"), scores, strict=True))
        answered = answered_at is not None
        # The domain's own rule for an unhappy answer (the one that opens a recovery call).
        low = answered and Survey(**answers).is_low
        week = period.week_of(period.local_day(invited_at))
        keys: list[tuple[str, int | None]] = [(OWNER, owner_id), (PIPELINE, pipeline_id)]
        keys += [(INSTALLER, user_id) for user_id in installed.get(pk, [])] or [(INSTALLER, None)]
        if owner is None:
            keys.append((TEAM, None))
        for key in keys:
            total, weekly = groups[key]
            _count(total, answers, answered=answered, low=low)
            if 0 <= week < len(weeks):
                _count(weekly[week], answers, answered=answered, low=low)

    # 3. The people's names and 4. the pipelines'.
    people_ids = {key for dimension, key in groups if dimension in (OWNER, INSTALLER) and key is not None}
    people = {user.pk: person_name(user) for user in get_user_model().objects.filter(pk__in=people_ids)}
    pipeline_ids = {key for dimension, key in groups if dimension == PIPELINE}
    pipelines = dict(Pipeline.objects.filter(pk__in=pipeline_ids).values_list("pk", "name"))
    if owner is not None:
        people[owner.pk] = person_name(owner)

    def name(dimension: str, key: int | None) -> str:
        if dimension == TEAM:
            return _("Team")
        if dimension == INSTALLER and key is None:
            return _("No installer recorded")
        names = pipelines if dimension == PIPELINE else people
        return names.get(key, "?") if key is not None else "?"

    def dimension_rows(dimension: str) -> list[Group]:
        found = [Group(d, key, name(d, key), *figures) for (d, key), figures in groups.items() if d == dimension]
        # People and pipelines by name; "no installer recorded" last.
        return sorted(found, key=lambda row: (row.key is None, row.name.casefold(), row.key or 0))

    team = None
    if owner is None:
        team = Group(TEAM, None, name(TEAM, None), *groups[(TEAM, None)])
    return SatisfactionReport(
        period=period,
        weeks=weeks,
        team=team,
        owners=dimension_rows(OWNER),
        installers=dimension_rows(INSTALLER),
        pipelines=dimension_rows(PIPELINE),
    )


# --- What the page shows ------------------------------------------------------------------------


def dimension_title(dimension: str) -> str:
    return {
        TEAM: _("Team"),
        OWNER: _("Owner"),
        INSTALLER: _("Installer"),
        PIPELINE: _("Pipeline"),
    }[dimension]


def number(value: float | None) -> str:
    """For the CSV: one decimal at most, with a dot; empty when there is nothing to count."""
    if value is None:
        return ""
    exact = rounded(value, 1)
    return str(exact).removesuffix(".0") if exact else "0"


def _percent(value: float) -> str:
    """A share on this page: half rounded up (62.5 → 63 %), as in the CSV."""
    return percent(value, half_up=True)


def average(value: float) -> str:
    """4.25 → "4.3" (one decimal, in the active language's notation)."""
    return formats.number_format(rounded(value, 1), decimal_pos=1)


def signed(value: float) -> str:
    """An NPS: +25, 0, −67."""
    rounded_value = rounded(value)
    text = formats.number_format(abs(rounded_value))
    if rounded_value > 0:
        return "+" + text
    return "\u2212" + text if rounded_value < 0 else text


# What each of cells() is, in order (the same order as figure_titles()).
CELLS = ("response", *SCORE_QUESTIONS, "csat", "nps", "low")


def cell_index(key: str) -> int:
    return CELLS.index(key)


def figure_titles() -> list[str]:
    return [
        _("Response rate"),
        str(QUESTION_TITLES["product_quality"]),
        str(QUESTION_TITLES["workmanship"]),
        str(QUESTION_TITLES["installer_conduct"]),
        _("CSAT"),
        _("Net Promoter Score"),
        _("Low-score surveys"),
    ]


def _answers(count: int) -> str:
    return ngettext("%(count)s answer", "%(count)s answers", count) % {"count": count}


def nps_detail(figures: Satisfaction) -> str:
    return _("Promoters: %(promoters)s, detractors: %(detractors)s (of %(answers)s)") % {
        "promoters": figures.promoters,
        "detractors": figures.detractors,
        "answers": figures.recommend.answers,
    }


def nps_week(figures: Satisfaction) -> str:
    """What a week's promoters are counted from, with that week's NPS."""
    if figures.nps is None:
        return nps_detail(figures)
    return _("NPS %(nps)s: %(detail)s") % {"nps": signed(figures.nps), "detail": nps_detail(figures)}


def csat_detail(figures: Satisfaction) -> str:
    csat = figures.csat
    return ngettext(
        "%(satisfied)s of %(count)s answer scored 4 or 5",
        "%(satisfied)s of %(count)s answers scored 4 or 5",
        csat.denominator,
    ) % {"satisfied": csat.numerator, "count": csat.denominator}


def cells(figures: Satisfaction) -> list[Cell]:
    """The table's cells, in the order of figure_titles()."""
    rate = figures.response.percent
    result = [
        Cell(
            _percent(rate) if rate is not None else "",
            _("%(answered)s of %(invited)s answered") % {"answered": figures.answered, "invited": figures.invited},
        )
    ]
    for name in SCORE_QUESTIONS:
        question = figures.question(name)
        mean = question.average
        result.append(Cell(average(mean) if mean is not None else "", _answers(question.answers)))
    csat = figures.csat.percent
    result.append(Cell(_percent(csat) if csat is not None else "", csat_detail(figures)))
    nps = figures.nps
    result.append(Cell(signed(nps) if nps is not None else "", nps_detail(figures)))
    result.append(
        Cell(
            formats.number_format(figures.low) if figures.answered else "",
            ngettext("of %(count)s answered survey", "of %(count)s answered surveys", figures.answered)
            % {"count": figures.answered},
        )
    )
    return result


def distribution_rows(figures: Satisfaction) -> list[tuple[str, list[str], int, str]]:
    """For each 1–5 question: its title, how many gave 1, 2, 3, 4, 5 (with the share), the
    number of answers and the average."""
    rows = []
    for name in SCORE_QUESTIONS:
        question = figures.question(name)
        answers = question.answers
        counts = [
            _("%(count)s (%(share)s)") % {"count": count, "share": _percent(100 * count / answers)}
            if answers
            else formats.number_format(count)
            for _score, count in question.scores
        ]
        mean = question.average
        rows.append((str(QUESTION_TITLES[name]), counts, answers, average(mean) if mean is not None else ""))
    return rows


def figure_charts(report: SatisfactionReport, row: Group) -> list[FigureChart]:
    """A chart per figure, week by week, for one group. The NPS runs from −100 to +100, which
    a chart from zero cannot show, so its two parts are charted: promoters and detractors."""
    labels = [week_label(week) for week in report.weeks]
    weekly = row.weeks
    weekly_cells = [cells(figures) for figures in weekly]
    share = {"y_max": 100, "format_value": _percent, "y_label": "%"}
    score = {"y_max": 5, "format_value": average, "y_label": _("out of 5")}

    def part(figures: Satisfaction, count: int) -> float | None:
        answers = figures.recommend.answers
        return 100 * count / answers if answers else None

    specs: list[tuple[str, str, str, list[float | None], dict[str, Any], list[Cell]]] = [
        (
            "response",
            _("Response rate"),
            "line",
            [f.response.percent for f in weekly],
            share,
            [c[0] for c in weekly_cells],
        )
    ]
    for name in SCORE_QUESTIONS:
        index = cell_index(name)
        specs.append(
            (
                name.replace("_", "-"),
                _("%(question)s, average") % {"question": QUESTION_TITLES[name]},
                "line",
                [f.question(name).average for f in weekly],
                score,
                [c[index] for c in weekly_cells],
            )
        )
    csat = cell_index("csat")
    specs.append(
        (
            "csat",
            _("CSAT"),
            "line",
            [f.csat.percent for f in weekly],
            share,
            [c[csat] for c in weekly_cells],
        )
    )
    promoters = [part(f, f.promoters) for f in weekly]
    detractors = [part(f, f.detractors) for f in weekly]
    specs += [
        (
            "promoters",
            _("Promoters (9–10)"),
            "line",
            promoters,
            share,
            [
                Cell(_percent(value) if value is not None else "", nps_week(f))
                for value, f in zip(promoters, weekly, strict=True)
            ],
        ),
        (
            "detractors",
            _("Detractors (0–6)"),
            "line",
            detractors,
            share,
            [
                Cell(_percent(value) if value is not None else "", nps_detail(f))
                for value, f in zip(detractors, weekly, strict=True)
            ],
        ),
        (
            "low",
            _("Low-score surveys"),
            "bar",
            [f.low if f.answered else None for f in weekly],
            {"format_value": charts.format_number, "y_label": _("surveys"), "integer": True},
            [c[cell_index("low")] for c in weekly_cells],
        ),
    ]
    description = _("Surveys sent in the weeks of %(start)s to %(end)s.") % {
        "start": day_label(report.period.first_day),
        "end": day_label(report.period.last_day),
    }
    return [
        weekly_chart(
            key=key,
            figure=figure,
            who=row.name,
            kind=kind,
            labels=labels,
            values=values,
            cells=week_cells,
            description=description,
            **options,
        )
        for key, figure, kind, values, options, week_cells in specs
    ]


# --- CSV ----------------------------------------------------------------------------------------


def satisfaction_csv(report: SatisfactionReport) -> str:
    """Every row of the report as CSV: the team, each owner, installer and pipeline, with the
    counts each figure comes from. Numbers with a dot, averages and percentages to one decimal,
    empty when there is nothing to count."""
    out = io.StringIO()
    writer = csv.writer(out)
    header = [_("Breakdown"), _("Name"), _("From"), _("To"), _("Surveys sent"), _("Answered"), _("Response rate (%)")]
    for name in SCORE_QUESTIONS:
        title = QUESTION_TITLES[name]
        header += [
            _("%(question)s: answers") % {"question": title},
            _("%(question)s: average") % {"question": title},
            *(_("%(question)s: %(score)s") % {"question": title, "score": score} for score in range(1, 6)),
        ]
    header += [
        _("CSAT: answers scoring 4 or 5"),
        _("CSAT: answers"),
        _("CSAT (%)"),
        _("Recommendation: answers"),
        _("Promoters"),
        _("Passives"),
        _("Detractors"),
        _("Net Promoter Score"),
        _("Low-score surveys"),
    ]
    writer.writerow(header)
    for row in report.rows:
        figures = row.total
        line: list[Any] = [
            dimension_title(row.dimension),
            spreadsheet_safe(row.name),
            report.period.first_day.isoformat(),
            report.period.last_day.isoformat(),
            figures.invited,
            figures.answered,
            number(figures.response.percent),
        ]
        for name in SCORE_QUESTIONS:
            question = figures.question(name)
            line += [question.answers, number(question.average), *question.counts]
        csat = figures.csat
        line += [
            csat.numerator,
            csat.denominator,
            number(csat.percent),
            figures.recommend.answers,
            figures.promoters,
            figures.passives,
            figures.detractors,
            number(figures.nps),
            figures.low,
        ]
        writer.writerow(line)
    return out.getvalue()
