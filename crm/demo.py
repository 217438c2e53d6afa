"""The demo world: a small service business with its team, pipelines, customers and jobs.

``seed_demo_world`` builds it for ``manage.py seed_demo``. Jobs are only ever written through
``crm.services.jobs``, so each has the event log a real one would have. Everything is looked up
by a natural key first (username, group, pipeline, customer and contact name, job title per
customer), so seeding twice changes nothing.

The services stamp everything "now" and refuse to move a date into the past, so history is told
through the dates instead: a job "started" N business days ago is planned from that day, then
reaches its current stage in one step today. One step, not one per stage, because every
advance rolls the later forecasts out from today: walking a month-old job through four stages
today would make every job look late. Lateness is made on purpose instead (see ``JOBS``).

Like any stage change or announced date, the seeding queues messages to the contacts; with the
development settings (console email and SMS backends) the worker of ``make run`` prints them.
A job opened today welcomes its contacts; one back-dated had its welcome back then, so it is
created without one (the reason is on its first event) rather than welcomed weeks late.

The Installation pipeline has roles: the sales person answers for the customer while the quote
is prepared, the production manager once the order is confirmed, the installation coordinator
for the fitting. A demo job reaching one of those stages is handed to that person, as a real one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Contact, Customer, Pipeline, PipelineRole, StaffProfile, StageTemplate
from crm.services.jobs import (
    job_advance,
    job_cancel,
    job_complete,
    job_create,
    job_hold,
    job_reassign,
    job_resume,
    milestone_move,
)
from crm.workdays import add_business_days, business_today, is_business_day

DEFAULT_PASSWORD = "demo"  # noqa: S105 - a demo login, refused by the command outside DEBUG

MANAGERS_GROUP = "Managers"
STAFF_GROUP = "Staff"
# Written only by the services (the append-only event log, the outbox, the reference counter):
# staff may look at them in the admin, never add or change them there.
READ_ONLY_MODELS = frozenset({"jobevent", "message", "jobreferencecounter", "jobrole"})
# Why a back-dated demo job was not welcomed when the seed created it (on its "created" event).
BACK_DATED_REASON = "Demo job created with its history."


# --- What the world contains --------------------------------------------------------------------
# Phone numbers come from the ranges reserved for fiction (ARCEP 01 99 00 and 06 39 98, Ofcom
# 07700 900, NANP 555-01), so a demo can never call or text a real person.


@dataclass(frozen=True)
class UserSpec:
    username: str
    first_name: str
    last_name: str
    role: str  # "manager" or "owner"
    job_title: str
    phone: str
    language: str = ""  # of the alerts we email them; empty: the site's

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"


# The job titles customers read on the contact card match the roles each holds (see PIPELINES).
USERS = (
    UserSpec("alice", "Alice", "Martin", "manager", "Operations and production manager", "+33 1 99 00 12 01"),
    UserSpec("bob", "Bob", "Durand", "owner", "Sales and project manager", "+33 1 99 00 12 02"),
    UserSpec("chloe", "Chloé", "Bernard", "owner", "Installation coordinator", "+33 1 99 00 12 03", language="fr"),
)


@dataclass(frozen=True)
class StageSpec:
    name: str
    days: int
    key: str
    visible: bool = True
    instructions: str = ""
    # What a French-speaking contact reads.
    name_fr: str = ""
    instructions_fr: str = ""
    # The role that answers for the customer from this stage on (a RoleSpec's name); empty:
    # whoever was the contact stays.
    role: str = ""


@dataclass(frozen=True)
class RoleSpec:
    name: str
    holder: str  # the username who usually holds it


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    description: str
    silence_days: int
    stages: tuple[StageSpec, ...]
    # After the job: the stage whose morning after brings the satisfaction survey, and the days
    # after completion for the "has everything kept working?" check-in.
    survey_stage: str = ""
    survey_delay_days: int = 1
    checkin_days: int | None = None
    roles: tuple[RoleSpec, ...] = ()


PIPELINES = (
    PipelineSpec(
        "Installation",
        "New equipment: heat pumps, solar, EV chargers, cooling, networks. From the first request "
        "to the follow-up call after the work.",
        7,
        (
            StageSpec("Request received", 0, "request-received", name_fr="Demande reçue", role="Sales"),
            StageSpec(
                "Proposal sent",
                3,
                "proposal-sent",
                instructions="Send us a few photos of where the equipment will go and of your electrical panel.",
                name_fr="Proposition envoyée",
                instructions_fr="Envoyez-nous quelques photos de l’emplacement prévu et de votre tableau électrique.",
                role="Sales",
            ),
            StageSpec(
                "Order confirmed",
                5,
                "order-confirmed",
                instructions="Sign and return the proposal to confirm the order.",
                name_fr="Commande confirmée",
                instructions_fr="Signez et renvoyez la proposition pour confirmer la commande.",
                role="Production manager",
            ),
            StageSpec(
                "Installation scheduled",
                3,
                "installation-scheduled",
                instructions="Tell us which days suit you for the installation.",
                name_fr="Installation planifiée",
                instructions_fr="Dites-nous quels jours vous conviennent pour l’installation.",
                role="Installation coordinator",
            ),
            StageSpec(
                "Installed",
                10,
                "installed",
                instructions="Clear access to the boiler room and the outdoor unit's spot; someone must be home.",
                name_fr="Installation terminée",
                instructions_fr=(
                    "Dégagez l’accès à la chaufferie et à l’emplacement de l’unité extérieure ; "
                    "quelqu’un doit être présent."
                ),
                role="Installation coordinator",
            ),
            # The coordinator who did the fitting makes the follow-up call.
            StageSpec("Follow-up", 5, "follow-up", visible=False, name_fr="Suivi"),
        ),
        survey_stage="Installed",
        checkin_days=30,
        # Who answers for the customer at each stage: the quote, the order and its manufacturing,
        # the fitting. On a new job the sales role is the owner's (whoever took the request).
        roles=(
            RoleSpec("Sales", "bob"),
            RoleSpec("Production manager", "alice"),
            RoleSpec("Installation coordinator", "chloe"),
        ),
    ),
    PipelineSpec(
        "Repair",
        "Something stopped working: from the report to a check that it stays fixed.",
        3,
        (
            StageSpec("Reported", 0, "reported", name_fr="Signalement reçu"),
            StageSpec(
                "Diagnosed",
                2,
                "diagnosed",
                instructions="Make sure someone can let the technician in and show where the fault appears.",
                name_fr="Diagnostic établi",
                instructions_fr=(
                    "Assurez-vous que quelqu’un peut ouvrir au technicien et lui montrer où la panne apparaît."
                ),
            ),
            StageSpec("Parts ordered", 1, "parts-ordered", name_fr="Pièces commandées"),
            StageSpec(
                "Repaired",
                5,
                "repaired",
                instructions="Clear access to the appliance and switch it off the evening before.",
                name_fr="Réparation faite",
                instructions_fr="Dégagez l’accès à l’appareil et éteignez-le la veille au soir.",
            ),
            StageSpec("Checked", 2, "checked", name_fr="Vérification faite"),
        ),
        survey_stage="Checked",
        checkin_days=30,
    ),
)


@dataclass(frozen=True)
class ContactSpec:
    name: str
    language: str
    time_zone: str
    email: str = ""
    phone: str = ""
    channel: str = Contact.Channel.EMAIL
    # SMS consent: how it was given and how long ago; empty means never given.
    sms_consent_source: str = ""
    sms_consent_days_ago: int = 30
    opted_out_days_ago: int | None = None


@dataclass(frozen=True)
class CustomerSpec:
    name: str
    kind: str
    address: str
    contacts: tuple[ContactSpec, ...]
    notes: str = ""


CUSTOMERS = (
    CustomerSpec(
        "Lefèvre household",
        Customer.Kind.HOUSEHOLD,
        "14 rue des Lilas\n69003 Lyon\nFrance",
        (
            ContactSpec(
                "Marie Lefèvre",
                "fr",
                "Europe/Paris",
                email="marie.lefevre@example.org",
                phone="+33 6 39 98 12 34",
                channel=Contact.Channel.SMS,
                sms_consent_source="signed order form",
                sms_consent_days_ago=48,
            ),
            ContactSpec("Paul Lefèvre", "fr", "Europe/Paris", email="paul.lefevre@example.org"),
        ),
    ),
    CustomerSpec(
        "Okafor household",
        Customer.Kind.HOUSEHOLD,
        "27 Elm Grove\nBristol BS6 5QA\nUnited Kingdom",
        (
            ContactSpec(
                "Grace Okafor",
                "en",
                "Europe/London",
                email="grace.okafor@example.com",
                phone="+44 7700 900123",
                channel=Contact.Channel.SMS,
                sms_consent_source="portal",
                sms_consent_days_ago=12,
            ),
        ),
    ),
    CustomerSpec(
        "Tremblay household",
        Customer.Kind.HOUSEHOLD,
        "4512 rue Saint-Denis\nMontréal QC H2J 2L3\nCanada",
        (
            ContactSpec(
                "Jean-François Tremblay",
                "fr",
                "America/Montreal",
                email="jf.tremblay@example.com",
                phone="+1 514 555 0142",
                channel=Contact.Channel.PHONE,
            ),
        ),
        notes="Prefers a phone call in the evening, after 6 pm his time.",
    ),
    CustomerSpec(
        "Boulangerie Moreau SARL",
        Customer.Kind.COMPANY,
        "3 place du Marché\n44000 Nantes\nFrance",
        (
            ContactSpec("Sophie Moreau", "fr", "Europe/Paris", email="sophie.moreau@example.org"),
            ContactSpec(
                "Karim Benali",
                "fr",
                "Europe/Paris",
                phone="+33 6 39 98 56 78",
                channel=Contact.Channel.SMS,
                sms_consent_source="phone call",
                sms_consent_days_ago=20,
            ),
        ),
        notes="Shop opens at 6 am; work only Monday, when it is closed.",
    ),
    CustomerSpec(
        "Northwind Logistics Ltd",
        Customer.Kind.COMPANY,
        "Unit 7, Riverside Trading Estate\nManchester M17 1AB\nUnited Kingdom",
        (
            ContactSpec("Emily Clarke", "en", "Europe/London", email="emily.clarke@example.com"),
            ContactSpec(
                "Tom Harris",
                "en",
                "Europe/London",
                email="tom.harris@example.com",
                phone="+44 7700 900456",
                opted_out_days_ago=10,
            ),
        ),
    ),
    CustomerSpec(
        "Hôtel Le Nordet",
        Customer.Kind.COMPANY,
        "88 rue Sherbrooke Ouest\nMontréal QC H3A 1G1\nCanada",
        (
            ContactSpec("Isabelle Gagnon", "fr", "America/Montreal", email="isabelle.gagnon@example.com"),
            ContactSpec(
                "David Chen",
                "en",
                "America/Montreal",
                email="david.chen@example.com",
                phone="+1 514 555 0187",
            ),
        ),
    ),
)


@dataclass(frozen=True)
class MoveSpec:
    stage: str
    business_days_from_today: int
    reason: str
    tell_customer: bool = True


@dataclass(frozen=True)
class JobSpec:
    customer: str
    title: str
    pipeline: str
    owner: str
    # Planned from this many business days ago; reaching ``reached`` today is on time when it
    # equals the stage's cumulative duration, late (later forecasts roll out) when greater.
    started: int
    reached: str = ""
    moves: tuple[MoveSpec, ...] = ()
    reassign_to: str = ""
    reassign_reason: str = ""
    hold: str = ""
    resume: str = ""
    cancel: str = ""
    complete: str | None = None
    contacts: tuple[str, ...] = field(default=())  # names; empty means every contact of the customer


# Cumulative business days from the start: Installation 0, 3, 8, 11, 21, 26; Repair 0, 2, 3, 8, 10.
JOBS = (
    # Done.
    JobSpec(
        "Lefèvre household",
        "Air-to-water heat pump",
        "Installation",
        "bob",
        started=34,
        reached="Follow-up",
        complete="Follow-up call done: the house stays at 20 °C and the customer is happy.",
    ),
    JobSpec(
        "Northwind Logistics Ltd",
        "EV charging points, staff car park",
        "Installation",
        "chloe",
        started=40,
        reached="Follow-up",
        complete="All eight chargers commissioned and accepted by facilities.",
        contacts=("Emily Clarke",),
    ),
    JobSpec(
        "Tremblay household",
        "Boiler not heating",
        "Repair",
        "bob",
        started=14,
        reached="Checked",
        complete="Pressure stable for a week after the valve replacement.",
    ),
    # Active and on time.
    JobSpec(
        "Okafor household", "Solar panels and home battery", "Installation", "bob", started=7, reached="Order confirmed"
    ),
    # Opened today: the one demo job whose contacts are welcomed (an SMS and an email).
    JobSpec(
        "Lefèvre household",
        "Heat pump error code E12",
        "Repair",
        "bob",
        started=0,
    ),
    JobSpec("Northwind Logistics Ltd", "Loading bay door motor", "Repair", "alice", started=3, reached="Parts ordered"),
    JobSpec(
        "Boulangerie Moreau SARL",
        "Display fridge compressor",
        "Repair",
        "chloe",
        started=8,
        reached="Repaired",
        contacts=("Karim Benali",),
    ),
    JobSpec(
        "Okafor household",
        "Smart thermostat and radiator valves",
        "Installation",
        "bob",
        started=21,
        reached="Installed",
    ),
    JobSpec("Boulangerie Moreau SARL", "Shop front alarm fault", "Repair", "bob", started=2, reached="Diagnosed"),
    JobSpec(
        "Northwind Logistics Ltd",
        "Server room cooling alarm",
        "Repair",
        "chloe",
        started=8,
        reached="Repaired",
        reassign_to="bob",
        reassign_reason="Bob covers the Northwind maintenance contract while Chloé is on leave.",
    ),
    JobSpec(
        "Tremblay household",
        "Water softener",
        "Installation",
        "chloe",
        started=11,
        reached="Installation scheduled",
        hold="Customer away until the end of the month.",
        resume="Customer back home; installation date confirmed by phone.",
    ),
    # Running late: a proposal and a diagnosis overdue, with no news yet.
    JobSpec("Hôtel Le Nordet", "Guest Wi-Fi and network cabling", "Installation", "alice", started=6),
    JobSpec("Hôtel Le Nordet", "Kitchen extraction fan", "Repair", "chloe", started=4),
    # Running late: reached its stage late, so the rest of the plan slid without anyone saying so.
    JobSpec(
        "Tremblay household", "Ducted heat pump, main floor", "Installation", "bob", started=9, reached="Proposal sent"
    ),
    # Running late, announced before the date (proactive).
    JobSpec(
        "Boulangerie Moreau SARL",
        "Cold room refrigeration unit",
        "Installation",
        "chloe",
        started=11,
        reached="Installation scheduled",
        moves=(MoveSpec("Installed", 15, "The compressor ships a week later than the supplier promised."),),
    ),
    JobSpec(
        "Hôtel Le Nordet",
        "Hot water outage, east wing",
        "Repair",
        "alice",
        started=3,
        reached="Parts ordered",
        moves=(MoveSpec("Repaired", 9, "The replacement mixing valve is out of stock at the wholesaler."),),
    ),
    # Running late, announced after the date had passed (reactive).
    JobSpec(
        "Lefèvre household",
        "EV charger in the garage",
        "Installation",
        "chloe",
        started=5,
        moves=(MoveSpec("Proposal sent", 1, "The site survey had to be redone; the proposal is ready tomorrow."),),
    ),
    # On hold.
    JobSpec(
        "Northwind Logistics Ltd",
        "Office air conditioning, 2nd floor",
        "Installation",
        "bob",
        started=8,
        reached="Order confirmed",
        hold="Waiting for the landlord's written approval of the outdoor units.",
    ),
    JobSpec(
        "Hôtel Le Nordet",
        "Rooftop solar array",
        "Installation",
        "alice",
        started=3,
        reached="Proposal sent",
        hold="The hotel's insurer asked for a structural survey of the roof first.",
    ),
    # Cancelled.
    JobSpec(
        "Okafor household",
        "Garden office electrics",
        "Installation",
        "chloe",
        started=3,
        reached="Proposal sent",
        cancel="Customer declined the proposal: the garden office is postponed to next year.",
    ),
)


# --- Building it --------------------------------------------------------------------------------


@dataclass
class SeedResult:
    created: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    new_users: list[str] = field(default_factory=list)

    def add(self, kind: str) -> None:
        self.created[kind] = self.created.get(kind, 0) + 1


Log = Callable[[str], None]


def business_days_ago(days: int, *, today: date) -> date:
    """The business day from which ``days`` business days lead to today (or the next working day)."""
    day = add_business_days(today, 0)
    while days:
        day -= timedelta(days=1)
        if is_business_day(day):
            days -= 1
    return day


@transaction.atomic
def seed_demo_world(*, password: str = DEFAULT_PASSWORD, log: Log = lambda line: None) -> SeedResult:
    """Create whatever part of the demo world is missing; leave everything that exists alone."""
    result = SeedResult()
    users = _seed_users(password=password, result=result, log=log)
    pipelines = {spec.name: _seed_pipeline(spec, users=users, result=result, log=log) for spec in PIPELINES}
    customers = {spec.name: _seed_customer(spec, result=result, log=log) for spec in CUSTOMERS}
    today = business_today()
    for spec in JOBS:
        _seed_job(
            spec,
            customer=customers[spec.customer],
            pipeline=pipelines[spec.pipeline],
            users=users,
            today=today,
            result=result,
            log=log,
        )
    return result


def _seed_groups() -> dict[str, Group]:
    """Both groups can use the admin on the crm models. Missing permissions are added on every
    run, so a model added later reaches them by seeding again."""
    crm_permissions = Permission.objects.filter(content_type__app_label="crm").filter(
        Q(codename__startswith="view_")
        | (Q(codename__startswith="add_") | Q(codename__startswith="change_"))
        & ~Q(content_type__model__in=READ_ONLY_MODELS)
    )
    groups = {}
    for name in (MANAGERS_GROUP, STAFF_GROUP):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*crm_permissions)
        groups[name] = group
    return groups


def _seed_users(*, password: str, result: SeedResult, log: Log) -> dict[str, User]:
    groups = _seed_groups()
    users = {}
    for spec in USERS:
        user = User.objects.filter(username=spec.username).first()
        if user is None:
            user = User.objects.create_user(
                spec.username,
                spec.email,
                password,
                first_name=spec.first_name,
                last_name=spec.last_name,
                is_staff=True,
                is_superuser=spec.role == "manager",
            )
            user.groups.add(groups[MANAGERS_GROUP if spec.role == "manager" else STAFF_GROUP])
            # What customers see on the owner card and at the foot of every message.
            StaffProfile.objects.create(user=user, job_title=spec.job_title, phone=spec.phone, language=spec.language)
            result.add("users")
            result.new_users.append(spec.username)
            log(f"User {spec.username} ({spec.role})")
        users[spec.username] = user
    return users


def _seed_pipeline(spec: PipelineSpec, *, users: dict[str, User], result: SeedResult, log: Log) -> Pipeline:
    pipeline = Pipeline.objects.filter(name=spec.name).first()
    if pipeline is not None:
        _seed_after_job(pipeline, spec, log=log)
        _seed_roles(pipeline, spec, users=users, result=result, log=log)
        return pipeline
    pipeline = Pipeline(name=spec.name, description=spec.description, silence_days=spec.silence_days)
    pipeline.full_clean()
    pipeline.save()
    for position, stage_spec in enumerate(spec.stages, start=1):
        stage = StageTemplate(
            pipeline=pipeline,
            position=position,
            name=stage_spec.name,
            customer_visible=stage_spec.visible,
            default_duration_days=stage_spec.days,
            message_key=stage_spec.key,
            customer_instructions=stage_spec.instructions,
            name_fr=stage_spec.name_fr,
            customer_instructions_fr=stage_spec.instructions_fr,
        )
        stage.full_clean()
        stage.save()
    result.add("pipelines")
    log(f"Pipeline {spec.name}: {' → '.join(s.name for s in spec.stages)}")
    _seed_after_job(pipeline, spec, log=log)
    _seed_roles(pipeline, spec, users=users, result=result, log=log)
    return pipeline


def _seed_roles(
    pipeline: Pipeline, spec: PipelineSpec, *, users: dict[str, User], result: SeedResult, log: Log
) -> None:
    """The pipeline's roles and the stages they answer for, on a pipeline that has none yet (a
    database seeded before roles existed gets them; one where someone set roles keeps them)."""
    if not spec.roles or pipeline.roles.exists():
        return
    roles = {}
    for role_spec in spec.roles:
        role = PipelineRole(pipeline=pipeline, name=role_spec.name, default_holder=users[role_spec.holder])
        role.full_clean()
        role.save()
        roles[role.name] = role
        result.add("stage roles")
    # A stage someone gave a role of their own keeps it; a stage renamed since is left alone.
    for stage_spec in spec.stages:
        if stage_spec.role:
            pipeline.stages.filter(name=stage_spec.name, role__isnull=True).update(role=roles[stage_spec.role])
    log(f"Pipeline {spec.name}: " + ", ".join(f"{r.name} ({users[r.holder].get_full_name()})" for r in spec.roles))


def _seed_after_job(pipeline: Pipeline, spec: PipelineSpec, *, log: Log) -> None:
    """The survey and check-in settings, on a pipeline that has none yet (a database seeded
    before they existed gets them; one where someone chose otherwise keeps its choice)."""
    if pipeline.survey_stage_id is not None or pipeline.checkin_days is not None:
        return
    if not spec.survey_stage and spec.checkin_days is None:
        return
    pipeline.survey_stage = pipeline.stages.get(name=spec.survey_stage) if spec.survey_stage else None
    pipeline.survey_delay_days = spec.survey_delay_days
    pipeline.checkin_days = spec.checkin_days
    pipeline.full_clean()
    pipeline.save(update_fields=["survey_stage", "survey_delay_days", "checkin_days"])
    log(
        f"Pipeline {spec.name}: survey {spec.survey_delay_days} day(s) after “{spec.survey_stage}”, "
        f"check-in {spec.checkin_days} days after completion"
    )


def _seed_customer(spec: CustomerSpec, *, result: SeedResult, log: Log) -> Customer:
    customer = Customer.objects.filter(name=spec.name).order_by("pk").first()
    if customer is None:
        customer = Customer(name=spec.name, kind=spec.kind, address=spec.address, notes=spec.notes)
        customer.full_clean()
        customer.save()
        result.add("customers")
        log(f"Customer {spec.name}")
    now = timezone.now()
    for contact_spec in spec.contacts:
        if customer.contacts.filter(name=contact_spec.name).exists():
            continue
        consent = contact_spec.sms_consent_source
        contact = Contact(
            customer=customer,
            name=contact_spec.name,
            email=contact_spec.email,
            phone=contact_spec.phone,
            language=contact_spec.language,
            preferred_channel=contact_spec.channel,
            time_zone=contact_spec.time_zone,
            sms_consent_at=now - timedelta(days=contact_spec.sms_consent_days_ago) if consent else None,
            sms_consent_source=consent,
            opted_out_at=(
                now - timedelta(days=contact_spec.opted_out_days_ago)
                if contact_spec.opted_out_days_ago is not None
                else None
            ),
        )
        contact.full_clean()
        contact.save()
        result.add("contacts")
        log(f"  Contact {contact_spec.name} ({contact_spec.language}, {contact_spec.channel})")
    return customer


def _seed_job(
    spec: JobSpec,
    *,
    customer: Customer,
    pipeline: Pipeline,
    users: dict[str, User],
    today: date,
    result: SeedResult,
    log: Log,
) -> None:
    if customer.jobs.filter(title=spec.title).exists():
        return
    stages = {stage.name: stage for stage in pipeline.stages.all()}
    wanted = {spec.reached} | {move.stage for move in spec.moves}
    missing = sorted(name for name in wanted - {""} if name not in stages)
    if missing:
        # The pipeline was edited since it was seeded; a half-built job would be worse than none.
        result.skipped.append(f"{spec.title}: the {pipeline.name} pipeline has no stage {', '.join(missing)}")
        return

    owner = users[spec.owner]
    contacts = list(customer.contacts.filter(name__in=spec.contacts)) if spec.contacts else None
    # Only a job opened today welcomes its contacts now; a back-dated one was welcomed back then.
    fresh = spec.started == 0
    job = job_create(
        customer=customer,
        pipeline=pipeline,
        owner=owner,
        title=spec.title,
        actor=owner,
        contacts=contacts,
        start_date=business_days_ago(spec.started, today=today),
        notify_customer=fresh,
        not_told_reason="" if fresh else BACK_DATED_REASON,
    )
    if spec.reached:
        job = job_advance(job=job, to_stage=stages[spec.reached], actor=owner)
        # Reaching a stage of another role hands the job over: that person acts on it from now on.
        owner = job.owner
    for move in spec.moves:
        milestone_move(
            milestone=job.milestones.get(stage=stages[move.stage]),
            new_date=add_business_days(today, move.business_days_from_today),
            reason=move.reason,
            actor=owner,
            tell_customer=move.tell_customer,
        )
    if spec.reassign_to:
        job = job_reassign(job=job, owner=users[spec.reassign_to], actor=users["alice"], reason=spec.reassign_reason)
        owner = users[spec.reassign_to]
    if spec.hold:
        job = job_hold(job=job, actor=owner, reason=spec.hold)
    if spec.resume:
        job = job_resume(job=job, actor=owner, reason=spec.resume)
    if spec.cancel:
        job = job_cancel(job=job, actor=owner, reason=spec.cancel)
    if spec.complete is not None:
        job = job_complete(job=job, actor=owner, reason=spec.complete)
    result.add("jobs")
    log(f"Job {job.reference} {spec.title} ({customer.name}, {job.current_stage.name}, {job.get_status_display()})")
