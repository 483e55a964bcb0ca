//! The service manager behind one small trait: real `systemctl` at an absolute path with every
//! call bounded in time; tests may point it at a recording stand-in with `--systemctl PATH`.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod bus;

/// The only environment a child gets: a fixed PATH and the C locale (stable, parseable output).
pub const CHILD_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Default bound for `show` and `is-system-running`. These answer in milliseconds normally,
/// but systemd can be slow while apt runs `daemon-reload`s; a hook must still never hang.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// More output than this from one call is not systemctl talking to us: it is cut off.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// The properties `show` asks for, in the order systemctl prints them.
pub const SHOW_PROPERTIES: &str = "Id,LoadState,ActiveState,SubState,UnitFileState,MainPID,InactiveEnterTimestampMonotonic,InactiveExitTimestampMonotonic";

/// `systemctl show` properties of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnitState {
    pub unit: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    pub unit_file_state: String,
    pub main_pid: u32,
    /// When the unit last entered `inactive`/`failed`, and last left it (systemd's
    /// `Inactive{Enter,Exit}TimestampMonotonic`: CLOCK_MONOTONIC, µs; 0 = never). `None`: not
    /// told. The dpkg trigger stage tells from them what happened during its dpkg run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_enter_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_exit_us: Option<u64>,
}

impl UnitState {
    pub fn is_active(&self) -> bool {
        matches!(
            self.active_state.as_str(),
            "active" | "reloading" | "activating"
        )
    }
}

pub trait ServiceManager {
    /// States of `units`, in the same order.
    fn show(&self, units: &[&str]) -> anyhow::Result<Vec<UnitState>>;
    /// `systemctl start UNIT` and wait for the job (bounded by `timeout`).
    fn start(&self, unit: &str, timeout: Duration) -> anyhow::Result<()>;
    /// `systemctl restart UNIT`, bounded.
    fn restart(&self, unit: &str, timeout: Duration) -> anyhow::Result<()>;
    /// `systemctl is-system-running` (`running`, `degraded`, `stopping`, ...).
    fn system_state(&self) -> anyhow::Result<String>;
}

/// The real thing: runs `systemctl` (absolute path, no shell, clean environment).
#[derive(Debug, Clone)]
pub struct Systemctl {
    pub path: PathBuf,
    /// Bound for calls that should answer at once (`show`, `is-system-running`).
    pub query_timeout: Duration,
    /// `show` may ask systemd over its private socket (the real systemctl, not a stand-in).
    pub bus: bool,
}

impl Systemctl {
    /// `/usr/bin/systemctl`, else `/bin/systemctl`, unless `path` overrides it (a relative
    /// override is made absolute against the current directory, since children run in `/`).
    pub fn new(path: Option<PathBuf>) -> Systemctl {
        let bus = path.is_none();
        let path = match path {
            Some(p) => std::path::absolute(&p).unwrap_or(p),
            None if Path::new("/usr/bin/systemctl").exists() => PathBuf::from("/usr/bin/systemctl"),
            None => PathBuf::from("/bin/systemctl"),
        };
        Systemctl {
            path,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            bus,
        }
    }

    /// How the command is named in messages: `systemctl start docker.service` (options left
    /// out, they only add noise).
    fn describe(&self, args: &[&str]) -> String {
        let prog = self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        std::iter::once(prog.as_str())
            .chain(args.iter().copied().filter(|a| !a.starts_with('-')))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs systemctl and requires exit status 0.
    fn run_ok(&self, args: &[&str], timeout: Duration) -> Result<Output> {
        let what = self.describe(args);
        let out = run_bounded(&self.path, args, timeout, &what)?;
        if !out.status.success() {
            bail!(
                "{what} failed ({}){}",
                describe_status(out.status),
                stderr_suffix(&out)
            );
        }
        Ok(out)
    }

    fn job(&self, verb: &str, unit: &str, timeout: Duration) -> Result<()> {
        check_unit_arg(unit)?;
        // Plain start/restart: systemctl waits until the job is done, so success means the unit
        // came up (or failed, with systemd's message on stderr). The default job mode
        // (`replace`) is wanted: a stop job left over from the package operation must not
        // block the start that undoes it.
        self.run_ok(&["--no-ask-password", verb, "--", unit], timeout)
            .map(|_| ())
    }
}

impl ServiceManager for Systemctl {
    fn show(&self, units: &[&str]) -> Result<Vec<UnitState>> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        for u in units {
            check_unit_arg(u)?;
        }
        // What systemctl would do as root, without the ~10 ms of starting it. Any trouble on
        // the bus: systemctl asks again, with what is left of the bound (none after a timeout:
        // systemd is not answering either way).
        let mut timeout = self.query_timeout;
        if self.bus && bus::available() {
            let start = Instant::now();
            match bus::show(units, timeout) {
                Ok(states) => return Ok(states),
                Err(e) => {
                    timeout = timeout.saturating_sub(start.elapsed());
                    if timeout < Duration::from_millis(10) {
                        return Err(e);
                    }
                }
            }
        }
        let prop = format!("--property={SHOW_PROPERTIES}");
        let mut args = vec!["show", prop.as_str(), "--"];
        args.extend_from_slice(units);
        let out = self.run_ok(&args, timeout)?;
        let text = String::from_utf8(out.stdout).map_err(|_| {
            anyhow::anyhow!("{} printed output that is not UTF-8", self.describe(&args))
        })?;
        parse_show(&text, units)
            .with_context(|| format!("cannot understand the output of {}", self.describe(&args)))
    }

    fn start(&self, unit: &str, timeout: Duration) -> Result<()> {
        self.job("start", unit, timeout)
    }

    fn restart(&self, unit: &str, timeout: Duration) -> Result<()> {
        self.job("restart", unit, timeout)
    }

    fn system_state(&self) -> Result<String> {
        let args = ["is-system-running"];
        let what = self.describe(&args);
        // Exits non-zero for anything but `running` (degraded, starting, offline...): the
        // answer is on stdout either way.
        let out = run_bounded(&self.path, &args, self.query_timeout, &what)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let state = stdout.lines().next().unwrap_or("").trim();
        if state.is_empty() || !state.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            bail!(
                "{what} gave no state ({}){}",
                describe_status(out.status),
                stderr_suffix(&out)
            );
        }
        Ok(state.to_string())
    }
}

/// Unit names from configuration end up on a command line: refuse anything that could be
/// taken for an option or is not one plain unit name.
fn check_unit_arg(unit: &str) -> Result<()> {
    if unit.is_empty()
        || unit.starts_with('-')
        || !unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
    {
        bail!("{unit:?} is not a unit name systemctl can be given");
    }
    Ok(())
}

/// Parses `systemctl show --property=...` output for several units: blocks of `Key=Value`
/// lines separated by blank lines, one block per unit in argument order. Blocks are matched by
/// `Id`; a block whose `Id` is none of the names asked for (systemd printed the real name of an
/// alias) is taken for the name at its position. Returned in the order of `units`.
pub fn parse_show(text: &str, units: &[&str]) -> Result<Vec<UnitState>> {
    // A few properties per unit: a list is smaller than a map here (binary size).
    let mut blocks: Vec<Vec<(&str, &str)>> = Vec::new();
    let mut cur: Option<Vec<(&str, &str)>> = None;
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            blocks.extend(cur.take());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("line {}: {line:?} is not Key=Value", i + 1);
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("line {}: {key:?} is not a property name", i + 1);
        }
        let block = cur.get_or_insert_with(Vec::new);
        if get(block, key).is_some() {
            bail!("line {}: {key} appears twice in one unit", i + 1);
        }
        block.push((key, value));
    }
    blocks.extend(cur.take());
    if blocks.len() != units.len() {
        bail!(
            "{} unit(s) described for {} asked ({})",
            blocks.len(),
            units.len(),
            units.join(" ")
        );
    }
    let ids: Vec<&str> = blocks
        .iter()
        .map(|b| get(b, "Id").filter(|id| !id.is_empty()))
        .collect::<Option<_>>()
        .context("a unit is described without Id=")?;
    let mut out = Vec::with_capacity(units.len());
    for (pos, name) in units.iter().enumerate() {
        let idx = ids.iter().position(|id| id == name).unwrap_or(pos);
        let b = &blocks[idx];
        let field = |k: &str, may_be_empty: bool| -> Result<String> {
            let v = get(b, k).unwrap_or("");
            if !is_state(v, may_be_empty) {
                bail!("{name}: {k}={v:?} is not a state");
            }
            Ok(v.to_string())
        };
        let main_pid = match get(b, "MainPID").unwrap_or("0") {
            "" => 0,
            v => v
                .parse::<u32>()
                .map_err(|_| anyhow::anyhow!("{name}: MainPID={v:?} is not a number"))?,
        };
        let stamp = |k: &str| -> Result<Option<u64>> {
            match get(b, k).unwrap_or("") {
                "" => Ok(None),
                v => v
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| anyhow::anyhow!("{name}: {k}={v:?} is not a number")),
            }
        };
        out.push(UnitState {
            unit: name.to_string(),
            load_state: field("LoadState", false)?,
            active_state: field("ActiveState", false)?,
            sub_state: field("SubState", false)?,
            unit_file_state: field("UnitFileState", true)?,
            main_pid,
            inactive_enter_us: stamp("InactiveEnterTimestampMonotonic")?,
            inactive_exit_us: stamp("InactiveExitTimestampMonotonic")?,
        });
    }
    Ok(out)
}

/// A state word as systemd prints them: lowercase and `-`, empty only where allowed.
fn is_state(v: &str, may_be_empty: bool) -> bool {
    (may_be_empty || !v.is_empty()) && v.bytes().all(|c| c.is_ascii_lowercase() || c == b'-')
}

fn get<'a>(block: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    block.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
}

/// What a bounded child printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `program` (absolute path, no shell) with `args`, stdin from /dev/null, the environment
/// cleared except `PATH` and `LANG=C`, in `/`, in its own process group. If it has not exited
/// after `timeout`, the whole group is killed and the error says "`what` did not answer within
/// N s". Output beyond 1 MiB per stream is discarded.
pub fn run_bounded(program: &Path, args: &[&str], timeout: Duration, what: &str) -> Result<Output> {
    let start = Instant::now();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", CHILD_PATH)
        .env("LANG", "C")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            // ETXTBSY: the file was just written and a writable fd is still open somewhere
            // (another thread's fork). It passes in milliseconds; retry within the bound.
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && start.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => bail!("cannot run {}: {e}", program.display()),
        }
    };
    let pgid = child.id();
    // Until it is reaped: the watchdog and the signal handler kill this group on their way out.
    let _registered = crate::children::register(pgid as i32);
    let out_rx = drain(child.stdout.take());
    let err_rx = drain(child.stderr.take());
    let kill_group = || {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    };

    let mut nap = Duration::from_micros(250);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                kill_group();
                let _ = child.wait();
                return Err(e).with_context(|| format!("cannot wait for {what}"));
            }
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            kill_group();
            let _ = child.wait();
            bail!("{what} did not answer within {}", fmt_secs(timeout));
        }
        std::thread::sleep(nap.min(timeout.checked_sub(elapsed).unwrap()));
        // Fine-grained while a quick answer is likely (the hook's no-op cost is counted in
        // milliseconds), coarser for a slow job.
        if elapsed > Duration::from_millis(100) {
            nap = (nap * 2).min(Duration::from_millis(25));
        }
    };

    // The pipes close when the child exits, unless something it started still holds them:
    // give that a moment, then kill what is left of the group.
    let collect = |rx: &mpsc::Receiver<Vec<u8>>| -> Option<Vec<u8>> {
        rx.recv_timeout(Duration::from_millis(500))
            .ok()
            .or_else(|| {
                kill_group();
                rx.recv_timeout(Duration::from_millis(500)).ok()
            })
    };
    let stdout =
        collect(&out_rx).with_context(|| format!("{what} exited but its output never ended"))?;
    let stderr = collect(&err_rx).unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Reads a pipe to its end on a thread (so a chatty child never blocks on a full pipe),
/// keeping at most [`MAX_OUTPUT`] bytes.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    match pipe {
        Some(mut pipe) => {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = (&mut pipe).take(MAX_OUTPUT).read_to_end(&mut buf);
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
                let _ = tx.send(buf);
            });
        }
        None => {
            let _ = tx.send(Vec::new());
        }
    }
    rx
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".to_string(),
    }
}

/// `: first lines of stderr` on one line, or nothing.
fn stderr_suffix(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let mut msg: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if msg.is_empty() {
        return String::new();
    }
    if msg.chars().count() > 300 {
        msg = msg.chars().take(300).collect::<String>() + "...";
    }
    format!(": {msg}")
}

/// `20 s`, `0.5 s`.
pub fn fmt_secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_parser_table() {
        let two = "Id=containerd.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nMainPID=812\n\nId=docker.service\nLoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=enabled\nMainPID=0\n";
        let r = parse_show(two, &["docker.service", "containerd.service"]).unwrap();
        assert_eq!(r[0].unit, "docker.service");
        assert!(!r[0].is_active());
        assert_eq!(r[1].main_pid, 812);
        assert!(r[1].is_active());

        let bad: &[(&str, &str)] = &[
            (
                "Id=a.service\nLoadState=loaded\n",
                "1 unit(s) described for 2",
            ),
            ("Id=a.service\ngarbage\n", "not Key=Value"),
            ("Id=a.service\nId=b.service\n", "twice"),
            (
                "LoadState=loaded\nActiveState=active\nSubState=dead\n\n",
                "without Id",
            ),
            (
                "Id=a.service\nLoadState=loaded\nActiveState=active\nSubState=x\nMainPID=-1\n",
                "MainPID",
            ),
            (
                "Id=a.service\nLoadState=loaded\nActiveState=Active now\nSubState=x\n",
                "not a state",
            ),
            (
                "Id=a.service\nLoadState=\nActiveState=active\nSubState=x\n",
                "LoadState",
            ),
            ("Id=a.service\nLoad State=x\n", "property name"),
        ];
        for (text, want) in bad {
            let units: &[&str] = if want.contains("for 2") {
                &["a.service", "b.service"]
            } else {
                &["a.service"]
            };
            let err = format!("{:#}", parse_show(text, units).unwrap_err());
            assert!(err.contains(want), "{text:?}: {err}");
        }

        // An alias: systemd answers with the real Id; positional match.
        let alias = "Id=docker.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nMainPID=9\n";
        let r = parse_show(alias, &["moby.service"]).unwrap();
        assert_eq!((r[0].unit.as_str(), r[0].main_pid), ("moby.service", 9));
        // Not found: still a block, empty UnitFileState accepted.
        let nf = "Id=x.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\nMainPID=0\n";
        assert_eq!(
            parse_show(nf, &["x.service"]).unwrap()[0].load_state,
            "not-found"
        );
    }

    #[test]
    fn unit_args_are_checked() {
        assert!(check_unit_arg("docker.service").is_ok());
        assert!(check_unit_arg("getty@tty1.service").is_ok());
        for bad in ["", "--all", "-H", "a b.service", "a;b"] {
            assert!(check_unit_arg(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seconds_are_readable() {
        assert_eq!(fmt_secs(Duration::from_secs(20)), "20 s");
        assert_eq!(fmt_secs(Duration::from_millis(500)), "0.5 s");
    }

    #[test]
    fn show_output_is_parsed_by_id_then_position() {
        let text = "Id=reboot.target\nLoadState=loaded\nActiveState=inactive\nSubState=dead\n\
                    UnitFileState=\nInactiveEnterTimestampMonotonic=0\n\n\
                    Id=docker.service\nLoadState=loaded\nActiveState=active\nSubState=running\n\
                    UnitFileState=enabled\nMainPID=42\nInactiveEnterTimestampMonotonic=5\n\
                    InactiveExitTimestampMonotonic=7\n";
        // Blocks in the other order than asked; the alias is matched by position.
        let got = parse_show(text, &["ctrl-alt-del.target", "docker.service"]).unwrap();
        assert_eq!(got[0].unit, "ctrl-alt-del.target");
        assert_eq!(
            (
                got[0].main_pid,
                got[0].inactive_enter_us,
                got[0].inactive_exit_us
            ),
            (0, Some(0), None)
        );
        assert_eq!(got[1].unit, "docker.service");
        assert_eq!(got[1].sub_state, "running");
        assert_eq!(got[1].unit_file_state, "enabled");
        assert_eq!(
            (
                got[1].main_pid,
                got[1].inactive_enter_us,
                got[1].inactive_exit_us
            ),
            (42, Some(5), Some(7))
        );
        let twice = "Id=a.service\nLoadState=loaded\nLoadState=loaded\nActiveState=active\nSubState=running\n";
        assert!(parse_show(twice, &["a.service"])
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let no_id = "LoadState=loaded\nActiveState=active\nSubState=running\n";
        assert!(parse_show(no_id, &["a.service"]).is_err());
        let bad = "Id=a.service\nLoadState=Loaded\nActiveState=active\nSubState=running\n";
        assert!(parse_show(bad, &["a.service"]).is_err());
    }
}
