"""Campaigns in a browser: write one, preview it in each language, send it and watch the progress
bar (polled by htmx) finish; then open its durable link as a customer would, while it runs, once
it has ended, and mangled. Every page passes axe-core."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.models import Campaign, Contact, Customer, Message
from crm.services.campaigns import CampaignDetails, campaign_create
from crm.tasks import send_campaign
from crm.workdays import business_today
from tests.browser.conftest import assert_accessible, sign_in


@pytest.fixture
def audience(db) -> list[Contact]:
    dupont = Customer.objects.create(name="Dupont household")
    return [
        Contact.objects.create(customer=dupont, name="Marie Dupont", email="marie@example.com", language="fr"),
        Contact.objects.create(customer=dupont, name="John Smith", email="john@example.com", language="en"),
    ]


@pytest.mark.django_db(transaction=True)
def test_it_writes_previews_and_sends_a_campaign(page, live_server, bob, audience, monkeypatch):
    # In tests django-q2 runs tasks inline, so the sending would be over before the page loads.
    # Holding the task back lets the page show it running; the test then runs the task itself, as
    # the worker would, while the page polls.
    queued: list[tuple[str, int]] = []
    monkeypatch.setattr("crm.services.campaigns.async_task", lambda name, *args, **kwargs: queued.append((name, *args)))
    base = live_server.url
    today = business_today()

    sign_in(page, f"{base}/campaigns/")
    assert page.get_by_role("heading", name="Campaigns").is_visible()
    assert_accessible(page)

    page.get_by_role("link", name="New campaign").click()
    page.get_by_role("heading", name="New campaign").wait_for()
    assert_accessible(page)
    page.get_by_label("Title").fill("Spring filter tip")
    page.locator("#id_starts_on").fill(today.isoformat())
    page.locator("#id_ends_on").fill((today - timedelta(days=1)).isoformat())
    page.locator("#id_subject_en").fill("Clean your heat pump filter")
    page.locator("#id_body_en").fill("A clean filter saves energy.")
    page.locator("#id_subject_fr").fill("Nettoyez le filtre de votre pompe à chaleur")
    page.locator("#id_body_fr").fill("Un filtre propre économise de l'énergie.")
    page.get_by_role("button", name="Save the draft").click()
    # The end before the start: the form says so next to the field, and nothing is saved.
    page.get_by_text("The end date cannot be before the start date.").wait_for()
    assert not Campaign.objects.exists()
    assert_accessible(page)
    page.locator("#id_ends_on").fill((today + timedelta(days=30)).isoformat())
    page.get_by_role("button", name="Save the draft").click()

    page.get_by_role("heading", name="Spring filter tip").wait_for()
    campaign = Campaign.objects.get()
    assert page.get_by_role("button", name="Send to 2 contacts").is_visible()
    assert_accessible(page)

    page.get_by_role("link", name="In French").click()
    page.get_by_role("heading", name="Preview in French").wait_for()
    assert page.locator("#preview-subject").inner_text() == "Nettoyez le filtre de votre pompe à chaleur"
    frame = page.frame_locator("iframe[title='The email as it will look']")
    assert frame.get_by_text("Un filtre propre économise de l'énergie.").is_visible()
    assert "Marie Dupont" in page.get_by_role("main").inner_text()
    assert_accessible(page)
    page.get_by_role("link", name="English").click()
    page.get_by_role("heading", name="Preview in English").wait_for()
    assert frame.get_by_text("A clean filter saves energy.").is_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Back to the campaign").click()
    page.get_by_role("button", name="Send to 2 contacts").click()
    bar = page.get_by_role("progressbar", name="Sending progress")
    bar.wait_for()
    assert bar.get_attribute("aria-valuenow") == "0"
    assert page.get_by_text("0 of 2 contacts done.").is_visible()
    assert_accessible(page)

    assert queued == [("crm.tasks.send_campaign", campaign.pk)]
    assert send_campaign(campaign.pk) == Campaign.Status.SENT

    # The page finds out by itself (htmx polls the fragment every second).
    page.get_by_text("Sending finished.").wait_for()
    assert bar.get_attribute("aria-valuenow") == "100"
    assert_accessible(page)
    assert Message.objects.filter(kind=Message.Kind.TIP).count() == 2

    # The list shows it sent.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    page.get_by_role("cell", name="2 / 2").wait_for()
    assert_accessible(page)


@pytest.mark.django_db(transaction=True)
def test_a_campaign_link_never_dead_ends(phone_page, live_server, bob):
    """On a phone, as a customer: the running campaign, an ended one, a mangled link."""
    page = phone_page
    base = live_server.url
    today = business_today()

    def sent(title: str, starts: int, ends: int, **extra: str) -> Campaign:
        campaign = campaign_create(
            details=CampaignDetails(
                title=title,
                kind=Campaign.Kind.EVENT,
                starts_on=today + timedelta(days=starts),
                ends_on=today + timedelta(days=ends),
                subject_en=title,
                body_en=f"All about {title}.",
                link_url="https://example.com/book",
                **extra,
            ),
            actor=bob,
        )
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT, sent_at=campaign.created_at)
        return campaign

    running = sent("Open day", 5, 5, link_label_en="Book a place")
    ended = sent("Winter open day", -40, -10)

    page.goto(f"{base}/portal/c/{running.public_id}/?lang=en")
    page.get_by_role("heading", name="Open day").wait_for()
    assert page.get_by_role("link", name="Book a place").is_visible()
    assert_accessible(page)

    response = page.goto(f"{base}/portal/c/{ended.public_id}/?lang=en")
    assert response.status == 200
    page.get_by_role("heading", name="This offer has ended").wait_for()
    page.get_by_role("link", name="Open day").click()
    page.get_by_role("heading", name="Open day").wait_for()

    page.goto(f"{base}/portal/c/{ended.public_id}/?lang=en")
    assert_accessible(page)

    response = page.goto(f"{base}/portal/c/{str(running.public_id)[:20]}/")
    assert response.status == 404
    page.get_by_role("heading", name="We could not find this page").wait_for()
    assert page.get_by_role("link", name="open your portal").is_visible()
    assert_accessible(page)
