"""Paths of ``/openapi.json``: principals, group members and role assignments."""

from __future__ import annotations

from blobrep.daemon.openapi.shapes import (
    DELETES,
    JSON,
    WRITES,
    answer,
    created_or_updated,
    deleted,
    failures,
    listing,
    operation,
    ref,
)


def sharing() -> JSON:
    """The paths of principals, group members and role assignments."""
    return {**_principals(), **_members(), **_assignments()}


def _principals() -> JSON:
    principal = ("principal",)
    return {
        "/principals": {"get": listing("Principals_List", "Principals", "Principal", "Principals")},
        "/principals/{name}": {
            "get": operation(
                "Principals_Get",
                "Show a principal",
                {"200": answer("The principal.", ref("Principal")), **failures(400, 404)},
                tag="Principals",
                parameters=principal,
            ),
            "put": operation(
                "Principals_Create",
                "Create a principal (Owner at /)",
                {**created_or_updated("Principal"), **failures(*WRITES, 409)},
                tag="Principals",
                parameters=(*principal, "createOnly"),
                body="PrincipalBody",
                body_required=True,
                description="`200`: it exists with that type; `409`: it exists with another.",
            ),
            "delete": operation(
                "Principals_Delete",
                "Delete a principal, its memberships, assignments and tokens",
                {**deleted("principal"), **failures(*DELETES)},
                tag="Principals",
                parameters=principal,
            ),
        },
    }


def _members() -> JSON:
    member = ("group", "member")
    return {
        "/principals/{group}/members": {
            "get": listing(
                "GroupMembers_List", "Members", "Member", "Principals", "group", extra=failures(404)
            ),
        },
        "/principals/{group}/members/{member}": {
            "get": operation(
                "GroupMembers_Get",
                "Show a direct member of a group",
                {"200": answer("The membership.", ref("Member")), **failures(400, 404)},
                tag="Principals",
                parameters=member,
            ),
            "put": operation(
                "GroupMembers_Add",
                "Add a member to a group (Owner at /)",
                {**created_or_updated("Member"), **failures(*WRITES, 409)},
                tag="Principals",
                parameters=(*member, "createOnly"),
                body="MemberBody",
            ),
            "delete": operation(
                "GroupMembers_Remove",
                "Remove a member from a group",
                {**deleted("membership"), **failures(*DELETES)},
                tag="Principals",
                parameters=member,
            ),
        },
    }


def _assignments() -> JSON:
    return {
        "/roleAssignments": {
            "get": listing(
                "RoleAssignments_List",
                "Role assignments",
                "RoleAssignment",
                "Role assignments",
                "scope",
                "assignee",
            ),
            "post": operation(
                "RoleAssignments_Create",
                "Grant a role at a scope (Owner at the scope or above)",
                {
                    "200": answer("The same assignment existed.", ref("RoleAssignment")),
                    "201": answer(
                        "The assignment was made; `Location` names it.", ref("RoleAssignment"), "Location"
                    ),
                    **failures(*WRITES),
                },
                tag="Role assignments",
                body="RoleAssignmentBody",
                body_required=True,
                description=(
                    "An assignment's name is a uuid5 of (principal, role, scope): POSTing it again is safe."
                ),
            ),
        },
        "/roleAssignments/{name}": {
            "get": operation(
                "RoleAssignments_Get",
                "Show a role assignment the caller can see",
                {"200": answer("The assignment.", ref("RoleAssignment")), **failures(404)},
                tag="Role assignments",
                parameters=("assignment",),
            ),
            "delete": operation(
                "RoleAssignments_Delete",
                "Revoke a role assignment",
                {**deleted("role assignment"), **failures(*DELETES)},
                tag="Role assignments",
                parameters=("assignment",),
            ),
        },
    }
