"""The ten scenarios of issue 6, each run in a fresh container booted from the golden image.

The golden image is bookworm with Debian's docker.io/containerd/runc installed from the cache,
docker.service and docker.socket active, and container `c1` (tiny busybox image, `--init
--restart=always`) running. Every scenario gets `tool`: False for the "without the tool" half,
True for "with the tool" (the .deb installed with `apt-get install /path/docker-upgrade-guard_*.deb`,
like an admin). "Stopped" is checked only with `systemctl is-active` (any docker command would
socket-activate docker again).
"""

import time

from fixtures import BINDSTO_DROPIN, PARTOF_DROPIN, deb_field
from machine import Fail

FIX = "/root/fixtures"
REPO = "/srv/dug-e2e-repo"
BIN = "/usr/sbin/docker-upgrade-guard"


class Ctx:
    def __init__(self, fixtures, tool_deb_name, suite="bookworm"):
        self.suite = suite
        self.f = fixtures  # dict from fixtures.build()
        self.tool_deb = f"{FIX}/{tool_deb_name}" if tool_deb_name else None

    def deb(self, key):
        return f"{FIX}/{self.f[key].name}"

    def version(self, key):
        return deb_field(self.f[key], "Version")  # with its epoch (docker-ce's is 5:)


def check(cond, msg):
    if not cond:
        raise Fail(msg)


# --- helpers ---------------------------------------------------------------------------------------
# The bound of every wait on a condition. Generous on purpose: a loaded 2-core machine running
# two halves at a time (and other suites) once took > 30 s to bring c1 back after boot. A wait
# returns as soon as its condition holds, so the bound costs nothing when things are well.
SLOW = 120


def wait_until(what, fn, timeout=SLOW):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fail(f"{what}: not within {timeout} s")
        time.sleep(0.2)


def container_pid(m):
    """PID of c1 if running, else None. Only call while docker.service is known active."""
    r = m.run(["docker", "inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "c1"], check=False, quiet=True)
    parts = r.out.split()
    return int(parts[1]) if r.rc == 0 and len(parts) == 2 and parts[0] == "true" else None


def ready(m):
    """The golden state after boot: docker.service active, /_ping OK, c1 running.

    A precondition, not an assertion: on a host running several containers at once, systemd
    once failed docker.socket's control process at boot with 219/CGROUP (then docker.service
    fails on the dependency). Such a unit is reset and started once more, and the log says so."""
    retried = []

    def docker_active():
        if m.is_active("docker.service") == "active":
            return True
        if not retried and m.is_active("docker.socket") == "failed":
            retried.append(True)
            m.note("# docker.socket failed at boot (the host's fault, not the scenario's): reset, start again")
            m.run(["systemctl", "reset-failed", "docker.socket", "docker.service"], check=False)
            m.run(["systemctl", "start", "docker.socket", "docker.service"], check=False)
        return False

    wait_until("docker.service active after boot", docker_active)
    wait_until("docker answers /_ping after boot", m.ping)
    return wait_until("container c1 running after boot", lambda: container_pid(m))


def diagnose(m):
    """After a failure: the units' states and the journal's tail, into the scenario's log."""
    for argv in (["systemctl", "--no-pager", "status", "docker.service", "docker.socket", "containerd.service"],
                 ["journalctl", "--no-pager", "-n", "60", "-o", "short-monotonic"]):
        try:
            m.run(argv, check=False, timeout=60)
        except Fail:
            pass


def expect_docker_up(m, why):
    state = m.is_active("docker.service")
    check(state == "active", f"{why}: docker.service is {state!r}, expected 'active'")
    wait_until(f"{why}: docker.service active, /_ping answering OK", m.ping)
    wait_until(f"{why}: the restart=always container c1 running again", lambda: container_pid(m))


def expect_inactive(m, unit, why):
    state = m.is_active(unit)
    check(state != "active", f"{why}: {unit} is {state!r}, expected it stopped")


def pkg_version(m, pkg):
    return m.run(["dpkg-query", "-W", "-f", "${Version}", pkg], quiet=True).out.strip()


def bindsto(m):
    """The focal unit shape: docker.service BindsTo=containerd, docker.socket PartOf=docker.service."""
    m.write("/etc/systemd/system/docker.service.d/bindsto.conf", BINDSTO_DROPIN)
    m.write("/etc/systemd/system/docker.socket.d/partof.conf", PARTOF_DROPIN)
    m.run(["systemctl", "daemon-reload"])
    out = m.run(["systemctl", "show", "-p", "BindsTo", "--value", "docker.service"], quiet=True).out
    check("containerd.service" in out, f"drop-in not in effect: BindsTo={out.strip()!r}")
    out = m.run(["systemctl", "show", "-p", "PartOf", "--value", "docker.socket"], quiet=True).out
    check("docker.service" in out, f"drop-in not in effect: docker.socket PartOf={out.strip()!r}")


def install_tool(m, ctx, jit=True):
    """Installs the .deb like an admin. jit=False turns the just-in-time guard off, so that the
    upgrade really stops docker and the scenario proves the recovery after the fact."""
    if ctx.tool_deb is None:
        raise Fail("no docker-upgrade-guard .deb given (--deb PATH)")
    m.apt("install", "--no-install-recommends", ctx.tool_deb)
    check(m.run(["test", "-x", BIN], check=False, quiet=True).rc == 0, f"{BIN} missing after installing the .deb")
    if not jit:
        m.write("/etc/docker-upgrade-guard/config.toml", "# e2e: recovery after the fact\njit_patch = false\n")


# A unit systemd does not know, an alias (systemd answers for reboot.target), a socket, services.
BUS_UNITS = ["containerd.service", "docker.socket", "docker.service", "nosuch-dug.service", "ctrl-alt-del.target"]


def expect_show_over_bus(m):
    """`status` asks systemd over its private socket: it prints the same states as `systemctl show`
    with systemctl made unreachable for it (so no fallback to systemctl can answer instead)."""
    root = "/root/dug-bus-root"
    m.write(f"{root}/etc/docker-upgrade-guard/config.toml", "units = [%s]\n" % ", ".join(f'"{u}"' for u in BUS_UNITS))
    r = m.run(["systemd-run", "--wait", "--pipe", "--collect", "-q",
               "-p", "InaccessiblePaths=/usr/bin/systemctl", "-p", "InaccessiblePaths=-/bin/systemctl",
               BIN, "--root", root, "status"], check=False)
    got = sorted(l for l in r.out.splitlines() if l.startswith("unit "))
    want = []
    for u in BUS_UNITS:
        show = m.run(["systemctl", "show", "-p", "ActiveState,SubState,LoadState,UnitFileState", "--", u],
                     quiet=True).out
        p = dict(l.split("=", 1) for l in show.splitlines() if "=" in l)
        want.append(f"unit {u}: {p['ActiveState']} ({p['SubState']}), load {p['LoadState']}, "
                    f"unit file {p['UnitFileState']}")
    check(got == sorted(want), f"status over the bus (systemctl unreachable) says {got}, systemctl show says {sorted(want)}")


def expect_said(out, *words):
    """The tool's stderr line(s) in apt's output say all of `words`."""
    lines = hook_lines(out)
    check(any(all(w in l for w in words) for l in lines),
          f"the tool did not say {words!r}; its lines: {lines}")


def setup_containerd_v1(m, ctx, flavour="containerd_dug1"):
    """docker.service BindsTo=containerd; containerd at the harmful +dug1 (upgrading to it is safe:
    dpkg runs stock's remove-only prerm). Checks docker survived the setup."""
    bindsto(m)
    m.apt("install", ctx.deb(flavour))
    check(pkg_version(m, "containerd") == ctx.version(flavour), "containerd +dug1 not installed")
    expect_docker_up(m, "after installing containerd +dug1 (setup)")


def hook_lines(out):
    return [l for l in out.splitlines() if "docker-upgrade-guard" in l]


ALARMING = ("stopped", "started", "starting", "error", "fail", "warn", "critical", "panic")


# --- the scenarios -------------------------------------------------------------------------------
def s01_containerd_bindsto_apt(m, ctx, tool):
    setup_containerd_v1(m, ctx)
    if tool:
        install_tool(m, ctx, jit=False)
    r = m.apt("install", ctx.deb("containerd_dug2"))
    check(pkg_version(m, "containerd") == ctx.version("containerd_dug2"), "containerd was not upgraded")
    check(m.is_active("containerd.service") == "active", "containerd.service not active after the upgrade")
    if tool:
        expect_docker_up(m, "containerd upgrade with the tool")
        expect_said(r.out, "docker.service", "were stopped by the upgrade of containerd",
                    "BindsTo=containerd.service", "started again", "docker answered")
    else:
        expect_inactive(m, "docker.service", "containerd upgrade without the tool (reproduces LP #1870514)")
        expect_inactive(m, "docker.socket", "containerd upgrade without the tool (PartOf=docker.service)")


def s02_unattended_upgrades(m, ctx, tool):
    setup_containerd_v1(m, ctx)
    m.apt("install", "--no-install-recommends", "unattended-upgrades")
    if tool:
        install_tool(m, ctx, jit=False)
    m.write("/etc/apt/sources.list.d/dug-e2e.list", f"deb [trusted=yes] file:{REPO} ./\n")
    m.write("/etc/apt/apt.conf.d/51dug-e2e", "\n".join([
        "// Offline: only the local repository's origin (else unattended-upgrades aborts).",
        "#clear Unattended-Upgrade::Origins-Pattern;",
        "#clear Unattended-Upgrade::Allowed-Origins;",
        'Unattended-Upgrade::Origins-Pattern { "origin=dug-e2e"; };',
        'Unattended-Upgrade::MinimalSteps "true";',
        'Unattended-Upgrade::OnlyOnACPower "false";', ""]))
    m.apt("update")  # every source is local (see offline_apt in run)
    m.run(["unattended-upgrade", "-v"], timeout=300)
    check(pkg_version(m, "containerd") == ctx.version("containerd_dug2"),
          "unattended-upgrade did not upgrade containerd to +dug2 (see its log in the scenario log)")
    log = m.run(["cat", "/var/log/unattended-upgrades/unattended-upgrades-dpkg.log"], check=False)
    if tool:
        expect_docker_up(m, "unattended-upgrades containerd upgrade with the tool")
        # unattended-upgrades sends the hooks' output to its dpkg log: the admin finds it there.
        expect_said(log.out, "were stopped by the upgrade of containerd", "started again")
    else:
        expect_inactive(m, "docker.service", "unattended-upgrades containerd upgrade without the tool")


def setup_docker_v1(m, ctx):
    m.apt("install", ctx.deb("docker_dug1"))
    check(pkg_version(m, "docker.io") == ctx.version("docker_dug1"), "docker.io +dug1 not installed")
    expect_docker_up(m, "after installing docker.io +dug1 (setup)")


def s03_docker_prerm(m, ctx, tool):
    setup_docker_v1(m, ctx)
    if tool:
        install_tool(m, ctx, jit=False)
    r = m.apt("install", ctx.deb("docker_dug2"))
    check(pkg_version(m, "docker.io") == ctx.version("docker_dug2"), "docker.io was not upgraded")
    if tool:
        expect_docker_up(m, "docker.io upgrade with the tool")
        expect_said(r.out, "stopped by the upgrade of docker.io", "prerm", "started again")
    else:
        expect_inactive(m, "docker.service", "docker.io upgrade without the tool (reproduces LP #1906364)")
        expect_inactive(m, "docker.socket", "docker.io upgrade without the tool")


def s04_jit_guard(m, ctx, tool):
    setup_docker_v1(m, ctx)
    if tool:
        install_tool(m, ctx)
    main_before, c1_before = m.main_pid("docker.service"), container_pid(m)
    m.apt("install", ctx.deb("docker_dug2"))
    check(pkg_version(m, "docker.io") == ctx.version("docker_dug2"), "docker.io was not upgraded")
    if tool:
        check(m.is_active("docker.service") == "active", "docker.service not active after the guarded upgrade")
        main_after = m.main_pid("docker.service")
        check(main_after == main_before, f"dockerd was restarted: MainPID {main_before} -> {main_after}")
        c1_after = container_pid(m)
        check(c1_after == c1_before, f"container c1 was restarted: PID {c1_before} -> {c1_after}")
    else:
        expect_inactive(m, "docker.service", "docker.io upgrade without the guard")


def s05_stock_containerd(m, ctx, tool):
    if tool:
        install_tool(m, ctx)
    docker_pid, containerd_pid = m.main_pid("docker.service"), m.main_pid("containerd.service")
    r = m.apt("install", ctx.deb("containerd_stock_bump"))
    check(pkg_version(m, "containerd") == ctx.version("containerd_stock_bump"), "containerd was not upgraded")
    check(m.is_active("containerd.service") == "active", "containerd.service not active after the upgrade")
    check(m.main_pid("containerd.service") != containerd_pid,
          "containerd was not restarted by Debian's postinst (did the upgrade run its scripts?)")
    check(m.is_active("docker.service") == "active", "docker.service not active after a stock containerd upgrade")
    check(m.main_pid("docker.service") == docker_pid, "dockerd was restarted by a stock containerd upgrade")
    if tool:
        bad = [l for l in hook_lines(r.out) if any(w in l.lower() for w in ALARMING)]
        check(not bad, f"the tool said something alarming on a harmless upgrade: {bad}")


def s06_admin_stopped(m, ctx, tool):
    setup_containerd_v1(m, ctx)
    if tool:
        install_tool(m, ctx)
        expect_show_over_bus(m)
    m.run(["systemctl", "stop", "docker.socket", "docker.service"])
    if tool:
        expect_show_over_bus(m)  # the same, stopped
    m.apt("install", ctx.deb("containerd_dug2"))
    check(pkg_version(m, "containerd") == ctx.version("containerd_dug2"), "containerd was not upgraded")
    expect_inactive(m, "docker.service", "the admin had stopped docker before the upgrade")
    expect_inactive(m, "docker.socket", "the admin had stopped docker.socket before the upgrade")


def s07_removal(m, ctx, tool):
    setup_containerd_v1(m, ctx)
    if tool:
        install_tool(m, ctx)
    # One operation: the harmful containerd upgrade (stops docker via BindsTo) AND docker.io's removal.
    m.apt("install", ctx.deb("containerd_dug2"), "docker.io-")
    st = m.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "docker.io"], check=False, quiet=True).out
    check(not st.startswith("ii"), f"docker.io still installed ({st.strip()!r})")
    expect_inactive(m, "docker.service", "docker.io was removed")
    expect_inactive(m, "docker.socket", "docker.io was removed")
    check(m.run(["pgrep", "-x", "dockerd"], check=False, quiet=True).rc != 0, "a dockerd process is running")


def s08_policy_rc_d(m, ctx, tool):
    setup_containerd_v1(m, ctx, flavour="containerd_dug1sc")
    if tool:
        # Guard off: the stop must happen, so that there is something the tool must not start.
        install_tool(m, ctx, jit=False)
    m.write("/usr/sbin/policy-rc.d", "#!/bin/sh\n# e2e: every action forbidden\nexit 101\n", mode=0o755)
    r = m.apt("install", ctx.deb("containerd_dug2"))
    check(pkg_version(m, "containerd") == ctx.version("containerd_dug2"), "containerd was not upgraded")
    # The +dug1sc prerm stopped containerd with a plain systemctl (docker followed through BindsTo);
    # policy-rc.d forbade the postinst's start. Nothing may start them.
    expect_inactive(m, "containerd.service", "policy-rc.d forbids starts")
    expect_inactive(m, "docker.service", "policy-rc.d forbids starts")
    if tool:
        expect_said(r.out, "left stopped", "policy-rc.d")


def s09_dpkg_i(m, ctx, tool):
    setup_containerd_v1(m, ctx)
    if tool:
        install_tool(m, ctx)
    r = m.run(["dpkg", "-i", ctx.deb("containerd_dug2")], timeout=300)
    check(pkg_version(m, "containerd") == ctx.version("containerd_dug2"), "containerd was not upgraded")
    if tool:
        expect_docker_up(m, "dpkg -i of the harmful containerd with the tool (the dpkg trigger path)")
        # Since 0.2 the dpkg trigger tells it from systemd's timestamps (no "before" was taken).
        expect_said(r.out, "docker.socket, docker.service were stopped by the upgrade of containerd",
                    "BindsTo=containerd.service", "started again", "docker answered")
        # dpkg in two steps, as apt does it: --unpack (+dug2's own prerm stops containerd again;
        # dpkg processes our trigger at the end of the unpack run), then --configure -a.
        r = m.run(["dpkg", "--unpack", ctx.deb("containerd_dug2")], timeout=300)
        expect_said(r.out, "were stopped by the reinstallation of containerd", "started again")
        m.run(["dpkg", "--configure", "-a"], timeout=300)
        expect_docker_up(m, "dpkg --unpack, then dpkg --configure -a (the dpkg trigger path)")
    else:
        expect_inactive(m, "docker.service", "dpkg -i of the harmful containerd without the tool")


def s20_dpkg_admin_and_unrelated(m, ctx, tool):
    """Outside apt: an unrelated dpkg -i does not reach the tool at all; the admin stops docker
    and at once runs dpkg -i of the harmful containerd: that stop is the admin's, kept."""
    setup_containerd_v1(m, ctx)
    install_tool(m, ctx)
    m.sh("mkdir -p /root/tiny/DEBIAN && printf '%s\\n' 'Package: dug-e2e-tiny' 'Version: 1' "
         "'Architecture: all' 'Maintainer: e2e <e2e@localhost>' 'Description: tiny' "
         "> /root/tiny/DEBIAN/control && dpkg-deb --build /root/tiny /root/tiny.deb >/dev/null", quiet=True)
    r = m.run(["dpkg", "-i", "/root/tiny.deb"], timeout=300)
    check("docker-upgrade-guard" not in r.out, f"an unrelated dpkg -i reached the tool: {r.out!r}")
    r = m.sh(f"systemctl stop docker.socket docker.service && dpkg -i {ctx.deb('containerd_dug2')}", timeout=300)
    check(pkg_version(m, "containerd") == ctx.version("containerd_dug2"), "containerd was not upgraded")
    check("Processing triggers for docker-upgrade-guard" in r.out, f"the trigger did not run: {r.out!r}")
    expect_inactive(m, "docker.service", "the admin stopped docker just before dpkg -i")
    expect_inactive(m, "docker.socket", "the admin stopped docker.socket just before dpkg -i")
    check(m.is_active("containerd.service") == "active", "containerd.service not active after the upgrade")


def s10_audit(m, ctx, tool):
    # The binary alone (hooks not installed), then the package.
    m.run(["dpkg-deb", "-x", ctx.tool_deb, "/root/dug-x"])
    alone = "/root/dug-x/usr/sbin/docker-upgrade-guard"
    r = m.run([alone, "audit"], check=False)
    check(r.rc == 0, f"audit on stock bookworm: exit {r.rc}, expected 0 (OK)")
    setup_containerd_v1(m, ctx)
    r = m.run([alone, "audit"], check=False)
    check(r.rc == 2, f"audit with BindsTo + always-stop containerd, no hooks: exit {r.rc}, expected 2 (CRITICAL)")
    for word in ("containerd", "prerm", "BindsTo"):
        check(word in r.out, f"CRITICAL audit does not name {word!r}")
    install_tool(m, ctx)
    r = m.run([BIN, "audit"], check=False)
    check(r.rc == 1, f"audit with the tool's hooks installed: exit {r.rc}, expected 1 (WARNING)")
    m.run([BIN, "patch"])
    r = m.run([BIN, "audit"], check=False)
    check(r.rc == 0, f"audit after patch: exit {r.rc}, expected 0 (OK)")
    # The patched script holds: the upgrade does not stop containerd, so it keeps running the
    # old binary; the default containerd_after_upgrade = "restart" restarts it after the
    # operation, which systemd propagates to docker (BindsTo=) as a restart: docker comes back.
    r = m.apt("install", ctx.deb("containerd_dug2"))
    check(pkg_version(m, "containerd") == ctx.version("containerd_dug2"), "containerd was not upgraded")
    expect_said(r.out, "containerd.service kept running the old binary", "restarted it", "docker answered")
    expect_docker_up(m, "upgrading the patched containerd")


# --- Docker Inc.'s packages (docker-ce, containerd.io; see fixtures.docker_inc_packages) ---------
def setup_docker_inc(m, ctx, era):
    """Replace Debian's docker.io/containerd/runc with containerd.io 1 + docker-ce (era 19 or 20),
    then run c1 again. Purged, not removed: a removed docker.io leaves its /etc/init.d/docker
    behind non-executable (its postrm's chmod -x), and docker-ce 19.03's compat-10 postinst
    starts docker only through that script (dh_systemd_start skips a unit with a SysV script)."""
    m.apt("purge", "docker.io", "containerd", "runc")
    m.apt("install", ctx.deb("containerd_io_1"), ctx.deb(f"docker_ce{era}_1"))
    for pkg, key in (("containerd.io", "containerd_io_1"), ("docker-ce", f"docker_ce{era}_1")):
        check(pkg_version(m, pkg) == ctx.version(key), f"{pkg} {ctx.version(key)} not installed")
    st = m.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "docker.io"], check=False, quiet=True).out
    check(not st.startswith("ii"), "docker.io still installed next to docker-ce")
    relation = "BindsTo" if era == 19 else "Requires"
    out = m.run(["systemctl", "show", "-p", relation, "--value", "docker.service"], quiet=True).out
    check("containerd.service" in out, f"docker-ce {era}: docker.service {relation}={out.strip()!r}")
    out = m.run(["systemctl", "show", "-p", "PartOf", "--value", "docker.socket"], quiet=True).out
    check("docker.service" in out, f"docker-ce {era}: docker.socket PartOf={out.strip()!r}")
    wait_until("docker.service active after switching to docker-ce", lambda: m.is_active("docker.service") == "active")
    m.run(["docker", "import", f"{FIX}/tiny.tar", "dug/tiny:1"])
    m.run(["docker", "run", "-d", "--name", "c1", "--init", "--restart=always", "dug/tiny:1", "/bin/sleep", "1000000"])
    expect_docker_up(m, f"after switching to docker-ce {era} + containerd.io (setup)")


def containerd_io_upgrade(m, ctx, tool, era):
    setup_docker_inc(m, ctx, era)
    if tool:
        install_tool(m, ctx, jit=False)
    r = m.apt("install", ctx.deb("containerd_io_2"))
    check(pkg_version(m, "containerd.io") == ctx.version("containerd_io_2"), "containerd.io was not upgraded")
    check(m.is_active("containerd.service") == "active", "containerd.service not active after the upgrade")
    if tool:
        expect_docker_up(m, f"containerd.io upgrade under docker-ce {era} with the tool")
        expect_said(r.out, "docker.service", "were stopped by the upgrade of containerd.io", "started again")
    else:
        expect_inactive(m, "docker.service", f"containerd.io upgrade under docker-ce {era} without the tool")
        expect_inactive(m, "docker.socket", f"containerd.io upgrade under docker-ce {era} (PartOf=docker.service)")


def s11_containerd_io_bindsto(m, ctx, tool):
    containerd_io_upgrade(m, ctx, tool, 19)


def s12_containerd_io_requires(m, ctx, tool):
    containerd_io_upgrade(m, ctx, tool, 20)


def docker_ce_upgrade(m, ctx, tool, era):
    """Docker's own docker-ce scripts restart docker after an upgrade: docker comes back with
    or without the tool, and the tool says nothing alarming."""
    setup_docker_inc(m, ctx, era)
    if tool:
        install_tool(m, ctx)
    r = m.apt("install", ctx.deb(f"docker_ce{era}_2"))
    check(pkg_version(m, "docker-ce") == ctx.version(f"docker_ce{era}_2"), "docker-ce was not upgraded")
    wait_until("docker.service active after the docker-ce upgrade", lambda: m.is_active("docker.service") == "active")
    expect_docker_up(m, f"docker-ce {era} upgrade")
    if tool:
        bad = [l for l in hook_lines(r.out) if any(w in l.lower() for w in ALARMING)]
        check(not bad, f"the tool said something alarming on docker-ce's own upgrade: {bad}")


def s13_docker_ce_19(m, ctx, tool):
    docker_ce_upgrade(m, ctx, tool, 19)


def s14_docker_ce_20(m, ctx, tool):
    docker_ce_upgrade(m, ctx, tool, 20)


# Scenarios that cannot apply to a suite, and why: {number: {suite: reason}}. run prints the
# reason and skips them.
DOCKER_INC_BOOKWORM = "Docker Inc.'s package shapes are checked on bookworm only (their units and debhelper " \
                      "scripts do not depend on the release; the fixtures are built for bookworm)"
NOT_ON = {n: {"bullseye": DOCKER_INC_BOOKWORM, "trixie": DOCKER_INC_BOOKWORM} for n in (11, 12, 13, 14)}


def not_on(num, suite):
    return NOT_ON.get(num, {}).get(suite)


def s19_audit_timer(m, ctx, tool):
    """The package's audit timer: installed disabled and stopped; enabling it and starting its
    service writes the node_exporter textfile; a WARNING verdict (exit 1) is a successful run."""
    setup_containerd_v1(m, ctx)
    install_tool(m, ctx)
    timer, service = "docker-upgrade-guard-audit.timer", "docker-upgrade-guard-audit.service"
    prom = "/var/lib/prometheus/node-exporter/docker-upgrade-guard.prom"
    state = m.run(["systemctl", "is-enabled", timer], check=False, quiet=True).out.strip()
    check(state == "disabled", f"{timer} after install: is-enabled {state!r}, expected 'disabled'")
    for u in (timer, service):
        check(m.is_active(u) == "inactive", f"{u} after install: {m.is_active(u)!r}, expected 'inactive'")
    check(m.run(["test", "-e", prom], check=False, quiet=True).rc != 0, f"{prom} exists before the timer ran")
    # prometheus-node-exporter owns the directory; the package does not create it.
    m.run(["mkdir", "-p", "/var/lib/prometheus/node-exporter"])
    m.run(["systemctl", "enable", "--now", timer])
    check(m.is_active(timer) == "active", f"{timer} not active after enable --now")
    m.run(["systemctl", "start", service], timeout=300)
    result = m.run(["systemctl", "show", "-p", "Result", "--value", service], quiet=True).out.strip()
    check(result == "success", f"{service}: Result={result!r} (exit 1, WARNING, must count as success)")
    r = m.run(["cat", prom], quiet=True)
    check("docker_upgrade_guard_audit_severity 1" in r.out, f"{prom} has no WARNING severity: {r.out[:300]!r}")
    check('docker_upgrade_guard_exposed{package="containerd"} 1' in r.out, f"{prom}: containerd not exposed")
    mode = m.run(["stat", "-c", "%a", prom], quiet=True).out.strip()
    check(mode == "644", f"{prom} mode {mode}, expected 644")


BOTH, WITH = ("without", "with"), ("with",)
SCENARIOS = [
    (1, "containerd upgrade with BindsTo= via apt-get install ./containerd.deb", s01_containerd_bindsto_apt, BOTH),
    (2, "the same via unattended-upgrade (MinimalSteps) from a local repository", s02_unattended_upgrades, BOTH),
    (3, "docker.io upgrade whose prerm stops docker, postinst does not start it", s03_docker_prerm, BOTH),
    (4, "just-in-time guard: the docker.io upgrade never stops docker", s04_jit_guard, WITH),
    (5, "stock containerd upgrade (the suite's own debhelper shape): nothing started, nothing alarming",
     s05_stock_containerd, BOTH),
    (6, "the admin stopped docker before the upgrade: it stays stopped (status answers over systemd's private socket)",
     s06_admin_stopped, BOTH),
    (7, "the operation removes docker.io: nothing is started", s07_removal, BOTH),
    (8, "policy-rc.d returns 101: nothing is started", s08_policy_rc_d, BOTH),
    (9, "dpkg -i of the harmful containerd: the dpkg hook path brings docker back", s09_dpkg_i, BOTH),
    (20, "dpkg alone: an unrelated dpkg -i runs nothing of ours; docker stopped just before dpkg -i stays stopped",
     s20_dpkg_admin_and_unrelated, WITH),
    (10, "audit: OK on stock, CRITICAL exposed, WARNING with the tool, OK after patch", s10_audit, WITH),
    (11, "containerd.io upgrade under docker-ce 18.09/19.03 (BindsTo=containerd.service)", s11_containerd_io_bindsto,
     BOTH),
    (12, "containerd.io upgrade under docker-ce 20.10 (Requires=containerd.service)", s12_containerd_io_requires,
     BOTH),
    (13, "docker-ce 19.03 upgrade (Docker's compat-10 scripts): docker back, nothing alarming", s13_docker_ce_19, BOTH),
    (14, "docker-ce 20.10 upgrade (Docker's compat-12 scripts): docker back, nothing alarming", s14_docker_ce_20, BOTH),
    (19, "the audit timer: installed disabled; enable --now + its service write the textfile", s19_audit_timer, WITH),
]


# --- containers across the upgrade (issue 13) --------------------------------------------------------
def containers_setup(m, ctx, setup=setup_docker_v1):
    """docker.io at +dug1 (prerm stops docker on every upgrade; `setup` None: the suite's stock
    docker.io); besides c1: `keep` (--restart=always), `plain` (no restart policy) running,
    `stopped` stopped by the admin."""
    if setup:
        setup(m, ctx)
    run = ["docker", "run", "-d", "--init"]
    cmd = ["dug/tiny:1", "/bin/sleep", "1000000"]
    m.run(run + ["--name", "keep", "--restart=always"] + cmd)
    m.run(run + ["--name", "plain"] + cmd)
    m.run(run + ["--name", "stopped"] + cmd)
    m.run(["docker", "stop", "-t", "1", "stopped"])
    return {n: container_state(m, n) for n in ("keep", "plain", "stopped")}


def container_state(m, name):
    """(running, id) of a container. Only call while docker.service is known active."""
    r = m.run(["docker", "inspect", "-f", "{{.State.Running}} {{.Id}}", name], quiet=True)
    running, cid = r.out.split()
    return running == "true", cid


def container_events(m):
    r = m.run(["cat", "/var/log/docker-upgrade-guard/events.jsonl"], check=False, quiet=True)
    return [l for l in r.out.splitlines() if '"container-' in l]


def expect_plain_named(m, r, v1, v2):
    """After the docker.io upgrade v1 -> v2 took docker down: `plain` (no restart policy) and only
    it is named as down, in apt's output and as one container-down event."""
    expect_said(r.out, "container plain (dug/tiny:1, restart policy no) was running before the upgrade of "
                f"docker.io {v1} → {v2} and is not running now")
    expect_said(r.out, "2 of 3 containers came back by their restart policy; 1 did not: plain")
    bad = [l for l in hook_lines(r.out) if "container keep" in l or "container c1" in l or "container stopped" in l]
    check(not bad, f"a container that came back (or was not running) was named: {bad}")
    evs = container_events(m)
    check(len(evs) == 1 and '"container-down"' in evs[0] and "container plain" in evs[0], f"events: {evs}")


def s15_containers_named(m, ctx, tool):
    before = containers_setup(m, ctx)
    check(before["plain"][0] and before["keep"][0] and not before["stopped"][0], f"setup: {before}")
    if tool:
        install_tool(m, ctx, jit=False)
    r = m.apt("install", ctx.deb("docker_dug2"))
    check(pkg_version(m, "docker.io") == ctx.version("docker_dug2"), "docker.io was not upgraded")
    if not tool:
        # Both containers are down with docker; started by hand, only `keep` comes back.
        expect_inactive(m, "docker.service", "docker.io upgrade without the tool")
        m.run(["systemctl", "start", "docker.service"])
        wait_until("keep running after starting docker by hand", lambda: container_state(m, "keep")[0], 30)
        check(not container_state(m, "plain")[0], "plain came back without a restart policy?")
        return
    expect_docker_up(m, "docker.io upgrade with the tool")
    wait_until("keep running again", lambda: container_state(m, "keep")[0], 30)
    check(not container_state(m, "plain")[0], "plain is running: restart_containers defaults to never")
    check(not container_state(m, "stopped")[0], "the admin's stopped container was started")
    v1, v2 = ctx.version("docker_dug1"), ctx.version("docker_dug2")
    expect_plain_named(m, r, v1, v2)
    st = m.run([BIN, "status"], check=False, quiet=True).out
    check("container-down: container plain" in st, f"status does not show it: {st}")


def s16_containers_restarted(m, ctx, tool):
    before = containers_setup(m, ctx)
    install_tool(m, ctx, jit=False)
    m.write("/etc/docker-upgrade-guard/config.toml",
            "# e2e\njit_patch = false\nrestart_containers = \"previously-running\"\n")
    r = m.apt("install", ctx.deb("docker_dug2"))
    expect_docker_up(m, "docker.io upgrade with restart_containers")
    plain = container_state(m, "plain")
    check(plain == (True, before["plain"][1]), f"plain not running again as the same container: {plain} vs {before['plain']}")
    check(not container_state(m, "stopped")[0], "the admin's stopped container was started")
    expect_said(r.out, "container plain (dug/tiny:1, restart policy no)", "started it again")
    expect_said(r.out, "1 did not: plain; started again: plain")
    evs = container_events(m)
    check(len(evs) == 1 and '"container-restarted"' in evs[0], f"events: {evs}")


def s17_containers_guard_on(m, ctx, tool):
    before = containers_setup(m, ctx)
    install_tool(m, ctx)
    main_before = m.main_pid("docker.service")
    r = m.apt("install", ctx.deb("docker_dug2"))
    check(m.main_pid("docker.service") == main_before, "dockerd was restarted with the guard on")
    check(container_state(m, "plain") == before["plain"], "plain went down with the guard on")
    named = [l for l in hook_lines(r.out) if "container" in l]
    check(not named, f"containers reported with the guard on: {named}")
    check(not container_events(m), f"container events with the guard on: {container_events(m)}")


SCENARIOS += [
    (15, "containers: plain (no restart policy) is named after a docker.io upgrade stopped it", s15_containers_named, BOTH),
    (16, "containers: restart_containers = previously-running starts plain again, same id", s16_containers_restarted, WITH),
    (17, "containers: guard on, nothing goes down, nothing reported", s17_containers_guard_on, WITH),
]


def s18_containers_try_restart(m, ctx, tool):
    """The Ubuntu shape (fixtures: docker.io +dugtr1, real debhelper): the upgrade stops nothing
    before; the new postinst try-restarts docker.service and docker.socket. dockerd restarts
    (live-restore off) and `plain` stays down; the tool started nothing, yet names it. Default
    config (guard on): the guard cannot keep a postinst restart from happening."""
    before = containers_setup(m, ctx, setup=None)
    check(before["plain"][0] and before["keep"][0] and not before["stopped"][0], f"setup: {before}")
    if tool:
        install_tool(m, ctx)
    v1, v2 = pkg_version(m, "docker.io"), ctx.version("docker_tr1")
    main_before = m.main_pid("docker.service")
    r = m.apt("install", ctx.deb("docker_tr1"))
    check(pkg_version(m, "docker.io") == v2, "docker.io was not upgraded")
    # try-restart: docker is running afterwards, as a new process; only `keep` (and c1) came back.
    expect_docker_up(m, "docker.io upgrade whose postinst try-restarts docker")
    main_after = m.main_pid("docker.service")
    check(main_after != main_before, f"dockerd was not restarted (MainPID {main_before}): the fixture is wrong")
    wait_until("keep running again", lambda: container_state(m, "keep")[0], 30)
    check(not container_state(m, "plain")[0], "plain is running after dockerd's restart (live-restore on?)")
    check(not container_state(m, "stopped")[0], "the admin's stopped container was started")
    if not tool:
        return
    expect_plain_named(m, r, v1, v2)


SCENARIOS += [
    (18, "containers: a docker.io postinst that try-restarts docker (Ubuntu's shape): plain is named",
     s18_containers_try_restart, BOTH),
]
