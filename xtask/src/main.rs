//! Build-time helper: renders the man page and shell completions from the real clap definition,
//! so that they can never drift from the binary. Run by `debian/rules`; never installed.
fn main() -> anyhow::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: xtask OUT_DIR"))?;
    std::fs::create_dir_all(&out)?;
    let cmd = docker_upgrade_guard::cli::command();
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut man)?;
    std::fs::write(out.join("docker-upgrade-guard.8"), man)?;
    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh] {
        let mut cmd = cmd.clone();
        clap_complete::generate_to(shell, &mut cmd, "docker-upgrade-guard", &out)?;
    }
    Ok(())
}
