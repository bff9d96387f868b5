#!/bin/sh
# Boot of a sandbox minion: make cgroups writable for a nested dockerd, then run sshd and dockerd and keep
# them running, as a host's init system would. Settings come from the container's environment.
set -u

log() { echo "minion-init: $*"; }

writable_cgroups() {
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        # cgroup v2: leave the root cgroup to children so dockerd may enable every controller below it.
        mount -o remount,rw /sys/fs/cgroup 2>/dev/null || true
        mkdir -p /sys/fs/cgroup/init
        for pid in $(cat /sys/fs/cgroup/cgroup.procs); do echo "$pid" > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true; done
        sed -e 's/ / +/g' -e 's/^/+/' /sys/fs/cgroup/cgroup.controllers > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        return
    fi
    mount -o remount,rw /sys 2>/dev/null || true
    mount -o remount,rw /sys/fs/cgroup 2>/dev/null || true
    # cgroup v1: every hierarchy comes read-only; mount each one again read-write with the same options.
    awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup") print $5, $(i + 3) }' /proc/self/mountinfo | while read -r point opts; do
        ctrls=$(echo "$opts" | tr ',' '\n' | grep -v -e '^rw$' -e '^ro$' | paste -sd, -)
        umount "$point" 2>/dev/null || umount -l "$point" 2>/dev/null || true
        mkdir -p "$point"
        mount -t cgroup -o "$ctrls" cgroup "$point" || log "cannot mount cgroup $ctrls on $point"
    done
}

ssh_setup() {
    mkdir -p /run/sshd /root/.ssh
    chmod 700 /root/.ssh
    [ -s /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -A >/dev/null
    printf '%s\n' "${CP_AUTHORIZED_KEY:-}" > /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
}

docker_setup() {
    mkdir -p /etc/docker
    if [ -n "${CP_REGISTRY:-}" ]; then
        printf '{\n  "registry-mirrors": ["http://%s"],\n  "insecure-registries": ["%s"],\n  "bip": "%s",\n  "log-driver": "json-file",\n  "log-opts": {"max-size": "10m", "max-file": "2"}\n}\n' \
            "$CP_REGISTRY" "$CP_REGISTRY" "${CP_BIP:-10.250.0.1/24}" > /etc/docker/daemon.json
    fi
}

start_sshd() { /usr/sbin/sshd -E /var/log/sshd.log; }
# runit supervises the services that roles install (e.g. the service proxy), as systemd would on a real host
start_runsvdir() { mkdir -p /etc/service; nohup runsvdir -P /etc/service >> /var/log/runsvdir.log 2>&1 & }
start_dockerd() {
    rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid
    nohup /usr/sbin/dockerd >> /var/log/dockerd.log 2>&1 &
}

writable_cgroups
ssh_setup
docker_setup
trap 'kill -HUP $(pidof runsvdir) 2>/dev/null; kill -TERM $(pidof dockerd) $(pidof sshd) 2>/dev/null; wait; exit 0' TERM INT
while :; do
    pidof sshd >/dev/null || start_sshd
    pidof runsvdir >/dev/null || start_runsvdir
    pidof dockerd >/dev/null || start_dockerd
    sleep 1 &
    wait $!
done
