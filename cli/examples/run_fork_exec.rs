//! A program with no tracealloc code that starts a copy of itself (fork and exec) and waits for
//! it, for `tracealloc run`'s test of one snapshot per process.

fn main() {
    let kept: Vec<Box<[u8]>> = (0..10)
        .map(|i| vec![i as u8; 100].into_boxed_slice())
        .collect();
    if std::env::args().nth(1).as_deref() == Some("child") {
        println!("child {}", kept.len());
        return;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("child")
        .status()
        .unwrap();
    assert!(status.success());
    println!("parent {}", kept.len());
}
