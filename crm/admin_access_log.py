"""The access log in the admin: read-only, newest first, per customer (the customer filter, or the
link "Who looked" on a customer's admin page). Who may read it is the role's view permission on
AccessRecord (crm.roles: managers)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crm.models import AccessRecord, Customer


@admin.register(AccessRecord)
class AccessRecordAdmin(admin.ModelAdmin):
    list_display = ["at", "username", "kind", "customer", "subject", "path"]
    list_filter = ["kind", ("customer", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["username", "subject", "customer__name"]
    date_hierarchy = "at"
    list_select_related = ["customer"]
    fields = ("at", "user", "username", "kind", "customer", "subject", "path")
    readonly_fields = fields
    # A long log: the count of a filtered list is not worth a full scan.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Pruned by its schedule only: a record nobody can erase.
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessRecord]:
        return super().get_queryset(request).select_related("customer")


def access_log_link(customer: Customer) -> str:
    """ "Who looked at this customer's data": the log filtered to them."""
    url = reverse("admin:crm_accessrecord_changelist") + f"?customer__id__exact={customer.pk}"
    return format_html('<a href="{}">{}</a>', url, _("Who looked at this customer's data"))
