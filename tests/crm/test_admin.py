"""The crm admin: every page answers, and job changes go through the services (one event each)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import (
    Contact,
    Customer,
    Job,
    JobEvent,
    JobRole,
    Message,
    Milestone,
    Pipeline,
    PipelineRole,
    Question,
    StaffProfile,
    StageTemplate,
    Subcontractor,
    VisitKind,
)
from crm.services.csv_import import import_create
from crm.services.jobs import job_advance, job_cancel, job_create, job_hold, job_roles_set, milestone_move
from crm.services.questions import question_create
from crm.workdays import business_today
from tests.files import received

CRM_ADMINS = [model_admin for model, model_admin in admin.site._registry.items() if model._meta.app_label == "crm"]


def url(model: type, view: str, *args: Any) -> str:
    return reverse(f"admin:crm_{model._meta.model_name}_{view}", args=args)


def form_data(response: Any) -> dict[str, Any]:
    """What the browser posts back when nothing is touched: the values of the page's form, of
    each inline form and of each inline's management form (read-only inlines post one too)."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data: dict[str, Any] = {}
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is not None and value is not False:
                data[form.add_prefix(name)] = value
    return data


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def stage(pipeline: Pipeline, name: str) -> StageTemplate:
    return pipeline.stages.get(name=name)


@pytest.fixture
def staff(client: Client, superuser: User) -> Client:
    client.force_login(superuser)
    return client


@pytest.fixture
def fresh_job(customer: Customer, contact: Contact, installation: Pipeline, bob: User) -> Job:
    """A job planned from today, so its later milestones are still ahead."""
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Solar panels",
        actor=bob,
        start_date=business_today(),
    )


def post_job_change(staff: Client, job: Job, **changes: Any) -> Any:
    data = form_data(staff.get(url(Job, "change", job.pk)))
    data.update(changes)
    return staff.post(url(Job, "change", job.pk), data)


def event_kinds(job: Job) -> list[str]:
    return list(job.events.order_by("id").values_list("kind", flat=True))


# --- Every page ---------------------------------------------------------------------------------


@pytest.fixture
def world(job: Job, contact: Contact, bob: User) -> None:
    """At least one row of every crm model (the job brings its customer, pipeline, milestones,
    events and reference counter)."""
    StaffProfile.objects.create(user=bob, phone="+33 1 23 45 67 89", job_title="Production manager")
    received(job, contact, "roof.jpg")
    # A role of the pipeline, named by a stage and held on the job.
    production = PipelineRole.objects.create(pipeline=job.pipeline, name="Production manager", default_holder=bob)
    job.pipeline.stages.filter(name="Order confirmed").update(role=production)
    job_roles_set(job=job, holders={production: bob}, actor=bob)
    Message.objects.create(
        job=job,
        contact=contact,
        channel=Message.Channel.EMAIL,
        kind=Message.Kind.FREE,
        to_address=contact.email,
        subject="Your heat pump",
        idempotency_key="test:1",
    )
    question_create(job=job, contact=contact, body="Can you come in the morning?", source=Question.Source.PORTAL)
    milestone_move(
        milestone=job.milestones.get(stage__position=5),
        new_date=business_today() + timedelta(days=10),
        reason="Parts late",
        actor=bob,
    )
    import_create(
        file_name="customers.csv", data=b"Customer name,Contact name,Email\nDupont,Marie,m@example.com\n", actor=bob
    )
    # After the job: a survey with a low answer (and its recovery call), a check-in.
    from crm.services.checkins import check_in_send
    from crm.services.surveys import survey_answer, survey_invite

    survey = survey_invite(job=job, contact=contact)
    assert survey is not None
    survey_answer(survey=survey, product_quality=2, workmanship=4, installer_conduct=5, recommend=6, comment="Noisy")
    check_in_send(job=job, contact=contact)
    # Positive contact: a campaign (written and sent from the staff pages).
    from crm.services.campaigns import CampaignDetails, campaign_create

    campaign_create(
        details=CampaignDetails(
            title="Spring tip",
            kind="tip",
            starts_on=business_today(),
            ends_on=business_today() + timedelta(days=30),
            subject_en="Clean your filter",
            body_en="Once a month.",
        ),
        actor=bob,
    )
    # A visit, booked from the job page (its kind configured on the pipeline).
    from crm.services.visits import visit_book

    survey_visit = VisitKind.objects.create(pipeline=job.pipeline, name="Site survey")
    Subcontractor.objects.create(name="Acme Roofing", phone="+33 4 78 00 00 00")
    visit_book(
        job=job,
        kind=survey_visit,
        window_start=timezone.now() + timedelta(days=3),
        address="12 rue des Lilas, Lyon",
        actor=bob,
        tell_customer=False,
    )
    # Someone looked at the customer's page (the access log, read by managers in the admin).
    from crm.services.access_log import access_record

    access_record(user=bob, kind="customer", customer_id=job.customer_id, subject=job.customer.name)
    # The contact signed in with a link from their phone.
    from crm.services.contacts import contact_link_use_record

    contact_link_use_record(contact=contact, kind="sign_in", user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)")
    # A number that texted STOP.
    from crm.services.sms_consent import sms_opt_out

    sms_opt_out(number="+33612345678", source="keyword", said="STOP")
    # Other systems: an API key, a webhook endpoint and one delivery to it.
    from crm.models import WebhookDelivery
    from crm.services.api_keys import api_key_create
    from crm.services.webhooks import endpoint_create

    api_key_create(name="ERP", owner=bob, scopes=["jobs:read"], actor=bob)
    endpoint = endpoint_create(
        url="https://erp.example.com/hooks", event_types=["job.created"], description="", actor=bob
    )
    WebhookDelivery.objects.create(
        endpoint=endpoint, event_type="job.created", job=job, payload={"type": "job.created"}
    )


@pytest.mark.parametrize("model_admin", CRM_ADMINS, ids=lambda model_admin: model_admin.opts.model_name)
def test_it_shows_every_page_of_every_crm_model(staff: Client, superuser: User, world: None, model_admin: Any) -> None:
    model = model_admin.model
    obj = model._default_manager.first()
    assert obj is not None, f"the test world has no {model.__name__}: create one above"
    request = RequestFactory().get("/")
    request.user = superuser

    assert staff.get(url(model, "changelist")).status_code == 200
    assert staff.get(url(model, "changelist"), {"q": "Dupont"}).status_code == 200
    can_add = model_admin.has_add_permission(request)
    assert staff.get(url(model, "add")).status_code == (200 if can_add else 403)
    assert staff.get(url(model, "change", obj.pk)).status_code == 200


def test_every_crm_model_is_registered() -> None:
    registered = {model_admin.model for model_admin in CRM_ADMINS}
    assert set(apps.get_app_config("crm").get_models()) == registered


def test_it_filters_jobs_by_every_filter(staff: Client, job: Job, bob: User) -> None:
    for query in ({"status__exact": "active"}, {"late": "yes"}, {"late": "no"}, {"owner__id__exact": bob.pk}):
        assert staff.get(url(Job, "changelist"), query).status_code == 200


# --- Adding a job -------------------------------------------------------------------------------


def test_it_adds_a_job_through_job_create(
    staff: Client, superuser: User, customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    response = staff.post(
        url(Job, "add"),
        {
            "customer": customer.pk,
            "pipeline": installation.pk,
            "owner": bob.pk,
            "title": "New heat pump",
            "contacts": [contact.pk],
            "start_date": "2026-12-01",
            "notify_customer": "on",
        },
    )

    assert response.status_code == 302
    job = Job.objects.get(title="New heat pump")
    assert job.reference.startswith("J-")
    assert job.current_stage == stage(installation, "Request received")
    assert list(job.contacts.all()) == [contact]
    assert job.milestones.count() == installation.stages.count()
    assert job.milestones.get(stage__position=1).planned_date == date(2026, 12, 1)
    created = job.events.get()
    assert (created.kind, created.actor) == (JobEvent.Kind.CREATED, superuser)


def test_it_gives_every_contact_of_the_customer_when_none_is_chosen(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    data = {"customer": customer.pk, "pipeline": installation.pk, "owner": bob.pk, "title": "Boiler"}
    staff.post(url(Job, "add"), {**data, "notify_customer": "on"})

    assert list(Job.objects.get(title="Boiler").contacts.all()) == [contact]


def test_it_refuses_a_contact_of_another_customer(
    staff: Client, customer: Customer, other_customer: Customer, installation: Pipeline, bob: User
) -> None:
    stranger = Contact.objects.create(customer=other_customer, name="Wile Coyote", email="wile@example.com")
    data = {"customer": customer.pk, "pipeline": installation.pk, "owner": bob.pk, "title": "Boiler"}
    response = staff.post(url(Job, "add"), {**data, "contacts": [stranger.pk]})

    assert response.status_code == 200
    assert "Wile Coyote is not a contact of Dupont household." in response.content.decode()
    assert not Job.objects.exists()


def test_it_refuses_a_pipeline_without_stages(staff: Client, customer: Customer, bob: User) -> None:
    empty = Pipeline.objects.create(name="Empty")
    data = {"customer": customer.pk, "pipeline": empty.pk, "owner": bob.pk, "title": "Boiler"}
    response = staff.post(url(Job, "add"), data)

    assert response.status_code == 200
    assert "This pipeline has no stages yet." in response.content.decode()
    assert not Job.objects.exists()


@pytest.fixture
def john(customer: Customer) -> Contact:
    return Contact.objects.create(customer=customer, name="John Smith", email="john@example.com", language="en")


def add_job(staff: Client, customer: Customer, pipeline: Pipeline, owner: User, **fields: Any) -> Any:
    data = {"customer": customer.pk, "pipeline": pipeline.pk, "owner": owner.pk, "title": "New heat pump"}
    return staff.post(url(Job, "add"), {**data, **fields})


def test_it_welcomes_each_contact_of_a_job_added_in_the_admin(
    staff: Client, customer: Customer, contact: Contact, john: Contact, installation: Pipeline, bob: User
) -> None:
    form = staff.get(url(Job, "add")).context["adminform"].form
    assert form["notify_customer"].value() is True  # ticked unless someone unticks it
    assert form.fields["notify_customer"].label == "Welcome the customer now"

    response = add_job(staff, customer, installation, bob, notify_customer="on")

    assert response.status_code == 302
    job = Job.objects.get(title="New heat pump")
    welcomes = Message.objects.filter(job=job, kind=Message.Kind.WELCOME)
    assert sorted(welcomes.values_list("contact__name", flat=True)) == ["John Smith", "Marie Dupont"]
    created = job.events.get(kind=JobEvent.Kind.CREATED)
    assert (created.data["welcomed"], created.data["not_told_reason"]) == (2, "")


def test_it_needs_a_reason_not_to_welcome_the_customer(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    response = add_job(staff, customer, installation, bob, not_told_reason="   ")

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["not_told_reason"] == [
        "Say why the customer is not welcomed: they will hear nothing until the next stage."
    ]
    assert not Job.objects.exists()
    assert not Message.objects.exists()


def test_it_records_why_the_customer_was_not_welcomed(
    staff: Client, customer: Customer, contact: Contact, john: Contact, installation: Pipeline, bob: User
) -> None:
    response = add_job(staff, customer, installation, bob, not_told_reason=" Signed in the showroom today ")

    assert response.status_code == 302
    job = Job.objects.get(title="New heat pump")
    assert not Message.objects.filter(job=job).exists()
    created = job.events.get(kind=JobEvent.Kind.CREATED)
    assert (created.data["welcomed"], created.data["not_told_reason"]) == (0, "Signed in the showroom today")


# --- Changing a job -----------------------------------------------------------------------------


def test_it_reassigns_the_owner_through_the_service(staff: Client, superuser: User, job: Job, alice: User) -> None:
    response = post_job_change(staff, job, owner=alice.pk)

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.owner == alice
    event = job.events.get(kind=JobEvent.Kind.OWNER_CHANGED)
    assert event.actor == superuser
    assert event_kinds(job) == [JobEvent.Kind.CREATED, JobEvent.Kind.OWNER_CHANGED]


def test_it_changes_the_details_through_the_service(staff: Client, job: Job, charlie: User) -> None:
    response = post_job_change(staff, job, title="Heat pump and boiler", installers=[charlie.pk])

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.title == "Heat pump and boiler"
    assert list(job.installers.all()) == [charlie]
    event = job.events.get(kind=JobEvent.Kind.DETAILS_CHANGED)
    assert set(event.data["changed"]) == {"title", "installers"}


def test_it_writes_nothing_when_nothing_changed(staff: Client, job: Job) -> None:
    response = post_job_change(staff, job)

    assert response.status_code == 302
    assert event_kinds(job) == [JobEvent.Kind.CREATED]


def test_it_advances_through_the_service(staff: Client, superuser: User, job: Job, installation: Pipeline) -> None:
    response = post_job_change(staff, job, advance_to=stage(installation, "Order confirmed").pk)

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.current_stage.name == "Order confirmed"
    event = job.events.get(kind=JobEvent.Kind.STAGE_ADVANCED)
    assert (event.actor, event.data["from_stage"]) == (superuser, "Request received")
    assert job.milestones.filter(completed_at__isnull=False).count() == 3


@pytest.mark.parametrize("notify", [True, False])
def test_it_tells_the_customer_only_if_asked(staff: Client, job: Job, installation: Pipeline, notify: bool) -> None:
    data = form_data(staff.get(url(Job, "change", job.pk)))
    data["advance_to"] = stage(installation, "Proposal sent").pk
    if not notify:
        del data["notify_customer"]
    staff.post(url(Job, "change", job.pk), data)

    assert job.messages.exists() == notify


def test_it_goes_back_with_a_reason(staff: Client, job: Job, installation: Pipeline, bob: User) -> None:
    job_advance(job=job, to_stage=stage(installation, "Order confirmed"), actor=bob)
    response = post_job_change(
        staff, job, advance_to=stage(installation, "Proposal sent").pk, backwards_reason="Customer wants changes"
    )

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.current_stage.name == "Proposal sent"
    assert job.events.get(kind=JobEvent.Kind.STAGE_REVERTED).data["reason"] == "Customer wants changes"


def test_it_refuses_to_go_back_without_a_reason(staff: Client, job: Job, installation: Pipeline, bob: User) -> None:
    job_advance(job=job, to_stage=stage(installation, "Order confirmed"), actor=bob)
    events_before = JobEvent.objects.count()
    response = post_job_change(staff, job, title="Changed too", advance_to=stage(installation, "Proposal sent").pk)

    assert response.status_code == 200
    assert "needs a reason" in response.content.decode()
    job.refresh_from_db()
    assert (job.current_stage.name, job.title) == ("Order confirmed", "Heat pump installation")
    assert JobEvent.objects.count() == events_before


def test_it_refuses_to_advance_a_cancelled_job(staff: Client, job: Job, installation: Pipeline, bob: User) -> None:
    job_cancel(job=job, actor=bob, reason="Customer moved away")
    events_before = JobEvent.objects.count()
    response = post_job_change(staff, job, advance_to=stage(installation, "Proposal sent").pk)

    assert response.status_code == 200
    assert "it can no longer change stage" in response.content.decode()
    job.refresh_from_db()
    assert job.current_stage.name == "Request received"
    assert JobEvent.objects.count() == events_before


def test_it_refuses_a_stage_change_over_a_colleagues(
    staff: Client, job: Job, installation: Pipeline, bob: User
) -> None:
    data = form_data(staff.get(url(Job, "change", job.pk)))
    job_advance(job=job, to_stage=stage(installation, "Proposal sent"), actor=bob)  # bob, meanwhile
    response = staff.post(url(Job, "change", job.pk), {**data, "advance_to": stage(installation, "Installed").pk})

    assert response.status_code == 200
    assert "Bob Durand moved job" in response.content.decode()
    job.refresh_from_db()
    assert job.current_stage.name == "Proposal sent"


def test_it_says_it_was_you_who_moved_the_job_in_another_window(
    staff: Client, superuser: User, job: Job, installation: Pipeline
) -> None:
    data = form_data(staff.get(url(Job, "change", job.pk)))
    job_advance(job=job, to_stage=stage(installation, "Proposal sent"), actor=superuser)  # in another tab
    response = staff.post(url(Job, "change", job.pk), {**data, "advance_to": stage(installation, "Installed").pk})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["advance_to"] == [
        f"You (in another window) moved job {job.reference} to “Proposal sent” in the meantime; "
        "look again before changing it."
    ]


def test_it_rolls_back_the_whole_save_when_a_service_refuses(
    staff: Client, job: Job, installation: Pipeline, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form's checks can be overtaken by a colleague; the service's refusal then undoes the
    details already written in the same save and is shown, not a 500."""
    data = form_data(staff.get(url(Job, "change", job.pk)))
    job_hold(job=job, actor=bob, reason="Waiting for the customer")  # bob, meanwhile
    monkeypatch.setattr("crm.admin_forms.ensure_can_advance", lambda *args, **kwargs: None)
    events_before = JobEvent.objects.count()
    response = staff.post(
        url(Job, "change", job.pk), {**data, "title": "Renamed", "advance_to": stage(installation, "Proposal sent").pk}
    )

    assert response.status_code == 302
    assert response["Location"] == url(Job, "change", job.pk)
    assert messages_of(response) == [f"Job {job.reference} is on hold: resume it before changing its stage."]
    job.refresh_from_db()
    assert (job.title, job.current_stage.name) == ("Heat pump installation", "Request received")
    assert JobEvent.objects.count() == events_before


def test_it_shows_milestones_and_events_read_only(staff: Client, job: Job) -> None:
    response = staff.get(url(Job, "change", job.pk))

    inlines = {inline.formset.model: inline for inline in response.context["inline_admin_formsets"]}
    for model in (Milestone, JobEvent):
        inline = inlines[model]
        assert not (inline.has_add_permission or inline.has_change_permission or inline.has_delete_permission)
    assert url(Milestone, "change", job.milestones.get(stage__position=2).pk) in response.content.decode()


def test_it_shows_a_job_to_who_may_only_view_it(client: Client, bob: User, job: Job) -> None:
    bob.user_permissions.set(Permission.objects.filter(codename__in=["view_job", "view_milestone", "view_jobevent"]))
    client.force_login(bob)
    response = client.get(url(Job, "change", job.pk))

    assert response.status_code == 200
    assert "Heat pump installation" in response.content.decode()
    assert "Move to stage" not in response.content.decode()
    assert client.post(url(Job, "change", job.pk), {"title": "Renamed"}).status_code == 403


# --- Who answers for the customer during each stage ----------------------------------------------


@pytest.fixture
def roles_job(installation: Pipeline, customer: Customer, contact: Contact, bob: User, charlie: User) -> Job:
    """ "Sales" for the first two stages (bob, the owner, holds it), the "Installation coordinator"
    for the fitting (charlie usually does)."""
    sales = PipelineRole.objects.create(pipeline=installation, name="Sales")
    fitting = PipelineRole.objects.create(
        pipeline=installation, name="Installation coordinator", default_holder=charlie
    )
    installation.stages.filter(position__in=[1, 2]).update(role=sales)
    installation.stages.filter(position__in=[4, 5]).update(role=fitting)
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Heat pump with roles",
        actor=bob,
        notify_customer=False,
        not_told_reason="Under way already.",
    )


def holder_field(response: Any, role_name: str) -> Any:
    """The holder field of the job page's line for that role."""
    [inline] = [i for i in response.context["inline_admin_formsets"] if i.formset.model is JobRole]
    [form] = [f for f in inline.formset.forms if f.instance.role.name == role_name]
    return form["holder"]


def test_the_job_page_shows_who_holds_each_role(
    staff: Client, roles_job: Job, bob: User, charlie: User, dana: User
) -> None:
    User.objects.create_user("gone", is_staff=True, is_active=False)
    response = staff.get(url(Job, "change", roles_job.pk))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Who answers for the customer" in page
    assert "Installation scheduled, Installed" in page
    assert holder_field(response, "Sales").value() == bob.pk
    coordinator = holder_field(response, "Installation coordinator")
    assert coordinator.value() == charlie.pk
    offered = set(coordinator.field.queryset.values_list("username", flat=True))
    assert {"bob", "charlie"} <= offered
    assert not {"dana", "gone"} & offered  # active staff only


def test_a_new_role_holder_is_saved_through_the_service(
    staff: Client, superuser: User, roles_job: Job, alice: User, bob: User
) -> None:
    response = staff.get(url(Job, "change", roles_job.pk))
    data = form_data(response)
    data[holder_field(response, "Installation coordinator").html_name] = alice.pk

    assert staff.post(url(Job, "change", roles_job.pk), data).status_code == 302

    assert JobRole.objects.get(job=roles_job, role__name="Installation coordinator").holder == alice
    changed = roles_job.events.get(kind=JobEvent.Kind.ROLE_CHANGED)
    assert changed.actor == superuser
    assert changed.data["changed"] == [{"role": "Installation coordinator", "old": "charlie", "new": "Alice Martin"}]
    roles_job.refresh_from_db()
    assert roles_job.owner == bob  # the coordinator answers from "Installation scheduled" on


def test_a_new_holder_of_the_current_stages_role_becomes_the_contact(
    staff: Client, roles_job: Job, alice: User, contact: Contact
) -> None:
    response = staff.get(url(Job, "change", roles_job.pk))
    data = form_data(response)
    data[holder_field(response, "Sales").html_name] = alice.pk

    assert staff.post(url(Job, "change", roles_job.pk), data).status_code == 302

    roles_job.refresh_from_db()
    assert roles_job.owner == alice
    assert event_kinds(roles_job)[-2:] == [JobEvent.Kind.ROLE_CHANGED, JobEvent.Kind.OWNER_CHANGED]
    told = Message.objects.get(job=roles_job, kind=Message.Kind.CONTACT_CHANGED)
    assert told.contact == contact


def test_entering_the_coordinators_stage_in_the_admin_hands_the_job_over(
    staff: Client, roles_job: Job, installation: Pipeline, charlie: User
) -> None:
    response = post_job_change(staff, roles_job, advance_to=stage(installation, "Installation scheduled").pk)

    assert response.status_code == 302
    roles_job.refresh_from_db()
    assert roles_job.owner == charlie
    handed = roles_job.events.get(kind=JobEvent.Kind.OWNER_CHANGED)
    assert (handed.data["role"], handed.data["stage"]) == ("Installation coordinator", "Installation scheduled")


def test_a_closed_job_keeps_who_held_each_role(staff: Client, roles_job: Job, bob: User) -> None:
    job_cancel(job=roles_job, actor=bob, reason="Customer moved away")
    response = staff.get(url(Job, "change", roles_job.pk))

    [inline] = [i for i in response.context["inline_admin_formsets"] if i.formset.model is JobRole]
    assert not (inline.has_add_permission or inline.has_change_permission or inline.has_delete_permission)
    assert "Installation coordinator" in response.content.decode()


# --- Job actions --------------------------------------------------------------------------------


def act(staff: Client, action: str, jobs: list[Job], reason: str = "") -> Any:
    data = {"action": action, "_selected_action": [job.pk for job in jobs], "reason": reason}
    return staff.post(url(Job, "changelist"), data)


def test_it_holds_resumes_and_completes(staff: Client, superuser: User, job: Job) -> None:
    act(staff, "hold", [job], reason="Waiting for parts")
    job.refresh_from_db()
    assert job.status == Job.Status.ON_HOLD
    held = job.events.get(kind=JobEvent.Kind.HELD)
    assert (held.actor, held.data["reason"]) == (superuser, "Waiting for parts")

    act(staff, "resume", [job])
    job.refresh_from_db()
    assert job.status == Job.Status.ACTIVE

    response = act(staff, "complete", [job])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert messages_of(response)[-1] == "1 job completed."
    assert event_kinds(job)[-3:] == [JobEvent.Kind.HELD, JobEvent.Kind.RESUMED, JobEvent.Kind.COMPLETED]


def test_it_cancels_with_a_reason(staff: Client, job: Job) -> None:
    act(staff, "cancel", [job], reason="Customer moved away")

    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert job.events.get(kind=JobEvent.Kind.CANCELLED).data["reason"] == "Customer moved away"


def test_it_asks_for_the_reason_to_cancel(staff: Client, job: Job) -> None:
    response = act(staff, "cancel", [job])

    assert messages_of(response) == ["Give the reason in the field next to the action."]
    job.refresh_from_db()
    assert job.status == Job.Status.ACTIVE
    assert event_kinds(job) == [JobEvent.Kind.CREATED]


def test_it_says_which_jobs_refused_and_does_the_others(staff: Client, job: Job, fresh_job: Job, bob: User) -> None:
    job_cancel(job=job, actor=bob, reason="Customer moved away")
    response = act(staff, "complete", [job, fresh_job])

    assert messages_of(response) == [f"Job {job.reference} is cancelled: it cannot be completed.", "1 job completed."]
    job.refresh_from_db()
    fresh_job.refresh_from_db()
    assert (job.status, fresh_job.status) == (Job.Status.CANCELLED, Job.Status.DONE)


def test_it_advances_to_the_next_stage(staff: Client, job: Job, installation: Pipeline) -> None:
    job_advance(job=job, to_stage=stage(installation, "Follow-up"), actor=None)
    response = act(staff, "advance_to_next_stage", [job])
    assert messages_of(response) == [f"Job {job.reference} is at its last stage already."]

    job_advance(job=job, to_stage=stage(installation, "Installed"), actor=None, backwards_reason="Oops")
    act(staff, "advance_to_next_stage", [job])
    job.refresh_from_db()
    assert job.current_stage.name == "Follow-up"


# --- What cannot be done ------------------------------------------------------------------------


def test_it_never_adds_changes_or_deletes_events(staff: Client, job: Job) -> None:
    event = job.events.get()

    assert staff.get(url(JobEvent, "add")).status_code == 403
    assert staff.post(url(JobEvent, "change", event.pk), {"kind": "held"}).status_code == 403
    assert staff.post(url(JobEvent, "delete", event.pk), {"post": "yes"}).status_code == 403
    assert JobEvent.objects.get().kind == JobEvent.Kind.CREATED


def test_it_never_deletes_a_job(staff: Client, job: Job) -> None:
    assert staff.post(url(Job, "delete", job.pk), {"post": "yes"}).status_code == 403
    actions = dict(staff.get(url(Job, "changelist")).context["action_form"].fields["action"].choices)
    assert "delete_selected" not in actions
    assert Job.objects.filter(pk=job.pk).exists()


# --- Moving a milestone -------------------------------------------------------------------------


def test_it_moves_a_milestone_through_the_service(staff: Client, superuser: User, fresh_job: Job) -> None:
    milestone = fresh_job.milestones.get(stage__name="Proposal sent")
    new_date = milestone.forecast_date + timedelta(days=7)
    data = form_data(staff.get(url(Milestone, "change", milestone.pk)))
    response = staff.post(
        url(Milestone, "change", milestone.pk),
        {**data, "forecast_date": new_date.isoformat(), "reason": "Supplier is late", "tell_customer": "on"},
    )

    assert response.status_code == 302
    moved = Milestone.objects.get(pk=milestone.pk)
    assert (moved.planned_date, moved.forecast_date) == (milestone.planned_date, new_date)
    event = fresh_job.events.get(kind=JobEvent.Kind.DATE_MOVED)
    assert (event.actor, event.data["reason"], event.data["tell_customer"]) == (superuser, "Supplier is late", True)


def test_it_needs_a_reason_to_move_a_milestone(staff: Client, fresh_job: Job) -> None:
    milestone = fresh_job.milestones.get(stage__name="Proposal sent")
    new_date = milestone.forecast_date + timedelta(days=7)
    data = form_data(staff.get(url(Milestone, "change", milestone.pk)))
    response = staff.post(url(Milestone, "change", milestone.pk), {**data, "forecast_date": new_date.isoformat()})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["reason"]
    assert Milestone.objects.get(pk=milestone.pk).forecast_date == milestone.forecast_date
    assert not fresh_job.events.filter(kind=JobEvent.Kind.DATE_MOVED).exists()


def test_it_keeps_the_date_of_a_reached_milestone(staff: Client, fresh_job: Job) -> None:
    reached = fresh_job.milestones.get(stage__position=1)
    response = staff.get(url(Milestone, "change", reached.pk))

    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    assert "Tell the customer" not in response.content.decode()
    assert staff.post(url(Milestone, "change", reached.pk), {"reason": "x"}).status_code == 403


# --- The job list -------------------------------------------------------------------------------


def test_it_shows_a_job_as_late_once_a_date_slips(staff: Client, fresh_job: Job, bob: User) -> None:
    def late_references() -> list[str]:
        response = staff.get(url(Job, "changelist"), {"late": "yes"})
        return [job.reference for job in response.context["cl"].result_list]

    assert late_references() == []
    milestone = fresh_job.milestones.get(stage__name="Installed")
    staff.post(
        url(Milestone, "change", milestone.pk),
        {"forecast_date": (milestone.forecast_date + timedelta(days=3)).isoformat(), "reason": "Crane unavailable"},
    )
    assert late_references() == [fresh_job.reference]


def test_the_job_list_costs_the_same_queries_for_3_or_30_jobs(
    staff: Client,
    customer: Customer,
    contact: Contact,
    installation: Pipeline,
    bob: User,
    django_assert_max_num_queries,
) -> None:
    def add_jobs(count: int) -> None:
        for number in range(count):
            job_create(customer=customer, pipeline=installation, owner=bob, title=f"Job {number}", actor=bob)

    def list_queries() -> int:
        with django_assert_max_num_queries(7), CaptureQueriesContext(connection) as queries:
            assert staff.get(url(Job, "changelist")).status_code == 200
        return len(queries)

    add_jobs(3)
    with_3 = list_queries()
    add_jobs(27)
    assert list_queries() == with_3


# --- Reference data -----------------------------------------------------------------------------


def test_it_adds_a_customer_with_a_contact(staff: Client) -> None:
    data = form_data(staff.get(url(Customer, "add")))
    data.update({"name": "Martin family", "kind": "household", "contacts-0-name": "Paul Martin"})
    data.update({"contacts-0-email": "paul@example.com", "contacts-0-language": "fr"})
    data.update({"contacts-0-preferred_channel": "email", "contacts-0-time_zone": "Europe/Paris"})
    response = staff.post(url(Customer, "add"), data)

    assert response.status_code == 302
    assert Customer.objects.get(name="Martin family").contacts.get().email == "paul@example.com"


def test_it_keeps_a_stage_that_jobs_use(staff: Client, job: Job, installation: Pipeline) -> None:
    data = form_data(staff.get(url(Pipeline, "change", installation.pk)))
    response = staff.post(url(Pipeline, "change", installation.pk), {**data, "stages-0-DELETE": "on"})

    assert response.status_code == 200
    assert "would require deleting the following protected related objects" in response.content.decode()
    assert installation.stages.count() == 6


def stage_form(response: Any, name: str) -> Any:
    [inline] = [i for i in response.context["inline_admin_formsets"] if i.formset.model is StageTemplate]
    [form] = [f for f in inline.formset.forms if f.instance.name == name]
    return form


def test_the_pipeline_admin_saves_a_role_and_a_stage_with_that_role(
    staff: Client, installation: Pipeline, repair: Pipeline, charlie: User, dana: User
) -> None:
    PipelineRole.objects.create(pipeline=repair, name="Workshop")
    response = staff.get(url(Pipeline, "change", installation.pk))
    [roles] = [i for i in response.context["inline_admin_formsets"] if i.formset.model is PipelineRole]
    offered = set(roles.formset.empty_form.fields["default_holder"].queryset.values_list("username", flat=True))
    assert "charlie" in offered and "dana" not in offered  # active staff only
    data = form_data(response)
    data.update({"roles-TOTAL_FORMS": "1", "roles-0-name": "Installation coordinator"})
    data["roles-0-default_holder"] = charlie.pk

    assert staff.post(url(Pipeline, "change", installation.pk), data).status_code == 302

    role = installation.roles.get()
    assert (role.name, role.default_holder) == ("Installation coordinator", charlie)

    response = staff.get(url(Pipeline, "change", installation.pk))
    installed = stage_form(response, "Installed")
    assert list(installed.fields["role"].queryset) == [role]  # this pipeline's own roles
    data = form_data(response)
    data[installed["role"].html_name] = role.pk

    assert staff.post(url(Pipeline, "change", installation.pk), data).status_code == 302

    assert stage(installation, "Installed").role == role
    assert stage(installation, "Installation scheduled").role is None


def test_a_stage_refuses_a_role_of_another_pipeline(staff: Client, installation: Pipeline, repair: Pipeline) -> None:
    workshop = PipelineRole.objects.create(pipeline=repair, name="Workshop")
    refusal = "“Workshop” is not a role of the Installation pipeline."

    # On the pipeline's page (the role is not offered there, but a form may still send it).
    response = staff.get(url(Pipeline, "change", installation.pk))
    data = form_data(response)
    data[stage_form(response, "Installed")["role"].html_name] = workshop.pk
    response = staff.post(url(Pipeline, "change", installation.pk), data)

    assert response.status_code == 200
    assert stage_form(response, "Installed").errors["role"] == [refusal]

    # On the stage's own page.
    installed = stage(installation, "Installed")
    data = form_data(staff.get(url(StageTemplate, "change", installed.pk)))
    response = staff.post(url(StageTemplate, "change", installed.pk), {**data, "role": workshop.pk})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["role"] == [refusal]

    # A new stage, offered every pipeline's roles (named with their pipeline) until it is saved.
    response = staff.get(url(StageTemplate, "add"))
    role_field = response.context["adminform"].form.fields["role"]
    assert "Repair: Workshop" in [label for _, label in role_field.choices]
    data = {"pipeline": installation.pk, "position": 7, "name": "Warranty", "default_duration_days": 0}
    response = staff.post(url(StageTemplate, "add"), {**data, "role": workshop.pk})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["role"] == [refusal]
    assert not installation.stages.filter(name="Warranty").exists()
    assert installation.stages.filter(role__isnull=False).count() == 0


def test_it_refuses_an_unknown_time_zone(staff: Client, contact: Contact) -> None:
    data = form_data(staff.get(url(Contact, "change", contact.pk)))
    response = staff.post(url(Contact, "change", contact.pk), {**data, "time_zone": "Mars/Olympus_Mons"})

    assert response.status_code == 200
    assert "time_zone" in response.context["adminform"].form.errors
    contact.refresh_from_db()
    assert contact.time_zone != "Mars/Olympus_Mons"


def test_it_saves_a_contact_through_the_services_and_never_takes_typed_consent(staff: Client, contact: Contact) -> None:
    Contact.objects.filter(pk=contact.pk).update(email_bounced_at="2026-03-01T10:00:00Z")
    data = form_data(staff.get(url(Contact, "change", contact.pk)))
    assert "sms_consent_at" not in data and "opted_out_at" not in data  # shown, not fields
    data.update({"email": "  marie.new@example.com ", "sms_consent_at_0": "2020-01-01", "opted_out_at_0": "2020-01-01"})

    response = staff.post(url(Contact, "change", contact.pk), data)

    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.email == "marie.new@example.com"  # the service tidied it
    assert contact.email_bounced_at is None  # and, the address being new, cleared the bounce
    assert (contact.sms_consent_at, contact.opted_out_at) == (None, None)


def test_it_refuses_sms_as_the_channel_of_a_contact_without_consent(staff: Client, contact: Contact) -> None:
    Contact.objects.filter(pk=contact.pk).update(phone="+33 6 12 34 56 78")
    data = form_data(staff.get(url(Contact, "change", contact.pk)))

    response = staff.post(url(Contact, "change", contact.pk), {**data, "preferred_channel": "sms"})

    assert response.status_code == 200
    assert "once the contact has consented to SMS" in str(response.context["adminform"].form.errors)
    contact.refresh_from_db()
    assert contact.preferred_channel == "email"


def test_it_adds_a_customers_contact_through_the_services(staff: Client) -> None:
    data = form_data(staff.get(url(Customer, "add")))
    data.update({"name": " Martin family ", "kind": "household", "contacts-0-name": "  Paul Martin "})
    data.update({"contacts-0-email": "paul@example.com", "contacts-0-language": "fr"})
    data.update({"contacts-0-preferred_channel": "email", "contacts-0-time_zone": "Europe/Paris"})

    assert staff.post(url(Customer, "add"), data).status_code == 302

    customer = Customer.objects.get()
    assert customer.name == "Martin family"
    assert customer.contacts.get().name == "Paul Martin"


def test_it_refuses_a_phone_that_is_not_a_number(staff: Client, contact: Contact) -> None:
    data = form_data(staff.get(url(Contact, "change", contact.pk)))

    response = staff.post(url(Contact, "change", contact.pk), {**data, "phone": "call me maybe"})

    assert response.status_code == 200
    assert "Enter a valid phone number, e.g. 06 12 34 56 78" in str(response.context["adminform"].form.errors["phone"])


# --- Deleting a contact: through the service, recorded on each job ------------------------------


def test_it_refuses_to_delete_the_only_contact_of_an_open_job(staff: Client, job: Job, contact: Contact) -> None:
    page = staff.get(url(Contact, "delete", contact.pk)).content.decode()

    assert "cannot be deleted: they are the only contact on these open jobs" in page
    assert f"{job.reference} {job.title}: nobody else to tell" in page
    assert "Yes, I’m sure" not in page

    response = staff.post(url(Contact, "delete", contact.pk), {"post": "yes"})

    assert Contact.objects.filter(pk=contact.pk).exists()
    assert not job.events.filter(kind=JobEvent.Kind.DETAILS_CHANGED).exists()
    assert response.status_code == 200


def test_it_deletes_a_contact_and_each_of_their_jobs_records_it(
    staff: Client, job: Job, customer: Customer, contact: Contact, superuser: User
) -> None:
    paul = Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com")
    job.contacts.add(paul)
    Message.objects.create(
        job=job, contact=contact, channel=Message.Channel.EMAIL, subject="Hello", idempotency_key="sent:1"
    )

    response = staff.post(url(Contact, "delete", contact.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert list(job.contacts.all()) == [paul]
    [recorded] = job.events.filter(kind=JobEvent.Kind.DETAILS_CHANGED)
    assert recorded.actor == superuser
    assert recorded.summary == "Marie Dupont deleted from the customer's contacts; contacts: Paul Dupont"
    assert job.messages.get(subject="Hello").contact is None  # what was sent stays on the job


def test_it_deletes_the_only_contact_of_a_closed_job(staff: Client, job: Job, contact: Contact, bob: User) -> None:
    job_cancel(job=job, actor=bob, reason="Customer moved away")

    assert staff.post(url(Contact, "delete", contact.pk), {"post": "yes"}).status_code == 302

    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert job.events.filter(kind=JobEvent.Kind.DETAILS_CHANGED).get().data["deleted_contacts"] == ["Marie Dupont"]


def test_deleting_selected_contacts_refuses_them_all_when_together_they_are_a_jobs_only_contacts(
    staff: Client, job: Job, customer: Customer, contact: Contact
) -> None:
    paul = Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com")
    job.contacts.add(paul)
    chosen = {"action": "delete_selected", "_selected_action": [contact.pk, paul.pk]}

    page = staff.post(url(Contact, "changelist"), chosen).content.decode()

    assert "The selected contacts cannot be deleted: they are the only contacts on these open jobs." in page
    assert "Yes, I’m sure" not in page

    staff.post(url(Contact, "changelist"), {**chosen, "post": "yes"})

    assert Contact.objects.filter(pk__in=[contact.pk, paul.pk]).count() == 2


def test_removing_a_contact_on_the_customer_page_goes_through_the_service(
    staff: Client, job: Job, customer: Customer, contact: Contact
) -> None:
    data = form_data(staff.get(url(Customer, "change", customer.pk)))

    response = staff.post(
        url(Customer, "change", customer.pk), {**data, "name": "Dupont family", "contacts-0-DELETE": "on"}
    )

    assert response.status_code == 200  # the page again, as typed, with the reason by the contacts
    [inline] = response.context["inline_admin_formsets"]
    assert [str(e) for e in inline.formset.non_form_errors()] == [
        f"{job.reference} {job.title}: nobody else to tell. Add another contact to the job, or close it, first."
    ]
    assert response.context["adminform"].form["name"].value() == "Dupont family"
    assert Contact.objects.filter(pk=contact.pk).exists()
    assert Customer.objects.get(pk=customer.pk).name == "Dupont household"
    job.contacts.add(Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com"))
    data = form_data(staff.get(url(Customer, "change", customer.pk)))
    [marie] = [key[: -len("-id")] for key, value in data.items() if key.endswith("-id") and value == contact.pk]

    response = staff.post(url(Customer, "change", customer.pk), {**data, f"{marie}-DELETE": "on"})

    assert response.status_code == 302
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert job.events.filter(kind=JobEvent.Kind.DETAILS_CHANGED).get().data["deleted_contacts"] == ["Marie Dupont"]


def test_deleting_selected_contacts_records_it_on_each_of_their_jobs(
    staff: Client, job: Job, customer: Customer, contact: Contact
) -> None:
    paul = Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com")
    lea = Contact.objects.create(customer=customer, name="Léa Dupont", email="lea@example.com")
    job.contacts.add(paul, lea)
    chosen = {"action": "delete_selected", "_selected_action": [paul.pk, lea.pk], "post": "yes"}

    response = staff.post(url(Contact, "changelist"), chosen)

    assert response.status_code == 302
    assert "Successfully deleted 2 contacts." in messages_of(response)
    assert list(customer.contacts.all()) == [contact]
    recorded = job.events.get(kind=JobEvent.Kind.DETAILS_CHANGED)
    assert recorded.data["deleted_contacts"] == ["Léa Dupont", "Paul Dupont"]
    assert recorded.summary == "Léa Dupont, Paul Dupont deleted from the customer's contacts; contacts: Marie Dupont"


def test_a_job_on_hold_still_needs_its_contact(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    paul = Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com")
    battery = job_create(
        customer=customer, pipeline=installation, owner=bob, title="Battery", actor=bob, contacts=[paul]
    )
    job_hold(job=battery, actor=bob, reason="Waiting for the battery")

    page = staff.get(url(Contact, "delete", paul.pk)).content.decode()

    assert f"{battery.reference} Battery: nobody else to tell" in page
    assert staff.post(url(Contact, "delete", paul.pk), {"post": "yes"}).status_code == 200
    assert Contact.objects.filter(pk=paul.pk).exists()


def test_the_admin_shows_times_where_the_team_works(staff: Client, job: Job, time_machine) -> None:
    """The server counts in UTC; the admin, like the staff pages, in BUSINESS_TIME_ZONE (Paris)."""
    JobEvent.objects.filter(job=job).update(created_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    page = staff.get(url(JobEvent, "changelist")).content.decode()
    assert "March 2, 2026, 9 a.m." in page
    assert "8 a.m." not in page
