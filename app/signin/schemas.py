"""Request and answer bodies of the sign-in links."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from app.users.schemas import Me

# tokens are secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"


class SignInLinkCreated(BaseModel):
    url: str = Field(description="open it in a browser: the dashboard signs the user in")
    expires_at: datetime = Field(description="unused after this instant, the link is refused")


class SignIn(BaseModel):
    token: Annotated[str, Field(pattern=TOKEN_PATTERN, max_length=100)] = Field(
        description="the part of a sign-in link after `#sign-in=`"
    )


class SignedIn(BaseModel):
    api_key: str = Field(description="a new API key of the user; shown once")
    user: Me
