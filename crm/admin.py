"""The crm admin.

Customers, contacts, pipelines and stages are reference data and are saved as they are. Jobs and
milestones change only through crm.services.jobs, so the event log stays whole: the forms here
validate, the services write. Events are read-only, jobs are cancelled rather than deleted. Files
are read-only too: they come and go through crm.services.files and the retention schedule.

Who may do what is crm.roles (the permissions of the groups "Staff" and "Managers"); what a
permission cannot say is here, as the staff pages say it: a job's owner and who answers for each
stage are a manager's to change (crm.views.jobs: job_reassign, job_roles), a staff profile its own
person's or a manager's, the configuration (pipelines, their roles, stages and visit kinds,
subcontractors) a manager's. Superusers keep everything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import widgets
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import (
    Count,
    Model,
    OuterRef,
    PositiveBigIntegerField,
    Prefetch,
    QuerySet,
    Subquery,
    Sum,
    URLField,
)
from django.db.models.functions import Coalesce
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm import phones
from crm.access import is_manager
from crm.admin_forms import (
    ContactForm,
    ContactFormSet,
    JobActionForm,
    JobAddForm,
    JobChangeForm,
    JobRoleForm,
    MilestoneMoveForm,
    PipelineRoleForm,
    PipelineStageForm,
    StaffProfileForm,
    StageTemplateForm,
    StageTemplateFormSet,
    VisitKindFormSet,
)
from crm.errors import DomainError
from crm.ids import id_from_input
from crm.models import (
    AccessRecord,
    ApiKey,
    Campaign,
    CheckIn,
    Commitment,
    Contact,
    ContactLinkUse,
    Customer,
    ImportRun,
    Job,
    JobEvent,
    JobFile,
    JobReferenceCounter,
    JobRole,
    Message,
    Milestone,
    Pipeline,
    PipelineRole,
    Question,
    Renegotiation,
    SmsOptOut,
    StaffProfile,
    StageTemplate,
    Subcontractor,
    Survey,
    Visit,
    VisitKind,
    WebhookDelivery,
    WebhookEndpoint,
)
from crm.selectors import running_late
from crm.services.customers import (
    contact_create,
    contact_deletion_refusals,
    contact_update,
    contacts_delete,
    customer_create,
    customer_update,
)
from crm.services.jobs import (
    job_advance,
    job_cancel,
    job_complete,
    job_create,
    job_hold,
    job_reassign,
    job_resume,
    job_roles_set,
    job_update_details,
    milestone_move,
)
from crm.services.versions import pipeline_jobs_touch
from crm.text import clean_text
from crm.workdays import business_today


def _actor(request: HttpRequest) -> User:
    # Only signed-in staff reach an admin view.
    return cast(User, request.user)


class ReadOnlyMixin:
    """Shown, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ManagersOnly(admin.options.BaseModelAdmin):
    """Configuration (crm.roles.CONFIGURATION_MODELS): seen by whoever may see it, added, changed
    and deleted by managers only, whatever permissions anyone else was given."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return is_manager(request.user) and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_manager(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_manager(request.user) and super().has_delete_permission(request, obj)


def _cleaned_query(query: QueryDict) -> QueryDict:
    cleaned = QueryDict(mutable=True)
    for key, values in query.lists():
        cleaned.setlist(key, [clean_text(value) for value in values])
    cleaned._mutable = False
    return cleaned


def _ids_only(value: Any, db_field: Any) -> list[Any]:
    model = db_field.remote_field.model
    return [item for item in value if id_from_input(item, model) is not None]


class AutocompleteSelect(widgets.AutocompleteSelect):
    """Django's, which queries the sent id to show it again on a refused form: one that is no id
    ("1x", a NUL) made that query raise, a 500 instead of the form's "Select a valid choice"."""

    def optgroups(self, name: str, value: Any, attr: Any = None) -> Any:
        return super().optgroups(name, _ids_only(value, self.field), attr)


class AutocompleteSelectMultiple(widgets.AutocompleteSelectMultiple):
    """Django's, for several ids (see AutocompleteSelect)."""

    def optgroups(self, name: str, value: Any, attr: Any = None) -> Any:
        return super().optgroups(name, _ids_only(value, self.field), attr)


class OddInputAdmin(admin.ModelAdmin):
    """A model admin that odd input cannot break.

    The search box, the list filters and the autocomplete search without NUL: PostgreSQL refuses
    it in text, so a filter value or a term containing one was a 500 (the filters reach the query
    unchecked). It is dropped as if it had not been typed, as on the staff pages' searches. The
    autocomplete fields show a refused form again whatever ids it was sent."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        request.GET = cast(Any, _cleaned_query(request.GET))
        if request.method == "POST" and self._action_refused(request):
            # The page offers only the actions this person may take; another one posted anyway was
            # ignored (the list shown again, nothing said): refused instead.
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def _action_refused(self, request: HttpRequest) -> bool:
        name = request.POST.get("action")
        known = {action_name for _, action_name, _ in self._get_base_actions()}  # type: ignore[attr-defined]
        return name in known and name not in self.get_actions(request)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> tuple[Any, bool]:
        # The autocomplete of a foreign key field passes its term here, past changelist_view.
        return super().get_search_results(request, queryset, clean_text(search_term))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = AutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = AutocompleteSelectMultiple(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ServiceAdmin(OddInputAdmin):
    """A model admin whose saves call services.

    The form catches what a person can fix; a service may still say no when saving (a colleague
    acted in between). Then the whole save is rolled back and the page shown again, as it now is,
    with the reason.
    """

    # Form fields that only feed a service (a reason, a target stage): nothing to show on a
    # view-only page.
    service_fields: tuple[str, ...] = ()

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            # A POST runs in a transaction (ModelAdmin.changeform_view) that this exception undoes.
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in self.service_fields]})
            for name, options in fieldsets
        ]

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool) -> None:
        # Not form.save_m2m(): the service in save_model wrote the relations. The inlines here are
        # read-only, so saving their formsets writes nothing.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


# --- Reference data ---------------------------------------------------------------------------


CONSENT_FIELDS = ("sms_consent_at", "sms_consent_source", "opted_out_at")


def save_contact(form: ModelForm, *, customer: Customer | None = None) -> Contact:
    """A contact form of the admin, saved through the services (consent kept as it is on record).
    A rule the form could not check comes back as a DomainError, shown on the page."""
    data = form.cleaned_data
    details = {k: data[k] for k in ("name", "email", "phone", "language", "preferred_channel", "time_zone")}
    contact: Contact = form.instance
    try:
        if contact.pk is None:
            return contact_create(customer=customer or data["customer"], **details)
        return contact_update(
            contact=contact,
            sms_consent=contact.sms_consent_at is not None,
            sms_consent_source=contact.sms_consent_source,
            **details,
        )
    except ValidationError as error:
        raise DomainError(" ".join(error.messages)) from error


class ContactInline(admin.StackedInline):
    model = Contact
    form = ContactForm
    formset = ContactFormSet
    fields = [
        ("name", "language", "time_zone"),
        ("email", "phone", "preferred_channel"),
        ("sms_consent_at", "sms_consent_source"),
        "opted_out_at",
    ]
    readonly_fields = CONSENT_FIELDS

    def get_extra(self, request: HttpRequest, obj: Customer | None = None, **kwargs: Any) -> int:
        return 1 if obj is None else 0


def stored_bytes_of_customer() -> Coalesce:
    """What the files of a customer's jobs take in storage now (removed ones no longer count, as
    in crm.services.files.job_bytes_stored): a subquery, so it neither multiplies with the other
    annotations' joins nor costs a query per row."""
    stored = (
        JobFile.objects.filter(job__customer=OuterRef("pk"), removed_at__isnull=True)
        .order_by()
        .values("job__customer")
        .annotate(total=Sum("size"))
        .values("total")
    )
    return Coalesce(Subquery(stored, output_field=PositiveBigIntegerField()), 0)


@admin.register(Customer)
class CustomerAdmin(ServiceAdmin):
    ordering = ["name"]
    list_display = ["name", "kind", "contact_count", "storage_used", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "contacts__name", "contacts__email"]
    inlines = [ContactInline]
    readonly_fields = ["access_log"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        return (
            super()
            .get_queryset(request)
            .annotate(contact_count=Count("contacts", distinct=True), stored_bytes=stored_bytes_of_customer())
        )

    def save_model(self, request: HttpRequest, obj: Customer, form: ModelForm, change: bool) -> None:
        data = form.cleaned_data
        fields = {k: data[k] for k in ("name", "kind", "address", "notes") if k in data}
        try:
            saved = customer_update(customer=obj, **fields) if change else customer_create(**fields)
        except ValidationError as error:
            raise DomainError(" ".join(error.messages)) from error
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool) -> None:
        # The contacts, each through the services; a removed one is deleted as the admin would.
        for formset in formsets:
            # What formset.save() would record, for the admin's history message.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            for contact_form in formset.forms:
                if contact_form in formset.deleted_forms:
                    if contact_form.instance.pk is not None:
                        formset.deleted_objects.append(contact_form.instance)
                elif contact_form.has_changed():
                    is_new = contact_form.instance.pk is None
                    contact = save_contact(contact_form, customer=form.instance)
                    if is_new:
                        formset.new_objects.append(contact)
                    else:
                        formset.changed_objects.append((contact, contact_form.changed_data))
            if formset.deleted_objects:
                contacts_delete(contacts=formset.deleted_objects, actor=_actor(request))

    @admin.display(description=_("contacts"), ordering="contact_count")
    def contact_count(self, obj: Customer) -> int:
        return obj.contact_count  # type: ignore[attr-defined]

    @admin.display(description=_("Storage used"), ordering="stored_bytes")
    def storage_used(self, obj: Customer) -> str:
        return filesizeformat(obj.stored_bytes)  # type: ignore[attr-defined]

    @admin.display(description=_("access log"))
    def access_log(self, obj: Customer) -> str:
        """Who looked at this customer's data: the access log, filtered to them."""
        if obj.pk is None:
            return "—"
        url = reverse("admin:crm_accessrecord_changelist") + f"?customer__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Who looked at this customer's data"))


class PhoneNumberFilter(admin.SimpleListFilter):
    """Contacts by what their number is: not understood (kept as typed before numbers were stored
    in E.164, or not a valid number: the ``phones_unparsed`` command lists them too), a mobile
    (texts reach it), or a landline (understood, but no texts: fixed lines, and the few other
    kinds). libphonenumber decides, in Python: the numbers are read in one query, their ids
    filtered on."""

    title = _("Phone number")
    parameter_name = "phone_number"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("unparsed", _("not understood")), ("mobile", _("mobile")), ("landline", _("landline"))]

    @staticmethod
    def kind(number: str) -> str:
        if not phones.is_e164(number):
            return "unparsed"
        return "mobile" if phones.can_text(number) else "landline"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> QuerySet[Contact]:
        wanted = self.value()
        if wanted not in ("unparsed", "mobile", "landline"):
            return queryset
        numbers = queryset.exclude(phone="").order_by().values_list("pk", "phone")
        return queryset.filter(pk__in=[pk for pk, number in numbers.iterator() if self.kind(number) == wanted])


@admin.register(Contact)
class ContactAdmin(ServiceAdmin):
    form = ContactForm
    readonly_fields = CONSENT_FIELDS
    list_display = [
        "name",
        "customer",
        "email",
        "phone_number",
        "language",
        "preferred_channel",
        "sms_consent",
        "opted_out",
    ]
    list_filter = [
        "language",
        "preferred_channel",
        ("sms_consent_at", admin.EmptyFieldListFilter),
        PhoneNumberFilter,
    ]
    list_select_related = ["customer"]
    search_fields = ["name", "email", "phone", "customer__name"]
    autocomplete_fields = ["customer"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Contact]:
        # The autocomplete of job contacts lists str(contact), which names the customer.
        return super().get_queryset(request).select_related("customer")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> tuple[Any, bool]:
        # A number however it is typed ("06 12 34 56 78" finds the stored "+33612345678"), as the
        # staff search reads one (crm.search): by its digits.
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        key = phones.search_key(clean_text(search_term))
        if key:
            results = results | queryset.filter(phone_digits__contains=key)
        return results, may_have_duplicates

    delete_confirmation_template = "admin/crm/contact/delete_confirmation.html"
    delete_selected_confirmation_template = "admin/crm/contact/delete_selected_confirmation.html"

    def save_model(self, request: HttpRequest, obj: Contact, form: ModelForm, change: bool) -> None:
        saved = save_contact(form)
        obj.pk = saved.pk
        obj.refresh_from_db()

    # Deleting, one or several: through the service (each job records it), refused while they are
    # an open job's only contacts: the confirmation page lists those jobs instead of a button.

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed, [*protected, *contact_deletion_refusals(objs)]

    def delete_model(self, request: HttpRequest, obj: Contact) -> None:
        contacts_delete(contacts=[obj], actor=_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        contacts_delete(contacts=list(queryset), actor=_actor(request))

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> Any:
        try:
            # A POST runs in a transaction (ModelAdmin.delete_view) that this exception undoes.
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # The "delete selected" action: its admin log and the deletion in one transaction, undone
        # when a colleague made one of them an open job's only contact after the confirmation page.
        try:
            with transaction.atomic():
                return super().changelist_view(request, extra_context)
        except DomainError as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    @admin.display(description=_("phone"), ordering="phone")
    def phone_number(self, obj: Contact) -> str:
        return phones.display(obj.phone)

    @admin.display(description=_("SMS consent"), boolean=True, ordering="sms_consent_at")
    def sms_consent(self, obj: Contact) -> bool:
        return obj.has_sms_consent

    @admin.display(description=_("opted out"), boolean=True, ordering="opted_out_at")
    def opted_out(self, obj: Contact) -> bool:
        return obj.opted_out_at is not None


class PipelineRoleInline(ManagersOnly, admin.TabularInline):
    """Who answers for the customer during some stages ("Sales", "Installation coordinator")."""

    model = PipelineRole
    form = PipelineRoleForm
    fields = ["name", "default_holder"]

    def get_extra(self, request: HttpRequest, obj: Pipeline | None = None, **kwargs: Any) -> int:
        return 1 if obj is None else 0


class StageTemplateInline(ManagersOnly, admin.TabularInline):
    model = StageTemplate
    form = PipelineStageForm
    formset = StageTemplateFormSet
    ordering = ["position"]
    fields = [
        "position",
        "name",
        "customer_visible",
        "default_duration_days",
        "role",
        "message_key",
        "customer_instructions",
        "asks_for_files",
    ]

    def get_extra(self, request: HttpRequest, obj: Pipeline | None = None, **kwargs: Any) -> int:
        return 3 if obj is None else 0


class VisitKindInline(ManagersOnly, admin.TabularInline):
    """The visits this pipeline books, each with the window the customer is given by default."""

    model = VisitKind
    formset = VisitKindFormSet
    fields = ["name", "name_fr", "window_minutes", "duration_minutes", "stage", "completes_stage"]

    def get_extra(self, request: HttpRequest, obj: Pipeline | None = None, **kwargs: Any) -> int:
        return 1 if obj is None else 0


@admin.register(Pipeline)
class PipelineAdmin(ManagersOnly, OddInputAdmin):
    list_display = ["name", "is_active", "stage_count", "silence_days"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    # The roles first: a stage names one of them (a role added here is offered once it is saved).
    inlines = [PipelineRoleInline, StageTemplateInline, VisitKindInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Pipeline]:
        return super().get_queryset(request).annotate(stage_count=Count("stages"))

    @admin.display(description=_("stages"), ordering="stage_count")
    def stage_count(self, obj: Pipeline) -> int:
        return obj.stage_count  # type: ignore[attr-defined]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # The customers' pages show the stages as they are now.
        pipeline_jobs_touch(form.instance.pk)


@admin.register(StaffProfile)
class StaffProfileAdmin(OddInputAdmin):
    """What customers see of a staff member (the phone on the owner card and in every message):
    changed by that person or a manager; anyone else's is shown read-only."""

    form = StaffProfileForm
    list_display = ["user", "job_title", "phone_number", "language", "goes_on_visits"]
    list_filter = ["language", "goes_on_visits"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "job_title"]
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: StaffProfile | None = None) -> Any:
        # Bumped only by "Make a new link" (crm.services.staff): a lower number typed here would
        # bring back the links it stopped. A saved profile stays its person's.
        return ["calendar_version"] if obj is None else ["user", "calendar_version"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A profile for anyone: a manager's, as changing anyone's is.
        return is_manager(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: StaffProfile | None = None) -> bool:
        mine = obj is None or obj.user_id == request.user.pk
        return (mine or is_manager(request.user)) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: StaffProfile | None = None) -> bool:
        return is_manager(request.user) and super().has_delete_permission(request, obj)

    @admin.display(description=_("direct phone"), ordering="phone")
    def phone_number(self, obj: StaffProfile) -> str:
        return phones.display(obj.phone)


@admin.register(PipelineRole)
class PipelineRoleAdmin(ManagersOnly, OddInputAdmin):
    form = PipelineRoleForm
    list_display = ["name", "pipeline", "default_holder"]
    list_filter = ["pipeline"]
    list_select_related = ["pipeline", "default_holder"]
    search_fields = ["name", "pipeline__name"]

    def get_readonly_fields(self, request: HttpRequest, obj: PipelineRole | None = None) -> Any:
        # Its stages and the jobs holding it are the pipeline's: the role stays with it.
        return ["pipeline"] if obj is not None else []


@admin.register(StageTemplate)
class StageTemplateAdmin(ManagersOnly, OddInputAdmin):
    form = StageTemplateForm
    list_display = ["name", "pipeline", "position", "customer_visible", "default_duration_days", "role", "message_key"]
    list_filter = ["pipeline", "customer_visible"]
    list_select_related = ["pipeline", "role"]
    search_fields = ["name", "pipeline__name", "message_key"]
    ordering = ["pipeline__name", "position"]

    def save_model(self, request: HttpRequest, obj: StageTemplate, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        pipeline_jobs_touch(obj.pipeline_id)

    def delete_model(self, request: HttpRequest, obj: StageTemplate) -> None:
        super().delete_model(request, obj)
        pipeline_jobs_touch(obj.pipeline_id)


@admin.register(JobReferenceCounter)
class JobReferenceCounterAdmin(ReadOnlyMixin, OddInputAdmin):
    list_display = ["year", "last_number"]


# --- Jobs -------------------------------------------------------------------------------------


class LateFilter(admin.SimpleListFilter):
    title = _("late")
    parameter_name = "late"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Late")), ("no", _("On time"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        if self.value() in ("yes", "no"):
            # running_late is annotated by JobAdmin.get_queryset.
            return queryset.filter(running_late=self.value() == "yes")  # type: ignore[misc]
        return queryset


class MilestoneInline(ReadOnlyMixin, admin.TabularInline):
    model = Milestone
    readonly_fields = ("stage_name", "planned_date", "forecast_date", "completed_at", "late", "move_date")
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Milestone]:
        return super().get_queryset(request).select_related("job", "stage").order_by("stage__position")

    @admin.display(description=_("stage"))
    def stage_name(self, obj: Milestone) -> str:
        return obj.stage.name

    @admin.display(description=_("late"), boolean=True)
    def late(self, obj: Milestone) -> bool:
        return obj.is_late

    @admin.display(description="")
    def move_date(self, obj: Milestone) -> str:
        if obj.is_done or not obj.job.is_open:
            return ""
        url = reverse("admin:crm_milestone_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Move the date"))


class JobRoleInline(admin.TabularInline):
    """Who holds each of the pipeline's roles on the job. A new holder is saved through
    job_roles_set (JobAdmin.save_related): the holder of the current stage's role becomes the
    customer's contact, both sides told. Changed with the job, so the job's permissions apply."""

    model = JobRole
    form = JobRoleForm
    fields = ("role", "stages", "holder")
    readonly_fields = ("role", "stages")
    extra = 0
    can_delete = False
    verbose_name = _("role")
    verbose_name_plural = _("Who answers for the customer")

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobRole]:
        stages = Prefetch("role__stages", queryset=StageTemplate.objects.order_by("position"))
        return super().get_queryset(request).select_related("role", "holder").prefetch_related(stages)

    def has_add_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False  # A job has its pipeline's roles from its creation.

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        # A closed job keeps who held what; who answers is a manager's to say (as on the job page).
        return (obj is None or obj.is_open) and request.user.has_perm("crm.change_job") and is_manager(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return request.user.has_perm("crm.view_job") or request.user.has_perm("crm.change_job")

    @admin.display(description=_("stages"))
    def stages(self, obj: JobRole) -> str:
        return ", ".join(stage.name for stage in obj.role.stages.all())


class JobFileInline(ReadOnlyMixin, admin.TabularInline):
    """The job's files, newest first (one query; each opens on its own page)."""

    model = JobFile
    # Few columns: the inline fits a phone (its change page has the rest).
    readonly_fields = ("title", "direction", "size_display", "created_at", "state")
    fields = readonly_fields
    show_change_link = True

    @admin.display(description=_("size"))
    def size_display(self, obj: JobFile) -> str:
        return filesizeformat(obj.size)

    @admin.display(description=_("state"))
    def state(self, obj: JobFile) -> str:
        if obj.removed_at:
            return _("removed on %(date)s") % {
                "date": date_format(timezone.localtime(obj.removed_at), "SHORT_DATE_FORMAT")
            }
        if obj.withdrawn_at:
            return _("withdrawn on %(date)s") % {
                "date": date_format(timezone.localtime(obj.withdrawn_at), "SHORT_DATE_FORMAT")
            }
        return ""


class JobEventInline(ReadOnlyMixin, admin.TabularInline):
    model = JobEvent
    readonly_fields = ("created_at", "kind", "actor", "summary")
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobEvent]:
        return super().get_queryset(request).select_related("actor")


@admin.register(Job)
class JobAdmin(ServiceAdmin):
    form = JobChangeForm
    action_form = JobActionForm
    actions = ["advance_to_next_stage", "hold", "resume", "cancel", "complete"]
    list_display = ["reference", "title", "customer", "pipeline", "stage", "owner", "status", "late"]
    list_filter = ["status", LateFilter, "pipeline", ("owner", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["customer", "pipeline", "current_stage", "owner"]
    search_fields = ["reference", "title", "customer__name", "contacts__name", "contacts__email"]
    autocomplete_fields = ["customer", "contacts", "installers"]
    inlines = [JobRoleInline, MilestoneInline, JobFileInline, JobEventInline]
    add_fieldsets = [
        (
            None,
            {
                "fields": [
                    "customer",
                    "pipeline",
                    "owner",
                    "title",
                    "contacts",
                    "start_date",
                    "notify_customer",
                    "not_told_reason",
                ]
            },
        )
    ]
    fieldsets = [
        (None, {"fields": ["reference", "title", "customer", "pipeline", "status", "late", "owner"]}),
        (_("People"), {"fields": ["contacts", "installers"]}),
        (
            _("Stage"),
            {"fields": ["current_stage", "advance_to", "backwards_reason", "notify_customer", "expected_stage"]},
        ),
        (_("History"), {"fields": ["created_at", "updated_at", "closed_at"], "classes": ["collapse"]}),
    ]
    change_readonly_fields = [
        "reference",
        "customer",
        "pipeline",
        "status",
        "late",
        "current_stage",
        "created_at",
        "updated_at",
        "closed_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        return super().get_queryset(request).annotate(running_late=running_late(business_today()))

    service_fields = ("advance_to", "backwards_reason", "notify_customer", "expected_stage")

    def get_fieldsets(self, request: HttpRequest, obj: Job | None = None) -> Any:
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> Any:
        if obj is None:
            return []
        # Handing a job to someone else is a manager's, as on the job page (crm.views.jobs).
        return self.change_readonly_fields if is_manager(request.user) else [*self.change_readonly_fields, "owner"]

    def get_form(self, request: HttpRequest, obj: Job | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = JobAddForm
        form: Any = super().get_form(request, obj, change, **kwargs)
        if obj is not None:
            form.actor = _actor(request)  # a class made for this request
        return form

    def get_inlines(self, request: HttpRequest, obj: Job | None) -> Any:
        return self.inlines if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False  # Cancel it instead: reports count cancelled jobs.

    @admin.display(description=_("stage"), ordering="current_stage__position")
    def stage(self, obj: Job) -> str:
        return obj.current_stage.name

    @admin.display(description=_("late"), boolean=True, ordering="running_late")
    def late(self, obj: Job) -> bool:
        return obj.running_late  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Job, form: ModelForm, change: bool) -> None:
        data = form.cleaned_data
        actor = _actor(request)
        if not change:
            job = job_create(
                customer=data["customer"],
                pipeline=data["pipeline"],
                owner=data["owner"],
                title=data["title"],
                contacts=data["contacts"] or None,
                start_date=data["start_date"],
                actor=actor,
                notify_customer=data["notify_customer"],
                not_told_reason=data["not_told_reason"],
            )
            # The admin goes on with ``obj`` (history entry, redirect): make it the new job.
            obj.pk = job.pk
            obj.refresh_from_db()
            return
        # ``obj`` carries the form's values but is never saved itself; each service re-reads the job.
        if {"title", "contacts", "installers"} & set(form.changed_data):
            job_update_details(
                job=obj, title=data["title"], contacts=data["contacts"], installers=data["installers"], actor=actor
            )
        if "owner" in form.changed_data:
            job_reassign(job=obj, owner=data["owner"], actor=actor)
        if data["advance_to"] is not None:
            job_advance(
                job=obj,
                to_stage=data["advance_to"],
                expected_stage=data["expected_stage"],
                backwards_reason=data["backwards_reason"],
                notify_customer=data["notify_customer"],
                actor=actor,
            )
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool) -> None:
        for formset in formsets:
            if formset.model is JobRole:
                self._save_role_holders(request, form.instance, formset)
            else:
                self.save_formset(request, form, formset, change=change)

    def _save_role_holders(self, request: HttpRequest, job: Job, formset: Any) -> None:
        """The holders changed on the page, all at once through job_roles_set (never saved here)."""
        changed = [role_form for role_form in formset.forms if role_form.has_changed()]
        # What formset.save() would record, for the admin's history message.
        formset.new_objects, formset.deleted_objects = [], []
        formset.changed_objects = [(role_form.instance, role_form.changed_data) for role_form in changed]
        if changed:
            holders = {role_form.instance.role: role_form.cleaned_data["holder"] for role_form in changed}
            job_roles_set(job=job, holders=holders, actor=_actor(request))

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        # Django answers any error of the action bar with "No action selected."; a reason it cannot
        # take (too long, a NUL) is told as such.
        refused = self.action_form(request.POST, auto_id=False).errors.get("reason")
        if refused:
            self.message_user(request, " ".join(str(error) for error in refused), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    # Actions: each job on its own, so one refusal does not stop the others.

    def _act_on_each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Job],
        act: Callable[[Job, User, str], object],
        *,
        done: Callable[[int], str],
        reason_required: bool = False,
    ) -> None:
        reason = request.POST.get("reason", "").strip()
        if reason_required and not reason:
            self.message_user(request, gettext("Give the reason in the field next to the action."), messages.ERROR)
            return
        count = 0
        for job in queryset.select_related("current_stage"):
            try:
                act(job, _actor(request), reason)
            except DomainError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, done(count), messages.SUCCESS)

    @admin.action(description=_("Advance to the next stage"), permissions=["change"])
    def advance_to_next_stage(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        def advance(job: Job, actor: User, reason: str) -> None:
            next_stage = (
                StageTemplate.objects.filter(pipeline=job.pipeline_id, position__gt=job.current_stage.position)
                .order_by("position")
                .first()
            )
            if next_stage is None:
                raise DomainError(
                    gettext("Job %(ref)s is at its last stage already.") % {"ref": job.reference},
                )
            job_advance(job=job, to_stage=next_stage, expected_stage=job.current_stage, actor=actor)

        self._act_on_each(
            request,
            queryset,
            advance,
            done=lambda n: (
                ngettext("%(count)d job moved to its next stage.", "%(count)d jobs moved to their next stage.", n)
                % {"count": n}
            ),
        )

    @admin.action(description=_("Put on hold (reason needed)"), permissions=["change"])
    def hold(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._act_on_each(
            request,
            queryset,
            lambda job, actor, reason: job_hold(job=job, reason=reason, actor=actor),
            done=lambda n: ngettext("%(count)d job put on hold.", "%(count)d jobs put on hold.", n) % {"count": n},
            reason_required=True,
        )

    @admin.action(description=_("Resume"), permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._act_on_each(
            request,
            queryset,
            lambda job, actor, reason: job_resume(job=job, reason=reason, actor=actor),
            done=lambda n: ngettext("%(count)d job resumed.", "%(count)d jobs resumed.", n) % {"count": n},
        )

    @admin.action(description=_("Cancel (reason needed)"), permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._act_on_each(
            request,
            queryset,
            lambda job, actor, reason: job_cancel(job=job, reason=reason, actor=actor),
            done=lambda n: ngettext("%(count)d job cancelled.", "%(count)d jobs cancelled.", n) % {"count": n},
            reason_required=True,
        )

    @admin.action(description=_("Complete"), permissions=["change"])
    def complete(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._act_on_each(
            request,
            queryset,
            lambda job, actor, reason: job_complete(job=job, reason=reason, actor=actor),
            done=lambda n: ngettext("%(count)d job completed.", "%(count)d jobs completed.", n) % {"count": n},
        )


@admin.register(Milestone)
class MilestoneAdmin(ServiceAdmin):
    form = MilestoneMoveForm
    list_display = ["job", "stage_name", "planned_date", "forecast_date", "completed_at", "late"]
    list_filter = ["stage__pipeline", "job__status", ("completed_at", admin.EmptyFieldListFilter)]
    list_select_related = ["job", "stage"]
    search_fields = ["job__reference", "job__title", "job__customer__name", "stage__name"]
    fields = ["job", "stage", "planned_date", "completed_at", "forecast_date", "reason", "tell_customer"]
    readonly_fields = ["job", "stage", "planned_date", "completed_at"]
    service_fields = ("reason", "tell_customer")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # Milestones come with their job.

    def has_delete_permission(self, request: HttpRequest, obj: Milestone | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Milestone | None = None) -> bool:
        # A reached milestone, or one of a closed job, keeps its dates.
        movable = obj is None or (not obj.is_done and obj.job.is_open)
        return movable and super().has_change_permission(request, obj)

    @admin.display(description=_("stage"), ordering="stage__position")
    def stage_name(self, obj: Milestone) -> str:
        return obj.stage.name

    @admin.display(description=_("late"), boolean=True)
    def late(self, obj: Milestone) -> bool:
        return obj.is_late

    def save_model(self, request: HttpRequest, obj: Milestone, form: ModelForm, change: bool) -> None:
        data = form.cleaned_data
        milestone_move(
            milestone=obj,
            new_date=data["forecast_date"],
            reason=data["reason"],
            tell_customer=data["tell_customer"],
            actor=_actor(request),
        )
        obj.refresh_from_db()


@admin.register(JobRole)
class JobRoleAdmin(ReadOnlyMixin, OddInputAdmin):
    """Who holds each role on each job: changed on the job's page, through crm.services.jobs."""

    list_display = ["job", "role", "holder"]
    list_filter = ["role__pipeline", ("holder", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["job", "role", "holder"]
    search_fields = ["job__reference", "job__title", "role__name"]


@admin.register(JobEvent)
class JobEventAdmin(ReadOnlyMixin, OddInputAdmin):
    list_display = ["created_at", "job", "kind", "actor", "summary"]
    list_filter = ["kind", "created_at"]
    list_select_related = ["job", "actor"]
    search_fields = ["job__reference", "job__title"]
    date_hierarchy = "created_at"
    readonly_fields = ("job", "kind", "actor", "created_at", "summary", "data")
    fields = readonly_fields


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, OddInputAdmin):
    """The outbox as it is: crm.services.outbox sends, retries and records, never the admin."""

    list_display = ["created_at", "job", "contact", "channel", "direction", "kind", "status", "attempts"]
    list_filter = ["status", "channel", "direction", "kind", "created_at"]
    list_select_related = ["job", "contact__customer"]
    search_fields = ["job__reference", "to_address", "from_address", "subject", "provider_message_id"]
    date_hierarchy = "created_at"


@admin.register(Question)
class RequestAdmin(ReadOnlyMixin, OddInputAdmin):
    """Questions are created and answered through crm.services.questions (portal, inbound, staff)."""

    list_display = ["received_at", "job", "contact", "source", "answer_due_on", "answered_at"]
    list_filter = ["source", ("answered_at", admin.EmptyFieldListFilter), "received_at"]
    list_select_related = ["job", "contact__customer"]
    search_fields = ["job__reference", "contact__name", "body"]
    date_hierarchy = "received_at"


@admin.register(JobFile)
class JobFileAdmin(ReadOnlyMixin, OddInputAdmin):
    """Photos and documents on jobs, for support. Sent, shared and withdrawn through
    crm.services.files, their bytes removed by the retention schedule
    (crm.services.file_retention): never added, changed or deleted here."""

    list_display = [
        "title",
        "job",
        "direction",
        "content_type",
        "size_display",
        "created_at",
        "withdrawn_at",
        "removed_at",
    ]
    list_filter = ["direction", "content_type", ("removed_at", admin.EmptyFieldListFilter)]
    list_select_related = ["job"]
    search_fields = ["title", "job__reference", "job__customer__name"]
    date_hierarchy = "created_at"
    # Not the file fields themselves: their URL is no address (files reach people only through
    # the views that check who asks, crm.downloads); the name they are stored under, and a link
    # to the staff page that opens them.
    readonly_fields = (
        "title",
        "job",
        "direction",
        "original_name",
        "content_type",
        "size_display",
        "width",
        "height",
        "sha256",
        "stored_as",
        "open_link",
        "contact",
        "message",
        "shared_by",
        "commitment",
        "created_at",
        "withdrawn_at",
        "withdrawn_by",
        "withdrawn_reason",
        "removed_at",
    )
    fields = readonly_fields

    @admin.display(description=_("size"), ordering="size")
    def size_display(self, obj: JobFile) -> str:
        return filesizeformat(obj.size)

    @admin.display(description=_("stored as"))
    def stored_as(self, obj: JobFile) -> str:
        return obj.file.name if obj.is_stored else gettext("Removed")

    @admin.display(description="")
    def open_link(self, obj: JobFile) -> str:
        if not obj.is_stored:
            return ""
        url = reverse("crm:job_file", args=[obj.job.public_id, obj.public_id])
        return format_html('<a href="{}">{}</a>', url, gettext("Open the file"))


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyMixin, OddInputAdmin):
    """Imports run from the staff pages (crm.services.csv_import); shown here for support."""

    list_display = ["created_at", "file_name", "status", "total_rows", "processed_rows", "created_by"]
    list_filter = ["status", "created_at"]
    list_select_related = ["created_by"]
    search_fields = ["file_name"]
    # The rows themselves can be large: the summary only.
    fields = [
        "file_name",
        "status",
        "created_by",
        "created_at",
        "total_rows",
        "valid_rows",
        "invalid_rows",
        "processed_rows",
        "customers_created",
        "contacts_created",
        "jobs_created",
        "welcomes_queued",
        "jobs_existing",
        "failure",
        "finished_at",
    ]


class RenegotiationInline(ReadOnlyMixin, admin.TabularInline):
    model = Renegotiation
    extra = 0
    readonly_fields = (
        "created_at",
        "old_due_at",
        "new_due_at",
        "reason",
        "told_customer_at",
        "proactive",
        "actor",
        "holder",
    )
    fields = readonly_fields


@admin.register(Commitment)
class CommitmentAdmin(ReadOnlyMixin, OddInputAdmin):
    """Promises are made, kept, moved and broken by crm.services.promises (never edited here)."""

    list_display = ["title", "job", "kind", "state", "first_due_at", "due_at", "owner", "kept_at", "broken_at"]
    list_filter = ["state", "kind", "due_at"]
    list_select_related = ["job", "owner"]
    search_fields = ["title", "job__reference", "job__customer__name"]
    date_hierarchy = "due_at"
    inlines = [RenegotiationInline]


@admin.register(Renegotiation)
class RenegotiationAdmin(ReadOnlyMixin, OddInputAdmin):
    list_display = ["created_at", "commitment", "old_due_at", "new_due_at", "proactive", "told_customer_at", "actor"]
    list_filter = ["proactive", "created_at"]
    list_select_related = ["commitment__job", "actor"]
    search_fields = ["commitment__title", "commitment__job__reference", "reason"]


# --- After the job: surveys and check-ins ---


@admin.register(Survey)
class SurveyAdmin(ReadOnlyMixin, OddInputAdmin):
    """Invited by the schedule and answered by the customer (crm.services.surveys): never edited
    here, so the reports count what the customer said."""

    list_display = [
        "job",
        "contact",
        "invited_at",
        "answered_at",
        "product_quality",
        "workmanship",
        "installer_conduct",
        "recommend",
        "low",
    ]
    list_filter = [("answered_at", admin.EmptyFieldListFilter), "invited_at"]
    list_select_related = ["job", "contact"]
    search_fields = ["job__reference", "job__customer__name", "contact__name", "comment"]
    date_hierarchy = "invited_at"

    @admin.display(description=_("low score"), boolean=True)
    def low(self, obj: Survey) -> bool:
        return obj.is_answered and obj.is_low


@admin.register(CheckIn)
class CheckInAdmin(ReadOnlyMixin, OddInputAdmin):
    """Sent by the schedule and answered by the customer (crm.services.checkins)."""

    list_display = ["job", "contact", "sent_at", "answer", "answered_at", "question"]
    list_filter = ["answer", "sent_at"]
    list_select_related = ["job", "contact", "question"]
    search_fields = ["job__reference", "job__customer__name", "contact__name"]
    date_hierarchy = "sent_at"


@admin.register(Subcontractor)
class SubcontractorAdmin(ManagersOnly, OddInputAdmin):
    """The firms the business sends on some visits: offered by name when a visit is booked."""

    list_display = ["name", "contact_name", "phone", "email", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "contact_name", "email"]


@admin.register(VisitKind)
class VisitKindAdmin(ManagersOnly, OddInputAdmin):
    """Also edited on the pipeline's page; a kind that visits use cannot be deleted (PROTECT)."""

    list_display = ["name", "pipeline", "window_minutes", "duration_minutes", "stage", "completes_stage"]
    list_filter = ["pipeline"]
    list_select_related = ["pipeline", "stage"]
    search_fields = ["name", "name_fr"]


@admin.register(ContactLinkUse)
class ContactLinkUseAdmin(ReadOnlyMixin, OddInputAdmin):
    """When a contact's links were used or reset (crm.services.contacts writes it); the contact's
    page in the CRM shows their last ones."""

    list_display = ["at", "contact", "kind", "device", "actor"]
    list_filter = ["kind", "device", "at"]
    list_select_related = ["contact__customer", "actor"]
    search_fields = ["contact__name", "contact__email", "contact__customer__name"]
    date_hierarchy = "at"


@admin.register(SmsOptOut)
class SmsOptOutAdmin(ReadOnlyMixin, OddInputAdmin):
    """Numbers that asked for no more texts (crm.services.sms_consent writes them: STOP, or the
    provider's "unsubscribed"); a START texted from the number takes it off. Read-only: whether a
    number may be texted again is the customer's word, not the team's."""

    list_display = ["number", "contact", "source", "said", "at"]
    list_filter = ["source", "at"]
    list_select_related = ["contact__customer"]
    search_fields = ["number", "contact__name", "contact__customer__name"]
    date_hierarchy = "at"


# --- Integrations: read here, made and changed on the managers' staff pages -------------------


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyMixin, OddInputAdmin):
    """API keys (Settings → API keys makes and revokes them: the key is shown once there). Only
    the prefix is ever shown; the key itself is not kept."""

    list_display = ["name", "prefix", "owner", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    list_select_related = ["owner"]
    search_fields = ["name", "prefix"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyMixin, OddInputAdmin):
    """Webhook endpoints (Settings → Webhooks adds, changes and pauses them, and shows the
    secret); their signing secrets are not shown here."""

    list_display = ["url", "description", "is_active", "failing_since", "disabled_at", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, OddInputAdmin):
    """The webhook outbox: one event for one endpoint and how its delivery went (the endpoint's
    page in Settings → Webhooks sends one again)."""

    list_display = ["webhook_id", "event_type", "endpoint", "status", "attempts", "response_code", "created_at"]
    list_filter = ["status", "event_type"]
    list_select_related = ["endpoint"]
    search_fields = ["webhook_id"]
    date_hierarchy = "created_at"


@admin.register(AccessRecord)
class AccessRecordAdmin(ReadOnlyMixin, OddInputAdmin):
    """Who looked at which customer's data (crm.services.access_log writes it): for managers, per
    customer (the filter, or the link on the customer's admin page). Pruned by its schedule only."""

    list_display = ["at", "username", "kind", "customer", "subject", "path"]
    list_filter = ["kind", ("customer", admin.RelatedOnlyFieldListFilter), "at"]
    list_select_related = ["customer"]
    search_fields = ["username", "subject", "customer__name"]
    date_hierarchy = "at"
    # A long log: a filtered list is not counted twice.
    show_full_result_count = False


@admin.register(Visit)
class VisitAdmin(ReadOnlyMixin, OddInputAdmin):
    """Booked, moved and lived through from the job page and the installers' "today" page
    (crm.services.visits); shown here for support."""

    list_display = ["job", "kind", "window_start", "window_end", "status", "confirmed_at", "arrived_at"]
    list_filter = ["status", "kind__pipeline", "window_start"]
    list_select_related = ["job", "kind"]
    search_fields = ["job__reference", "job__customer__name", "address"]
    date_hierarchy = "window_start"


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyMixin, OddInputAdmin):
    """Written and sent from the staff pages (crm.services.campaigns); shown here for support."""

    list_display = ["title", "kind", "status", "starts_on", "ends_on", "total", "queued", "created_by"]
    list_filter = ["status", "kind", "language"]
    list_select_related = ["created_by"]
    search_fields = ["title", "subject_en", "subject_fr"]
    date_hierarchy = "created_at"
    # Django 6 makes https the default scheme of URL fields; say so now (and silence the warning).
    formfield_overrides = {URLField: {"assume_scheme": "https"}}


def _guard_against_odd_input(app_label: str) -> None:
    """Another app's admin pages, registered again with OddInputAdmin around their own class."""
    for model in apps.get_app_config(app_label).get_models():
        if admin.site.is_registered(model):
            registered = type(admin.site.get_model_admin(model))
            admin.site.unregister(model)
            admin.site.register(model, type(registered.__name__, (OddInputAdmin, registered), {}))


# They search and filter on text columns too: users (whose search also serves the installers' and
# the staff profiles' autocomplete), django-q2's schedules and tasks.
_guard_against_odd_input("auth")
_guard_against_odd_input("django_q")


def _extended(model: type[Model], mixin: type[admin.ModelAdmin]) -> None:
    """Put ``mixin`` in front of the admin another app registered for ``model`` (when it is)."""
    registered = admin.site._registry.get(model)
    if registered is not None:
        admin.site.unregister(model)
        admin.site.register(model, type(type(registered).__name__, (mixin, type(registered)), {}))


class _DeviceDeletion(admin.ModelAdmin):
    """A lost phone: a manager removes its person's two-factor devices (crm.roles), so they set it
    up again; a superuser's only another superuser — whoever removes them decides how strong the
    superuser's sign-in is."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.user.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)


# django-axes' own pages (sign-in lockouts, for managers: crm.roles), with the same guard against
# odd input as ours: a NUL in a filter or the search box is dropped, not a database error.
for _model in (AccessAttempt, AccessLog, AccessFailureLog):
    _extended(_model, OddInputAdmin)
for _model in (TOTPDevice, StaticDevice):
    _extended(_model, _DeviceDeletion)
