from django.urls import path

from organisation import views

app_name = "organisation"

urlpatterns = [
    path("", views.absence_list, name="absences"),
    path("<int:pk>/cancel/", views.absence_cancel, name="absence-cancel"),
]
