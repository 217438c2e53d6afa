from crm.views import campaigns, customers, dashboard, imports, jobs, jobs_bulk, promises, reports, requests

app_name = "crm"

urlpatterns = [
    *dashboard.urlpatterns,
    *jobs.urlpatterns,
    *jobs_bulk.urlpatterns,
    *promises.urlpatterns,
    *customers.urlpatterns,
    *imports.urlpatterns,
    *campaigns.urlpatterns,
    *reports.urlpatterns,
    *requests.urlpatterns,
]
