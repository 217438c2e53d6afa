"""The product's URLs plus the benchmark's baseline: the least a Django page can do — one query and
a small template — served by the same gunicorn in the same run (bench.portal)."""

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path

from config.urls import urlpatterns as product_urlpatterns
from crm.models import Job

BASELINE_TEMPLATE = engines["django"].from_string(
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head>'
    "<body><main><h1>{{ title }}</h1><p>{{ reference }}</p></main></body></html>"
)


def minimal(request: HttpRequest) -> HttpResponse:
    row = Job.objects.order_by("pk").values_list("title", "reference").first() or ("", "")
    return HttpResponse(BASELINE_TEMPLATE.render({"title": row[0], "reference": row[1]}))


urlpatterns = [path("bench/minimal/", minimal, name="bench_minimal"), *product_urlpatterns]
