"""Slack user ids -> e-mail addresses, through Slack's profile data, cached for one sync.

users.info returns the user object with `profile.email` when the token has users:read.email
("The users:read.email OAuth scope is now required to access the email field in user objects
returned by the users.list and users.info web API methods",
https://docs.slack.dev/reference/methods/users.info). People of another organization in a
Slack Connect channel are returned too; their e-mail shows when their organization lets it
(https://docs.slack.dev/apis/slack-connect, External members). A bot, an app, or a person
whose address Slack does not show maps to None: semantics §11's "unmappable id", neither a
user nor external.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.slack.api import Caller, SlackError


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    email: str | None  # lower-cased; None: unmappable
    team_id: str | None  # the workspace the person belongs to
    guest: bool  # a single- or multi-channel guest of our workspace

    def outside(self, team_id: str) -> bool:
        """Someone from another organization, or a guest: what makes a DM worth reading."""
        return self.guest or (self.team_id is not None and self.team_id != team_id)


def person_of(user: dict[str, Any]) -> Person:
    profile = user.get("profile") or {}
    email = str(profile.get("email") or "").strip().lower()
    bot = bool(user.get("is_bot") or user.get("is_app_user")) or user.get("id") == "USLACKBOT"
    return Person(
        id=str(user.get("id") or ""),
        email=email if email and "@" in email and not bot else None,
        team_id=user.get("team_id") or profile.get("team"),
        guest=bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
    )


class People:
    """Each id looked up once per sync (users.info is Tier 4: 100+ a minute)."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self._known: dict[str, Person] = {}

    def __len__(self) -> int:
        return len(self._known)

    def get(self, user_id: str) -> Person:
        person = self._known.get(user_id)
        if person is None:
            try:
                user = self.caller.call("users.info", user=user_id).get("user") or {}
                person = person_of(user)
            except SlackError:  # user_not_found, user_not_visible: unmappable
                person = Person(user_id, None, None, False)
            self._known[user_id] = person
        return person

    def email(self, user_id: str | None) -> str | None:
        return self.get(user_id).email if user_id else None
