"""The jobs list's filters at a laptop's width: every select wide enough to show its longest
choice whole (the sort select read "Next dat")."""

from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

CUT_OFF = """() => {
  const canvas = document.createElement("canvas").getContext("2d");
  return [...document.querySelectorAll("form[role=search] select")].flatMap((select) => {
    const style = getComputedStyle(select);
    canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return [...select.options]
      .filter((option) => canvas.measureText(option.text).width > room + 0.5)
      .map((option) => `${select.id}: "${option.text}"`);
  });
}"""


@pytest.mark.parametrize("width", [1280, 1366])
def test_every_filter_shows_its_longest_choice_whole(page, live_server, bob, job, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, f"{live_server.url}/jobs/")
    assert page.evaluate(CUT_OFF) == []
