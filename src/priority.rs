//! CPU priority of helper threads. On Linux `nice` is per thread, so a helper doing work that
//! can wait (deleting rows already uploaded) yields the CPU to the work that cannot.

/// The highest niceness Linux allows.
const NICEST: i32 = 19;

/// Make the calling thread `steps` nicer (lower priority), up to the limit. Best effort: a
/// thread that keeps its priority is only slower to yield, so a failure is not an error.
pub fn lower_this_thread(steps: i32) {
    let Some(now) = this_thread_niceness() else {
        return;
    };
    let tid = this_thread_id();
    // SAFETY: plain system call on this thread's own id.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, (now + steps).min(NICEST)) };
}

/// The calling thread's niceness, if the kernel says.
pub fn this_thread_niceness() -> Option<i32> {
    // getpriority may legitimately return -1, so errno tells failure apart.
    // SAFETY: errno is thread-local; the call only reads this thread's priority.
    unsafe {
        *libc::__errno_location() = 0;
        let niceness = libc::getpriority(libc::PRIO_PROCESS, this_thread_id());
        (*libc::__errno_location() == 0).then_some(niceness)
    }
}

fn this_thread_id() -> libc::id_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as libc::id_t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowering_a_thread_leaves_the_others_alone() {
        let before = this_thread_niceness().unwrap();
        let helper = std::thread::spawn(|| {
            lower_this_thread(3);
            this_thread_niceness().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(helper, (before + 3).min(NICEST));
        assert_eq!(this_thread_niceness(), Some(before));
    }
}
