"""Who may change what in the admin (crm.roles, crm.admin): bob (an owner, in "Staff"), alice (a
manager, in "Managers") and a superuser, on every admin page of crm, of users and groups, and of
django-axes when it is installed — and the changes the staff pages keep for managers, posted."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.db import models
from django.test import Client
from django.urls import reverse

from crm.models import Contact, Customer, Job, JobEvent, Milestone, Pipeline, StaffProfile, StageTemplate
from crm.roles import ROLES, roles_after_migrate, roles_ensure
from crm.services.jobs import job_create
from tests.crm.test_admin import form_data, messages_of, url, world  # noqa: F401  (world: a fixture)

# What each person may do on each model's pages, written out (not derived from crm.roles):
#   v  the list and an object's page open (200)
#   a  the add page opens
#   e  the object's page saves (without it, the page is shown read-only)
#   d  the delete page opens
# Every page not allowed answers 403. The object is someone else's where it matters: charlie's
# staff profile, a milestone still ahead of an open job.
WHO = ("bob", "alice", "superuser")
EXPECTED: dict[str, tuple[str, str, str]] = {
    # model                      bob     alice    superuser
    "crm.Customer":             ("vae",  "vaed",  "vaed"),
    "crm.Contact":              ("vae",  "vaed",  "vaed"),
    "crm.StaffProfile":         ("v",    "vaed",  "vaed"),
    "crm.Pipeline":             ("v",    "vaed",  "vaed"),
    "crm.PipelineRole":         ("v",    "vaed",  "vaed"),
    "crm.StageTemplate":        ("v",    "vaed",  "vaed"),
    "crm.VisitKind":            ("v",    "vaed",  "vaed"),
    "crm.Subcontractor":        ("v",    "vaed",  "vaed"),
    "crm.Job":                  ("v",    "vae",   "vae"),
    "crm.Milestone":            ("v",    "ve",    "ve"),
    "crm.JobRole":              ("v",    "v",     "v"),
    "crm.JobEvent":             ("v",    "v",     "v"),
    "crm.Message":              ("v",    "v",     "v"),
    "crm.Question":             ("v",    "v",     "v"),
    "crm.Commitment":           ("v",    "v",     "v"),
    "crm.Renegotiation":        ("v",    "v",     "v"),
    "crm.JobFile":              ("v",    "v",     "v"),
    "crm.Visit":                ("v",    "v",     "v"),
    "crm.Campaign":             ("v",    "v",     "v"),
    "crm.ImportRun":            ("v",    "v",     "v"),
    "crm.ContactLinkUse":       ("v",    "v",     "v"),
    "crm.SmsOptOut":            ("v",    "v",     "v"),
    "crm.Survey":               ("",     "v",     "v"),
    "crm.CheckIn":              ("",     "v",     "v"),
    "crm.JobReferenceCounter":  ("",     "v",     "v"),
    "crm.AccessRecord":         ("",     "v",     "v"),
    "crm.ApiKey":               ("",     "v",     "v"),
    "crm.WebhookEndpoint":      ("",     "v",     "v"),
    "crm.WebhookDelivery":      ("",     "v",     "v"),
    "auth.User":                ("",     "v",     "vaed"),
    "auth.Group":               ("",     "",      "vaed"),
    "axes.AccessAttempt":       ("",     "vd",    "ved"),
    "axes.AccessLog":           ("",     "v",     "ved"),
    "axes.AccessFailureLog":    ("",     "v",     "ved"),
}  # fmt: skip

ADMIN_APPS = ("crm", "auth", "axes")
REGISTERED = sorted(model._meta.label for model in admin.site._registry if model._meta.app_label in ADMIN_APPS)


def admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def roles(db: None, bob: User, alice: User) -> None:
    """The groups as crm.roles makes them; bob in "Staff" (alice's fixture put her in "Managers")."""
    roles_ensure()
    bob.groups.add(Group.objects.get(name="Staff"))


@pytest.fixture
def charlies_profile(charlie: User) -> StaffProfile:
    return StaffProfile.objects.create(user=charlie, phone="+33 1 99 00 12 34", job_title="Installer")


@pytest.fixture
def sign_in_attempts(db: None) -> None:
    """A row of each django-axes model (nothing when it is not installed)."""
    if not apps.is_installed("axes"):
        return
    seen = {"user_agent": "Firefox", "ip_address": "192.0.2.1", "username": "bob", "http_accept": "*/*"}
    apps.get_model("axes", "AccessAttempt").objects.create(
        **seen, path_info="/admin/login/", get_data="", post_data="", failures_since_start=5
    )
    apps.get_model("axes", "AccessLog").objects.create(**seen, path_info="/admin/login/")
    apps.get_model("axes", "AccessFailureLog").objects.create(**seen, path_info="/admin/login/", locked_out=True)


def the_object(model: type[models.Model], charlie: User) -> Any:
    if model is StaffProfile:
        return StaffProfile.objects.get(user=charlie)  # someone else's, for bob
    if model is Milestone:
        return Milestone.objects.filter(completed_at__isnull=True, job__status=Job.Status.ACTIVE).first()
    if model is User:
        return charlie
    return model._default_manager.order_by("pk").first()


def test_the_table_names_every_admin_model() -> None:
    assert set(REGISTERED) <= set(EXPECTED), "a new admin model: say in EXPECTED who may do what with it"


@pytest.mark.usefixtures("world", "roles", "charlies_profile", "sign_in_attempts")
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("label", REGISTERED)
def test_who_may_do_what_on_every_admin_page(
    request: pytest.FixtureRequest, client: Client, charlie: User, label: str, who: str
) -> None:
    model = apps.get_model(label)
    obj = the_object(model, charlie)
    assert obj is not None, f"no {label} to open: create one in the fixtures"
    client.force_login(request.getfixturevalue(who))

    listed = client.get(admin_url(model, "changelist"))
    page = client.get(admin_url(model, "change", obj.pk))
    added = client.get(admin_url(model, "add"))
    deleted = client.get(admin_url(model, "delete", obj.pk))

    statuses = {
        "list": listed.status_code,
        "change": page.status_code,
        "add": added.status_code,
        "delete": deleted.status_code,
    }
    assert set(statuses.values()) <= {200, 403}, statuses
    assert listed.status_code == page.status_code, statuses
    can = ""
    if listed.status_code == 200:
        can += "v"
    if added.status_code == 200:
        can += "a"
    if page.status_code == 200 and page.context["has_change_permission"]:
        can += "e"
    if deleted.status_code == 200:
        can += "d"
    assert can == EXPECTED[label][WHO.index(who)]


# --- A job's owner: a manager's to change --------------------------------------------------------


@pytest.fixture
def alices_job(customer: Customer, contact: Contact, installation: Pipeline, alice: User) -> Job:
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=alice,
        title="Boiler",
        actor=alice,
        notify_customer=False,
        not_told_reason="Opened before the test.",
    )


@pytest.mark.usefixtures("roles")
def test_bob_cannot_make_himself_the_owner_of_a_job_in_the_admin(client: Client, bob: User, alices_job: Job) -> None:
    """Measured (issue 17): bob opened a colleague's job in the admin, set himself as owner and
    saved; the job page refuses him that (only a manager hands a job to someone else)."""
    client.force_login(bob)
    page = client.get(url(Job, "change", alices_job.pk))
    assert page.status_code == 200
    assert not page.context["has_change_permission"]  # shown, without a Save button

    response = client.post(url(Job, "change", alices_job.pk), {"title": "Boiler", "owner": bob.pk})

    assert response.status_code == 403
    alices_job.refresh_from_db()
    assert alices_job.owner.username == "alice"
    assert not alices_job.events.filter(kind=JobEvent.Kind.OWNER_CHANGED).exists()


@pytest.mark.usefixtures("roles")
def test_the_owner_is_read_only_to_a_non_manager_who_may_change_jobs(
    client: Client, bob: User, alices_job: Job
) -> None:
    """Given the right to change jobs on his user, bob changes a job's details as on the job page;
    its owner and who answers for each stage stay a manager's."""
    bob.user_permissions.add(Permission.objects.get(codename="change_job"))
    client.force_login(bob)
    page = client.get(url(Job, "change", alices_job.pk))
    form = page.context["adminform"].form
    assert "owner" not in form.fields and "title" in form.fields
    [roles] = [i for i in page.context["inline_admin_formsets"] if i.formset.model._meta.model_name == "jobrole"]
    assert not roles.has_change_permission

    response = client.post(url(Job, "change", alices_job.pk), {**form_data(page), "title": "Boiler", "owner": bob.pk})
    assert response.status_code == 302

    response = client.post(url(Job, "change", alices_job.pk), {**form_data(page), "title": "Boiler and tank"})
    assert response.status_code == 302
    alices_job.refresh_from_db()
    assert (alices_job.title, alices_job.owner.username) == ("Boiler and tank", "alice")
    assert not alices_job.events.filter(kind=JobEvent.Kind.OWNER_CHANGED).exists()


@pytest.mark.usefixtures("roles")
def test_a_manager_hands_a_job_over_in_the_admin(client: Client, alice: User, charlie: User, alices_job: Job) -> None:
    client.force_login(alice)
    page = client.get(url(Job, "change", alices_job.pk))

    response = client.post(url(Job, "change", alices_job.pk), {**form_data(page), "owner": charlie.pk})

    assert response.status_code == 302
    alices_job.refresh_from_db()
    assert alices_job.owner == charlie
    assert alices_job.events.get(kind=JobEvent.Kind.OWNER_CHANGED).actor == alice


def act(client: Client, action: str, job: Job, reason: str = "") -> Any:
    return client.post(url(Job, "changelist"), {"action": action, "_selected_action": [job.pk], "reason": reason})


@pytest.mark.usefixtures("roles")
def test_the_job_actions_need_the_right_to_change_jobs(client: Client, bob: User, alice: User, alices_job: Job) -> None:
    client.force_login(bob)
    assert client.get(url(Job, "changelist")).context["action_form"] is None  # no action offered

    assert act(client, "advance_to_next_stage", alices_job).status_code == 403
    assert act(client, "cancel", alices_job, reason="Bob says so").status_code == 403
    alices_job.refresh_from_db()
    assert (alices_job.current_stage.position, alices_job.status) == (1, Job.Status.ACTIVE)

    client.force_login(alice)
    response = act(client, "advance_to_next_stage", alices_job)
    assert messages_of(response) == ["1 job moved to its next stage."]
    alices_job.refresh_from_db()
    assert alices_job.current_stage.position == 2


@pytest.mark.usefixtures("roles")
def test_deleting_contacts_is_a_managers(client: Client, bob: User, job: Job, customer: Customer) -> None:
    paul = Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com")
    client.force_login(bob)
    chosen = {"action": "delete_selected", "_selected_action": [paul.pk], "post": "yes"}

    assert client.post(url(Contact, "changelist"), chosen).status_code == 403
    assert client.post(url(Contact, "delete", paul.pk), {"post": "yes"}).status_code == 403
    assert Contact.objects.filter(pk=paul.pk).exists()


# --- Staff profiles: one's own, or a manager's ----------------------------------------------------


@pytest.mark.usefixtures("roles")
def test_bob_changes_his_own_profile_and_nobody_elses(
    client: Client, bob: User, alice: User, charlies_profile: StaffProfile
) -> None:
    own = StaffProfile.objects.create(user=bob, phone="+33 1 99 00 11 11", job_title="Production manager")
    client.force_login(bob)

    page = client.get(url(StaffProfile, "change", own.pk))
    assert page.context["has_change_permission"]
    assert "user" not in page.context["adminform"].form.fields  # his profile stays his
    assert "calendar_version" not in page.context["adminform"].form.fields  # "Make a new link" bumps it
    response = client.post(url(StaffProfile, "change", own.pk), {**form_data(page), "phone": "+33 1 99 00 22 22"})
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.phone == "+33199002222"  # stored in E.164

    # Charlie's, the number his customers call: shown, not changed.
    page = client.get(url(StaffProfile, "change", charlies_profile.pk))
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    response = client.post(
        url(StaffProfile, "change", charlies_profile.pk),
        {"phone": "+33 1 99 00 66 66", "job_title": "Installer", "goes_on_visits": "on"},
    )
    assert response.status_code == 403
    assert client.post(url(StaffProfile, "delete", charlies_profile.pk), {"post": "yes"}).status_code == 403
    charlies_profile.refresh_from_db()
    assert charlies_profile.phone == "+33 1 99 00 12 34"

    # A manager may change anyone's.
    client.force_login(alice)
    page = client.get(url(StaffProfile, "change", charlies_profile.pk))
    response = client.post(
        url(StaffProfile, "change", charlies_profile.pk), {**form_data(page), "phone": "+33 1 99 00 66 66"}
    )
    assert response.status_code == 302
    charlies_profile.refresh_from_db()
    assert charlies_profile.phone == "+33199006666"


@pytest.mark.usefixtures("roles")
def test_a_non_manager_may_not_change_a_colleagues_profile_even_with_the_permission(
    client: Client, bob: User, charlies_profile: StaffProfile
) -> None:
    bob.user_permissions.add(*Permission.objects.filter(codename__in=["add_staffprofile", "delete_staffprofile"]))
    client.force_login(bob)

    assert client.get(url(StaffProfile, "add")).status_code == 403
    response = client.post(url(StaffProfile, "change", charlies_profile.pk), {"phone": "+33 1 99 00 66 66"})
    assert response.status_code == 403
    assert client.post(url(StaffProfile, "delete", charlies_profile.pk), {"post": "yes"}).status_code == 403
    charlies_profile.refresh_from_db()
    assert charlies_profile.phone == "+33 1 99 00 12 34"


# --- Configuration: a manager's ------------------------------------------------------------------


@pytest.mark.usefixtures("roles")
def test_a_pipeline_stage_is_a_managers_to_change(
    client: Client, bob: User, alice: User, installation: Pipeline
) -> None:
    stage = installation.stages.get(name="Proposal sent")
    # Even given the permissions on his user: configuration is a manager's.
    bob.user_permissions.add(*Permission.objects.filter(codename__in=["change_stagetemplate", "change_pipeline"]))
    client.force_login(bob)

    page = client.get(url(StageTemplate, "change", stage.pk))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    changed = {"pipeline": installation.pk, "position": 2, "name": "Quote sent", "default_duration_days": 1}
    assert client.post(url(StageTemplate, "change", stage.pk), changed).status_code == 403
    assert client.post(url(Pipeline, "change", installation.pk), {"name": "Fitting"}).status_code == 403
    stage.refresh_from_db()
    installation.refresh_from_db()
    assert (stage.name, stage.default_duration_days, installation.name) == ("Proposal sent", 3, "Installation")

    client.force_login(alice)
    page = client.get(url(StageTemplate, "change", stage.pk))
    response = client.post(url(StageTemplate, "change", stage.pk), {**form_data(page), "name": "Quote sent"})
    assert response.status_code == 302
    stage.refresh_from_db()
    assert stage.name == "Quote sent"


# --- The roles themselves -------------------------------------------------------------------------


def permission_labels(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


@pytest.mark.django_db
def test_every_database_has_both_groups_after_migrate() -> None:
    """Nothing here called roles_ensure: the test database's migrate did (crm's post_migrate)."""
    staff, managers = Group.objects.get(name="Staff"), Group.objects.get(name="Managers")
    assert {"crm.view_job", "crm.change_staffprofile", "crm.add_customer"} <= permission_labels(staff)
    assert not {"crm.change_job", "crm.change_stagetemplate", "crm.delete_contact"} & permission_labels(staff)
    assert {"crm.change_job", "crm.change_stagetemplate", "auth.view_user"} <= permission_labels(managers)
    if apps.is_installed("axes"):
        assert {"axes.view_accessattempt", "axes.delete_accessattempt"} <= permission_labels(managers)


@pytest.mark.django_db
def test_roles_ensure_is_idempotent_and_takes_back_what_the_table_does_not_give() -> None:
    staff = Group.objects.get(name="Staff")
    # What the demo's "Staff" group used to carry: the right to change jobs, owner included.
    staff.permissions.add(Permission.objects.get(codename="change_job"))
    Group.objects.get(name="Managers").delete()

    first = roles_ensure()

    assert first.changes == [
        "Staff: removed crm.change_job.",
        "Group “Managers” created.",
        f"Managers: added {', '.join(sorted(ROLES['Managers'] - set(first.skipped)))}.",
    ]
    assert roles_ensure().changes == []
    for name, labels in ROLES.items():
        assert permission_labels(Group.objects.get(name=name)) == labels - set(first.skipped)


@pytest.mark.django_db
def test_the_table_names_only_permissions_that_exist() -> None:
    """A typo, or a model gone, would be skipped silently: only an app that is not installed may be."""
    skipped = roles_ensure().skipped
    assert all(label.startswith("axes.") for label in skipped)
    if apps.is_installed("axes"):
        assert skipped == []


@pytest.mark.django_db
def test_the_permissions_of_an_app_migrated_after_crm_reach_the_groups() -> None:
    """post_migrate makes each app's permissions in INSTALLED_APPS order: crm's receiver makes those
    of the apps its table names itself, wherever they come."""
    Permission.objects.filter(content_type__app_label="auth", codename="view_user").delete()

    roles_after_migrate(apps.get_app_config("crm"), using="default", verbosity=0)

    assert "auth.view_user" in permission_labels(Group.objects.get(name="Managers"))


@pytest.mark.django_db
def test_setup_roles_says_what_it_changed() -> None:
    Group.objects.get(name="Staff").permissions.clear()

    def setup_roles() -> str:
        out = StringIO()
        call_command("setup_roles", stdout=out)
        return out.getvalue()

    first = setup_roles()
    assert first.startswith("Staff: added crm.add_contact, crm.add_customer, ")
    assert setup_roles() == "The roles are as crm/roles.py defines them: nothing changed.\n"
