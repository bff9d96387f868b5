"""Reading JSON and YAML safely, with the line and column of every problem."""

from __future__ import annotations

import io
import time
import tracemalloc

import pytest

from cluster_pilot.errors import ValidationFailed
from cluster_pilot.manifests import load_paths
from cluster_pilot.manifests.json_reader import read_json
from cluster_pilot.manifests.loader import MAX_BYTES, decode, parse
from cluster_pilot.manifests.yaml_reader import MAX_DEPTH, read_yaml
from tests.unit.manifests_support import errors, objects, only

POD_YAML = """
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: busybox
"""


def test_yaml_positions_of_values_and_keys():
    [doc], found = read_yaml("p.yaml", POD_YAML.lstrip("\n"))
    assert not found
    assert doc.positions.value("/spec/containers/0/image") == (8, 12)
    assert doc.positions.key("/spec/containers/0/image") == (8, 5)
    assert doc.positions.value("/metadata/name") == (4, 9)
    assert doc.positions.value("/spec/containers/0/ports/0") == (7, 5), "a missing node answers with its ancestor"


def test_json_positions_are_computed_only_when_asked_and_are_exact():
    text = '{\n  "id": "a",\n  "desiredState": {"manifest": {"containers": [{"image": "x"}]}}\n}'
    [doc], found = read_json("p.json", text)
    assert not found and doc._positions is None
    assert doc.positions.value("/desiredState/manifest/containers/0/image") == (3, 58)
    assert doc.positions.key("/desiredState") == (3, 3)


def test_json_syntax_error_has_the_real_line_and_column():
    p = only(errors(("bad.json", '{\n  "id": "a",\n  "port": 8O\n}')))
    assert (p.file, p.line, p.column, p.pointer) == ("bad.json", 3, 12, "")
    assert "JSON syntax error" in p.message


def test_yaml_syntax_error_has_the_real_line_and_column():
    p = only(errors(("bad.yaml", "id: a\nports: [1, 2\nport: 3\n")))
    assert (p.line, p.pointer) == (3, "")
    assert "YAML syntax error" in p.message and "flow sequence" in p.message


@pytest.mark.parametrize("name,text,line,pointer", [
    ("d.yaml", "id: a\nport: 80\nid: b\n", 3, "/id"),
    ("d.json", '{"id": "a",\n "port": 80,\n "id": "b"}', 3, "/id"),
    ("d.json", '{"id": "a", "port": 80, "selector": {"x": "1",\n "x": "2"}}', 2, "/selector/x"),
])
def test_duplicate_keys_are_errors_naming_both_lines(name, text, line, pointer):
    p = only(errors((name, text)))
    assert (p.line, p.pointer) == (line, pointer)
    assert "duplicate key" in p.message and "first at line" in p.message


def test_python_tags_are_errors_and_execute_nothing(tmp_path):
    marker = tmp_path / "pwned"
    text = f"""
    id: a
    port: 80
    labels:
      x: !!python/object/apply:os.system ["touch {marker}"]
      y: !!python/name:os.system
    """
    found = errors(("t.yaml", text))
    assert [(p.line, p.pointer) for p in found] == [(4, "/labels/x"), (5, "/labels/y")]
    assert all("!!python/" in p.message and "not allowed" in p.message for p in found)
    assert not marker.exists()


@pytest.mark.parametrize("value", ["!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]", "!custom x"])
def test_other_tags_are_errors(value):
    p = only(errors(("t.yaml", f"id: a\nport: 80\nlabels:\n  x: {value}\n")))
    assert (p.line, p.pointer) == (4, "/labels/x") and "not allowed" in p.message


def test_quoted_and_str_tagged_values_are_strings():
    [svc] = objects(("s.yaml", 'id: a\nport: 80\nlabels: {a: "no", b: !!str 1.10, c: \'on\'}\n'))
    assert svc.meta.labels == {"a": "no", "b": "1.10", "c": "on"}


BILLION_LAUGHS = """
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_is_rejected_fast_and_in_bounded_memory():
    tracemalloc.start()
    started = time.perf_counter()
    found = errors(("bomb.yaml", BILLION_LAUGHS))
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    p = only(found)
    assert "billion laughs" in p.message and p.line == 6
    assert elapsed < 1.0
    assert peak < 20 * 2**20


def test_many_documents_each_below_the_bound_still_share_one_alias_budget():
    doc = "a: &a [" + ",".join(["x"] * 100) + "]\nb: [" + ",".join(["*a"] * 200) + "]\n"
    found = errors(("many.yaml", "---\n".join([doc] * 10)))
    assert any("aliases expand" in p.message for p in found)


def test_aliases_and_merge_keys_read_as_written_and_point_into_the_anchor():
    text = """
    apiVersion: v1
    kind: Pod
    metadata: {name: web}
    spec:
      containers:
      - &first
        name: web
        image: Redis
      - <<: *first
        name: sidecar
    """
    found = errors(("m.yaml", text))
    assert [(p.line, p.pointer) for p in found] == [(8, "/spec/containers/0/image"), (8, "/spec/containers/1/image")]


def test_recursive_alias_is_an_error():
    p = only(errors(("r.yaml", "id: a\nport: 80\nlabels: &l {x: *l}\n")))
    assert "names no anchor" in p.message and p.pointer == "/labels/x"


def test_deep_nesting_is_refused_without_crashing():
    block = "a:\n" + "".join("  " * i + "- \n" for i in range(1, 300))
    flow = "[" * 200_000
    for name, text in (("deep.yaml", flow), ("deep.yaml", block), ("deep.json", flow + "]" * 200_000)):
        p = only(errors((name, text)))
        assert "nested" in p.message or "syntax" in p.message
    [doc], _ = read_yaml("ok.yaml", "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))


@pytest.mark.parametrize("text,line,pointer,expected", [
    ("id: a\nport: 010\n", 2, "/port", "octal"),
    ("id: a\nport: 0x50\n", 2, "/port", "hexadecimal"),
    ("id: a\nport: 1:20\n", 2, "/port", "base-60"),
    ("id: a\nport: .inf\n", 2, "/port", "not a finite"),
    ("id: a\nport: 80\nlabels: {when: 2014-06-06}\n", 3, "/labels/when", "date"),
])
def test_yaml_numbers_that_read_differently_than_they_look_are_errors(text, line, pointer, expected):
    p = only(errors(("n.yaml", text)))
    assert (p.line, p.pointer) == (line, pointer) and expected in p.message


def test_norway_problem_names_the_field():
    text = """
    apiVersion: v1
    kind: Pod
    metadata:
      name: web
      labels:
        country: no
        empty:
    spec:
      containers: [{name: web, image: busybox, env: [{name: DEBUG, value: on}]}]
    """
    found = errors(("norway.yaml", text))
    assert [(p.line, p.pointer) for p in found] == [
        (6, "/metadata/labels/country"), (7, "/metadata/labels/empty"), (9, "/spec/containers/0/env/0/value")]
    assert "the unquoted no is read by YAML as the boolean false" in found[0].message
    assert 'write "no"' in found[0].message
    assert "empty" in found[1].message and 'write ""' in found[1].message


def test_boolean_key_is_an_error():
    p = only(errors(("k.yaml", "id: a\nport: 80\nlabels:\n  on: x\n")))
    assert (p.line, p.pointer) == (4, "/labels/on") and "keys must be strings" in p.message


@pytest.mark.parametrize("name,text", [("e.yaml", ""), ("e.json", "  \n"), ("c.yaml", "# only a comment\n")])
def test_empty_inputs_are_errors(name, text):
    p = only(errors((name, text)))
    assert p.line == 1 and ("empty" in p.message or "no document" in p.message)


@pytest.mark.parametrize("text,what", [("- a\n- b\n", "a list"), ("just text\n", '"just text"'), ("---\n", "empty"),
                                      ("42\n", "42")])
def test_documents_that_are_not_mappings_are_errors(text, what):
    p = only(errors(("x.yaml", text)))
    assert p.pointer == "" and f"the document is {what}" in p.message


def test_json_nan_infinity_and_huge_numbers_are_errors_at_their_place():
    found = errors(("n.json", '{"id": "a",\n "port": NaN,\n "labels": {"a": 1e999}, "x": ' + "1" * 5000 + "}"))
    assert [(p.line, p.pointer) for p in found[:3]] == [(2, "/port"), (3, "/labels/a"), (3, "/x")]


def test_not_utf8_is_an_error_with_its_place():
    text, p = decode("b.json", b'{"id": "a",\n "x": "\xff"}')
    assert p is not None and (p.line, p.column) == (2, 8) and "not UTF-8" in p.message


def test_byte_order_mark_is_accepted():
    text, p = decode("b.json", '\ufeff{"id": "a", "port": 80}'.encode("utf-8"))
    assert p is None and parse("b.json", text)[0][0].data["port"] == 80


def test_files_over_the_size_bound_are_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(ValidationFailed) as failed:
        load_paths([str(big)])
    assert "larger than 5 MiB" in only(failed.value.problems).message


def test_directories_are_read_recursively_and_sorted(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "b" / "svc.yml").write_text("id: b\nport: 81\nselector: {x: y}\n")
    (tmp_path / "a.json").write_text('{"id": "a", "port": 80, "selector": {"x": "y"}}')
    (tmp_path / "notes.txt").write_text("not a manifest")
    (tmp_path / ".hidden" / "c.yaml").write_text("broken: [")
    assert [o.meta.name for o in load_paths([str(tmp_path)], kind_hint="Service")] == ["a", "b"]


def test_stdin_and_missing_files(tmp_path):
    objs = load_paths(["-"], stdin=io.StringIO('{"id": "a", "port": 80, "selector": {"x": "y"}}'))
    assert objs[0].meta.source.file == "<stdin>"
    with pytest.raises(ValidationFailed) as failed:
        load_paths([str(tmp_path / "missing.json"), str(tmp_path)])
    messages = [p.message for p in failed.value.problems]
    assert "cannot read" in messages[0] and "no *.json" in messages[1]


def test_multi_document_stream_keeps_going_after_a_bad_document():
    text = "id: a\nport: 80\nselector: {x: y}\n---\nid: b\nport: eighty\n---\nid: c\nport: 82\nselector: {x: y}\n"
    p = only(errors(("s.yaml", text)))
    assert (p.line, p.pointer) == (6, "/port")


def test_documents_before_a_syntax_error_are_still_checked():
    found = errors(("s.yaml", "id: a\nport: x\n---\nid: b\nport: [\n"))
    assert [(p.line, p.pointer) for p in found] == [(2, "/port"), (6, "")]


def test_floods_of_documents_and_problems_are_cut_short():
    found = errors(("many.yaml", "---\n" * 50_000))
    assert len(found) == 1001 and "only the first 1000" in found[-1].message
    found = errors(("dups.json", '{"id": "x", "port": 80, "labels": {' + ",".join(f'"k{i}": "v", "k{i}": "w"'
                                                                                 for i in range(5000)) + "}}"))
    assert len(found) == 1001 and found[0].pointer == "/labels/k0"
    pod = "---\nid: p{}\ndesiredState: {{manifest: {{containers: [{{image: redis}}]}}}}\n"
    pods = "".join(pod.format(i) for i in range(10_001))
    doc_limit = only(errors(("many.yaml", pods)))
    assert doc_limit.line == 30_001 and "more than 10000 documents" in doc_limit.message
