"""Who may change what in the admin: the two groups and the model permissions each one carries.

"Staff" are the owners and everyone else who works jobs; "Managers" also hand jobs over, say who
answers for each stage, configure the pipelines, clear sign-in lockouts and remove a lost phone's
two-factor devices (crm.access.is_manager:
a member of "Managers", or a superuser). The staff pages check is_manager themselves; the admin
checks these permissions, and crm.admin adds what a permission cannot say (whose profile, which
field of a job). The table here is the whole truth about both groups: roles_ensure() makes each
group carry exactly these permissions, on every migrate and with `manage.py setup_roles`, so a
permission given to someone in particular goes on their user, never on the group.

Permissions are named as User.has_perm() names them (``app_label.codename``). One whose app is not
installed (django-axes, say) is skipped, so the table works with or without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS, router, transaction

from crm.access import MANAGERS_GROUP

STAFF_GROUP = "Staff"


def _perms(app_label: str, model: str, *actions: str) -> frozenset[str]:
    return frozenset(f"{app_label}.{action}_{model}" for action in actions)


def _view(*models: str) -> frozenset[str]:
    return frozenset().union(*(_perms("crm", model, "view") for model in models))


# What the business is set up with: the staff pages work within it, only managers change it
# (crm.admin's ManagersOnly refuses anyone else, whatever permissions they were given).
CONFIGURATION_MODELS = ("pipeline", "pipelinerole", "stagetemplate", "visitkind", "subcontractor")

STAFF_PERMISSIONS: frozenset[str] = frozenset().union(
    # The customers and contacts they work with, added and changed as on the staff pages (which
    # delete no contact: that is a manager's, here, through contacts_delete).
    _perms("crm", "customer", "view", "add", "change"),
    _perms("crm", "contact", "view", "add", "change"),
    # Their own profile only (crm.admin shows anyone else's read-only): the phone customers see.
    _perms("crm", "staffprofile", "view", "change"),
    # Jobs and what hangs on them: seen here, changed on the staff pages, through their services.
    _view(
        "job",
        "milestone",
        "jobrole",
        "jobevent",
        "message",
        "question",
        "commitment",
        "renegotiation",
        "jobfile",
        "visit",
        "campaign",
        "importrun",
        "contactlinkuse",
        # Numbers that texted STOP: everyone sees why a contact gets no texts.
        "smsoptout",
    ),
    _view(*CONFIGURATION_MODELS),
)

MANAGER_PERMISSIONS: frozenset[str] = STAFF_PERMISSIONS.union(
    _perms("crm", "customer", "delete"),
    _perms("crm", "contact", "delete"),
    # Anyone's profile.
    _perms("crm", "staffprofile", "add", "delete"),
    # A job's owner and role holders (the staff pages' reassign and "who answers", managers only),
    # its stage, details and dates, and its status from the job list's actions.
    _perms("crm", "job", "add", "change"),
    _perms("crm", "milestone", "change"),
    frozenset().union(*(_perms("crm", model, "add", "change", "delete") for model in CONFIGURATION_MODELS)),
    # The figures of the whole team (a non-manager's reports show their own jobs only), the
    # reference counter, and who looked at which customer's data.
    _view("survey", "checkin", "jobreferencecounter", "accessrecord"),
    # The integrations, read (their staff pages, Settings, make and change them).
    _view("apikey", "webhookendpoint", "webhookdelivery"),
    # The people jobs are given to (the admin's autocomplete of owners and installers). Changing
    # users and groups stays with superusers: whoever may change a user may make them a superuser.
    _perms("auth", "user", "view"),
    # Sign-in lockouts (django-axes): seen, and cleared by deleting the attempts.
    _perms("axes", "accessattempt", "view", "delete"),
    _perms("axes", "accesslog", "view"),
    _perms("axes", "accessfailurelog", "view"),
    # A lost or replaced phone (django-otp): its devices seen and removed, so that person sets up
    # two-factor sign-in again at their next sign-in. Nobody reads a key here
    # (OTP_ADMIN_HIDE_SENSITIVE_DATA), and adding or changing one stays with its owner.
    _perms("otp_totp", "totpdevice", "view", "delete"),
    _perms("otp_static", "staticdevice", "view", "delete"),
)

ROLES: dict[str, frozenset[str]] = {STAFF_GROUP: STAFF_PERMISSIONS, MANAGERS_GROUP: MANAGER_PERMISSIONS}


@dataclass
class RolesEnsured:
    """What roles_ensure() changed (one line per group created, or permissions added or removed)
    and the permissions of the table this database does not have (their app is not installed)."""

    changes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _label(permission: Permission) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"


def _permissions_made(labels: set[str], *, using: str) -> None:
    """Each app's permissions are made by post_migrate, app after app in INSTALLED_APPS order:
    one installed after crm (django-axes, say) would have none yet when crm's post_migrate runs.
    Made now for every app the table names (Django's own function, which adds only what is
    missing), whatever the order."""
    for app_label in sorted({label.split(".", 1)[0] for label in labels}):
        try:
            app_config = apps.get_app_config(app_label)
        except LookupError:
            continue  # Not installed: its permissions are skipped.
        create_permissions(app_config, verbosity=0, using=using)


def roles_ensure(*, using: str = DEFAULT_DB_ALIAS) -> RolesEnsured:
    """Make both groups exist with exactly the permissions of ROLES (idempotent: a second run
    changes nothing)."""
    result = RolesEnsured()
    wanted = set().union(*ROLES.values())
    _permissions_made(wanted, using=using)
    with transaction.atomic(using=using):
        candidates = Permission.objects.using(using).select_related("content_type")
        candidates = candidates.filter(
            content_type__app_label__in={label.split(".", 1)[0] for label in wanted},
            codename__in={label.split(".", 1)[1] for label in wanted},
        )
        found = {_label(permission): permission for permission in candidates}
        result.skipped = sorted(wanted - found.keys())
        for name, labels in ROLES.items():
            group, created = Group.objects.using(using).get_or_create(name=name)
            if created:
                result.changes.append(f"Group “{name}” created.")
            has = {_label(permission): permission for permission in group.permissions.select_related("content_type")}
            added = sorted(labels & found.keys() - has.keys())
            removed = sorted(has.keys() - labels)
            if added:
                group.permissions.add(*(found[label] for label in added))
                result.changes.append(f"{name}: added {', '.join(added)}.")
            if removed:
                group.permissions.remove(*(has[label] for label in removed))
                result.changes.append(f"{name}: removed {', '.join(removed)}.")
    return result


def roles_after_migrate(sender: Any, *, using: str = DEFAULT_DB_ALIAS, verbosity: int = 1, **kwargs: Any) -> None:
    """The post_migrate receiver of the crm app (crm.apps): every database has both groups."""
    if not router.allow_migrate_model(using, Group):
        return
    result = roles_ensure(using=using)
    if verbosity >= 2:
        for line in result.changes:
            # What migrate says at -v 2, as Django's own receivers do (create_permissions).
            print(f"  Roles: {line}")
