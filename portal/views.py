"""Portal pages. Every page reads through portal.selectors, starting from the signed-in contact."""

from __future__ import annotations

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from crm.models import Contact
from crm.services.contacts import contact_opt_out
from portal.access import SESSION_KEY, email_fingerprint, read_link_token, read_unsubscribe_token


def enter(request: HttpRequest, token: str) -> HttpResponse:
    """A link from a message: sign the contact in and open the job it was about."""
    try:
        payload = read_link_token(token)
    except signing.BadSignature:  # expired links too (SignatureExpired is a BadSignature)
        return redirect("portal:signed_out")
    contact = Contact.objects.filter(pk=payload.get("c")).first()
    if contact is None or email_fingerprint(contact.email) != payload.get("e"):
        return redirect("portal:signed_out")
    request.session.cycle_key()
    request.session[SESSION_KEY] = contact.pk
    translation.activate(contact.language)
    job = request.GET.get("job", "")
    response = redirect("portal:job", job) if job else redirect("portal:home")
    return response


def signed_out(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/signed_out.html", status=200)


@csrf_exempt  # RFC 8058 one-click: the mail provider POSTs without our cookie; the token is the proof.
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks to confirm (a link scanner must not opt anyone out); POST opts out."""
    try:
        payload = read_unsubscribe_token(token)
    except signing.BadSignature:
        return render(request, "portal/unsubscribe.html", {"invalid": True}, status=404)
    contact = Contact.objects.filter(pk=payload.get("c")).first()
    if contact is None:
        return render(request, "portal/unsubscribe.html", {"invalid": True}, status=404)
    if request.method == "POST":
        contact_opt_out(contact=contact)
        return render(request, "portal/unsubscribe.html", {"contact": contact, "done": True})
    return render(request, "portal/unsubscribe.html", {"contact": contact})
