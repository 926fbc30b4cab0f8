"""``blobrep principal ...``, ``blobrep group member ...`` and ``blobrep role assignment ...``."""

from __future__ import annotations

import argparse
from typing import Any

from blobrep.cli._common import call, emit
from blobrep.service.views import assignment_view, principal_view


def register(commands: Any) -> None:
    _register_principal(commands)
    _register_group(commands)
    _register_role(commands)


def _register_principal(commands: Any) -> None:
    parser = commands.add_parser("principal", help="users, service principals and groups")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="add a principal (Owner at / only)")
    create.add_argument("--name", "-n", required=True)
    create.add_argument("--type", required=True, help="user, servicePrincipal or group")
    create.set_defaults(handler=_principal_create)
    actions.add_parser("list", help="every principal").set_defaults(handler=_principal_list)
    for action, handler, text in (
        ("show", _principal_show, "one principal"),
        ("delete", _principal_delete, "remove a principal with its memberships and role assignments"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("--name", "-n", required=True)
        sub.set_defaults(handler=handler)


def _register_group(commands: Any) -> None:
    parser = commands.add_parser("group", help="group membership")
    member = parser.add_subparsers(dest="section", required=True, metavar="SECTION").add_parser(
        "member", help="add, remove and list the members of a group"
    )
    actions = member.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, handler, text in (
        ("add", _member_add, "add a member"),
        ("remove", _member_remove, "remove a member"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("--group", "-g", required=True)
        sub.add_argument("--member", "-m", required=True, help="a user, service principal or group")
        sub.set_defaults(handler=handler)
    listing = actions.add_parser("list", help="the direct members of a group")
    listing.add_argument("--group", "-g", required=True)
    listing.set_defaults(handler=_member_list)


def _register_role(commands: Any) -> None:
    parser = commands.add_parser("role", help="role assignments")
    assignment = parser.add_subparsers(dest="section", required=True, metavar="SECTION").add_parser(
        "assignment", help="create, list and delete role assignments"
    )
    actions = assignment.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, handler, text in (
        ("create", _assignment_create, "give a role at a scope and below"),
        ("delete", _assignment_delete, "take a role back"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("--assignee", required=True, help="the principal")
        sub.add_argument("--role", required=True, help="Reader, Contributor or Owner")
        sub.add_argument("--scope", required=True, help="/, /galleries/G, .../images/I or .../versions/X.Y.Z")
        sub.set_defaults(handler=handler)
    listing = actions.add_parser("list", help="assignments you can see")
    listing.add_argument("--assignee", default=None, help="only this principal's")
    listing.add_argument("--scope", default=None, help="only those at exactly this scope")
    listing.set_defaults(handler=_assignment_list)


def _principal_create(args: argparse.Namespace) -> int:
    principal = call(args, lambda service, caller: service.create_principal(caller, args.name, args.type))
    return emit(args, principal_view(principal), [principal_view(principal)])


def _principal_list(args: argparse.Namespace) -> int:
    principals = call(args, lambda service, caller: service.list_principals(caller))
    views = [principal_view(principal) for principal in principals]
    return emit(args, views, views)


def _principal_show(args: argparse.Namespace) -> int:
    principal = call(args, lambda service, caller: service.show_principal(caller, args.name))
    return emit(args, principal_view(principal), [principal_view(principal)])


def _principal_delete(args: argparse.Namespace) -> int:
    call(args, lambda service, caller: service.delete_principal(caller, args.name))
    return 0


def _members(args: argparse.Namespace, members: list[str]) -> int:
    return emit(args, {"group": args.group, "members": members}, [{"member": member} for member in members])


def _member_add(args: argparse.Namespace) -> int:
    return _members(
        args, call(args, lambda service, caller: service.add_member(caller, args.group, args.member))
    )


def _member_remove(args: argparse.Namespace) -> int:
    return _members(
        args, call(args, lambda service, caller: service.remove_member(caller, args.group, args.member))
    )


def _member_list(args: argparse.Namespace) -> int:
    return _members(args, call(args, lambda service, caller: service.list_members(caller, args.group)))


def _assignment_create(args: argparse.Namespace) -> int:
    assignment = call(
        args, lambda service, caller: service.create_assignment(caller, args.assignee, args.role, args.scope)
    )
    return emit(args, assignment_view(assignment), [assignment_view(assignment)])


def _assignment_delete(args: argparse.Namespace) -> int:
    call(
        args, lambda service, caller: service.delete_assignment(caller, args.assignee, args.role, args.scope)
    )
    return 0


def _assignment_list(args: argparse.Namespace) -> int:
    assignments = call(
        args,
        lambda service, caller: service.list_assignments(caller, scope=args.scope, assignee=args.assignee),
    )
    views = [assignment_view(assignment) for assignment in assignments]
    return emit(args, views, views)
