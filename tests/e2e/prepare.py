"""Setup shared by tests/e2e/run and tests/e2e/bench-recovery: rootfs, fixtures, golden image."""

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import scenarios
from machine import Fail, Machine, extract, remove_tree

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
GOLDEN_VERSION = 2
CACHE = Path(os.environ.get("DOCKER_UPGRADE_GUARD_CACHE", "/var/tmp/docker-upgrade-guard-cache"))


def preflight():
    if os.geteuid() != 0:
        raise Fail("must run as root (systemd-nspawn, nsenter, debootstrap)")
    # tests/support/rootfs installs systemd-container, debootstrap and zstd; apt-utils is ours.
    if shutil.which("apt-ftparchive") is None:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=False, timeout=600, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "apt-utils"],
                       check=False, timeout=600, env=env)
        if shutil.which("apt-ftparchive") is None:
            raise Fail("apt-ftparchive not found and `apt-get install apt-utils` did not bring it")


# The .debs each suite's rootfs carries in its apt cache (the containers have no network).
# trixie splits the client out of docker.io into docker-cli (only Recommended there).
DOWNLOAD = "docker.io,containerd,runc,tini,unattended-upgrades,python3-apt,busybox-static"
SUITES = {
    "bullseye": {"download": DOWNLOAD, "docker": ["docker.io"]},
    "bookworm": {"download": DOWNLOAD, "docker": ["docker.io"]},
    "trixie": {"download": DOWNLOAD + ",docker-cli", "docker": ["docker.io", "docker-cli"]},
}


def rootfs_tarball(suite="bookworm"):
    p = subprocess.run([str(REPO_ROOT / "tests/support/rootfs"), "--suite", suite,
                        "--download", SUITES[suite]["download"]], stdout=subprocess.PIPE, timeout=1800)
    if p.returncode != 0:
        raise Fail(f"tests/support/rootfs failed (exit {p.returncode}); see its messages above")
    return Path(p.stdout.decode().strip().splitlines()[-1])


def offline_apt(root):
    """Point the container's apt at its own archive cache only.

    The containers have no network, so only the pre-downloaded .debs can be installed anyway; the
    full Debian lists only cost time (every `apt-get install ./x.deb` re-parses ~50 MB of them:
    seconds per call on a busy 2-core machine). The host's sources are kept aside under
    /etc/apt/sources.e2e-offline/ for a person who wants them back.
    """
    archives = root / "var/cache/apt/archives"
    with open(archives / "Packages", "w") as out:
        subprocess.run(["apt-ftparchive", "packages", "."], cwd=archives, stdout=out, check=True, timeout=120)
    aside = root / "etc/apt/sources.e2e-offline"
    aside.mkdir()
    for f in [root / "etc/apt/sources.list", *(root / "etc/apt/sources.list.d").iterdir()]:
        if f.is_file():
            f.rename(aside / f.name)
    (root / "etc/apt/sources.list.d/e2e-archive-cache.list").write_text(
        "deb [trusted=yes] file:/var/cache/apt/archives ./\n")
    for f in (root / "var/lib/apt/lists").iterdir():
        if f.is_file():
            f.unlink()


def golden(rootfs, fixdir, workdir, log, suite="bookworm"):
    """The suite + docker.io from the cache + c1 running; cached as a tarball next to the rootfs."""
    path = CACHE / f"golden-{rootfs.name.replace('.tar.zst', '')}-g{GOLDEN_VERSION}.tar.zst"
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        root = workdir / f"dug-golden-{os.getpid()}"
        extract(rootfs, root)
        try:
            offline_apt(root)
            with Machine("golden", root, log, binds=[(fixdir, scenarios.FIX)]) as m:
                m.apt("update")
                m.apt("install", "--no-install-recommends", *SUITES[suite]["docker"])
                scenarios.wait_until("docker.service active", lambda: m.is_active("docker.service") == "active")
                m.run(["docker", "import", f"{scenarios.FIX}/tiny.tar", "dug/tiny:1"])
                m.run(["docker", "run", "-d", "--name", "c1", "--init", "--restart=always", "dug/tiny:1",
                       "/bin/sleep", "1000000"])
                scenarios.wait_until("c1 running", lambda: scenarios.container_pid(m))
                # The journal of the build boot is of no use to the scenarios.
            tmp = path.with_suffix(".tmp")
            subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-I", "zstd -q -T0 -1",
                            "-cf", str(tmp), "."], check=True, timeout=600)
            tmp.rename(path)
        finally:
            remove_tree(root)
        return path



def tool_deb(given):
    """The .deb under test: --deb, else $DOCKER_UPGRADE_GUARD_DEB, else the crude stand-in."""
    deb = given or os.environ.get("DOCKER_UPGRADE_GUARD_DEB")
    if not deb:
        print("e2e: no --deb given: building the crude stand-in (tests/e2e/crude-deb)", flush=True)
        p = subprocess.run([str(HERE / "crude-deb")], stdout=subprocess.PIPE, timeout=1800)
        if p.returncode != 0:
            raise Fail("tests/e2e/crude-deb failed")
        deb = p.stdout.decode().strip().splitlines()[-1]
    if not Path(deb).is_file():
        raise Fail(f"--deb {deb}: no such file")
    return Path(deb)
