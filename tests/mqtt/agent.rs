//! The real `fieldlink` binary publishing to a real Mosquitto: readings queue while the broker
//! is away and all arrive when it is back, a broker killed during a drain loses nothing, an ACL
//! refusal keeps everything and shows in `status`, a small maximum packet size splits batches,
//! a killed agent leaves a retained `offline`, and a crash drill delivers every committed
//! reading at least once.

use super::broker::Broker;
use super::common::{self, die_with_parent, wait_until};
use super::subscriber::Subscriber;
use fieldlink::rng::Rng;
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A device directory: board file, queue, agent logs.
struct Device {
    dir: tempfile::TempDir,
    board: PathBuf,
    queue: PathBuf,
}

impl Device {
    /// Two simulated sensors every 20 ms, 100 ms commits, uploading to the broker at `port`;
    /// `upload` holds more `[upload]` keys, replacing the defaults here.
    fn new(id: &str, port: u16, upload: &str) -> Device {
        let broker = format!("url = \"mqtt://127.0.0.1:{port}\"");
        let defaults = [
            broker.as_str(),
            "start_delay_max = \"0s\"",
            "max_points_per_second = 0",
            "batch_lines = 50",
            "timeout = \"2s\"",
            "keepalive = \"5s\"",
        ];
        let mut keys: Vec<&str> = defaults
            .into_iter()
            .filter(|line| {
                let key = line.split(' ').next().unwrap_or("");
                !upload.lines().any(|l| l.starts_with(key))
            })
            .collect();
        keys.extend(upload.lines());
        let upload = keys.join("\n");
        let dir = tempfile::Builder::new()
            .prefix(&format!("fieldlink-mqtt-{id}-"))
            .tempdir()
            .unwrap();
        let queue = dir.path().join("queue.db");
        let text = format!(
            "[device]\nid = \"{id}\"\n\n[queue]\npath = \"{}\"\ncommit_interval = \"100ms\"\n\n\
             [upload]\n{upload}\n\n\
             [[sensor]]\nid = \"CLI01\"\nkind = \"simulated_climate\"\nmeasurement = \"climate\"\n\
             interval = \"20ms\"\n\n\
             [[sensor]]\nid = \"DOR01\"\nkind = \"simulated_door\"\nmeasurement = \"door\"\n\
             interval = \"20ms\"\n",
            queue.display()
        );
        let board = dir.path().join("board.toml");
        std::fs::write(&board, text).unwrap();
        Device { dir, board, queue }
    }

    fn run(&self) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .unwrap();
        let mut command = common::fieldlink();
        command
            .args(["run", "--board"])
            .arg(&self.board)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        die_with_parent(&mut command);
        command.spawn().expect("start fieldlink run")
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut command = common::fieldlink();
        command.args(args).arg("--board").arg(&self.board);
        common::output_within(command, Duration::from_secs(60))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Every reading committed in the queue now, as the line the uploader sends for it.
    fn queued(&self) -> BTreeSet<String> {
        if !self.queue.exists() {
            return BTreeSet::new();
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.queue, flags).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        // The agent may not have created its tables yet.
        match fieldlink::queue::stored_lines(&conn) {
            Ok(lines) => lines.into_iter().collect(),
            Err(_) => BTreeSet::new(),
        }
    }
}

fn kill9(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn missing(committed: &BTreeSet<String>, sub: &Subscriber) -> Vec<String> {
    let received: BTreeSet<String> = sub.lines().into_iter().collect();
    committed.difference(&received).cloned().collect()
}

/// Wait until every line of `committed` reached the subscriber.
fn all_arrive(committed: &BTreeSet<String>, sub: &Subscriber, limit: Duration, device: &Device) {
    let start = Instant::now();
    loop {
        let lost = missing(committed, sub);
        if lost.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{} of {} committed readings never arrived, e.g. {:?}; agent log:\n{}",
            lost.len(),
            committed.len(),
            &lost[..lost.len().min(3)],
            device.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn readings_queue_while_the_broker_is_down_and_all_arrive_once_it_is_up() {
    let mut broker = Broker::start("");
    let sub = Subscriber::start(broker.port, "fieldlink/down-dev");
    broker.stop();
    let device = Device::new("down-dev", broker.port, "");
    let agent = device.run();
    let committed = wait_until(Duration::from_secs(10), "readings in the queue", || {
        let queued = device.queued();
        (queued.len() > 100).then_some(queued)
    });
    broker.up();
    all_arrive(&committed, &sub, Duration::from_secs(20), &device);
    kill9(agent);
}

#[test]
fn a_broker_killed_in_the_middle_of_a_drain_and_restarted_loses_nothing() {
    let mut broker = Broker::start("");
    let sub = Subscriber::start(broker.port, "fieldlink/#");
    broker.wait_persisted();
    broker.stop();
    // Paced, so the backlog takes seconds to drain and the kill lands in the middle of it.
    let device = Device::new("drain-dev", broker.port, "max_points_per_second = 300");
    let agent = device.run();
    let mut committed = wait_until(Duration::from_secs(10), "a backlog", || {
        let queued = device.queued();
        (queued.len() > 300).then_some(queued)
    });
    broker.up();
    wait_until(Duration::from_secs(20), "the drain to start", || {
        (!sub.lines().is_empty()).then_some(())
    });
    let backlog = device.queued();
    assert!(
        backlog.len() > 100,
        "the drain must still be going on: {}",
        backlog.len()
    );
    committed.extend(backlog);
    broker.kill9();
    std::thread::sleep(Duration::from_millis(300));
    committed.extend(device.queued());
    broker.up();
    all_arrive(&committed, &sub, Duration::from_secs(25), &device);
    kill9(agent);
}

#[test]
fn an_acl_that_denies_the_topic_keeps_everything_and_status_says_not_authorized() {
    let deny = "topic read fieldlink/#\ntopic readwrite fieldlink/+/status\n";
    let broker = Broker::start_with(&[("acl", deny)], "acl_file {dir}/acl");
    let sub = Subscriber::start(broker.port, "fieldlink/acl-dev");
    let device = Device::new("acl-dev", broker.port, "");
    let agent = device.run();
    // Wait for both the refusal and a backlog worth delivering later, whichever comes last:
    // how many readings are committed by the first refusal depends on the machine's speed.
    let status = wait_until(
        Duration::from_secs(60),
        "status to say not authorized with over 20 readings kept",
        || {
            let out = device.cli(&["status", "--format", "json"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            (text.contains("not authorized") && device.queued().len() > 20).then_some(text)
        },
    );
    kill9(agent);
    let committed = device.queued();
    assert!(committed.len() > 20, "{status}");
    assert!(sub.lines().is_empty(), "a denied reading arrived");

    broker.write("acl", "topic readwrite fieldlink/#\n");
    broker.reload();
    std::thread::sleep(Duration::from_millis(200));
    let out = device.cli(&["sync", "--timeout", "20s"]);
    assert!(out.status.success(), "{}", common::describe(&out));
    all_arrive(&committed, &sub, Duration::from_secs(10), &device);
    assert!(device.queued().is_empty());
}

#[test]
fn a_maximum_packet_size_smaller_than_a_batch_splits_it_and_all_arrive() {
    let mut broker = Broker::start("max_packet_size 1500");
    let sub = Subscriber::start(broker.port, "fieldlink/split-dev");
    broker.stop();
    // A backlog of some 20 KB, taken in batches of up to 400 lines: far over 1,500 bytes.
    let device = Device::new("split-dev", broker.port, "batch_lines = 400");
    let agent = device.run();
    let committed = wait_until(Duration::from_secs(10), "a backlog", || {
        let queued = device.queued();
        (queued.len() > 250).then_some(queued)
    });
    broker.up();
    all_arrive(&committed, &sub, Duration::from_secs(20), &device);
    kill9(agent);
    let largest = sub.messages().iter().map(|m| m.payload.len()).max();
    assert!(largest.is_some_and(|n| n < 1500), "{largest:?}");
    let log = device.log();
    assert!(
        log.contains("sending batches of at most"),
        "no split: {log}"
    );
}

#[test]
fn a_measurement_topic_with_gzip_gives_compressed_messages_of_one_measurement_each() {
    let broker = Broker::start("");
    let sub = Subscriber::start(broker.port, "fieldlink/meas-dev/+");
    let upload = "topic = \"fieldlink/{device_id}/{measurement}\"\ngzip = true";
    let device = Device::new("meas-dev", broker.port, upload);
    let agent = device.run();
    // The presence topic matches the filter too.
    let data = || -> Vec<_> {
        let messages = sub.messages().into_iter();
        messages.filter(|m| !m.topic.ends_with("/status")).collect()
    };
    wait_until(Duration::from_secs(10), "climate and door messages", || {
        let topics: BTreeSet<String> = data().into_iter().map(|m| m.topic).collect();
        (topics.len() == 2).then_some(())
    });
    kill9(agent);
    for message in data() {
        assert!(message.payload.starts_with(&[0x1f, 0x8b]), "not gzip");
        let measurement = message.topic.rsplit('/').next().unwrap_or("");
        let text = super::subscriber::payload_text(&message.payload);
        assert!(
            text.lines()
                .all(|l| l.starts_with(&format!("{measurement},"))),
            "{} carries {text}",
            message.topic
        );
    }
}

#[test]
fn mutual_tls_from_the_board_files_delivers_through_the_brokers_tls_listener() {
    let pki = super::Pki::new();
    let broker = Broker::start(&format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\nlistener {{second_port}} 127.0.0.1",
        pki.ca.display(),
        pki.server_cert.display(),
        pki.server_key.display()
    ));
    let sub = Subscriber::start(broker.second_port, "fieldlink/tls-dev");
    let upload = format!(
        "url = \"mqtts://localhost:{}\"\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"",
        broker.port,
        pki.ca.display(),
        pki.client_cert.display(),
        pki.client_key.display()
    );
    let device = Device::new("tls-dev", broker.port, &upload);
    let out = device.cli(&["check"]);
    assert!(out.status.success(), "{}", common::describe(&out));
    let agent = device.run();
    wait_until(Duration::from_secs(15), "readings over TLS", || {
        (sub.lines().len() >= 50).then_some(())
    });
    kill9(agent);
}

#[test]
fn check_names_the_file_line_and_key_of_a_bad_mqtt_setting_and_refuses_a_readable_password_file() {
    let port = common::free_port();
    let device = Device::new("check-dev", port, "qos = 0");
    let out = device.cli(&["check"]);
    let text = common::describe(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("board.toml:") && text.contains("upload.qos"),
        "{text}"
    );

    let password = device.dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let upload = format!(
        "username = \"pi\"\npassword_file = \"{}\"",
        password.display()
    );
    let device = Device::new("check-dev", port, &upload);
    let out = device.cli(&["check"]);
    let text = common::describe(&out);
    assert!(
        !out.status.success() && text.contains("chmod 600"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "the password was printed: {text}");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = device.cli(&["check"]);
    let text = common::describe(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("fieldlink/check-dev/status") && !text.contains("s3cret"),
        "{text}"
    );
}

#[test]
fn a_killed_agent_leaves_a_retained_offline_for_the_fleet_dashboard() {
    let broker = Broker::start("");
    let device = Device::new("gone-dev", broker.port, "");
    let agent = device.run();
    let status = Subscriber::start(broker.port, "fieldlink/gone-dev/status");
    wait_until(Duration::from_secs(10), "online", || {
        let last = status.messages().pop()?;
        (last.payload == b"online").then_some(())
    });
    kill9(agent);
    wait_until(Duration::from_secs(10), "offline", || {
        let last = status.messages().pop()?;
        (last.payload == b"offline").then_some(())
    });
    drop(status);
    let later = Subscriber::start(broker.port, "fieldlink/gone-dev/status");
    wait_until(Duration::from_secs(5), "a retained offline", || {
        let last = later.messages().pop()?;
        (last.payload == b"offline" && last.retain).then_some(())
    });
}

#[test]
fn sigkill_at_random_moments_while_draining_loses_no_committed_reading() {
    let broker = Broker::start("");
    let sub = Subscriber::start(broker.port, "fieldlink/#");
    let device = Device::new("drill-dev", broker.port, "");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    eprintln!("mqtt crash drill seed {seed}");
    let mut rng = Rng::new(seed);
    let mut committed = BTreeSet::new();
    for round in 1..=12 {
        let agent = device.run();
        // The kill lands at a random moment after start-up, which is slow under an emulator.
        wait_until(Duration::from_secs(30), "the agent to start", || {
            (device.log().matches(" running: ").count() >= round).then_some(())
        });
        std::thread::sleep(Duration::from_millis(150 + (rng.unit() * 400.0) as u64));
        kill9(agent);
        committed.extend(device.queued());
    }
    let out = device.cli(&["sync", "--timeout", "20s"]);
    assert!(out.status.success(), "{}", common::describe(&out));
    assert!(
        committed.len() > 100,
        "only {} readings committed",
        committed.len()
    );
    all_arrive(&committed, &sub, Duration::from_secs(10), &device);
}
