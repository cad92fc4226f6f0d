"""The Slack emulator's Web API methods, each answered from the workspace as Slack documents:

- cursor pagination: `limit` and `cursor` in, `response_metadata.next_cursor` out, "" on the
  last page (https://docs.slack.dev/apis/web-api/pagination);
- conversations.list with `types`; conversations.history with `oldest`/`latest`/`inclusive`,
  newest first, `has_more`, replies left out but their parent and thread broadcasts kept;
  conversations.replies (parent first, then replies oldest first); conversations.members;
  users.info / users.lookupByEmail (the e-mail only with users:read.email, an external
  person's only when their organization shows it); auth.test; oauth.v2.access.

A method named `a.b` is `m_a_b(token, args)`; a refusal raises `Refused`, which the server
answers as HTTP 200 `{"ok": false, "error": …}`.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from tests.emulators.slack_workspace import Channel, SlackWorkspace, Token, User

# which scope reads which kind of conversation (conversations.history, Required scopes)
HISTORY_SCOPE = {"public": "channels:history", "private": "groups:history", "im": "im:history"}
HISTORY_SCOPE["mpim"] = "mpim:history"
READ_SCOPE = {"public": "channels:read", "private": "groups:read", "im": "im:read"}
READ_SCOPE["mpim"] = "mpim:read"


class Refused(Exception):
    def __init__(self, error: str, **extra: str) -> None:
        super().__init__(error)
        self.body = {"ok": False, "error": error, **extra}


def _ts(value: object, default: Decimal) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else default
    except ArithmeticError:
        return default


def _page(items: list[Any], args: dict[str, str], default: int, most: int) -> tuple[list[Any], str]:
    """A page of `items` and the next cursor ("" at the end); an opaque base64 offset."""
    try:
        limit = min(max(int(args.get("limit") or default), 1), most)
        start = int(base64.b64decode(args["cursor"]).decode()[5:]) if args.get("cursor") else 0
    except (ValueError, KeyError, UnicodeDecodeError):
        raise Refused("invalid_cursor") from None
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    return chunk, base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""


class SlackMethods(SlackWorkspace):
    def _user_json(self, user: User, token: Token) -> dict[str, Any]:
        profile: dict[str, Any] = {"real_name": user.id, "team": user.team_id}
        if user.email and "users:read.email" in token.scopes and not user.email_hidden:
            profile["email"] = user.email
        return {
            "id": user.id,
            "team_id": user.team_id,
            "is_bot": user.is_bot,
            "is_restricted": user.guest,
            "is_ultra_restricted": False,
            "deleted": False,
            "profile": profile,
        }

    def _readable(self, token: Token, channel_id: str, scope_kind: str) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise Refused("channel_not_found")
        needed = (HISTORY_SCOPE if scope_kind == "history" else READ_SCOPE)[channel.kind]
        if needed not in token.scopes:
            raise Refused("missing_scope", needed=needed)
        if token.user not in channel.members:
            raise Refused("not_in_channel")
        return channel

    def m_auth_test(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        return {"ok": True, "team_id": self.team_id, "user_id": token.user, "team": self.team_name}

    def m_conversations_list(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        wanted = set((args.get("types") or "public_channel").split(","))
        kinds = {"public_channel": "public", "private_channel": "private", "im": "im"}
        kinds["mpim"] = "mpim"
        found = []
        for channel in self.channels.values():
            if not any(kinds.get(t) == channel.kind for t in wanted):
                continue
            member = token.user in channel.members
            if channel.kind != "public" and not member:
                continue  # private conversations only show to their members
            item: dict[str, Any] = {
                "id": channel.id,
                "name": channel.name,
                "is_channel": channel.kind == "public",
                "is_group": channel.kind == "private",
                "is_im": channel.kind == "im",
                "is_mpim": channel.kind == "mpim",
                "is_private": channel.kind != "public",
                "is_member": member,
                "is_ext_shared": channel.ext_shared,
                "is_shared": channel.ext_shared,
                "is_org_shared": False,
            }
            if channel.kind == "im":
                item["user"] = next((m for m in channel.members if m != token.user), None)
            found.append(item)
        chunk, cursor = _page(found, args, 100, 1000)
        return {"ok": True, "channels": chunk, "response_metadata": {"next_cursor": cursor}}

    def m_conversations_members(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        channel = self._readable(token, args.get("channel", ""), "read")
        chunk, cursor = _page(channel.members, args, 100, 1000)
        return {"ok": True, "members": chunk, "response_metadata": {"next_cursor": cursor}}

    def m_conversations_history(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        channel = self._readable(token, args.get("channel", ""), "history")
        oldest = _ts(args.get("oldest"), Decimal(0))
        latest = _ts(args.get("latest"), Decimal(10**12))
        inclusive = args.get("inclusive") in ("1", "true")
        found = [
            m
            for m in reversed(channel.messages)  # newest first
            if (m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast")
            and (
                oldest <= Decimal(m["ts"]) <= latest
                if inclusive
                else oldest < Decimal(m["ts"]) < latest
            )
        ]
        chunk, cursor = _page(found, args, 100, 999)
        return {
            "ok": True,
            "messages": [dict(m) for m in chunk],
            "has_more": bool(cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }

    def m_conversations_replies(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        channel = self._readable(token, args.get("channel", ""), "history")
        parent = args.get("ts", "")
        thread = [m for m in channel.messages if m["ts"] == parent or m.get("thread_ts") == parent]
        if not thread:
            raise Refused("thread_not_found")
        oldest = _ts(args.get("oldest"), Decimal(0))
        latest = _ts(args.get("latest"), Decimal(10**12))
        head, replies = thread[0], [m for m in thread[1:] if oldest < Decimal(m["ts"]) < latest]
        chunk, cursor = _page([head, *replies], args, 100, 1000)
        return {
            "ok": True,
            "messages": [dict(m) for m in chunk],
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    def m_users_info(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        if "users:read" not in token.scopes:
            raise Refused("missing_scope", needed="users:read")
        user = self.users.get(args.get("user", ""))
        if user is None:
            raise Refused("user_not_found")
        return {"ok": True, "user": self._user_json(user, token)}

    def m_users_lookupByEmail(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        if "users:read.email" not in token.scopes:
            raise Refused("missing_scope", needed="users:read.email")
        wanted = (args.get("email") or "").lower()
        for user in self.users.values():
            if user.email and user.email.lower() == wanted and not user.email_hidden:
                return {"ok": True, "user": self._user_json(user, token)}
        raise Refused("users_not_found")

    # oauth.v2.access: client credentials as HTTP Basic or arguments, the code once
    # (https://docs.slack.dev/reference/methods/oauth.v2.access)
    def oauth_access(self, args: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        client = basic or (args.get("client_id", ""), args.get("client_secret", ""))
        if client != (self.client_id, self.client_secret):
            return {"ok": False, "error": "invalid_client_id"}
        grant = self.codes.pop(args.get("code", ""), None)
        if grant is None:
            return {"ok": False, "error": "invalid_code"}
        self.tokens[self.bot_token].scopes = grant["scope"]  # the app's, in this workspace
        answer: dict[str, Any] = {
            "ok": True,
            "access_token": self.bot_token,
            "token_type": "bot",
            "scope": ",".join(sorted(grant["scope"])),
            "bot_user_id": "UBOT",
            "app_id": "A1",
            "team": {"id": self.team_id, "name": self.team_name},
            "authed_user": {"id": grant["installer"]},
        }
        if grant["user_scopes"] and grant["user_scope"]:
            user = self.add_token(grant["installer"], grant["user_scope"])
            answer["authed_user"] |= {
                "access_token": user,
                "token_type": "user",
                "scope": ",".join(sorted(grant["user_scope"])),
            }
        return answer
