"""The site's icons: every page (staff, portal, admin, error pages by the browser's own request)
names one, and /favicon.ico — which browsers and crawlers ask for whatever a page says — is an
icon, not a 404."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def icon_links(html: str) -> list[str]:
    return re.findall(r'<link rel="(?:icon|apple-touch-icon)" href="([^"]+)"', html)


def test_favicon_ico_is_an_icon_at_the_root(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file's header


@pytest.mark.parametrize(
    "url",
    [reverse("login"), reverse("portal:signed_out"), reverse("admin:login")],
    ids=["staff sign-in", "portal", "admin"],
)
def test_every_kind_of_page_names_icons_that_exist(client: Client, url: str) -> None:
    html = client.get(url).content.decode()
    links = icon_links(html)
    assert any(link.endswith(".svg") for link in links) and any("apple-touch-icon" in link for link in links)
    for link in links:
        response = client.get(link)
        assert response.status_code == 200, link
        assert response["Content-Type"].startswith("image/"), link
