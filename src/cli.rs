//! Argument parsing and dispatch: the raw clap arguments here, turned into each command's
//! checked options (`audit::Options`, `patch::Options`, ...) and the shared [`Ctx`]; the
//! commands never import this module. `main` turns any error into one clear line on stderr.

use crate::ctx::Ctx;
use crate::root::Root;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "docker-upgrade-guard",
    version,
    about = "Keep the Docker daemon running across apt/dpkg upgrades",
    long_about = "Keeps docker.service running across apt and dpkg operations.\n\n\
        audit tells whether the next upgrade of docker.io or containerd will stop docker; \
        patch rewrites an installed maintainer script so that it does not; the hook stages, \
        called by apt and dpkg, start again what a package operation stopped."
)]
pub struct Cli {
    /// Operate on the system installed under DIR (like dpkg --root).
    ///
    /// The dpkg database, maintainer scripts, unit files, config, state and logs are read and
    /// written under DIR; systemctl is always the running system's. Hook stages take DPKG_ROOT
    /// when this is not given.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// dpkg database directory (default: ROOT/var/lib/dpkg).
    ///
    /// Taken as given, not under --root (like dpkg --admindir). Hook stages take DPKG_ADMINDIR
    /// when this is not given.
    #[arg(long, global = true, value_name = "DIR")]
    pub admindir: Option<PathBuf>,

    /// systemctl to run (for tests with a stand-in service manager).
    ///
    /// Default: /usr/bin/systemctl, else /bin/systemctl. Not needed on a real system.
    #[arg(
        long,
        global = true,
        hide = true,
        value_name = "PATH",
        env = "DOCKER_UPGRADE_GUARD_SYSTEMCTL",
        hide_env_values = true
    )]
    pub systemctl: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tell whether the next upgrade will stop docker, and why.
    Audit(AuditArgs),
    /// Rewrite installed maintainer scripts so that an upgrade does not stop docker.
    Patch(PatchArgs),
    /// Show the watched units, whether the hooks are installed, and the last events.
    Status(StatusArgs),
    /// Run one stage of the apt/dpkg hooks (exits 0 unless --strict).
    ///
    /// Called from /etc/apt/apt.conf.d/99zz-docker-upgrade-guard (through
    /// /etc/docker-upgrade-guard/apt-pkgs-hook) and from the package's postinst (a dpkg file
    /// trigger, for dpkg runs without apt): records the watched units before a package
    /// operation, patches a harmful maintainer script just before dpkg runs it, and starts
    /// again what the operation stopped.
    /// DOCKER_UPGRADE_GUARD_SUSPEND=1 in the environment of apt or dpkg turns it off for one
    /// operation.
    Hook(HookArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Nagios,
    Prometheus,
    Npd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Audit this package (repeatable; default: the config's packages, by default docker.io
    /// containerd runc docker-ce containerd.io).
    #[arg(long = "package", value_name = "NAME")]
    pub packages: Vec<String>,
    /// The fixed version to diff against: a .deb or a script file.
    #[arg(long, value_name = "PATH")]
    pub against: Option<PathBuf>,
    /// Output format: text for a person, json (versioned schema), nagios (plugin output),
    /// prometheus (node_exporter textfile) or npd (node-problem-detector plugin: exit 0 OK or
    /// WARNING, 1 CRITICAL, 2 UNKNOWN).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Colour the diff (auto: only on a terminal, and not when NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Write the report atomically to FILE (mode 0644), not stdout; exit 4 if that fails.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PatchArgs {
    /// Patch (or revert) this package's scripts only (repeatable; default: all watched packages).
    #[arg(long = "package", value_name = "NAME")]
    pub packages: Vec<String>,
    /// Print the diff of what would be written, change nothing (takes no lock).
    #[arg(long)]
    pub dry_run: bool,
    /// Restore the original scripts from the backups in /var/lib/docker-upgrade-guard/backups,
    /// only where the installed script is still exactly what patch wrote.
    #[arg(long)]
    pub revert: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// How many of the last events to show.
    #[arg(long, default_value_t = 10)]
    pub events: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// apt DPkg::Pre-Install-Pkgs (version 3 stream on APT_HOOK_INFO_FD or stdin).
    AptPkgs,
    /// apt DPkg::Post-Invoke.
    AptPost,
    /// dpkg file trigger, from the package's postinst (dpkg -i, dpkg -r ... without apt).
    DpkgTrigger,
    /// Version 0.1's dpkg pre-invoke line: does nothing.
    #[value(hide = true)]
    DpkgPre,
    /// Version 0.1's dpkg post-invoke line: does nothing.
    #[value(hide = true)]
    DpkgPost,
}

#[derive(Debug, Clone, Args)]
pub struct HookArgs {
    #[arg(value_enum)]
    pub stage: StageArg,
    /// Exit non-zero on the tool's own errors (tests only; never in apt's configuration).
    #[arg(long, hide = true)]
    pub strict: bool,
}

impl AuditArgs {
    fn options(&self) -> crate::audit::Options {
        use crate::audit::Format as F;
        crate::audit::Options {
            packages: self.packages.clone(),
            against: self.against.clone(),
            format: match self.format {
                Format::Text => F::Text,
                Format::Json => F::Json,
                Format::Nagios => F::Nagios,
                Format::Prometheus => F::Prometheus,
                Format::Npd => F::Npd,
            },
            color: match self.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    std::io::IsTerminal::is_terminal(&std::io::stdout())
                        && std::env::var_os("NO_COLOR").is_none()
                }
            },
            output: self.output.clone(),
        }
    }
}

impl PatchArgs {
    fn options(&self) -> anyhow::Result<crate::patch::Options> {
        use crate::patch::Mode;
        for p in &self.packages {
            if !crate::dpkg::valid_package_name(p) {
                anyhow::bail!("--package {p:?} is not a valid Debian package name");
            }
        }
        Ok(crate::patch::Options {
            packages: self.packages.clone(),
            mode: match (self.revert, self.dry_run) {
                (true, true) => anyhow::bail!("--revert and --dry-run cannot be combined"),
                (true, false) => Mode::Revert,
                (false, true) => Mode::DryRun,
                (false, false) => Mode::Apply,
            },
        })
    }
}

impl HookArgs {
    fn options(&self) -> crate::hook::Options {
        use crate::hook::Stage as S;
        crate::hook::Options {
            stage: match self.stage {
                StageArg::AptPkgs => S::AptPkgs,
                StageArg::AptPost => S::AptPost,
                StageArg::DpkgTrigger => S::DpkgTrigger,
                StageArg::DpkgPre => S::DpkgPre,
                StageArg::DpkgPost => S::DpkgPost,
            },
            strict: self.strict,
        }
    }
}

/// The clap command (also used by `xtask` for the man page and completions).
pub fn command() -> clap::Command {
    Cli::command()
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Inside a hook, even bad arguments must not break apt. args_os: an argument that
            // is not UTF-8 must not panic here.
            let hook = std::env::args_os().skip(1).any(|a| a == "hook");
            if !e.use_stderr() {
                // --help, --version: what was asked for, on stdout.
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: clap's first (the error itself), without its usage block.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            errln!(
                "docker-upgrade-guard: {}; see --help",
                crate::escape::for_terminal(first)
            );
            return if hook {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(64)
            };
        }
    };
    let mut root = Root::new(cli.root.as_deref().unwrap_or(std::path::Path::new("/")));
    if let Some(a) = &cli.admindir {
        root = root.with_admindir(a);
    }
    let ctx = Ctx {
        root,
        root_given: cli.root.is_some(),
        admindir_given: cli.admindir.is_some(),
        systemctl: cli.systemctl.clone(),
    };
    let result = match &cli.command {
        Command::Hook(args) => return crate::hook::run(&ctx, &args.options()),
        Command::Audit(args) => crate::audit::run(&ctx, &args.options()),
        Command::Patch(args) => args.options().and_then(|o| crate::patch::run(&ctx, &o)),
        Command::Status(args) => crate::status::run(
            &ctx,
            &crate::status::Options {
                events: args.events,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            errln!("docker-upgrade-guard: {e:#}");
            // 3 is UNKNOWN for monitoring; for the other commands it is a plain failure.
            ExitCode::from(3)
        }
    }
}
