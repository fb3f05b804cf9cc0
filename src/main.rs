fn main() -> std::process::ExitCode {
    one_malloc_arena();
    fieldlink::cli::main(std::env::args_os().skip(1))
}

/// glibc gives each thread that allocates its own malloc arena, and keeps each one's freed
/// memory; with a sampler, a recorder, an uploader and its gzip helper that is several hundred
/// KiB of RSS for nothing on a 512 MB Pi. One shared arena is plenty for a few threads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn one_malloc_arena() {
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}
