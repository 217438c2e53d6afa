"""Stage roles: who answers for the customer during each stage. "Sales" holds the first two stages
of the pipeline, the "installation coordinator" the fitting; when a job reaches a stage whose role
is held by someone else, that person becomes its owner (open promises follow), is told, and the
customer is introduced to them. A reassignment, or a new holder of the current stage's role, does
the same hand-over and tells both sides.

Time is frozen on Monday 2 March 2026, 10:00 in Paris, the day bob's heat pump job starts
(Request received Mon 2 March, Proposal sent Thu 5, Order confirmed Thu 12, Installation
scheduled Mon 16, Installed Mon 30 March, the internal Follow-up Mon 6 April).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.errors import DomainError
from crm.links import portal_url
from crm.models import (
    Commitment,
    Contact,
    Customer,
    Job,
    JobEvent,
    JobRole,
    Message,
    Pipeline,
    PipelineRole,
    StaffProfile,
    StageTemplate,
)
from crm.services.jobs import job_advance, job_create, job_reassign, job_roles_set, jobs_advance
from tests.conftest import INSTALLATION_STAGES, make_pipeline

PARIS = ZoneInfo("Europe/Paris")
MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)
OPEN = Commitment.OPEN_STATES


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(MONDAY_MORNING, tick=False)


# --- The world ----------------------------------------------------------------------------------


@pytest.fixture
def bob_profile(bob: User) -> StaffProfile:
    return StaffProfile.objects.create(user=bob, phone="+33 1 99 00 12 02", job_title="Project manager")


@pytest.fixture
def coordinator(charlie: User) -> User:
    """charlie, with the full name and card a customer is introduced to."""
    charlie.first_name, charlie.last_name = "Charlie", "Lefèvre"
    charlie.save()
    StaffProfile.objects.create(user=charlie, phone="+33 1 99 00 12 03", job_title="Installation coordinator")
    return User.objects.select_related("staff_profile").get(pk=charlie.pk)


def with_roles(pipeline: Pipeline, *, coordinator_holder: User | None) -> Pipeline:
    """ "sales" for the first two stages, the "installation coordinator" for stages 4 and 5."""
    sales = PipelineRole.objects.create(pipeline=pipeline, name="sales")
    fitting = PipelineRole.objects.create(
        pipeline=pipeline, name="installation coordinator", default_holder=coordinator_holder
    )
    pipeline.stages.filter(position__in=[1, 2]).update(role=sales)
    pipeline.stages.filter(position__in=[4, 5]).update(role=fitting)
    return pipeline


@pytest.fixture
def roles_pipeline(db, coordinator: User) -> Pipeline:
    return with_roles(make_pipeline("Installation with roles", INSTALLATION_STAGES), coordinator_holder=coordinator)


@pytest.fixture
def john(customer: Customer) -> Contact:
    return Contact.objects.create(customer=customer, name="John Smith", email="john@example.com", language="en")


def new_job(pipeline: Pipeline, customer: Customer, owner: User, contacts: list[Contact], **kwargs) -> Job:
    return job_create(
        customer=customer,
        pipeline=pipeline,
        owner=owner,
        title=kwargs.pop("title", "Heat pump installation"),
        actor=owner,
        contacts=contacts,
        start_date=date(2026, 3, 2),
        notify_customer=False,
        not_told_reason="The welcome is test_welcome.py's business.",
        **kwargs,
    )


@pytest.fixture
def job(roles_pipeline: Pipeline, customer: Customer, contact: Contact, john: Contact, bob: User, bob_profile) -> Job:
    return new_job(roles_pipeline, customer, bob, [contact, john])


def role(pipeline: Pipeline, name: str) -> PipelineRole:
    return pipeline.roles.get(name=name)


def stage(job: Job, name: str) -> StageTemplate:
    return job.pipeline.stages.get(name=name)


def advance(job: Job, to: str, *, actor: User | None = None, **kwargs) -> Job:
    return job_advance(job=job, to_stage=stage(job, to), actor=actor or job.owner, **kwargs)


def fresh(job: Job) -> Job:
    return Job.objects.select_related("owner").get(pk=job.pk)


def holders(job: Job) -> dict[str, User]:
    return {row.role.name: row.holder for row in JobRole.objects.filter(job=job).select_related("role", "holder")}


def owner_changes(job: Job) -> list[JobEvent]:
    return list(job.events.filter(kind=JobEvent.Kind.OWNER_CHANGED).order_by("pk"))


def staff_alerts(user: User) -> list[Message]:
    return list(Message.objects.filter(kind=Message.Kind.STAFF_ALERT, staff=user).order_by("pk"))


def customer_messages(job: Job, kind: str) -> dict[str, Message]:
    return {m.contact.name: m for m in Message.objects.filter(job=job, kind=kind).select_related("contact")}


def sign_in(client: Client, contact: Contact, job: Job) -> Client:
    response = client.get(portal_url(contact, job))
    assert response.status_code == 302, response
    return client


# --- Who holds what, from the start -------------------------------------------------------------


def test_a_new_job_gives_the_first_role_to_its_owner_and_the_others_to_their_usual_holder(
    job: Job, bob: User, coordinator: User
) -> None:
    assert holders(job) == {"sales": bob, "installation coordinator": coordinator}
    assert job.owner == bob


def test_a_usual_holder_who_left_is_replaced_by_the_owner(
    roles_pipeline: Pipeline, customer: Customer, contact: Contact, bob: User, coordinator: User
) -> None:
    coordinator.is_active = False
    coordinator.save()
    job = new_job(roles_pipeline, customer, bob, [contact])
    assert holders(job) == {"sales": bob, "installation coordinator": bob}


# --- Reaching the coordinator's stage hands the job over -----------------------------------------


def test_reaching_the_coordinators_stage_makes_them_the_owner_with_the_open_promises(
    job: Job, bob: User, coordinator: User
) -> None:
    advance(job, "Order confirmed")
    assert fresh(job).owner == bob
    assert owner_changes(job) == []

    advance(job, "Installation scheduled", actor=bob)

    assert fresh(job).owner == coordinator
    open_promises = job.commitments.filter(state__in=OPEN)
    assert [c.title for c in open_promises] == ["Installed"]
    assert {c.owner for c in open_promises} == {coordinator}
    # What bob kept stays his.
    assert {c.owner for c in job.commitments.filter(state=Commitment.State.KEPT)} == {bob}


def test_the_hand_over_is_recorded(job: Job, bob: User, coordinator: User) -> None:
    advance(job, "Installation scheduled", actor=bob)

    [changed] = owner_changes(job)
    assert changed.actor == bob
    assert changed.data == {
        "old_owner": "Bob Durand",
        "old_owner_id": bob.pk,
        "new_owner": "Charlie Lefèvre",
        "new_owner_id": coordinator.pk,
        "reason": "“Installation scheduled” is in the hands of the installation coordinator.",
        "stage": "Installation scheduled",
        "role": "installation coordinator",
        "told_customer": True,
    }
    advanced = job.events.get(kind=JobEvent.Kind.STAGE_ADVANCED)
    assert advanced.data["to_stage"] == "Installation scheduled"


def test_the_new_owner_is_alerted(job: Job, bob: User, coordinator: User) -> None:
    advance(job, "Installation scheduled", actor=bob)

    [alert] = staff_alerts(coordinator)
    assert alert.to_address == "charlie@example.com"
    assert alert.status == Message.Status.QUEUED
    assert alert.language == "en"
    assert alert.subject == f"You are now the contact for {job.reference} Heat pump installation"
    body = alert.body_text
    assert (
        f"{job.reference} Heat pump installation (Dupont household) has reached “Installation scheduled”: "
        "as its installation coordinator, you are the customer's contact from now on."
    ) in body
    assert "Until now: Bob Durand." in body
    assert "The customer has been told, with your name and direct line." in body
    assert "1 open promise is now yours." in body
    assert f"http://testserver{job.get_absolute_url()}" in body
    assert staff_alerts(bob) == []


def test_the_stage_message_introduces_the_new_contact_with_their_card(
    job: Job, bob: User, coordinator: User, contact: Contact
) -> None:
    advance(job, "Installation scheduled", actor=bob)

    messages = customer_messages(job, Message.Kind.STAGE_CHANGE)
    assert sorted(messages) == ["John Smith", "Marie Dupont"]
    john = messages["John Smith"]
    assert "From now on Charlie Lefèvre (Installation coordinator) is your contact." in john.body_text
    assert "Your point of contact is Charlie Lefèvre, +33 1 99 00 12 03, charlie@example.com." in john.body_text
    assert "Bob" not in john.body_text
    html = john.body_html
    assert "From now on <strong>Charlie Lefèvre</strong> (Installation coordinator) is your contact." in html
    assert 'href="tel:+33199001203"' in html and "mailto:charlie@example.com" in html
    # Marie reads it in French, with the same person.
    marie = messages["Marie Dupont"]
    assert marie.language == "fr"
    assert "Charlie Lefèvre" in marie.body_text and "+33 1 99 00 12 03" in marie.body_text
    assert "Bob Durand" not in marie.body_text


def test_the_portal_shows_the_new_contact(
    client: Client, job: Job, bob: User, coordinator: User, john: Contact
) -> None:
    page_url = reverse("portal:job", args=[job.public_id])
    sign_in(client, john, job)
    assert "Bob Durand" in client.get(page_url).text

    advance(job, "Installation scheduled", actor=bob)

    page = client.get(page_url).text
    assert "Charlie Lefèvre" in page
    assert "Installation coordinator" in page
    assert 'href="tel:+33199001203"' in page
    assert "Bob Durand" not in page


def test_a_hand_over_without_telling_the_customer_says_so_to_the_new_owner(
    job: Job, bob: User, coordinator: User
) -> None:
    advance(job, "Installation scheduled", actor=bob, notify_customer=False)

    assert fresh(job).owner == coordinator
    assert owner_changes(job)[0].data["told_customer"] is False
    assert not Message.objects.filter(job=job, kind=Message.Kind.STAGE_CHANGE).exists()
    [alert] = staff_alerts(coordinator)
    assert "The customer has not been told yet: introduce yourself." in alert.body_text


def test_the_holder_who_moves_the_job_themselves_is_not_alerted(job: Job, coordinator: User) -> None:
    advance(job, "Installation scheduled", actor=coordinator)

    assert fresh(job).owner == coordinator
    assert len(owner_changes(job)) == 1
    assert staff_alerts(coordinator) == []


def test_moving_several_jobs_at_once_hands_each_over(
    roles_pipeline: Pipeline, job: Job, customer: Customer, contact: Contact, bob: User, coordinator: User
) -> None:
    other = new_job(roles_pipeline, customer, bob, [contact], title="Solar panels")

    jobs_advance(jobs=[job, other], to_stage=stage(job, "Installation scheduled"), actor=bob)

    for each in (job, other):
        assert fresh(each).owner == coordinator
        assert len(owner_changes(each)) == 1
        assert {c.owner for c in each.commitments.filter(state__in=OPEN)} == {coordinator}
    assert len(staff_alerts(coordinator)) == 2
    for message in Message.objects.filter(kind=Message.Kind.STAGE_CHANGE, contact__language="en"):
        assert "From now on Charlie Lefèvre (Installation coordinator) is your contact." in message.body_text


def test_the_next_stage_of_the_same_role_hands_nothing_over_again(job: Job, bob: User, coordinator: User) -> None:
    advance(job, "Installation scheduled", actor=bob)
    advance(job, "Installed", actor=coordinator)

    assert fresh(job).owner == coordinator
    assert len(owner_changes(job)) == 1
    installed = Message.objects.filter(
        job=job, idempotency_key__startswith=f"stage:{job.pk}:{stage(job, 'Installed').pk}:"
    )
    assert installed.count() == 2
    assert not any("From now on" in m.body_text for m in installed)
    assert len(staff_alerts(coordinator)) == 1


# --- Nothing changes hands when nothing should --------------------------------------------------


def test_a_pipeline_without_roles_keeps_the_owner(
    installation: Pipeline, customer: Customer, contact: Contact, john: Contact, bob: User, coordinator: User
) -> None:
    job = new_job(installation, customer, bob, [contact, john])
    assert holders(job) == {}

    advance(job, "Installation scheduled", actor=bob)
    advance(job, "Installed", actor=bob)

    assert fresh(job).owner == bob
    assert owner_changes(job) == []
    assert staff_alerts(coordinator) == [] and staff_alerts(bob) == []
    assert {c.owner for c in job.commitments.all()} == {bob}
    for message in Message.objects.filter(job=job, kind=Message.Kind.STAGE_CHANGE):
        assert "From now on" not in message.body_text


def test_a_stage_whose_role_the_owner_holds_hands_nothing_over(job: Job, bob: User) -> None:
    advance(job, "Proposal sent", actor=bob)

    assert fresh(job).owner == bob
    assert owner_changes(job) == []
    assert staff_alerts(bob) == []
    for message in Message.objects.filter(job=job, kind=Message.Kind.STAGE_CHANGE):
        assert "From now on" not in message.body_text


def test_a_coordinators_stage_held_by_the_owner_hands_nothing_over(
    customer: Customer, contact: Contact, bob: User, bob_profile
) -> None:
    pipeline = with_roles(make_pipeline("Installation, bob does it all", INSTALLATION_STAGES), coordinator_holder=None)
    job = new_job(pipeline, customer, bob, [contact])
    assert holders(job) == {"sales": bob, "installation coordinator": bob}

    advance(job, "Installation scheduled", actor=bob)

    assert fresh(job).owner == bob
    assert owner_changes(job) == []
    assert not job.events.filter(kind=JobEvent.Kind.OWNER_CHANGED).exists()
    assert staff_alerts(bob) == []


# --- A reassignment tells both sides ------------------------------------------------------------


def test_a_reassignment_introduces_the_new_person_to_each_contact(
    job: Job, alice: User, bob: User, coordinator: User
) -> None:
    job_reassign(job=job, owner=coordinator, actor=alice, reason="Bob is on leave")

    assert fresh(job).owner == coordinator
    messages = customer_messages(job, Message.Kind.CONTACT_CHANGED)
    assert sorted(messages) == ["John Smith", "Marie Dupont"]
    john = messages["John Smith"]
    assert john.subject == f"Charlie Lefèvre is now your contact — your job {job.reference}"
    assert (
        "From now on Charlie Lefèvre (Installation coordinator) is your contact for “Heat pump installation”. "
        "Bob Durand has handed your job over with everything you agreed."
    ) in john.body_text
    assert "Your point of contact is Charlie Lefèvre, +33 1 99 00 12 03, charlie@example.com." in john.body_text
    assert 'href="tel:+33199001203"' in john.body_html
    assert john.author == alice
    marie = messages["Marie Dupont"]
    assert marie.language == "fr"
    assert "Charlie Lefèvre" in marie.body_text and "+33 1 99 00 12 03" in marie.body_text
    assert owner_changes(job)[0].data["told_customer"] is True


def test_a_reassignment_alerts_the_new_owner_in_their_language(
    job: Job, alice: User, bob: User, coordinator: User
) -> None:
    coordinator.staff_profile.language = "fr"
    coordinator.staff_profile.save()

    job_reassign(job=job, owner=coordinator, actor=alice, reason="Bob is on leave")

    [alert] = staff_alerts(coordinator)
    assert alert.language == "fr"
    assert alert.to_address == "charlie@example.com"
    assert job.reference in alert.subject and "Heat pump installation" in alert.subject
    assert "Alice Martin" in alert.body_text
    assert "Bob Durand" in alert.body_text
    assert "Bob is on leave" in alert.body_text
    assert f"http://testserver{job.get_absolute_url()}" in alert.body_text
    assert staff_alerts(alice) == [] and staff_alerts(bob) == []


def test_the_french_reassignment_alert_is_written_in_french(job: Job, alice: User, coordinator: User) -> None:
    """Its own test: it needs the French catalogue to have the job-assigned alert's strings."""
    coordinator.staff_profile.language = "fr"
    coordinator.staff_profile.save()

    job_reassign(job=job, owner=coordinator, actor=alice, reason="Bob is on leave")

    [alert] = staff_alerts(coordinator)
    assert alert.subject != f"You are now the contact for {job.reference} Heat pump installation"
    assert "you are the customer's contact from now on" not in alert.body_text


def test_a_reassignment_sets_the_holder_of_the_current_stages_role(
    job: Job, alice: User, bob: User, coordinator: User
) -> None:
    job_reassign(job=job, owner=coordinator, actor=alice)
    assert holders(job) == {"sales": coordinator, "installation coordinator": coordinator}


def test_a_reassignment_at_a_stage_without_a_role_changes_no_holder(
    job: Job, alice: User, bob: User, coordinator: User
) -> None:
    advance(job, "Order confirmed", actor=bob)
    job_reassign(job=job, owner=alice, actor=alice)
    assert fresh(job).owner == alice
    assert holders(job) == {"sales": bob, "installation coordinator": coordinator}


def test_a_reassignment_not_told_sends_the_customer_nothing(
    job: Job, alice: User, bob: User, coordinator: User
) -> None:
    job_reassign(job=job, owner=coordinator, actor=alice, tell_customer=False)

    assert not Message.objects.filter(job=job, kind=Message.Kind.CONTACT_CHANGED).exists()
    assert owner_changes(job)[0].data["told_customer"] is False
    [alert] = staff_alerts(coordinator)
    assert "The customer has not been told yet: introduce yourself." in alert.body_text


# --- Changing who holds a role ------------------------------------------------------------------


def test_a_new_holder_of_a_later_role_takes_the_job_when_it_gets_there(
    job: Job, alice: User, bob: User, coordinator: User
) -> None:
    fitting = role(job.pipeline, "installation coordinator")

    job_roles_set(job=job, holders={fitting: alice}, actor=bob)

    assert holders(job)["installation coordinator"] == alice
    changed = job.events.get(kind=JobEvent.Kind.ROLE_CHANGED)
    assert changed.actor == bob
    assert changed.data["changed"] == [
        {"role": "installation coordinator", "old": "Charlie Lefèvre", "new": "Alice Martin"}
    ]
    # Nothing changes hands yet: the job is still in sales.
    assert fresh(job).owner == bob
    assert owner_changes(job) == []
    assert not Message.objects.filter(job=job).exists()

    advance(job, "Installation scheduled", actor=bob)

    assert fresh(job).owner == alice
    assert owner_changes(job)[0].data["new_owner_id"] == alice.pk
    assert len(staff_alerts(alice)) == 1
    assert staff_alerts(coordinator) == []
    english = customer_messages(job, Message.Kind.STAGE_CHANGE)["John Smith"]
    assert "From now on Alice Martin is your contact." in english.body_text


def test_a_new_holder_of_the_current_stages_role_becomes_the_contact_now(
    job: Job, alice: User, bob: User, coordinator: User
) -> None:
    sales = role(job.pipeline, "sales")

    job_roles_set(job=job, holders={sales: coordinator}, actor=alice)

    assert fresh(job).owner == coordinator
    assert holders(job)["sales"] == coordinator
    assert [e.kind for e in job.events.exclude(kind=JobEvent.Kind.CREATED).order_by("pk")] == [
        JobEvent.Kind.ROLE_CHANGED,
        JobEvent.Kind.OWNER_CHANGED,
    ]
    assert sorted(customer_messages(job, Message.Kind.CONTACT_CHANGED)) == ["John Smith", "Marie Dupont"]
    assert len(staff_alerts(coordinator)) == 1


def test_setting_the_same_holders_changes_nothing(job: Job, bob: User, coordinator: User) -> None:
    before = list(job.events.values_list("pk", flat=True))
    job_roles_set(
        job=job,
        holders={role(job.pipeline, "sales"): bob, role(job.pipeline, "installation coordinator"): coordinator},
        actor=bob,
    )
    assert list(job.events.values_list("pk", flat=True)) == before


def test_a_role_of_another_pipeline_is_refused(job: Job, installation: Pipeline, bob: User, alice: User) -> None:
    stranger = PipelineRole.objects.create(pipeline=installation, name="sales")
    with pytest.raises(DomainError, match="is not a role of the"):
        job_roles_set(job=job, holders={stranger: alice}, actor=bob)


def test_a_role_cannot_go_to_someone_who_is_not_staff(job: Job, bob: User, dana: User) -> None:
    with pytest.raises(DomainError, match="not an active staff member"):
        job_roles_set(job=job, holders={role(job.pipeline, "installation coordinator"): dana}, actor=bob)
    assert not job.events.filter(kind=JobEvent.Kind.ROLE_CHANGED).exists()
