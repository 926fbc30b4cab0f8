"""Principals, group members and role assignments: who may use which gallery, over HTTP.

Each route calls the same service method as ``blobrep principal``, ``blobrep group member``
and ``blobrep role assignment``, so the roles that decide, the errors and their messages are
the CLI's; the resources carry the CLI's fields under ``properties``.

Every route needs ``Authorization: Bearer <token>`` (401 AuthenticationFailed with
``WWW-Authenticate`` otherwise); a role the caller lacks is 403 AuthorizationFailed with the
CLI's denial. Reads need only a known principal (any may list principals, members and the
assignments it can see); creating or deleting principals and changing membership needs Owner
at ``/``; creating or deleting an assignment needs Owner at its scope or above.

Lists are ``{"value": [...], "nextLink": str | null}``, paged with ``$top`` and
``$skipToken`` (:func:`blobrep.daemon.http.page`). Errors are ``{"error": {"code",
"message"}}`` (:func:`blobrep.daemon.http.failure`): 400 InvalidParameter, 403
AuthorizationFailed, 404 ResourceNotFound, 409 ResourceAlreadyExists or Conflict. Bodies are
JSON objects of at most 64 KiB (413 beyond); unknown fields and fields of the wrong JSON type
are refused with 400 (:mod:`blobrep.daemon.bodies`). A method not listed below is 405.

Principals::

    Principal = {"id": "/principals/{name}", "name": "{name}", "type": "blobrep/principals",
                 "properties": {"principalType": "user" | "servicePrincipal" | "group"}}

    GET    /principals                200 list of Principal, sorted by name
    GET    /principals/{name}         200 Principal; 404
    PUT    /principals/{name}         body {"properties": {"principalType": str}} (any letter
                                      case); 201 Principal created; 200 it exists with that
                                      type; 409 ResourceAlreadyExists it exists with another;
                                      400 a bad name, type or body; 403 without Owner at /
    DELETE /principals/{name}         204, with its memberships, assignments and tokens; 404;
                                      409 Conflict for the home's bootstrap admin; 403

Group members (a member is any principal, groups included; only direct members are listed)::

    Member = {"id": "/principals/{group}/members/{member}", "name": "{member}",
              "type": "blobrep/principals/members",
              "properties": {"groupName": "{group}", "principalName": "{member}"}}

    GET    /principals/{group}/members           200 list of Member, sorted by member;
                                                 404 no such principal; 400 not a group
    GET    /principals/{group}/members/{member}  200 Member; 404 not a direct member
    PUT    /principals/{group}/members/{member}  no body, {} or {"properties": {}}; 201 Member
                                                 added; 200 it already was one; 404 either
                                                 principal missing; 400 not a group, or the
                                                 group itself; 403 without Owner at /
    DELETE /principals/{group}/members/{member}  204; 404 not a direct member; 403

Role assignments, shaped like ARM's ``Microsoft.Authorization/roleAssignments`` but kept in
one flat collection, since blobrep's scopes (``/``, ``/galleries/G``, ``.../images/I``,
``.../versions/X.Y.Z``) are not a path under which a collection could hang::

    RoleAssignment = {"id": "/roleAssignments/{name}", "name": "{name}",
                      "type": "blobrep/roleAssignments",
                      "properties": {"principalName": str,
                                     "roleDefinitionName": "Reader" | "Contributor" | "Owner",
                                     "scope": str}}

    GET    /roleAssignments[?scope=S][&assignee=P]
                                  200 list of the assignments the caller can see (at a scope
                                  it may read, or above one where it holds a role), sorted by
                                  scope, principal, role; ``scope`` keeps those at exactly S
                                  (403 without a role that may read S; 400 not a resource
                                  id), ``assignee`` those of P
    POST   /roleAssignments       body {"properties": {"principalName", "roleDefinitionName",
                                  "scope"}}, all three strings; 201 RoleAssignment with a
                                  ``Location`` header; 200 the same assignment existed; 404 the
                                  principal or the scope does not exist; 400 a bad role, scope
                                  or body; 403 without Owner at the scope or above
    GET    /roleAssignments/{name}     200 RoleAssignment; 404 none the caller can see
    DELETE /roleAssignments/{name}     204; 404 none the caller can see; 403 without Owner at
                                       its scope or above; 409 Conflict for the bootstrap
                                       admin's Owner at /

An assignment is its (principal, role, scope) triple: it has nothing else that could change.
Its ``name`` is therefore derived from the triple, not drawn at random:
``uuid5(ASSIGNMENT_NAMESPACE, principal + "\\n" + role + "\\n" + scope)`` (the namespace
is ``627e2cd4-8c2e-4622-9e19-d1d3b73d3331``; see :func:`assignment_name`), with the role
spelled as above and the scope as the catalog prints it (``properties.scope``), as a
lowercase hyphenated UUID. The same assignment has the same id on every daemon and after every
restart, a client can compute the id of the assignment it means without listing first, and
an id deleted and created again names the same grant.

Creation is ``POST`` on the collection rather than ``PUT`` on an id (ARM's way, with a
client-drawn GUID). With ids derived from the content, a ``PUT`` would make every client
compute the uuid5 before it may create anything, and give a new kind of error (an id that
does not match its body) that exists only because the client was asked to repeat what the
server knows. A ``POST`` of the triple lets the server name it; and since the name follows
from the body, repeating a ``POST`` whose answer was lost is safe: it finds the same
assignment and answers 200 with the same id, the idempotence ``PUT`` would have given.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final

from starlette.responses import Response

from blobrep.core.access import RoleAssignment, parse_principal_type, parse_role
from blobrep.core.ids import ResourceId
from blobrep.daemon import arm, bodies
from blobrep.daemon.http import create_only, json, page, resource
from blobrep.errors import AlreadyExistsError, InvalidParameterError, ResourceNotFoundError
from blobrep.service.views import assignment_view

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.routing import Route

    from blobrep.core.access import Principal
    from blobrep.service import GalleryService

#: The namespace of assignment names (uuid5); fixed forever, or every id would change.
ASSIGNMENT_NAMESPACE: Final = uuid.UUID("627e2cd4-8c2e-4622-9e19-d1d3b73d3331")

PRINCIPAL_TYPE: Final = "blobrep/principals"
MEMBER_TYPE: Final = "blobrep/principals/members"
ASSIGNMENT_TYPE: Final = "blobrep/roleAssignments"


def routes() -> list[Route]:
    return [
        resource("/principals", get=_list_principals),
        resource("/principals/{name}", get=_show_principal, put=_put_principal, delete=_delete_principal),
        resource("/principals/{group}/members", get=_list_members),
        resource(
            "/principals/{group}/members/{member}",
            get=_show_member,
            put=_put_member,
            delete=_delete_member,
        ),
        resource("/roleAssignments", get=_list_assignments, post=_post_assignment),
        resource("/roleAssignments/{name}", get=_show_assignment, delete=_delete_assignment),
    ]


def assignment_name(assignment: RoleAssignment) -> str:
    """The stable name of ``assignment``: a uuid5 of its canonical (principal, role, scope)."""
    triple = f"{assignment.principal}\n{assignment.role.value}\n{assignment.scope}"
    return str(uuid.uuid5(ASSIGNMENT_NAMESPACE, triple))


def _resource(kind: str, path: str, name: str, properties: dict[str, Any]) -> arm.JSON:
    return {"id": path, "name": name, "type": kind, "properties": properties}


def principal_resource(principal: Principal) -> arm.JSON:
    properties = {"principalType": principal.type.value}
    return _resource(PRINCIPAL_TYPE, f"/principals/{principal.name}", principal.name, properties)


def member_resource(group: str, member: str) -> arm.JSON:
    properties = {"groupName": group, "principalName": member}
    return _resource(MEMBER_TYPE, f"/principals/{group}/members/{member}", member, properties)


def assignment_resource(assignment: RoleAssignment) -> arm.JSON:
    name = assignment_name(assignment)
    return _resource(ASSIGNMENT_TYPE, f"/roleAssignments/{name}", name, assignment_view(assignment))


# --- principals ---------------------------------------------------------------------------


async def _list_principals(request: Request, service: GalleryService, caller: str) -> Response:
    principals = await service.list_principals(caller)
    return page(request, [principal_resource(principal) for principal in principals])


async def _show_principal(request: Request, service: GalleryService, caller: str) -> Response:
    return json(principal_resource(await service.show_principal(caller, request.path_params["name"])))


async def _put_principal(request: Request, service: GalleryService, caller: str) -> Response:
    """Create the principal (201); one that exists with the same type is left as it is (200).

    The service is asked to create first, so a caller that may not create principals is
    refused whether or not the name is taken.
    """
    name = request.path_params["name"]
    body = await bodies.json_object(request)
    bodies.only(body, {"properties"}, "the body")
    properties = bodies.section(body, "properties")
    bodies.only(properties, {"principalType"}, "properties")
    wanted = bodies.text(properties, "principalType")
    if wanted is None:
        raise InvalidParameterError("properties.principalType is required: user, servicePrincipal or group")
    try:
        created = await service.create_principal(caller, name, wanted)
    except AlreadyExistsError:
        if create_only(request):
            raise
        existing = await service.show_principal(caller, name)
        asked = parse_principal_type(wanted)
        if existing.type is not asked:
            raise AlreadyExistsError(
                f"principal {name!r} already exists as a {existing.type.value}, not a {asked.value};"
                f" delete it first to make it a {asked.value}"
            ) from None
        return json(principal_resource(existing))
    return json(principal_resource(created), 201)


async def _delete_principal(request: Request, service: GalleryService, caller: str) -> Response:
    await service.delete_principal(caller, request.path_params["name"])
    return Response(status_code=204)


# --- group members ------------------------------------------------------------------------


async def _list_members(request: Request, service: GalleryService, caller: str) -> Response:
    group = request.path_params["group"]
    members = await service.list_members(caller, group)
    return page(request, [member_resource(group, member) for member in members])


async def _show_member(request: Request, service: GalleryService, caller: str) -> Response:
    group, member = request.path_params["group"], request.path_params["member"]
    if member not in await service.list_members(caller, group):
        raise ResourceNotFoundError(f"{member!r} is not a member of group {group!r}")
    return json(member_resource(group, member))


async def _put_member(request: Request, service: GalleryService, caller: str) -> Response:
    """Add the member (201); one that already is a direct member stays (200).

    The service checks the caller before it finds the member there, so an "already a
    member" answer is only ever given to a caller that may change the group.
    """
    group, member = request.path_params["group"], request.path_params["member"]
    body = await bodies.json_object(request)
    bodies.only(body, {"properties"}, "the body")
    if bodies.section(body, "properties"):
        raise InvalidParameterError(
            'a membership has no properties to set: send no body, {} or {"properties": {}}'
        )
    try:
        await service.add_member(caller, group, member)
    except AlreadyExistsError:
        if create_only(request):
            raise
        return json(member_resource(group, member))
    return json(member_resource(group, member), 201)


async def _delete_member(request: Request, service: GalleryService, caller: str) -> Response:
    await service.remove_member(caller, request.path_params["group"], request.path_params["member"])
    return Response(status_code=204)


# --- role assignments ---------------------------------------------------------------------


async def _list_assignments(request: Request, service: GalleryService, caller: str) -> Response:
    query = request.query_params
    assignments = await service.list_assignments(
        caller, scope=query.get("scope"), assignee=query.get("assignee")
    )
    return page(request, [assignment_resource(assignment) for assignment in assignments])


def _required(properties: dict[str, Any], key: str) -> str:
    value = bodies.text(properties, key)
    if value is None:
        raise InvalidParameterError(
            f"properties.{key} is required: a role assignment names principalName,"
            " roleDefinitionName and scope"
        )
    return value


async def _post_assignment(request: Request, service: GalleryService, caller: str) -> Response:
    """Create the assignment (201, ``Location``); the same one again answers 200 with it.

    The service checks the caller, the scope and the role before it finds the assignment
    taken, so the 200 is only ever given to a caller that may manage access there.
    """
    body = await bodies.json_object(request)
    bodies.only(body, {"properties"}, "the body")
    properties = bodies.section(body, "properties")
    bodies.only(properties, {"principalName", "roleDefinitionName", "scope"}, "properties")
    assignee = _required(properties, "principalName")
    role = _required(properties, "roleDefinitionName")
    scope = _required(properties, "scope")
    try:
        created = await service.create_assignment(caller, assignee, role, scope)
    except AlreadyExistsError:
        existing = RoleAssignment(assignee, parse_role(role), ResourceId.parse(scope))
        return json(assignment_resource(existing))
    document = assignment_resource(created)
    location = str(request.base_url).rstrip("/") + document["id"]
    return json(document, 201, {"Location": location})


async def _visible(service: GalleryService, caller: str, name: str) -> RoleAssignment:
    """The assignment called ``name`` among those ``caller`` can see.

    One the caller cannot see is not found, in the same words as one that does not exist:
    its id says nothing of its scope, and answering otherwise would tell who holds what
    where.
    """
    for assignment in await service.list_assignments(caller):
        if assignment_name(assignment) == name:
            return assignment
    raise ResourceNotFoundError(
        f"role assignment {name!r} not found among those principal {caller!r} can see;"
        " GET /roleAssignments lists them"
    )


async def _show_assignment(request: Request, service: GalleryService, caller: str) -> Response:
    return json(assignment_resource(await _visible(service, caller, request.path_params["name"])))


async def _delete_assignment(request: Request, service: GalleryService, caller: str) -> Response:
    found = await _visible(service, caller, request.path_params["name"])
    await service.delete_assignment(caller, found.principal, found.role.value, str(found.scope))
    return Response(status_code=204)
