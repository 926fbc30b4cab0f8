"""``-o json|table|tsv|yaml`` and ``--query`` as ``az`` has them: the same result in each
format, a JMESPath query applied before formatting, a bad query refused before anything runs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.cli.output import compile_query, render, to_tsv
from blobrep.errors import InvalidParameterError
from tests.cli.helpers import assert_one_line_error, blobrep

GALLERIES = ("alpha", "beta", "gamma")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("formats")
    for name in GALLERIES:
        result = blobrep(
            "--home", "h", "sig", "create", "-r", name, "--description", f"the {name} team", cwd=root
        )
        assert result.returncode == 0, result.stderr
    return root


def rendered(
    document: Any, output: str, query: str | None = None, rows: list[dict[str, Any]] | None = None
) -> str:
    stream = io.StringIO()
    render(document, rows or [], output, None if query is None else compile_query(query), stream)
    return stream.getvalue()


# --- the formats, on their own -------------------------------------------------------------


def test_tsv_prints_a_line_per_item_and_the_values_without_keys() -> None:
    document = [
        {"name": "a", "count": 2, "ok": True, "missing": None, "nested": {"x": 1}, "list": [1, 2, 3]},
        {"name": "b", "count": 0, "ok": False, "missing": None, "nested": {}, "list": []},
    ]

    assert to_tsv(document) == "a\t2\ttrue\t\t\t3\nb\t0\tfalse\t\t\t0\n"
    assert to_tsv({"name": "one"}) == "one\n"
    assert to_tsv(["x", "y"]) == "x\ny\n"
    assert to_tsv("scalar") == "scalar\n"
    assert to_tsv([]) == ""


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(document=json_values)
def test_yaml_and_json_read_back_as_the_same_document(document: Any) -> None:
    assert yaml.safe_load(rendered(document, "yaml")) == document
    assert json.loads(rendered(document, "json")) == document


def test_a_query_selects_before_any_format_and_a_table_shows_what_it_selected() -> None:
    document = [{"name": "a", "size": 1}, {"name": "b", "size": 2}]
    rows = [{"only": "the command's own rows"}]

    assert json.loads(rendered(document, "json", "[?size > `1`].name")) == ["b"]
    assert rendered(document, "tsv", "[].name") == "a\nb\n"
    assert rendered(document, "table", "[].{n: name}", rows).splitlines() == ["n", "-", "a", "b"]
    assert rendered(document, "table", "length(@)", rows).splitlines() == ["Result", "------", "     2"]
    assert rendered(document, "table", None, rows).splitlines()[2] == "the command's own rows"


def test_a_query_that_fails_on_the_result_names_itself() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        rendered({"name": "a"}, "json", "abs(name)")

    assert "--query 'abs(name)' fails on this result" in str(caught.value)


def test_results_built_of_tuples_are_lists_to_every_format_and_query() -> None:
    document = {"name": "vm", "disks": ({"lun": 0, "parts": (1, 2)}, {"lun": 3, "parts": ()})}

    assert json.loads(rendered(document, "json", "disks[].lun")) == [0, 3]
    assert json.loads(rendered(document, "json", "length(disks)")) == 2
    assert yaml.safe_load(rendered(document, "yaml")) == {
        "name": "vm",
        "disks": [{"lun": 0, "parts": [1, 2]}, {"lun": 3, "parts": []}],
    }
    assert rendered(document, "tsv") == "vm\t2\n"


def test_a_table_shows_nested_values_as_json_and_a_list_per_item_as_columns() -> None:
    document = [{"name": "a", "regions": ["x", "y"]}, {"name": "b", "regions": []}]

    assert rendered(document, "table", "[].[name, regions]").splitlines() == [
        "Column1  Column2",
        "-------  ----------",
        'a        ["x", "y"]',
        "b        []",
    ]
    assert rendered(document, "table", "[].{n: name, r: {first: regions[0]}}").splitlines()[2:] == [
        'a  {"first": "x"}',
        'b  {"first": null}',
    ]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("foo(@)", "unknown function foo(): JMESPath's functions are abs, avg"),
        ("[].{a: nope(name)}", "unknown function nope()"),
        ("length(@, @)", "length() takes 1 argument(s), not 2"),
        ("max_by(@)", "max_by() takes 2 argument(s), not 1"),
        ("not_null()", "not_null() takes at least 1 argument(s), not 0"),
    ],
)
def test_a_function_jmespath_lacks_or_a_wrong_argument_count_is_refused_at_compile(
    query: str, words: str
) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        compile_query(query)
    assert compile_query("not_null(a, b, c)").search({"b": 1}) == 1


# --- the command line -------------------------------------------------------------------


def test_every_format_prints_the_same_galleries(home: Path) -> None:
    as_json = json.loads(blobrep("--home", "h", "sig", "list", cwd=home).stdout)
    as_yaml = yaml.safe_load(blobrep("--home", "h", "-o", "yaml", "sig", "list", cwd=home).stdout)
    as_tsv = blobrep("--home", "h", "-o", "tsv", "sig", "list", cwd=home).stdout.splitlines()

    assert [gallery["name"] for gallery in as_json] == list(GALLERIES)
    assert as_yaml == as_json
    assert [line.split("\t") for line in as_tsv] == [
        ["" if value is None else str(value) for value in gallery.values()] for gallery in as_json
    ]


def test_a_query_picks_values_for_a_shell_loop(home: Path) -> None:
    names = blobrep("--home", "h", "--query", "[].name", "-o", "tsv", "sig", "list", cwd=home)
    one = blobrep("--home", "h", "--query", "description", "-o", "tsv", "sig", "show", "-r", "beta", cwd=home)
    shaped = blobrep("--home", "h", "--query", "[?starts_with(name, 'g')].{id: id}", "sig", "list", cwd=home)

    assert names.stdout == "alpha\nbeta\ngamma\n"
    assert one.stdout == "the beta team\n"
    assert json.loads(shaped.stdout) == [{"id": "/galleries/gamma"}]


@pytest.mark.parametrize("query", ["[?name=='a'", "[].name}", "", "foo[", "`not json"])
def test_a_query_that_is_not_jmespath_is_refused_before_the_command_runs(home: Path, query: str) -> None:
    result = blobrep("--home", "h", "--query", query, "sig", "create", "-r", "delta", cwd=home)

    assert_one_line_error(result, 2, "--query", "is not a JMESPath expression", '"[].name"')
    assert (
        "delta"
        not in blobrep("--home", "h", "--query", "[].name", "-o", "tsv", "sig", "list", cwd=home).stdout
    )


def test_an_unknown_function_is_refused_before_the_command_runs(home: Path) -> None:
    result = blobrep("--home", "h", "--query", "foo(@)", "sig", "create", "-r", "epsilon", cwd=home)

    assert_one_line_error(result, 2, "'foo(@)' is not a JMESPath expression", "unknown function foo()")
    assert (
        "epsilon"
        not in blobrep("--home", "h", "-o", "tsv", "--query", "[].name", "sig", "list", cwd=home).stdout
    )


def test_a_query_that_fails_on_the_result_is_one_line(home: Path) -> None:
    result = blobrep("--home", "h", "--query", "abs(name)", "sig", "show", "-r", "alpha", cwd=home)

    assert_one_line_error(result, 2, "--query 'abs(name)' fails on this result", "abs()")
    assert "the command itself succeeded" in result.stderr


def test_blob_commands_take_the_formats_too(home: Path, tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(bytes(range(256)) * 4096)
    where = ("--store", tmp_path / "store", "--gallery", "g", "--name", "img/versions/1.0.0")
    published = blobrep(
        "--query", "{chunks: chunks, size: size}", "-o", "yaml", "blob", "publish", *where, image, cwd=home
    )
    verified = blobrep("--query", "ok", "-o", "tsv", "blob", "verify", *where, cwd=home)

    assert yaml.safe_load(published.stdout) == {"chunks": 1, "size": image.stat().st_size}
    assert verified.stdout == "true\n"


@pytest.mark.parametrize("misplaced", [("--query", "[].name"), ("-o", "table"), ("--as", "alice")])
def test_an_option_of_blobrep_itself_after_the_command_says_where_it_goes(
    home: Path, misplaced: tuple[str, str]
) -> None:
    result = blobrep("--home", "h", "sig", "list", *misplaced, cwd=home)
    option = misplaced[0]
    assert_one_line_error(
        result,
        2,
        f"{option} is an option of blobrep itself and goes before the command: blobrep {option} ...",
    )
