"""Home: what needs attention now, most urgent first, each row with its next action."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from crm import selectors
from crm.access import StaffRequest, staff_required
from crm.workdays import business_today


@staff_required
@require_GET
def home(request: StaffRequest) -> HttpResponse:
    scope = "team" if request.GET.get("scope") == "team" else "mine"
    sections = selectors.attention(request.user, scope=scope)
    counts = selectors.attention_counts(request.user)
    return render(
        request,
        "crm/home.html",
        {"nav": "home", "sections": sections, "scope": scope, "attention_counts": counts, "today": business_today()},
    )
