from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from django.utils.translation import gettext_lazy as _

from config import errors
from config.health import healthz
from crm.webhooks import PostmarkInboundView

admin.site.site_header = _("Customer portal — administration")
admin.site.site_title = _("Customer portal admin")

urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("portal/", include("portal.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("crm.urls")),
]
if settings.ANYMAIL_WEBHOOKS_ENABLED:
    # ESP webhooks: /anymail/<esp>/tracking/ and /anymail/<esp>/inbound/, behind their basic-auth
    # secret in production (settings refuse an ESP without one; with no ESP they are not served).
    # Postmark's inbound address first, to its view that cleans the payload before anymail reads it.
    urlpatterns[2:2] = [
        path("anymail/postmark/inbound/", PostmarkInboundView.as_view(), name="postmark_inbound_webhook"),
        path("anymail/", include("anymail.urls")),
    ]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
