//! `dead-letter`: list, re-queue or delete the lines the server refused.

use super::args::{DeadLetter, Format};
use super::existing_queue;
use super::CliError;
use crate::clock::{Clock, SystemClock};
use crate::config::Board;
use crate::queue::{Access, Selection};

/// How many dead letters `list` shows at most.
const LIST_LIMIT: usize = 1000;

pub fn dead_letter(board: &Board, action: DeadLetter) -> Result<(), CliError> {
    let access = match action {
        DeadLetter::List { .. } => Access::ReadOnly,
        DeadLetter::Retry(_) | DeadLetter::Purge { .. } => Access::ReadWrite,
    };
    let mut queue = existing_queue::open(board, access)?;
    match action {
        DeadLetter::List { format } => {
            let letters = queue.dead_letters(LIST_LIMIT)?;
            match format {
                Format::Json => {
                    let items: Vec<_> = letters
                        .iter()
                        .map(|d| serde_json::json!({"id": d.id, "reason": d.reason, "message": d.message, "at_ns": d.at_ns, "line": d.line}))
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&items).unwrap_or_default()
                    );
                }
                // Only `read` accepts `--format lp`.
                Format::Text | Format::LineProtocol => {
                    for d in &letters {
                        println!("#{} [{}] {}\n    {}", d.id, d.reason, d.message, d.line);
                    }
                    println!("{} dead letter(s)", letters.len());
                }
            }
        }
        DeadLetter::Retry(which) => {
            let n = queue.retry_dead_letters(which)?;
            if n == 0 {
                return Err(CliError::NothingToRetry(match which {
                    Selection::One(id) => format!("no dead letter #{id}"),
                    Selection::All => "no dead letters".to_string(),
                }));
            }
            println!("{n} dead letter(s) moved back to the queue");
        }
        DeadLetter::Purge { older_than } => {
            let older_than_ns = i64::try_from(older_than.as_nanos()).unwrap_or(i64::MAX);
            let before = SystemClock::default()
                .wall_ns()
                .saturating_sub(older_than_ns);
            let n = queue.purge_dead_letters(before)?;
            println!("{n} dead letter(s) purged");
        }
    }
    Ok(())
}
