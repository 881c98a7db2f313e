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


def test_a_missing_call_and_an_admin_page_answer_in_russian(app: Flask) -> None:
    from tests.browser.seed import operator
    from tests.webhooks.test_operator_access import sign_in

    with app.extensions["meterline"].sessions() as session:
        operator(session, "olga")
        session.commit()
    client = app.test_client()
    assert sign_in(client, "olga") == 302
    missing = client.get("/operator/calls/999999")
    assert missing.status_code == 404 and "Такой записи нет" in missing.text
    admin = client.get("/operator/admin/operators")
    assert admin.status_code == 403 and "только для администраторов" in admin.text
    assert "Forbidden" not in admin.text and "Not Found" not in missing.text
