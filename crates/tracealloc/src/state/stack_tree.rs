//! Stored stacks: each thread keeps its stacks' frames as a tree of shared outer frames.
//!
//! The stacks of one thread share most of their outer frames (its entry, `main`, the loop that
//! calls everything else), so a stack is stored as its innermost node, which links to its caller's
//! node, and so on up to the outermost frame. A new stack shares the outer frames it has in common
//! with the stack stored just before it; the rest is new nodes. On syn (111,671 stacks of 31 frames
//! on average) that is 373,057 nodes instead of 3,463,043 frames: the best any sharing could do is
//! 358,435.
//!
//! ```text
//!  record A ──> [f0] ──┐
//!                      ├──> [g] ──> [main] ──> [entry] ──> null
//!  record B ──> [f1] ──┘
//! ```
//!
//! Lookups never read the frames (stacks are found by their 128-bit identity, see
//! [`crate::capture::StackHash`]): only storing a new stack and snapshots walk the links.

use std::sync::atomic::AtomicU64;

use crate::capture::MAX_DEPTH;
use crate::state::carve::carve;

/// One frame of a stored stack. Written once by the owner before any record that reaches it is
/// published; never written again, never freed.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct FrameNode {
    ret: usize,
    /// The calling frame's node; null at the outermost frame.
    caller: *const FrameNode,
}

const NODE_BYTES: usize = std::mem::size_of::<FrameNode>();
/// How a trailer (see [`StackTree::store`]) is aligned.
pub(crate) const TRAILER_ALIGN: usize = std::mem::align_of::<FrameNode>();

const INITIAL_BLOCK_NODES: usize = 64;
const MAX_BLOCK_NODES: usize = 32 * 1024;

/// A stored stack: its innermost node and how many frames it has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredStack {
    /// Null for an empty stack without a trailer; a stand-in node (not one of the frames) for an
    /// empty stack with one.
    pub(crate) innermost: *const FrameNode,
    pub(crate) depth: u32,
}

impl StoredStack {
    pub(crate) const EMPTY: StoredStack = StoredStack {
        innermost: std::ptr::null(),
        depth: 0,
    };

    /// The return addresses, innermost first.
    pub(crate) fn frames(self) -> impl Iterator<Item = usize> {
        self.nodes().map(|(_, ret)| ret)
    }

    /// The stack's nodes, innermost first: each with its [`NodeId`] and return address.
    pub(crate) fn nodes(self) -> Nodes {
        Nodes {
            node: self.innermost,
            left: self.depth,
        }
    }

    /// The trailer stored after the stack's innermost node: zeroed when stored, aligned to
    /// [`TRAILER_ALIGN`], never freed.
    ///
    /// # Safety
    /// The stack was stored by [`StackTree::store`] with a trailer.
    pub(crate) unsafe fn trailer(self) -> *const u8 {
        // SAFETY: `store` with a trailer puts it right after this node, in the same block.
        unsafe { self.innermost.add(1).cast() }
    }
}

/// A stored node's identity: the stacks that reach the same node share it and all its callers.
pub(crate) type NodeId = usize;

/// The nodes of a stored stack, innermost first.
pub(crate) struct Nodes {
    node: *const FrameNode,
    left: u32,
}

impl Iterator for Nodes {
    type Item = (NodeId, usize);

    fn next(&mut self) -> Option<(NodeId, usize)> {
        if self.left == 0 || self.node.is_null() {
            return None;
        }
        // SAFETY: a stored stack's nodes were written before the record holding it was published
        // (the reader acquired that publication) and are never written again or freed; `left`
        // stops the walk at the stack's own depth.
        let node = unsafe { &*self.node };
        let id = self.node as NodeId;
        self.left -= 1;
        self.node = node.caller;
        Some((id, node.ret))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

/// A thread's node storage: the block it fills and the stack it stored last. Owner thread only.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct StackTree {
    cursor: *mut FrameNode,
    nodes_left: usize,
    next_block_nodes: usize,
    last: StoredStack,
}

impl StackTree {
    pub(crate) const fn new() -> StackTree {
        StackTree {
            cursor: std::ptr::null_mut(),
            nodes_left: 0,
            next_block_nodes: INITIAL_BLOCK_NODES,
            last: StoredStack::EMPTY,
        }
    }

    /// Stores `stack` (innermost first), sharing the outer frames it has in common with the stack
    /// stored last. A `trailer_bytes` other than 0 gives it a node of its own innermost, followed by
    /// that many zeroed bytes (see [`StoredStack::trailer`]). `None` when memory for the new nodes
    /// cannot be mapped (nothing changes). `mapped` counts the bytes mapped.
    pub(crate) fn store(
        &mut self,
        stack: &[usize],
        trailer_bytes: usize,
        mapped: &AtomicU64,
    ) -> Option<StoredStack> {
        let trailer_nodes = trailer_bytes.div_ceil(NODE_BYTES);
        let with_trailer = trailer_nodes != 0;
        let depth = stack.len().min(MAX_DEPTH);
        let stack = &stack[..depth];
        // The last stack's nodes, outermost first.
        let mut path = [std::ptr::null::<FrameNode>(); MAX_DEPTH];
        let last_depth = self.last.depth as usize;
        let mut node = self.last.innermost;
        for slot in path[..last_depth].iter_mut().rev() {
            *slot = node;
            // SAFETY: the last stored stack has `last_depth` linked nodes from its innermost.
            node = unsafe { (*node).caller };
        }
        let mut shared = stack
            .iter()
            .rev()
            .zip(&path[..last_depth])
            // SAFETY: as above: nodes of the last stored stack.
            .take_while(|&(&ret, &node)| unsafe { (*node).ret } == ret)
            .count();
        if with_trailer {
            shared = shared.min(depth.saturating_sub(1));
        }
        let fresh = depth - shared + trailer_nodes;
        let stand_in = with_trailer && depth == 0;
        let needed = fresh + usize::from(stand_in);
        if needed > self.nodes_left {
            self.new_block(needed, mapped)?;
        }
        let mut caller = if shared == 0 {
            std::ptr::null()
        } else {
            path[shared - 1]
        };
        for &ret in stack[..depth - shared].iter().rev() {
            let node = self.cursor;
            // SAFETY: `needed <= nodes_left` nodes of zeroed memory are free at `cursor`; this one
            // is written before any record reaching it is published.
            unsafe {
                node.write(FrameNode { ret, caller });
                self.cursor = node.add(1);
            }
            caller = node;
        }
        if stand_in {
            caller = self.cursor;
            // SAFETY: within the `needed` free nodes; the zeroed node stays as it is.
            self.cursor = unsafe { self.cursor.add(1) };
        }
        // The trailer stays zeroed.
        // SAFETY: within the `needed` free nodes.
        self.cursor = unsafe { self.cursor.add(trailer_nodes) };
        self.nodes_left -= needed;
        let stored = StoredStack {
            innermost: caller,
            depth: depth as u32,
        };
        self.last = stored;
        Some(stored)
    }

    #[cold]
    fn new_block(&mut self, needed: usize, mapped: &AtomicU64) -> Option<()> {
        let nodes = self.next_block_nodes.max(needed);
        let block = carve(nodes * NODE_BYTES, mapped).cast::<FrameNode>();
        if block.is_null() {
            return None;
        }
        self.cursor = block;
        self.nodes_left = nodes;
        self.next_block_nodes = (nodes * 2).min(MAX_BLOCK_NODES);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(tree: &mut StackTree, stack: &[usize], with_trailer: bool) -> StoredStack {
        let trailer_bytes = if with_trailer { 40 } else { 0 };
        tree.store(stack, trailer_bytes, &AtomicU64::new(0))
            .expect("memory")
    }

    /// Every stored stack reads back as it was, whatever it shares with the others, and a stack
    /// shares the outer frames it has in common with the one stored before it.
    #[test]
    fn stacks_read_back_whole_and_share_outer_frames() {
        let mut tree = StackTree::new();
        let stacks: [&[usize]; 7] = [
            &[3, 2, 1],
            &[4, 2, 1],
            &[2, 1],
            &[5, 4, 2, 1],
            &[],
            &[9, 8],
            &[4, 2, 1],
        ];
        let kept: Vec<StoredStack> = stacks.iter().map(|s| stored(&mut tree, s, false)).collect();
        for (stack, kept) in stacks.iter().zip(&kept) {
            assert_eq!(kept.frames().collect::<Vec<_>>(), *stack);
        }
        // [4, 2, 1] after [3, 2, 1]: the node of 2 is shared; [2, 1] is that node itself.
        // SAFETY: stacks stored above, non-empty: their innermost nodes were written, never freed.
        let caller_of = |s: StoredStack| unsafe { (*s.innermost).caller };
        assert_eq!(caller_of(kept[0]), caller_of(kept[1]));
        assert_eq!(kept[2].innermost, caller_of(kept[1]));
        assert!(kept[4].innermost.is_null());
    }

    /// With a trailer, each stack has its own innermost node followed by zeroed bytes, even when
    /// it equals or ends inside the last stack, and an empty stack gets a stand-in.
    #[test]
    fn stacks_with_trailers_have_their_own_innermost_node() {
        let mut tree = StackTree::new();
        let first = stored(&mut tree, &[2, 1], true);
        let same = stored(&mut tree, &[2, 1], true);
        let shorter = stored(&mut tree, &[1], true);
        let empty = stored(&mut tree, &[], true);
        assert_ne!(first.innermost, same.innermost);
        for (s, frames) in [(first, vec![2, 1]), (same, vec![2, 1]), (shorter, vec![1])] {
            assert_eq!(s.frames().collect::<Vec<_>>(), frames);
        }
        assert!(!empty.innermost.is_null());
        assert_eq!(empty.frames().count(), 0);
        for s in [first, same, shorter, empty] {
            // SAFETY: stored with a trailer of 40 bytes, which the stacks stored later left alone.
            let trailer = unsafe { s.trailer() };
            assert_eq!(trailer as usize % TRAILER_ALIGN, 0);
            // SAFETY: as above.
            let bytes = unsafe { std::slice::from_raw_parts(trailer, 40) };
            assert!(bytes.iter().all(|&b| b == 0));
        }
    }

    /// Stacks longer than a block, and many of them, spill into new blocks intact. (Under Miri,
    /// where 2,000 stacks take many minutes, 40 of about 240 frames still fill six blocks, of 259
    /// nodes to 8,288.)
    #[test]
    fn deep_and_many_stacks_span_blocks() {
        let mut tree = StackTree::new();
        let deep: Vec<usize> = (1..=MAX_DEPTH).collect();
        let count = if cfg!(miri) { 40 } else { 2000 };
        let kept: Vec<(Vec<usize>, StoredStack)> = (0..count)
            .map(|i| {
                let stack: Vec<usize> = deep[i % 97..].iter().map(|f| f + i % 5).collect();
                let s = stored(&mut tree, &stack, i % 3 == 0);
                (stack, s)
            })
            .collect();
        for (stack, s) in kept {
            assert_eq!(s.frames().collect::<Vec<_>>(), stack);
        }
    }
}
