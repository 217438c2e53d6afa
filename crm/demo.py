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

Visits (see ``VISITS``) are booked through ``crm.services.visits`` on the real clock, so the
staff's "Today" page and the portal show every state: a crew running late today, a visit on the
next business day the customer has not confirmed yet, and two done ones — inside their window and
late. A visit refuses a window in the past, so a done one is booked ahead, then its rows are
back-dated (like a back-dated job, it was not told to the customer now: that happened back then).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from crm import phones
from crm.access import MANAGERS_GROUP
from crm.errors import DomainError
from crm.models import (
    Commitment,
    Contact,
    Customer,
    Job,
    JobEvent,
    Pipeline,
    PipelineRole,
    StaffProfile,
    StageTemplate,
    Visit,
    VisitKind,
)
from crm.roles import ROLES, STAFF_GROUP, roles_ensure
from crm.services import promises
from crm.services.events import record_event
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
from crm.services.visits import MAX_ETA, visit_book, visit_running_late
from crm.workdays import (
    add_business_days,
    business_today,
    business_zone,
    is_business_day,
    next_business_day,
    opening_hours,
)

DEFAULT_PASSWORD = "demo"  # noqa: S105 - a demo login, refused by the command outside DEBUG

# Why a back-dated demo job was not welcomed when the seed created it (on its "created" event).
BACK_DATED_REASON = "Demo job created with its history."
# Why a done demo visit was not told to the customer when the seed booked it (on its "booked" event).
BACK_DATED_VISIT_REASON = "Demo visit booked with its history."


# --- What the world contains --------------------------------------------------------------------
# Phone numbers come from the ranges reserved for fiction (ARCEP 01 99 00 and 06 39 98, Ofcom
# 07700 900, NANP 555-01), so a demo can never call a real person — but the French and British
# fiction mobiles are numbers libphonenumber does not know, which texts cannot reach. The three
# contacts who agreed to texts have the mobiles of libphonenumber's own examples instead (+33 6 12
# 34 56 xx, +44 7400 1234xx), and seed_demo refuses to run with a real SMS provider configured,
# so the demo's texts are only ever printed (the console backend) or kept (the in-memory one).


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
    # What to prepare includes sending photos: the portal offers to send them there.
    asks_for_files: bool = False


@dataclass(frozen=True)
class RoleSpec:
    name: str
    holder: str  # the username who usually holds it


@dataclass(frozen=True)
class VisitKindSpec:
    name: str
    window_minutes: int
    duration_minutes: int
    name_fr: str = ""
    # The stage the visit belongs to (left empty when the pipeline has no such stage), and
    # whether the visit done reaches it.
    stage: str = ""
    completes_stage: bool = False


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
    visit_kinds: tuple[VisitKindSpec, ...] = ()
    # Customers choose another time for a visit themselves, among the crew's free times.
    visit_self_booking: bool = False


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
                asks_for_files=True,
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
        visit_kinds=(
            VisitKindSpec("Site survey", 120, 60, name_fr="Visite technique"),
            VisitKindSpec(
                "Installation day",
                120,
                480,
                name_fr="Journée d’installation",
                stage="Installed",
                completes_stage=True,
            ),
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
                instructions=(
                    "Send us a photo of the error on the display and of the unit's label; make sure someone can "
                    "let the technician in and show where the fault appears."
                ),
                name_fr="Diagnostic établi",
                instructions_fr=(
                    "Envoyez-nous une photo de l’erreur affichée et de la plaque de l’appareil ; assurez-vous que "
                    "quelqu’un peut ouvrir au technicien et lui montrer où la panne apparaît."
                ),
                asks_for_files=True,
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
        visit_kinds=(
            VisitKindSpec("Repair call", 120, 90, name_fr="Dépannage", stage="Repaired", completes_stage=True),
        ),
        # A repair call is booked like a slot at a garage: the customer may pick another free one.
        visit_self_booking=True,
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
                phone="+33 6 12 34 56 01",
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
                phone="+44 7400 123401",
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
                phone="+33 6 12 34 56 02",
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
    # A document promised by the owner ("the quote"), due this many business days from today.
    promised_document: str = ""
    promised_in: int = 3


# Cumulative business days from the start: Installation 0, 3, 8, 11, 21, 26; Repair 0, 2, 3, 8, 10.
JOBS = (
    # Done.
    JobSpec(
        "Lefèvre household",
        "Pompe à chaleur air-eau",
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
        "Chaudière qui ne chauffe plus",
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
        "Pompe à chaleur : code d’erreur E12",
        "Repair",
        "bob",
        started=0,
        # Shared from the job page (a PDF), it keeps the promise: Marie downloads it on her portal.
        promised_document="Quote for the repair",
    ),
    JobSpec("Northwind Logistics Ltd", "Loading bay door motor", "Repair", "alice", started=3, reached="Parts ordered"),
    JobSpec(
        "Boulangerie Moreau SARL",
        "Compresseur de la vitrine réfrigérée",
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
    JobSpec(
        "Boulangerie Moreau SARL", "Alarme de la devanture en panne", "Repair", "bob", started=2, reached="Diagnosed"
    ),
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
        "Adoucisseur d’eau",
        "Installation",
        "chloe",
        started=11,
        reached="Installation scheduled",
        hold="Client absent jusqu’à la fin du mois.",
        resume="Client de retour ; date d’installation confirmée par téléphone.",
    ),
    # Running late: a proposal and a diagnosis overdue, with no news yet.
    JobSpec("Hôtel Le Nordet", "Wi-Fi des clients et câblage réseau", "Installation", "alice", started=6),
    JobSpec("Hôtel Le Nordet", "Hotte d’extraction de la cuisine", "Repair", "chloe", started=4),
    # Running late: reached its stage late, so the rest of the plan slid without anyone saying so.
    JobSpec(
        "Tremblay household",
        "Thermopompe centrale, rez-de-chaussée",
        "Installation",
        "bob",
        started=9,
        reached="Proposal sent",
    ),
    # Running late, announced before the date (proactive).
    JobSpec(
        "Boulangerie Moreau SARL",
        "Groupe froid de la chambre froide",
        "Installation",
        "chloe",
        started=11,
        reached="Installation scheduled",
        moves=(
            MoveSpec("Installed", 15, "Le compresseur est livré une semaine plus tard que promis par le fournisseur."),
        ),
    ),
    JobSpec(
        "Hôtel Le Nordet",
        "Panne d’eau chaude, aile est",
        "Repair",
        "alice",
        started=3,
        reached="Parts ordered",
        moves=(MoveSpec("Repaired", 9, "Le mitigeur de remplacement est en rupture chez le grossiste."),),
    ),
    # Running late, announced after the date had passed (reactive).
    JobSpec(
        "Lefèvre household",
        "Borne de recharge dans le garage",
        "Installation",
        "chloe",
        started=5,
        moves=(
            MoveSpec("Proposal sent", 1, "La visite technique a dû être refaite ; la proposition sera prête demain."),
        ),
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
        "Panneaux solaires sur le toit",
        "Installation",
        "alice",
        started=3,
        reached="Proposal sent",
        hold="L’assureur de l’hôtel demande d’abord une expertise de la charpente du toit.",
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


# When a demo visit takes place, from the moment the seed runs.
TODAY_RUNNING_LATE = "today, running late"
NEXT_BUSINESS_DAY = "next business day"
DONE = "done"


@dataclass(frozen=True)
class VisitSpec:
    customer: str
    job: str  # the job's title
    kind: str
    installers: tuple[str, ...]  # usernames: who goes
    when: str  # TODAY_RUNNING_LATE, NEXT_BUSINESS_DAY or DONE
    # Running late: why, as the customer is told.
    late_reason: str = ""
    # The window starts this long after opening time (on the day a DONE visit took place, or on
    # the next business day).
    starts_after_opening: int = 300  # minutes
    # Done: this many business days ago, the crew at the door this long after the window started
    # (past the window's end: late).
    days_ago: int = 0
    arrived_after: int = 0  # minutes


VISITS = (
    # Today: the crew warns the customer, before the window, that it will come after it.
    VisitSpec(
        "Northwind Logistics Ltd",
        "Loading bay door motor",
        "Repair call",
        ("chloe", "bob"),
        TODAY_RUNNING_LATE,
        late_reason="Our previous call ran over: a seized shutter took longer to free than planned.",
    ),
    # The next business day, not confirmed yet: Marie's portal asks "That works / I need another time".
    VisitSpec("Lefèvre household", "Pompe à chaleur : code d’erreur E12", "Repair call", ("chloe",), NEXT_BUSINESS_DAY),
    # Done inside its window, before the proposal.
    VisitSpec(
        "Okafor household",
        "Solar panels and home battery",
        "Site survey",
        ("chloe",),
        DONE,
        starts_after_opening=60,
        days_ago=6,
        arrived_after=40,
    ),
    # Done late: the window ended without the crew (its promise broken), who came 50 minutes after.
    VisitSpec(
        "Tremblay household",
        "Thermopompe centrale, rez-de-chaussée",
        "Site survey",
        ("bob",),
        DONE,
        days_ago=7,
        arrived_after=170,
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
    for visit_spec in VISITS:
        _seed_visit(visit_spec, customers=customers, users=users, result=result, log=log)
    return result


def _seed_groups() -> dict[str, Group]:
    """The groups of crm.roles, carrying the permissions it gives them (migrate has made them
    already; made again here in case the roles changed since)."""
    roles_ensure()
    return {group.name: group for group in Group.objects.filter(name__in=ROLES)}


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
            StaffProfile.objects.create(
                user=user, job_title=spec.job_title, phone=_stored_phone(spec.phone), language=spec.language
            )
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
        _seed_visit_kinds(pipeline, spec, result=result, log=log)
        return pipeline
    pipeline = Pipeline(
        name=spec.name,
        description=spec.description,
        silence_days=spec.silence_days,
        visit_self_booking=spec.visit_self_booking,
    )
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
            asks_for_files=stage_spec.asks_for_files,
        )
        stage.full_clean()
        stage.save()
    result.add("pipelines")
    log(f"Pipeline {spec.name}: {' → '.join(s.name for s in spec.stages)}")
    _seed_after_job(pipeline, spec, log=log)
    _seed_roles(pipeline, spec, users=users, result=result, log=log)
    _seed_visit_kinds(pipeline, spec, result=result, log=log)
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


def _seed_visit_kinds(pipeline: Pipeline, spec: PipelineSpec, *, result: SeedResult, log: Log) -> None:
    """The pipeline's kinds of visit, on a pipeline that has none yet (a database seeded before
    visits existed gets them; one where someone set its own keeps them)."""
    if not spec.visit_kinds or pipeline.visit_kinds.exists():
        return
    stages = {stage.name: stage for stage in pipeline.stages.all()}
    for kind_spec in spec.visit_kinds:
        # A stage renamed since the pipeline was seeded: the kind belongs to no stage.
        stage = stages.get(kind_spec.stage)
        kind = VisitKind(
            pipeline=pipeline,
            name=kind_spec.name,
            name_fr=kind_spec.name_fr,
            window_minutes=kind_spec.window_minutes,
            duration_minutes=kind_spec.duration_minutes,
            stage=stage,
            completes_stage=kind_spec.completes_stage and stage is not None,
        )
        kind.full_clean()
        kind.save()
        result.add("visit kinds")
    log(f"Pipeline {spec.name}: visits " + ", ".join(k.name for k in spec.visit_kinds))


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


def _stored_phone(typed: str) -> str:
    """A number as the services store it (E.164). The demo's numbers are from the ranges kept for
    fiction, which libphonenumber does not all take as valid: those stay as written, as old data
    the E.164 migration could not read does (nobody real can be texted by the demo)."""
    return phones.e164_or_none(typed) or typed


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
            phone=_stored_phone(contact_spec.phone),
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
    if spec.promised_document:
        promises.document_promise(
            job=job,
            title=spec.promised_document,
            due_on=add_business_days(today, spec.promised_in),
            actor=owner,
            contact=job.contacts.order_by("pk").first(),
        )
    result.add("jobs")
    log(f"Job {job.reference} {spec.title} ({customer.name}, {job.current_stage.name}, {job.get_status_display()})")


# --- Visits -------------------------------------------------------------------------------------
# The crew running late says so this long before the window starts, and expects to come this
# long after it ends (so the window's promise moves, told in time).
LATE_NOTICE = timedelta(minutes=30)
LATE_BY = timedelta(minutes=30)
# A done visit is booked this far ahead (a window in the past is refused), then back-dated.
BOOKED_AHEAD = timedelta(weeks=52)


def _seed_visit(
    spec: VisitSpec, *, customers: dict[str, Customer], users: dict[str, User], result: SeedResult, log: Log
) -> None:
    """One demo visit, unless its job already has a visit of that kind (seeding twice, or on
    another day, books nothing again)."""
    job = customers[spec.customer].jobs.filter(title=spec.job).select_related("pipeline").order_by("pk").first()
    if job is None:
        return  # the job was not seeded (reported with it)
    kind = job.pipeline.visit_kinds.filter(name=spec.kind).select_related("pipeline").first()
    if kind is None:
        result.skipped.append(f"{spec.job}: the {job.pipeline.name} pipeline has no visit kind {spec.kind}")
        return
    if job.visits.filter(kind=kind).exists():
        return
    if not job.is_open:
        result.skipped.append(f"the {spec.kind} of {spec.job}: the job is {job.get_status_display().lower()}")
        return
    _give_address(job.customer)
    installers = [users[name] for name in spec.installers]
    # Today's and the next business day's visits are booked now, so the customer is told now (as
    # the job opened today is welcomed); a done one was told back then (_seed_done_visit).
    try:
        # A visit the services refuse (someone booked that crew since) is left out, not the world.
        with transaction.atomic():
            if spec.when == DONE:
                visit = _seed_done_visit(spec, job=job, kind=kind, installers=installers)
            elif spec.when == TODAY_RUNNING_LATE:
                visit = _seed_late_visit(spec, job=job, kind=kind, installers=installers)
            else:
                day = next_business_day(business_today() + timedelta(days=1))
                visit = visit_book(
                    job=job,
                    kind=kind,
                    window_start=_at(day, spec.starts_after_opening, length=kind.window),
                    installers=installers,
                    actor=job.owner,
                )
    except DomainError as error:
        result.skipped.append(f"the {spec.kind} of {spec.job}: {error}")
        return
    result.add("visits")
    start = visit.window_start.astimezone(business_zone())
    log(f"Visit {job.reference} {kind.name} {start:%Y-%m-%d %H:%M} ({visit.get_status_display()})")


def _give_address(customer: Customer) -> None:
    """A visit goes to the customer's address: a demo customer without one gets the demo's."""
    if customer.address.strip():
        return
    spec = next((c for c in CUSTOMERS if c.name == customer.name), None)
    if spec is not None:
        customer.address = spec.address
        customer.save(update_fields=["address"])


def _at(day: date, minutes_after_opening: int, *, length: timedelta) -> datetime:
    """That long after opening time on ``day`` (business time zone), early enough for ``length``
    to end by closing time."""
    opens, closes = opening_hours()
    zone = business_zone()
    opening = datetime.combine(day, opens, tzinfo=zone)
    latest = datetime.combine(day, closes, tzinfo=zone) - length
    return max(opening, min(opening + timedelta(minutes=minutes_after_opening), latest))


def _next_half_hour(moment: datetime) -> datetime:
    """The first hour or half past at or after ``moment``."""
    rounded = moment.replace(minute=0, second=0, microsecond=0)
    while rounded < moment:
        rounded += timedelta(minutes=30)
    return rounded


def _seed_late_visit(spec: VisitSpec, *, job: Job, kind: VisitKind, installers: list[User]) -> Visit:
    """Booked for later today; then the crew says, before the window, that it will come after it.

    The crew can only say so on the day, within a few hours (``MAX_ETA``) and while the window is
    still ahead. When the seed runs too late in the day for a window to fit before closing (or at
    night, or on a day off), the visit is booked for the next business morning instead, without
    the "running late": nothing to say yet; on that morning it shows on the Today page and the
    at-risk scan warns of it if nobody sets off."""
    zone = business_zone()
    now = timezone.now().astimezone(zone)
    today = now.date()
    opens, closes = opening_hours()
    if is_business_day(today):
        start = max(datetime.combine(today, opens, tzinfo=zone), _next_half_hour(now + LATE_NOTICE))
        expected = start + kind.window + LATE_BY
        if expected <= datetime.combine(today, closes, tzinfo=zone) and expected <= now + MAX_ETA:
            visit = visit_book(job=job, kind=kind, window_start=start, installers=installers, actor=job.owner)
            return visit_running_late(visit=visit, actor=installers[0], reason=spec.late_reason, at=expected)
    morning = today if is_business_day(today) and now.time() < opens else next_business_day(today + timedelta(days=1))
    return visit_book(
        job=job, kind=kind, window_start=_at(morning, 0, length=kind.window), installers=installers, actor=job.owner
    )


def _seed_done_visit(spec: VisitSpec, *, job: Job, kind: VisitKind, installers: list[User]) -> Visit:
    """A visit done ``days_ago`` business days ago: booked ahead through the service (not told to
    the customer: that happened back then, like a back-dated job's welcome), then moved back to its
    day with what happened — the crew at the door (the window's promise kept, or first broken when
    the window ended without them, then kept late) and the work done."""
    day = business_days_ago(spec.days_ago, today=business_today())
    start = _at(day, spec.starts_after_opening, length=kind.window)
    end = start + kind.window
    crew = installers[0]
    visit = visit_book(
        job=job,
        kind=kind,
        window_start=start + BOOKED_AHEAD,
        installers=installers,
        actor=job.owner,
        tell_customer=False,
    )
    arrived = start + timedelta(minutes=spec.arrived_after)
    done = arrived + visit.duration
    booked = {"visit": str(visit.public_id)}
    Visit.objects.filter(pk=visit.pk).update(window_start=start, window_end=end)
    _event_data(
        job,
        JobEvent.Kind.VISIT_BOOKED,
        booked,
        window_start=start,
        window_end=end,
        not_told_reason=BACK_DATED_VISIT_REASON,
    )
    assert visit.commitment_id is not None
    promise = Commitment.objects.filter(pk=visit.commitment_id)
    promise.update(first_due_at=end, due_at=end)
    _event_data(job, JobEvent.Kind.PROMISE_MADE, {"commitment_id": visit.commitment_id}, due_at=end)
    if arrived > end:
        # The promise scan (every 5 minutes) broke the window's promise once it ended.
        promises.commitment_break(promise.get(), at=end + timedelta(minutes=5))
    promises.commitments_keep(promise, actor=crew, at=arrived)
    Visit.objects.filter(pk=visit.pk).update(
        status=Visit.Status.DONE, arrived_at=arrived, done_at=done, last_changed_by=crew
    )
    record_event(
        job=job,
        kind=JobEvent.Kind.VISIT_ARRIVED,
        actor=crew,
        in_window=start <= arrived <= end,
        **booked,
        title=kind.name,
    )
    record_event(job=job, kind=JobEvent.Kind.VISIT_DONE, actor=crew, **booked, title=kind.name)
    visit.refresh_from_db()
    return visit


def _event_data(job: Job, kind: str, match: Mapping[str, object], **changes: object) -> None:
    """The log line a service wrote about the booking, saying the back-dated window instead."""
    for event in JobEvent.objects.filter(job=job, kind=kind):
        if all(event.data.get(key) == value for key, value in match.items()):
            JobEvent.objects.filter(pk=event.pk).update(data={**event.data, **changes})
