"""Fixtures built at run time from Debian's real .debs (taken from the cached rootfs).

The 2020 Ubuntu shapes, reproduced on bookworm's packages (the control member rebuilt with the
Version bumped and the scripts edited; Debian's data member reused as is):
  containerd +dug1, +dug2   prerm stops containerd on EVERY call (debhelper's old always-stop
                            block) and postinst only `start`s it (dh_installsystemd
                            --no-restart-after-upgrade). dpkg runs the OLD prerm, so the harm
                            happens when upgrading FROM +dug1.
  containerd +dug1sc        the same, but the prerm calls `systemctl stop` directly (bypasses
                            policy-rc.d; for the policy-rc.d scenario).
  containerd +dugs1         Debian's scripts unchanged, only the Version bumped (stock upgrade).
  docker.io  +dug1, +dug2   prerm stops docker.service and docker.socket on upgrade, postinst
                            does not start them.
  bindsto.conf              drop-in: docker.service BindsTo=containerd.service.
  partof.conf               drop-in: docker.socket PartOf=docker.service (focal/upstream shape).
  tiny.tar                  a root file system of busybox-static for `docker import`.
  repo/                     a flat apt repository (Origin dug-e2e) with containerd +dug2.
"""

import io
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

REPO_ORIGIN = "dug-e2e"

CONTAINERD_ALWAYS_STOP_PRERM = """#!/bin/sh
set -e
# Automatically added by dh_systemd_start/12.1.1ubuntu1 (the always-stop shape of LP: #1870514)
if [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop 'containerd.service' >/dev/null || true
fi
# End automatically added section
"""

CONTAINERD_SYSTEMCTL_STOP_PRERM = """#!/bin/sh
set -e
# Stops containerd on every call, without going through policy-rc.d.
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


def sh(argv, **kw):
    return subprocess.run(argv, check=True, timeout=kw.pop("timeout", 300), **kw)


def deb_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], check=True, capture_output=True, text=True,
                          timeout=60).stdout.strip()


def replace_exactly(text, old, new, what):
    if text.count(old) != 1:
        raise RuntimeError(f"fixture build: expected exactly one {what} in Debian's script, found "
                           f"{text.count(old)}; has the package changed?")
    return text.replace(old, new)


def _ar_members(data):
    """The members of an ar archive (a .deb) as (name, bytes), in order."""
    if not data.startswith(b"!<arch>\n"):
        raise RuntimeError("not an ar archive")
    pos, out = 8, []
    while pos < len(data):
        hdr = data[pos:pos + 60]
        name = hdr[0:16].decode().strip().rstrip("/")
        size = int(hdr[48:58].decode().strip())
        out.append((name, data[pos + 60:pos + 60 + size]))
        pos += 60 + size + (size & 1)
    return out


def _ar_write(path, members):
    with open(path, "wb") as f:
        f.write(b"!<arch>\n")
        for name, body in members:
            f.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode())
            f.write(body)
            if len(body) & 1:
                f.write(b"\n")


def repack(src_deb, out_dir, version, scripts):
    """Repack src_deb with Version=version; scripts maps name -> function(old_text) -> new_text.

    Only the control member is rebuilt; Debian's data member is reused byte for byte (no
    recompression: the big packages repack in milliseconds, and what gets installed is Debian's).
    """
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        ctrl = Path(tmp) / "DEBIAN"
        sh(["dpkg-deb", "-e", str(src_deb), str(ctrl)])
        control = ctrl / "control"
        control.write_text(re.sub(r"(?m)^Version: .*$", f"Version: {version}", control.read_text()))
        for name, edit in scripts.items():
            p = ctrl / name
            old = p.read_text() if p.exists() else ""
            p.write_text(edit(old))
            p.chmod(0o755)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
            def root_owned(ti):
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = "root"
                ti.mtime = 0
                return ti
            tar.add(str(ctrl), arcname=".", recursive=False, filter=root_owned)
            for p in sorted(ctrl.iterdir()):
                tar.add(str(p), arcname=f"./{p.name}", filter=root_owned)
        members = _ar_members(Path(src_deb).read_bytes())
        names = [n for n, _ in members]
        if names[0] != "debian-binary" or not names[1].startswith("control.tar") \
                or not names[2].startswith("data.tar"):
            raise RuntimeError(f"{src_deb}: unexpected .deb members {names}")
        pkg = deb_field(src_deb, "Package")
        arch = deb_field(src_deb, "Architecture")
        out = Path(out_dir) / f"{pkg}_{version.split(':')[-1]}_{arch}.deb"
        _ar_write(out, [members[0], ("control.tar.gz", buf.getvalue()), members[2]])
    # dpkg itself must accept it.
    subprocess.run(["dpkg-deb", "--info", str(out)], check=True, capture_output=True, timeout=60)
    return out


def containerd_start_only_postinst(old):
    return replace_exactly(
        old,
        '\t\tif [ -n "$2" ]; then\n\t\t\t_dh_action=restart\n\t\telse\n\t\t\t_dh_action=start\n\t\tfi\n'
        "\t\tdeb-systemd-invoke $_dh_action 'containerd.service' >/dev/null || true\n",
        "\t\tdeb-systemd-invoke start 'containerd.service' >/dev/null || true\n",
        "restart-after-upgrade block",
    )


def docker_always_stop_prerm(old):
    return replace_exactly(
        old,
        'if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = remove ] && [ -d /run/systemd/system ] ; then\n'
        "\tdeb-systemd-invoke stop 'docker.service' 'docker.socket'",
        "if [ -d /run/systemd/system ]; then\n\tdeb-systemd-invoke stop 'docker.service' 'docker.socket'",
        "stop-on-remove block",
    )


def docker_no_start_postinst(old):
    return replace_exactly(old, "\t\tdeb-systemd-invoke start 'docker.service' 'docker.socket' >/dev/null || true\n",
                           "", "start of docker.service/docker.socket")


def build(rootfs_tarball, out_dir):
    """Builds every fixture into out_dir (bind-mounted read-only at /root/fixtures); returns a dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src = out / "src"
    src.mkdir()
    sh(["tar", "--zstd", "-xf", str(rootfs_tarball), "-C", str(src), "--wildcards", "--no-anchored",
        "--strip-components=5", "./var/cache/apt/archives/containerd_*.deb",
        "./var/cache/apt/archives/docker.io_*.deb", "./var/cache/apt/archives/busybox-static_*.deb"])
    [containerd] = src.glob("containerd_*.deb")
    [docker] = src.glob("docker.io_*.deb")
    [busybox] = src.glob("busybox-static_*.deb")
    cv, dv = deb_field(containerd, "Version"), deb_field(docker, "Version")

    f = {"containerd_version": cv, "docker_version": dv}
    harmful_c = {"prerm": lambda _: CONTAINERD_ALWAYS_STOP_PRERM, "postinst": containerd_start_only_postinst}
    for n in (1, 2):
        f[f"containerd_dug{n}"] = repack(containerd, out, f"{cv}+dug{n}", harmful_c)
        f[f"docker_dug{n}"] = repack(docker, out, f"{dv}+dug{n}",
                                     {"prerm": docker_always_stop_prerm, "postinst": docker_no_start_postinst})
    f["containerd_dug1sc"] = repack(containerd, out, f"{cv}+dug1sc",
                                    {"prerm": lambda _: CONTAINERD_SYSTEMCTL_STOP_PRERM,
                                     "postinst": containerd_start_only_postinst})
    f["containerd_stock_bump"] = repack(containerd, out, f"{cv}+dugs1", {})
    for k in ("containerd_version", "docker_version"):
        f[k.replace("_version", "_stock_version")] = f.pop(k)

    (out / "bindsto.conf").write_text(BINDSTO_DROPIN)
    (out / "partof.conf").write_text(PARTOF_DROPIN)

    # tiny image: busybox-static's /bin/busybox plus the two applets the container uses.
    img = out / "img"
    (img / "bin").mkdir(parents=True)
    p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(busybox)], stdout=subprocess.PIPE)
    sh(["tar", "-x", "-C", str(img), "./bin/busybox"], stdin=p.stdout)
    p.wait(timeout=60)
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
