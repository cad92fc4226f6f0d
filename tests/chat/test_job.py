"""A change of the directory re-derives the chat conversations it concerns, through the chat
job (app/chat/job.py) that the change asks for, as the workers run it."""

from __future__ import annotations

from app.chat import job
from tests.chat.test_routes import JOE, Setup, payload, post, setup  # noqa: F401  (fixture)


def conversations(s: Setup, user_id: int) -> list[dict[str, object]]:
    answer = s.client.get(
        "/api/v1/activities",
        params={"type": "chat_conversation", "user_id": user_id},
        headers=s.org.as_admin(),
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_a_colleague_made_a_user_gets_the_conversations_they_wrote_in(setup: Setup) -> None:  # noqa: F811
    # Cleo writes from the company's domain before she has a Tally account: nobody (§11)
    chat = payload(
        ("m1", JOE, "2024-05-14T09:00:00Z"),
        ("m2", "cleo@acme.example", "2024-05-14T09:05:00Z"),
        ("m3", "ana@acme.example", "2024-05-14T09:06:00Z"),
    )
    assert post(setup, chat).status_code == 200
    job.tick()  # the users the organization was made with asked for a pass
    assert job.tick() == 0  # nothing more asked for
    cleo = setup.org.user("cleo@acme.example")["id"]
    assert conversations(setup, cleo) == []  # not before the job has run
    assert job.tick() == 1
    [made] = conversations(setup, cleo)
    assert made["occurred_at"].startswith("2024-05-14T09:00:00")
    assert len(made["contact_ids"]) == 1  # Joe, the outsider who wrote
    assert len(conversations(setup, setup.ana)) == 1  # Ana's own is left as it was
    assert job.tick() == 0  # done once
