//! The fallback stack capture for programs without frame pointers: framehop unwinding in process
//! from the DWARF call-frame information (`.eh_frame`) of every loaded object, about 100 ns per
//! stack instead of the 1.5 us of `_Unwind_Backtrace`.
//!
//! The unwinder is built once, when the fallback is chosen (under the reentrancy guard), from the
//! objects loaded at that moment; each thread gets its own rule cache on first use. Unwinding
//! itself never allocates. Code loaded later (`dlopen`) is not known: stacks through it end there
//! and count as broken. On other architectures the fallback is `_Unwind_Backtrace`.

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::ops::Range;
    use std::sync::atomic::{AtomicPtr, Ordering};

    use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
    use framehop::{ExplicitModuleSectionInfo, Module, MustNotAllocateDuringUnwind, Unwinder};

    use crate::capture::{CaptureEnd, Captured, MAX_DEPTH};

    type Sections = &'static [u8];
    pub(crate) type DwarfUnwinder = UnwinderX86_64<Sections, MustNotAllocateDuringUnwind>;
    pub(crate) type RuleCache = CacheX86_64<MustNotAllocateDuringUnwind>;

    static UNWINDER: AtomicPtr<DwarfUnwinder> = AtomicPtr::new(std::ptr::null_mut());

    /// A loaded object's unwind sections, found with `dl_iterate_phdr`.
    struct Object {
        bias: u64,
        text: Range<u64>,
        eh_frame_hdr: Range<u64>,
        eh_frame: Range<u64>,
    }

    /// Reads the `.eh_frame` address out of `.eh_frame_hdr` (its `eh_frame_ptr` field).
    ///
    /// # Safety
    /// `hdr` points at a mapped `.eh_frame_hdr` of at least 8 bytes.
    unsafe fn eh_frame_address(hdr: u64) -> Option<u64> {
        // SAFETY: the header's first 8 bytes are mapped, per the contract.
        let (version, encoding, field) = unsafe {
            let p = hdr as *const u8;
            (*p, *p.add(1), (p.add(4) as *const i32).read_unaligned())
        };
        // Version 1, eh_frame_ptr encoded as DW_EH_PE_pcrel | DW_EH_PE_sdata4 (what linkers write).
        (version == 1 && encoding == 0x1b).then(|| (hdr + 4).wrapping_add_signed(i64::from(field)))
    }

    /// `dl_iterate_phdr`'s callback: records one loaded object's unwind sections.
    ///
    /// # Safety
    /// Called by `dl_iterate_phdr` with a valid `info`, and `data` pointing at a `Vec<Object>`.
    unsafe extern "C" fn collect_object(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the callback's duration; `data` is the
        // Vec<Object> that `build` passed in.
        let (info, objects) = unsafe { (&*info, &mut *data.cast::<Vec<Object>>()) };
        let bias = info.dlpi_addr;
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        let loads: Vec<Range<u64>> = headers
            .iter()
            .filter(|h| h.p_type == libc::PT_LOAD)
            .map(|h| h.p_vaddr..h.p_vaddr + h.p_memsz)
            .collect();
        let text = headers
            .iter()
            .find(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_X != 0)
            .map(|h| h.p_vaddr..h.p_vaddr + h.p_memsz);
        let hdr = headers
            .iter()
            .find(|h| h.p_type == libc::PT_GNU_EH_FRAME)
            .map(|h| h.p_vaddr..h.p_vaddr + h.p_memsz);
        if let (Some(text), Some(hdr)) = (text, hdr)
            && hdr.end - hdr.start >= 8
            // SAFETY: the PT_GNU_EH_FRAME segment is mapped at bias + p_vaddr.
            && let Some(eh_frame_avma) = unsafe { eh_frame_address(bias + hdr.start) }
        {
            let eh_frame_svma = eh_frame_avma - bias;
            // `.eh_frame` runs to the end of the loadable segment that holds it (its length is
            // not recorded anywhere else at run time).
            if let Some(segment) = loads.iter().find(|l| l.contains(&eh_frame_svma)) {
                objects.push(Object {
                    bias,
                    text,
                    eh_frame_hdr: hdr,
                    eh_frame: eh_frame_svma..segment.end,
                });
            }
        }
        0
    }

    /// Bytes mapped at `bias + svma`.
    ///
    /// # Safety
    /// The range lies in a loaded, readable segment that stays mapped for the process's life.
    unsafe fn mapped(bias: u64, svma: &Range<u64>) -> Sections {
        // SAFETY: per the contract.
        unsafe {
            std::slice::from_raw_parts(
                (bias + svma.start) as *const u8,
                (svma.end - svma.start) as usize,
            )
        }
    }

    /// Builds the unwinder from the objects loaded now, once. Call under the reentrancy guard.
    #[cold]
    pub(crate) fn build() {
        if !UNWINDER.load(Ordering::Acquire).is_null() {
            return;
        }
        let mut objects: Vec<Object> = Vec::new();
        // SAFETY: the callback only reads the headers it is given and pushes into `objects`.
        unsafe {
            libc::dl_iterate_phdr(
                Some(collect_object),
                (&mut objects as *mut Vec<Object>).cast(),
            )
        };
        let mut unwinder = DwarfUnwinder::new();
        for object in &objects {
            // SAFETY: text, .eh_frame_hdr and .eh_frame lie in the object's readable loaded
            // segments, which stay mapped (we never unload what we registered; see module docs).
            let sections = unsafe {
                ExplicitModuleSectionInfo {
                    base_svma: 0,
                    text_svma: Some(object.text.clone()),
                    text: Some(mapped(object.bias, &object.text)),
                    eh_frame_svma: Some(object.eh_frame.clone()),
                    eh_frame: Some(mapped(object.bias, &object.eh_frame)),
                    eh_frame_hdr_svma: Some(object.eh_frame_hdr.clone()),
                    eh_frame_hdr: Some(mapped(object.bias, &object.eh_frame_hdr)),
                    ..Default::default()
                }
            };
            let avma = object.bias + object.text.start..object.bias + object.text.end;
            unwinder.add_module(Module::new(String::new(), avma, object.bias, sections));
        }
        let built = Box::into_raw(Box::new(unwinder));
        if UNWINDER
            .compare_exchange(
                std::ptr::null_mut(),
                built,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: another thread won the race; ours was never shared.
            drop(unsafe { Box::from_raw(built) });
        }
    }

    /// A new per-thread rule cache. Call under the reentrancy guard (it allocates).
    pub(crate) fn new_cache() -> *mut RuleCache {
        Box::into_raw(Box::new(RuleCache::default()))
    }

    /// Unwinds the calling stack into `out`. Returns false when no unwinder was built.
    ///
    /// # Safety
    /// `cache` comes from [`new_cache`] and is used by the calling thread only; `stack` bounds the
    /// calling thread's live stack.
    #[inline(never)]
    pub(crate) unsafe fn unwind(
        out: &mut Captured,
        cache: *mut RuleCache,
        (_, high): (usize, usize),
    ) -> bool {
        // SAFETY: published once, never freed.
        let Some(unwinder) = (unsafe { UNWINDER.load(Ordering::Acquire).as_ref() }) else {
            return false;
        };
        let (pc, sp, bp): (u64, u64, u64);
        // SAFETY: reads registers only.
        unsafe {
            std::arch::asm!("lea {}, [rip]", out(reg) pc, options(nomem, nostack, preserves_flags));
            std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags));
            std::arch::asm!("mov {}, rbp", out(reg) bp, options(nomem, nostack, preserves_flags));
        }
        let high = high as u64;
        let mut read_stack = |addr: u64| {
            if addr >= sp && addr + 8 <= high && addr.is_multiple_of(8) {
                // SAFETY: within [sp, high): the live part of this thread's stack, mapped.
                Ok(unsafe { (addr as *const u64).read() })
            } else {
                Err(())
            }
        };
        // SAFETY: the caller gives this thread's own cache.
        let cache = unsafe { &mut *cache };
        let mut frames = unwinder.iter_frames(
            pc,
            UnwindRegsX86_64::new(pc, sp, bp),
            cache,
            &mut read_stack,
        );
        out.reset();
        out.end = loop {
            match frames.next() {
                Ok(Some(framehop::FrameAddress::ReturnAddress(ret))) => {
                    if out.depth() == MAX_DEPTH {
                        break CaptureEnd::Truncated;
                    }
                    out.push(u64::from(ret) as usize);
                }
                Ok(Some(framehop::FrameAddress::InstructionPointer(_))) => {} // our own frame
                Ok(None) => break CaptureEnd::Complete,
                Err(_) => break CaptureEnd::Broken,
            }
        };
        true
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use imp::{RuleCache, build, new_cache, unwind};
