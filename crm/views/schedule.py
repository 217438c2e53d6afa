"""The schedule: who goes where, a day (default today, on the team's clock) or a week (``?week=``
a Monday) at a time, for one person (``?who=<id>``; default: the signed-in person) or the team
(``?who=team``). Each person's day is a row over the hours 07:00–20:00; each visit a block placed
by its arrival window, followed by a lighter strip for the time the crew expects to stay; the free
time between is left empty and said ("Free 10:00–14:00"). Late visits and visits at risk carry the
word, not only a colour. A block opens the job page's visits section, where the Move form asks
whether to tell the customer and shows what they would read: the schedule itself changes nothing.

Server-rendered with positions computed here (percentages of the hour axis); no JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import User
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm import selectors
from crm.access import StaffRequest, staff_required
from crm.dates import said_date
from crm.ids import id_from_input
from crm.links import as_webcal, staff_calendar_url
from crm.models import Visit
from crm.text import person_name
from crm.workdays import business_today, business_zone, out_of_reach

# The hours the grid shows; a visit outside them is drawn against the edge and says so.
AXIS_START, AXIS_END = time(7), time(20)
AXIS_HOURS = list(range(AXIS_START.hour, AXIS_END.hour))
# Shorter free time is not worth saying (the drive between two visits).
MIN_GAP = timedelta(minutes=30)
# The narrowest block drawn (in % of the axis: about 25 minutes), so that a short window is seen.
MIN_BLOCK_PERCENT = 3.0


def is_late(visit: Visit, now: datetime) -> bool:
    """Late, or was: told they would come after the window, the window over with nobody there, or
    arrived after it."""
    if visit.is_upcoming:
        told_late = visit.expected_at is not None and visit.expected_at > visit.window_end
        return told_late or visit.window_end <= now
    return visit.arrived_at is not None and visit.arrived_at > visit.window_end


@dataclass(frozen=True)
class Axis:
    start: datetime
    end: datetime

    @classmethod
    def of(cls, day: date) -> Axis:
        zone = business_zone()
        return cls(datetime.combine(day, AXIS_START, tzinfo=zone), datetime.combine(day, AXIS_END, tzinfo=zone))

    def clamp(self, moment: datetime) -> datetime:
        return min(max(moment, self.start), self.end)

    def percent(self, moment: datetime) -> float:
        return (self.clamp(moment) - self.start) / (self.end - self.start) * 100


@dataclass(frozen=True)
class Block:
    visit: Visit
    lane: int
    left: float
    width: float
    stay: float
    late: bool
    at_risk: bool
    before_axis: bool
    after_axis: bool

    kind = "visit"

    @property
    def style(self) -> str:
        # Formatted here: a template would print "12,5" in French, which CSS does not read. The
        # stay strip sits inside the block, so its width is relative to the block's.
        stay = self.stay / self.width * 100
        return f"--left:{self.left:.3f}%;--width:{self.width:.3f}%;--stay:{stay:.3f}%;--lane:{self.lane}"


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime
    left: float
    width: float
    whole_day: bool

    kind = "gap"

    @property
    def style(self) -> str:
        return f"--left:{self.left:.3f}%;--width:{self.width:.3f}%"


@dataclass(frozen=True)
class Track:
    """One row of the grid: one person's visits on one day, and the free time between them."""

    label: str
    day: date
    items: list[Block | Gap]
    lanes: int

    @property
    def blocks(self) -> list[Block]:
        return [item for item in self.items if isinstance(item, Block)]


@dataclass(frozen=True)
class Section:
    heading: str
    tracks: list[Track]


def lay_out(visits: list[Visit], day: date, *, label: str, now: datetime) -> Track:
    """``visits`` (window order) placed on ``day``'s axis: each in the first lane where the crew is
    free by its start (two lanes only for a double booking), and the free time they leave."""
    axis = Axis.of(day)
    lane_free_at: list[datetime] = []
    placed: list[Block | Gap] = []
    busy: list[tuple[datetime, datetime]] = []
    for visit in visits:
        lane = next((i for i, free in enumerate(lane_free_at) if free <= visit.window_start), len(lane_free_at))
        if lane == len(lane_free_at):
            lane_free_at.append(visit.busy_until)
        else:
            lane_free_at[lane] = visit.busy_until
        busy.append((visit.window_start, visit.busy_until))
        # A window outside the hours shown still gets a block, against the edge.
        width = max(axis.percent(visit.window_end) - axis.percent(visit.window_start), MIN_BLOCK_PERCENT)
        left = min(axis.percent(visit.window_start), 100 - width)
        late = is_late(visit, now)
        placed.append(
            Block(
                visit=visit,
                lane=lane,
                left=left,
                width=width,
                stay=axis.percent(visit.busy_until) - axis.percent(visit.window_end),
                late=late,
                at_risk=not late and visit.at_risk(now),
                before_axis=visit.window_start < axis.start,
                after_axis=visit.window_end > axis.end,
            )
        )
    cursor = axis.start
    for start, end in [*sorted(busy), (axis.end, axis.end)]:
        start = axis.clamp(start)
        if start - cursor >= MIN_GAP:
            left = axis.percent(cursor)
            placed.append(
                Gap(
                    start=cursor,
                    end=start,
                    left=left,
                    width=axis.percent(start) - left,
                    whole_day=not busy,
                )
            )
        cursor = max(cursor, axis.clamp(end))
    placed.sort(key=lambda item: item.visit.window_start if isinstance(item, Block) else item.start)
    return Track(label=label, day=day, items=placed, lanes=max(1, len(lane_free_at)))


def _row_label(person: User | None) -> str:
    return person_name(person) if person is not None else _("Nobody of the team yet (or a subcontractor)")


def _day_of(visit: Visit) -> date:
    return visit.window_start.astimezone(business_zone()).date()


def _read_day(value: str) -> date:
    """A day from the address (YYYY-MM-DD) within the planning calendar; otherwise a 404."""
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise Http404("No such day") from None
    if out_of_reach(day) is not None:
        raise Http404("No such day")
    return day


def _who(request: StaffRequest, people: list[Any]) -> User | None:
    """Whose schedule: the signed-in person by default, None for the team, or an active staff
    member by id (anyone else is a 404)."""
    value = request.GET.get("who", "")
    if value == "":
        return request.user
    if value == "team":
        return None
    pk = id_from_input(value, User)
    person = next((p for p in people if p.pk == pk), None) if pk is not None else None
    if person is None:
        raise Http404("No such person")
    return person


def _link(**query: Any) -> str:
    query = {key: value for key, value in query.items() if value}
    return reverse("crm:schedule") + (f"?{urlencode(query)}" if query else "")


@staff_required
@require_GET
def schedule(request: StaffRequest) -> HttpResponse:
    people = list(selectors.staff_users())
    who = _who(request, people)
    who_param = request.GET.get("who", "")
    week = "week" in request.GET
    today = business_today()
    if week:
        chosen = _read_day(request.GET["week"]) if request.GET["week"] else today
        first = chosen - timedelta(days=chosen.weekday())
        days = [first + timedelta(days=n) for n in range(7)]
        step = timedelta(days=7)
    else:
        first = _read_day(request.GET["day"]) if request.GET.get("day") else today
        days = [first]
        step = timedelta(days=1)
    zone = business_zone()
    starts = datetime.combine(days[0], time.min, tzinfo=zone)
    ends = datetime.combine(days[-1] + timedelta(days=1), time.min, tzinfo=zone)
    rows = selectors.schedule(starts, ends, who)
    now = timezone.now()

    def track(row: selectors.ScheduleRow, day: date, label: str) -> Track:
        return lay_out([v for v in row.visits if _day_of(v) == day], day, label=label, now=now)

    if not week:
        sections = [Section(heading="", tracks=[track(row, first, _row_label(row.person)) for row in rows])]
    elif who is not None:
        sections = [Section(heading="", tracks=[track(rows[0], day, said_date(day, "D j M")) for day in days])]
    else:
        # Everyone on the team every day (a free day is worth seeing); the visits nobody of the
        # team is on, only on the days there are some.
        sections = [
            Section(
                heading=said_date(day, "l j F"),
                tracks=[
                    track(row, day, _row_label(row.person))
                    for row in rows
                    if row.person is not None or any(_day_of(v) == day for v in row.visits)
                ],
            )
            for day in days
        ]
    mode = "week" if week else "day"
    # One token for both addresses (a signed token carries the second it was made).
    calendar_url = staff_calendar_url(request.user)
    return render(
        request,
        "crm/schedule/page.html",
        {
            "nav": "schedule",
            "week": week,
            "days": days,
            "first": first,
            "today": today,
            "who": who,
            "who_param": who_param,
            "is_team": who is None,
            "people": people,
            "sections": sections,
            "anyone": any(section.tracks for section in sections),
            "hours": AXIS_HOURS,
            "visit_count": len({v.pk for row in rows for v in row.visits}),
            "previous_url": _link(**{mode: (first - step).isoformat(), "who": who_param}),
            "next_url": _link(**{mode: (first + step).isoformat(), "who": who_param}),
            "now_url": _link(**{mode: "" if not week else today.isoformat(), "who": who_param}),
            "day_url": _link(day=first.isoformat(), who=who_param),
            "week_url": _link(week=first.isoformat(), who=who_param),
            "calendar_url": calendar_url,
            "webcal_url": as_webcal(calendar_url),
        },
    )


urlpatterns: list[URLPattern] = [
    path("schedule/", schedule, name="schedule"),
]
