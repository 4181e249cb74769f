//! The `callwarden` binary: everything lives in the library; see `callwarden::cli`.

fn main() -> std::process::ExitCode {
    callwarden::cli::main()
}
