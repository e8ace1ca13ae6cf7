from django.urls import path, re_path

from testbed.app import replay, views

urlpatterns = [
    path("health", views.health),
    path("api/fast", views.fast),
    path("api/slow", views.slow),
    path("api/cpu", views.cpu),
    path("api/items", views.items),
    # `albprobe replay` sends the paths of a production log: the testbed answers them all
    re_path(r"^(?P<path>.*)$", replay.catch_all),
]
