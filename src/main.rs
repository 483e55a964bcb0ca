use std::process::ExitCode;

fn main() -> ExitCode {
    docker_upgrade_guard::cli::main()
}
