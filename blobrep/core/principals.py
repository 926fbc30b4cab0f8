"""Principal names: the one pattern for users, service principals and groups.

A principal's name appears in role assignments, in bearer tokens and after ``--as``; checking
it once, here, means it can be stored, printed and compared without any escaping.
"""

from __future__ import annotations

import re
from typing import Final

from blobrep.errors import InvalidNameError

MAX_PRINCIPAL_NAME_LENGTH: Final = 128

_PRINCIPAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")


def validate_principal_name(name: str) -> str:
    """Return ``name`` if it can name a user, service principal or group, else raise.

    Principal names appear in assignments, tokens and ``--as``; one pattern for all three
    keeps ``alice@contoso.com`` usable while ruling out spaces, slashes and control
    characters that would make an assignment ambiguous to print or to parse back.

    Raises:
        InvalidNameError: ``name`` is empty, too long or has a character outside the pattern.
    """
    if not name:
        raise InvalidNameError(f"principal name is empty: give 1 to {MAX_PRINCIPAL_NAME_LENGTH} characters")
    if len(name) > MAX_PRINCIPAL_NAME_LENGTH:
        raise InvalidNameError(
            f"principal name {name[:20]!r}... is {len(name)} characters long;"
            f" the limit is {MAX_PRINCIPAL_NAME_LENGTH}"
        )
    if _PRINCIPAL_RE.fullmatch(name) is None:
        raise InvalidNameError(
            f"invalid principal name {name!r}: use letters, digits, '.', '_', '@' and '-',"
            " starting with a letter or digit"
        )
    return name
