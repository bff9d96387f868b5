#!/usr/bin/python3
"""Converge this minion's service proxy and DNS server in one task: the service network made local (an AnyIP
route), HAProxy installed, configuration checked and in place, supervised (systemd, else runit), reloaded
hitlessly, every service port listening; dnsmasq answering the services' names, reloaded when they change;
document recorded.

One module run instead of a dozen file/template/command tasks: a proxy change is on the path of every
replacement, drain and heal, so it must cost well under a second per minion.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: cp_proxy_apply
short_description: Converge the cluster-pilot service proxy (HAProxy) on this minion
description:
  - Installs HAProxy if missing, writes the configuration after C(haproxy -c) accepts it, keeps HAProxy
    supervised in master-worker mode, reloads it hitlessly when the configuration changed, waits until every
    service port listens, and records the proxy document last (its hash tells cluster-pilot the minion is
    up to date, so a run cut short is redone).
options:
  config:
    description: The HAProxy configuration text (rendered from the role's template).
    type: str
    required: true
  document:
    description: The proxy document (JSON) the configuration was rendered from.
    type: str
    required: true
  ports:
    description: Service ports that must listen once the proxy runs.
    type: list
    elements: int
    default: []
  run_script:
    description: The runit run script, used where systemd is not the service manager.
    type: str
    required: true
  systemd_unit:
    description: The systemd unit, used where systemd is the service manager.
    type: str
    required: true
  directory:
    description: Where the configuration and the document live.
    type: str
    default: /etc/cluster-pilot
  pidfile:
    description: HAProxy's master pid file.
    type: str
    default: /run/cp-proxy.pid
  listen:
    description: Binds that must listen once the proxy runs (C(ADDRESS:PORT), or C(:PORT) for every address).
    type: list
    elements: str
    default: []
  network:
    description: The service network, made local on this minion (an AnyIP route); empty, no route and no DNS.
    type: str
    default: ""
  dns_server:
    description: The DNS server's address (in the service network).
    type: str
    default: ""
  dns_hosts:
    description: The services' names, as a hosts file dnsmasq reads (reloaded with SIGHUP when it changes).
    type: str
    default: ""
  dns_config:
    description: dnsmasq's configuration (a restart of dnsmasq only, never of a pod, when it changes).
    type: str
    default: ""
  dns_run_script:
    description: The runit run script of dnsmasq.
    type: str
    default: ""
  dns_systemd_unit:
    description: The systemd unit of dnsmasq.
    type: str
    default: ""
  dns_pidfile:
    description: dnsmasq's pid file (as its configuration names it).
    type: str
    default: /run/cp-dns.pid
  health_script:
    description: cp-health, the container probes' runner and the proxies' readiness agent (the role's file);
      empty, it is left alone.
    type: str
    default: ""
  health_run_script:
    description: The runit run script of cp-health.
    type: str
    default: ""
  health_systemd_unit:
    description: The systemd unit of cp-health.
    type: str
    default: ""
  health_port:
    description: cp-health's agent port, which must listen once it runs.
    type: int
    default: 10251
  install:
    description: Install the haproxy and dnsmasq-base packages when they are missing.
    type: bool
    default: true
  fence:
    description: The fleet lock's fencing token, as for cp_pods; checked once, before any change.
    type: int
    default: 0
  fence_path:
    description: As for cp_pods.
    type: str
    default: /var/lib/cluster-pilot/fence
author: cluster-pilot developers
"""

EXAMPLES = r"""
- name: Converge the service proxy
  cp_proxy_apply:
    config: "{{ lookup('ansible.builtin.template', 'haproxy.cfg.j2') }}"
    document: "{{ cp_proxy_document }}"
    ports: [8080]
    run_script: "{{ lookup('ansible.builtin.template', 'run.j2') }}"
    systemd_unit: "{{ lookup('ansible.builtin.template', 'cp-proxy.service.j2') }}"
"""

RETURN = r"""
reloaded:
  description: Whether a running HAProxy was reloaded.
  returned: always
  type: bool
supervisor:
  description: systemd or runit.
  returned: always
  type: str
"""

import os
import socket
import tempfile
import time

from ansible.module_utils.cp_fence import FENCE, Fenced, check as check_fence

ARGUMENT_SPEC = dict(
    config=dict(type="str", required=True, no_log=True),
    document=dict(type="str", required=True, no_log=True),
    ports=dict(type="list", elements="int", default=[]),
    listen=dict(type="list", elements="str", default=[]),
    network=dict(type="str", default=""),
    dns_server=dict(type="str", default=""),
    dns_hosts=dict(type="str", default=""),
    dns_config=dict(type="str", default=""),
    dns_run_script=dict(type="str", default=""),
    dns_systemd_unit=dict(type="str", default=""),
    dns_pidfile=dict(type="str", default="/run/cp-dns.pid"),
    run_script=dict(type="str", required=True),
    systemd_unit=dict(type="str", required=True),
    directory=dict(type="str", default="/etc/cluster-pilot"),
    pidfile=dict(type="str", default="/run/cp-proxy.pid"),
    health_script=dict(type="str", default=""),
    health_run_script=dict(type="str", default=""),
    health_systemd_unit=dict(type="str", default=""),
    health_port=dict(type="int", default=10251),
    install=dict(type="bool", default=True),
    fence=dict(type="int", default=0),
    fence_path=dict(type="str", default=FENCE),
)

HAPROXY = "/usr/sbin/haproxy"
DNSMASQ = "/usr/sbin/dnsmasq"
SYSTEMD_RUNNING = "/run/systemd/system"  # exists when systemd is the service manager
SYSTEMD_UNIT = "/etc/systemd/system/cp-proxy.service"
RUNIT_SERVICE = "/etc/sv/cp-proxy"
DNS_SYSTEMD_UNIT = "/etc/systemd/system/cp-dns.service"
DNS_RUNIT_SERVICE = "/etc/sv/cp-dns"
HEALTH_SYSTEMD_UNIT = "/etc/systemd/system/cp-health.service"
HEALTH_RUNIT_SERVICE = "/etc/sv/cp-health"
HEALTH_SCRIPT = "cp-health.py"
RUNIT_ENABLED = "/etc/service"
RUNSVDIR = "/usr/bin/runsvdir"
LISTEN_TIMEOUT = 30.0
PIDFILE_TIMEOUT = 10.0
SIGUSR2 = 12  # to HAProxy's master: new workers take the listening sockets over (a hitless reload)
SIGHUP = 1  # to dnsmasq: read the hosts file again, forget the cache
SIGTERM = 15


def write_if_changed(path, text, mode=0o644):
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".cp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def master_pid(pidfile):
    try:
        with open(pidfile) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def master_pid_within(pidfile, timeout):
    """The master's PID, waiting for it: haproxy binds its ports before it writes its pidfile."""
    deadline = time.monotonic() + timeout
    pid = master_pid(pidfile)
    while pid is None and time.monotonic() < deadline:
        time.sleep(0.1)
        pid = master_pid(pidfile)
    return pid


def listening(target):
    """Whether a port (on loopback), ``ADDRESS:PORT`` or ``:PORT`` (any address: loopback) accepts."""
    host, port = "127.0.0.1", target
    if isinstance(target, str):
        address, _, number = target.rpartition(":")
        host, port = address or "127.0.0.1", int(number)
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def not_listening(ports, timeout):
    """The ports still closed once the timeout is over (none, as soon as all listen)."""
    deadline = time.monotonic() + timeout
    waiting = list(ports)
    while waiting:
        waiting = [port for port in waiting if not listening(port)]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return waiting


def install(module, allowed, binary=None, package="haproxy"):
    """True when the package (HAProxy unless told) had to be installed."""
    if os.path.exists(binary or HAPROXY):
        return False
    if not allowed:
        module.fail_json(msg="%s is not installed" % package)
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        rc, out, err = module.run_command(cmd, environ_update=env)
        if rc != 0:
            module.fail_json(msg="installing %s failed: %s" % (package, (err or out).strip()[-500:]))
    return True


def check(module, directory, config):
    """Fail, leaving the running configuration alone, unless ``haproxy -c`` accepts the new one."""
    os.makedirs(directory, exist_ok=True)
    fd, candidate = tempfile.mkstemp(dir=directory, prefix=".haproxy-", suffix=".cfg")
    with os.fdopen(fd, "w") as f:
        f.write(config)
    rc, out, err = module.run_command([HAPROXY, "-c", "-q", "-f", candidate])
    os.unlink(candidate)
    if rc != 0:
        module.fail_json(msg="haproxy -c rejected the configuration: %s" % (err or out).strip()[-1000:])


def supervise(module, run_script, systemd_unit, name="cp-proxy"):
    """Keep HAProxy (or dnsmasq: ``cp-dns``, or ``cp-health``) supervised: (supervisor, changed, started now
    with the configuration in place)."""
    unit, service = {"cp-proxy": (SYSTEMD_UNIT, RUNIT_SERVICE), "cp-dns": (DNS_SYSTEMD_UNIT, DNS_RUNIT_SERVICE),
                     "cp-health": (HEALTH_SYSTEMD_UNIT, HEALTH_RUNIT_SERVICE)}[name]
    if os.path.isdir(SYSTEMD_RUNNING):
        unit_changed = write_if_changed(unit, systemd_unit)
        if unit_changed:
            module.run_command(["systemctl", "daemon-reload"], check_rc=True)
        rc, _, _ = module.run_command(["systemctl", "is-active", "--quiet", name])
        if rc != 0:
            module.run_command(["systemctl", "enable", "--now", name], check_rc=True)
            return "systemd", True, True
        return "systemd", unit_changed, False
    if os.path.isdir(RUNIT_ENABLED) or os.path.exists(RUNSVDIR):
        changed = write_if_changed(os.path.join(service, "run"), run_script, 0o755)
        link = os.path.join(RUNIT_ENABLED, os.path.basename(service))
        if not os.path.islink(link):
            os.makedirs(RUNIT_ENABLED, exist_ok=True)
            os.symlink(service, link)
            # pick the service up now, not in 5 s
            module.run_command(["pkill", "-ALRM", "-x", os.path.basename(RUNSVDIR)])
            changed = True
        return "runit", changed, False
    module.fail_json(msg="neither systemd nor runit supervises services here: install runit")


def local_network(module, network):
    """Every address of the service network is local here (AnyIP): HAProxy and dnsmasq bind them, and
    containers reach them through their default gateway, this minion."""
    module.run_command(["ip", "route", "replace", "local", network, "dev", "lo", "table", "local"], check_rc=True)


def converge_dns(module, p):
    """dnsmasq answering the services' names at the DNS server's address: the hosts file reloaded (SIGHUP)
    when it changed, dnsmasq restarted when its configuration did (pods keep running either way)."""
    changed = install(module, p["install"], DNSMASQ, "dnsmasq-base")
    hosts_changed = write_if_changed(os.path.join(p["directory"], "dns.hosts"), p["dns_hosts"])
    config_changed = write_if_changed(os.path.join(p["directory"], "dnsmasq.conf"), p["dns_config"])
    supervisor, supervision_changed, started = supervise(module, p["dns_run_script"], p["dns_systemd_unit"], "cp-dns")
    pid = master_pid(p["dns_pidfile"])
    if pid is not None and not started:
        if config_changed and supervisor == "systemd":
            module.run_command(["systemctl", "restart", "cp-dns"], check_rc=True)
        elif config_changed:
            os.kill(pid, SIGTERM)  # runit starts it again, with the new configuration
        elif hosts_changed:
            os.kill(pid, SIGHUP)
    if not_listening(["%s:53" % p["dns_server"]], LISTEN_TIMEOUT):
        module.fail_json(msg="the DNS server (dnsmasq) does not answer at %s:53 after %d s (see %s)"
                         % (p["dns_server"], LISTEN_TIMEOUT, DNS_RUNIT_SERVICE), changed=True)
    return changed or hosts_changed or config_changed or supervision_changed


def running(script):
    """PIDs of processes running ``script`` (its path in their command line)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if script.encode() in args:
            pids.append(int(entry))
    return pids


def converge_health(module, p):
    """cp-health in place, supervised, restarted when its script changed, its agent port listening."""
    script = os.path.join(p["directory"], HEALTH_SCRIPT)
    script_changed = write_if_changed(script, p["health_script"], 0o755)
    supervisor, supervision_changed, started = supervise(module, p["health_run_script"], p["health_systemd_unit"],
                                                         "cp-health")
    if script_changed and not started:
        if supervisor == "systemd":
            module.run_command(["systemctl", "restart", "cp-health"], check_rc=True)
        else:
            for pid in running(script):
                os.kill(pid, SIGTERM)  # runit starts it again, with the new script
    if not_listening([p["health_port"]], LISTEN_TIMEOUT):
        module.fail_json(msg="cp-health does not answer at port %d after %d s (see %s)"
                         % (p["health_port"], LISTEN_TIMEOUT, HEALTH_RUNIT_SERVICE), changed=True)
    return script_changed or supervision_changed


def main(module=None):
    """``module``: the role's action plugin passes its stand-in for ``AnsibleModule`` (no AnsiballZ)."""
    if module is None:
        from ansible.module_utils.basic import AnsibleModule

        module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=False)
    p = module.params
    try:
        check_fence(p["fence_path"], p["fence"])
    except Fenced as exc:
        module.fail_json(msg=str(exc), fenced=True, changed=False)
    changed = install(module, p["install"])
    if p["network"]:
        local_network(module, p["network"])
    check(module, p["directory"], p["config"])
    config_changed = write_if_changed(os.path.join(p["directory"], "haproxy.cfg"), p["config"])
    supervisor, supervision_changed, started = supervise(module, p["run_script"], p["systemd_unit"])
    changed = changed or config_changed or supervision_changed

    pid = master_pid(p["pidfile"])
    reloaded = config_changed and not started and pid is not None
    if reloaded:
        os.kill(pid, SIGUSR2)

    waiting = not_listening(p["ports"] + p["listen"], LISTEN_TIMEOUT)
    if waiting:
        closed = ", ".join(map(str, waiting))
        module.fail_json(msg="service ports not listening after %d s: %s" % (LISTEN_TIMEOUT, closed), changed=changed)
    if (p["ports"] or p["listen"]) and supervisor == "runit" and \
            master_pid_within(p["pidfile"], PIDFILE_TIMEOUT) is None:
        module.fail_json(msg="haproxy is not running under runit (see %s)" % RUNIT_SERVICE, changed=changed)
    if p["network"] and p["dns_server"]:
        changed = converge_dns(module, p) or changed
    if p["health_script"]:
        changed = converge_health(module, p) or changed

    # last: its hash tells cluster-pilot this minion is up to date, so a run cut short before here is redone
    changed = write_if_changed(os.path.join(p["directory"], "proxy.json"), p["document"]) or changed
    module.exit_json(changed=changed, reloaded=reloaded, supervisor=supervisor)


if __name__ == "__main__":
    main()
