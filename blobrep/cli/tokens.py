"""``blobrep token create|list|revoke``: bearer tokens for the daemon's API.

``create`` prints the token once, as ``{"id", "token", "principal", "expires"}``; nothing
prints it again (the catalog keeps only a hash of its secret), so store it when it is shown.
These commands change only the catalog, so they work beside a running daemon, which sees a
new or revoked token at its next request.
"""

from __future__ import annotations

import argparse
from typing import Any

from blobrep.cli import _types
from blobrep.cli._common import call, emit


def register(commands: Any) -> None:
    from blobrep.core.tokens import DEFAULT_LIFETIME, MAX_LIFETIME, MIN_LIFETIME

    parser = commands.add_parser("token", help="bearer tokens for the HTTP API")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="make a token and print it once (for another principal: Owner at / only)"
    )
    create.add_argument(
        "--principal", "-p", required=True, help="the user or service principal the token acts as"
    )
    create.add_argument(
        "--expires",
        type=_types.Duration(MIN_LIFETIME, MAX_LIFETIME),
        default=DEFAULT_LIFETIME,
        metavar="DURATION",
        help="how long it works, e.g. 12h, 30d, 365d (default: 30d; at most 3650d; tokens always expire)",
    )
    create.set_defaults(handler=_create)
    listing = actions.add_parser(
        "list", help="tokens without their secrets: your own, or with Owner at / everyone's"
    )
    listing.add_argument("--principal", "-p", default=None, help="only this principal's")
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", help="stop a token from working (revoking twice is fine)")
    revoke.add_argument("id", metavar="ID", help="the token's id (tok_...), or the token itself")
    revoke.set_defaults(handler=_revoke)


def _create(args: argparse.Namespace) -> int:
    from blobrep.service.tokens import issued_token_view

    issued = call(
        args, lambda service, caller: service.create_token(caller, args.principal, lifetime=args.expires)
    )
    view = issued_token_view(issued)
    return emit(args, view, [view])


def _list(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from blobrep.service.tokens import token_view

    tokens = call(args, lambda service, caller: service.list_tokens(caller, principal=args.principal))
    now = datetime.now(UTC)
    views = [token_view(token, now) for token in tokens]
    return emit(args, views, views)


def _revoke(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from blobrep.service.tokens import token_view

    token = call(args, lambda service, caller: service.revoke_token(caller, args.id))
    view = token_view(token, datetime.now(UTC))
    return emit(args, view, [view])
