"""A service's NotFound/Forbidden reads on a page as the pages' own 404/403; other
refusals a view leaves unhandled as the error page in the reader's language."""

from __future__ import annotations

import pytest

from quotaflow.errors import Conflict


@pytest.mark.parametrize("path", [
    "/plans/999999", "/letters/999999", "/tasks/999999", "/confirm/appeals/999999",
    "/emergency/999999", "/alerts/?period=1999Q1", "/org/EAST?period=1999Q1",
])
def test_absent_objects_are_the_pages_404(as_user, path) -> None:
    client = as_user("admin") if path.startswith("/emergency") else as_user("head.east")
    client.post("/language", data={"lang": "en", "next": "/"})
    response = client.get(path)
    assert response.status_code == 404
    assert "does not exist or is outside your scope" in response.get_data(as_text=True)


def test_someone_elses_message_is_404(as_user) -> None:
    assert as_user("head.east").post("/inbox/999999/read").status_code == 404


def test_an_unhandled_refusal_renders_with_its_status_and_message(app) -> None:
    from quotaflow.messages import CATALOGUE

    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        response = app.make_response(app.handle_user_exception(Conflict("conflict")))
    assert response.status_code == 409
    assert CATALOGUE["conflict"] in response.get_data(as_text=True)
