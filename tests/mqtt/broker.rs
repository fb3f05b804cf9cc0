//! A real Mosquitto (Debian's `mosquitto`, MQTT 5) on a free loopback port, with a config file
//! the test writes: listener, anonymous access or not, an ACL, a maximum packet size, TLS.
//! Killed with the test (SIGKILL when dropped, and PR_SET_PDEATHSIG if the test dies).

use std::io::Write as _;
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Broker {
    pub port: u16,
    /// A second port, never the same as `port`, for a second listener (`{second_port}`).
    pub second_port: u16,
    pub dir: tempfile::TempDir,
    extra: String,
    child: Option<Child>,
    starts: usize,
}

impl Broker {
    /// Start with `extra` appended to the config (after `listener`, `allow_anonymous true`
    /// unless `extra` says otherwise, persistence in the broker's own directory).
    pub fn start(extra: &str) -> Broker {
        Broker::start_with(&[], extra)
    }

    /// Start with `files` (name, text) written to the broker's directory first; `{dir}` in
    /// `extra` is that directory, `{second_port}` the second port.
    pub fn start_with(files: &[(&str, &str)], extra: &str) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("fieldlink-mosquitto-")
            .tempdir()
            .expect("a temp dir for mosquitto");
        let port = super::common::free_port();
        // Two quick calls may hand out the same free port: draw until they differ.
        let second_port = std::iter::repeat_with(super::common::free_port)
            .find(|p| *p != port)
            .unwrap_or(port);
        let mut broker = Broker {
            port,
            second_port,
            dir,
            extra: String::new(),
            child: None,
            starts: 0,
        };
        broker.extra = extra
            .replace("{dir}", &broker.dir.path().display().to_string())
            .replace("{second_port}", &second_port.to_string());
        for (name, text) in files {
            broker.write(name, text);
        }
        broker.up();
        broker
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write a file the broker reads (ACL, password file, certificates).
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write a broker file");
        path
    }

    /// (Re)start on the same port with the same config.
    pub fn up(&mut self) {
        assert!(self.child.is_none(), "the broker is already running");
        let conf = self.path("mosquitto.conf");
        std::fs::write(&conf, self.config()).expect("write mosquitto.conf");
        self.starts += 1;
        let log = std::fs::File::create(self.path(&format!("broker-{}.log", self.starts)))
            .expect("create the broker log");
        let mut command = Command::new(mosquitto());
        command
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        super::common::die_with_parent(&mut command);
        self.child = Some(command.spawn().expect("start mosquitto"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn config(&self) -> String {
        let mut conf = String::new();
        // As root, mosquitto drops to the `mosquitto` user, which cannot read a test's files.
        if std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1)
            == 0
        {
            conf.push_str("user root\n");
        }
        conf.push_str(&format!(
            "listener {} 127.0.0.1\npersistence true\npersistence_location {}/\nautosave_interval 1\n",
            self.port,
            self.dir.path().display()
        ));
        if !self.extra.contains("allow_anonymous") {
            conf.push_str("allow_anonymous true\n");
        }
        conf.push_str(&self.extra);
        conf.push('\n');
        conf
    }

    /// SIGTERM: mosquitto saves its sessions (and their queued messages) and exits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.signal(&child, "-TERM");
            let _ = child.wait();
        }
    }

    /// Wait until the periodic save (every second) has written the sessions to disk, so a
    /// kill -9 keeps the subscriptions made so far.
    pub fn wait_persisted(&self) {
        let db = self.path("mosquitto.db");
        super::common::wait_until(Duration::from_secs(5), "mosquitto.db", || {
            db.exists().then_some(())
        });
    }

    fn signal(&self, child: &Child, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} mosquitto");
    }

    /// kill -9: no goodbye to anyone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Re-read the config (ACL and password files) without dropping connections.
    pub fn reload(&self) {
        self.signal(self.child.as_ref().expect("a running broker"), "-HUP");
    }

    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                std::fs::read_to_string(self.path(&format!("broker-{n}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr(), "mosquitto log:\n{}", self.log());
        }
    }
}

fn mosquitto() -> PathBuf {
    for candidate in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "the MQTT tests need Debian's `mosquitto` (apt-get install mosquitto), or run \
         scripts/test.sh / .ci/run, which install it"
    )
}
