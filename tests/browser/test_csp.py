"""The Content-Security-Policy in Chromium: the main staff pages, the admin and the portal, walked
with the policy enforced, and not one violation on the way — neither a `securitypolicyviolation`
event (recorded by a script in every document before the page's own) nor a console message
naming the policy (those come from every frame, the email preview's sandboxed one included).

What the policy would break is checked to still work: the schedule's blocks stand where their
window is (custom properties set from data-style), a progress bar is as long as its percentage,
the email preview keeps its inline styles (the one page allowed style attributes), the jobs
search filters through htmx (no eval), and the portal's live status polls.

One browser context per side, staff then customer.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from crm.links import make_link_token, visit_answer_url
from crm.models import Campaign, Contact, Customer, ImportRun, Job, Pipeline, StaffProfile, Visit, VisitKind
from crm.services.campaigns import CampaignDetails, campaign_create
from crm.services.visits import visit_book
from crm.workdays import business_today
from portal import views
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

PARIS = ZoneInfo("Europe/Paris")

RECORD_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolation({
    page: document.URL, directive: event.violatedDirective, blocked: event.blockedURI, sample: event.sample,
  });
});
"""


class Violations:
    """What the policy blocked, in every page of one browser context."""

    def __init__(self, context: Any) -> None:
        self.seen: list[str] = []
        context.expose_binding("__cspViolation", lambda source, found: self.seen.append(str(found)))
        context.add_init_script(RECORD_VIOLATIONS)

    def watch(self, page: Any) -> Any:
        page.on("console", self._console)
        return page

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.seen.append(f"console: {message.text}")


def open_page(page: Any, url: str, status: int = 200) -> None:
    response = page.goto(url)
    assert response.status == status, url
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy, f"{url}: no policy enforced ({policy!r})"
    page.wait_for_load_state("load")


@pytest.fixture(autouse=True)
def _fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "LIVE_STATUS_SECONDS", 1)


@pytest.fixture
def john(customer: Customer) -> Contact:
    return Contact.objects.create(customer=customer, name="John Smith", email="john@example.com", language="en")


@pytest.fixture
def visit(job: Job, john: Contact, installation: Pipeline, bob: User) -> Visit:
    StaffProfile.objects.create(user=bob, phone="+33 6 11 22 33 44", job_title="Installer")
    kind = VisitKind.objects.create(
        pipeline=installation, name="Survey", window_minutes=120, duration_minutes=90, stage=installation.stages.first()
    )
    day = business_today() + timedelta(days=7)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return visit_book(
        job=job,
        kind=kind,
        window_start=datetime.combine(day, time(10, 0), tzinfo=PARIS),
        installers=[bob],
        address="12 rue des Lilas\n75011 Paris",
        actor=bob,
    )


@pytest.fixture
def campaigns(bob: User, contact: Contact, john: Contact) -> tuple[Campaign, Campaign]:
    today = business_today()

    def make(title: str) -> Campaign:
        return campaign_create(
            details=CampaignDetails(
                title=title,
                kind=Campaign.Kind.TIP,
                starts_on=today,
                ends_on=today + timedelta(days=30),
                subject_en=title,
                body_en="A clean filter saves energy.",
                subject_fr=title,
                body_fr="Un filtre propre économise de l'énergie.",
            ),
            actor=bob,
        )

    draft, sent = make("Spring filter tip"), make("Winter filter tip")
    Campaign.objects.filter(pk=sent.pk).update(status=Campaign.Status.SENT, sent_at=timezone.now())
    return draft, sent


@pytest.fixture
def running_import(bob: User) -> ImportRun:
    return ImportRun.objects.create(
        file_name="customers.csv",
        encoding="utf-8",
        delimiter=",",
        headers=["name", "email"],
        status=ImportRun.Status.RUNNING,
        total_rows=4,
        processed_rows=1,
        created_by=bob,
        started_at=timezone.now(),
    )


def test_the_staff_pages_and_the_admin_break_no_rule_of_the_policy(
    browser: Any,
    live_server: Any,
    superuser: User,
    job: Job,
    visit: Visit,
    campaigns: tuple[Campaign, Campaign],
    running_import: ImportRun,
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    violations = Violations(context)
    page = violations.watch(context.new_page())
    base = live_server.url
    draft, sent = campaigns
    try:
        sign_in(page, f"{base}/", username="root")
        for name, args in [
            ("crm:home", []),
            ("crm:jobs", []),
            ("crm:job", [job.public_id]),
            ("crm:job_board", []),
            ("crm:customer", [job.customer.pk]),
            ("crm:health", []),
            ("crm:satisfaction", []),
            ("crm:campaigns", []),
            ("crm:campaign", [draft.public_id]),
            ("crm:campaign_new", []),
            ("crm:import", []),
            ("crm:today", []),
        ]:
            open_page(page, base + reverse(name, args=args))

        # The jobs search filters in place: htmx, with no eval.
        open_page(page, base + reverse("crm:jobs"))
        page.get_by_label("Search", exact=True).fill("no such job")
        expect(page.locator("#job-results")).not_to_contain_text(job.reference)

        # The navigation's search brings its results in place; its page stands alone.
        page.get_by_label("Search jobs, customers and contacts").fill(job.reference)
        expect(page.locator("#nav-search-results")).to_contain_text(job.title)
        open_page(page, base + reverse("crm:search") + f"?q={job.reference}")

        # A board card picked up and dropped in the next column opens its move's preview.
        open_page(page, base + reverse("crm:job_board") + "?owner=all")
        column = page.locator(".board-cards").nth(1).bounding_box()
        grip = page.locator(".board-card", has_text=job.reference).get_by_text(job.customer.name).bounding_box()
        page.mouse.move(grip["x"] + 5, grip["y"] + 5)
        page.mouse.down()
        page.mouse.move(grip["x"] + 25, grip["y"] + 25, steps=5)
        page.mouse.move(column["x"] + column["width"] / 2, column["y"] + column["height"] / 2, steps=15)
        page.mouse.up()
        page.wait_for_url("**/board-move/**")

        # The schedule: the visit's block placed by its window, not at the left edge.
        monday = visit.window_start.astimezone(PARIS).date()
        open_page(page, base + reverse("crm:schedule") + f"?week={monday.isoformat()}&who=team")
        block = page.locator(".schedule-block").first
        expect(block).to_be_visible()
        assert block.evaluate("e => getComputedStyle(e).getPropertyValue('--left')").endswith("%")
        assert block.evaluate("e => e.offsetLeft") > 0

        # Progress bars as long as they say: 25 % of the import, 100 % of the sent campaign.
        open_page(page, base + reverse("crm:import_detail", args=[running_import.public_id]))
        filled = (  # Bootstrap's bar grows to its width (a .6 s transition)
            "([label, share]) => { const bar = document.querySelector(`[aria-label='${label}']`);"
            " return Math.abs(bar.firstElementChild.offsetWidth / bar.offsetWidth - share) < 0.02; }"
        )
        page.wait_for_function(filled, arg=["Import progress", 0.25])
        open_page(page, base + reverse("crm:campaign", args=[sent.public_id]))
        page.wait_for_function(filled, arg=["Sending progress", 1])

        # The email preview keeps its inline styles (its page's one exception to the policy).
        open_page(page, base + reverse("crm:campaign_preview", args=[draft.public_id, "fr"]))
        email = page.frame_locator("iframe[title='The email as it will look']")
        expect(email.get_by_text("Un filtre propre économise de l'énergie.")).to_be_visible()
        assert email.locator("body").evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(243, 244, 246)"

        # A page that is not there is under the policy too.
        open_page(page, f"{base}/no-such-page/", status=404)

        # The admin: its index, a list with its actions, a change page with its widgets.
        open_page(page, base + reverse("admin:index"))
        open_page(page, base + reverse("admin:crm_job_changelist"))
        open_page(page, base + reverse("admin:crm_job_change", args=[job.pk]))
        open_page(page, base + reverse("admin:crm_contact_change", args=[job.customer.contacts.first().pk]))
        page.wait_for_timeout(300)  # whatever the admin's scripts do once loaded
        assert violations.seen == []
    finally:
        context.close()


def test_the_portal_breaks_no_rule_of_the_policy(browser: Any, live_server: Any, visit: Visit, john: Contact) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    context.set_default_timeout(10_000)
    violations = Violations(context)
    page = violations.watch(context.new_page())
    base = live_server.url
    job = visit.job
    try:
        page.goto(base + reverse("portal:enter", args=[make_link_token(john)]) + f"?job={job.public_id}")
        # The live status still polls (every second here), now without an hx-trigger filter.
        status_url = reverse("portal:job_status", args=[job.public_id])
        with page.expect_response(lambda response: response.url.endswith(status_url)):
            open_page(page, base + reverse("portal:job", args=[job.public_id]))
        expect(page.locator("#visit")).to_be_visible()
        open_page(page, base + reverse("portal:home"))
        open_page(page, base + reverse("portal:preferences"))
        open_page(page, base + visit_answer_url(john, visit, "confirm").removeprefix(settings.SITE_URL))
        open_page(page, f"{base}/portal/no-such-page/", status=404)
        assert violations.seen == []
    finally:
        context.close()
