from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("whoami/", views.whoami),
    path("awhoami/", views.awhoami),
    path("boom/", views.boom),
    path("aboom/", views.aboom),
    path("missing/", views.missing),
    path("mw-boom/", views.whoami),
    path("stream/", views.stream),
    path("checkout/", views.checkout),
    path("health/", views.health),
    path("pp-checkout/", views.pp_checkout),
]
