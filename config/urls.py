from django.contrib import admin
from django.urls import include, path

from config.health import healthz

admin.site.site_header = "Customer portal — administration"
admin.site.site_title = "Customer portal admin"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # ESP webhooks: /anymail/<esp>/tracking/ and /anymail/<esp>/inbound/ (basic auth secret).
    path("anymail/", include("anymail.urls")),
    path("portal/", include("portal.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("crm.urls")),
]
