from django.shortcuts import render
from django.urls import path


def index(request):  # type: ignore[no-untyped-def]
    return render(request, "index.html")


urlpatterns = [path("", index)]
