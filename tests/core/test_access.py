"""Role-based access: inheritance down the scope tree, nested groups and cumulative roles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.access import (
    ROLE_ORDER,
    Action,
    PrincipalType,
    Role,
    RoleAssignment,
    allows,
    can_see,
    check,
    expand_principal,
    least_role_for,
    parse_principal_type,
    parse_role,
    roles_at,
)
from blobrep.core.ids import ResourceId
from blobrep.core.principals import MAX_PRINCIPAL_NAME_LENGTH, validate_principal_name
from blobrep.core.version import ImageVersion
from blobrep.errors import AccessDeniedError, InvalidNameError, InvalidParameterError
from tests.core import strategies

# A small world, so that generated assignments, groups and scopes often meet.
USERS = ("alice", "bob", "carol")
GROUPS = ("devs", "ops", "everyone")
GALLERIES = ("g1", "g2")
IMAGES = ("i1", "i2")
VERSIONS = (ImageVersion(1, 0, 0), ImageVersion(2, 0, 0))

HOME = ResourceId.home()
G1 = ResourceId.of_gallery("g1")
G2 = ResourceId.of_gallery("g2")
G1_I1 = ResourceId.of_image("g1", "i1")
G1_I2 = ResourceId.of_image("g1", "i2")
G1_I1_V1 = ResourceId.of_version("g1", "i1", ImageVersion(1, 0, 0))

Memberships = Mapping[str, Sequence[str]]

#: What each role allows, as the architecture describes it.
DOCUMENTED_ACTIONS: dict[Role, set[Action]] = {
    Role.READER: {Action.READ, Action.DEPLOY},
    Role.CONTRIBUTOR: {Action.READ, Action.DEPLOY, Action.WRITE, Action.DELETE},
    Role.OWNER: set(Action),
}
NO_GROUPS: Memberships = {}

users = st.sampled_from(USERS)
principals = st.sampled_from(USERS + GROUPS)
roles = st.sampled_from(list(Role))
actions = st.sampled_from(list(Action))


@st.composite
def scopes(draw: st.DrawFn) -> ResourceId:
    """Any scope of the small world: the home, a gallery, a definition or a version."""
    depth = draw(st.integers(min_value=0, max_value=3))
    if depth == 0:
        return HOME
    gallery = draw(st.sampled_from(GALLERIES))
    if depth == 1:
        return ResourceId.of_gallery(gallery)
    image = draw(st.sampled_from(IMAGES))
    if depth == 2:
        return ResourceId.of_image(gallery, image)
    return ResourceId.of_version(gallery, image, draw(st.sampled_from(VERSIONS)))


assignment_lists = st.lists(st.builds(RoleAssignment, principals, roles, scopes()), max_size=8)
# Groups may contain users, other groups, themselves, and each other (cycles).
membership_maps = st.dictionaries(
    st.sampled_from(GROUPS), st.lists(st.sampled_from(USERS + GROUPS), max_size=4)
)


def reference_holders(principal: str, memberships: Memberships) -> set[str]:
    """The principal and its groups, by growing the set until nothing more joins."""
    holders = {principal}
    changed = True
    while changed:
        changed = False
        for group, members in memberships.items():
            if group not in holders and holders.intersection(members):
                holders.add(group)
                changed = True
    return holders


def reference_covers(assigned: ResourceId, scope: ResourceId) -> bool:
    """Whether an assignment at ``assigned`` reaches ``scope``, judged on the id's text."""
    outer, inner = str(assigned), str(scope)
    return outer == "/" or inner == outer or inner.startswith(outer + "/")


def reference_allows(
    principal: str,
    action: Action,
    scope: ResourceId,
    assignments: Sequence[RoleAssignment],
    memberships: Memberships,
) -> bool:
    holders = reference_holders(principal, memberships)
    return any(
        a.principal in holders and reference_covers(a.scope, scope) and action in DOCUMENTED_ACTIONS[a.role]
        for a in assignments
    )


# --- the roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_each_role_allows_exactly_its_documented_actions(role: Role) -> None:
    assignments = [RoleAssignment("alice", role, G1)]
    for action in Action:
        expected = action in DOCUMENTED_ACTIONS[role]
        assert allows("alice", action, G1, assignments, NO_GROUPS) == expected, action


@pytest.mark.parametrize(
    ("action", "role"),
    [
        (Action.READ, Role.READER),
        (Action.DEPLOY, Role.READER),
        (Action.WRITE, Role.CONTRIBUTOR),
        (Action.DELETE, Role.CONTRIBUTOR),
        (Action.MANAGE_ACCESS, Role.OWNER),
    ],
)
def test_least_role_for_names_the_weakest_role_that_allows_the_action(action: Action, role: Role) -> None:
    assert least_role_for(action) is role
    assert allows("alice", action, G1, [RoleAssignment("alice", role, G1)], NO_GROUPS)


def test_no_assignment_means_nothing_is_allowed() -> None:
    for action in Action:
        assert not allows("alice", action, HOME, [], NO_GROUPS)
        assert not allows("alice", action, G1_I1_V1, [], NO_GROUPS)


@given(
    principal=users,
    scope=scopes(),
    assignments=assignment_lists.filter(bool),
    memberships=membership_maps,
    data=st.data(),
)
def test_raising_any_assignment_one_role_never_takes_an_action_away(
    principal: str,
    scope: ResourceId,
    assignments: list[RoleAssignment],
    memberships: Memberships,
    data: st.DataObject,
) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(assignments) - 1), label="index")
    old = assignments[index]
    if old.role is Role.OWNER:
        return
    stronger = ROLE_ORDER[ROLE_ORDER.index(old.role) + 1]
    raised = [
        *assignments[:index],
        RoleAssignment(old.principal, stronger, old.scope),
        *assignments[index + 1 :],
    ]
    for action in Action:
        if allows(principal, action, scope, assignments, memberships):
            assert allows(principal, action, scope, raised, memberships), (action, stronger)


@given(principal=users, scope=scopes(), memberships=membership_maps, role=roles, assigned=scopes())
def test_a_stronger_role_in_the_same_place_allows_everything_a_weaker_one_does(
    principal: str, scope: ResourceId, memberships: Memberships, role: Role, assigned: ResourceId
) -> None:
    for stronger in ROLE_ORDER[ROLE_ORDER.index(role) :]:
        weak = [RoleAssignment(principal, role, assigned)]
        strong = [RoleAssignment(principal, stronger, assigned)]
        for action in Action:
            if allows(principal, action, scope, weak, memberships):
                assert allows(principal, action, scope, strong, memberships)


# --- inheritance down the scope tree -------------------------------------------------------------


@given(
    image=strategies.image_names(20),
    version=strategies.versions,
    role=roles,
)
def test_a_role_at_a_gallery_applies_to_every_definition_and_version_in_it(
    image: str, version: ImageVersion, role: Role
) -> None:
    assignments = [RoleAssignment("alice", role, G1)]
    for scope in (ResourceId.of_image("g1", image), ResourceId.of_version("g1", image, version)):
        assert roles_at("alice", scope, assignments, NO_GROUPS) == {role}
        for action in Action:
            expected = action in DOCUMENTED_ACTIONS[role]
            assert allows("alice", action, scope, assignments, NO_GROUPS) == expected


@given(scope=scopes(), role=roles)
def test_a_role_at_the_home_applies_everywhere(scope: ResourceId, role: Role) -> None:
    assert roles_at("alice", scope, [RoleAssignment("alice", role, HOME)], NO_GROUPS) == {role}


@pytest.mark.parametrize("role", list(Role))
def test_a_role_never_applies_upwards(role: Role) -> None:
    on_version = [RoleAssignment("alice", role, G1_I1_V1)]
    on_image = [RoleAssignment("alice", role, G1_I1)]
    for scope in (G1_I1, G1, HOME):
        assert roles_at("alice", scope, on_version, NO_GROUPS) == frozenset()
        assert not allows("alice", Action.READ, scope, on_version, NO_GROUPS)
    for scope in (G1, HOME):
        assert not allows("alice", Action.READ, scope, on_image, NO_GROUPS)


@pytest.mark.parametrize("sibling", ["g2", "g10", "g1.x", "g1_", "G1"])
def test_a_role_at_a_gallery_does_not_reach_a_sibling_gallery(sibling: str) -> None:
    assignments = [RoleAssignment("alice", Role.OWNER, G1)]
    for scope in (
        ResourceId.of_gallery(sibling),
        ResourceId.of_image(sibling, "i1"),
        ResourceId.of_version(sibling, "i1", ImageVersion(1, 0, 0)),
    ):
        assert roles_at("alice", scope, assignments, NO_GROUPS) == frozenset()
        for action in Action:
            assert not allows("alice", action, scope, assignments, NO_GROUPS)


def test_a_role_at_a_definition_does_not_reach_a_sibling_definition() -> None:
    assignments = [RoleAssignment("alice", Role.CONTRIBUTOR, G1_I1)]
    assert allows("alice", Action.WRITE, G1_I1_V1, assignments, NO_GROUPS)
    assert not allows("alice", Action.READ, G1_I2, assignments, NO_GROUPS)
    assert not allows("alice", Action.READ, ResourceId.of_image("g1", "i10"), assignments, NO_GROUPS)


def test_roles_held_along_the_lineage_and_through_groups_add_up() -> None:
    assignments = [
        RoleAssignment("alice", Role.READER, G1),
        RoleAssignment("devs", Role.CONTRIBUTOR, G1_I1),
        RoleAssignment("alice", Role.OWNER, G2),
    ]
    groups = {"devs": ["alice"]}
    assert roles_at("alice", G1_I1_V1, assignments, groups) == {Role.READER, Role.CONTRIBUTOR}
    assert roles_at("alice", G1, assignments, groups) == {Role.READER}
    assert roles_at("alice", G1_I2, assignments, groups) == {Role.READER}
    assert roles_at("bob", G1_I1_V1, assignments, groups) == frozenset()


def test_a_role_for_one_principal_is_not_held_by_another() -> None:
    assignments = [RoleAssignment("alice", Role.OWNER, HOME)]
    assert allows("alice", Action.DELETE, G1, assignments, NO_GROUPS)
    assert not allows("bob", Action.READ, G1, assignments, NO_GROUPS)
    assert not allows("Alice", Action.READ, G1, assignments, NO_GROUPS)


def test_a_role_given_to_a_member_is_not_held_by_its_group_or_the_other_members() -> None:
    assignments = [RoleAssignment("alice", Role.OWNER, G1)]
    groups = {"devs": ["alice", "bob"]}
    assert not allows("devs", Action.READ, G1, assignments, groups)
    assert not allows("bob", Action.READ, G1, assignments, groups)


@given(
    principal=users,
    action=actions,
    scope=scopes(),
    assignments=assignment_lists,
    memberships=membership_maps,
)
def test_allows_agrees_with_a_brute_force_reference(
    principal: str,
    action: Action,
    scope: ResourceId,
    assignments: list[RoleAssignment],
    memberships: Memberships,
) -> None:
    expected = reference_allows(principal, action, scope, assignments, memberships)
    assert allows(principal, action, scope, assignments, memberships) == expected
    assert allows(principal, action, scope, iter(assignments), memberships) == expected


@pytest.mark.parametrize("function", [roles_at, can_see])
def test_latest_is_not_a_scope(function: object) -> None:
    assert callable(function)
    latest = ResourceId.parse("/galleries/g1/images/i1/versions/latest")
    assignments = [RoleAssignment("alice", Role.OWNER, HOME)]
    with pytest.raises(InvalidParameterError, match="latest"):
        function("alice", latest, assignments, NO_GROUPS)


def test_allows_and_check_refuse_latest_rather_than_guess_a_version() -> None:
    latest = ResourceId.parse("/galleries/g1/images/i1/versions/latest")
    assignments = [RoleAssignment("alice", Role.OWNER, HOME)]
    with pytest.raises(InvalidParameterError, match="latest"):
        allows("alice", Action.DEPLOY, latest, assignments, NO_GROUPS)
    with pytest.raises(InvalidParameterError, match="latest"):
        check("alice", Action.DEPLOY, latest, assignments, NO_GROUPS)


def test_an_assignment_at_latest_grants_nothing() -> None:
    latest = ResourceId.parse("/galleries/g1/images/i1/versions/latest")
    assignments = [RoleAssignment("alice", Role.OWNER, latest)]
    assert not allows("alice", Action.READ, G1_I1_V1, assignments, NO_GROUPS)
    assert not can_see("alice", G1, assignments, NO_GROUPS)


# --- groups ---------------------------------------------------------------------------------------


def test_a_role_given_to_a_group_reaches_members_of_nested_groups() -> None:
    groups = {"everyone": ["engineering"], "engineering": ["devs"], "devs": ["alice"]}
    assignments = [RoleAssignment("everyone", Role.READER, G1)]
    assert expand_principal("alice", groups) == {"alice", "devs", "engineering", "everyone"}
    assert allows("alice", Action.DEPLOY, G1_I1_V1, assignments, groups)
    assert not allows("alice", Action.WRITE, G1_I1_V1, assignments, groups)
    assert not allows("bob", Action.READ, G1, assignments, groups)


def test_group_cycles_terminate_and_give_the_right_answer() -> None:
    groups = {"devs": ["ops"], "ops": ["devs", "alice"], "everyone": ["everyone"]}
    assert expand_principal("alice", groups) == {"alice", "devs", "ops"}
    assert expand_principal("bob", groups) == {"bob"}
    assert expand_principal("everyone", groups) == {"everyone"}
    assignments = [RoleAssignment("devs", Role.CONTRIBUTOR, G1), RoleAssignment("everyone", Role.OWNER, HOME)]
    assert allows("alice", Action.WRITE, G1_I1, assignments, groups)
    assert not allows("alice", Action.MANAGE_ACCESS, G1_I1, assignments, groups)
    assert not allows("bob", Action.READ, G1_I1, assignments, groups)


def test_a_principal_in_no_group_expands_to_itself() -> None:
    assert expand_principal("alice", NO_GROUPS) == {"alice"}
    assert expand_principal("alice", {"devs": ["bob"]}) == {"alice"}


@given(principal=principals, memberships=membership_maps)
def test_expand_principal_finds_exactly_the_groups_reachable_upwards(
    principal: str, memberships: Memberships
) -> None:
    assert expand_principal(principal, memberships) == reference_holders(principal, memberships)


@given(
    principal=users,
    action=actions,
    scope=scopes(),
    assignments=assignment_lists,
    memberships=membership_maps,
    group=st.sampled_from(GROUPS),
    member=st.sampled_from(USERS + GROUPS),
)
def test_adding_a_membership_never_takes_an_action_away(
    principal: str,
    action: Action,
    scope: ResourceId,
    assignments: list[RoleAssignment],
    memberships: Memberships,
    group: str,
    member: str,
) -> None:
    grown = {**memberships, group: [*memberships.get(group, []), member]}
    if allows(principal, action, scope, assignments, memberships):
        assert allows(principal, action, scope, assignments, grown)


# --- check: the refusal a user reads -------------------------------------------------------------


def test_check_says_who_what_where_what_is_held_and_what_is_needed() -> None:
    assignments = [RoleAssignment("bob", Role.READER, G1)]
    with pytest.raises(AccessDeniedError) as caught:
        check("bob", Action.WRITE, ResourceId.of_image("g1", "i"), assignments, NO_GROUPS)
    assert str(caught.value) == (
        "principal 'bob' may not write to /galleries/g1/images/i: it holds Reader there;"
        " Contributor or Owner at that scope or above is needed"
    )


@pytest.mark.parametrize(
    ("action", "verb", "needed"),
    [
        (Action.READ, "may not read /galleries/g2", "Reader, Contributor or Owner at"),
        (Action.DEPLOY, "may not deploy from /galleries/g2", "Reader, Contributor or Owner at"),
        (Action.WRITE, "may not write to /galleries/g2", "Contributor or Owner at"),
        (Action.DELETE, "may not delete /galleries/g2", "Contributor or Owner at"),
        (Action.MANAGE_ACCESS, "may not manage access at /galleries/g2", "; Owner at"),
    ],
)
def test_check_phrases_each_action_and_the_roles_that_would_allow_it(
    action: Action, verb: str, needed: str
) -> None:
    assignments = [RoleAssignment("alice", Role.OWNER, G1)]
    with pytest.raises(AccessDeniedError) as caught:
        check("alice", action, G2, assignments, NO_GROUPS)
    message = str(caught.value)
    assert verb in message
    assert "it holds no role there" in message
    assert needed in message


def test_check_lists_every_role_held_including_through_groups() -> None:
    assignments = [RoleAssignment("alice", Role.READER, G1), RoleAssignment("devs", Role.CONTRIBUTOR, G1_I1)]
    with pytest.raises(AccessDeniedError) as caught:
        check("alice", Action.MANAGE_ACCESS, G1_I1_V1, assignments, {"devs": ["alice"]})
    assert "it holds Reader and Contributor there; Owner at that scope or above is needed" in str(
        caught.value
    )


@given(
    principal=users,
    action=actions,
    scope=scopes(),
    assignments=assignment_lists,
    memberships=membership_maps,
)
def test_check_passes_exactly_when_allowed_and_otherwise_names_principal_scope_and_role(
    principal: str,
    action: Action,
    scope: ResourceId,
    assignments: list[RoleAssignment],
    memberships: Memberships,
) -> None:
    if allows(principal, action, scope, assignments, memberships):
        check(principal, action, scope, assignments, memberships)
        return
    with pytest.raises(AccessDeniedError) as caught:
        check(principal, action, scope, assignments, memberships)
    message = str(caught.value)
    assert f"principal {principal!r}" in message
    assert f" {scope}: " in message
    needed = message.rsplit("; ", 1)[1]
    assert needed.startswith(least_role_for(action).value)
    assert needed.endswith("at that scope or above is needed")


# --- can_see: what shows up in a listing ---------------------------------------------------------


def test_a_reader_of_one_definition_sees_the_path_to_it_and_nothing_beside_it() -> None:
    assignments = [RoleAssignment("alice", Role.READER, G1_I1)]
    for scope in (HOME, G1, G1_I1, G1_I1_V1):
        assert can_see("alice", scope, assignments, NO_GROUPS), scope
    for scope in (G2, G1_I2, ResourceId.of_image("g2", "i1")):
        assert not can_see("alice", scope, assignments, NO_GROUPS), scope
    # Seeing the gallery on the way grants nothing in it.
    assert not allows("alice", Action.READ, G1, assignments, NO_GROUPS)


def test_a_group_role_below_a_gallery_makes_the_gallery_visible_to_members() -> None:
    assignments = [RoleAssignment("ops", Role.CONTRIBUTOR, G1_I1_V1)]
    groups = {"ops": ["bob"]}
    assert can_see("bob", G1, assignments, groups)
    assert can_see("bob", G1_I1, assignments, groups)
    assert not can_see("carol", G1, assignments, groups)


@given(principal=users, scope=scopes(), assignments=assignment_lists, memberships=membership_maps)
def test_can_see_means_may_read_or_holds_a_role_strictly_below(
    principal: str, scope: ResourceId, assignments: list[RoleAssignment], memberships: Memberships
) -> None:
    holders = reference_holders(principal, memberships)
    below = any(
        a.principal in holders and a.scope != scope and reference_covers(scope, a.scope) for a in assignments
    )
    expected = below or reference_allows(principal, Action.READ, scope, assignments, memberships)
    assert can_see(principal, scope, assignments, memberships) == expected
    for assignment in assignments:
        if assignment.principal in holders:
            for ancestor in assignment.scope.lineage():
                assert can_see(principal, ancestor, assignments, memberships)


# --- names and choices ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["alice", "alice@contoso.com", "build-pipeline", "sp.deploy", "A", "7", "svc_1", "a-"]
)
def test_ordinary_principal_names_are_accepted(name: str) -> None:
    assert validate_principal_name(name) == name


@given(name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}", fullmatch=True))
def test_principal_names_of_the_pattern_are_accepted(name: str) -> None:
    assert validate_principal_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "-alice",
        ".alice",
        "_alice",
        "@contoso",
        "al ice",
        "alice/bob",
        "alice\n",
        "al:ice",
        "ali\u00e7e",
        "a\x00",
    ],
)
def test_bad_principal_names_are_refused_naming_them_and_the_rule(name: str) -> None:
    with pytest.raises(InvalidNameError) as caught:
        validate_principal_name(name)
    message = str(caught.value)
    assert repr(name) in message
    assert "principal" in message
    assert "starting with a letter or digit" in message


def test_principal_names_may_be_128_characters_and_no_more() -> None:
    assert MAX_PRINCIPAL_NAME_LENGTH == 128
    longest = "a" * 128
    assert validate_principal_name(longest) == longest
    with pytest.raises(InvalidNameError) as caught:
        validate_principal_name(longest + "a")
    assert "129" in str(caught.value)
    assert "128" in str(caught.value)


def test_an_empty_principal_name_is_refused() -> None:
    with pytest.raises(InvalidNameError, match="empty"):
        validate_principal_name("")


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("Reader", Role.READER),
        ("reader", Role.READER),
        ("CONTRIBUTOR", Role.CONTRIBUTOR),
        ("owner", Role.OWNER),
    ],
)
def test_roles_parse_in_any_letter_case(text: str, role: Role) -> None:
    assert parse_role(text) is role


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("user", PrincipalType.USER),
        ("USER", PrincipalType.USER),
        ("serviceprincipal", PrincipalType.SERVICE_PRINCIPAL),
        ("servicePrincipal", PrincipalType.SERVICE_PRINCIPAL),
        ("Group", PrincipalType.GROUP),
    ],
)
def test_principal_types_parse_in_any_letter_case(text: str, kind: PrincipalType) -> None:
    assert parse_principal_type(text) is kind


def test_an_unknown_role_is_refused_listing_the_roles() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_role("Admin")
    message = str(caught.value)
    assert "'Admin'" in message
    for role in Role:
        assert role.value in message


def test_an_unknown_principal_type_is_refused_listing_the_types() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_principal_type("robot")
    message = str(caught.value)
    assert "'robot'" in message
    for kind in PrincipalType:
        assert kind.value in message
