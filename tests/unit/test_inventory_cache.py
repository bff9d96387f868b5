"""The inventory cache: a plain file seen before is read back as the same nodes, never stale, never for an
inventory whose parse depends on more than its own bytes."""

from __future__ import annotations

import textwrap

import pytest

from cluster_pilot.host.inventory import load_inventory
from cluster_pilot.host.inventory_cache import load_inventory_cached

INVENTORY = """\
    all:
      children:
        minions:
          hosts:
            m1: {ansible_host: 10.0.0.1, ansible_port: 2222, ansible_user: root, cp_labels: {zone: eu-1a},
                 cp_capacity: {cpu: "2000m", memory: 4Gi, pods: 40}}
            m2: {}
    """


def _write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_a_plain_file_is_read_back_from_the_cache_as_the_same_nodes(tmp_path):
    inv, cache = _write(tmp_path / "hosts.yml", INVENTORY), tmp_path / "cache"
    first = load_inventory_cached(inv, cache)
    assert len(list(cache.glob("inventory-*.json"))) == 1
    again = load_inventory_cached(inv, cache)
    assert again == first == load_inventory(inv)
    assert [n.vars for n in again] == [n.vars for n in first]
    assert again[0].vars["ansible_port"] == 2222 and again[0].labels == {"zone": "eu-1a"}
    entry = next(cache.glob("inventory-*.json"))
    entry.write_text(entry.read_text().replace("10.0.0.1", "10.0.0.2"))  # proof that the entry is what is read
    assert load_inventory_cached(inv, cache)[0].address == "10.0.0.2"


def test_a_changed_file_is_parsed_again(tmp_path):
    inv, cache = _write(tmp_path / "hosts.yml", INVENTORY), tmp_path / "cache"
    load_inventory_cached(inv, cache)
    _write(inv, INVENTORY.replace("10.0.0.1", "10.0.0.9"))
    assert load_inventory_cached(inv, cache)[0].address == "10.0.0.9"
    assert len(list(cache.glob("inventory-*.json"))) == 1  # the changed file replaced its entry


def test_the_cache_is_private(tmp_path):
    inv, cache = _write(tmp_path / "hosts.yml", INVENTORY), tmp_path / "cache"
    load_inventory_cached(inv, cache)
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    assert [oct(e.stat().st_mode & 0o777) for e in cache.iterdir()] == ["0o600"]


@pytest.mark.parametrize("marker", ["$ANSIBLE_VAULT;1.1;AES256", "!vault |", "plugin: community.general.foo"])
def test_vaulted_and_plugin_inventories_are_never_cached(tmp_path, marker):
    inv = _write(tmp_path / "hosts.yml", INVENTORY + f"\n# {marker}\n")
    assert load_inventory_cached(inv, tmp_path / "cache") == load_inventory(inv)
    assert not (tmp_path / "cache").exists()


def test_templates_and_vars_directories_are_never_cached(tmp_path):
    cache = tmp_path / "cache"
    templated = _write(tmp_path / "t.yml", INVENTORY.replace("10.0.0.1", "'{{ \"10.0.0.\" ~ 7 }}'"))
    assert load_inventory_cached(templated, cache)[0].address == "10.0.0.7"
    assert not cache.exists()
    (tmp_path / "group_vars").mkdir()
    load_inventory_cached(_write(tmp_path / "hosts.yml", INVENTORY), cache)
    assert not cache.exists()
