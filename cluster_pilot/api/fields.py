"""Spellings both API versions share (ports, environment), and the rule for leaving out what is not set."""

from __future__ import annotations

from cluster_pilot import model


def some(**fields: object) -> dict:
    """The fields that are set: a written manifest reads like a hand-written one."""
    return {k: v for k, v in fields.items() if v not in (None, "", (), [], {}, 0, False)}


def port(p: model.Port) -> dict:
    return some(name=p.name, containerPort=p.container_port, hostPort=p.host_port, protocol=p.protocol)


def env(c: model.Container) -> list[dict]:
    return [{"name": e.name, "value": e.value} if e.field_path is None else
            {"name": e.name, "valueFrom": {"fieldRef": {"fieldPath": e.field_path}}} for e in c.env]
