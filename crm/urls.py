from django.urls import path

from crm.views import campaigns, customers, dashboard, imports, jobs, promises, reports

app_name = "crm"

urlpatterns = [
    path("", dashboard.home, name="home"),
    *jobs.urlpatterns,
    *promises.urlpatterns,
    *customers.urlpatterns,
    *imports.urlpatterns,
    *campaigns.urlpatterns,
    *reports.urlpatterns,
]
