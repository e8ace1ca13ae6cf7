from django.urls import path

from testbed.app import views

urlpatterns = [
    path("health", views.health),
    path("api/fast", views.fast),
    path("api/slow", views.slow),
    path("api/cpu", views.cpu),
    path("api/items", views.items),
]
