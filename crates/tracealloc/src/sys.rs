//! The few operating-system calls the allocator path needs, none of which allocates through the
//! global allocator.

use std::ptr;

/// Maps `len` bytes of zeroed, private memory, committed page by page as it is touched, or
/// returns null.
pub(crate) fn map_zeroed_lazily(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Unmaps memory from [`map_zeroed_lazily`].
///
/// # Safety
/// `p` and `len` come from one successful `map_zeroed_lazily(len)` call, and nothing uses the memory after.
pub(crate) unsafe fn unmap(p: *mut u8, len: usize) {
    // SAFETY: the caller guarantees this is exactly one live mapping no longer used.
    unsafe { libc::munmap(p.cast(), len) };
}

/// Gives the whole pages inside `[p, p + len)` back to the system (they read as zeroes if
/// touched again, which nothing does); returns how many bytes that was.
///
/// # Safety
/// The range lies within memory from [`map_zeroed_lazily`] that nothing uses any more.
pub(crate) unsafe fn release_pages(p: *mut u8, len: usize) -> usize {
    const PAGE: usize = 4096;
    let start = (p as usize).next_multiple_of(PAGE);
    let end = (p as usize + len) / PAGE * PAGE;
    if end <= start {
        return 0;
    }
    // SAFETY: whole pages of a private anonymous mapping that the caller no longer uses; advice
    // on them changes no other memory.
    let failed =
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    if failed == 0 { end - start } else { 0 }
}

/// The kernel's id of the calling thread.
pub(crate) fn current_tid() -> u64 {
    // SAFETY: gettid has no preconditions.
    (unsafe { libc::syscall(libc::SYS_gettid) }) as u64
}

/// `[low, high)` of the calling thread's stack, or `None` when the C library cannot tell (for the
/// main thread it reads `/proc/self/maps`, absent in a chroot: see [`main_stack_top`]).
pub(crate) fn stack_bounds() -> Option<(usize, usize)> {
    #[cfg(test)]
    if NO_STACK_BOUNDS.with(std::cell::Cell::get) {
        return None;
    }
    if crate::config::c_layer_in_use() {
        // The C layer may be called by pthread_getattr_np itself (for the thread's CPU set,
        // under the thread's lock): asking it from there would wait on that lock forever.
        return stack_bounds_from_maps();
    }
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: (1) pthread_getattr_np fills `attr` for the calling thread (it may use the C library's
    // malloc, not ours); (2) attr is only read after success and destroyed once.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let mut addr = ptr::null_mut();
        let mut size = 0;
        let ok = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        ok.then(|| (addr as usize, addr as usize + size))
    }
}

/// `[low, high)` of the mapping that holds the calling thread's stack pointer, read from
/// `/proc/self/maps` with system calls alone (no allocation, no lock of the C library's): where
/// the stack bounds are needed from inside `malloc`, which the C library may call with a lock held.
fn stack_bounds_from_maps() -> Option<(usize, usize)> {
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    // SAFETY: open reads a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    let mut buffer = [0u8; 4096];
    let mut filled = 0;
    let mut found = None;
    loop {
        // SAFETY: read writes at most the free part of `buffer`, which is valid for writes.
        let got = unsafe {
            libc::read(
                fd,
                buffer[filled..].as_mut_ptr().cast(),
                buffer.len() - filled,
            )
        };
        if got <= 0 {
            break;
        }
        filled += got as usize;
        let mut start = 0;
        while let Some(end) = buffer[start..filled].iter().position(|&b| b == b'\n') {
            if let Some((low, high)) = parse_range(&buffer[start..start + end])
                && (low..high).contains(&sp)
            {
                found = Some((low, high));
            }
            start += end + 1;
        }
        if found.is_some() {
            break;
        }
        buffer.copy_within(start..filled, 0);
        filled -= start;
        if filled == buffer.len() {
            break; // A line longer than the buffer: give up.
        }
    }
    // SAFETY: the descriptor opened above.
    unsafe { libc::close(fd) };
    found
}

/// `start-end` at the beginning of a `/proc/self/maps` line.
fn parse_range(line: &[u8]) -> Option<(usize, usize)> {
    let range = line.split(|&b| b == b' ').next()?;
    let mut parts = range.split(|&b| b == b'-');
    let hex = |text: &[u8]| {
        text.iter().try_fold(0usize, |v, &b| {
            let digit = (b as char).to_digit(16)? as usize;
            v.checked_mul(16)?.checked_add(digit)
        })
    };
    Some((hex(parts.next()?)?, hex(parts.next()?)?))
}

/// The top of the main thread's stack without `/proc`, when the calling thread is the main thread:
/// glibc's `__libc_stack_end`, the stack pointer at the program's entry, above every frame of the
/// main thread and below the top of its stack.
pub(crate) fn main_stack_top() -> Option<usize> {
    // SAFETY: getpid has no preconditions.
    if current_tid() != unsafe { libc::getpid() } as u64 {
        return None;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            static __libc_stack_end: *mut libc::c_void;
        }
        // SAFETY: glibc sets `__libc_stack_end` once, before `main` and before any thread exists,
        // and never writes it again: a plain read of an immutable word.
        let top = unsafe { __libc_stack_end } as usize;
        (top != 0).then_some(top)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

#[cfg(test)]
thread_local! {
    static NO_STACK_BOUNDS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// From now on, the calling thread's stack bounds cannot be read, as in a chroot without `/proc`
/// (tests only).
#[cfg(test)]
pub(crate) fn fail_stack_bounds_on_this_thread() {
    NO_STACK_BOUNDS.with(|fail| fail.set(true));
}

/// The calling thread's name as the kernel has it (at most 15 bytes), NUL-padded.
pub(crate) fn current_thread_name() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL-terminated, into the buffer.
    unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    name
}

/// Writes a message to stderr without allocating.
pub(crate) fn write_stderr(message: &[u8]) {
    // SAFETY: the buffer is valid for its length; a short or failed write only loses the message.
    unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
}

/// Milliseconds of `CLOCK_MONOTONIC_COARSE`: a read of the vDSO's last tick (a few ns, no system
/// call), precise to the kernel's tick (1 to 4 ms), which is all a memory timeline needs.
pub(crate) fn coarse_now_ms() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`, which is valid for writes.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    now.tv_sec as u64 * 1000 + now.tv_nsec as u64 / 1_000_000
}

/// The process's resident memory in bytes (`/proc/self/statm`), read into a stack buffer with
/// plain system calls; 0 when it cannot be read.
pub(crate) fn resident_bytes() -> u64 {
    let mut buffer = [0u8; 128];
    // SAFETY: (1) the path is NUL-terminated; (2) read writes at most `buffer.len()` bytes into
    // the buffer; (3) the descriptor is closed once, and only when it was opened.
    let len = unsafe {
        let fd = libc::open(
            c"/proc/self/statm".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return 0;
        }
        let len = libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len());
        libc::close(fd);
        len
    };
    let Ok(len) = usize::try_from(len) else {
        return 0;
    };
    // "size resident shared ..." in pages.
    let pages = buffer[..len]
        .split(|&b| b == b' ')
        .nth(1)
        .and_then(|field| std::str::from_utf8(field).ok())
        .and_then(|field| field.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// Nanoseconds of `CLOCK_MONOTONIC_COARSE`: the vDSO's last tick (a few ns to read, no system
/// call), which moves in steps of the kernel's tick (1 to 4 ms).
#[inline(always)]
/// The step of the coarse monotonic clock in nanoseconds (the kernel's tick), 0 if unknown.
pub(crate) fn coarse_step_ns() -> u64 {
    let mut step = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_getres writes one timespec into `step`, which is valid for writes.
    let ok = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut step) } == 0;
    if ok {
        step.tv_sec as u64 * 1_000_000_000 + step.tv_nsec as u64
    } else {
        0
    }
}

pub(crate) fn coarse_now_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`, which is valid for writes.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
