"""Every phone number stored in E.164 ("06 12 34 56 78" → "+33612345678"): the contacts' numbers
and the staff's direct phones, read with Google's libphonenumber, a number typed without a
country code as a number of settings.PHONE_DEFAULT_REGION.

A number libphonenumber does not take as a valid number (or that has words or an extension in it,
which E.164 cannot keep) is left exactly as it was typed, never emptied: the ``phones_unparsed``
command and the Contact admin's "Phone number" filter list them, to be corrected by someone who
knows the number. Reversing it changes nothing (the numbers as typed are not kept; E.164 is a
number written one way, which every later version reads as well).

The rule is written out here rather than imported from crm.phones, so that this migration does
what it did when it ran, whatever crm.phones becomes.
"""

import phonenumbers
from django.conf import settings
from django.db import migrations

BATCH = 500


def _e164(typed, region):
    text = typed.strip()
    if not text or any(ch.isalpha() for ch in text):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if number.extension or not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _convert(model, region):
    # Read a batch, then write it: no cursor stays open on the table being written.
    last = 0
    while True:
        rows = list(model.objects.exclude(phone="").filter(pk__gt=last).only("pk", "phone").order_by("pk")[:BATCH])
        if not rows:
            return
        last = rows[-1].pk
        changed = []
        for row in rows:
            number = _e164(row.phone, region)
            if number is not None and number != row.phone:
                row.phone = number
                changed.append(row)
        if changed:
            model.objects.bulk_update(changed, ["phone"])


def to_e164(apps, schema_editor):
    region = settings.PHONE_DEFAULT_REGION
    _convert(apps.get_model("crm", "Contact"), region)
    _convert(apps.get_model("crm", "StaffProfile"), region)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0018_sms_opt_out"),
    ]

    operations = [
        migrations.RunPython(to_e164, migrations.RunPython.noop, elidable=False),
    ]
