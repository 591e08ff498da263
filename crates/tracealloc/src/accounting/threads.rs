//! The registry's list of thread states and the pool of exited threads' states: a new thread
//! adopts an exited one's state when their names match (exactly, else in all but a trailing
//! number or identifier), or any when the pool is half full, and is given a new state otherwise.
//! So the states number at most the threads alive at once plus the pool's slots, whatever the
//! threads are named. States are carved, published once and never freed, so readers walk the list without a
//! lock. Cold code: it runs once per thread.
//!
//! ```text
//!  Registry.threads ──> ThreadState ──next──> ThreadState ──> ...   (push-only: new states first)
//!  Registry.retired: Pool (state::pool)      exited threads' states, each taken by one new thread
//! ```

use std::sync::atomic::Ordering;

use crate::accounting::registry::Registry;
use crate::state::thread::{Kin, ThreadState, name_family};

impl Registry {
    /// The state for the calling thread, which has none yet: an exited thread's state from the
    /// pool when one exited with the name this thread has now, else with a name of the same
    /// family (`conn-17` for `conn-18`, `req-7f3a` for `req-9e01`: see [`name_family`]), else any
    /// when the pool is half full (threads named in ways no family catches would otherwise each
    /// keep a state), else a new one, published.
    #[cold]
    pub(crate) fn register_thread(&self) -> Option<&ThreadState> {
        let name = crate::sys::current_thread_name();
        if let Some(state) =
            self.adopt_retired(|candidate| candidate.exited_with_name(&name), Kin::SameName)
        {
            return Some(state);
        }
        if let Some(family) = name_family(&name)
            && let Some(state) =
                self.adopt_retired(|candidate| candidate.exited_in_family(family), Kin::Family)
        {
            return Some(state);
        }
        // Half full, not full: exiting threads then still find room in the pool, so their states
        // are not left out of it (each would stay unused).
        if self.retired.at_least_half_full()
            && let Some(state) = self.adopt_retired(|_| true, Kin::Unrelated)
        {
            return Some(state);
        }
        self.new_thread_state()
    }

    /// Takes the first retired state that `fits` out of the pool and adopts it for the calling
    /// thread (`kin`: see [`ThreadState::adopt`]).
    fn adopt_retired(&self, fits: impl Fn(&ThreadState) -> bool, kin: Kin) -> Option<&ThreadState> {
        let state = self.retired.take(fits)?;
        // SAFETY: (1) a retired state's owner has exited; (2) the pool gave it to this thread
        // alone.
        unsafe { state.adopt(kin) };
        Some(state)
    }

    /// Puts the state of a thread that is exiting in the pool, for the next thread that starts with
    /// the same name (when the pool is full, the state stays unused). Called by that thread, after
    /// it recorded its name and stopped using its state.
    pub(crate) fn retire(&self, state: &ThreadState) {
        // SAFETY: thread states are carved and never freed.
        unsafe { self.retired.put(state) };
    }

    /// Creates and publishes a new thread state (to be used by the calling thread only).
    #[cold]
    fn new_thread_state(&self) -> Option<&ThreadState> {
        let index = self.thread_count.fetch_add(1, Ordering::Relaxed);
        let mut head = self.threads.load(Ordering::Acquire);
        let state = ThreadState::create(index, head, &self.mapped_bytes);
        if state.is_null() {
            self.threads_without_state.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        loop {
            // SAFETY: `state` is ours until published; its `next` is fixed up before each attempt.
            unsafe { std::ptr::addr_of_mut!((*state).next).write(head) };
            match self.threads.compare_exchange_weak(
                head,
                state,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(current) => head = current,
            }
        }
        // SAFETY: published states are never freed.
        Some(unsafe { &*state })
    }

    /// Every thread state, newest first.
    pub(crate) fn threads(&self) -> impl Iterator<Item = &ThreadState> {
        let mut next = self.threads.load(Ordering::Acquire) as *const ThreadState;
        std::iter::from_fn(move || {
            // SAFETY: published states are never freed; `next` was written before publication.
            let state = unsafe { next.as_ref()? };
            next = state.next;
            Some(state)
        })
    }
}
