"""crm.reports_satisfaction: the satisfaction figures, from a scripted set of answers whose truth
is known.

The period is the eight weeks from Monday 2 March to Sunday 26 April 2026 (the default when the
clock reads 26 April). Ten surveys are sent in it, on jobs of two owners (bob, alice), two
pipelines (Installation, Repair) and three installers (marc, paul, zoe), and eight are answered
(quality, workmanship, conduct, recommend; "-" left blank):

  S1  bob    Installation  marc        Tue 3 Mar         5 5 5 10
  S2  bob    Installation  marc        Sun 8 Mar 23:30   4 4 5 9    (Paris time: still week 1)
  S3  bob    Installation  marc, paul  Tue 10 Mar        3 4 4 8
  S4  bob    Repair        paul        Tue 17 Mar        2 3 4 6    low
  S5  alice  Installation  zoe         Tue 31 Mar        5 4 5 10
  S6  alice  Installation  zoe         Tue 31 Mar        not answered
  S7  alice  Repair        paul, zoe   Tue 7 Apr         1 2 2 3    low
  S8  alice  Repair        (nobody)    Tue 21 Apr        4 5 5 7
  S9  alice  Repair        paul, zoe   Wed 22 Apr        5 - - -    (one click from the email)
  S10 alice  Repair        paul        Tue 14 Apr        not answered

Two more, answered 1 1 1 0, are sent just outside the period (Sun 1 Mar 23:30 and Mon 27 Apr
00:00, Paris time) and must not count.

The truth, worked out by hand:

                 sent answered  quality     workmanship  conduct      promoters/detractors  NPS    low
  team           10   8  80%    29/8 3.625  27/7 3.857   30/7 4.286   3 / 2 of 7            +14.3  2
  bob             4   4 100%    14/4 3.5    16/4 4       18/4 4.5     2 / 1 of 4            +25    1
  alice           6   4 66.7%   15/4 3.75   11/3 3.667   12/3 4       1 / 1 of 3            0      1
  Installation    5   4  80%    17/4 4.25   17/4 4.25    19/4 4.75    3 / 0 of 4            +75    0
  Repair          5   4  80%    12/4 3      10/3 3.333   11/3 3.667   0 / 2 of 3            -66.7  2
  marc            3   3 100%    12/3 4      13/3 4.333   14/3 4.667   2 / 0 of 3            +66.7  0
  paul            5   4  80%    11/4 2.75    9/3 3       10/3 3.333   0 / 2 of 3            -66.7  2
  zoe             4   3  75%    11/3 3.667   6/2 3        7/2 3.5     1 / 1 of 2            0      1
  no installer    1   1 100%     4/1 4       5/1 5        5/1 5        0 / 0 of 1            0      0

CSAT, the answers scoring 4 or 5 over the three 1–5 questions together (S1 3 of 3, S2 3/3, S3 2/3,
S4 1/3, S5 3/3, S7 0/3, S8 3/3, S9 1/1):

  team 16/22 72.7%   bob 9/12 75%   alice 7/10 70%   Installation 11/12 91.7%   Repair 5/10 50%
  marc 8/9 88.9%     paul 4/10 40%  zoe 4/7 57.1%    no installer 3/3 100%
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User

from crm.models import Contact, Customer, Job, Pipeline, Survey
from crm.report_tables import Cell
from crm.reports import Period
from crm.reports_satisfaction import (
    INSTALLER,
    OWNER,
    PIPELINE,
    TEAM,
    Distribution,
    Group,
    Satisfaction,
    cell_index,
    cells,
    satisfaction_csv,
    satisfaction_report,
)
from crm.services.jobs import job_create, job_update_details
from crm.services.surveys import survey_answer, survey_invite
from tests.conftest import INSTALLATION_STAGES, make_pipeline

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
PERIOD = Period(date(2026, 3, 2), date(2026, 4, 26))
END = datetime(2026, 4, 26, 12, 0, tzinfo=PARIS)


def at(day: str, hour: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day} {hour}").replace(tzinfo=PARIS)


@dataclass
class World:
    marc: User
    paul: User
    zoe: User
    installation: Pipeline
    repair: Pipeline
    surveys: dict[str, Survey]


def staff(username: str, first_name: str) -> User:
    return User.objects.create_user(username, f"{username}@example.com", "pw", first_name=first_name, is_staff=True)


# (name, owner, pipeline, installers, invited at, answers or None)
SCRIPT: list[tuple[str, str, str, tuple[str, ...], datetime, tuple[int | None, ...] | None]] = [
    ("S1", "bob", "Installation", ("marc",), at("2026-03-03"), (5, 5, 5, 10)),
    ("S2", "bob", "Installation", ("marc",), at("2026-03-08", "23:30"), (4, 4, 5, 9)),
    ("S3", "bob", "Installation", ("marc", "paul"), at("2026-03-10"), (3, 4, 4, 8)),
    ("S4", "bob", "Repair", ("paul",), at("2026-03-17"), (2, 3, 4, 6)),
    ("S5", "alice", "Installation", ("zoe",), at("2026-03-31"), (5, 4, 5, 10)),
    ("S6", "alice", "Installation", ("zoe",), at("2026-03-31", "10:05"), None),
    ("S7", "alice", "Repair", ("paul", "zoe"), at("2026-04-07"), (1, 2, 2, 3)),
    ("S8", "alice", "Repair", (), at("2026-04-21"), (4, 5, 5, 7)),
    ("S9", "alice", "Repair", ("paul", "zoe"), at("2026-04-22"), (5, None, None, None)),
    ("S10", "alice", "Repair", ("paul",), at("2026-04-14"), None),
    ("before", "bob", "Repair", ("marc",), at("2026-03-01", "23:30"), (1, 1, 1, 0)),
    ("after", "alice", "Installation", ("zoe",), at("2026-04-27", "00:00"), (1, 1, 1, 0)),
]


def build_world(time_machine, *, bob: User, alice: User, customer: Customer) -> World:
    """The scripted surveys, invited and answered through crm.services.surveys; the clock ends
    at noon on Sunday 26 April."""
    time_machine.move_to(at("2026-03-02", "09:00"), tick=False)
    people = {"bob": bob, "alice": alice, "marc": staff("marc", "Marc"), "paul": staff("paul", "Paul")}
    people["zoe"] = staff("zoe", "Zoé")
    pipelines = {
        "Installation": make_pipeline("Installation", INSTALLATION_STAGES),
        "Repair": make_pipeline("Repair", [("Reported", True, 0), ("Diagnosed", True, 2), ("Fixed", True, 3)]),
    }
    made = []
    for name, owner, pipeline, installers, invited_at, answers in SCRIPT:
        contact = Contact.objects.create(customer=customer, name=f"Contact {name}", email=f"{name.lower()}@example.com")
        job = job_create(
            customer=customer,
            pipeline=pipelines[pipeline],
            owner=people[owner],
            title=f"Job {name}",
            actor=people[owner],
            contacts=[contact],
            start_date=date(2026, 3, 2),
        )
        job = job_update_details(job=job, actor=people[owner], installers=[people[i] for i in installers])
        made.append((name, job, contact, invited_at, answers))
    time_machine.move_to(END, tick=False)
    surveys = {}
    for name, job, contact, invited_at, answers in made:
        survey = survey_invite(job=job, contact=contact, now=invited_at)
        assert survey is not None
        if answers is not None:
            quality, workmanship, conduct, recommend = answers
            survey = survey_answer(
                survey=survey,
                product_quality=quality,
                workmanship=workmanship,
                installer_conduct=conduct,
                recommend=recommend,
            )
        surveys[name] = survey
    return World(people["marc"], people["paul"], people["zoe"], pipelines["Installation"], pipelines["Repair"], surveys)


@pytest.fixture
def world(time_machine, bob: User, alice: User, customer: Customer) -> World:
    return build_world(time_machine, bob=bob, alice=alice, customer=customer)


def summary(figures: Satisfaction) -> tuple:
    """(sent, answered, (sum, answers) per 1–5 question, promoters, passives, detractors, low)."""
    return (
        figures.invited,
        figures.answered,
        *[(figures.question(name).total, figures.question(name).answers) for name in Survey.SCORE_QUESTIONS],
        figures.promoters,
        figures.passives,
        figures.detractors,
        figures.low,
    )


def by_name(rows: list[Group]) -> dict[str, tuple]:
    return {row.name: summary(row.total) for row in rows}


# --- The figures --------------------------------------------------------------------------------


def test_the_team(world: World) -> None:
    report = satisfaction_report(period=PERIOD)
    team = report.team
    assert team is not None and team.is_team and team.name == "Team"
    figures = team.total
    assert summary(figures) == (10, 8, (29, 8), (27, 7), (30, 7), 3, 2, 2, 2)
    assert figures.response.percent == 80
    assert figures.product_quality.average == 29 / 8 == 3.625
    assert figures.workmanship.average == 27 / 7
    assert figures.installer_conduct.average == 30 / 7
    assert figures.nps == 100 * (3 - 2) / 7
    assert figures.product_quality.scores == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 3)]
    assert figures.workmanship.counts == [0, 1, 1, 3, 2]
    assert figures.installer_conduct.counts == [0, 1, 0, 2, 4]
    assert figures.recommend.counts == [0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 2]


def test_per_owner(world: World) -> None:
    report = satisfaction_report(period=PERIOD)
    assert by_name(report.owners) == {
        "Alice Martin": (6, 4, (15, 4), (11, 3), (12, 3), 1, 1, 1, 1),
        "Bob Durand": (4, 4, (14, 4), (16, 4), (18, 4), 2, 1, 1, 1),
    }
    alice, bob = report.owners
    assert alice.total.response.percent == pytest.approx(200 / 3)
    assert (alice.total.product_quality.average, alice.total.workmanship.average) == (3.75, 11 / 3)
    assert alice.total.nps == 0
    assert (bob.total.response.percent, bob.total.installer_conduct.average, bob.total.nps) == (100, 4.5, 25)


def test_per_pipeline(world: World) -> None:
    report = satisfaction_report(period=PERIOD)
    assert by_name(report.pipelines) == {
        "Installation": (5, 4, (17, 4), (17, 4), (19, 4), 3, 1, 0, 0),
        "Repair": (5, 4, (12, 4), (10, 3), (11, 3), 0, 1, 2, 2),
    }
    installation, repair = report.pipelines
    assert (installation.key, repair.key) == (world.installation.pk, world.repair.pk)
    assert installation.total.nps == 75
    assert repair.total.nps == pytest.approx(-200 / 3)
    assert installation.total.product_quality.average == 4.25


def test_per_installer(world: World) -> None:
    report = satisfaction_report(period=PERIOD)
    assert by_name(report.installers) == {
        "Marc": (3, 3, (12, 3), (13, 3), (14, 3), 2, 1, 0, 0),
        "Paul": (5, 4, (11, 4), (9, 3), (10, 3), 0, 1, 2, 2),
        "Zoé": (4, 3, (11, 3), (6, 2), (7, 2), 1, 0, 1, 1),
        "No installer recorded": (1, 1, (4, 1), (5, 1), (5, 1), 0, 1, 0, 0),
    }
    assert [row.key for row in report.installers] == [world.marc.pk, world.paul.pk, world.zoe.pk, None]
    marc, paul, zoe, _nobody = report.installers
    assert marc.total.nps == pytest.approx(200 / 3)
    assert paul.total.product_quality.average == 2.75
    assert zoe.total.response.percent == 75


def test_week_by_week(world: World) -> None:
    report = satisfaction_report(period=PERIOD)
    assert [week.first_day for week in report.weeks] == [date(2026, 3, 2 + 7 * n) for n in range(5)] + [
        date(2026, 4, 6),
        date(2026, 4, 13),
        date(2026, 4, 20),
    ]
    team = report.team
    assert team is not None
    assert [(w.answered, w.invited) for w in team.weeks] == [
        (2, 2),
        (1, 1),
        (1, 1),
        (0, 0),
        (1, 2),
        (1, 1),
        (0, 1),
        (2, 2),
    ]
    assert [w.product_quality.average for w in team.weeks] == [4.5, 3, 2, None, 5, 1, None, 4.5]
    assert [w.low for w in team.weeks] == [0, 0, 1, 0, 0, 1, 0, 0]
    assert [w.nps for w in team.weeks] == [100, 0, -100, None, 100, -100, None, 0]
    paul = report.find(INSTALLER, world.paul.pk)
    assert paul is not None
    assert [(w.answered, w.invited) for w in paul.weeks] == [
        (0, 0),
        (1, 1),
        (1, 1),
        (0, 0),
        (0, 0),
        (1, 1),
        (0, 1),
        (1, 1),
    ]


def test_only_the_surveys_sent_in_the_period_count(world: World) -> None:
    report = satisfaction_report(period=Period(date(2026, 3, 1), date(2026, 3, 8)))
    assert report.team is not None
    # "before" (1 Mar 23:30) is in this period, S1 and S2 too; S3 (10 Mar) is not.
    assert summary(report.team.total) == (3, 3, (10, 3), (10, 3), (11, 3), 2, 0, 1, 1)
    report = satisfaction_report(period=Period(date(2026, 4, 27), date(2026, 4, 27)))
    assert report.team is not None and report.team.total.invited == 1


def test_an_owner_gets_their_own_jobs_only(world: World, bob: User) -> None:
    report = satisfaction_report(period=PERIOD, owner=bob)
    assert report.team is None
    assert by_name(report.owners) == {"Bob Durand": (4, 4, (14, 4), (16, 4), (18, 4), 2, 1, 1, 1)}
    assert by_name(report.installers) == {
        "Marc": (3, 3, (12, 3), (13, 3), (14, 3), 2, 1, 0, 0),
        "Paul": (2, 2, (5, 2), (7, 2), (8, 2), 0, 1, 1, 1),
    }
    assert by_name(report.pipelines) == {
        "Installation": (3, 3, (12, 3), (13, 3), (14, 3), 2, 1, 0, 0),
        "Repair": (1, 1, (2, 1), (3, 1), (4, 1), 0, 0, 1, 1),
    }


def test_an_owner_with_no_survey_still_has_a_row(charlie: User, time_machine) -> None:
    time_machine.move_to(END, tick=False)
    report = satisfaction_report(period=PERIOD, owner=charlie)
    assert [(row.dimension, row.key, row.name) for row in report.rows] == [(OWNER, charlie.pk, "charlie")]
    figures = report.owners[0].total
    assert (figures.response.percent, figures.product_quality.average, figures.nps) == (None, None, None)
    assert len(report.owners[0].weeks) == 8


def test_answers_stay_with_the_installers_who_did_the_work(world: World, bob: User) -> None:
    """A crew changed after the answer does not move it; an answer given again is still one
    survey, counted for the crew the job names when it is given (as the service records it)."""
    s1 = world.surveys["S1"]
    job_update_details(job=s1.job, actor=bob, installers=[world.zoe])
    report = satisfaction_report(period=PERIOD)
    marc = report.find(INSTALLER, world.marc.pk)
    assert marc is not None and marc.total.invited == 3
    survey_answer(survey=s1, product_quality=5, workmanship=5, installer_conduct=5, recommend=10)
    report = satisfaction_report(period=PERIOD)
    assert report.team is not None and report.team.total.invited == 10
    marc = report.find(INSTALLER, world.marc.pk)
    zoe = report.find(INSTALLER, world.zoe.pk)
    assert marc is not None and zoe is not None
    assert (marc.total.invited, zoe.total.invited) == (2, 5)


def test_csat_per_dimension(world: World) -> None:
    report = satisfaction_report(period=PERIOD)
    csat = {(row.dimension, row.name): (row.total.csat.numerator, row.total.csat.denominator) for row in report.rows}
    assert csat == {
        (TEAM, "Team"): (16, 22),
        (OWNER, "Alice Martin"): (7, 10),
        (OWNER, "Bob Durand"): (9, 12),
        (INSTALLER, "Marc"): (8, 9),
        (INSTALLER, "Paul"): (4, 10),
        (INSTALLER, "Zoé"): (4, 7),
        (INSTALLER, "No installer recorded"): (3, 3),
        (PIPELINE, "Installation"): (11, 12),
        (PIPELINE, "Repair"): (5, 10),
    }
    assert report.team is not None and report.team.total.csat.percent == 100 * 16 / 22
    # Week by week: S1 and S2 (6 of 6), S3 (2 of 3), S4 (1 of 3), nothing, S5 (S6 unanswered),
    # S7 (0 of 3), S10 unanswered, S8 and S9 (4 of 4).
    assert [(w.csat.numerator, w.csat.denominator) for w in report.team.weeks] == [
        (6, 6),
        (2, 3),
        (1, 3),
        (0, 0),
        (3, 3),
        (0, 3),
        (0, 0),
        (4, 4),
    ]
    assert [w.csat.percent for w in report.team.weeks][3] is None


def test_csat_of_three_surveys(time_machine, bob: User, alice: User, customer: Customer) -> None:
    """Three surveys whose CSAT is worked out by hand, in every dimension:

    A  bob    Installation  marc  5 4 3   2 of 3 satisfied
    B  bob    Repair        paul  4 - 2   1 of 2 (a question left blank is not an answer)
    C  alice  Repair        marc  1 5 5   2 of 3
    """
    time_machine.move_to(at("2026-03-02", "09:00"), tick=False)
    marc, paul = staff("marc", "Marc"), staff("paul", "Paul")
    installation = make_pipeline("Installation", INSTALLATION_STAGES)
    repair = make_pipeline("Repair", [("Reported", True, 0), ("Fixed", True, 3)])
    script = [
        ("A", bob, installation, marc, (5, 4, 3)),
        ("B", bob, repair, paul, (4, None, 2)),
        ("C", alice, repair, marc, (1, 5, 5)),
    ]
    for name, owner, pipeline, installer, (quality, workmanship, conduct) in script:
        contact = Contact.objects.create(customer=customer, name=name, email=f"{name.lower()}@example.com")
        job = job_create(customer=customer, pipeline=pipeline, owner=owner, title=name, actor=owner, contacts=[contact])
        job = job_update_details(job=job, actor=owner, installers=[installer])
        survey = survey_invite(job=job, contact=contact, now=at("2026-03-10"))
        assert survey is not None
        survey_answer(
            survey=survey, product_quality=quality, workmanship=workmanship, installer_conduct=conduct, recommend=None
        )
    report = satisfaction_report(period=PERIOD)
    csat = {(row.dimension, row.key): row.total.csat for row in report.rows}
    assert (csat[(TEAM, None)].numerator, csat[(TEAM, None)].denominator) == (5, 8)
    assert csat[(TEAM, None)].percent == 62.5
    assert (csat[(OWNER, bob.pk)].numerator, csat[(OWNER, bob.pk)].denominator, csat[(OWNER, bob.pk)].percent) == (
        3,
        5,
        60,
    )
    assert csat[(OWNER, alice.pk)].percent == 100 * 2 / 3
    assert csat[(PIPELINE, installation.pk)].percent == 100 * 2 / 3
    assert (csat[(PIPELINE, repair.pk)].numerator, csat[(PIPELINE, repair.pk)].denominator) == (3, 5)
    assert (csat[(INSTALLER, marc.pk)].numerator, csat[(INSTALLER, marc.pk)].denominator) == (4, 6)
    assert csat[(INSTALLER, paul.pk)].percent == 50
    # On the page and in the CSV: 62.5 % rounded half up.
    assert cells(report.team.total)[cell_index("csat")] == Cell("63%", "5 of 8 answers scored 4 or 5")
    team_row = next(csv.reader(io.StringIO(satisfaction_csv(report).splitlines()[1])))
    assert team_row[28:31] == ["5", "8", "62.5"]


def test_csat_boundaries() -> None:
    figures = Satisfaction()
    for score in (1, 2, 3, 4, 5):
        figures.product_quality.add(score)
    figures.workmanship.add(None)
    assert (figures.csat.numerator, figures.csat.denominator) == (2, 5)
    assert Satisfaction().csat.percent is None


def test_the_report_is_four_queries(world: World, django_assert_num_queries, bob: User) -> None:
    with django_assert_num_queries(4):
        satisfaction_report(period=PERIOD)
    with django_assert_num_queries(4):
        satisfaction_report(period=PERIOD, owner=bob)


def test_find_and_rows(world: World) -> None:
    report = satisfaction_report(period=PERIOD)
    assert [row.dimension for row in report.rows] == [TEAM, OWNER, OWNER, *[INSTALLER] * 4, PIPELINE, PIPELINE]
    assert report.find(PIPELINE, world.repair.pk) is report.pipelines[1]
    assert report.find(OWNER, 999999) is None


# --- Small parts --------------------------------------------------------------------------------


def test_nps_boundaries() -> None:
    figures = Satisfaction()
    for score in (0, 6, 7, 8, 9, 10):
        figures.recommend.add(score)
    assert (figures.promoters, figures.passives, figures.detractors) == (2, 2, 2)
    assert figures.nps == 0
    assert Satisfaction().nps is None
    distribution = Distribution(1, 5)
    distribution.add(None)
    assert (distribution.answers, distribution.average) == (0, None)


# --- CSV ----------------------------------------------------------------------------------------


HEADER = (
    "Breakdown,Name,From,To,Surveys sent,Answered,Response rate (%),"
    "Product quality: answers,Product quality: average,Product quality: 1,Product quality: 2,"
    "Product quality: 3,Product quality: 4,Product quality: 5,"
    "Workmanship: answers,Workmanship: average,Workmanship: 1,Workmanship: 2,Workmanship: 3,"
    "Workmanship: 4,Workmanship: 5,"
    "Installer conduct: answers,Installer conduct: average,Installer conduct: 1,Installer conduct: 2,"
    "Installer conduct: 3,Installer conduct: 4,Installer conduct: 5,"
    "CSAT: answers scoring 4 or 5,CSAT: answers,CSAT (%),"
    "Recommendation: answers,Promoters,Passives,Detractors,Net Promoter Score,Low-score surveys\r\n"
)
CSV_ROWS = (
    "Team,Team,2026-03-02,2026-04-26,10,8,80,8,3.6,1,1,1,2,3,7,3.9,"
    "0,1,1,3,2,7,4.3,0,1,0,2,4,16,22,72.7,7,3,2,2,14.3,2\r\n"
    "Owner,Alice Martin,2026-03-02,2026-04-26,6,4,66.7,4,3.8,1,0,0,"
    "1,2,3,3.7,0,1,0,1,1,3,4,0,1,0,0,2,7,10,70,3,1,1,1,0,1\r\n"
    "Owner,Bob Durand,2026-03-02,2026-04-26,4,4,100,4,3.5,0,1,1,1,"
    "1,4,4,0,0,1,2,1,4,4.5,0,0,0,2,2,9,12,75,4,2,1,1,25,1\r\n"
    "Installer,Marc,2026-03-02,2026-04-26,3,3,100,3,4,0,0,1,1,1,3,"
    "4.3,0,0,0,2,1,3,4.7,0,0,0,1,2,8,9,88.9,3,2,1,0,66.7,0\r\n"
    "Installer,Paul,2026-03-02,2026-04-26,5,4,80,4,2.8,1,1,1,0,1,3,"
    "3,0,1,1,1,0,3,3.3,0,1,0,2,0,4,10,40,3,0,1,2,-66.7,2\r\n"
    "Installer,Zoé,2026-03-02,2026-04-26,4,3,75,3,3.7,1,0,0,0,2,2,"
    "3,0,1,0,1,0,2,3.5,0,1,0,0,1,4,7,57.1,2,1,0,1,0,1\r\n"
    "Installer,No installer recorded,2026-03-02,2026-04-26,1,1,100,"
    "1,4,0,0,0,1,0,1,5,0,0,0,0,1,1,5,0,0,0,0,1,3,3,100,1,0,1,0,0,0\r\n"
    "Pipeline,Installation,2026-03-02,2026-04-26,5,4,80,4,4.3,0,0,"
    "1,1,2,4,4.3,0,0,0,3,1,4,4.8,0,0,0,1,3,11,12,91.7,4,3,1,0,75,0\r\n"
    "Pipeline,Repair,2026-03-02,2026-04-26,5,4,80,4,3,1,1,0,1,1,3,"
    "3.3,0,1,1,0,1,3,3.7,0,1,0,1,1,5,10,50,3,0,1,2,-66.7,2\r\n"
)


def test_the_csv(world: World) -> None:
    assert satisfaction_csv(satisfaction_report(period=PERIOD)) == HEADER + CSV_ROWS


def test_the_csv_does_not_run_formulas(world: World) -> None:
    world.zoe.first_name = "=HYPERLINK(1)"
    world.zoe.save()
    rows = list(csv.reader(io.StringIO(satisfaction_csv(satisfaction_report(period=PERIOD)))))
    assert ["Installer", "'=HYPERLINK(1)"] in [row[:2] for row in rows]


def test_jobs_are_untouched_by_reading(world: World) -> None:
    before = list(Survey.objects.order_by("pk").values_list("pk", "answered_at", "updated_at"))
    jobs = Job.objects.count()
    satisfaction_report(period=PERIOD)
    assert list(Survey.objects.order_by("pk").values_list("pk", "answered_at", "updated_at")) == before
    assert Job.objects.count() == jobs
