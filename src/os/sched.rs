//! CPU scheduling policy of helper threads. On Linux the policy is per thread, so a helper
//! doing work that can wait (deleting rows already uploaded) can yield the CPU to work that
//! cannot.

use std::io;

/// The kernel refused a scheduling change.
#[derive(Debug, thiserror::Error)]
#[error("cannot set the calling thread's scheduling policy to SCHED_IDLE")]
pub struct SchedError(#[source] pub io::Error);

/// Run the calling thread only on CPU time nothing else wants (`SCHED_IDLE`): any ordinary
/// thread that wakes up takes the CPU from it at once, which a raised `nice` alone does not do.
#[allow(unsafe_code)]
pub fn try_idle_this_thread() -> Result<(), SchedError> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` outlives the call.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        return Err(SchedError(io::Error::last_os_error()));
    }
    Ok(())
}

/// [`try_idle_this_thread`], best effort: a thread that keeps its priority only yields less,
/// so failure is logged, not returned.
pub fn idle_this_thread() {
    if let Err(e) = try_idle_this_thread() {
        log::debug!("{e}: {}", e.0);
    }
}

/// The calling thread's scheduling policy (`libc::SCHED_*`).
#[allow(unsafe_code)]
pub fn this_thread_policy() -> Result<libc::c_int, SchedError> {
    // SAFETY: pid 0 is the calling thread.
    let policy = unsafe { libc::sched_getscheduler(0) };
    if policy < 0 {
        return Err(SchedError(io::Error::last_os_error()));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idled_thread_leaves_the_others_alone() {
        let before = this_thread_policy().unwrap();
        let helper = std::thread::spawn(|| {
            idle_this_thread();
            this_thread_policy().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(helper, libc::SCHED_IDLE);
        assert_eq!(this_thread_policy().unwrap(), before);
        assert_ne!(before, libc::SCHED_IDLE);
    }
}
