"""axe-core on every staff page a person reads, at 1280 px (a laptop) and 360 px (a phone), for a
manager with the admin link (the longest navigation): dashboards, jobs (list, board, a job, a new
job, a board move, a promise's new date), customers and contacts (pages and forms), search, the
inbox, import, campaigns (pages and forms), reports, the schedule, Today and the account page."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from crm.models import Contact, Customer, Message, Pipeline, VisitKind
from crm.services.campaigns import CampaignDetails, campaign_create
from crm.services.jobs import job_create
from crm.services.questions import question_create
from crm.services.visits import visit_book
from crm.workdays import business_today, business_zone
from tests.browser.conftest import assert_accessible, new_phone_context, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pages(customer: Customer, contact: Contact, installation: Pipeline, alice: User, bob: User) -> list[str]:
    alice.is_superuser = True
    alice.save()
    job = job_create(
        customer=customer,
        pipeline=installation,
        owner=alice,
        title="Heat pump installation",
        actor=alice,
        start_date=business_today() - timedelta(days=35),  # late, promises broken
    )
    question_create(job=job, contact=contact, body="When do you come?", source="portal")
    Message.objects.create(
        channel=Message.Channel.EMAIL,
        direction=Message.Direction.IN,
        kind=Message.Kind.REPLY,
        status=Message.Status.RECEIVED,
        from_address="someone@example.com",
        subject="A question about my order",
        idempotency_key="in:axe",
    )
    tomorrow = business_today() + timedelta(days=1)
    visit_book(
        job=job,
        kind=VisitKind.objects.create(pipeline=installation, name="Site survey"),
        window_start=datetime.combine(tomorrow, time(14), tzinfo=business_zone()),
        installers=[alice],
        address="12 rue des Lilas, Lyon",
        actor=alice,
        tell_customer=False,
    )
    campaign = campaign_create(
        details=CampaignDetails(
            title="Spring filter tip",
            kind="tip",
            starts_on=business_today(),
            ends_on=business_today() + timedelta(days=30),
            subject_en="Clean your filter",
            body_en="A clean filter saves energy.",
            subject_fr="Nettoyez votre filtre",
            body_fr="Un filtre propre économise l'énergie.",
        ),
        actor=alice,
    )
    stage = installation.stages.get(position=2)
    return [
        reverse("crm:home"),
        reverse("crm:home") + "?scope=team",
        reverse("crm:jobs"),
        reverse("crm:job_board"),
        reverse("crm:job", args=[job.public_id]),
        reverse("crm:job_board_move", args=[job.public_id]) + f"?to={stage.pk}&expected={job.current_stage_id}",
        reverse("crm:commitment_move", args=[job.public_id, job.commitments.order_by("due_at").first().pk]),
        reverse("crm:job_new"),
        reverse("crm:job_new") + f"?customer={customer.pk}",
        reverse("crm:customers"),
        reverse("crm:customer", args=[customer.pk]),
        reverse("crm:customer_new"),
        reverse("crm:customer_edit", args=[customer.pk]),
        reverse("crm:contact_new", args=[customer.pk]),
        reverse("crm:contact_edit", args=[contact.pk]),
        reverse("crm:search") + "?q=dupont",
        reverse("crm:inbox"),
        reverse("crm:import"),
        reverse("crm:campaigns"),
        reverse("crm:campaign", args=[campaign.public_id]),
        reverse("crm:campaign_new"),
        reverse("crm:campaign_edit", args=[campaign.public_id]),
        reverse("crm:health"),
        reverse("crm:satisfaction"),
        reverse("crm:schedule") + "?who=team",
        reverse("crm:today"),
        reverse("crm:account_security"),
    ]


def test_every_staff_page_passes_axe_on_a_laptop(page, live_server, pages: list[str]) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, f"{live_server.url}/", username="alice")
    for path in pages:
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, path
        assert_accessible(page)


def test_every_staff_page_passes_axe_on_a_phone(browser, live_server, pages: list[str]) -> None:
    context = new_phone_context(browser)
    try:
        phone = context.new_page()
        sign_in(phone, f"{live_server.url}/", username="alice")
        for path in pages:
            phone.goto(f"{live_server.url}{path}")
            assert_accessible(phone)
    finally:
        context.close()
