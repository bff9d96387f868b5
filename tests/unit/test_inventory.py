"""Reading minions from Ansible inventories of every format, and the errors that name file, host and variable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cluster_pilot.errors import UserError
from cluster_pilot.host.inventory import DEFAULT_CAPACITY, load_inventory
from cluster_pilot.model import Resources


def write(path, text: str):
    path.write_text(textwrap.dedent(text))
    return path


def test_yaml_inventory(tmp_path):
    inv = write(tmp_path / "hosts.yml", """\
        all:
          vars:
            ansible_user: deploy
          children:
            minions:
              hosts:
                m1:
                  ansible_host: 10.0.0.1
                  ansible_port: 2222
                  ansible_ssh_private_key_file: /keys/id
                  ansible_ssh_common_args: -o StrictHostKeyChecking=no
                  ansible_python_interpreter: /usr/bin/python3
                  cp_capacity: {cpu: "2000m", memory: 4Gi, pods: 40}
                  cp_labels: {zone: eu-1a, disk: ssd}
                m2:
                  cp_capacity: {cpu: 8}
            other:
              hosts:
                db1:
        """)
    m1, m2 = load_inventory(inv)
    assert m1.name == "m1" and m1.address == "10.0.0.1"
    assert m1.capacity == Resources(cpu_millis=2000, memory_bytes=4 << 30, pods=40)
    assert m1.labels == {"zone": "eu-1a", "disk": "ssd"}
    assert m1.vars == {
        "ansible_user": "deploy", "ansible_host": "10.0.0.1", "ansible_port": 2222,
        "ansible_ssh_private_key_file": "/keys/id", "ansible_ssh_common_args": "-o StrictHostKeyChecking=no",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    assert type(m1.vars["ansible_host"]) is str and m1.ready
    assert m2.address == "m2" and m2.labels == {}
    assert m2.capacity == Resources(cpu_millis=8000, memory_bytes=DEFAULT_CAPACITY.memory_bytes, pods=110)


def test_defaults_when_capacity_is_absent(tmp_path):
    inv = write(tmp_path / "hosts.yml", "minions:\n  hosts:\n    m1:\n")
    (node,) = load_inventory(inv)
    assert node.capacity == DEFAULT_CAPACITY == Resources(2000, 4 << 30, 110)


def test_ini_inventory_with_group_vars_and_children(tmp_path):
    inv = write(tmp_path / "hosts", """\
        [rack1]
        r1 ansible_host=192.168.1.1 cp_labels='{"zone": "z1"}'
        r2 ansible_host=192.168.1.2

        [minions:children]
        rack1

        [minions:vars]
        cp_capacity={"cpu": "1.5", "memory": "512Mi", "pods": "20"}
        ansible_user=core
        """)
    r1, r2 = load_inventory(inv)
    assert (r1.name, r1.address, r1.labels) == ("r1", "192.168.1.1", {"zone": "z1"})
    assert r2.capacity == Resources(1500, 512 << 20, 20)
    assert r2.vars["ansible_user"] == "core"


def test_directory_with_host_and_group_vars(tmp_path):
    write(tmp_path / "10-hosts.yml", "minions:\n  hosts:\n    a:\n    b:\n      ansible_host: 10.1.1.2\n")
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "group_vars").mkdir()
    write(tmp_path / "host_vars" / "a.yml", "cp_labels: {zone: z1}\ncp_capacity: {memory: 2Gi}\n")
    write(tmp_path / "group_vars" / "minions.yml", "ansible_user: ops\n")
    a, b = load_inventory(tmp_path)
    assert a.labels == {"zone": "z1"} and a.capacity.memory_bytes == 2 << 30
    assert a.vars["ansible_user"] == b.vars["ansible_user"] == "ops"
    assert b.address == "10.1.1.2"


def test_templated_values_are_rendered(tmp_path):
    inv = write(tmp_path / "hosts.yml", """\
        all:
          vars:
            domain: example.net
          children:
            minions:
              vars:
                ansible_host: "{{ inventory_hostname }}.{{ domain }}"
                cp_labels: {zone: "zone-{{ inventory_hostname[-1] }}"}
              hosts:
                web1:
        """)
    (node,) = load_inventory(inv)
    assert node.address == "web1.example.net" == node.vars["ansible_host"]
    assert node.labels == {"zone": "zone-1"}


def test_json_inventory_and_label_values_as_written(tmp_path):
    inv = write(tmp_path / "inv.json", '{"minions": {"hosts": {"j1": {"cp_labels": {"gpu": true, "rack": 3}}}}}')
    (node,) = load_inventory(inv)
    assert node.labels == {"gpu": "true", "rack": "3"}


@pytest.mark.parametrize(
    "body, message",
    [
        ("minions:\n  hosts:\n    m1:\n      cp_capacity: {cpu: lots}\n",
         "host m1: cp_capacity.cpu: 'lots' is not a quantity"),
        ("minions:\n  hosts:\n    m1:\n      cp_capacity: {memory: -1Gi}\n", "host m1: cp_capacity.memory: "),
        ("minions:\n  hosts:\n    m1:\n      cp_capacity: {pods: 1.5}\n",
         "host m1: cp_capacity.pods: 1.5 is not a whole number of pods"),
        ("minions:\n  hosts:\n    m1:\n      cp_capacity: {cpus: 2}\n",
         "host m1: cp_capacity.cpus: unknown (expected cpu, memory or pods)"),
        ("minions:\n  hosts:\n    m1:\n      cp_capacity: 4\n", "host m1: cp_capacity must be a mapping"),
        ("minions:\n  hosts:\n    m1:\n      cp_labels: [a, b]\n", "host m1: cp_labels must be a mapping"),
        ("minions:\n  hosts:\n    m1:\n      cp_labels: {zone: {a: 1}}\n", "host m1: cp_labels.zone: "),
    ],
)
def test_bad_variables_name_file_host_and_variable(tmp_path, body, message):
    inv = write(tmp_path / "hosts.yml", body)
    with pytest.raises(UserError) as err:
        load_inventory(inv)
    text = str(err.value)
    assert text.startswith(f"inventory {inv}: ") and message in text and "\n" not in text


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"^inventory .*nope\.yml: no such file or directory$"):
        load_inventory(tmp_path / "nope.yml")


def test_no_minions_group(tmp_path):
    inv = write(tmp_path / "hosts.yml", "webservers:\n  hosts:\n    w1:\n")
    with pytest.raises(UserError, match=r"no group 'minions'"):
        load_inventory(inv)


def test_misspelt_hosts_key_is_an_error_not_an_empty_fleet(tmp_path):
    inv = write(tmp_path / "hosts.yml", "minions:\n  host:\n    m1:\n")
    with pytest.raises(UserError, match=r"group 'minions' has no hosts \(Ansible: Skipping unexpected key \(host\)"):
        load_inventory(inv)


@pytest.mark.parametrize("name, body", [
    ("broken.yml", "minions:\n  hosts:\n    a: [\n"),
    ("hosts.ini", "[minions\nm1\n"),
    ("notes.txt", "this is not = an inventory [\n"),
])
def test_unparsable_inventory_is_one_line_error(tmp_path, name, body):
    inv = write(tmp_path / name, body)
    with pytest.raises(UserError) as err:
        load_inventory(inv)
    assert str(err.value).startswith(f"inventory {inv}: not an inventory Ansible can parse: ")
    assert "\n" not in str(err.value)


def test_ansible_prints_nothing(tmp_path):
    """Odd inventories make Ansible warn on stderr; none of it may reach the terminal."""
    write(tmp_path / "typo.yml", "minions:\n  host:\n    m1:\n")
    write(tmp_path / "broken.yml", "minions: [\n")
    write(tmp_path / "ok.yml", "[weird-group]\nw1\n[minions:children]\nweird-group\n")
    code = (
        "import sys\n"
        "from cluster_pilot.host.inventory import load_inventory\n"
        "from cluster_pilot.errors import UserError\n"
        "for p in sys.argv[1:]:\n"
        "    try: load_inventory(p)\n"
        "    except UserError: pass\n"
    )
    paths = [str(tmp_path / n) for n in ("typo.yml", "broken.yml", "ok.yml")]
    done = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, check=True)
    assert done.stderr == "" and done.stdout == ""
