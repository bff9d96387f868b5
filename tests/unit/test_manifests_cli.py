"""``cluster-pilot validate`` and ``cluster-pilot schema``: what they print and how they exit."""

from __future__ import annotations

import io
import json

import pytest

from cluster_pilot.cli import cli, run
from cluster_pilot.manifests import schema
from cluster_pilot.resources import resource_dir

EXAMPLES = resource_dir("examples")


def cp(capsys, *args: str) -> tuple[int, str, str]:
    code = run(cli, "cluster-pilot", list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def bad(tmp_path):
    (tmp_path / "pod.json").write_text('{\n  "id": "web",\n  "desiredState": {"manifest": {"containers": [\n'
                                       '    {"image": "busybox", "ports": [{"containerPort": "80a"}]}]}}\n}')
    (tmp_path / "svc.yaml").write_text("id: web\nport: 80\nselector: {app: nothing}\nlabels: {country: no}\n")
    return tmp_path


def test_success_is_one_line_and_exit_0(capsys):
    code, out, err = cp(capsys, "validate", str(EXAMPLES / "seed-2014"), "-f", str(EXAMPLES / "guestbook" / "v1beta1"))
    assert code == 0 and err == ""
    assert out == "ok: 8 objects (2 Pod, 3 ReplicationController, 3 Service) in 8 files\n"


def test_every_error_one_per_line_exit_1_no_traceback(capsys, bad):
    code, out, err = cp(capsys, "validate", str(bad))
    assert code == 1 and "Traceback" not in out + err
    assert out.splitlines() == [
        f'{bad}/pod.json:4:54: /desiredState/manifest/containers/0/ports/0/containerPort: "80a" is not an integer',
        f"{bad}/svc.yaml:4:19: /labels/country: the unquoted no is read by YAML as the boolean false, not a string: "
        'write "no" in quotes',
    ]
    assert err == "2 errors\n"


def test_json_output(capsys, bad):
    code, out, _ = cp(capsys, "validate", "-o", "json", str(bad / "pod.json"))
    assert code == 1
    assert json.loads(out) == [{"file": str(bad / "pod.json"), "line": 4, "column": 54, "severity": "error",
                                "pointer": "/desiredState/manifest/containers/0/ports/0/containerPort",
                                "message": '"80a" is not an integer'}]
    code, out, _ = cp(capsys, "validate", "--format", "json", str(EXAMPLES / "guestbook" / "v1"))
    assert code == 0 and json.loads(out) == []


def test_github_annotations(capsys, bad):
    code, out, _ = cp(capsys, "validate", "--format", "github", str(bad / "pod.json"))
    assert code == 1
    assert out == (f"::error file={bad}/pod.json,line=4,col=54,title=/desiredState/manifest/containers/0/ports/0/"
                   'containerPort::"80a" is not an integer\n')


def test_warnings_are_printed_on_success(capsys, tmp_path):
    (tmp_path / "s.json").write_text('{"id": "s", "port": 80, "selector": {"app": "x"}}')
    code, out, _ = cp(capsys, "validate", str(tmp_path / "s.json"))
    assert code == 0
    assert out.splitlines() == [f"{tmp_path}/s.json:1:37: /selector: warning: the selector {{app=x}} matches no pod or "
                                "controller template in these inputs", "ok: 1 object (1 Service) in 1 file"]


def test_stdin_and_kind(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO('{"id": "s", "port": 80, "labels": {"a": "b"}}'))
    code, out, _ = cp(capsys, "validate", "-f", "-", "--kind", "Service")
    assert code == 0 and out.endswith("ok: 1 object (1 Service) in 1 file\n")


def test_usage_errors_are_one_line(capsys, tmp_path):
    code, _, err = cp(capsys, "validate")
    assert code == 1 and "give at least one manifest" in err and len(err.splitlines()) == 1
    code, _, err = cp(capsys, "validate", "--kind", "Deployment", str(tmp_path))
    assert code == 1 and "not a kind" in err and "Traceback" not in err
    code, _, err = cp(capsys, "validate", "-o", "json", "--format", "github", str(tmp_path))
    assert code == 1 and "disagree" in err


def test_schema_prints_the_shipped_schema(capsys):
    code, out, _ = cp(capsys, "schema", "pod", "--api-version", "v1")
    assert code == 0
    assert json.loads(out) == schema.schema_of("v1", "Pod") and "defs.json" not in out
    assert json.loads(out)["$defs"]["container"] == schema.definitions("v1")["container"]
    code, out, _ = cp(capsys, "schema", "ReplicationController")
    assert code == 0 and json.loads(out)["title"] == "ReplicationController (v1beta1)"
    code, out, _ = cp(capsys, "schema")
    assert code == 0 and len(out.splitlines()) == 8
    code, _, err = cp(capsys, "schema", "Deployment")
    assert code == 1 and "no schema for 'Deployment'" in err


def test_bench_manifests_runs(capsys):
    code, out, _ = cp(capsys, "bench", "manifests", "--objects", "30")
    assert code == 0 and out.startswith("validated 30 objects (10 Pod, 10 ReplicationController, 10 Service)")
