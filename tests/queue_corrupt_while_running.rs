//! A queue file damaged under a running agent: the agent sets it aside, salvages it, and goes
//! on sampling and uploading without losing what it held in memory.

mod common;

use common::fault_server::{FaultServer, Script};
use common::{read_queue_counters, wait_until, Site, Upload};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Move every page into the queue file (a full checkpoint, as the agent's own upkeep does
/// from time to time), so the damage below hits the pages SQLite reads, not stale copies that
/// the write-ahead log supersedes.
fn checkpoint(conn: &rusqlite::Connection) {
    let (busy, log, done): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(FULL)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((busy, log), (0, done), "checkpoint incomplete");
}

fn open(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// A failing card: overwrite two leaf pages of the stored pieces (the oldest and one in the
/// middle, never the newest, which the agent is still appending to) with 0xFF. SQLite meets
/// the garbled pages when the uploader reads them.
fn garble_piece_pages(path: &Path) {
    let conn = open(path);
    checkpoint(&conn);
    let root: u64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'pieces'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let size: u64 = conn
        .pragma_query_value(None, "page_size", |r| r.get(0))
        .unwrap();
    let pages = leaf_pages(&std::fs::read(path).unwrap(), size, root);
    assert!(pages.len() >= 4, "pieces on {} page(s)", pages.len());
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for page in [pages[0], pages[pages.len() / 2]] {
        // Page numbers count from 1.
        file.seek(SeekFrom::Start((page - 1) * size)).unwrap();
        file.write_all(&vec![0xFF; size as usize]).unwrap();
    }
    file.sync_all().unwrap();
}

/// The leaf pages of the table b-tree rooted at `root`, left to right, read from the file's
/// bytes (SQLite's file format: a page's first byte says interior 0x05 or leaf 0x0D; an
/// interior page lists its children in 4-byte left pointers, then its right-most pointer).
fn leaf_pages(file: &[u8], size: u64, root: u64) -> Vec<u64> {
    let page = |n: u64| &file[((n - 1) * size) as usize..(n * size) as usize];
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64;
    let p = page(root);
    match p[0] {
        0x0D => vec![root],
        0x05 => {
            let cells = u16::from_be_bytes([p[3], p[4]]) as usize;
            let mut children: Vec<u64> = (0..cells)
                .map(|i| {
                    let at = u16::from_be_bytes([p[12 + 2 * i], p[13 + 2 * i]]) as usize;
                    be32(&p[at..])
                })
                .collect();
            children.push(be32(&p[8..]));
            children
                .into_iter()
                .flat_map(|c| leaf_pages(file, size, c))
                .collect()
        }
        other => panic!("page {root} is not a table b-tree page ({other:#x})"),
    }
}

/// Bytes garbled inside one stored piece: the pages stay valid, so SQLite sees nothing; only
/// the piece's CRC-32 can tell.
fn garble_inside_a_piece(path: &Path) {
    let conn = open(path);
    let (id, mut data): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT id, data FROM pieces ORDER BY id LIMIT 1 OFFSET 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0x5a;
    conn.execute(
        "UPDATE pieces SET data = ?1 WHERE id = ?2",
        rusqlite::params![data, id],
    )
    .unwrap();
}

fn corrupt_copies(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("queue.db.corrupt-")
                && !name.ends_with("-wal")
                && !name.ends_with("-shm")
        })
        .count()
}

/// Sampling times of the climate sensor's lines the server accepted, sorted.
fn climate_times(server: &FaultServer) -> Vec<i64> {
    let mut times: Vec<i64> = server
        .accepted()
        .iter()
        .filter(|l| l.contains("sensor_id=climate-1"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    times.sort_unstable();
    times
}

#[test]
fn a_queue_garbled_under_a_running_agent_is_set_aside_salvaged_and_sampling_goes_on_without_a_gap()
{
    damaged_under_a_running_agent("corrupt-while-running", garble_piece_pages);
}

#[test]
fn bytes_garbled_inside_a_stored_piece_are_never_sent_and_the_queue_is_salvaged_as_for_a_bad_page()
{
    damaged_under_a_running_agent("garbled-piece", garble_inside_a_piece);
}

/// Run an agent against a refusing server until a backlog waits, `damage` the queue file,
/// let the server accept, and check the agent sets the file aside, salvages it and goes on.
fn damaged_under_a_running_agent(name: &str, damage: fn(&Path)) {
    let server = FaultServer::start(Script::status(503).header("Retry-After", "1"));
    let site = Site::new(name);
    let mut board = site.board();
    board.upload = Some(Upload {
        url: server.url(),
        api: "v1".into(),
        database: "d".into(),
        batch_lines: 100,
        timeout: "2s".into(),
        extra: Vec::new(),
    });
    let toml = board
        .to_toml()
        .replace("[queue]\n", "[queue]\nmax_bytes = \"1MiB\"\n");
    std::fs::write(&site.board_path, toml).unwrap();
    let agent = site.run();
    wait_until(Duration::from_secs(60), "a backlog of 600 readings", || {
        // Until the agent has made its queue, `status` has nothing to show.
        let out = site.cli(&["status", "--format", "json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (status["depth"].as_i64() >= Some(600)).then_some(())
    });

    damage(&site.queue);
    let garbled_at = now_ns();
    // Let every batch read before the damage meet one more refusal (the uploader retries a
    // second later, reading again), so none sent from an undamaged read can be accepted.
    std::thread::sleep(Duration::from_millis(2500));
    server.set_default(Script::ok());
    wait_until(
        Duration::from_secs(30),
        "the queue set aside and salvaged",
        || {
            let log = agent.log_text();
            let said = log.contains("is corrupt") && log.contains("salvaged");
            (said && corrupt_copies(site.dir.path()) == 1).then_some(())
        },
    );
    // Sampling and uploading go on in the fresh queue: wait for a good number of readings
    // sampled after the damage (how soon they come depends on the machine's speed).
    wait_until(Duration::from_secs(60), "fresh readings uploaded", || {
        let times = climate_times(&server);
        let after = times.iter().filter(|t| **t > garbled_at).count();
        (after > 20 && times.last() > Some(&(now_ns() - 1_000_000_000))).then_some(())
    });
    agent.terminate();

    // Sampling went on after the damage, into the fresh queue.
    let after = climate_times(&server)
        .into_iter()
        .filter(|t| *t > garbled_at)
        .count();
    assert!(after > 20, "{after} climate readings after the damage");
    // Nothing was lost but what the garbled pages held: every reading ever sampled was
    // uploaded, still waits, or is counted as unreadable in the file set aside. A pending
    // window lost from memory would break this sum.
    let c = read_queue_counters(&site.queue);
    let get = |name: &str| c.get(name).copied().unwrap_or(0);
    assert!(
        get("queue.salvaged") > 0 && get("dropped.corrupt") > 0,
        "{c:?}"
    );
    let dropped: i64 = c
        .iter()
        .filter(|(name, _)| name.starts_with("dropped."))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        get("sampled"),
        get("uploaded") + get("queued") + get("held") + dropped,
        "{c:?}"
    );
    assert_eq!(corrupt_copies(site.dir.path()), 1, "set aside once");
    // Garbled bytes never reached the server: every line it took is one the agent wrote.
    for line in server.accepted() {
        assert!(
            line.starts_with("iot_metrics,device_id=e2e-device,")
                && line.contains(",sensor_id=")
                && line
                    .rsplit(' ')
                    .next()
                    .and_then(|t| t.parse::<i64>().ok())
                    .is_some(),
            "{line:?}"
        );
    }
}
