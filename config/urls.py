from django.contrib import admin
from django.urls import path

from config.health import healthz

admin.site.site_header = "Customer portal — administration"
admin.site.site_title = "Customer portal admin"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
