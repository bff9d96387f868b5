"""``cluster-pilot bench ...``: benchmarks that print figures (ratios and rates), never pass/fail on time."""

from __future__ import annotations

import importlib

import click

_BENCHES = {
    "manifests": "cluster_pilot.cli.bench_manifests:manifests",
    "scheduler": "cluster_pilot.cli.bench_scheduler:scheduler",
    "apply": "cluster_pilot.cli.bench_apply:apply_bench",
    "api": "cluster_pilot.cli.bench_api:api_bench",
    "proxy": "cluster_pilot.cli.bench_proxy:proxy",
}


class _LazyBench(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_BENCHES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _BENCHES:
            return None
        module, _, attr = _BENCHES[name].partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyBench)
def bench() -> None:
    """Measure a stage and print its figures."""
