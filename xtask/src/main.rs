//! Build-time helper: renders the man pages and shell completions from the real clap definition,
//! so that they can never drift from the binary. Run by `debian/rules`; never installed.
//!
//! Writes into OUT_DIR: `docker-upgrade-guard.8` (the command, plus FILES, EXIT STATUS and SEE
//! ALSO, which clap cannot know), one `docker-upgrade-guard-<command>.8` per subcommand (as git
//! does), `docker-upgrade-guard.bash` and `_docker-upgrade-guard`.
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

const NAME: &str = "docker-upgrade-guard";
/// System administration commands: the binary lives in /usr/sbin.
const SECTION: &str = "8";

fn main() -> anyhow::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: xtask OUT_DIR"))?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut cmd = docker_upgrade_guard::cli::command().disable_help_subcommand(true);
    // build() gives the subcommands their display names ("docker-upgrade-guard-audit").
    cmd.build();

    let subcommands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    for sub in &subcommands {
        let man = clap_mangen::Man::new(sub.clone()).section(SECTION);
        let mut page = Vec::new();
        man.render(&mut page)?;
        write_roff(
            &page,
            &[],
            &format!("SEE ALSO\n.BR {NAME} (8)\n"),
            &out,
            &man.get_filename(),
        )?;
    }

    let man = clap_mangen::Man::new(cmd.clone()).section(SECTION);
    let mut page = Vec::new();
    man.render(&mut page)?;
    let see_also: Vec<String> = subcommands
        .iter()
        .map(|s| format!(".BR {} (8),", s.get_display_name().unwrap_or(s.get_name())))
        .collect();
    write_roff(
        &page,
        &[FILES, EXIT_STATUS],
        &format!(
            "SEE ALSO\n{}\n.BR apt.conf (5),\n.BR dpkg (1),\n.BR systemctl (1)\n",
            see_also.join("\n")
        ),
        &out,
        &man.get_filename(),
    )?;

    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh] {
        clap_complete::generate_to(shell, &mut cmd.clone(), NAME, &out)
            .with_context(|| format!("writing the {shell} completion"))?;
    }
    Ok(())
}

/// Writes `page` followed by the extra sections (each starting with its `.SH` title line).
fn write_roff(
    page: &[u8],
    extra: &[&str],
    see_also: &str,
    out: &Path,
    name: &str,
) -> anyhow::Result<()> {
    let path = out.join(name);
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(page)?;
    for section in extra.iter().copied().chain([see_also]) {
        write!(f, ".SH {section}")?;
    }
    Ok(())
}

const FILES: &str = r#"FILES
.TP
.I /etc/docker\-upgrade\-guard/config.toml
Settings; every key is shown commented out with its default.
.TP
.I /etc/apt/apt.conf.d/99zz\-docker\-upgrade\-guard
The apt hooks (DPkg::Pre\-Invoke, DPkg::Pre\-Install\-Pkgs, DPkg::Post\-Invoke).
.TP
.I /etc/dpkg/dpkg.cfg.d/docker\-upgrade\-guard
The dpkg hooks, for dpkg runs without apt.
.TP
.I /run/docker\-upgrade\-guard/
The state of the watched units recorded before a package operation.
.TP
.I /var/lib/docker\-upgrade\-guard/backups/
The original maintainer scripts rewritten by
.BR patch ,
restored by
.BR "patch \-\-revert" .
.TP
.I /var/log/docker\-upgrade\-guard/
What the hooks did.
"#;

const EXIT_STATUS: &str = r#"EXIT STATUS
.B audit
follows the monitoring\-plugin convention:
.TP
.B 0
OK: the next upgrade will not leave docker stopped.
.TP
.B 1
WARNING: exposed, but the hook is installed and will start docker again.
.TP
.B 2
CRITICAL: exposed and unguarded.
.TP
.B 3
UNKNOWN: something could not be read or decided.
.PP
.B hook
always exits 0, so that apt and dpkg never fail because of this tool.
A usage error exits 64.
"#;
