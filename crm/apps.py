from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "crm"
    verbose_name = _("Customer relations")

    def ready(self) -> None:
        # One import statement (tests/test_structure.py); middleware, webhooks and person_versions
        # connect the sign-in, anymail and staff-card receivers; checks registers the system checks.
        from crm import checks, middleware, person_versions, roles, webhooks  # noqa: F401

        # Sent for crm once every migration has run, after auth's and contenttypes' receivers
        # (connected when those apps were ready) have made crm's permissions: the groups and
        # their permissions exist in every database.
        post_migrate.connect(roles.roles_after_migrate, sender=self, dispatch_uid="crm.roles")
