"""Fixtures built at run time from the suite's real .debs (taken from the cached rootfs).

The harmful packages are built by real debhelper (the host's: `dpkg-buildpackage -us -uc -b`
with bookworm's debhelper 13.11) from small generated source packages: the suite's own files
(binaries, units, conffiles: the data of Debian's .deb) copied in, the suite's own hand-written
maintainer-script parts kept (debhelper's sections cut out and replaced by #DEBHELPER#, its
dpkg-maintscript-helper lines turned back into debian/PKG.maintscript), and debian/rules calling
the debhelper options that produced the harmful shapes:
  containerd +dug1, +dug2   compat 9 `dh_systemd_start` without -r (LP: #1870514, focal's
                            containerd 1.3.3-0ubuntu2): the prerm stops containerd on EVERY call,
                            the postinst only `start`s it. dpkg runs the OLD prerm, so the harm
                            happens when upgrading FROM +dug1.
  containerd +dug1sc        the same postinst; the prerm calls `systemctl stop` directly
                            (bypasses policy-rc.d; for the policy-rc.d scenario). HAND-MADE: no
                            debhelper option writes a plain systemctl stop.
  containerd +dugs1         compat 13 `dh_installsystemd` with its defaults (Debian's own shape:
                            stop on remove only, restart after upgrade).
  docker.io  +dug1, +dug2   compat 9 `dh_systemd_start` without -r for docker.service and
                            docker.socket: the prerm stops both on every call; then the
                            postinst's start section is cut out BY HAND (the one hand-made part:
                            no debhelper option pairs the always-stop prerm with no start;
                            `--no-start` drops the prerm's stop too).
  docker.io  +dugtr1        compat 13 `dh_installsystemd --no-start --restart-after-upgrade`
                            (--no-start alone turns the compat-10+ default restart-after-upgrade
                            off and stops in the new preinst): no stop in preinst or prerm, and
                            the postinst runs `deb-systemd-invoke try-restart 'docker.service'
                            'docker.socket'` on every upgrade (postinst-systemd-restartnostart):
                            the Ubuntu focal-/bionic-updates shape. Built by debhelper alone,
                            nothing hand-made; upgraded to from the suite's stock docker.io,
                            whose prerm stops docker on remove only.
  bindsto.conf              drop-in: docker.service BindsTo=containerd.service.
  partof.conf               drop-in: docker.socket PartOf=docker.service (focal/upstream shape).
  tiny.tar                  a root file system of busybox-static for `docker import`.
  repo/                     a flat apt repository (Origin dug-e2e) with containerd +dug2.
The init-script (dh_installinit) and AppArmor (dh_apparmor) sections of Debian's scripts are left
out: on a systemd host they do nothing. Compat 9/10 dh_systemd_start skips a unit that has a SysV
script of the same name (docker.service, /etc/init.d/docker): the init script is set aside for
that step, as if the package shipped none. bookworm's debhelper looks for units only under
/lib/systemd/system, so trixie's /usr/lib ones are moved there for the build and back after.
(In debhelper 13, `dh_installsystemd --no-restart-after-upgrade` and `--no-start` stop the unit
in the NEW package's preinst, not in the prerm; see DEBHELPER_SHAPES.)

Built fixtures are cached per rootfs (and this file, and the host's debhelper) next to it.
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO_ORIGIN = "dug-e2e"
FIXTURES_VERSION = 1
CACHE = Path(os.environ.get("DOCKER_UPGRADE_GUARD_CACHE", "/var/tmp/docker-upgrade-guard-cache"))

# The one hand-made prerm (see above).
CONTAINERD_SYSTEMCTL_STOP_PRERM = """#!/bin/sh
set -e
# Hand-made (no debhelper option writes this): stops containerd on every call, without going
# through policy-rc.d.
if [ -d /run/systemd/system ]; then
	systemctl stop containerd.service >/dev/null || true
fi
"""

BINDSTO_DROPIN = """[Unit]
# The focal docker.io 19.03.8-0ubuntu1 shape (LP: #1870514).
BindsTo=containerd.service
"""

# Upstream's (and focal's) docker.socket has PartOf=docker.service; Debian bookworm's has not,
# so there the socket would stay listening and start docker again on the next client request.
PARTOF_DROPIN = """[Unit]
# The focal docker.io 19.03.8-0ubuntu1 / upstream shape of docker.socket.
PartOf=docker.service
"""

# The debhelper invocations (compat, debian/rules lines) per shape.
DEBHELPER_SHAPES = {
    "always-stop": (9, ["dh_systemd_enable", "dh_systemd_start"]),
    "stock": (13, ["dh_installsystemd"]),
    # Ubuntu's docker.io: postinst `deb-systemd-invoke try-restart` on upgrade, no stop before.
    "try-restart": (13, ["dh_installsystemd --no-start --restart-after-upgrade"]),
    # docker/docker-ce-packaging deb/common/rules: `dh $@` with `dh_installinit --name=docker`
    # (here --onlyscripts: the init script is already in place); compat 10 in the 18.09/19.03
    # era (dh_systemd_*, whose defaults restart after upgrade), compat 12 (`debhelper-compat
    # (= 12)`, dh_installsystemd) later.
    "docker-ce-10": (10, ["dh_installinit --onlyscripts --name=docker", "dh_systemd_enable", "dh_systemd_start"]),
    "docker-ce-12": (12, ["dh_installinit --onlyscripts --name=docker", "dh_installsystemd"]),
}

# The hand-made step of docker.io +dugN: the postinst's start section cut out (run by
# debian/rules after dh_installdeb).
DROP_START = r"""import re, sys
p = sys.argv[1]
s = open(p).read()
new = re.sub(r"(?ms)^# Automatically added by dh_systemd_start/[^\n]*\n(?:(?!# End automatically)[^\n]*\n)*?"
             r"[^\n]*deb-systemd-invoke start [^\n]*\n.*?^# End automatically added section\n", "", s)
if new == s:
    sys.exit(f"{p}: no dh_systemd_start start section")
open(p, "w").write(new)
"""


def sh(argv, **kw):
    return subprocess.run(argv, check=True, timeout=kw.pop("timeout", 300), **kw)


def deb_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], check=True, capture_output=True, text=True,
                          timeout=60).stdout.strip()


AUTO = re.compile(r"(?ms)^# Automatically added by (dh_[a-z_]+)/[^\n]*\n(.*?)^# End automatically added section\n")


def own_part(script):
    """Debian's script with debhelper's sections replaced by one #DEBHELPER# (at the first),
    and the dpkg-maintscript-helper lines of its dh_installdeb section."""
    maint = []
    for m in AUTO.finditer(script):
        if m.group(1) == "dh_installdeb":
            for line in m.group(2).splitlines():
                if line.startswith("dpkg-maintscript-helper "):
                    line = line[len("dpkg-maintscript-helper "):].replace(' -- "$@"', "").replace("\\~", "~")
                    maint.append(line)
    first = AUTO.search(script)
    if first is None:
        return script.rstrip("\n") + "\n\n#DEBHELPER#\n", maint
    text = script[:first.start()] + "#DEBHELPER#\n" + AUTO.sub("", script[first.end():])
    return text, maint


def debhelper_build(src_deb, out_dir, version, shape, hand_made=None, drop_start=False, name=None,
                    also=(), fields=None, own_scripts=True, unit_lines=None, hide_sysv=None):
    """The suite's .deb rebuilt by dpkg-buildpackage with the debhelper shape `shape`.

    hand_made maps a script name to its full text (installed without #DEBHELPER#); drop_start
    cuts the start section out of the generated postinst. For Docker Inc.'s packages: name
    renames the package, also adds the data of more .debs, fields overrides control fields,
    own_scripts=False leaves the scripts to debhelper alone, unit_lines maps a unit file name to
    lines added to its [Unit] section. hide_sysv (default: compat < 11) sets /etc/init.d aside
    while dh_systemd_* run."""
    compat, steps = DEBHELPER_SHAPES[shape]
    pkg, arch = name or deb_field(src_deb, "Package"), deb_field(src_deb, "Architecture")
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        src = Path(tmp) / f"{pkg}-src"
        deb = src / "debian"
        deb.mkdir(parents=True)
        for d in (src_deb, *also):
            sh(["dpkg-deb", "-x", str(d), str(src / "tree")])
        for unit, lines in (unit_lines or {}).items():
            [path] = [p for p in (src / "tree/lib/systemd/system" / unit, src / "tree/usr/lib/systemd/system" / unit)
                      if p.exists()]
            path.write_text(path.read_text().replace("[Unit]\n", "[Unit]\n" + "".join(l + "\n" for l in lines), 1))
        ctl = Path(tmp) / "ctl"
        sh(["dpkg-deb", "-e", str(src_deb), str(ctl)])
        maintscript = []
        for script in ("preinst", "postinst", "prerm", "postrm"):
            if hand_made and script in hand_made:
                (deb / f"{pkg}.{script}").write_text(hand_made[script])
                continue
            if own_scripts and (ctl / script).exists():
                text, maint = own_part((ctl / script).read_text())
                (deb / f"{pkg}.{script}").write_text(text)
                maintscript += [m for m in maint if m not in maintscript]
        if maintscript:
            (deb / f"{pkg}.maintscript").write_text("\n".join(maintscript) + "\n")
        fields = {**{k: deb_field(src_deb, k) for k in ("Pre-Depends", "Depends", "Recommends", "Suggests",
                                                        "Breaks", "Conflicts", "Replaces", "Provides")},
                  **(fields or {})}
        fields["Pre-Depends"] = ", ".join(x for x in (fields["Pre-Depends"], "${misc:Pre-Depends}") if x)
        fields["Depends"] = ", ".join(x for x in (fields["Depends"], "${misc:Depends}") if x)
        description = subprocess.run(["dpkg-deb", "-f", str(src_deb), "Description"], check=True,
                                      capture_output=True, text=True, timeout=60).stdout.rstrip("\n")
        bd = f"debhelper-compat (= {compat})" if compat >= 11 else f"debhelper (>= {compat})"
        if compat < 11:
            (deb / "compat").write_text(f"{compat}\n")
        (deb / "control").write_text(
            f"Source: {pkg}\nSection: admin\nPriority: optional\n"
            f"Maintainer: docker-upgrade-guard e2e <root@localhost>\nBuild-Depends: {bd}\n"
            f"Rules-Requires-Root: no\n\nPackage: {pkg}\nArchitecture: {arch}\n"
            + "".join(f"{k}: {v}\n" for k, v in fields.items() if v)
            + f"Description: {description}\n")
        (deb / "changelog").write_text(
            f"{pkg} ({version}) unstable; urgency=medium\n\n"
            f"  * docker-upgrade-guard e2e fixture: debhelper shape {shape!r}.\n\n"
            " -- docker-upgrade-guard e2e <root@localhost>  Thu, 01 Jan 2026 00:00:00 +0000\n")
        usr_units = (src / "tree/usr/lib/systemd/system").is_dir()
        rules = ["#!/usr/bin/make -f", "# Generated by tests/e2e/fixtures.py.", f"PKG := {pkg}",
                 "build build-arch build-indep:", "clean:", "\tdh_clean",
                 "binary binary-arch binary-indep:", "\tdh_prep", "\tcp -a tree/. debian/$(PKG)/"]
        if usr_units:  # bookworm's debhelper only looks under /lib/systemd/system
            rules += ["\tmkdir -p debian/$(PKG)/lib/systemd",
                      "\tmv debian/$(PKG)/usr/lib/systemd/system debian/$(PKG)/lib/systemd/system"]
        sysv = (compat < 11 if hide_sysv is None else hide_sysv) and (src / "tree/etc/init.d").is_dir()
        if sysv:
            rules += ["\tmv debian/$(PKG)/etc/init.d debian/init.d.aside"]
        rules += ["\t" + s for s in steps]
        if sysv:
            rules += ["\tmv debian/init.d.aside debian/$(PKG)/etc/init.d"]
        if usr_units:
            rules += ["\tmv debian/$(PKG)/lib/systemd/system debian/$(PKG)/usr/lib/systemd/system",
                      "\trmdir debian/$(PKG)/lib/systemd debian/$(PKG)/lib"]
        rules += ["\tdh_installdeb"]
        if drop_start:
            (deb / "drop-start.py").write_text(DROP_START)
            rules += ["\tpython3 debian/drop-start.py debian/$(PKG)/DEBIAN/postinst"]
        rules += ["\tdh_gencontrol", "\tdh_md5sums", "\tdh_builddeb -- -Zgzip -z1", ""]
        (deb / "rules").write_text("\n".join(rules))
        (deb / "rules").chmod(0o755)
        log = Path(tmp) / "build.log"
        with open(log, "w") as lf:
            p = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b", "-d"], cwd=src, stdout=lf,
                               stderr=subprocess.STDOUT, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"dpkg-buildpackage of {pkg} {version} ({shape}) failed: "
                               + " | ".join(log.read_text().splitlines()[-15:]))
        [built] = Path(tmp).glob(f"{pkg}_*_{arch}.deb")
        out = Path(out_dir) / built.name
        built.rename(out)
    return out


def build(rootfs_tarball, out_dir, suite="bookworm"):
    """Every fixture in out_dir (bind-mounted read-only at /root/fixtures); returns a dict.

    Built once per rootfs, this file and the host's debhelper, cached next to the rootfs; each
    run gets hard links of the cached files."""
    dh = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "debhelper"], capture_output=True,
                        timeout=60).stdout
    key = hashlib.sha256(Path(__file__).read_bytes() + dh + str(FIXTURES_VERSION).encode()).hexdigest()[:12]
    docker_inc = suite == "bookworm"  # Docker Inc.'s shapes run on bookworm (scenarios.NOT_ON)
    cached = CACHE / f"fixtures-{Path(rootfs_tarball).name.replace('.tar.zst', '')}-{key}"
    with open(f"{cached}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cached / "manifest.json").exists():
            tmp = Path(f"{cached}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(cached, ignore_errors=True)
            f = _build(rootfs_tarball, tmp, suite, docker_inc)
            (tmp / "manifest.json").write_text(json.dumps({
                "files": {k: v.name for k, v in f.items() if isinstance(v, Path)},
                "values": {k: v for k, v in f.items() if not isinstance(v, Path)}}))
            tmp.rename(cached)
    shutil.copytree(cached, out_dir, symlinks=True, copy_function=os.link)
    m = json.loads((cached / "manifest.json").read_text())
    return {**m["values"], **{k: Path(out_dir) / v for k, v in m["files"].items()}}


def docker_inc_packages(containerd, runc, docker, out, suite):
    """containerd.io and docker-ce as Docker's packaging builds them (docker/containerd-packaging
    debian/rules: `dh $@ --with systemd`, no debian/compat, so old debhelper's always-stop
    dh_systemd_start; docker/docker-ce-packaging deb/common/rules, see DEBHELPER_SHAPES), with
    Debian's containerd + runc and docker.io data standing in for Docker's binaries. The unit
    relations are Docker's, added to Debian's units: 18.09/19.03 docker.service
    BindsTo=containerd.service, 20.10 Requires=containerd.service; docker.socket
    PartOf=docker.service in both."""
    cv = deb_field(containerd, "Version").split("~")[0]
    runc_deps = deb_field(runc, "Depends")
    f = {}
    for n in (1, 2):
        f[f"containerd_io_{n}"] = debhelper_build(
            containerd, out, f"{cv}-{n}", "always-stop", name="containerd.io", also=[runc], own_scripts=False,
            fields={"Depends": runc_deps, "Provides": "containerd, runc", "Conflicts": "containerd, runc",
                    "Replaces": "containerd, runc", "Breaks": "", "Suggests": ""})
    # Docker's docker-ce conflicts with docker.io; Replaces: docker.io is ours, so that dpkg hands
    # the conffiles the removed docker.io leaves behind (/etc/default/docker) to docker-ce.
    deps = ", ".join(d for d in (x.strip() for x in deb_field(docker, "Depends").split(","))
                     if not d.startswith(("containerd", "runc")))
    common = {"Depends": f"containerd.io, {deps}", "Conflicts": "docker (<< 1.5~), docker-engine, docker.io",
              "Replaces": "docker-engine, docker.io", "Recommends": "", "Suggests": "", "Breaks": ""}
    for era, shape, relation in (("19.03.15", "docker-ce-10", "BindsTo=containerd.service"),
                                 ("20.10.24", "docker-ce-12", "Requires=containerd.service")):
        for n in (1, 2):
            f[f"docker_ce{era[:2]}_{n}"] = debhelper_build(
                docker, out, f"5:{era}~{n}-0~debian-{suite}", shape, name="docker-ce", own_scripts=False,
                fields=common, hide_sysv=False,
                unit_lines={"docker.service": [relation, "After=containerd.service"],
                            "docker.socket": ["PartOf=docker.service"]})
    return f


def expect_try_restart_only(deb):
    """The scenario-18 shape as debhelper wrote it: a try-restart of both units in the postinst,
    no stop in the preinst or prerm (another debhelper could write another shape)."""
    with tempfile.TemporaryDirectory() as ctl:
        sh(["dpkg-deb", "-e", str(deb), ctl])
        text = {s: (Path(ctl) / s).read_text() if (Path(ctl) / s).exists() else ""
                for s in ("preinst", "prerm", "postinst")}
    if "deb-systemd-invoke try-restart 'docker.service' 'docker.socket'" not in text["postinst"] or any(
            "deb-systemd-invoke stop" in text[s] for s in ("preinst", "prerm")):
        raise RuntimeError(f"{deb}: not the try-restart shape: {text}")


def _build(rootfs_tarball, out_dir, suite, docker_inc):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src = out / "src"
    src.mkdir()
    sh(["tar", "--zstd", "-xf", str(rootfs_tarball), "-C", str(src), "--wildcards", "--no-anchored",
        "--strip-components=5", "./var/cache/apt/archives/containerd_*.deb",
        "./var/cache/apt/archives/docker.io_*.deb", "./var/cache/apt/archives/busybox-static_*.deb",
        "./var/cache/apt/archives/runc_*.deb"])
    [containerd] = src.glob("containerd_*.deb")
    [docker] = src.glob("docker.io_*.deb")
    [busybox] = src.glob("busybox-static_*.deb")
    cv, dv = deb_field(containerd, "Version"), deb_field(docker, "Version")

    f = {"containerd_stock_version": cv, "docker_stock_version": dv}
    for n in (1, 2):
        f[f"containerd_dug{n}"] = debhelper_build(containerd, out, f"{cv}+dug{n}", "always-stop")
        f[f"docker_dug{n}"] = debhelper_build(docker, out, f"{dv}+dug{n}", "always-stop", drop_start=True)
    f["containerd_dug1sc"] = debhelper_build(containerd, out, f"{cv}+dug1sc", "always-stop",
                                             hand_made={"prerm": CONTAINERD_SYSTEMCTL_STOP_PRERM})
    f["containerd_stock_bump"] = debhelper_build(containerd, out, f"{cv}+dugs1", "stock")
    f["docker_tr1"] = debhelper_build(docker, out, f"{dv}+dugtr1", "try-restart")
    expect_try_restart_only(f["docker_tr1"])
    if docker_inc:
        [runc] = src.glob("runc_*.deb")
        f.update(docker_inc_packages(containerd, runc, docker, out, suite))

    (out / "bindsto.conf").write_text(BINDSTO_DROPIN)
    (out / "partof.conf").write_text(PARTOF_DROPIN)

    # tiny image: busybox-static's /bin/busybox plus the two applets the container uses.
    img = out / "img"
    (img / "bin").mkdir(parents=True)
    bb = out / "bb"
    sh(["dpkg-deb", "-x", str(busybox), str(bb)])  # /bin/busybox up to bookworm, /usr/bin from trixie on
    shutil.copy2(next(p for p in (bb / "bin/busybox", bb / "usr/bin/busybox") if p.is_file()), img / "bin/busybox")
    shutil.rmtree(bb)
    for applet in ("sh", "sleep"):
        (img / "bin" / applet).symlink_to("busybox")
    sh(["tar", "--numeric-owner", "-C", str(img), "-cf", str(out / "tiny.tar"), "."])
    shutil.rmtree(img)

    # local apt repository for the unattended-upgrades scenario
    repo = out / "repo"
    repo.mkdir()
    shutil.copy2(f["containerd_dug2"], repo)
    with open(repo / "Packages", "w") as pk:
        sh(["apt-ftparchive", "packages", "."], cwd=repo, stdout=pk)
    rel = subprocess.run(
        ["apt-ftparchive", "-o", f"APT::FTPArchive::Release::Origin={REPO_ORIGIN}",
         "-o", f"APT::FTPArchive::Release::Label={REPO_ORIGIN}", "-o", f"APT::FTPArchive::Release::Suite={REPO_ORIGIN}",
         "-o", f"APT::FTPArchive::Release::Codename={REPO_ORIGIN}", "release", "."],
        cwd=repo, check=True, capture_output=True, timeout=60).stdout
    (repo / "Release").write_bytes(rel)
    shutil.rmtree(src)
    return f


def in_container(path):
    """Where a fixture file is seen inside the container."""
    return f"/root/fixtures/{Path(path).name}"
