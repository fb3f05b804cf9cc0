#![deny(unsafe_code)]

fn main() -> std::process::ExitCode {
    if let Err(e) = fieldlink::os::malloc::one_arena() {
        eprintln!("fieldlink: {e} (continuing with more memory per thread)");
    }
    fieldlink::cli::main(std::env::args_os().skip(1))
}
