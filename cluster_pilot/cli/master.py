"""``cluster-pilot master``: serve the v1beta1 API and reconcile the fleet continuously."""

from __future__ import annotations

import logging
import os
import secrets
import stat
import sys
from pathlib import Path

import click

from cluster_pilot.cli.options import inventory_option, inventory_path
from cluster_pilot.master import kubeconfig
from cluster_pilot.master.client import TOKEN_FILE, TOKEN_URLS_FILE, is_loopback, same_server
from cluster_pilot.errors import UserError
from cluster_pilot.home import state_dir


def master_token(home: Path, announce: bool = False) -> str:
    """The token every request needs: made at first start (0600, written atomically), shown once and only
    on a terminal, never logged. An existing file that is empty, unreadable or readable by others is
    refused: an empty token would let anyone in, a readable one anyone on the machine."""
    path = home / TOKEN_FILE
    if not path.exists():
        token = secrets.token_urlsafe(32)
        if write_private(path, token + "\n", replace=False):
            if announce and sys.stderr.isatty():
                click.echo(f"master token (shown once; kept in {path}, mode 0600): {token}", err=True)
            elif announce:
                click.echo(f"master token written to {path} (mode 0600); not shown: stderr is not a terminal",
                           err=True)
            return token
    return read_token(path)


def read_token(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"master token {path}: cannot be read ({getattr(exc, 'strerror', None) or exc}); "
                        "fix or remove it (a new one is made at start)") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError(f"master token {path}: readable by group or others (mode {stat.S_IMODE(mode):04o}); "
                        f"chmod 600 {path}, and change the token if others may have read it")
    if not token:
        raise UserError(f"master token {path}: the file is empty; remove it and start again to make a new one")
    return token


def write_private(path: Path, text: str, replace: bool = True) -> bool:
    """``text`` into ``path`` (0600) through a temporary file, fsync and rename, so a crash leaves the old
    file or the new one, never a part. Without ``replace``, an existing file wins: ``False``."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # fails if another start made one meanwhile
            except FileExistsError:
                return False
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return True


def served_urls(scheme: str, host: str, port: int, names: tuple[str, ...]) -> list[str]:
    """The URLs clients may reach this master by: the token goes to these only (``TOKEN_URLS_FILE``)."""
    hosts = ["127.0.0.1", "localhost"] if host in ("0.0.0.0", "::") else [host]
    if is_loopback(host) and "localhost" not in hosts:
        hosts.append("localhost")
    hosts += [n for n in names if n not in hosts]
    return [f"{scheme}://{f'[{h}]' if ':' in h else h}:{port}" for h in hosts]


def write_kubeconfig(path: Path, url: str, token: str, ca_file: str | None = None, insecure: bool = False) -> None:
    """A kubeconfig for ``url`` (0600: it holds the token). ``ca_file``: the certificate kubectl trusts for the
    master, embedded (a self-signed ``--tls-cert`` is its own authority)."""
    try:
        ca = Path(ca_file).read_bytes() if ca_file else None
    except OSError as exc:
        raise UserError(f"--certificate-authority {ca_file}: {exc.strerror or exc}") from None
    write_private(path, kubeconfig.text(url, token, ca, insecure))


@click.command("kubeconfig")
@click.option("--server", default=None, metavar="URL",
              help="The master's URL (default: the first one the state dir's master serves, from master-token.urls).")
@click.option("--certificate-authority", "ca_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="https: the certificate (or CA) kubectl trusts for the master, embedded.")
@click.option("--insecure-skip-tls-verify", "insecure", is_flag=True, help="https: do not check the certificate.")
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Where to write it (mode 0600) [default: $CLUSTER_PILOT_HOME/kubeconfig].")
def kubeconfig_command(server, ca_file, insecure, output) -> int:
    """Write a kubeconfig with the master's token, for kubectl and the Kubernetes clients (KUBECONFIG=FILE)."""
    home = state_dir()
    token = read_token(home / TOKEN_FILE) if (home / TOKEN_FILE).exists() else None
    if token is None:
        raise UserError(f"no master token in {home}: start `cluster-pilot master` once first")
    try:
        recorded = (home / TOKEN_URLS_FILE).read_text().split()
    except OSError:
        recorded = []
    url = (server or (recorded[0] if recorded else "")).rstrip("/")
    if not url:
        raise UserError(f"no master URL: none recorded in {home / TOKEN_URLS_FILE}; give one with --server")
    if same_server(url) not in {same_server(u) for u in recorded}:
        raise UserError(f"--server {url}: the token in {home} is not this master's (it serves "
                        f"{', '.join(recorded) or 'no recorded URL'})")
    path = Path(output) if output else home / kubeconfig.FILE
    write_kubeconfig(path, url, token, ca_file, insecure)
    click.echo(f"wrote {path} (mode 0600); use it with: export KUBECONFIG={path}")
    if (note := kubeconfig.plain_http_note(url)) is not None:
        click.echo(f"note: {note}", err=True)
    return 0


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


@click.command()
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to serve on.")
@inventory_option
@click.option("--store", "--state", "state_url", default=None,
              help="Store: sqlite:///PATH (default: the state dir's) or postgresql://USER:PASSWORD@HOST/DB (two "
                   "or three masters may share one: every one serves the API, one elected leader reconciles).")
@click.option("--interval", type=click.FloatRange(0.5), default=5.0, show_default=True,
              help="Longest time between two reconcile passes.")
@click.option("--heal-interval", type=click.FloatRange(0.2), default=1.0, show_default=True,
              help="How often the loop looks for drift (a pass with nothing to do runs no Ansible).")
@click.option("--minion-grace", type=click.FloatRange(0), default=None,
              help="Seconds a minion may be silent before it is not ready and its controllers' pods move "
                   "[default: 4 with --observe watch (4 missed heartbeats), 10 with poll].")
@click.option("--observe", "observe_mode", type=click.Choice(["watch", "poll"]), default="watch", show_default=True,
              help="watch: a session per minion streams container events and heartbeats; poll: ask every "
                   "minion every --heal-interval (the earlier design, kept for comparison).")
@click.option("--resync", type=click.FloatRange(1), default=30.0, show_default=True,
              help="watch: seconds between two whole observations of every minion (a missed event costs one).")
@click.option("--hold-down", type=click.FloatRange(0), default=10.0, show_default=True,
              help="watch: seconds after a lost minion came back during which it is not declared lost again.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--insecure-loopback", is_flag=True,
              help="Accept requests without a token from loopback over plain HTTP (as the 2014 API server's "
                   "local port).")
@click.option("--host-name", "host_names", multiple=True, metavar="NAME",
              help="Another name clients call the master by (Host header); repeatable. Others are refused.")
@click.option("--max-body", type=click.IntRange(1024), default=4 << 20, show_default=True,
              help="Largest request body in bytes; larger ones get 413.")
@click.option("--max-connections-per-address", "per_address", type=click.IntRange(1), default=64,
              show_default=True, help="Open connections one client address may hold; more are closed at once.")
@click.option("--history", "history_limit", type=click.IntRange(1), default=100, show_default=True,
              help="Versions of each object the store's history keeps.")
def master(listen, inventory, state_url, interval, heal_interval, minion_grace, observe_mode, resync, hold_down,
           tls_cert, tls_key, insecure_loopback, host_names, max_body, per_address, history_limit) -> int:
    """Serve /api/v1beta1 and today's /api/v1, and keep the minions matching what it stores."""
    import uvicorn

    from cluster_pilot.host.inventory import fleet_policy, load_inventory
    from cluster_pilot.master.api import Settings, create_app
    from cluster_pilot.master.guard import Rules
    from cluster_pilot.master.listener import Limits, protocol
    from cluster_pilot.master.reconcile import Reconciler, WatchSettings, lease_holder
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
    policy = fleet_policy(load_inventory(inventory_file))  # fail now, with the inventory's own message
    try:
        store = open_store(state_url or home / "master.db", history_limit=history_limit)
    except ValueError as exc:
        raise UserError(f"--store: {exc}") from None
    token = master_token(home, announce=True)
    urls = served_urls("https" if tls_cert else "http", host, port, host_names)
    write_private(home / TOKEN_URLS_FILE, "".join(u + "\n" for u in urls))
    write_kubeconfig(home / kubeconfig.FILE, urls[0], token, tls_cert)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if insecure_loopback:
        logging.getLogger("cluster_pilot.master").warning(
            "--insecure-loopback: requests from loopback over plain HTTP need no token")
    watch = WatchSettings(resync=resync, hold_down=hold_down) if observe_mode == "watch" else None
    grace = minion_grace if minion_grace is not None else (4.0 if watch else 10.0)
    url = f"{'https' if tls_cert else 'http'}://{listen}"
    owner = getattr(store, "owner", None)  # the masters of one PostgreSQL store own their objects together
    reconciler = Reconciler(store, inventory_file, home, load_inventory, grace=grace, interval=interval,
                            heal_interval=heal_interval, url=owner() if owner else url, watch=watch,
                            holder=lease_holder(url))
    rules = Rules(listen=host, port=port, names=tuple(host_names), max_body=max_body)
    app = create_app(store, reconciler, Settings(token=token, insecure_loopback=insecure_loopback, rules=rules,
                                                 policy=policy))
    reconciler.start()
    try:
        uvicorn.run(app, host=host, port=port, ssl_certfile=tls_cert, ssl_keyfile=tls_key, log_level="warning",
                    access_log=False, http=protocol(Limits(per_address=per_address)))
    finally:
        reconciler.stop()
    return 0
