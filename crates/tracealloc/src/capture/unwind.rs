//! The fallback stack capture for programs without frame pointers: unwinding in process from the
//! DWARF call-frame information (`.eh_frame`) of every loaded object.
//!
//! Each return address's rule is read from `.eh_frame` once (with gimli) and kept in a compact,
//! process-wide cache, so a frame then costs one cache lookup and two or three stack reads: a few
//! nanoseconds, and still tens, not thousands, when the profiler is compiled without optimization
//! (a plain debug build). Frames whose rule does not fit the compact form go to framehop.
//!
//! The unwinder is built once, when the fallback is chosen, from the objects loaded at that moment.
//! Reading a new rule allocates (gimli's context), so every capture runs under the reentrancy
//! guard. Code loaded later (`dlopen`) is not known: framehop walks its frames by frame pointer, and
//! stacks through it may end there (counted as broken). On other architectures the fallback is
//! `_Unwind_Backtrace`.

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::ops::Range;
    use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

    use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
    use framehop::{ExplicitModuleSectionInfo, Module, MustNotAllocateDuringUnwind, Unwinder};

    use std::mem::MaybeUninit;

    use crate::capture::{CaptureEnd, Captured, MAX_DEPTH, StackHash};

    type Sections = &'static [u8];
    pub(crate) type DwarfUnwinder = UnwinderX86_64<Sections, MustNotAllocateDuringUnwind>;

    /// A thread's own unwind caches: framehop's, and the rules of the frames its last walks met
    /// at each stack address.
    ///
    /// The second spares most frames their lookup in the process-wide cache. That lookup hashes
    /// the return address and loads the entry it names: two steps that wait for the return
    /// address, on the chain from one frame to the next. The frame's stack address is known a
    /// load earlier (it is where the return address is read from), and the same functions' frames
    /// sit at the same stack addresses walk after walk (the outer frames are the same calls), so
    /// the entry found by stack address is loaded while the return address is, and only compared.
    pub(crate) struct RuleCache {
        framehop: CacheX86_64<MustNotAllocateDuringUnwind>,
        /// Entries as the process-wide cache holds them (`address << 16 | inline payload`), at
        /// the slot of the stack address of the frame whose rule they are.
        by_frame: [u64; FRAME_SLOTS],
        /// The stretch that ended this thread's last walk, walked by rule (see [`LastStretch`]).
        last_stretch: LastStretch,
    }

    /// The last stretch of a walk that ran by rule alone, from the first frame past the last
    /// function that keeps frame pointers to the stack's end: on a program built with them, the C
    /// library's thread entry (`start_thread`, `clone3`; `__libc_start_call_main`,
    /// `__libc_start_main`, `_start` on the main thread), whose rules would otherwise be looked up
    /// on every walk, at the end of every stack.
    ///
    /// A later walk that reaches the same stretch's first frame in the same state (return address,
    /// stack pointer, frame pointer) and finds the same values in every stack word the stretch
    /// read would read them again and find the same frames (each step is a function of the state
    /// and the words it reads), so it takes them from here. A stretch that read more words than
    /// kept here, or went through framehop, is not remembered.
    #[derive(Clone, Copy)]
    struct LastStretch {
        /// The state at its first frame (`pc == 0`: nothing remembered).
        pc: u64,
        sp: u64,
        bp: u64,
        /// The stack words it read: addresses and values.
        reads: [(u64, u64); 2 * STRETCH_FRAMES],
        read_count: usize,
        /// The return addresses it found, and how the walk ended.
        frames: [u64; STRETCH_FRAMES],
        len: usize,
        end: CaptureEnd,
    }

    /// The most frames [`LastStretch`] keeps (the main thread's base has three).
    const STRETCH_FRAMES: usize = 6;

    impl LastStretch {
        const NONE: LastStretch = LastStretch {
            pc: 0,
            sp: 0,
            bp: 0,
            reads: [(0, 0); 2 * STRETCH_FRAMES],
            read_count: 0,
            frames: [0; STRETCH_FRAMES],
            len: 0,
            end: CaptureEnd::Complete,
        };
    }

    /// The stretch a walk is in: walked by rule since its last frame that keeps frame pointers,
    /// with the stack words it read (see [`LastStretch`]).
    struct Stretch {
        /// The state at its first frame.
        pc: u64,
        sp: u64,
        bp: u64,
        /// The walk's depth then.
        from: usize,
        /// The first `read_count` are written (`read_count` past the array: too many to keep).
        reads: [MaybeUninit<(u64, u64)>; 2 * STRETCH_FRAMES],
        read_count: usize,
    }

    impl Stretch {
        /// The stretch that starts at the frame in `regs`, at depth `from`.
        #[inline(always)]
        fn at(regs: &Registers, from: usize) -> Stretch {
            Stretch {
                pc: regs.pc,
                sp: regs.sp,
                bp: regs.bp,
                from,
                reads: [const { MaybeUninit::uninit() }; 2 * STRETCH_FRAMES],
                read_count: 0,
            }
        }

        /// Notes a stack word the stretch read.
        #[inline(always)]
        fn note(&mut self, address: u64, value: u64) {
            if let Some(slot) = self.reads.get_mut(self.read_count) {
                *slot = MaybeUninit::new((address, value));
            }
            self.read_count = self.read_count.saturating_add(1);
        }

        /// What to remember of it, when the walk that it ended reached the stack's end (`end`)
        /// with `frames` past its first frame: `None` when it is too long to keep.
        fn remembered(
            &self,
            frames: &[MaybeUninit<usize>],
            end: CaptureEnd,
        ) -> Option<LastStretch> {
            if frames.len() > STRETCH_FRAMES || self.read_count > self.reads.len() {
                return None;
            }
            let mut last = LastStretch {
                pc: self.pc,
                sp: self.sp,
                bp: self.bp,
                read_count: self.read_count,
                len: frames.len(),
                end,
                ..LastStretch::NONE
            };
            for (to, read) in last.reads.iter_mut().zip(&self.reads[..self.read_count]) {
                // SAFETY: the first `read_count` reads were written by `note`.
                *to = unsafe { read.assume_init() };
            }
            for (to, ret) in last.frames.iter_mut().zip(frames) {
                // SAFETY: the walk wrote the frames below its depth.
                *to = unsafe { ret.assume_init() } as u64;
            }
            Some(last)
        }
    }

    /// Slots of [`RuleCache::by_frame`]: 8 KiB, about L1-resident, enough for the 40-60 frames of a
    /// recursive-descent parser with few collisions.
    const FRAME_SLOT_BITS: u32 = 10;
    const FRAME_SLOTS: usize = 1 << FRAME_SLOT_BITS;

    /// The slot of the frame whose stack pointer is `sp`: its address in 16-byte units (frames
    /// are 16-aligned at calls), modulo the slots. One instruction on the chain from frame to
    /// frame, where a multiplicative hash would add three cycles; frames 16 KiB apart share a
    /// slot, and then each finds the other's entry and looks its own up in the shared cache.
    #[inline(always)]
    fn frame_slot(sp: u64) -> usize {
        (sp >> 4) as usize & (FRAME_SLOTS - 1)
    }

    /// A loaded object's unwind sections, found with `dl_iterate_phdr`.
    struct Object {
        /// The program itself (not a shared library).
        main_program: bool,
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
                    // The dynamic loader names the program with an empty string.
                    // SAFETY: dlpi_name is null or a NUL-terminated string, valid for the
                    // callback's duration.
                    main_program: info.dlpi_name.is_null() || unsafe { *info.dlpi_name } == 0,
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

    /// What is built once, when the fallback is chosen: the loaded objects and framehop's unwinder
    /// over them (for the frames whose rule does not fit the compact form).
    struct Built {
        objects: Vec<Object>,
        framehop: DwarfUnwinder,
        /// Where the functions keep frame pointers: in the program's code, and in the object
        /// this runtime lives in when that is another (the library `tracealloc run` preloads),
        /// whose frames open every stack.
        frame_pointers: [FramePointerMap; 2],
    }

    /// Where, in the program's own code, the functions keep frame pointers: one bit per 16 bytes
    /// of its text, set where those 16 bytes hold code of functions whose call-frame information
    /// says they keep them (CFA = rbp + 16, the caller's rbp saved at CFA - 16) and of no other.
    ///
    /// A frame whose return address lies there is unwound as a frame-pointer walk would, with no
    /// rule to look up: a program built with frame pointers unwinds about as fast as their walk,
    /// and still exactly where some of its code has none (C code built into it, hand-written
    /// assembly) or where the stack runs through a library (the C library's `strdup`, `opendir`),
    /// whose frames take their rules from `.eh_frame`.
    ///
    /// Why a function's whole range can be taken, though the rule differs in its prologue and
    /// epilogues: the map is only asked about return addresses (the first frame's instruction
    /// pointer takes its rule), and calls happen only after the prologue has set the frame pointer
    /// up and before an epilogue (which ends in `ret` or a tail jump, not a call).
    struct FramePointerMap {
        /// The address of the text's first byte.
        start: u64,
        /// 16-byte chunks the bits cover.
        chunks: u64,
        /// `chunks` bits, mapped for the process's life; null when there is no map.
        bits: *const u64,
    }

    // SAFETY: the bits are written once, before the map is published with `BUILT`, then only read.
    unsafe impl Send for FramePointerMap {}
    // SAFETY: as above.
    unsafe impl Sync for FramePointerMap {}

    impl FramePointerMap {
        const NONE: FramePointerMap = FramePointerMap {
            start: 0,
            chunks: 0,
            bits: std::ptr::null(),
        };

        /// Reads the program's `.eh_frame` once and marks the functions that keep frame pointers.
        /// Call under the reentrancy guard (gimli's parsing may allocate).
        fn of(object: &Object, mapped_bytes: &AtomicU64) -> FramePointerMap {
            use gimli::{BaseAddresses, CieOrFde, EhFrame, LittleEndian, UnwindSection};
            let start = object.bias + object.text.start;
            let chunks = (object.text.end - object.text.start).div_ceil(16);
            let bytes = chunks.div_ceil(64) * 8;
            let bits = crate::sys::map_zeroed_lazily(bytes as usize).cast::<u64>();
            if bits.is_null() {
                return FramePointerMap::NONE;
            }
            mapped_bytes.fetch_add(bytes, Ordering::Relaxed);
            let bases = BaseAddresses::default()
                .set_eh_frame_hdr(object.bias + object.eh_frame_hdr.start)
                .set_eh_frame(object.bias + object.eh_frame.start)
                .set_text(start);
            // SAFETY: the section lies in the object's loaded segments (see `build`).
            let eh_frame = EhFrame::new(
                unsafe { mapped(object.bias, &object.eh_frame) },
                LittleEndian,
            );
            let mut entries = eh_frame.entries(&bases);
            // The chunks of the functions that do not keep frame pointers.
            let mut without: Vec<std::ops::Range<u64>> = Vec::new();
            // A malformed entry ends the reading: the functions not marked are unwound by rule.
            while let Ok(Some(entry)) = entries.next() {
                let CieOrFde::Fde(partial) = entry else {
                    continue;
                };
                let Ok(fde) =
                    partial.parse(|section, bases, offset| section.cie_from_offset(bases, offset))
                else {
                    continue;
                };
                // The chunks the function touches, in chunk numbers from the text's start.
                let first = fde.initial_address().saturating_sub(start) / 16;
                let last = fde
                    .end_address()
                    .saturating_sub(start)
                    .div_ceil(16)
                    .min(chunks);
                if frame_pointer_set_up_at(&fde, &eh_frame, &bases).is_some() {
                    for chunk in first..last {
                        // SAFETY: chunk < chunks, within the `bytes` just mapped; not yet shared.
                        unsafe { *bits.add((chunk / 64) as usize) |= 1 << (chunk % 64) };
                    }
                } else {
                    without.push(first..last);
                }
            }
            // A chunk shared with a function that does not keep frame pointers is not theirs.
            for chunk in without.into_iter().flatten() {
                // SAFETY: as above.
                unsafe { *bits.add((chunk / 64) as usize) &= !(1 << (chunk % 64)) };
            }
            FramePointerMap {
                start,
                chunks,
                bits,
            }
        }
    }

    /// Where the function an FDE describes has set up its frame pointer (CFA = rbp + 16, the
    /// caller's rbp saved at CFA - 16), or `None` if it never does.
    fn frame_pointer_set_up_at<R: gimli::Reader<Offset = usize>>(
        fde: &gimli::FrameDescriptionEntry<R>,
        eh_frame: &gimli::EhFrame<R>,
        bases: &gimli::BaseAddresses,
    ) -> Option<u64> {
        use gimli::{CallFrameInstruction, X86_64};
        let cie = fde.cie();
        if cie.return_address_register() != X86_64::RA {
            return None;
        }
        let mut at = fde.initial_address();
        let mut saved = false;
        let mut instructions = fde.instructions(eh_frame, bases);
        while let Ok(Some(instruction)) = instructions.next() {
            match instruction {
                CallFrameInstruction::AdvanceLoc { delta } => {
                    at += u64::from(delta) * cie.code_alignment_factor();
                }
                CallFrameInstruction::SetLoc { address } => at = address,
                CallFrameInstruction::Offset {
                    register: X86_64::RBP,
                    factored_offset,
                } => {
                    saved = factored_offset as i64 * cie.data_alignment_factor() == -16;
                }
                CallFrameInstruction::DefCfaRegister {
                    register: X86_64::RBP,
                }
                | CallFrameInstruction::DefCfa {
                    register: X86_64::RBP,
                    offset: 16,
                } if saved => return Some(at),
                _ => {}
            }
        }
        None
    }

    static BUILT: AtomicPtr<Built> = AtomicPtr::new(std::ptr::null_mut());

    /// Builds the unwinder from the objects loaded now, once. Call under the reentrancy guard.
    #[cold]
    pub(crate) fn build(mapped_bytes: &AtomicU64) {
        if !BUILT.load(Ordering::Acquire).is_null() {
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
        let mut framehop = DwarfUnwinder::new();
        for object in &objects {
            // SAFETY: text, .eh_frame_hdr and .eh_frame lie in the object's readable loaded
            // segments. They stay mapped as long as the object stays loaded; an object unloaded
            // with `dlclose` would leave dangling sections here (see the module docs: objects that
            // come and go are not supported; the ones seen at start-up are the executable and the
            // libraries it links, which are never unloaded).
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
            framehop.add_module(Module::new(String::new(), avma, object.bias, sections));
        }
        rules::map_cache(mapped_bytes);
        let here = build as fn(&AtomicU64) as usize as u64;
        let map_of = |object: Option<&Object>| {
            object.map_or(FramePointerMap::NONE, |object| {
                FramePointerMap::of(object, mapped_bytes)
            })
        };
        let program = objects.iter().find(|object| object.main_program);
        let runtime = objects.iter().find(|o| {
            !o.main_program && here >= o.bias + o.text.start && here < o.bias + o.text.end
        });
        let frame_pointers = [map_of(program), map_of(runtime)];
        let built = Box::into_raw(Box::new(Built {
            objects,
            framehop,
            frame_pointers,
        }));
        if BUILT
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

    /// A new per-thread rule cache for framehop. Call under the reentrancy guard (it allocates).
    pub(crate) fn new_cache() -> *mut RuleCache {
        Box::into_raw(Box::new(RuleCache {
            framehop: CacheX86_64::default(),
            by_frame: [0; FRAME_SLOTS],
            last_stretch: LastStretch::NONE,
        }))
    }

    /// The compact unwind rule of `address` (a return address minus one, or the first frame's
    /// instruction pointer) read from its object's `.eh_frame`: [`rules::DELEGATE`] when the rule
    /// does not fit the compact form or no object holds the address. Runs on a cache miss only;
    /// allocates (gimli's context), so it runs under the reentrancy guard.
    #[cold]
    #[inline(never)]
    fn read_rule(built: &Built, address: u64) -> u64 {
        use gimli::{
            BaseAddresses, CfaRule, EhFrame, EhFrameHdr, LittleEndian, RegisterRule, UnwindContext,
            UnwindSection, X86_64,
        };
        let Some(object) = built
            .objects
            .iter()
            .find(|o| address >= o.bias + o.text.start && address < o.bias + o.text.end)
        else {
            return rules::DELEGATE;
        };
        let avma = |r: &Range<u64>| object.bias + r.start;
        let bases = BaseAddresses::default()
            .set_eh_frame_hdr(avma(&object.eh_frame_hdr))
            .set_eh_frame(avma(&object.eh_frame))
            .set_text(avma(&object.text));
        // SAFETY: the sections lie in the object's loaded segments (see `build`).
        let (hdr, eh_frame) = unsafe {
            (
                mapped(object.bias, &object.eh_frame_hdr),
                mapped(object.bias, &object.eh_frame),
            )
        };
        let Ok(hdr) = EhFrameHdr::new(hdr, LittleEndian).parse(&bases, 8) else {
            return rules::DELEGATE;
        };
        let Some(table) = hdr.table() else {
            return rules::DELEGATE;
        };
        let eh_frame = EhFrame::new(eh_frame, LittleEndian);
        let mut context = Box::new(UnwindContext::new());
        let Ok(row) = table.unwind_info_for_address(
            &eh_frame,
            &bases,
            &mut context,
            address,
            |section, bases, offset| section.cie_from_offset(bases, offset),
        ) else {
            return rules::DELEGATE;
        };
        // As framehop reads them: no rule for the return address ends the stack.
        match row.register(X86_64::RA) {
            None | Some(RegisterRule::Undefined) => return rules::END,
            Some(RegisterRule::Offset(-8)) => {}
            Some(_) => return rules::DELEGATE,
        }
        let (from_frame_pointer, cfa_offset) = match *row.cfa() {
            CfaRule::RegisterAndOffset { register, offset } if register == X86_64::RSP => {
                (false, offset)
            }
            CfaRule::RegisterAndOffset { register, offset } if register == X86_64::RBP => {
                (true, offset)
            }
            _ => return rules::DELEGATE,
        };
        let saved_frame_pointer = match row.register(X86_64::RBP) {
            None | Some(RegisterRule::Undefined | RegisterRule::SameValue) => None,
            Some(RegisterRule::Offset(offset)) => Some(offset),
            Some(_) => return rules::DELEGATE,
        };
        rules::pack(from_frame_pointer, cfa_offset, saved_frame_pointer)
    }

    /// The instruction pointer, stack pointer and frame pointer of the function this is inlined
    /// into, read in one block so that pc and sp belong to the same instruction.
    #[inline(always)]
    fn registers() -> (u64, u64, u64) {
        let (pc, sp, bp): (u64, u64, u64);
        // SAFETY: reads registers only.
        unsafe {
            std::arch::asm!(
                "lea {pc}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                pc = out(reg) pc,
                sp = out(reg) sp,
                bp = out(reg) bp,
                options(nomem, nostack, preserves_flags)
            );
        }
        (pc, sp, bp)
    }

    /// Unwinds the calling stack into `out`, at most `limit` frames. Returns false when no
    /// unwinder was built.
    ///
    /// Each frame costs one lookup in a process-wide cache of compact rules (see [`rules`]) and
    /// two or three reads of the stack; the DWARF rules are read once per return address. That
    /// keeps the walk cheap even when the profiler is compiled without optimization.
    ///
    /// # Safety
    /// `cache` comes from [`new_cache`] and is used by the calling thread only; `stack` bounds the
    /// calling thread's live stack.
    #[inline(never)]
    pub(crate) unsafe fn unwind(
        out: &mut Captured,
        cache: *mut RuleCache,
        (_, high): (usize, usize),
        limit: usize,
    ) -> bool {
        // SAFETY: published once, never freed.
        let Some(built) = (unsafe { BUILT.load(Ordering::Acquire).as_ref() }) else {
            return false;
        };
        let (pc, sp, bp) = registers();
        let mut regs = Registers { pc, sp, bp };
        let low = sp;
        // `addr.wrapping_sub(low) <= span`: within `[low, high - 8]`, the live part of this
        // thread's stack from our own frame up, in one compare.
        let span = (high as u64 - 8).wrapping_sub(low);
        // Depth and hash stay in registers through the loop, as in the frame-pointer walk.
        let limit = limit.min(MAX_DEPTH);
        let (mut depth, mut hash) = (0, StackHash::EMPTY);
        // The first frame's rule is the current instruction's; a caller's is the call's, the
        // instruction before its return address. (Every later frame was pushed: `depth > 0`.)
        let mut lookup = pc;
        // The maps' fields in registers, as the loop below reads them on every frame.
        let [
            FramePointerMap {
                start: map_start,
                chunks: map_chunks,
                bits: map_bits,
            },
            FramePointerMap {
                start: own_start,
                chunks: own_chunks,
                bits: own_bits,
            },
        ] = built.frame_pointers;
        // The stretch walked by rule since the last frame that keeps frame pointers (see
        // `LastStretch`; `len` holds the depth it started at until the walk ends).
        let mut stretch: Option<Stretch> = None;
        let end = 'walk: loop {
            let first = depth == 0;
            // Runs of frames of functions that keep frame pointers (see `FramePointerMap`): a
            // frame-pointer walk, with no rule to look up. Plain operators: this loop runs per
            // frame, and in an unoptimized build every call costs. (The first frame's address
            // is an instruction, not a call, and its rule is looked up.)
            if !first {
                let before = depth;
                let Registers {
                    mut pc,
                    mut sp,
                    mut bp,
                } = regs;
                // One step per frame while `lookup` lies in the given map's marked chunks.
                macro_rules! frame_pointer_steps {
                    ($start:expr, $chunks:expr, $bits:expr) => {
                        loop {
                            let chunk = lookup.wrapping_sub($start) / 16;
                            if chunk >= $chunks {
                                break;
                            }
                            // SAFETY: chunk < chunks (checked above): a bit within the map, which
                            // stays mapped.
                            let word = unsafe { *$bits.add((chunk / 64) as usize) };
                            if word >> (chunk % 64) & 1 == 0 {
                                break;
                            }
                            if bp.wrapping_add(16) <= sp
                                || bp.wrapping_sub(low) > span.wrapping_sub(8)
                            {
                                break 'walk CaptureEnd::Broken;
                            }
                            // SAFETY: `low <= bp` and `bp + 8 <= high - 8` (checked above): both
                            // words lie in the live part of this thread's stack; unaligned, as
                            // below.
                            let (saved, ret) = unsafe {
                                let frame = bp as *const u64;
                                (frame.read_unaligned(), frame.add(1).read_unaligned())
                            };
                            pc = ret;
                            sp = bp + 16;
                            bp = saved;
                            if pc == 0 {
                                break 'walk CaptureEnd::Complete;
                            }
                            if depth >= limit {
                                break 'walk CaptureEnd::Truncated;
                            }
                            out.frames[depth] = MaybeUninit::new(pc as usize);
                            depth += 1;
                            hash = hash.add(pc as usize);
                            lookup = pc - 1;
                        }
                    };
                }
                // The runtime's own frames open a stack; then the program's. Two loops, so that
                // the program's, the long one, keeps its map's fields in registers.
                frame_pointer_steps!(own_start, own_chunks, own_bits);
                frame_pointer_steps!(map_start, map_chunks, map_bits);
                regs = Registers { pc, sp, bp };
                if depth != before {
                    // Through functions that keep frame pointers again: what ran by rule before
                    // is not the walk's last stretch.
                    stretch = None;
                }
                if stretch.is_none() {
                    // SAFETY: this thread's own cache (the caller's contract).
                    if let Some(last) = unsafe { same_last_stretch(cache, &regs, (low, span)) } {
                        for &ret in &last.frames[..last.len] {
                            if depth >= limit {
                                break 'walk CaptureEnd::Truncated;
                            }
                            out.frames[depth] = MaybeUninit::new(ret as usize);
                            depth += 1;
                            hash = hash.add(ret as usize);
                        }
                        break 'walk last.end;
                    }
                    stretch = Some(Stretch::at(&regs, depth));
                }
            }
            // The common case of a frame that does not keep frame pointers (a program built
            // without them), here rather than out of line: a rule held inline in the entry this
            // thread met at this stack address (CFA = sp or bp plus a multiple of 8 up to 8 KiB,
            // the caller's frame pointer kept or saved just below the CFA).
            // SAFETY: this thread's own cache (the caller's contract); no reference to it is live.
            let remembered = unsafe { (*cache).by_frame[frame_slot(regs.sp)] };
            if rules::holds_inline(remembered, lookup) {
                let Registers { sp, bp, .. } = regs;
                let (from_frame_pointer, cfa_offset, saved_below) =
                    rules::decode_inline(remembered);
                let cfa = if from_frame_pointer { bp } else { sp }.wrapping_add(cfa_offset);
                if cfa <= sp || (cfa - 8).wrapping_sub(low) > span {
                    break CaptureEnd::Broken;
                }
                // SAFETY: `low <= cfa - 8 <= high - 8`: the live part of this thread's stack;
                // unaligned, so a misaligned frame in a broken chain is read, not trusted.
                let ret = unsafe { ((cfa - 8) as *const u64).read_unaligned() };
                if let Some(stretch) = &mut stretch {
                    stretch.note(cfa - 8, ret);
                }
                let bp = match saved_below {
                    None => bp,
                    Some(below) => {
                        let at = cfa.wrapping_sub(below);
                        if at.wrapping_sub(low) > span {
                            break CaptureEnd::Broken;
                        }
                        // SAFETY: as above, checked.
                        let saved = unsafe { (at as *const u64).read_unaligned() };
                        if let Some(stretch) = &mut stretch {
                            stretch.note(at, saved);
                        }
                        saved
                    }
                };
                regs = Registers {
                    pc: ret,
                    sp: cfa,
                    bp,
                };
            // SAFETY: this thread's own cache, and its stack's live part (the caller's contract).
            } else if let Err(end) = unsafe {
                step_by_rule(
                    built,
                    cache,
                    &mut regs,
                    lookup,
                    first,
                    (low, span),
                    &mut stretch,
                )
            } {
                break end;
            }
            let pc = regs.pc;
            lookup = pc.wrapping_sub(1);
            if pc == 0 {
                break CaptureEnd::Complete;
            }
            if depth >= limit {
                break CaptureEnd::Truncated;
            }
            out.frames[depth] = MaybeUninit::new(pc as usize);
            depth += 1;
            hash = hash.add(pc as usize);
        };
        if end == CaptureEnd::Complete
            && let Some(last) = stretch
                .as_ref()
                .and_then(|stretch| stretch.remembered(&out.frames[stretch.from..depth], end))
        {
            // SAFETY: this thread's own cache; no other borrow of it is live.
            unsafe { (*cache).last_stretch = last };
        }
        out.depth = depth;
        out.hash = hash;
        out.end = end;
        true
    }

    /// A frame's registers, as unwinding reads them.
    #[derive(Clone, Copy)]
    struct Registers {
        pc: u64,
        sp: u64,
        bp: u64,
    }

    /// This thread's last stretch, if a walk in state `regs` would walk it again: the same state
    /// at its first frame, and the same value in every stack word it read (see [`LastStretch`]).
    ///
    /// # Safety
    /// `cache` comes from [`new_cache`] and is used by the calling thread only; `low..=low + span`
    /// is the live part of the calling thread's stack.
    #[inline(never)]
    unsafe fn same_last_stretch<'a>(
        cache: *const RuleCache,
        regs: &Registers,
        (low, span): (u64, u64),
    ) -> Option<&'a LastStretch> {
        // SAFETY: this thread's own cache (the contract); a field apart from the one borrowed
        // mutably by a walk.
        let last = unsafe { &(*cache).last_stretch };
        let same = last.pc == regs.pc
            && last.sp == regs.sp
            && last.bp == regs.bp
            && last.reads[..last.read_count].iter().all(|&(at, value)| {
                // SAFETY: `low <= at <= low + span` (checked first): the live part of this
                // thread's stack (the stretch may have been another thread's, before this one
                // took its state on).
                at.wrapping_sub(low) <= span
                    && unsafe { (at as *const u64).read_unaligned() } == value
            });
        same.then_some(last)
    }

    /// Steps from the frame in `regs` to its caller by the rule of `lookup` (the frame's return
    /// address minus one, or its instruction pointer for the first frame), read from `.eh_frame`
    /// on the first visit: `Err` when the walk ends there. Notes the stack words it reads in
    /// `stretch`.
    ///
    /// Out of line, so that the frame-pointer loop in [`unwind`] keeps its registers to itself.
    ///
    /// # Safety
    /// As [`same_last_stretch`].
    #[inline(never)]
    unsafe fn step_by_rule(
        built: &Built,
        cache: *mut RuleCache,
        regs: &mut Registers,
        lookup: u64,
        first: bool,
        (low, span): (u64, u64),
        stretch: &mut Option<Stretch>,
    ) -> Result<(), CaptureEnd> {
        let Registers { pc, sp, mut bp } = *regs;
        let readable = move |addr: u64| addr.wrapping_sub(low) <= span && addr & 7 == 0;
        // SAFETY: this thread's own cache (the contract); this borrows one field (framehop's,
        // below, another).
        let by_frame = unsafe { &mut (*cache).by_frame };
        let cache_table = rules::table();
        // The common case first, decoded straight from a cache entry: a rule held inline (CFA =
        // sp or bp plus a multiple of 8 up to 8 KiB, the caller's frame pointer kept or saved just
        // below the CFA). The entry this thread met at this stack address, if it is this
        // address's (loaded while `lookup` was), else the process-wide one's.
        let slot = frame_slot(sp);
        let remembered = by_frame[slot];
        let entry = if rules::holds_inline(remembered, lookup) {
            Some(remembered)
        } else {
            let found = rules::inline_entry(cache_table, lookup);
            by_frame[slot] = found.unwrap_or(0);
            found
        };
        let (ret, cfa) = if let Some(entry) = entry {
            let (from_frame_pointer, cfa_offset, saved_below) = rules::decode_inline(entry);
            let cfa = if from_frame_pointer { bp } else { sp }.wrapping_add(cfa_offset);
            if cfa <= sp || (cfa - 8).wrapping_sub(low) > span {
                return Err(CaptureEnd::Broken);
            }
            // SAFETY: `low <= cfa - 8 <= high - 8`: the live part of this thread's stack;
            // unaligned, so a misaligned frame in a broken chain is read, not trusted.
            let ret = unsafe { ((cfa - 8) as *const u64).read_unaligned() };
            if let Some(stretch) = stretch {
                stretch.note(cfa - 8, ret);
            }
            if let Some(below) = saved_below {
                let at = cfa.wrapping_sub(below);
                if at.wrapping_sub(low) > span {
                    return Err(CaptureEnd::Broken);
                }
                // SAFETY: as above, checked.
                bp = unsafe { (at as *const u64).read_unaligned() };
                if let Some(stretch) = stretch {
                    stretch.note(at, bp);
                }
            }
            (ret, cfa)
        } else {
            let mut rule = rules::lookup(cache_table, lookup);
            if rule == rules::MISS {
                rule = rules::fill(cache_table, lookup, read_rule(built, lookup));
            }
            if rule == rules::END {
                return Err(CaptureEnd::Complete);
            }
            if rule == rules::DELEGATE {
                // framehop's reads are not noted: a stretch through it is not remembered.
                if let Some(stretch) = stretch {
                    stretch.read_count = usize::MAX;
                }
                let address = if first {
                    framehop::FrameAddress::from_instruction_pointer(pc)
                } else {
                    framehop::FrameAddress::from_return_address(pc).ok_or(CaptureEnd::Broken)?
                };
                let mut framehop_regs = UnwindRegsX86_64::new(pc, sp, bp);
                let mut read_stack = move |addr: u64| {
                    if readable(addr) {
                        // SAFETY: within [low, high): the live part of this thread's stack.
                        Ok(unsafe { (addr as *const u64).read() })
                    } else {
                        Err(())
                    }
                };
                // SAFETY: this thread's own cache; a field apart from `by_frame`.
                let cache = unsafe { &mut (*cache).framehop };
                return match built.framehop.unwind_frame(
                    address,
                    &mut framehop_regs,
                    cache,
                    &mut read_stack,
                ) {
                    Ok(Some(ret)) => {
                        *regs = Registers {
                            pc: ret,
                            sp: framehop_regs.sp(),
                            bp: framehop_regs.bp(),
                        };
                        Ok(())
                    }
                    Ok(None) => Err(CaptureEnd::Complete),
                    Err(_) => Err(CaptureEnd::Broken),
                };
            }
            let (from_frame_pointer, cfa_offset, saved_frame_pointer) = rules::unpack(rule);
            let cfa = if from_frame_pointer { bp } else { sp }.wrapping_add_signed(cfa_offset);
            if cfa <= sp || !readable(cfa - 8) {
                return Err(CaptureEnd::Broken);
            }
            // SAFETY: `cfa - 8` is in the readable part of this thread's stack (checked).
            let ret = unsafe { ((cfa - 8) as *const u64).read() };
            if let Some(stretch) = stretch {
                stretch.note(cfa - 8, ret);
            }
            if let Some(offset) = saved_frame_pointer {
                let at = cfa.wrapping_add_signed(offset);
                if !readable(at) {
                    return Err(CaptureEnd::Broken);
                }
                // SAFETY: as above, checked.
                bp = unsafe { (at as *const u64).read() };
                if let Some(stretch) = stretch {
                    stretch.note(at, bp);
                }
            }
            (ret, cfa)
        };
        *regs = Registers {
            pc: ret,
            sp: cfa,
            bp,
        };
        Ok(())
    }

    /// Whether the program's map marks `address` as in a function that keeps frame pointers
    /// (for tests).
    #[cfg(test)]
    pub(crate) fn program_keeps_frame_pointer(address: u64) -> bool {
        // SAFETY: published once, never freed.
        let built = unsafe { BUILT.load(Ordering::Acquire).as_ref() }.expect("built");
        let map = &built.frame_pointers[0];
        let chunk = address.wrapping_sub(map.start) / 16;
        // SAFETY: chunk < chunks: within the map.
        chunk < map.chunks
            && unsafe { *map.bits.add((chunk / 64) as usize) } >> (chunk % 64) & 1 != 0
    }

    /// framehop's own walk of the calling stack, for the test that the compact rules match it.
    ///
    /// # Safety
    /// As [`unwind`].
    #[cfg(test)]
    #[inline(never)]
    pub(crate) unsafe fn unwind_with_framehop(
        out: &mut Captured,
        cache: *mut RuleCache,
        (_, high): (usize, usize),
    ) {
        // SAFETY: published once, never freed.
        let built = unsafe { BUILT.load(Ordering::Acquire).as_ref() }.expect("built");
        let (pc, sp, bp) = registers();
        let high = high as u64;
        let mut read_stack = |addr: u64| {
            if addr >= sp && addr + 8 <= high && addr.is_multiple_of(8) {
                // SAFETY: within the live part of this thread's stack.
                Ok(unsafe { (addr as *const u64).read() })
            } else {
                Err(())
            }
        };
        // SAFETY: the caller gives this thread's own cache.
        let cache = unsafe { &mut (*cache).framehop };
        let mut frames = built.framehop.iter_frames(
            pc,
            UnwindRegsX86_64::new(pc, sp, bp),
            cache,
            &mut read_stack,
        );
        out.reset();
        out.end = loop {
            match frames.next() {
                Ok(Some(framehop::FrameAddress::ReturnAddress(ret))) => {
                    out.push(u64::from(ret) as usize)
                }
                Ok(Some(framehop::FrameAddress::InstructionPointer(_))) => {}
                Ok(None) => break CaptureEnd::Complete,
                Err(_) => break CaptureEnd::Broken,
            }
        };
    }

    /// The process-wide cache of compact unwind rules, shared by all threads without a lock.
    ///
    /// A rule says how to find the caller's frame from a frame: its canonical frame address (CFA)
    /// is the stack pointer or the frame pointer plus an offset; the return address is at CFA - 8;
    /// the caller's frame pointer is unchanged or saved at CFA + an offset. Almost every frame of
    /// compiled code fits that form. Rules are interned in a small table, so a cache entry is one
    /// word, `address << 16 | rule index`, written and read atomically: an entry can never pair
    /// one address with another's rule.
    pub(super) mod rules {
        use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

        /// The frame does not fit the compact form: framehop unwinds it.
        pub(super) const DELEGATE: u64 = 1;
        /// The return address is undefined: the stack ends here (`_start`, `clone`).
        pub(super) const END: u64 = 2;

        const KIND_STACK_POINTER: u64 = 4;
        const KIND_FRAME_POINTER: u64 = 5;
        const SAVED_FRAME_POINTER: u64 = 1 << 8;

        const RULE_SLOTS: usize = 4096;
        /// Interned rules: index 0 is no rule, 1 and 2 are DELEGATE and END.
        static RULES: [AtomicU64; RULE_SLOTS] = {
            let mut rules = [const { AtomicU64::new(0) }; RULE_SLOTS];
            rules[DELEGATE as usize] = AtomicU64::new(DELEGATE);
            rules[END as usize] = AtomicU64::new(END);
            rules
        };
        static RULE_COUNT: AtomicUsize = AtomicUsize::new(3);

        const CACHE_BITS: u32 = 16;
        const CACHE_SLOTS: usize = 1 << CACHE_BITS;
        /// `CACHE_SLOTS` entries, mapped when the fallback is chosen (512 KiB of address space,
        /// committed as it is touched).
        static CACHE: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

        /// Maps the cache, once.
        pub(super) fn map_cache(mapped: &AtomicU64) {
            if !CACHE.load(Ordering::Acquire).is_null() {
                return;
            }
            let bytes = CACHE_SLOTS * std::mem::size_of::<AtomicU64>();
            let table = crate::sys::map_zeroed_lazily(bytes).cast::<AtomicU64>();
            if !table.is_null() {
                mapped.fetch_add(bytes as u64, Ordering::Relaxed);
                CACHE.store(table, Ordering::Release);
            }
        }

        pub(super) fn pack(from_frame_pointer: bool, cfa_offset: i64, saved: Option<i64>) -> u64 {
            let Ok(cfa_offset) = i32::try_from(cfa_offset) else {
                return DELEGATE;
            };
            let Ok(saved_offset) = i16::try_from(saved.unwrap_or(0)) else {
                return DELEGATE;
            };
            let kind = if from_frame_pointer {
                KIND_FRAME_POINTER
            } else {
                KIND_STACK_POINTER
            };
            let flag = if saved.is_some() {
                SAVED_FRAME_POINTER
            } else {
                0
            };
            kind | flag | u64::from(saved_offset as u16) << 16 | u64::from(cfa_offset as u32) << 32
        }

        /// `(from_frame_pointer, cfa_offset, saved_frame_pointer_offset)` of a packed rule.
        #[inline(always)]
        pub(super) fn unpack(rule: u64) -> (bool, i64, Option<i64>) {
            let saved = if rule & SAVED_FRAME_POINTER != 0 {
                Some(i64::from((rule >> 16) as u16 as i16))
            } else {
                None
            };
            (
                rule & 0xff == KIND_FRAME_POINTER,
                i64::from((rule >> 32) as u32 as i32),
                saved,
            )
        }

        /// No rule cached for the address.
        pub(super) const MISS: u64 = 0;

        /// The cache (null until mapped), to pass to [`lookup`] and [`fill`].
        #[inline(always)]
        pub(super) fn table() -> *const AtomicU64 {
            CACHE.load(Ordering::Acquire)
        }

        #[inline(always)]
        fn slot(table: *const AtomicU64, address: u64) -> Option<&'static AtomicU64> {
            if address >> 48 != 0 {
                return None;
            }
            entry_of(table, address)
        }

        /// The cache entry `address` hashes to (whatever address it holds), or `None` without a
        /// cache.
        #[inline(always)]
        fn entry_of(table: *const AtomicU64, address: u64) -> Option<&'static AtomicU64> {
            if table.is_null() {
                return None;
            }
            let slot = (address.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - CACHE_BITS)) as usize;
            // SAFETY: slot < CACHE_SLOTS, within the mapping `table` (from `table()`), which is
            // never unmapped.
            Some(unsafe { &*table.add(slot) })
        }

        /// The cached rule of `address`, or [`MISS`].
        #[inline(always)]
        pub(super) fn lookup(table: *const AtomicU64, address: u64) -> u64 {
            let Some(entry) = slot(table, address) else {
                return MISS;
            };
            // Acquire: the interned rule was stored before the entry that names it.
            let word = entry.load(Ordering::Acquire);
            let payload = word & 0xffff;
            if word >> 16 != address || payload == 0 {
                return MISS;
            }
            if payload & INLINE != 0 {
                return expand(payload);
            }
            RULES[payload as usize].load(Ordering::Relaxed)
        }

        /// A cache entry's payload holds the common rules itself, sparing a dependent load per
        /// frame: `INLINE | from_frame_pointer << 14 | saved_slot << 10 | cfa_offset / 8`, where
        /// the caller's frame pointer is kept (slot 0) or saved `8 * slot` bytes below the CFA
        /// (slots 1 to 15: it is pushed with the other callee-saved registers, just below the
        /// return address), and the CFA is at most 8,184 bytes above the stack or frame pointer
        /// (the large frames of a recursive-descent parser included). Others are indexes into the
        /// rule table.
        const INLINE: u64 = 0x8000;
        const FROM_FRAME_POINTER: u64 = 1 << 14;
        const SAVED_SHIFT: u32 = 10;
        const CFA_UNITS: u64 = (1 << SAVED_SHIFT) - 1;

        /// The cache entry of `address` when it holds its rule inline (see [`decode_inline`]);
        /// `None` otherwise (not cached, a rule from the table, or no cache).
        #[inline(always)]
        pub(super) fn inline_entry(table: *const AtomicU64, address: u64) -> Option<u64> {
            let entry = entry_of(table, address)?;
            // Acquire, as in `lookup`. An address of more than 48 bits never matches: entries
            // hold 48.
            let word = entry.load(Ordering::Acquire);
            holds_inline(word, address).then_some(word)
        }

        /// Whether cache entry `word` holds an inline rule for `address`.
        #[inline(always)]
        pub(super) fn holds_inline(word: u64, address: u64) -> bool {
            word >> 16 == address && word & INLINE != 0
        }

        /// The rule of an entry for which [`holds_inline`] holds: whether the CFA is computed
        /// from the frame pointer (else the stack pointer), its offset, and where the caller's
        /// frame pointer is saved below the CFA (`None`: kept in its register).
        #[inline(always)]
        pub(super) fn decode_inline(word: u64) -> (bool, u64, Option<u64>) {
            let saved_slot = word >> SAVED_SHIFT & 0xf;
            let saved = (saved_slot != 0).then_some(saved_slot * 8);
            (
                word & FROM_FRAME_POINTER != 0,
                (word & CFA_UNITS) * 8,
                saved,
            )
        }

        /// The inline payload of `rule`, when it fits.
        fn compact(rule: u64) -> Option<u64> {
            let kind = rule & 0xff;
            if kind != KIND_STACK_POINTER && kind != KIND_FRAME_POINTER {
                return None;
            }
            let (from_frame_pointer, cfa_offset, saved) = unpack(rule);
            let saved_slot = match saved {
                None => 0,
                Some(offset) if offset % 8 == 0 && (-15 * 8..=-8).contains(&offset) => -offset / 8,
                Some(_) => return None,
            };
            let fits = cfa_offset % 8 == 0 && (0..=CFA_UNITS as i64 * 8).contains(&cfa_offset);
            fits.then_some(
                INLINE
                    | if from_frame_pointer {
                        FROM_FRAME_POINTER
                    } else {
                        0
                    }
                    | (saved_slot as u64) << SAVED_SHIFT
                    | (cfa_offset / 8) as u64,
            )
        }

        /// The packed rule of an inline payload.
        #[inline(always)]
        fn expand(payload: u64) -> u64 {
            let kind = if payload & FROM_FRAME_POINTER != 0 {
                KIND_FRAME_POINTER
            } else {
                KIND_STACK_POINTER
            };
            let saved_slot = payload >> SAVED_SHIFT & 0xf;
            let flag = if saved_slot != 0 {
                SAVED_FRAME_POINTER
            } else {
                0
            };
            let cfa_offset = (payload & CFA_UNITS) * 8;
            let saved_offset = -(saved_slot as i64 * 8);
            kind | flag | u64::from(saved_offset as i16 as u16) << 16 | cfa_offset << 32
        }

        /// Caches `rule` for `address`; returns it.
        #[cold]
        pub(super) fn fill(table: *const AtomicU64, address: u64, rule: u64) -> u64 {
            let payload = compact(rule).or_else(|| intern(rule).map(|index| index as u64));
            if let (Some(entry), Some(payload)) = (slot(table, address), payload) {
                entry.store(address << 16 | payload, Ordering::Release);
            }
            rule
        }

        /// Checks `expand(compact(rule)) == rule` over the rules that fit (for a test).
        #[cfg(test)]
        pub(crate) fn check_inline_round_trip() {
            let mut fitted = 0;
            for from_frame_pointer in [false, true] {
                for cfa_offset in (-16..8300).step_by(4) {
                    for saved in [
                        None,
                        Some(-16),
                        Some(-8),
                        Some(-120),
                        Some(-128),
                        Some(0),
                        Some(8),
                    ] {
                        let rule = pack(from_frame_pointer, cfa_offset, saved);
                        if let Some(payload) = compact(rule) {
                            assert_eq!(
                                expand(payload),
                                rule,
                                "{from_frame_pointer} {cfa_offset} {saved:?}"
                            );
                            fitted += 1;
                        }
                    }
                }
            }
            assert_eq!(
                fitted,
                2 * 1024 * 4,
                "every multiple of 8 up to 8,184, four saved offsets (none, 8 to 120 below)"
            );
        }

        /// The index of `rule` in the rule table, added if new; `None` when the table is full.
        #[cold]
        fn intern(rule: u64) -> Option<usize> {
            if rule == DELEGATE || rule == END {
                return Some(rule as usize);
            }
            let count = RULE_COUNT.load(Ordering::Acquire).min(RULE_SLOTS);
            if let Some(i) = (3..count).find(|&i| RULES[i].load(Ordering::Relaxed) == rule) {
                return Some(i);
            }
            // Racing threads may intern the same rule twice; both indexes are right.
            let index = RULE_COUNT.fetch_add(1, Ordering::AcqRel);
            if index >= RULE_SLOTS {
                return None;
            }
            RULES[index].store(rule, Ordering::Release);
            Some(index)
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::imp::{build, new_cache, program_keeps_frame_pointer, unwind, unwind_with_framehop};
    use crate::capture::{CaptureEnd, Captured, MAX_DEPTH};

    /// Both walks from one frame: the first return addresses (into this function) differ, the
    /// rest must not.
    #[inline(never)]
    fn both_walks(stack: (usize, usize)) -> (Captured, Captured) {
        both_walks_with(new_cache(), stack)
    }

    /// Both walks, ours with the given cache.
    #[inline(never)]
    fn both_walks_with(
        cache: *mut super::RuleCache,
        stack: (usize, usize),
    ) -> (Captured, Captured) {
        let (mut ours, mut theirs) = (Captured::empty(), Captured::empty());
        // SAFETY: a fresh cache for this thread; `stack` bounds this thread's stack.
        unsafe {
            assert!(unwind(&mut ours, cache, stack, MAX_DEPTH));
            unwind_with_framehop(&mut theirs, cache, stack);
        }
        (ours, theirs)
    }

    #[inline(never)]
    fn nested(depth: u32, stack: (usize, usize)) -> (Captured, Captured) {
        if depth == 0 {
            return both_walks(stack);
        }
        std::hint::black_box(nested(depth - 1, stack))
    }

    /// Every rule that fits a cache entry's payload comes back unchanged.
    #[test]
    fn inline_payloads_round_trip() {
        super::imp::rules::check_inline_round_trip();
    }

    /// The compact rules walk the stack exactly as framehop does, frame for frame, to the same end,
    /// from a cold cache and from a warm one.
    #[test]
    fn compact_rules_walk_like_framehop() {
        build(&std::sync::atomic::AtomicU64::new(0));
        let stack = crate::sys::stack_bounds().expect("stack bounds");
        for round in 0..2 {
            let (ours, theirs) = nested(12, stack);
            assert!(ours.depth() > 12, "round {round}: {} frames", ours.depth());
            assert_eq!(ours.stack()[1..], theirs.stack()[1..], "round {round}");
            assert_eq!(ours.end, theirs.end, "round {round}");
            assert_eq!(ours.end, CaptureEnd::Complete, "round {round}");
        }
    }

    #[inline(never)]
    fn nested_with(
        cache: *mut super::RuleCache,
        depth: u32,
        stack: (usize, usize),
    ) -> (Captured, Captured) {
        if depth == 0 {
            return both_walks_with(cache, stack);
        }
        std::hint::black_box(nested_with(cache, depth - 1, stack))
    }

    /// Walks of different depths with one cache, each after the other, end as framehop's: the
    /// thread's last stretch, remembered by the first walk, is taken by the others only as it is.
    #[test]
    fn walks_that_share_a_cache_walk_like_framehop() {
        build(&std::sync::atomic::AtomicU64::new(0));
        let stack = crate::sys::stack_bounds().expect("stack bounds");
        let cache = new_cache();
        for depth in [4, 9, 4, 1, 9] {
            let (ours, theirs) = nested_with(cache, depth, stack);
            assert!(
                ours.depth() > depth as usize,
                "{depth}: {} frames",
                ours.depth()
            );
            assert_eq!(ours.stack()[1..], theirs.stack()[1..], "{depth}");
            assert_eq!(ours.end, theirs.end, "{depth}");
        }
    }

    /// The test binary is built with frame pointers (.cargo/config.toml): its functions are found
    /// to keep them, and their frames are walked without a rule.
    #[test]
    fn the_programs_functions_that_keep_frame_pointers_are_found() {
        build(&std::sync::atomic::AtomicU64::new(0));
        let stack = crate::sys::stack_bounds().expect("stack bounds");
        let (ours, _) = nested(3, stack);
        // Frames 1 to 3 return into `nested`, after its prologue.
        for &ret in &ours.stack()[1..4] {
            assert!(program_keeps_frame_pointer(ret as u64 - 1), "{ret:#x}");
        }
        // Not the C library's code.
        assert!(!program_keeps_frame_pointer(
            libc::qsort as *const () as u64 + 32
        ));
    }

    std::thread_local! {
        static IN_COMPARATOR: std::cell::RefCell<Option<(Box<Captured>, Box<Captured>)>> =
            const { std::cell::RefCell::new(None) };
    }

    /// A comparator that the C library's `qsort` calls: both walks from there, once.
    extern "C" fn compare_and_walk(a: *const libc::c_void, b: *const libc::c_void) -> libc::c_int {
        IN_COMPARATOR.with(|walks| {
            let mut walks = walks.borrow_mut();
            if walks.is_none() {
                let stack = crate::sys::stack_bounds().expect("stack bounds");
                let (ours, theirs) = both_walks(stack);
                *walks = Some((Box::new(ours), Box::new(theirs)));
            }
        });
        // SAFETY: qsort passes pointers to two of the array's u32 elements.
        let (a, b) = unsafe { (*a.cast::<u32>(), *b.cast::<u32>()) };
        a.cmp(&b) as libc::c_int
    }

    /// A stack that runs through the C library (built without frame pointers, its code using rbp
    /// as an ordinary register) and back into the program is unwound exactly: the C library's
    /// frames by their rules, the program's by its frame pointers.
    #[test]
    fn a_stack_through_the_c_library_walks_like_framehop() {
        build(&std::sync::atomic::AtomicU64::new(0));
        let mut values: Vec<u32> = (0..64).rev().collect();
        // SAFETY: `values` holds 64 u32s; the comparator reads two of them.
        unsafe {
            libc::qsort(
                values.as_mut_ptr().cast(),
                values.len(),
                4,
                Some(compare_and_walk),
            );
        }
        assert!(values.is_sorted());
        let (ours, theirs) = IN_COMPARATOR
            .with(|w| w.borrow_mut().take())
            .expect("walked");
        assert_eq!(ours.stack()[1..], theirs.stack()[1..]);
        assert_eq!(ours.end, theirs.end);
        // The walk went through the C library and came back to this test's frames.
        let here = a_stack_through_the_c_library_walks_like_framehop as fn() as usize;
        let in_program = |ret: usize| program_keeps_frame_pointer(ret as u64 - 1);
        let first_outside = ours.stack()[2..].iter().position(|&r| !in_program(r));
        let back = ours
            .stack()
            .iter()
            .position(|&r| r > here && r < here + 4096);
        assert!(
            matches!((first_outside, back), (Some(o), Some(b)) if o + 2 < b),
            "{:x?}",
            ours.stack()
        );
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use imp::{RuleCache, build, new_cache, unwind};
