//! Task labels: memory per request, task or subsystem in async code, across worker threads.
//!
//! While a [`labeled`] future is polled, on whichever thread polls it, every allocation is charged
//! to its label as well as to its stack and thread; [`with_label`] does the same for synchronous
//! code. A block keeps its label when another task or thread frees it. Labels nest: the innermost
//! one wins. Snapshots group by label (`GroupBy::Label`, `tracealloc top --by label`).
//!
//! [`labeled`] has an example of both.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::process;
use crate::state::record::Label;

/// Runs `f` with its allocations charged to `label`, and returns its value.
///
/// ```no_run
/// let index = tracealloc::with_label("index", || vec![0u64; 512]);
/// let snapshot = tracealloc::snapshot();
/// let top = &snapshot.top(1, tracealloc::GroupBy::Label)[0];
/// assert_eq!((top.key.as_str(), top.live_bytes), ("index", 4096));
/// # drop(index);
/// ```
///
/// (Compile-only here: the example on [`labeled`] runs it, with the profiler as the global
/// allocator.)
pub fn with_label<R>(label: &'static str, f: impl FnOnce() -> R) -> R {
    // Restored when dropped, also when `f` panics.
    let _label = process::enter_label(Label::of(label));
    f()
}

/// `fut`, with the allocations of each of its polls charged to `label`: give it to any
/// executor (`tokio::spawn(tracealloc::labeled("ingest", ingest(batch)))`). With
/// [`with_label`], for synchronous code:
///
/// ```
/// #[global_allocator]
/// static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();
///
/// use std::future::Future;
/// use std::task::{Context, Poll, Waker};
/// use tracealloc::GroupBy;
///
/// async fn ingest(batch: usize) -> Vec<u8> {
///     vec![0u8; batch]
/// }
///
/// fn main() {
///     // Synchronous code: what the closure allocates is charged to "parse" as well.
///     let parsed = tracealloc::with_label("parse", || vec![1u8; 3000]);
///
///     // A task: `tokio::spawn(tracealloc::labeled("ingest", ingest(5000)))` charges each of its
///     // polls, on whichever worker thread, to "ingest". Polled here by hand, once:
///     let mut task = std::pin::pin!(tracealloc::labeled("ingest", ingest(5000)));
///     let Poll::Ready(ingested) = task.as_mut().poll(&mut Context::from_waker(Waker::noop()))
///     else {
///         unreachable!("ready at once")
///     };
///
///     let by_label = tracealloc::snapshot().statistics(GroupBy::Label);
///     let live = |label: &str| by_label.iter().find(|s| s.key == label).map(|s| s.live_bytes);
///     assert_eq!(live("parse"), Some(3000));
///     assert_eq!(live("ingest"), Some(5000));
///     drop((parsed, ingested));
/// }
/// ```
pub fn labeled<F: Future>(label: &'static str, fut: F) -> Labeled<F> {
    Labeled { label, inner: fut }
}

/// A future whose polls allocate under a label; see [`labeled`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Labeled<F> {
    label: &'static str,
    inner: F,
}

impl<F: Future> Future for Labeled<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let label = self.label;
        // SAFETY: `inner` is pinned structurally: `Labeled` never moves it out, has no `Drop` of
        // its own and is `Unpin` only when `F` is (the default auto trait), so a pinned
        // `Labeled` keeps `inner` in place until it is dropped.
        let inner = unsafe { self.map_unchecked_mut(|labeled| &mut labeled.inner) };
        let _label = process::enter_label(Label::of(label));
        inner.poll(cx)
    }
}

/// A `tracing` layer (feature `tracing`) that labels allocations by span: while a span is entered on
/// a thread, that thread's allocations are charged to the span's name, the innermost span winning.
/// Install it as a layer of a `tracing-subscriber` registry, beside your other layers:
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// tracing_subscriber::registry().with(tracealloc::LabelLayer).init();
/// assert!(tracing_core::dispatcher::has_been_set());
///
/// // From here on, in a program whose global allocator is the profiler,
/// //     let _span = tracing::info_span!("ingest").entered();
/// // charges this thread's allocations to "ingest" until the span is exited
/// // (`GroupBy::Label`, `tracealloc top --by label`).
/// ```
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct LabelLayer;

#[cfg(feature = "tracing")]
mod layer {
    use std::cell::{Cell, RefCell};

    use tracing_core::Subscriber;
    use tracing_core::span::Id;
    use tracing_subscriber::layer::{Context, Layer};
    use tracing_subscriber::registry::LookupSpan;

    use super::LabelLayer;
    use crate::process;
    use crate::state::record::Label;

    /// Spans entered deeper than this on one thread keep the label of the one at this depth.
    const DEPTH: usize = 32;

    thread_local! {
        // Fixed-size, const-initialized: entering a span allocates nothing.
        static PREVIOUS: RefCell<[Label; DEPTH]> = const { RefCell::new([Label::NONE; DEPTH]) };
        static ENTERED: Cell<usize> = const { Cell::new(0) };
    }

    impl<S> Layer<S> for LabelLayer
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
            let depth = ENTERED.with(|entered| entered.replace(entered.get() + 1));
            if depth >= DEPTH {
                return;
            }
            let label = ctx
                .metadata(id)
                .map_or(Label::NONE, |m| Label::of(m.name()));
            // Not restored when this returns: `on_exit` restores it (spans enter and exit on the
            // same thread, innermost first).
            let guard = std::mem::ManuallyDrop::new(process::enter_label(label));
            PREVIOUS.with(|stack| stack.borrow_mut()[depth] = guard.previous());
        }

        fn on_exit(&self, _id: &Id, _ctx: Context<'_, S>) {
            let depth = ENTERED.with(|entered| {
                let depth = entered.get().saturating_sub(1);
                entered.set(depth);
                depth
            });
            if depth < DEPTH {
                let previous = PREVIOUS.with(|stack| stack.borrow()[depth]);
                // Sets the label back and keeps it so (the guard's own restore would undo it).
                std::mem::forget(process::enter_label(previous));
            }
        }
    }
}
