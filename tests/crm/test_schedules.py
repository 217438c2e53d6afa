"""manage.py setup_schedules: the django-q2 Schedule rows match crm.schedules, however often it runs
(it runs at every deploy)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils.module_loading import import_string
from django_q.models import Schedule

from crm.schedules import PERIODIC

pytestmark = pytest.mark.django_db


def setup_schedules() -> str:
    out = StringIO()
    call_command("setup_schedules", stdout=out)
    return out.getvalue()


def test_it_creates_the_outbox_sweep_once_however_often_it_runs() -> None:
    first = setup_schedules()
    second = setup_schedules()

    sweep = Schedule.objects.get(name="outbox-sweep")
    assert Schedule.objects.filter(func="crm.tasks.sweep_outbox").count() == 1
    assert sorted(Schedule.objects.values_list("name", flat=True)) == sorted(p.name for p in PERIODIC)
    assert {"outbox-sweep", "promise-scan", "survey-invitations", "check-ins"} <= {p.name for p in PERIODIC}
    assert (sweep.func, sweep.schedule_type, sweep.minutes, sweep.repeats) == (
        "crm.tasks.sweep_outbox",
        Schedule.MINUTES,
        1,
        -1,
    )
    assert "created outbox-sweep" in first
    assert "kept outbox-sweep" in second


def test_it_puts_back_a_schedule_someone_changed_by_hand() -> None:
    setup_schedules()
    Schedule.objects.filter(name="outbox-sweep").update(func="crm.tasks.nothing", minutes=60, repeats=0)

    setup_schedules()

    sweep = Schedule.objects.get(name="outbox-sweep")
    assert (sweep.func, sweep.minutes, sweep.repeats) == ("crm.tasks.sweep_outbox", 1, -1)
    assert Schedule.objects.count() == len(PERIODIC)


def test_it_schedules_a_task_that_exists_and_runs() -> None:
    setup_schedules()
    func = import_string(Schedule.objects.get(name="outbox-sweep").func)

    assert func() == {"requeued": 0, "enqueued": 0, "failed": 0}


def test_it_schedules_the_promise_scan_every_five_minutes() -> None:
    setup_schedules()
    scan = Schedule.objects.get(name="promise-scan")
    assert (scan.func, scan.minutes) == ("crm.tasks.scan_commitments", 5)
    assert import_string(scan.func)() == {"nudged": 0, "digests": 0, "broken": 0, "silent": 0}
