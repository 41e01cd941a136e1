//! The `cowork-sync` binary: everything happens in [`cowork_sync::cli`].

fn main() -> std::process::ExitCode {
    cowork_sync::cli::main()
}
