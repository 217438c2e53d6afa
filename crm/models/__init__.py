"""The domain's data, one module per area; import models from here (``from crm.models import Job``).

Models hold data and its invariants (constraints, ``clean``); every change of state goes through
``crm.services``, which also writes the JobEvent.

- customers: Customer, Contact, StaffProfile
- jobs: Pipeline, PipelineRole, StageTemplate, Job, JobRole, Milestone, JobEvent, JobReferenceCounter
- messages: Message (the outbox and inbox)
- promises: Question, Commitment, Renegotiation
- csv_import: ImportRun
- after: Survey, CheckIn
- campaigns: Campaign
- visits: VisitKind, Subcontractor, Visit
- files: JobFile (photos and documents, both ways)
- access_log: AccessRecord (who looked at which customer's data)
- link_uses: ContactLinkUse (when a contact's links were used: sign-ins, calendar fetches, resets)
- sms: SmsOptOut (numbers that texted STOP)
- integrations: ApiKey, WebhookEndpoint, WebhookDelivery (other systems: the API, webhooks)

Migrations refer to the field defaults and validators by their path here (``crm.models.new_reply_token``).
"""

from crm.models.access_log import AccessRecord
from crm.models.after import CheckIn, Survey
from crm.models.campaigns import Campaign
from crm.models.csv_import import ImportRun
from crm.models.customers import (
    Contact,
    Customer,
    StaffProfile,
    default_contact_time_zone,
    known_time_zones,
    validate_time_zone,
)
from crm.models.files import JobFile
from crm.models.integrations import ApiKey, WebhookDelivery, WebhookEndpoint
from crm.models.jobs import (
    Job,
    JobEvent,
    JobReferenceCounter,
    JobRole,
    Milestone,
    Pipeline,
    PipelineRole,
    StageTemplate,
    new_reply_token,
)
from crm.models.link_uses import ContactLinkUse
from crm.models.messages import Message
from crm.models.promises import Commitment, Question, Renegotiation
from crm.models.sms import SmsOptOut, number_opted_out
from crm.models.visits import Subcontractor, Visit, VisitKind

__all__ = [
    "AccessRecord",
    "ApiKey",
    "Campaign",
    "CheckIn",
    "Commitment",
    "Contact",
    "ContactLinkUse",
    "Customer",
    "ImportRun",
    "Job",
    "JobEvent",
    "JobFile",
    "JobReferenceCounter",
    "JobRole",
    "Message",
    "Milestone",
    "Pipeline",
    "PipelineRole",
    "Question",
    "Renegotiation",
    "SmsOptOut",
    "StaffProfile",
    "StageTemplate",
    "Subcontractor",
    "Survey",
    "Visit",
    "VisitKind",
    "WebhookDelivery",
    "WebhookEndpoint",
    "default_contact_time_zone",
    "known_time_zones",
    "new_reply_token",
    "number_opted_out",
    "validate_time_zone",
]
