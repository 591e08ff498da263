//! A program with no tracealloc code, for `tracealloc run`'s tests: it leaks 100 blocks of 1000
//! bytes at a known line (`leak_here`), frees everything else, and calls the C library's `strdup`.

#[inline(never)]
fn leak_here(i: usize) {
    let block = vec![i as u8; 1000]; // LEAK LINE
    std::mem::forget(block);
}

#[inline(never)]
fn churn(i: usize) -> usize {
    let mut text = String::new();
    for j in 0..i % 7 {
        text.push_str(&format!("{j},"));
    }
    text.len()
}

fn main() {
    let mut sum = 0;
    for i in 0..100 {
        leak_here(i);
        sum += churn(i);
    }
    let copy = std::ffi::CString::new("a C string").unwrap();
    // SAFETY: strdup copies a NUL-terminated string into a new malloc'd block, freed below.
    unsafe { libc_free(libc_strdup(copy.as_ptr())) };
    println!("{sum}");
}

unsafe extern "C" {
    #[link_name = "strdup"]
    fn libc_strdup(s: *const std::ffi::c_char) -> *mut std::ffi::c_char;
    #[link_name = "free"]
    fn libc_free(p: *mut std::ffi::c_char);
}
