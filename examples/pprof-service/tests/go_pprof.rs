//! End to end with a real client: the service leaks, and `go tool pprof` reading its
//! `/debug/pprof/heap` (and `/debug/pprof/heap/growth`) over HTTP ranks the leaking function first. Skipped, with a notice, when Go
//! is not installed (`.ci/run` installs it); under `CI=true` that fails instead.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn get(address: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Skips a check that needs a tool beyond cargo, printing `skipped: {notice}`; under `CI=true` (or
/// `CI=1`), where `.ci/run` installs the tools, fails instead.
#[track_caller]
fn skip_or_fail(notice: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("required in CI: {notice}");
    }
    eprintln!("skipped: {notice}");
}

#[test]
fn go_tool_pprof_ranks_the_leak_first() {
    if Command::new("go").arg("version").output().is_err() {
        skip_or_fail("`go` is not installed (apt-get install golang-go; .ci/run does)");
        return;
    }
    let mut service = Command::new(env!("CARGO_BIN_EXE_tracealloc-pprof-service"))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(service.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    for _ in 0..4 {
        assert!(get(&address, "/leak?kib=2048").contains("leaked 2048 KiB"));
    }
    let home = std::env::temp_dir().join("tracealloc-go-pprof");
    let top = |path: &str| {
        let url = format!("http://{address}{path}");
        let out = Command::new("go")
            .args(["tool", "pprof", "-top", "-sample_index=inuse_space", &url])
            .env("PPROF_TMPDIR", &home)
            .env("HOME", &home)
            .output()
            .unwrap();
        let top = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{top}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        top
    };
    // The heap now, and what grew since start-up (the profile a fleet watches).
    let heap = top("/debug/pprof/heap");
    let growth = top("/debug/pprof/heap/growth");
    service.kill().ok();
    service.wait().ok();
    for top in [heap, growth] {
        // After the header, the first row of the table is the largest: the leaking function.
        let first = top
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("flat"))
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        assert!(
            first.contains("leaky_cache"),
            "the leak comes first:\n{top}"
        );
        assert!(first.contains("MB"), "8 MiB leaked:\n{top}");
    }
}
