//! The control socket refuses a user other than its owner: the socket is
//! mode 0600, so `xconnect show` run as another user (uid 65534, "nobody")
//! cannot connect and says why, while the owner is answered. Changing
//! the user of a child needs root; without it the test says it skips.

use crossbeam::channel::unbounded;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use xconnect::control::socket::{ok, Call, ControlServer};

const XCONNECT: &str = env!("CARGO_BIN_EXE_xconnect");

#[test]
fn a_user_other_than_the_owner_is_refused() {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping a_user_other_than_the_owner_is_refused: needs root to run a child as another user");
        return;
    }
    let dir = std::env::temp_dir().join(format!("xc-ctl-owner-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The directory is open to everyone: only the socket's mode keeps
    // the other user out.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join("pe.sock");
    let (tx, rx) = unbounded::<Call>();
    let (server, _) = ControlServer::bind(&path, tx).unwrap();
    let owner = std::thread::spawn(move || {
        while let Ok(c) = rx.recv() {
            let _ = c.reply.send(ok(json!({"ports": []})));
        }
    });
    let show = |uid: Option<u32>| {
        let mut c = Command::new(XCONNECT);
        c.args(["show", "ports", "--json", "--control"]).arg(&path);
        if let Some(u) = uid {
            c.uid(u).gid(u);
        }
        c.output().unwrap()
    };
    let theirs = show(Some(65534));
    let err = String::from_utf8_lossy(&theirs.stderr);
    assert!(!theirs.status.success(), "nobody was answered: {err}");
    assert!(
        err.contains("Permission denied") && err.contains("0600"),
        "{err}"
    );
    let mine = show(None);
    assert!(
        mine.status.success(),
        "{}",
        String::from_utf8_lossy(&mine.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&mine.stdout).trim(),
        r#"{"ports":[]}"#
    );
    drop(server);
    owner.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
