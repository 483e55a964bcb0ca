"""A booted bookworm container under systemd-nspawn, driven through nsenter + systemd-run.

The host has no systemd, so machinectl and `systemd-run -M` are out: we start nspawn ourselves,
find the container's PID 1 (the nspawn child whose innermost PID is 1) and run every command as
a transient unit of the container's own systemd, so it sees the container's real service manager
(what an admin's shell would see).
"""

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

# Every live machine and child process, so that Ctrl-C / SIGTERM / a crash tears all of them down.
_LIVE = set()
_CHILDREN = set()
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


class Fail(Exception):
    """A failed assertion or an unusable environment, with a message a person can act on."""


def destroy_all():
    """Stop everything: no new machine boots, child processes are killed, machines torn down."""
    _STOPPING.set()
    with _LIVE_LOCK:
        machines, children = list(_LIVE), list(_CHILDREN)
    for p in children:
        try:
            p.kill()
        except OSError:
            pass
    for m in machines:
        m.terminate()  # all at once, then wait for each
    for m in machines:
        m.destroy()


def call(argv, timeout, **kw):
    """subprocess.run with a timeout whose child destroy_all() can kill. Returns (rc|None, stdout)."""
    if _STOPPING.is_set():
        raise Fail("interrupted")
    p = subprocess.Popen(argv, **kw)
    with _LIVE_LOCK:
        _CHILDREN.add(p)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return None, out
    finally:
        with _LIVE_LOCK:
            _CHILDREN.discard(p)


def _enter_cgroups(procs_files):
    """In the forked child before exec: move this process into the given cgroups ("0" = self)."""
    for f in procs_files:
        fd = os.open(f, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def extract(tarball, directory):
    directory = Path(directory)
    directory.mkdir(parents=True)
    rc, _ = call(["tar", "--numeric-owner", "--xattrs", "--zstd", "-xpf", str(tarball), "-C", str(directory)],
                 timeout=300)
    if rc != 0:
        raise Fail(f"unpacking {tarball} into {directory} failed (tar exit {rc})")


def remove_tree(directory):
    """rm -rf, after making sure nothing is still mounted below it (never cross into a mount)."""
    directory = os.path.realpath(directory)
    if not os.path.exists(directory):
        return
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    for mp in sorted((m for m in mounts if m == directory or m.startswith(directory + "/")), reverse=True):
        subprocess.run(["umount", "-l", mp], check=False, timeout=30)
    subprocess.run(["rm", "-rf", "--one-file-system", directory], check=False, timeout=300)


class Result:
    def __init__(self, argv, rc, out):
        self.argv, self.rc, self.out = argv, rc, out

    def __repr__(self):
        return f"Result(rc={self.rc}, argv={self.argv!r})"


class Machine:
    """One container. Use as a context manager: the container is always torn down."""

    def __init__(self, name, root, log, binds=()):
        self.name = name
        self.root = Path(root)  # the unpacked rootfs; its basename is nspawn's machine name
        self.log = log  # a file object: every command and its output go there
        self.binds = list(binds)  # (host_path, container_path), read-only
        self.nspawn = None
        self.pid1 = None
        self._console = None
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._destroyed = False
        self.panics = []  # Rust panic messages seen in any command's output (the tool must never panic)

    def __enter__(self):
        self.boot()
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False

    def note(self, text):
        self.log.write(f"[{time.monotonic() - self.t0:6.1f}] " + text.rstrip("\n") + "\n")
        self.log.flush()

    # --- lifecycle -----------------------------------------------------------------------------
    def boot(self, timeout=240):
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        argv = [
            "systemd-nspawn", "-D", str(self.root), "-b",
            "--register=no", "--keep-unit", "--private-network", "--console=read-only",
            "--system-call-filter=@keyring", "--system-call-filter=bpf",
        ]
        argv += [f"--bind-ro={h}:{c}" for h, c in self.binds]
        self.note("$ " + " ".join(argv))
        with _LIVE_LOCK:
            if _STOPPING.is_set():
                raise Fail("interrupted")
            _LIVE.add(self)
        self._console = open(self.root.parent / f"{self.root.name}.console.log", "wb")
        cgroups = self._own_cgroups()
        self.nspawn = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=self._console, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on the terminal is ours to handle, not nspawn's
            preexec_fn=lambda: _enter_cgroups(cgroups),
        )
        deadline = time.monotonic() + timeout
        while self.pid1 is None:
            if self.nspawn.poll() is not None:
                raise Fail(f"systemd-nspawn exited with {self.nspawn.returncode} before the container "
                           f"booted; console: {self.console_tail()}")
            if time.monotonic() > deadline:
                raise Fail(f"container PID 1 not found within {timeout} s; console: {self.console_tail()}")
            self.pid1 = self._find_pid1()
            if self.pid1 is None:
                time.sleep(0.05)
        # Wait for boot to finish ("degraded" is fine: some unit of a minimal rootfs may fail).
        while True:
            r = self.run(["systemctl", "is-system-running", "--wait"], timeout=max(5, deadline - time.monotonic()),
                         check=False, quiet=True, direct=True)
            state = r.out.strip().splitlines()[-1] if r.out.strip() else ""
            if state in ("running", "degraded"):
                break
            if time.monotonic() > deadline:
                raise Fail(f"container did not finish booting within {timeout} s (state {state!r}); "
                           f"console: {self.console_tail()}")
            time.sleep(0.2)
        self.note(f"# booted, PID 1 = {self.pid1} on the host, system state {state}")

    def _own_cgroups(self):
        """A cgroup of its own for this container, in every hierarchy nspawn uses.

        This host runs no systemd: with --keep-unit, nspawn roots the container's cgroup tree at
        its own cgroup, the hierarchy's root, so every concurrent container's systemd used the
        SAME /system.slice/docker.service: one container's stop removed the directory another's
        start was attaching to (219/CGROUP "Failed to attach to cgroup ... No such file or
        directory", seen as docker.socket failing at boot and a failed start, only when several
        containers ran at once)."""
        hybrid = [Path(h) for h in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd")
                  if Path(h, "cgroup.procs").exists()]
        pure = [Path("/sys/fs/cgroup")] if Path("/sys/fs/cgroup/cgroup.procs").exists() else []
        self._cgroups = [h / "docker-upgrade-guard-e2e" / self.root.name for h in (hybrid or pure)]
        for cg in self._cgroups:
            cg.mkdir(parents=True, exist_ok=True)
        return [str(c / "cgroup.procs") for c in self._cgroups]

    def _remove_cgroups(self):
        for cg in getattr(self, "_cgroups", []):
            for d in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                try:
                    d.rmdir()
                except OSError:
                    pass
            try:
                cg.rmdir()
            except OSError:
                pass

    def _find_pid1(self):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    status = f.read()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if fields.get("PPid", "").strip() != str(self.nspawn.pid):
                continue
            nspid = fields.get("NSpid", "").split()
            if len(nspid) >= 2 and nspid[-1] == "1":
                return int(entry)
        return None

    def console_tail(self, n=15):
        try:
            data = (self.root.parent / f"{self.root.name}.console.log").read_bytes().decode(errors="replace")
        except OSError:
            return "(no console log)"
        return " | ".join(data.strip().splitlines()[-n:])

    def terminate(self):
        """Ask the container to halt (SIGTERM to nspawn makes it tell systemd to power off)."""
        if self.nspawn is not None and self.nspawn.poll() is None:
            try:
                self.nspawn.send_signal(signal.SIGTERM)
            except OSError:
                pass

    def destroy(self):
        """Tear down; idempotent, and a second caller waits until the first one is done."""
        with self._lock:
            if not self._destroyed:
                self._teardown()
                self._destroyed = True
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def _teardown(self):
        if self.nspawn is not None and self.nspawn.poll() is None:
            self.terminate()
            try:
                self.nspawn.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.note("# nspawn did not stop within 20 s of SIGTERM: SIGKILL")
                for pid in (self.pid1, self.nspawn.pid):
                    if pid:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                try:
                    self.nspawn.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.note("# nspawn did not die after SIGKILL")
        if self._console:
            self._console.close()
        self._remove_cgroups()
        self.pid1 = None

    # --- commands ------------------------------------------------------------------------------
    def run(self, argv, timeout=120, check=True, env=None, quiet=False, direct=False):
        """Run argv in the container as a transient unit; returns Result (stdout+stderr merged).

        direct=True runs it with nsenter alone (no systemd-run), for use before systemd is up.
        """
        if self.pid1 is None:
            raise Fail(f"{self.name}: container is not running")
        if direct:
            cmd = ["nsenter", "-t", str(self.pid1), "-a"] + list(argv)
        else:
            cmd = ["nsenter", "-t", str(self.pid1), "-a", "systemd-run", "--wait", "--pipe", "--collect", "-q"]
            for k, v in (env or {}).items():
                cmd += ["-E", f"{k}={v}"]
            # systemd expands $VAR / ${VAR} in ExecStart= lines (systemd-run has no switch to turn
            # that off before v254): escape them so that argv arrives as given.
            cmd += ["--"] + [a.replace("$", "$$") for a in argv]
        start = time.monotonic()
        rc, out = call(cmd, timeout, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = (out or b"").decode(errors="replace")
        took = time.monotonic() - start
        self.panics += [line.strip() for line in out.splitlines() if "panicked at" in line]
        if not quiet:
            self.note(f"$ {' '.join(argv)}   # rc={rc} in {took:.2f} s")
            if out.strip():
                self.note("".join("    " + line + "\n" for line in out.rstrip("\n").split("\n")))
        if rc is None:
            raise Fail(f"timed out after {timeout} s: {' '.join(argv)}")
        if check and rc != 0:
            tail = " | ".join(out.strip().splitlines()[-8:])
            raise Fail(f"`{' '.join(argv)}` exited {rc}: {tail}")
        return Result(argv, rc, out)

    def sh(self, script, **kw):
        return self.run(["/bin/sh", "-ec", script], **kw)

    def apt(self, *args, timeout=300, check=True):
        return self.run(["apt-get", "-y", "-q", "-o", "Dpkg::Use-Pty=0"] + list(args), timeout=timeout,
                        check=check, env={"DEBIAN_FRONTEND": "noninteractive"})

    def is_active(self, unit):
        """`systemctl is-active UNIT` — the only safe 'stopped?' check (docker commands socket-activate)."""
        return self.run(["systemctl", "is-active", unit], check=False, quiet=True).out.strip()

    def main_pid(self, unit):
        return int(self.run(["systemctl", "show", "-p", "MainPID", "--value", unit], quiet=True).out.strip())

    def ping(self, timeout=5):
        r = self.run(["curl", "-s", "--max-time", str(timeout), "--unix-socket", "/run/docker.sock",
                      "http://localhost/_ping"], check=False, quiet=True, timeout=timeout + 10)
        return r.out.strip() == "OK"

    def write(self, path, text, mode=0o644):
        """Write a file inside the container's root (from the host side)."""
        p = self.root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        os.chmod(p, mode)
        self.note(f"# wrote {path}:\n" + "".join("    " + l + "\n" for l in text.rstrip("\n").split("\n")))


def copy_out(machine_root, pattern, dest):
    """Copy files matching a glob (relative to the rootfs) out to dest; returns the new paths."""
    found = sorted(Path(machine_root).glob(pattern.lstrip("/")))
    out = []
    for f in found:
        target = Path(dest) / f.name
        shutil.copy2(f, target)
        out.append(target)
    return out
