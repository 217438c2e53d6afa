"""What a contact receives from a campaign (crm.models.Campaign): the tip, training invitation or
event, in their language, on their channel, with the campaign's durable link and the unsubscribe
link. Nothing here writes.

Campaigns are not about one job, so unlike ``crm.notify.render_draft`` there is no owner card, no
"what happens next" and no job in the link. The same ``campaign_draft`` renders the staff preview
and the message that is sent, so the preview is what the contact gets.

Templates: ``emails/tip-subject.txt``, ``emails/tip-body.txt``, ``emails/tip-body.html`` (extending
``emails/base.html``) and ``sms/tip.txt``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from crm import phones
from crm.links import campaign_url, portal_url, unsubscribe_url
from crm.models import Campaign, Contact, Message
from crm.notify import Draft, one_line, sms_text, tidy_text


def campaign_channel(contact: Contact) -> str | None:
    """Email, or SMS when that is the contact's consented choice or their only address; None when
    neither is possible. Never a phone call: nobody phones a customer to read them a tip."""
    sms_ok = contact.has_sms_consent and phones.can_text(contact.phone)
    if contact.preferred_channel == Contact.Channel.SMS and sms_ok:
        return Message.Channel.SMS
    if contact.email:
        return Message.Channel.EMAIL
    if sms_ok:
        return Message.Channel.SMS
    return None


def link_label(campaign: Campaign, language: str) -> str:
    """The label of the message's button (and of the campaign page's outside link)."""
    label = str(getattr(campaign, f"link_label_{language}", "") or "").strip()
    if label:
        return label
    if campaign.kind == Campaign.Kind.EVENT:
        return _("See the event")
    if campaign.kind == Campaign.Kind.TRAINING:
        return _("See the training")
    return _("Read the tip")


def campaign_context(campaign: Campaign, *, language: str) -> dict[str, Any]:
    """What a campaign says in ``language`` (already the active language): for the messages and
    for its public page."""
    return {
        "company": settings.COMPANY_NAME,
        "campaign": campaign,
        "subject": campaign.subject_in(language),
        "body": campaign.body_in(language),
        "link_label": link_label(campaign, language),
        # Training and events happen on dates; a tip's dates only say how long its page shows it.
        "show_dates": campaign.kind != Campaign.Kind.TIP,
        "one_day": campaign.starts_on == campaign.ends_on,
    }


def campaign_draft(contact: Contact, campaign: Campaign, *, channel: str | None = None) -> Draft:
    """The message ``contact`` receives from ``campaign``, in their language when the campaign is
    written in it (else in the language it is written in: one language per message, never a mix).

    ``channel`` forces a channel for previews; by default it is ``campaign_channel(contact)`` (email
    for a contact who can be reached neither way, so a preview always has something to show).
    """
    channel = channel or campaign_channel(contact) or Message.Channel.EMAIL
    language = campaign.language_for(contact.language)
    with translation.override(language):
        context = {
            **campaign_context(campaign, language=language),
            "contact": contact,
            # emails/base.html shows an owner card only with an owner, "what happens next" only with a step.
            "owner": None,
            "next_step": None,
            "job": None,
            "portal_url": portal_url(contact),
            "campaign_url": campaign_url(campaign, language=language),
            "unsubscribe_url": unsubscribe_url(contact),
        }
        subject = one_line(render_to_string("emails/tip-subject.txt", context))
        html = ""
        if channel == Message.Channel.SMS:
            # The link and the way to stop are never cut; the text is, if it must be.
            links = " ".join([context["campaign_url"], _("Stop: %(url)s") % {"url": context["unsubscribe_url"]}])
            text = sms_text(render_to_string("sms/tip.txt", context), links)
            to_address = contact.phone
        else:
            text = tidy_text(render_to_string("emails/tip-body.txt", context))
            html = render_to_string("emails/tip-body.html", context)
            to_address = contact.email
    return Draft(
        contact=contact,
        kind=Message.Kind.TIP,
        channel=channel,
        to_address=to_address,
        language=language,
        subject=subject,
        body_text=text,
        body_html=html,
        meta={"campaign": campaign.pk},
    )
