from django.urls import path

from crm.views import campaigns, customers, dashboard, imports, jobs, jobs_bulk, promises, reports

app_name = "crm"

urlpatterns = [
    path("", dashboard.home, name="home"),
    *jobs.urlpatterns,
    *jobs_bulk.urlpatterns,
    *promises.urlpatterns,
    *customers.urlpatterns,
    *imports.urlpatterns,
    *campaigns.urlpatterns,
    *reports.urlpatterns,
]
