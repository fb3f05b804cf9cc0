//! CPU priority of helper threads. On Linux scheduling policy is per thread, so a helper doing
//! work that can wait (deleting rows already uploaded) can yield the CPU to work that cannot.

/// Run the calling thread only on CPU time nothing else wants (`SCHED_IDLE`): any ordinary
/// thread that wakes up takes the CPU from it at once, which a raised `nice` alone does not
/// do. Best effort: a thread that keeps its priority only yields less, so failure is not an
/// error.
pub fn idle_this_thread() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` outlives the call.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        log::debug!(
            "cannot lower a helper thread's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's scheduling policy (`libc::SCHED_*`).
    fn this_thread_policy() -> libc::c_int {
        // SAFETY: pid 0 is the calling thread.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn an_idled_thread_leaves_the_others_alone() {
        let before = this_thread_policy();
        let helper = std::thread::spawn(|| {
            idle_this_thread();
            this_thread_policy()
        })
        .join()
        .unwrap();
        assert_eq!(helper, libc::SCHED_IDLE);
        assert_eq!(this_thread_policy(), before);
        assert_ne!(before, libc::SCHED_IDLE);
    }
}
