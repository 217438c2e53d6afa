"""How a logged call went reads in the language of whoever sees it, not the one the server
started in."""

from __future__ import annotations

from django.utils import translation

from crm.services.messages import CallOutcome


def test_the_outcomes_read_in_the_active_language() -> None:
    with translation.override("fr"):
        french = [str(label) for _, label in CallOutcome.CHOICES]
    with translation.override("en"):
        english = [str(label) for _, label in CallOutcome.CHOICES]
    assert english == ["Spoke with them", "Left a voicemail", "No answer"]
    assert french == ["Conversation avec le contact", "Message laissé sur le répondeur", "Pas de réponse"]
