//! The uploader's times come from the time keeper's clock: dead-letter and last-upload times,
//! pacing, `Retry-After` dates. A manual clock makes every expectation exact.

use super::*;

/// Drain, and the one dead letter that leaves.
fn dead_letter_of(rig: &mut Rig) -> crate::queue::DeadLetter {
    drain(rig);
    let letters = rig.uploader.queue.dead_letters(10).unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    letters[0].clone()
}

#[test]
fn a_dead_letter_is_stamped_from_the_trusted_clock() {
    let mut rig = rig(4, &[2], v1_partial());
    rig.clock.advance(Duration::from_secs(5));
    let letter = dead_letter_of(&mut rig);
    assert_eq!(
        (letter.at_ns, letter.at_trusted),
        (build_time_ns() + TRUSTED_NOW + 5_000_000_000, true)
    );
}

#[test]
fn a_dead_letter_recorded_before_the_clock_is_trusted_is_marked_and_never_says_1970() {
    let mut rig = rig(4, &[2], v1_partial());
    rig.clock.set_wall(3_600_000_000_000); // 1970-01-01 01:00
    let letter = dead_letter_of(&mut rig);
    assert_eq!(
        (letter.at_ns, letter.at_trusted),
        (build_time_ns(), false),
        "the latest time known to be past, marked as a lower bound"
    );
    let note = rig.uploader.queue.meta("last_upload").unwrap().unwrap();
    assert_eq!(
        note,
        format!("ok at {} or later (clock not trusted)", build_time_ns())
    );
}

#[test]
fn pacing_follows_the_monotonic_clock() {
    let mut rig = rig(30, &[], Box::new(|_| reply(204, "")));
    rig.uploader.schedule = schedule::Schedule::new(10);
    rig.uploader.batch_lines = 10;
    assert_eq!(rig.uploader.step().unwrap(), Step::Sent(10));
    assert_eq!(rig.uploader.pace_delay(), Duration::from_secs(1));
    rig.clock.advance(Duration::from_millis(400));
    assert_eq!(rig.uploader.pace_delay(), Duration::from_millis(600));
    rig.clock.advance(Duration::from_millis(600));
    assert_eq!(rig.uploader.pace_delay(), Duration::ZERO);
}

#[test]
fn a_retry_after_date_is_measured_on_the_clock_and_a_transport_error_keeps_its_cause() {
    let mut busy = rig_with_retry_after("Sun, 06 Nov 1994 08:51:37 GMT");
    busy.clock.set_wall(784_111_777 * 1_000_000_000); // 08:49:37
    assert!(
        matches!(busy.uploader.step().unwrap(), Step::Paused(p) if p.delay == Duration::from_secs(120))
    );
    let mut down = rig(1, &[], Box::new(|_| refused("no route to host")));
    let Step::Paused(pause) = down.uploader.step().unwrap() else {
        panic!("expected a pause")
    };
    assert_eq!(pause.reason, "connection failed: no route to host");
}
