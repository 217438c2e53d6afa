from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("enter/<str:token>/", views.enter, name="enter"),
    path("signed-out/", views.signed_out, name="signed_out"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
