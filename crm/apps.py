from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "crm"
    verbose_name = _("Customer relations")

    def ready(self) -> None:
        from crm import middleware, webhooks  # noqa: F401  (connect the sign-in and anymail receivers)
