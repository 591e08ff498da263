//! A program with no tracealloc code that leaks for a few seconds, for `tracealloc run --live`'s
//! test: 150 blocks of 1000 bytes at a known line, one every 20 ms, then it prints and exits.

#[inline(never)]
fn leak_slowly(i: usize) {
    let block = vec![i as u8; 1000]; // SLOW LEAK LINE
    std::mem::forget(block);
}

fn main() {
    for i in 0..150 {
        leak_slowly(i);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    println!("leaked 150 blocks");
}
