//! The queue and its side files are private to the agent's user whatever umask it starts with.

mod common;

use common::{wait_until, Site};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[test]
fn with_umask_022_the_queue_directory_is_0700_and_its_files_0600() {
    // The only test of this binary, so changing the process's umask disturbs no other test;
    // the agent inherits it, as it would from a shell or a unit without `UMask=`.
    // SAFETY: umask(2) only sets this process's file mode creation mask.
    #[allow(unsafe_code)]
    unsafe {
        libc::umask(0o022);
    }
    let site = Site::new("file-modes");
    let mut board = site.board();
    let state = site.dir.path().join("state");
    board.queue = state.join("queue.db");
    site.write(&board);
    let agent = site.run();
    let files = ["queue.db", "queue.db-wal", "queue.db-shm"].map(|name| state.join(name));
    wait_until(Duration::from_secs(20), "the agent running", || {
        let running = agent.log_text().contains("running: device");
        (running && files.iter().all(|f| f.exists())).then_some(())
    });
    assert_eq!(mode(&state), Some(0o700), "queue directory");
    for file in &files {
        assert_eq!(mode(file), Some(0o600), "{}", file.display());
    }
    agent.terminate();
}
