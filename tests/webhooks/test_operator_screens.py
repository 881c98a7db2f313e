"""Small things an operator's browser sees: the icon, and the sign-in request not as an error."""

from __future__ import annotations

from flask import Flask


def test_the_favicon_is_served_at_the_root(app: Flask) -> None:
    with app.test_client().get("/favicon.ico") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/svg+xml" and b"<svg" in response.data


def test_the_sign_in_request_is_a_notice_not_an_error(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/operator/", follow_redirects=True).get_data(as_text=True)
    assert '<p class="flash info" role="status">Войдите, чтобы продолжить.</p>' in page
