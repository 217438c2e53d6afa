from anymail import urls as anymail_urls
from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from django.utils.translation import gettext_lazy as _

from api import urls as api_urls
from config import errors
from config.health import healthz
from crm.access import require_second_factor
from crm.sms_webhooks import twilio_inbound, twilio_status
from crm.views import accounts
from crm.views.accounts import StaffPasswordResetConfirmView, StaffPasswordResetView
from crm.webhooks import PostmarkInboundView, parse_guarded

admin.site.site_header = _("Customer portal — administration")
admin.site.site_title = _("Customer portal admin")

urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz", healthz, name="healthz"),
    path("admin/", require_second_factor(admin.site).urls),
    path("portal/", include("portal.urls")),
    # The JSON API for other systems (api/): API keys only, never a session.
    path("api/v1/", include((api_urls.urlpatterns, "api"))),
    # The SMS provider's webhooks (crm.sms_webhooks): signed by Twilio, 404 without its auth token.
    path("sms/twilio/status/", twilio_status, name="twilio_status"),
    path("sms/twilio/inbound/", twilio_inbound, name="twilio_inbound"),
    # Staff sign-in: the password views throttled sign-in and two-factor sign-in need
    # (crm.views.accounts) come before Django's own, which serve the rest under the same names.
    path("accounts/password_reset/", StaffPasswordResetView.as_view(), name="password_reset"),
    path("accounts/reset/<uidb64>/<token>/", StaffPasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("accounts/password_change/", accounts.password_change, name="password_change"),
    path("accounts/password_change/done/", accounts.password_change_done, name="password_change_done"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("crm.urls")),
]


def _webhooks(esps: list[str]) -> list[URLPattern | URLResolver]:
    """The configured providers' webhooks only (/anymail/<esp>/tracking/ and inbound/), behind
    their basic-auth secret in production: another provider's URL is a 404, never anymail's
    configuration error (a 500) for a provider we have no keys for. A body the provider's parser
    cannot read is a 400 (crm.webhooks.parse_guarded). Postmark's inbound address goes to its view
    that cleans the payload before anymail reads it."""
    served: list[URLPattern | URLResolver] = []
    for pattern in anymail_urls.urlpatterns:
        if not any(str(pattern.pattern).lstrip("^").startswith(f"{esp}/") for esp in esps):
            continue
        view = pattern.callback.view_class  # type: ignore[attr-defined]
        if pattern.name == "postmark_inbound_webhook":
            view = PostmarkInboundView
        served.append(URLPattern(pattern.pattern, parse_guarded(view).as_view(), name=pattern.name))
    return [path("anymail/", include((served, "anymail")))] if served else []


urlpatterns[2:2] = _webhooks(settings.ANYMAIL_WEBHOOK_ESPS)

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
