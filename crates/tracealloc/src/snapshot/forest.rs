//! The copied records' stacks as a local tree: each stored node visited once, however many stacks
//! share it, so a snapshot's work on stacks follows the distinct nodes (373,057 on syn) rather than
//! every frame of every stack (3,463,043).

use rustc_hash::FxHashMap as HashMap;

use crate::state::stack_tree::{NodeId, StoredStack};

/// No node: the caller of an outermost frame, the innermost node of an empty stack.
pub(crate) const NONE: u32 = u32::MAX;

/// Nodes by local index; a node's caller always has a smaller index.
///
/// A node is recognized when the stack added just before reached it too, at the same depth: that
/// is how a thread stores its stacks (each shares what it can with the one stored before it), so
/// adding a thread's stacks in order visits each node about once, with no index of all nodes. A
/// node met again later gets a second index, which changes nothing: paths are interned by their
/// classes.
#[derive(Default)]
pub(crate) struct Forest {
    addresses: Vec<usize>,
    callers: Vec<u32>,
    /// The nodes of the stack added last, outermost first: their ids and local indexes.
    last: Vec<(NodeId, u32)>,
    /// Nodes of the stack being added that the last one did not reach, innermost first (reused).
    pending: Vec<(NodeId, usize)>,
}

impl Forest {
    /// Adds the nodes of `stack` not added yet; returns its innermost node's index (`NONE` for an
    /// empty stack).
    pub(crate) fn add(&mut self, stack: StoredStack) -> u32 {
        self.pending.clear();
        let depth = stack.depth as usize;
        let mut shared = 0;
        let mut caller = NONE;
        for (i, (id, address)) in stack.nodes().enumerate() {
            let from_outermost = depth - 1 - i;
            if let Some(&(last_id, index)) = self.last.get(from_outermost)
                && last_id == id
            {
                shared = from_outermost + 1;
                caller = index;
                break;
            }
            self.pending.push((id, address));
        }
        // Outermost first, so that callers come before the frames they called.
        self.last.truncate(shared);
        for &(id, address) in self.pending.iter().rev() {
            let i = self.addresses.len() as u32;
            self.addresses.push(address);
            self.callers.push(caller);
            self.last.push((id, i));
            caller = i;
        }
        caller
    }

    /// The nodes' return addresses, by index.
    pub(crate) fn addresses(&self) -> &[usize] {
        &self.addresses
    }

    /// Interns the path from each node to its outermost frame as a sequence of classes (`class`
    /// of each node's address): nodes whose paths have the same classes get the same path.
    pub(crate) fn paths(&self, class: impl Fn(usize) -> u32) -> Paths {
        let mut paths = Paths::default();
        let mut ids: HashMap<(u32, u32), u32> = HashMap::default();
        paths.of_node.reserve(self.addresses.len());
        paths.outermost.reserve(self.addresses.len());
        for (&address, &caller) in self.addresses.iter().zip(&self.callers) {
            let (up, outermost) = match caller {
                NONE => (NONE, address),
                c => (paths.of_node[c as usize], paths.outermost[c as usize]),
            };
            let step = (class(address), up);
            let path = *ids.entry(step).or_insert_with(|| {
                paths.steps.push(step);
                paths.steps.len() as u32 - 1
            });
            paths.of_node.push(path);
            paths.outermost.push(outermost);
        }
        paths
    }
}

/// Paths of classes, each a class and the path of its caller (see [`Forest::paths`]).
#[derive(Default)]
pub(crate) struct Paths {
    steps: Vec<(u32, u32)>,
    of_node: Vec<u32>,
    outermost: Vec<usize>,
}

impl Paths {
    /// The path of node `node` (`NONE` for `NONE`).
    pub(crate) fn of(&self, node: u32) -> u32 {
        match node {
            NONE => NONE,
            n => self.of_node[n as usize],
        }
    }

    /// The return address of the outermost frame above node `node`.
    pub(crate) fn outermost_address(&self, node: u32) -> Option<usize> {
        (node != NONE).then(|| self.outermost[node as usize])
    }

    /// The classes of `path`, innermost first.
    pub(crate) fn classes(&self, mut path: u32) -> impl Iterator<Item = u32> + '_ {
        std::iter::from_fn(move || {
            let (class, up) = *self.steps.get(path as usize)?;
            path = up;
            Some(class)
        })
    }
}
