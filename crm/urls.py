from crm.views import (
    board,
    calendar,
    campaigns,
    csv_import,
    customers,
    dashboard,
    files,
    jobs,
    jobs_bulk,
    promises,
    questions,
    reports,
    schedule,
    search,
    two_factor,
    visits,
)

app_name = "crm"

urlpatterns = [
    *dashboard.urlpatterns,
    *board.urlpatterns,
    *jobs.urlpatterns,
    *jobs_bulk.urlpatterns,
    *promises.urlpatterns,
    *customers.urlpatterns,
    *csv_import.urlpatterns,
    *campaigns.urlpatterns,
    *reports.urlpatterns,
    *questions.urlpatterns,
    *visits.urlpatterns,
    *files.urlpatterns,
    *schedule.urlpatterns,
    *search.urlpatterns,
    *calendar.urlpatterns,
    *two_factor.urlpatterns,
]
