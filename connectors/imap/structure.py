"""Reading imapclient's BODYSTRUCTURE: the METHOD of an iMIP calendar part."""

from __future__ import annotations


def text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value if isinstance(value, str) else ""


def calendar_method(structure: object) -> str | None:
    """METHOD of the first text/calendar part in an imapclient BODYSTRUCTURE (BodyData).

    A multipart's first element is the list of its parts; a leaf is (type, subtype, params, …)
    with params a flat (name, value, name, value…) tuple. Attached messages (message/rfc822)
    are not entered: an invitation forwarded to the owner is not an invitation of theirs.
    """
    if not isinstance(structure, tuple | list) or len(structure) < 1:
        return None
    if isinstance(structure[0], list):
        for part in structure[0]:
            method = calendar_method(part)
            if method:
                return method
        return None
    if len(structure) < 3:
        return None
    if (text(structure[0]).lower(), text(structure[1]).lower()) != ("text", "calendar"):
        return None
    params = structure[2] if isinstance(structure[2], tuple | list) else ()
    for name, value in zip(params[::2], params[1::2], strict=False):
        if text(name).lower() == "method" and text(value).strip():
            return text(value).strip().upper()
    return None
