"""Role-based access: who may do what, where. Pure: assignments and memberships in, a verdict out.

Principals are users, service principals and groups; a group holds principals, groups
included. Roles are cumulative (Owner > Contributor > Reader) and an assignment at a scope
applies to that scope and everything below it (home -> gallery -> definition -> version).

Principal names are compared exactly, as :func:`blobrep.core.principals.validate_principal_name`
accepted them. A ``latest`` id is never a scope: the version it stands for differs per region,
so callers resolve it and check the version they will actually use.

Access comes before existence, as in Azure Resource Manager: a caller that holds no role at
a scope gets the same :class:`~blobrep.errors.AccessDeniedError` whether or not anything
exists there, because the check looks at the scope's id alone and runs before the catalog is
asked. Only a caller that may read a scope (or holds a role below it, see :func:`can_see`)
learns that something there does not exist. So a principal cannot probe for the names of
galleries, definitions or versions it was never given; and a call over "everything"
(listings, ``scrub``, ``fsck``, ``replicate`` of a gallery) covers what the caller can see, at
the scopes where it holds a role (:func:`reach`), instead of failing on what it cannot.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from blobrep.core.gallery import parse_choice
from blobrep.errors import AccessDeniedError, InvalidParameterError

if TYPE_CHECKING:
    from blobrep.core.ids import ResourceId


class PrincipalType(enum.StrEnum):
    USER = "user"
    SERVICE_PRINCIPAL = "servicePrincipal"
    GROUP = "group"


class Action(enum.StrEnum):
    """What a call does, as far as access is concerned."""

    READ = "read"
    """See metadata: show, list."""
    DEPLOY = "deploy"
    """Read a version's bytes: create VMs from it."""
    WRITE = "write"
    """Create, update, publish, replicate."""
    DELETE = "delete"
    MANAGE_ACCESS = "manageAccess"
    """Create and delete role assignments."""


class Role(enum.StrEnum):
    READER = "Reader"
    CONTRIBUTOR = "Contributor"
    OWNER = "Owner"


ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.READER: frozenset({Action.READ, Action.DEPLOY}),
    Role.CONTRIBUTOR: frozenset({Action.READ, Action.DEPLOY, Action.WRITE, Action.DELETE}),
    Role.OWNER: frozenset(Action),
}


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    type: PrincipalType


@dataclass(frozen=True, slots=True)
class RoleAssignment:
    principal: str
    role: Role
    scope: ResourceId


#: Roles from least to most powerful; each grants everything the ones before it grant.
ROLE_ORDER: Final = (Role.READER, Role.CONTRIBUTOR, Role.OWNER)

#: How a denial reads: "principal 'bob' may not <verb> /galleries/g".
_VERBS: Final = {
    Action.READ: "read",
    Action.DEPLOY: "deploy from",
    Action.WRITE: "write to",
    Action.DELETE: "delete",
    Action.MANAGE_ACCESS: "manage access at",
}


def parse_principal_type(text: str) -> PrincipalType:
    """The principal type spelled ``text`` in any letter case (``user``, ``servicePrincipal``).

    Raises:
        InvalidParameterError: ``text`` names no type; the message lists the valid ones.
    """
    return parse_choice(PrincipalType, text, "principal type")


def parse_role(text: str) -> Role:
    """The role spelled ``text`` in any letter case (``reader``, ``Contributor``, ``OWNER``).

    Raises:
        InvalidParameterError: ``text`` names no role; the message lists the valid ones.
    """
    return parse_choice(Role, text, "role")


def least_role_for(action: Action) -> Role:
    """The weakest role that allows ``action``: the one to suggest when it is denied."""
    return next(role for role in ROLE_ORDER if action in ROLE_ACTIONS[role])


def expand_principal(name: str, memberships: Mapping[str, Collection[str]]) -> frozenset[str]:
    """``name`` and every group it belongs to, directly or through nested groups.

    A role assigned to a group is held by everyone in it, and by everyone in any group it
    contains, so access is decided for this whole set at once. Group graphs may contain
    cycles (two groups that include each other); each group is visited once, so the walk
    ends and the cycle simply makes its groups members of one another.

    Args:
        name: the principal whose groups are wanted.
        memberships: each group's name mapped to its direct members.
    """
    containing: dict[str, set[str]] = {}
    for group, members in memberships.items():
        for member in members:
            containing.setdefault(member, set()).add(group)
    found = {name}
    pending = [name]
    while pending:
        for group in containing.get(pending.pop(), ()):
            if group not in found:
                found.add(group)
                pending.append(group)
    return frozenset(found)


def _require_scope(scope: ResourceId) -> None:
    if scope.latest:
        raise InvalidParameterError(
            f"{scope} is not a scope: resolve 'latest' to a version before checking access"
        )


def roles_at(
    principal: str,
    scope: ResourceId,
    assignments: Iterable[RoleAssignment],
    memberships: Mapping[str, Collection[str]],
) -> frozenset[Role]:
    """Every role ``principal`` holds at ``scope``, itself or through a group.

    An assignment counts if it sits at ``scope`` or at any ancestor of it: a role at a
    gallery covers its definitions and versions, never a parent or a sibling. An assignment
    at a ``latest`` id covers nothing, since ``latest`` names no fixed resource.

    Raises:
        InvalidParameterError: ``scope`` is a ``latest`` id. Which version that is depends
            on the region, so callers resolve it first and check the version they will use.
    """
    _require_scope(scope)
    holders = expand_principal(principal, memberships)
    lineage = scope.lineage()
    return frozenset(a.role for a in assignments if a.principal in holders and a.scope in lineage)


def allows(
    principal: str,
    action: Action,
    scope: ResourceId,
    assignments: Iterable[RoleAssignment],
    memberships: Mapping[str, Collection[str]],
) -> bool:
    """True if some role ``principal`` holds at ``scope`` (see :func:`roles_at`) allows ``action``.

    Raises:
        InvalidParameterError: ``scope`` is a ``latest`` id.
    """
    held = roles_at(principal, scope, assignments, memberships)
    return any(action in ROLE_ACTIONS[role] for role in held)


def check(
    principal: str,
    action: Action,
    scope: ResourceId,
    assignments: Iterable[RoleAssignment],
    memberships: Mapping[str, Collection[str]],
) -> None:
    """Return if ``principal`` may do ``action`` at ``scope``; otherwise say what is missing.

    The message names what the principal holds there and the roles that would do, so that
    whoever manages access there knows exactly what to grant.

    Raises:
        AccessDeniedError: no role held at ``scope`` or above allows ``action``.
        InvalidParameterError: ``scope`` is a ``latest`` id.
    """
    held = roles_at(principal, scope, assignments, memberships)
    if any(action in ROLE_ACTIONS[role] for role in held):
        return
    holding = " and ".join(role.value for role in ROLE_ORDER if role in held) or "no role"
    needed = [role.value for role in ROLE_ORDER if action in ROLE_ACTIONS[role]]
    needed_text = needed[-1] if len(needed) == 1 else f"{', '.join(needed[:-1])} or {needed[-1]}"
    raise AccessDeniedError(
        f"principal {principal!r} may not {_VERBS[action]} {scope}: it holds {holding} there;"
        f" {needed_text} at that scope or above is needed"
    )


def can_see(
    principal: str,
    scope: ResourceId,
    assignments: Iterable[RoleAssignment],
    memberships: Mapping[str, Collection[str]],
) -> bool:
    """True if ``scope`` should appear to ``principal`` in a listing.

    That is so where it may read, and also where it holds any role strictly below
    ``scope``: someone granted Reader on one image definition must still find the gallery
    that holds it in order to reach it. Seeing a gallery this way grants nothing inside it
    beyond the path to what the principal was given; ``show`` still needs READ.

    Raises:
        InvalidParameterError: ``scope`` is a ``latest`` id.
    """
    assignments = list(assignments)
    if allows(principal, Action.READ, scope, assignments, memberships):
        return True
    holders = expand_principal(principal, memberships)
    return any(
        a.principal in holders and a.scope != scope and not a.scope.latest and scope.contains(a.scope)
        for a in assignments
    )


@dataclass(frozen=True, slots=True)
class Reach:
    """Where inside one gallery a principal may do an action: all of it, or some of its
    definitions and versions."""

    gallery: ResourceId
    scopes: tuple[ResourceId, ...]
    """The gallery alone, or the definition and version ids where the action is allowed
    (each the highest such id on its path); empty if it is allowed nowhere in the gallery."""

    @property
    def whole(self) -> bool:
        """True if the action is allowed on the whole gallery."""
        return self.scopes == (self.gallery,)

    def covers(self, scope: ResourceId) -> bool:
        """True if ``scope`` is one of :attr:`scopes` or lies below one."""
        return any(allowed.contains(scope) for allowed in self.scopes)


def reach(
    principal: str,
    action: Action,
    gallery: ResourceId,
    resources: Iterable[ResourceId],
    assignments: Iterable[RoleAssignment],
    memberships: Mapping[str, Collection[str]],
) -> Reach:
    """The part of ``gallery`` where ``principal`` may do ``action``.

    A role at the gallery or above allows it on the whole gallery. Otherwise it is allowed
    on each of ``resources`` (the gallery's definition and version ids) where a role at that
    resource, or at its definition, allows it: someone granted Reader on one definition may
    scrub that definition, and nothing else of the gallery.

    Raises:
        InvalidParameterError: ``gallery`` or one of ``resources`` is a ``latest`` id.
    """
    assignments = list(assignments)
    if allows(principal, action, gallery, assignments, memberships):
        return Reach(gallery, (gallery,))
    inside = sorted(
        {resource for resource in resources if resource != gallery and gallery.contains(resource)},
        key=lambda resource: (len(resource.lineage()), str(resource)),
    )
    found: list[ResourceId] = []
    for resource in inside:  # definitions before their versions: the highest allowed id wins
        if any(scope.contains(resource) for scope in found):
            continue
        if allows(principal, action, resource, assignments, memberships):
            found.append(resource)
    return Reach(gallery, tuple(found))
