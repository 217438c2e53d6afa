"""The satisfaction page: who sees what, the scripted answers' figures on the page, the charts,
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

from crm.models import Contact, Customer
from crm.services.jobs import job_create, job_update_details
from crm.services.surveys import survey_answer, survey_invite
from tests.crm.test_reports_satisfaction import CSV_ROWS, END, HEADER, World, at, build_world

pytestmark = pytest.mark.django_db

URL = reverse("crm:satisfaction")


@pytest.fixture
def world(time_machine, bob: User, alice: User, customer: Customer) -> World:
    return build_world(time_machine, bob=bob, alice=alice, customer=customer)


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def section(response, key: str) -> dict[str, list[str]]:
    """One table's rows by name, as the cell texts."""
    rows = next(rows for k, _title, _column, rows in response.context["sections"] if k == key)
    return {row.name: [f"{cell.value} ({cell.detail})" for cell in cells] for row, cells, _url in rows}


def team(response) -> list[str]:
    return [f"{cell.value} ({cell.detail})" for cell in response.context["team_cells"]]


# --- Who sees what ------------------------------------------------------------------------------


def test_it_needs_a_staff_user(client: Client, dana: User) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert signed_in(client, dana).get(URL).status_code == 403
    assert client.get(URL, {"format": "csv"}).status_code == 403


def test_a_manager_sees_every_owner_installer_pipeline_and_the_team(client: Client, world: World, alice: User) -> None:
    response = signed_in(client, alice).get(URL)
    assert response.status_code == 200
    assert team(response) == [
        "80% (8 of 10 answered)",
        "3.6 (8 answers)",
        "3.9 (7 answers)",
        "4.3 (7 answers)",
        "73% (16 of 22 answers scored 4 or 5)",
        "+14 (Promoters: 3, detractors: 2 (of 7))",
        "2 (of 8 answered surveys)",
    ]
    assert section(response, "owners") == {
        "Alice Martin": [
            "67% (4 of 6 answered)",
            "3.8 (4 answers)",
            "3.7 (3 answers)",
            "4.0 (3 answers)",
            "70% (7 of 10 answers scored 4 or 5)",
            "0 (Promoters: 1, detractors: 1 (of 3))",
            "1 (of 4 answered surveys)",
        ],
        "Bob Durand": [
            "100% (4 of 4 answered)",
            "3.5 (4 answers)",
            "4.0 (4 answers)",
            "4.5 (4 answers)",
            "75% (9 of 12 answers scored 4 or 5)",
            "+25 (Promoters: 2, detractors: 1 (of 4))",
            "1 (of 4 answered surveys)",
        ],
    }
    installers = section(response, "installers")
    assert list(installers) == ["Marc", "Paul", "Zoé", "No installer recorded"]
    assert installers["Paul"] == [
        "80% (4 of 5 answered)",
        "2.8 (4 answers)",
        "3.0 (3 answers)",
        "3.3 (3 answers)",
        "40% (4 of 10 answers scored 4 or 5)",
        "\u221267 (Promoters: 0, detractors: 2 (of 3))",
        "2 (of 4 answered surveys)",
    ]
    assert installers["Marc"][4] == "89% (8 of 9 answers scored 4 or 5)"
    assert installers["Marc"][5] == "+67 (Promoters: 2, detractors: 0 (of 3))"
    pipelines = section(response, "pipelines")
    assert [cells[0] for cells in pipelines.values()] == ["80% (4 of 5 answered)"] * 2
    assert pipelines["Installation"][1:6] == [
        "4.3 (4 answers)",
        "4.3 (4 answers)",
        "4.8 (4 answers)",
        "92% (11 of 12 answers scored 4 or 5)",
        "+75 (Promoters: 3, detractors: 0 (of 4))",
    ]
    assert response.context["selected"].is_team
    body = response.content.decode()
    assert "How these are counted" in body
    assert body.count('role="img"') == 8
    assert 'aria-current="page" href="/reports/satisfaction/"' in body


def test_the_team_scores_and_charts(client: Client, world: World, alice: User) -> None:
    response = signed_in(client, alice).get(URL)
    assert response.context["distribution"] == [
        ("Product quality", ["1 (13%)", "1 (13%)", "1 (13%)", "2 (25%)", "3 (38%)"], 8, "3.6"),
        ("Workmanship", ["0 (0%)", "1 (14%)", "1 (14%)", "3 (43%)", "2 (29%)"], 7, "3.9"),
        ("Installer conduct", ["0 (0%)", "1 (14%)", "0 (0%)", "2 (29%)", "4 (57%)"], 7, "4.3"),
    ]
    charts = {chart.key: chart for chart in response.context["charts"]}
    assert list(charts) == [
        "response",
        "product-quality",
        "workmanship",
        "installer-conduct",
        "csat",
        "promoters",
        "detractors",
        "low",
    ]
    assert [value for _label, value, _detail in charts["response"].rows] == [
        "100%",
        "100%",
        "100%",
        "",
        "50%",
        "100%",
        "0%",
        "100%",
    ]
    assert charts["response"].rows[0][0] == "2 Mar"
    assert [value for _label, value, _detail in charts["product-quality"].rows] == [
        "4.5",
        "3.0",
        "2.0",
        "",
        "5.0",
        "1.0",
        "",
        "4.5",
    ]
    assert [detail for _label, _value, detail in charts["promoters"].rows][:3] == [
        "NPS +100: Promoters: 2, detractors: 0 (of 2)",
        "NPS 0: Promoters: 0, detractors: 0 (of 1)",
        "NPS \u2212100: Promoters: 0, detractors: 1 (of 1)",
    ]
    assert [value for _label, value, _detail in charts["low"].rows] == ["0", "0", "1", "", "0", "1", "", "0"]
    assert [value for _label, value, _detail in charts["csat"].rows] == [
        "100%",
        "67%",
        "33%",
        "",
        "100%",
        "0%",
        "",
        "100%",
    ]
    assert charts["csat"].rows[1][2] == "2 of 3 answers scored 4 or 5"
    assert "CSAT, week by week: Team" in charts["csat"].svg
    body = response.content.decode()
    assert "CSAT: <strong>73%</strong> (16 of 22 answers scored 4 or 5)." in body
    assert "Response rate, week by week: Team" in charts["response"].svg
    assert "2 Mar: 100%" in charts["response"].svg


def test_the_default_period_is_the_last_eight_weeks(client: Client, world: World, alice: User) -> None:
    response = signed_in(client, alice).get(URL)
    period = response.context["period"]
    assert (period.first_day, period.last_day) == (date(2026, 3, 2), date(2026, 4, 26))
    assert 'value="2026-03-02"' in response.content.decode()
    assert len(response.context["report"].weeks) == 8


def test_a_manager_picks_whose_charts(client: Client, world: World, alice: User, bob: User, charlie: User) -> None:
    signed_in(client, alice)
    response = client.get(URL, {"installer": world.paul.pk})
    assert response.context["selected"].name == "Paul"
    response_chart = response.context["charts"][0]
    assert [v for _l, v, _d in response_chart.rows] == ["", "100%", "100%", "", "", "100%", "0%", "100%"]
    assert "Response rate, week by week: Paul" in response_chart.svg
    body = response.content.decode()
    assert f'<input type="hidden" name="installer" value="{world.paul.pk}">' in body
    assert f'href="?from=2026-03-02&amp;to=2026-04-26&amp;installer={world.paul.pk}#charts" aria-current="true"' in body
    # The tables still show everyone.
    assert set(section(response, "owners")) == {"Alice Martin", "Bob Durand"}

    response = client.get(URL, {"pipeline": world.repair.pk})
    assert response.context["selected"].name == "Repair"
    assert response.context["distribution"][0][1] == ["1 (25%)", "1 (25%)", "0 (0%)", "1 (25%)", "1 (25%)"]
    response = client.get(URL, {"owner": bob.pk})
    assert response.context["selected"].name == "Bob Durand"
    assert "+25" in response.content.decode()

    # Someone or a pipeline with nothing in the period: empty charts, not an error.
    response = client.get(URL, {"owner": charlie.pk})
    assert response.status_code == 200
    assert response.context["selected"].name == "charlie"
    assert response.context["distribution"][0][1:] == (["0", "0", "0", "0", "0"], 0, "")
    assert client.get(URL, {"owner": 999999}).status_code == 404
    assert client.get(URL, {"installer": 999999}).status_code == 404
    assert client.get(URL, {"pipeline": 999999}).status_code == 404


def test_an_owner_sees_their_own_jobs_only(client: Client, world: World, bob: User, alice: User) -> None:
    signed_in(client, bob)
    response = client.get(URL)
    assert response.status_code == 200
    assert response.context["team_cells"] is None
    assert list(section(response, "owners")) == ["Bob Durand"]
    assert section(response, "installers") == {
        "Marc": [
            "100% (3 of 3 answered)",
            "4.0 (3 answers)",
            "4.3 (3 answers)",
            "4.7 (3 answers)",
            "89% (8 of 9 answers scored 4 or 5)",
            "+67 (Promoters: 2, detractors: 0 (of 3))",
            "0 (of 3 answered surveys)",
        ],
        "Paul": [
            "100% (2 of 2 answered)",
            "2.5 (2 answers)",
            "3.5 (2 answers)",
            "4.0 (2 answers)",
            "50% (3 of 6 answers scored 4 or 5)",
            "\u221250 (Promoters: 0, detractors: 1 (of 2))",
            "1 (of 2 answered surveys)",
        ],
    }
    assert response.context["selected"].name == "Bob Durand"
    body = response.content.decode()
    assert "Alice Martin" not in body
    assert "Zoé" not in body
    assert "You see the surveys of your own jobs." in body
    assert client.get(URL, {"owner": bob.pk}).status_code == 200
    assert client.get(URL, {"installer": world.paul.pk}).status_code == 200
    assert client.get(URL, {"owner": alice.pk}).status_code == 403
    assert client.get(URL, {"owner": alice.pk, "format": "csv"}).status_code == 403


def test_an_owner_with_no_survey_yet(client: Client, charlie: User, time_machine) -> None:
    time_machine.move_to(END, tick=False)
    response = signed_in(client, charlie).get(URL)
    assert response.status_code == 200
    assert section(response, "owners") == {
        "charlie": [
            " (0 of 0 answered)",
            " (0 answers)",
            " (0 answers)",
            " (0 answers)",
            " (0 of 0 answers scored 4 or 5)",
            " (Promoters: 0, detractors: 0 (of 0))",
            " (of 0 answered surveys)",
        ]
    }
    assert section(response, "installers") == {}
    body = response.content.decode()
    assert "No survey was sent in this period." in body
    assert "no data" in body


# --- The period ---------------------------------------------------------------------------------


def test_a_chosen_period(client: Client, world: World, alice: User) -> None:
    response = signed_in(client, alice).get(URL, {"from": "2026-03-02", "to": "2026-03-15"})
    assert team(response)[0] == "100% (3 of 3 answered)"
    assert len(response.context["report"].weeks) == 2


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"from": "2026-04-01", "to": "2026-03-01"}, "The period must start before it ends."),
        ({"from": "2024-01-01", "to": "2026-03-01"}, "Choose a period of at most a year."),
        ({"from": "yesterday"}, "Enter a valid date."),
        ({"installer": "paul"}, "Enter a whole number."),
        ({"owner": "1", "pipeline": "1"}, "Choose the charts of one owner, installer or pipeline."),
    ],
)
def test_a_wrong_request_is_explained(client: Client, alice: User, params: dict, error: str, time_machine) -> None:
    time_machine.move_to(END, tick=False)
    signed_in(client, alice)
    response = client.get(URL, params)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert client.get(URL, {**params, "format": "csv"}).status_code == 400


# --- CSV ----------------------------------------------------------------------------------------


def test_the_csv_is_every_row(client: Client, world: World, alice: User) -> None:
    response = signed_in(client, alice).get(URL, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="satisfaction-2026-03-02-2026-04-26.csv"'
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    assert body[1:] == HEADER + CSV_ROWS
    assert 'href="?from=2026-03-02&amp;to=2026-04-26&amp;format=csv"' in client.get(URL).content.decode()


def test_an_owner_exports_only_their_jobs(client: Client, world: World, bob: User) -> None:
    response = signed_in(client, bob).get(URL, {"format": "csv", "from": "2026-03-02", "to": "2026-04-26"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [row[:2] for row in rows[1:]] == [
        ["Owner", "Bob Durand"],
        ["Installer", "Marc"],
        ["Installer", "Paul"],
        ["Pipeline", "Installation"],
        ["Pipeline", "Repair"],
    ]
    assert rows[1][4:7] == ["4", "4", "100"]


def test_the_page_is_in_french(client: Client, world: World, alice: User) -> None:
    response = signed_in(client, alice).get(URL, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 200
    # Numbers in the French notation; the figures are the same.
    assert [cell.value for cell in response.context["team_cells"]] == [
        "80\xa0%",
        "3,6",
        "3,9",
        "4,3",
        "73\xa0%",
        "+14",
        "2",
    ]


# --- Queries ------------------------------------------------------------------------------------


def grow(time_machine, world: World, customer: Customer, owners: list[User]) -> None:
    """More surveys for more owners, installers and pipelines, answered or not."""
    time_machine.move_to(at("2026-04-13"), tick=False)
    crews = [[world.marc], [world.paul, world.zoe], []]
    for owner in owners:
        for n, pipeline in enumerate([world.installation, world.repair, world.repair]):
            contact = Contact.objects.create(customer=customer, name=f"More {owner.pk} {n}", email=f"m{n}@example.com")
            job = job_create(
                customer=customer,
                pipeline=pipeline,
                owner=owner,
                title=f"More {n}",
                actor=owner,
                contacts=[contact],
                start_date=date(2026, 4, 13),
            )
            job_update_details(job=job, actor=owner, installers=crews[n])
            survey = survey_invite(job=job, contact=contact)
            assert survey is not None
            if n < 2:
                survey_answer(survey=survey, product_quality=4, workmanship=n + 1, installer_conduct=5, recommend=9)
    time_machine.move_to(END + timedelta(minutes=1), tick=False)


def test_the_page_is_a_fixed_number_of_queries(
    client: Client,
    world: World,
    alice: User,
    charlie: User,
    customer: Customer,
    time_machine,
    django_assert_max_num_queries,
) -> None:
    signed_in(client, alice)
    with CaptureQueriesContext(connection) as small:
        assert client.get(URL).status_code == 200
    grow(time_machine, world, customer, [alice, charlie])
    with django_assert_max_num_queries(len(small)), CaptureQueriesContext(connection) as large:
        response = client.get(URL)
    assert "charlie" in section(response, "owners")
    assert len(large) == len(small)
    with CaptureQueriesContext(connection) as csv_queries:
        client.get(URL, {"format": "csv"})
    # The file has no navigation: none of its counts are read, and it costs no more than the page.
    assert len(csv_queries) <= len(small)
    assert not [q for q in csv_queries.captured_queries if 'FROM "crm_message"' in q["sql"]]


def test_an_owners_page_is_a_fixed_number_of_queries(
    client: Client,
    world: World,
    bob: User,
    customer: Customer,
    time_machine,
    django_assert_max_num_queries,
) -> None:
    signed_in(client, bob)
    with CaptureQueriesContext(connection) as small:
        client.get(URL)
    grow(time_machine, world, customer, [bob])
    with django_assert_max_num_queries(len(small)), CaptureQueriesContext(connection) as large:
        client.get(URL)
    assert len(large) == len(small)


def test_the_health_page_links_here(client: Client, alice: User, time_machine) -> None:
    time_machine.move_to(END, tick=False)
    body = signed_in(client, alice).get(reverse("crm:health")).content.decode()
    assert f'href="{URL}"' in body
