"""The navigation's search: live results under the box as one types (htmx), and a plain results
page (the form's own submit, no JavaScript needed)."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from crm.access import StaffRequest, staff_required
from crm.forms.fields import search_text
from crm.search import MIN_LENGTH, search

# Rows of each kind under the navigation's box, and on the results page.
LIVE_RESULTS = 5
PAGE_RESULTS = 25
LIVE_TARGET = "nav-search-results"


@staff_required
@require_GET
def search_page(request: StaffRequest) -> HttpResponse:
    text = search_text(request.GET.get("q"))
    live = bool(request.htmx) and request.htmx.target == LIVE_TARGET
    if live and not text:
        return HttpResponse("")  # the box was emptied: nothing under it
    results = search(text, limit=LIVE_RESULTS if live else PAGE_RESULTS)
    context = {"results": results, "search": text, "min_length": MIN_LENGTH}
    if live:
        return render(request, "crm/search/_live.html", context)
    return render(request, "crm/search/page.html", {**context, "nav": "search"})


urlpatterns = [
    path("search/", search_page, name="search"),
]
