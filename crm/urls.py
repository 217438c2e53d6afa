from django.urls import path

from crm.views import customers, dashboard, imports, jobs

app_name = "crm"

urlpatterns = [
    path("", dashboard.home, name="home"),
    *jobs.urlpatterns,
    *customers.urlpatterns,
    *imports.urlpatterns,
]
