fn main() -> std::process::ExitCode {
    oyl_server::cli::main()
}
