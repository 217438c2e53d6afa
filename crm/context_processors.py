from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest

from crm.access import is_manager


def company(request: HttpRequest) -> dict[str, str | Callable[[], bool]]:
    # is_manager is asked only by the pages that show it (the staff navigation): a callable, which
    # the template calls when it reads it, so no other page spends its query.
    return {"company_name": settings.COMPANY_NAME, "is_manager": lambda: is_manager(request.user)}
