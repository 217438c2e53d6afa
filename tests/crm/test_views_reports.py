"""The communication-health page: who sees what, the scripted scenario's figures on the page,
the CSV export, and a query count that does not grow with the data."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Contact, Customer, Message, Question
from crm.reports import NUDGES_KEY_PREFIX
from crm.services import delivery
from crm.services.jobs import job_create
from crm.services.questions import question_answer, question_create
from tests.crm.test_reports import END, Scenario, build_scenario

pytestmark = pytest.mark.django_db

URL = reverse("crm:health")


@pytest.fixture
def scenario(time_machine, bob: User, alice: User, customer: Customer, contact: Contact) -> Scenario:
    return build_scenario(time_machine, bob=bob, alice=alice, customer=customer, contact=contact)


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def table(response) -> dict[str | None, list[str]]:
    """The table's rows by owner name ("Team" for the team), as the cell texts."""
    return {
        row.name: [f"{cell.value} ({cell.detail})" for cell in cells]
        for row, cells in [(r, c) for r, c, _url in response.context["table"]]
    } | (
        {"Team": [f"{c.value} ({c.detail})" for c in response.context["team_cells"]]}
        if response.context["team_cells"]
        else {}
    )


# --- Who sees what ------------------------------------------------------------------------------


def test_it_needs_a_staff_user(client: Client, dana: User) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert signed_in(client, dana).get(URL).status_code == 403
    assert client.get(URL, {"format": "csv"}).status_code == 403


def test_a_manager_sees_every_owner_and_the_team(client: Client, scenario: Scenario, alice: User) -> None:
    response = signed_in(client, alice).get(URL)
    assert response.status_code == 200
    assert table(response) == {
        "Alice Martin": [
            "80% (4 of 5 promises)",
            "0% (0 of 1 slip told in time)",
            "15 min (3 of 4 acknowledged)",
            "4 h (3 of 4 answered)",
            "1 (of 2 active jobs)",
            "0 (digests of promises about to slip)",
            " (0 of 0 arrival windows)",
        ],
        "Bob Durand": [
            "60% (6 of 10 promises)",
            "50% (2 of 4 slips told in time)",
            " (0 of 0 acknowledged)",
            " (0 of 0 answered)",
            "3 (of 5 active jobs)",
            "0 (digests of promises about to slip)",
            " (0 of 0 arrival windows)",
        ],
        "Team": [
            "67% (10 of 15 promises)",
            "40% (2 of 5 slips told in time)",
            "15 min (3 of 4 acknowledged)",
            "4 h (3 of 4 answered)",
            "4 (of 7 active jobs)",
            "0 (digests of promises about to slip)",
            " (0 of 0 arrival windows)",
        ],
    }
    assert response.context["selected"].is_team
    body = response.content.decode()
    assert "Jobs silent more than 14 days" in body
    assert "How these are counted" in body
    assert body.count('role="img"') == 7
    assert 'aria-current="page" href="/reports/health/"' in body


def test_the_default_period_is_the_last_eight_weeks(client: Client, scenario: Scenario, alice: User) -> None:
    response = signed_in(client, alice).get(URL)
    period = response.context["period"]
    assert (period.first_day, period.last_day) == (date(2026, 3, 2), date(2026, 4, 26))
    assert 'value="2026-03-02"' in response.content.decode()
    assert len(response.context["report"].weeks) == 8


def test_a_manager_picks_whose_charts(client: Client, scenario: Scenario, alice: User, bob: User, charlie: User):
    signed_in(client, alice)
    response = client.get(URL, {"owner": bob.pk})
    assert response.context["selected"].name == "Bob Durand"
    kept = response.context["charts"][0]
    assert [value for _label, value, _detail in kept.rows] == ["100%", "100%", "100%", "0%", "0%", "", "", ""]
    assert kept.rows[0][0] == "2 Mar"
    assert "Promises kept on time, week by week: Bob Durand" in kept.svg
    # The table still shows everyone.
    assert set(table(response)) == {"Alice Martin", "Bob Durand", "Team"}
    # Someone with nothing in the period: empty charts, not an error.
    response = client.get(URL, {"owner": charlie.pk})
    assert response.status_code == 200
    assert response.context["selected"].name == "charlie"
    assert client.get(URL, {"owner": 999999}).status_code == 404


def test_an_owner_sees_only_their_own_figures(client: Client, scenario: Scenario, bob: User, alice: User) -> None:
    signed_in(client, bob)
    response = client.get(URL)
    assert response.status_code == 200
    assert list(table(response)) == ["Bob Durand"]
    assert response.context["selected"].name == "Bob Durand"
    body = response.content.decode()
    assert "Alice Martin" not in body
    assert "You see your own figures." in body
    assert 'name="owner"' not in body
    assert client.get(URL, {"owner": bob.pk}).status_code == 200
    assert client.get(URL, {"owner": alice.pk}).status_code == 403
    assert client.get(URL, {"owner": alice.pk, "format": "csv"}).status_code == 403


def test_an_owner_with_nothing_yet(client: Client, charlie: User, time_machine) -> None:
    time_machine.move_to("2026-04-26 12:00:00+02:00", tick=False)
    response = signed_in(client, charlie).get(URL)
    assert response.status_code == 200
    assert table(response) == {
        "charlie": [
            " (0 of 0 promises)",
            " (0 of 0 slips told in time)",
            " (0 of 0 acknowledged)",
            " (0 of 0 answered)",
            " (of 0 active jobs)",
            "0 (digests of promises about to slip)",
            " (0 of 0 arrival windows)",
        ]
    }
    assert "no data" in response.content.decode()


# --- The period ---------------------------------------------------------------------------------


def test_a_chosen_period(client: Client, scenario: Scenario, alice: User) -> None:
    response = signed_in(client, alice).get(URL, {"from": "2026-03-02", "to": "2026-03-15"})
    assert table(response)["Bob Durand"][0] == "100% (4 of 4 promises)"
    assert len(response.context["report"].weeks) == 2


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"from": "2026-04-01", "to": "2026-03-01"}, "The period must start before it ends."),
        ({"from": "2024-01-01", "to": "2026-03-01"}, "Choose a period of at most a year."),
        ({"from": "yesterday"}, "Enter a valid date."),
        ({"owner": "bob"}, "Enter a whole number."),
    ],
)
def test_a_wrong_period_is_explained(client: Client, alice: User, params: dict, error: str, time_machine) -> None:
    time_machine.move_to("2026-04-26 12:00:00+02:00", tick=False)
    signed_in(client, alice)
    response = client.get(URL, params)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert client.get(URL, {**params, "format": "csv"}).status_code == 400


# --- CSV ----------------------------------------------------------------------------------------


def test_the_csv_is_the_table(client: Client, scenario: Scenario, alice: User) -> None:
    response = signed_in(client, alice).get(URL, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="communication-health-2026-03-02-2026-04-26.csv"'
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    assert body[1:] == (
        "Owner,From,To,Promises kept on time,Promises decided,Kept on time (%),Slips told in time,"
        "Promises that slipped (moved later or broken),Proactive notice (%),Requests acknowledged,"
        "Requests not acknowledged,Median time to acknowledge (minutes),Requests answered,Requests not answered,"
        "Median time to first answer (hours),Jobs silent too long,Jobs active,"
        "Nudges (digests of promises about to slip),Arrival windows kept,Arrival windows decided,Windows kept (%)\r\n"
        "Alice Martin,2026-03-02,2026-04-26,4,5,80,0,1,0,3,1,15,3,1,4,1,2,0,0,0,\r\n"
        "Bob Durand,2026-03-02,2026-04-26,6,10,60,2,4,50,0,0,,0,0,,3,5,0,0,0,\r\n"
        "Team,2026-03-02,2026-04-26,10,15,66.7,2,5,40,3,1,15,3,1,4,4,7,0,0,0,\r\n"
    )
    assert 'href="?from=2026-03-02&amp;to=2026-04-26&amp;format=csv"' in client.get(URL).content.decode()


def test_an_owner_exports_only_their_row(client: Client, scenario: Scenario, bob: User) -> None:
    response = signed_in(client, bob).get(URL, {"format": "csv", "from": "2026-03-02", "to": "2026-04-26"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["Bob Durand"]
    assert rows[1][3:9] == ["6", "10", "60", "2", "4", "50"]


# --- Queries ------------------------------------------------------------------------------------


def grow(time_machine, customer: Customer, contact: Contact, owners: list[User], pipeline) -> None:
    """More of everything: jobs, promises, requests with acknowledgements and answers, messages."""
    time_machine.move_to("2026-04-13 10:00:00+02:00", tick=False)
    for owner in owners:
        for n in range(3):
            job = job_create(
                customer=customer,
                pipeline=pipeline,
                owner=owner,
                title=f"More {n}",
                actor=owner,
                start_date=date(2026, 4, 13),
            )
            question = question_create(job=job, contact=contact, body="Hello?", source=Question.Source.PORTAL)
            delivery.deliver(message_id=Message.objects.get(idempotency_key__startswith=f"ack:{question.pk}:").pk)
            question_answer(question=question, body="Hello!", actor=owner)
    time_machine.move_to(END + timedelta(minutes=1), tick=False)


def test_the_page_is_a_fixed_number_of_queries(
    client: Client,
    scenario: Scenario,
    alice: User,
    charlie: User,
    customer: Customer,
    contact: Contact,
    time_machine,
    django_assert_max_num_queries,
) -> None:
    signed_in(client, alice)
    with CaptureQueriesContext(connection) as small:
        assert client.get(URL).status_code == 200
    grow(time_machine, customer, contact, [alice, charlie], scenario.visit)
    with django_assert_max_num_queries(len(small)), CaptureQueriesContext(connection) as large:
        response = client.get(URL)
    assert "charlie" in table(response)
    assert len(large) == len(small)
    with CaptureQueriesContext(connection) as csv_queries:
        client.get(URL, {"format": "csv"})
    assert len(csv_queries) < len(small)


def test_an_owners_page_is_a_fixed_number_of_queries(
    client: Client,
    scenario: Scenario,
    bob: User,
    customer: Customer,
    contact: Contact,
    time_machine,
    django_assert_max_num_queries,
) -> None:
    signed_in(client, bob)
    with CaptureQueriesContext(connection) as small:
        client.get(URL)
    grow(time_machine, customer, contact, [bob], scenario.visit)
    with django_assert_max_num_queries(len(small)):
        client.get(URL)


def test_an_instant_acknowledgement_is_zero_not_missing(
    client: Client, alice: User, customer: Customer, contact: Contact, installation, time_machine
) -> None:
    time_machine.move_to("2026-04-22 10:00:00+02:00", tick=False)
    job = job_create(customer=customer, pipeline=installation, owner=alice, title="Quick", actor=alice)
    question = question_create(job=job, contact=contact, body="Fast?", source=Question.Source.PORTAL)
    delivery.deliver(message_id=Message.objects.get(idempotency_key__startswith=f"ack:{question.pk}:").pk)
    response = signed_in(client, alice).get(URL)
    assert table(response)["Team"][2] == "0 min (1 of 1 acknowledged)"
    acknowledge = response.context["charts"][2]
    assert acknowledge.rows[-1][1] == "0 min"
    assert "16 Apr: 0 min." in acknowledge.svg


# --- Slips and nudges ---------------------------------------------------------------------------


def test_the_page_says_how_a_slip_is_counted(client: Client, alice: User, time_machine) -> None:
    time_machine.move_to("2026-04-26 12:00:00+02:00", tick=False)
    body = signed_in(client, alice).get(URL).content.decode()
    assert "A promise slips when its date passes without it being kept, or when its date is moved later." in body
    assert "A date moved earlier is good news, not a slip." in body
    assert "counts once, however many times it moves afterwards" in body
    assert "Told in time once, then moved again without telling: not in time." in body
    assert "for the person who held the promise at that moment" in body
    assert "<dt>Nudges</dt>" in body


def test_nudges_in_the_table_and_the_charts(client: Client, alice: User, bob: User, time_machine) -> None:
    time_machine.move_to("2026-04-26 12:00:00+02:00", tick=False)
    for day in ("2026-04-20", "2026-04-21", "2026-03-03"):
        Message.objects.create(
            channel=Message.Channel.EMAIL,
            kind=Message.Kind.STAFF_ALERT,
            staff=bob,
            idempotency_key=f"{NUDGES_KEY_PREFIX}{bob.pk}:{day}:{bob.pk}",
            created_at=f"{day} 08:00:00+01:00",
        )
    signed_in(client, alice)
    response = client.get(URL)
    assert response.context["titles"][-2] == "Nudges"
    assert table(response)["Bob Durand"][-2] == "3 (digests of promises about to slip)"
    assert table(response)["Team"][-2] == "3 (digests of promises about to slip)"
    response = client.get(URL, {"owner": bob.pk})
    nudges = response.context["charts"][-2]
    assert nudges.key == "nudges"
    assert [value for _label, value, _detail in nudges.rows] == ["1", "0", "0", "0", "0", "0", "0", "2"]
    assert "Nudges, week by week: Bob Durand" in nudges.svg
    rows = list(csv.reader(io.StringIO(client.get(URL, {"format": "csv"}).content.decode("utf-8-sig"))))
    assert [(row[0], row[-4]) for row in rows] == [
        ("Owner", "Nudges (digests of promises about to slip)"),
        ("Bob Durand", "3"),
        ("Team", "3"),
    ]
