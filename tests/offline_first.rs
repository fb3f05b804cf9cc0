//! An incomplete upload configuration does not stop sampling: the real binary starts without
//! its token file, queues readings, says why uploads wait, and delivers once the file appears.

mod common;

use common::fault_server::{FaultServer, Script};
use common::{toml_str, wait_until, Site, Upload};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn without_its_token_file_the_agent_queues_says_why_and_uploads_once_the_file_appears() {
    let server = FaultServer::start(Script::ok());
    let site = Site::new("token-later");
    let token = site.dir.path().join("token");
    let mut board = site.board();
    board.upload = Some(Upload {
        url: server.url(),
        api: "v2".into(),
        database: "d".into(),
        batch_lines: 500,
        timeout: "2s".into(),
        extra: vec![
            "org = \"o\"".into(),
            "bucket = \"b\"".into(),
            format!("token_file = {}", toml_str(&token.to_string_lossy())),
        ],
    });
    site.write(&board);

    // `check` still refuses a board whose token cannot be had.
    let check = site.cli(&["check"]);
    assert_eq!(check.status.code(), Some(2), "{}", common::describe(&check));

    let agent = site.run();
    let why = format!(
        "waiting for token: upload.token_file {} is missing",
        token.display()
    );
    let status = wait_until(Duration::from_secs(30), "status to say why", || {
        // Until the agent has made its queue, `status` has nothing to show.
        let out = site.cli(&["status", "--format", "json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let says = status["last_upload"]
            .as_str()
            .is_some_and(|s| s.contains(&why));
        (says && status["depth"].as_i64() > Some(0)).then_some(status)
    });
    assert!(status["depth"].as_i64() > Some(0), "{status}");
    assert!(
        server.requests().is_empty(),
        "nothing is sent without a token"
    );
    assert!(agent.log_text().contains(&why), "{}", agent.log_text());

    // The token appears whole and private at once, as `install -m 0600` would make it.
    let staged = site.dir.path().join("token.new");
    std::fs::write(&staged, "secret\n").unwrap();
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&staged, &token).unwrap();
    wait_until(Duration::from_secs(90), "readings at the server", || {
        (!server.accepted().is_empty()).then_some(())
    });
    let requests = server.requests();
    assert_eq!(requests[0].header("authorization"), Some("Token secret"));
    agent.terminate();
}
