"""Pure: the phone numbers and job title in the signature of a message a contact sent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from mailparser_reply import EmailReplyParser

_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "sv", "pl"]
_TITLE_WORDS = re.compile(
    r"\b(ceo|cfo|coo|cto|cio|cmo|cro|vp|svp|evp|chief|president|founder|co-founder|owner|partner|"
    r"director|head|manager|lead|principal|officer|engineer|consultant|specialist|analyst|"
    r"executive|representative|associate|coordinator|administrator|architect|advisor|"
    r"buyer|purchasing|procurement|account|sales|marketing|counsel|attorney|trader|"
    r"geschäftsführer|leiter|leiterin|directeur|directrice|gerente|responsable|direttore)\b",
    re.IGNORECASE,
)
_NOT_A_TITLE = re.compile(r"@|https?://|www\.|\d{3}|^\W*(tel|phone|fax|mobile|cell|m|t|f)\b", re.I)
_SIGN_OFF = re.compile(
    r"^(best|kind|warm)?\s*(regards|wishes|thanks|thank you|cheers|sincerely|greetings)\b", re.I
)
_QUOTE_HEADER = re.compile(r"^(on .+ wrote:|-+ ?original message ?-+|from: )", re.I)


_PHONE_LABEL = re.compile(
    r"\b(tel|telephone|phone|mobile|mob|cell|fax|office|direct|work|handy|portable|"
    r"telefon|téléphone|tél|[tmpfod])\b\.?\s*[:.]?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class SignatureFields:
    phones: tuple[str, ...] = ()  # E.164
    title: str | None = None


@lru_cache(maxsize=1)
def _reply_parser() -> EmailReplyParser:
    """Built once: building it costs as much as reading a message (its read() keeps no state)."""
    return EmailReplyParser(languages=_LANGUAGES)


def _region(email: str) -> str | None:
    tld = email.rsplit(".", 1)[-1].upper()
    tld = "GB" if tld == "UK" else tld
    return tld if tld in phonenumbers.SUPPORTED_REGIONS else "US"


def signature_block(text: str) -> str:
    """The signature of the newest reply in a plain-text body (its last lines if none is marked)."""
    try:
        replies = _reply_parser().read(text).replies
    except Exception:
        replies = []
    if replies and replies[0].signatures:
        return str(replies[0].signatures)
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(">") or _QUOTE_HEADER.match(line.strip()):
            break
        lines.append(line)
    return "\n".join([line for line in lines if line.strip()][-8:])


def _title(lines: list[str], name: str | None) -> str | None:
    name_words = {w.lower() for w in (name or "").replace(",", " ").split() if len(w) > 1}
    for line in lines:
        line = line.strip(" -|*\t")
        if not line or len(line) > 80 or _NOT_A_TITLE.search(line) or _SIGN_OFF.match(line):
            continue
        if name_words and set(line.lower().split()) <= name_words:
            continue  # the name line itself
        first = re.split(r"\s*[|,•·]\s*| - | – ", line)[0].strip()
        if _TITLE_WORDS.search(first) and len(first.split()) <= 8:
            return first
    return None


def extract(text: str, *, sender_email: str, sender_name: str | None) -> SignatureFields:
    block = signature_block(text)
    if not block:
        return SignatureFields()
    phones: list[str] = []
    for line in block.splitlines():
        for match in phonenumbers.PhoneNumberMatcher(
            line, _region(sender_email), leniency=phonenumbers.Leniency.VALID
        ):
            # a number inside a sentence ("order 4155550132 shipped") is not a phone line
            rest = line[: match.start] + line[match.end :]
            if not _PHONE_LABEL.search(rest) and sum(c.isalpha() for c in rest) > 3:
                continue
            number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            if number not in phones:
                phones.append(number)
    return SignatureFields(tuple(phones[:5]), _title(block.splitlines(), sender_name))
