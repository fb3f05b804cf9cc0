fn main() -> std::process::ExitCode {
    fieldlink::cli::main(std::env::args().skip(1))
}
