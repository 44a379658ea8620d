from django.urls import path, re_path
from django.views.static import serve

from djsite import settings, views

urlpatterns = [
    path("", views.index),
    path("form/", views.form),
    path("hello/<str:name>/", views.hello),
    path("boom/", views.boom),
    path("headers/", views.headers),
    re_path(r"^static/(?P<path>.*)$", serve, {"document_root": settings.STATIC_ROOT}),
]
