"""The board in Chromium: a card dragged to another column with the mouse, and moved with the
keyboard from its menu, both through the move's preview; the board passes axe-core."""

from __future__ import annotations

import pytest

from crm.models import Job, Message
from tests.browser.conftest import assert_accessible, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def confirm_move(page, job: Job, stage_name: str) -> None:
    page.get_by_role("heading", name=f"Move {job.reference} to “{stage_name}”").wait_for()
    assert page.get_by_text("What 1 contact will receive:").is_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Move the job").click()
    page.get_by_text(f"{job.reference} is now at “{stage_name}”.").wait_for()


def test_a_card_dragged_to_another_column_moves_after_its_preview(page, live_server, bob, job) -> None:
    page.set_viewport_size({"width": 1366, "height": 900})
    sign_in(page, f"{live_server.url}/jobs/board/")
    assert_accessible(page)
    card = page.locator(".board-card", has_text=job.reference)
    target = page.locator(".board-cards").nth(1)
    # Picked up by its text (a link, the menu and its button keep their clicks).
    box, to = card.get_by_text("Dupont household").bounding_box(), target.bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.down()
    page.mouse.move(box["x"] + 25, box["y"] + 25, steps=5)
    page.mouse.move(to["x"] + to["width"] / 2, to["y"] + to["height"] / 2, steps=20)
    page.mouse.up()
    confirm_move(page, job, "Proposal sent")
    job.refresh_from_db()
    assert job.current_stage.name == "Proposal sent"
    assert Message.objects.filter(job=job).count() == 1
    # Back on the board, the card is in its new column.
    assert page.locator(".board-cards").nth(1).locator(".board-card", has_text=job.reference).count() == 1


def test_a_card_moves_from_the_keyboard_too(page, live_server, bob, job) -> None:
    sign_in(page, f"{live_server.url}/jobs/board/")
    menu = page.get_by_label(f"Move {job.reference} to")
    menu.focus()
    menu.select_option(label="Order confirmed")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent").startswith("Move")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=f"Move {job.reference} to “Order confirmed”").wait_for()
    page.get_by_role("button", name="Move the job").focus()
    page.keyboard.press("Enter")
    page.get_by_text(f"{job.reference} is now at “Order confirmed”.").wait_for()
    job.refresh_from_db()
    assert job.current_stage.name == "Order confirmed"
