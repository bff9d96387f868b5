"""``cluster-pilot master``: serve the v1beta1 API and reconcile the fleet continuously."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import click

from cluster_pilot.cli.options import inventory_option, inventory_path
from cluster_pilot.master.client import TOKEN_FILE, is_loopback
from cluster_pilot.errors import UserError
from cluster_pilot.home import state_dir


def master_token(home: Path, announce: bool = False) -> str:
    """The bearer token writes need: made at first start (mode 0600), shown once, never logged."""
    path = home / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    if announce:
        click.echo(f"master token (shown once; kept in {path}, mode 0600): {token}", err=True)
    return token


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


@click.command()
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to serve on.")
@inventory_option
@click.option("--state", "state_url", default=None, help="Store: sqlite:///PATH (default: the state dir's).")
@click.option("--interval", type=click.FloatRange(0.5), default=5.0, show_default=True,
              help="Longest time between two reconcile passes.")
@click.option("--heal-interval", type=click.FloatRange(0.2), default=1.0, show_default=True,
              help="How often the loop looks for drift (a pass with nothing to do runs no Ansible).")
@click.option("--minion-grace", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Seconds a minion may not answer before it is not ready and its controllers' pods move.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--insecure-loopback", is_flag=True,
              help="Accept writes without a token from loopback over plain HTTP (as the 2014 API server's local port).")
def master(listen, inventory, state_url, interval, heal_interval, minion_grace, tls_cert, tls_key,
           insecure_loopback) -> int:
    """Serve /api/v1beta1 and keep the minions matching what it stores."""
    import uvicorn

    from cluster_pilot.host.inventory import load_inventory
    from cluster_pilot.master.api import Settings, create_app
    from cluster_pilot.master.reconcile import Reconciler
    from cluster_pilot.store import open_store

    host, port = _split_listen(listen)
    if bool(tls_cert) != bool(tls_key):
        raise UserError("--tls-cert and --tls-key go together")
    if not is_loopback(host) and not tls_cert:
        raise UserError(f"--listen {listen} is not a loopback address: serving it needs TLS (--tls-cert and "
                        "--tls-key); the token is always required for writes")
    if insecure_loopback and not is_loopback(host):
        raise UserError("--insecure-loopback is only for a master listening on a loopback address")
    home = state_dir()
    inventory_file = inventory_path(inventory)
    load_inventory(inventory_file)  # fail now, with the inventory's own message, not in the loop
    try:
        store = open_store(state_url or home / "master.db")
    except ValueError as exc:
        raise UserError(f"--state: {exc}") from None
    token = master_token(home, announce=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if insecure_loopback:
        logging.getLogger("cluster_pilot.master").warning(
            "--insecure-loopback: writes from loopback over plain HTTP need no token")
    reconciler = Reconciler(store, inventory_file, home, load_inventory, grace=minion_grace, interval=interval,
                            heal_interval=heal_interval)
    app = create_app(store, reconciler, Settings(token=token, insecure_loopback=insecure_loopback))
    reconciler.start()
    try:
        uvicorn.run(app, host=host, port=port, ssl_certfile=tls_cert, ssl_keyfile=tls_key, log_level="warning",
                    access_log=False)
    finally:
        reconciler.stop()
    return 0
