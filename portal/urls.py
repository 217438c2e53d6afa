from django.urls import path

from portal import views, views_after, views_campaigns, views_files, views_visits

app_name = "portal"

# Every URL here is swept by tests/portal/test_access_sweep.py: a new one is covered automatically
# (a job URL must 404 for another customer, a token URL must 404 when tampered with).
urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/<uuid:public_id>/", views.job_detail, name="job"),
    path("jobs/<uuid:public_id>/status/", views.job_status, name="job_status"),
    path("jobs/<uuid:public_id>/questions/", views.ask, name="ask"),
    path("jobs/<uuid:public_id>/visits/<uuid:visit_id>/confirm/", views_visits.confirm, name="visit_confirm"),
    path(
        "jobs/<uuid:public_id>/visits/<uuid:visit_id>/another-time/",
        views_visits.another_time,
        name="visit_another_time",
    ),
    path("jobs/<uuid:public_id>/visits/<uuid:visit_id>/choose/", views_visits.choose_time, name="visit_choose"),
    path("preferences/", views.preferences, name="preferences"),
    path("preferences/reset-links/", views.reset_links, name="reset_links"),
    path("language/", views.language, name="language"),
    path("sign-out/", views.sign_out_view, name="sign_out"),
    path("enter/<str:token>/", views.enter, name="enter"),
    path("s/<str:token>/", views.short_enter, name="short_enter"),  # in text messages
    path("signed-out/", views.signed_out, name="signed_out"),
    path("signed-out/link-sent/", views.link_sent, name="link_sent"),
    path("calendar/<str:token>.ics", views.calendar, name="calendar"),
    path("visits/<str:token>.ics", views.visit_calendar, name="visit_calendar"),  # booking confirmations
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
urlpatterns += views_after.urlpatterns  # the survey and the check-in (after the job)
urlpatterns += views_campaigns.urlpatterns  # campaign links: durable, no sign-in needed
urlpatterns += views_files.urlpatterns  # photos and documents on a job
