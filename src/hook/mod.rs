//! `docker-upgrade-guard hook STAGE`: called by apt and dpkg around every package operation.
//! Never fails apt: every stage exits 0 on its own errors (unless `--strict`), catches panics,
//! and is bounded in time.
//!
//! Stages (see `hooks/apt.conf`, `debian/postinst`, `debian/docker-upgrade-guard.triggers`):
//! - `apt-pkgs` (`DPkg::Pre-Install-Pkgs`, protocol 3): reads apt's stream to its end; if a
//!   watched package is in it, records the "before" ([`snapshot`], [`state`]) and runs the
//!   just-in-time guard ([`pre`]).
//! - `apt-post` (`DPkg::Post-Invoke`): starts again what the operation stopped ([`post`]).
//! - `dpkg-trigger` (our postinst, `triggered`: dpkg file triggers on the paths docker's and
//!   containerd's packages ship): the same for dpkg runs without apt, told from systemd's
//!   timestamps ([`trigger`]); inside apt (`DPKG_FRONTEND_LOCKED`) it returns at once.
//! - `dpkg-pre` / `dpkg-post`: 0.1's dpkg.cfg.d lines; they do nothing now.

// The flow, in order: pre → snapshot → (dpkg runs) → post → compare → decide → act; outside
// apt: (dpkg runs) → trigger → compare → decide → act.
pub(crate) mod act;
pub(crate) mod compare;
pub(crate) mod containers;
pub(crate) mod decide;
pub(crate) mod dpkg;
pub(crate) mod post;
pub(crate) mod pre;
pub(crate) mod snapshot;
pub(crate) mod trigger;
// What they share: the host's facts, the record, apt's stream.
pub(crate) mod host;
pub(crate) mod state;
pub(crate) mod stream;

use crate::config::{self, Config};
use crate::ctx::Ctx;
use crate::root::Root;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Set (non-empty) to make every stage do nothing but drain its input.
pub(crate) const SUSPEND_ENV: &str = "DOCKER_UPGRADE_GUARD_SUSPEND";

/// One line to stderr, prefixed and escaped (it may carry text from a package's files); a
/// closed stderr is not an error worth dying for.
pub(crate) fn say(msg: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "docker-upgrade-guard: {}",
        crate::escape::one_line(msg)
    );
}

/// The stage to run (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    AptPkgs,
    AptPost,
    /// dpkg's file trigger, outside apt ([`trigger`]).
    DpkgTrigger,
    /// The `pre-invoke=`/`post-invoke=` lines of 0.1's /etc/dpkg/dpkg.cfg.d file: do nothing
    /// (the file is removed on upgrade; a kept copy must not cost or say anything).
    DpkgPre,
    DpkgPost,
}

/// `hook`'s options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub stage: Stage,
    /// Exit non-zero on the tool's own errors (tests only; never in apt's configuration).
    pub strict: bool,
}

/// Everything a stage needs, gathered once.
pub(crate) struct Env {
    pub root: Root,
    pub systemctl: Option<PathBuf>,
    pub config: Config,
    pub stage: Stage,
    pub deadline: Instant,
    pub suspended: bool,
}

impl Env {
    /// Time left before the stage's budget runs out (never zero, so a bound is still a bound).
    pub(crate) fn left(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10))
    }

    /// `want`, but no later than the deadline.
    pub(crate) fn bound(&self, want: Duration) -> Duration {
        want.min(self.left())
    }

    /// How long to wait for another hook's lock: half of what is left (at most 10 s), so
    /// that the stage still ends with its own message before the watchdog's.
    pub(crate) fn lock_deadline(&self) -> Instant {
        Instant::now() + (self.left() / 2).min(Duration::from_secs(10))
    }

    pub(crate) fn service_manager(&self) -> crate::service::Systemctl {
        let mut s = crate::service::Systemctl::new(self.systemctl.clone());
        s.query_timeout = self.bound(s.query_timeout);
        s
    }
}

pub(crate) fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::AptPkgs => "apt-pkgs",
        Stage::AptPost => "apt-post",
        Stage::DpkgTrigger => "dpkg-trigger",
        Stage::DpkgPre => "dpkg-pre",
        Stage::DpkgPost => "dpkg-post",
    }
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// The root and admindir of this run: `--root`/`--admindir` if given, else (under dpkg)
/// `DPKG_ROOT` / `DPKG_ADMINDIR`.
fn effective_root(ctx: &Ctx) -> Root {
    let mut root = ctx.root.clone();
    if !ctx.root_given {
        if let Some(r) = std::env::var_os("DPKG_ROOT").filter(|v| !v.is_empty()) {
            root = Root::new(PathBuf::from(r));
        }
    }
    if ctx.admindir_given {
        root = root.with_admindir(ctx.root.admindir().to_path_buf());
    } else if let Some(a) = std::env::var_os("DPKG_ADMINDIR").filter(|v| !v.is_empty()) {
        root = root.with_admindir(PathBuf::from(a));
    }
    root
}

/// apt's stream: on `APT_HOOK_INFO_FD` if set, else stdin. Read to its end whatever happens
/// next, so that apt never writes into a closed pipe.
fn read_apt_input() -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    use std::os::fd::FromRawFd;
    if let Some(fd) = std::env::var("APT_HOOK_INFO_FD")
        .ok()
        .filter(|v| !v.is_empty())
    {
        let fd: i32 = fd
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 0)
            .with_context(|| format!("APT_HOOK_INFO_FD={fd:?} is not a file descriptor"))?;
        if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
            anyhow::bail!("APT_HOOK_INFO_FD={fd} is not open");
        }
        // SAFETY: apt passed us this fd to read; it is open (checked) and nobody else uses it.
        #[allow(unsafe_code)]
        let f = unsafe { std::fs::File::from_raw_fd(fd) };
        return stream::read_all(f).context("cannot read apt's stream");
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Ok(Vec::new());
    }
    stream::read_all(std::io::stdin().lock()).context("cannot read apt's stream")
}

extern "C" fn on_term(_: nix::libc::c_int) {
    // Kills the running child's process group first (a hanging `systemctl start` must not
    // outlive us), then writes only if stderr has room: a blocked stderr must not hold us.
    crate::children::exit_now(
        b"docker-upgrade-guard: hook: terminated by a signal; exiting 0 (the record stays consistent: every write is atomic)\n",
        0,
    );
}

#[allow(unsafe_code)] // sigaction: the handler only calls async-signal-safe code (children::exit_now)
fn install_signal_handlers() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(
        SigHandler::Handler(on_term),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGINT] {
        // SAFETY: the handler only calls async-signal-safe functions.
        let _ = unsafe { sigaction(sig, &act) };
    }
}

/// If the stage overruns its budget (a hanging systemctl that ignores its own bound, a stuck
/// filesystem, a blocked stderr), exit 0 anyway: apt must go on. The message is formatted
/// before the wait, and the exit takes no lock (Rust's stderr lock may be held by a write
/// that blocks on a full pipe).
fn start_watchdog(budget: Duration, stage: Stage, strict: bool) {
    let msg = format!(
        "docker-upgrade-guard: hook {}: gave up after the budget of {} s (hook_budget_secs); apt goes on\n",
        stage_name(stage),
        budget.as_secs()
    );
    let _ = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            std::thread::sleep(budget);
            crate::children::exit_now(msg.as_bytes(), i32::from(strict));
        });
}

pub(crate) fn run(ctx: &Ctx, args: &Options) -> ExitCode {
    let started = Instant::now();
    install_signal_handlers();
    std::panic::set_hook(Box::new(|info| {
        say(&format!("internal error (please report): {info}"));
    }));
    let stage = args.stage;
    let fail = |msg: &str| {
        say(&format!("hook {}: {msg}", stage_name(stage)));
        if args.strict {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    };
    // First of all, drain apt's stream: nothing below may leave apt blocked on a full pipe.
    let input = if stage == Stage::AptPkgs {
        match read_apt_input() {
            Ok(b) => Some(b),
            Err(e) => return fail(&format!("{e:#}")),
        }
    } else {
        None
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let root = effective_root(ctx);
        // The stages that need no configuration to know they have nothing to do return before
        // reading it (the hook lines mostly decide this in the shell already).
        if nothing_to_do_yet(stage, &root) {
            return (Ok(()), false);
        }
        let (config, config_error) = match config::load(&root) {
            Ok(c) => (c, None),
            Err(e) => (config::fallback(&root), Some(format!("{e:#}"))),
        };
        if let Some(e) = &config_error {
            say(&format!(
                "{e}; using the defaults{}",
                if config.enabled {
                    ""
                } else {
                    " (enabled = false kept)"
                }
            ));
        }
        if stage == Stage::AptPkgs
            && !stream::may_touch(input.as_deref().unwrap_or_default(), &config.packages)
        {
            // Every apt operation that touches no watched package ends here.
            return (Ok(()), config_error.is_some());
        }
        let budget = Duration::from_secs(config.hook_budget_secs);
        start_watchdog(budget, stage, args.strict);
        let env = Env {
            root,
            systemctl: ctx.systemctl.clone(),
            stage,
            deadline: started + budget,
            suspended: env_set(SUSPEND_ENV),
            config,
        };
        let r = run_stage(&env, input.as_deref());
        if let Err(e) = &r {
            record_refusal(&env, e);
        }
        (r, config_error.is_some())
    }));
    match result {
        Ok((Ok(()), config_broken)) => {
            if config_broken && args.strict {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Ok((Err(e), _)) => fail(&format!("{e:#}")),
        Err(_) => fail("stopped after an internal error; apt goes on"),
    }
}

/// Inside apt, the trigger has nothing to do (`DPKG_FRONTEND_LOCKED`); the post stage has
/// nothing to do without a transaction record; 0.1's dpkg lines never have anything to do.
fn nothing_to_do_yet(stage: Stage, root: &Root) -> bool {
    let no_record = || !state::record_path(root).exists();
    match stage {
        Stage::AptPkgs => false,
        Stage::DpkgTrigger => env_set("DPKG_FRONTEND_LOCKED"),
        Stage::DpkgPre | Stage::DpkgPost => true,
        Stage::AptPost => no_record(),
    }
}

/// A directory refused (crate::dirs) is trouble the admin must see later too: an error event
/// (events.jsonl if the log directory is usable, and the journal), besides the stage's line.
fn record_refusal(env: &Env, e: &anyhow::Error) {
    if e.downcast_ref::<crate::dirs::Refused>().is_none() {
        return;
    }
    let ev = crate::events::Event {
        kind: crate::events::EventKind::Error,
        message: format!("hook {}: {e:#}", stage_name(env.stage)),
        ..Default::default()
    };
    // The stage's own line follows; a second line about the log would only repeat it.
    let _ = crate::events::record(&env.root, &ev);
}

fn run_stage(env: &Env, input: Option<&[u8]>) -> anyhow::Result<()> {
    match env.stage {
        Stage::AptPkgs => {
            if !env.config.enabled || env.suspended {
                return Ok(());
            }
            let s = stream::parse(input.unwrap_or_default());
            for p in &s.problems {
                say(&format!("apt's package list: {p}"));
            }
            pre::apt_pkgs(env, &s)
        }
        Stage::AptPost => post::run(env),
        Stage::DpkgTrigger => trigger::run(env),
        // Returned in `nothing_to_do_yet`.
        Stage::DpkgPre | Stage::DpkgPost => Ok(()),
    }
}
