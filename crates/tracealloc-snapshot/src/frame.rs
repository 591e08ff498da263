//! Which frames are the Rust runtime's or the profiler's own, and how a frame is named in keys.

use crate::model::{Frame, Snapshot, Stack};

/// Path prefixes rustc gives the standard library's sources (and the crates vendored into it) in
/// the debug info of its precompiled `std`, `core` and `alloc`.
const RUNTIME_PATH_PREFIXES: &[&str] = &["/rustc/", "/rust/deps/"];
const RUNTIME_CRATES: &[&str] = &["std", "core", "alloc", "hashbrown"];
const PROFILER_CRATES: &[&str] = &["tracealloc", "tracealloc_snapshot", "backtrace"];
/// Where every thread's stack starts: the C library's process and thread entry points.
const ENTRY_POINTS: &[&str] = &[
    "__libc_start_call_main",
    "__libc_start_main",
    "_start",
    "start_thread",
    "clone",
    "clone3",
    "__clone",
    "__clone3",
];
/// Allocator shims rustc generates around the `#[global_allocator]`.
const ALLOCATOR_SHIM_PREFIXES: &[&str] = &["__rust_", "__rustc::", "__rdl_", "__rg_", "_Unwind_"];

/// The C allocation functions, when tracealloc's C layer defines them (feature `c-allocations`,
/// `tracealloc run`): the entry to the allocator, like `__rust_alloc`.
const C_ALLOCATOR_ENTRIES: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "free",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
];

/// The frame std puts between its start-up (`lang_start`, thread-start glue, `catch_unwind`) and
/// the program's `main` or a thread's closure.
pub(crate) const SHORT_BACKTRACE_MARKER: &str = "__rust_begin_short_backtrace";

/// The crate a demangled path starts with: `alloc` for `<alloc::vec::Vec<T> as Clone>::clone` and
/// for `alloc::raw_vec::finish_grow`.
fn leading_crate(function: &str) -> &str {
    let path = function.trim_start_matches('<').trim_start_matches('&');
    let end = path.find("::").unwrap_or(path.len());
    &path[..end]
}

/// The crate a frame's code belongs to: its path's first segment, or for a trait method called on
/// a bare type parameter, a slice or a tuple (`<F as core::ops::FnOnce<A>>::call_once`), the
/// trait's crate.
pub(crate) fn frame_crate(function: &str) -> &str {
    let lead = leading_crate(function);
    let lead = match lead.rfind(" as ") {
        Some(at) => &lead[at + " as ".len()..],
        None => lead,
    };
    lead.trim_start_matches("mut ").trim_start_matches("dyn ")
}

impl Frame {
    /// A frame of the Rust standard library (`std`, `core`, `alloc`, and what `std` vendors), of
    /// the C library's entry points and rustc's `main` shim, or a folded run of such frames.
    ///
    /// ```
    /// use tracealloc_snapshot::Frame;
    ///
    /// let push = Frame::new("alloc::vec::Vec<T,A>::push")
    ///     .at("/rustc/0123abcd/library/alloc/src/vec/mod.rs", Some(2417), None);
    /// assert!(push.is_runtime());
    /// assert!(Frame::new("std::rt::lang_start").is_runtime()); // no file: by its crate
    /// assert!(!Frame::new("app::main").at("src/main.rs", Some(5), None).is_runtime());
    /// ```
    pub fn is_runtime(&self) -> bool {
        if self.is_folded()
            || self.is_entry_point()
            || (self.function == "main" && self.file.is_none())
        {
            return true;
        }
        match &self.file {
            Some(file) => RUNTIME_PATH_PREFIXES.iter().any(|p| file.starts_with(p)),
            None => RUNTIME_CRATES.contains(&leading_crate(&self.function)),
        }
    }

    /// A frame standing for a folded run of runtime frames ([`Snapshot::fold_frames`]).
    ///
    /// ```
    /// use tracealloc_snapshot::Frame;
    ///
    /// let run = Frame::new("[folded: tokio, std]");
    /// assert!(run.is_folded() && run.is_runtime());
    /// assert!(!Frame::new("tokio::spawn").is_folded());
    /// ```
    pub fn is_folded(&self) -> bool {
        self.file.is_none() && self.function.starts_with(crate::FOLDED_FRAME_PREFIX)
    }

    /// A process or thread entry point of the C library, where stacks start.
    ///
    /// ```
    /// use tracealloc_snapshot::Frame;
    ///
    /// assert!(Frame::new("__libc_start_main").is_entry_point());
    /// assert!(Frame::new("start_thread").is_entry_point());
    /// assert!(!Frame::new("app::main").is_entry_point());
    /// ```
    pub fn is_entry_point(&self) -> bool {
        self.function.starts_with("__libc_start") || ENTRY_POINTS.contains(&self.function.as_str())
    }

    /// A frame of the profiler itself or of the allocator shims around it.
    ///
    /// ```
    /// use tracealloc_snapshot::Frame;
    ///
    /// let alloc = "<tracealloc::Profiler<A> as core::alloc::global::GlobalAlloc>::alloc";
    /// assert!(Frame::new(alloc).is_profiler());
    /// assert!(Frame::new("__rustc::__rust_alloc").is_profiler());
    /// assert!(!Frame::new("alloc::alloc::alloc").is_profiler()); // std's: a runtime frame
    /// ```
    pub fn is_profiler(&self) -> bool {
        PROFILER_CRATES.contains(&leading_crate(&self.function))
            || ALLOCATOR_SHIM_PREFIXES
                .iter()
                .any(|p| self.function.starts_with(p))
            || C_ALLOCATOR_ENTRIES.contains(&self.function.as_str())
    }

    /// `file:line`, `file`, or `??` when the debug info has no location.
    ///
    /// ```
    /// use tracealloc_snapshot::Frame;
    ///
    /// let parse = Frame::new("app::parse");
    /// assert_eq!(parse.clone().at("src/parse.rs", Some(30), None).location(), "src/parse.rs:30");
    /// assert_eq!(parse.clone().at("src/parse.rs", None, None).location(), "src/parse.rs");
    /// assert_eq!(parse.location(), "??");
    /// ```
    pub fn location(&self) -> String {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => format!("{file}:{line}"),
            (Some(file), None) => file.clone(),
            _ => "??".to_owned(),
        }
    }

    /// `function (file:line)`, how a frame is shown in stacks and flamegraphs.
    ///
    /// ```
    /// use tracealloc_snapshot::Frame;
    ///
    /// let frame = Frame::new("app::parse").at("src/parse.rs", Some(30), Some(9));
    /// assert_eq!(frame.label(), "app::parse (src/parse.rs:30)");
    /// assert_eq!(Frame::new("app::parse").label(), "app::parse");
    /// ```
    pub fn label(&self) -> String {
        if self.file.is_some() {
            format!("{} ({})", self.function, self.location())
        } else {
            self.function.clone()
        }
    }
}

impl Snapshot {
    /// The frame an allocation is charged to: the first one outside the Rust standard library and the
    /// profiler, so `Vec::push` growth is charged to the line that pushed. A stack made only of
    /// runtime frames (allocations of the runtime itself) is charged to its first frame outside the
    /// allocation machinery of `alloc` and `core`, such as the `std` function that allocated.
    ///
    /// ```
    /// use tracealloc_snapshot::{Frame, Snapshot, Stack};
    ///
    /// let mut snapshot = Snapshot::empty();
    /// snapshot.frames = vec![
    ///     Frame::new("alloc::vec::Vec<T,A>::push")
    ///         .at("/rustc/0123abcd/library/alloc/src/vec/mod.rs", Some(2417), None),
    ///     Frame::new("app::cache::insert").at("src/cache.rs", Some(12), None),
    ///     Frame::new("app::main").at("src/main.rs", Some(5), None),
    /// ];
    /// let stack = Stack::new(vec![0, 1, 2]); // innermost first
    /// let charged = snapshot.user_frame(&stack).unwrap();
    /// assert_eq!(charged.location(), "src/cache.rs:12"); // the line that pushed
    /// ```
    pub fn user_frame(&self, stack: &Stack) -> Option<&Frame> {
        let frames = || {
            stack
                .frames
                .iter()
                .map(|&f| &self.frames[f as usize])
                .filter(|f| !f.is_profiler())
        };
        frames()
            .find(|f| !f.is_runtime())
            .or_else(|| frames().find(|f| !matches!(leading_crate(&f.function), "alloc" | "core")))
            .or_else(|| frames().next())
    }
}

/// A function's name with closures spelled as the symbol table spells them (`{{closure}}`), also
/// where the debug info numbers them (`{closure#0}`): the runtime's in-process symbolizer and the
/// CLI's use it, so that one closure is one frame, whichever named it.
///
/// ```
/// use tracealloc_snapshot::one_closure_spelling;
///
/// assert_eq!(
///     one_closure_spelling("std::rt::lang_start_internal::{closure#0}".into()),
///     "std::rt::lang_start_internal::{{closure}}"
/// );
/// assert_eq!(
///     one_closure_spelling("a::{closure#12}::{closure#0}::b".into()),
///     "a::{{closure}}::{{closure}}::b"
/// );
/// assert_eq!(one_closure_spelling("a::{{closure}}".into()), "a::{{closure}}");
/// assert_eq!(one_closure_spelling("odd::{closure#x}".into()), "odd::{closure#x}");
/// ```
pub fn one_closure_spelling(name: String) -> String {
    if !name.contains("{closure#") {
        return name;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name.as_str();
    while let Some(at) = rest.find("{closure#") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "{closure#".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with('}') {
            out.push_str("{{closure}}");
            rest = &after[digits + 1..];
        } else {
            out.push_str("{closure#");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: Option<&str>) -> Frame {
        Frame {
            function: function.into(),
            file: file.map(Into::into),
            line: Some(7),
            column: None,
            inlined: false,
        }
    }

    #[test]
    fn classifies_runtime_and_profiler_frames() {
        let grow = frame(
            "alloc::raw_vec::RawVec<T,A>::grow_one",
            Some("/rustc/abc/library/alloc/src/raw_vec.rs"),
        );
        assert!(grow.is_runtime() && !grow.is_profiler());
        assert!(frame("<alloc::vec::Vec<T> as core::clone::Clone>::clone", None).is_runtime());
        assert!(
            frame(
                "hashbrown::raw::RawTable<T>::reserve",
                Some("/rust/deps/hashbrown-0.15.2/src/raw.rs")
            )
            .is_runtime()
        );
        let user = frame(
            "<app::Foo as core::clone::Clone>::clone",
            Some("src/main.rs"),
        );
        assert!(!user.is_runtime() && !user.is_profiler());
        assert!(
            frame(
                "<tracealloc::Profiler<A> as core::alloc::global::GlobalAlloc>::alloc",
                None
            )
            .is_profiler()
        );
        assert!(frame("__rustc::__rust_alloc", None).is_profiler());
        assert!(
            !frame(
                "tracealloc_examples::demo::leak",
                Some("examples/src/bin/demo.rs")
            )
            .is_profiler()
        );
        assert_eq!(
            user.label(),
            "<app::Foo as core::clone::Clone>::clone (src/main.rs:7)"
        );
    }
}
