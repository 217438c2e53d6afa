from crm.views import campaigns, csv_import, customers, dashboard, jobs, jobs_bulk, promises, questions, reports, visits

app_name = "crm"

urlpatterns = [
    *dashboard.urlpatterns,
    *jobs.urlpatterns,
    *jobs_bulk.urlpatterns,
    *promises.urlpatterns,
    *customers.urlpatterns,
    *csv_import.urlpatterns,
    *campaigns.urlpatterns,
    *reports.urlpatterns,
    *questions.urlpatterns,
    *visits.urlpatterns,
]
