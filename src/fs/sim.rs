//! A simulated file system for proving crash safety: it remembers which bytes and directory
//! entries are durable, produces the states a power loss may leave behind, and fails any call on
//! demand.
//!
//! The model, deliberately pessimistic:
//! - A file's writes and size changes (`write_all_at`, `set_len`, `allocate`) are pending until
//!   the file is synced (`sync_data` or `sync_all`); pending changes are kept in issue order.
//! - Creating, renaming and removing a directory entry is pending until the parent directory is
//!   synced (`sync_dir`).
//! - A power loss keeps any prefix of each file's pending changes and of each directory's
//!   pending entry changes; the first change not kept may be torn: some of its 512-byte sectors
//!   reach the disk, the others keep their old content (or, past the old end of the file, read
//!   as zeros or as garbage).
//! - A failed sync loses the file's pending changes for good while reads still show them (the
//!   Linux "fsyncgate" behaviour: dirty pages are marked clean after a writeback error).
//!
//! Everything is deterministic: random choices come from a seeded xorshift generator.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{FileSystem, WalFile};

/// The unit a disk writes atomically (the frame format's sector).
pub use crate::frame::SECTOR_SIZE;

/// The kinds of calls the simulated file system counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `create_file`.
    Create,
    /// `open_file`.
    Open,
    /// `read_at`.
    Read,
    /// `write_all_at`.
    Write,
    /// `len` and `exists`.
    Stat,
    /// `set_len` (truncate or extend).
    SetLen,
    /// `allocate`.
    Allocate,
    /// `sync_data` (fdatasync).
    SyncData,
    /// `sync_all` (fsync).
    SyncAll,
    /// `try_lock`.
    Lock,
    /// `unlock`.
    Unlock,
    /// `list_dir`.
    List,
    /// `remove_file`, `remove_dir`, `remove_dir_all`.
    Remove,
    /// `rename`.
    Rename,
    /// `sync_dir`.
    SyncDir,
    /// `create_dir_all`.
    CreateDir,
}

impl Op {
    /// Whether the call can change what a power loss leaves behind: the crash points.
    pub fn is_mutation(self) -> bool {
        matches!(
            self,
            Op::Create
                | Op::Write
                | Op::SetLen
                | Op::Allocate
                | Op::SyncData
                | Op::SyncAll
                | Op::Remove
                | Op::Rename
                | Op::SyncDir
                | Op::CreateDir
        )
    }
}

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// `EIO`: the device failed.
    Eio,
    /// `ENOSPC`: the device is full.
    Enospc,
}

impl FaultError {
    fn to_io(self) -> io::Error {
        match self {
            FaultError::Eio => io::Error::from_raw_os_error(5),
            FaultError::Enospc => io::Error::from_raw_os_error(28),
        }
    }
}

/// A call to fail: the `nth` (counting from 1) call of kind `op` (of any kind when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Which kind of call counts; `None` counts every call.
    pub op: Option<Op>,
    /// Which call fails, counting from 1.
    pub nth: u64,
    /// The error returned.
    pub error: FaultError,
    /// Whether every later call of that kind fails too (a dead disk) or only the `nth` (a
    /// transient error).
    pub persistent: bool,
}

/// How the sectors of a torn change reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectorLoss {
    /// A prefix of the sectors is written: the device stopped part-way through.
    Prefix,
    /// Any subset of the sectors is written: the device reorders within a write.
    Any,
}

/// What sectors a torn change never wrote hold when they lie past the file's old end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Zeros, as extended or preallocated space reads on Linux file systems.
    Zeros,
    /// Arbitrary bytes, as stale blocks exposed by a file system without ordered data.
    Garbage,
}

/// Which state a power loss leaves behind; see [`SimFs::crash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// Only what was synced survives.
    DropUnsynced,
    /// Everything written survives (a process crash: the kernel keeps the page cache).
    KeepUnsynced,
    /// Each file keeps a random prefix of its pending changes, the next one possibly torn, and
    /// each directory a random prefix of its pending entry changes.
    Random {
        /// Seeds every choice.
        seed: u64,
        /// How a torn change loses sectors.
        sectors: SectorLoss,
        /// What unwritten sectors past the old end of a file hold.
        fill: Fill,
    },
}

/// Statistics of the calls made so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls {
    /// Every call.
    pub total: u64,
    /// Calls that may change durable state (the crash points).
    pub mutations: u64,
    /// Calls failed by an injected fault.
    pub failed: u64,
}

/// A tiny deterministic generator (xorshift64*), so crash states are reproducible from a seed.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator seeded with `seed` (any value, zero included).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability one half.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

type NodeId = u64;

/// A change to a file's bytes or size that is not yet durable.
#[derive(Debug, Clone)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl Change {
    fn apply(&self, image: &mut Vec<u8>) {
        match self {
            Change::Write { offset, data } => {
                let start = *offset as usize;
                let end = start + data.len();
                if image.len() < end {
                    image.resize(end, 0);
                }
                image[start..end].copy_from_slice(data);
            }
            Change::SetLen(len) => image.resize(*len as usize, 0),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct FileNode {
    /// What the disk holds.
    durable: Vec<u8>,
    /// Changes since the last sync, in issue order.
    pending: Vec<Change>,
    /// What reads see: the page cache.
    live: Vec<u8>,
    /// The handle holding the lock.
    lock: Option<u64>,
}

/// A change to a directory's entries that is not yet durable.
#[derive(Debug, Clone)]
enum DirChange {
    Link(String, NodeId),
    Unlink(String),
    /// Changes that reach the disk together (a rename within one directory).
    Batch(Vec<DirChange>),
}

impl DirChange {
    fn apply(&self, entries: &mut BTreeMap<String, NodeId>) {
        match self {
            DirChange::Link(name, id) => {
                entries.insert(name.clone(), *id);
            }
            DirChange::Unlink(name) => {
                entries.remove(name);
            }
            DirChange::Batch(changes) => {
                for change in changes {
                    change.apply(entries);
                }
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct DirNode {
    durable: BTreeMap<String, NodeId>,
    pending: Vec<DirChange>,
    live: BTreeMap<String, NodeId>,
}

#[derive(Debug, Clone)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

#[derive(Debug)]
struct State {
    nodes: HashMap<NodeId, Node>,
    next_id: u64,
    calls: Calls,
    per_op: HashMap<Op, u64>,
    faults: Vec<Fault>,
    /// The kinds of the calls failed by injected faults, in order.
    failed_ops: Vec<Op>,
    /// After this many mutations the machine loses power: every later call fails, changing
    /// nothing, so the state stays as the crash found it.
    power_off_after: Option<u64>,
}

const ROOT: NodeId = 0;

impl State {
    fn new() -> State {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::Dir(DirNode::default()));
        State {
            nodes,
            next_id: 1,
            calls: Calls::default(),
            per_op: HashMap::new(),
            faults: Vec::new(),
            failed_ops: Vec::new(),
            power_off_after: None,
        }
    }

    fn powered_off(&self) -> bool {
        self.power_off_after
            .is_some_and(|n| self.calls.mutations >= n)
    }

    /// Counts a call and decides whether it fails.
    fn enter(&mut self, op: Op) -> io::Result<()> {
        if self.powered_off() {
            self.calls.failed += 1;
            return Err(io::Error::from_raw_os_error(5));
        }
        self.calls.total += 1;
        if op.is_mutation() {
            self.calls.mutations += 1;
        }
        let count = self.per_op.entry(op).or_insert(0);
        *count += 1;
        let count = *count;
        let total = self.calls.total;
        let hit = self.faults.iter().find(|f| {
            let n = match f.op {
                Some(kind) if kind == op => count,
                Some(_) => return false,
                None => total,
            };
            n == f.nth || (f.persistent && n > f.nth)
        });
        if let Some(fault) = hit {
            self.calls.failed += 1;
            self.failed_ops.push(op);
            return Err(fault.error.to_io());
        }
        Ok(())
    }

    fn dir(&self, id: NodeId) -> io::Result<&DirNode> {
        match self.nodes.get(&id) {
            Some(Node::Dir(d)) => Ok(d),
            _ => Err(io::Error::from_raw_os_error(20)), // ENOTDIR
        }
    }

    fn dir_mut(&mut self, id: NodeId) -> io::Result<&mut DirNode> {
        match self.nodes.get_mut(&id) {
            Some(Node::Dir(d)) => Ok(d),
            _ => Err(io::Error::from_raw_os_error(20)),
        }
    }

    fn file_mut(&mut self, id: NodeId) -> io::Result<&mut FileNode> {
        match self.nodes.get_mut(&id) {
            Some(Node::File(f)) => Ok(f),
            _ => Err(io::Error::from_raw_os_error(21)), // EISDIR
        }
    }

    /// The node at `path`, through live entries.
    fn resolve(&self, path: &Path) -> io::Result<NodeId> {
        let mut id = ROOT;
        for name in components(path)? {
            id = *self
                .dir(id)?
                .live
                .get(&name)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        }
        Ok(id)
    }

    /// The parent directory of `path` and the entry name.
    fn parent(&self, path: &Path) -> io::Result<(NodeId, String)> {
        let mut names = components(path)?;
        let name = names
            .pop()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut id = ROOT;
        for part in names {
            id = *self
                .dir(id)?
                .live
                .get(&part)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        }
        self.dir(id)?;
        Ok((id, name))
    }

    fn change_dir(&mut self, dir: NodeId, change: DirChange) -> io::Result<()> {
        let d = self.dir_mut(dir)?;
        change.apply(&mut d.live);
        d.pending.push(change);
        Ok(())
    }

    fn add_node(&mut self, node: Node) -> NodeId {
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.insert(id, node);
        id
    }

    fn change_file(&mut self, id: NodeId, change: Change) -> io::Result<()> {
        let f = self.file_mut(id)?;
        change.apply(&mut f.live);
        f.pending.push(change);
        Ok(())
    }
}

fn components(path: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                names.pop();
            }
            Component::Normal(name) => names.push(
                name.to_str()
                    .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?
                    .to_string(),
            ),
        }
    }
    Ok(names)
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a test thread must not hide the state from the rest of the test.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A simulated, in-memory file system; clones share the same disk. Paths are absolute
/// (relative ones are taken from the root).
#[derive(Clone)]
pub struct SimFs {
    shared: Arc<Shared>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFs")
            .field("calls", &self.calls())
            .finish()
    }
}

impl Default for SimFs {
    fn default() -> SimFs {
        SimFs::new()
    }
}

impl SimFs {
    /// An empty file system holding only the root directory.
    pub fn new() -> SimFs {
        SimFs {
            shared: Arc::new(Shared {
                state: Mutex::new(State::new()),
            }),
        }
    }

    /// Counts of the calls made so far.
    pub fn calls(&self) -> Calls {
        self.shared.lock().calls.clone()
    }

    /// How many calls of kind `op` were made so far.
    pub fn calls_of(&self, op: Op) -> u64 {
        self.shared.lock().per_op.get(&op).copied().unwrap_or(0)
    }

    /// Fails a call as `fault` describes (in addition to faults already set).
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// The kinds of the calls injected faults failed so far, in order.
    pub fn failed_ops(&self) -> Vec<Op> {
        self.shared.lock().failed_ops.clone()
    }

    /// Removes every injected fault: the disk works again.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Cuts the power after the `n`th mutating call (counted from the file system's creation):
    /// that call takes effect, every later call fails with `EIO` and changes nothing.
    /// [`SimFs::crash`] then gives what the disk holds.
    pub fn power_off_after(&self, n: u64) {
        self.shared.lock().power_off_after = Some(n);
    }

    /// Whether the power is off (a call after the one given to [`SimFs::power_off_after`]
    /// was attempted, or that call was the last mutation).
    pub fn is_powered_off(&self) -> bool {
        self.shared.lock().powered_off()
    }

    /// The disk after a power loss in state `crash`, as a fresh file system: no locks, no
    /// pending changes, no faults, counters at zero. This file system is left as it was.
    pub fn crash(&self, crash: Crash) -> SimFs {
        let state = self.shared.lock();
        let mut rng = match crash {
            Crash::Random { seed, .. } => XorShift::new(seed),
            _ => XorShift::new(0),
        };
        let mut next = State::new();
        next.next_id = state.next_id;
        // Node ids are visited in order so a seed always picks the same state.
        let mut ids: Vec<NodeId> = state.nodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let node = match &state.nodes[&id] {
                Node::File(f) => Node::File(crash_file(f, crash, &mut rng)),
                Node::Dir(d) => Node::Dir(crash_dir(d, crash, &mut rng)),
            };
            next.nodes.insert(id, node);
        }
        SimFs {
            shared: Arc::new(Shared {
                state: Mutex::new(next),
            }),
        }
    }

    /// The bytes of the file at `path` as reads see them.
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut state = self.shared.lock();
        let id = state.resolve(path)?;
        Ok(state.file_mut(id)?.live.clone())
    }

    /// Replaces the bytes of the file at `path`, durably (for corrupting a log in tests).
    pub fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.shared.lock();
        let id = state.resolve(path)?;
        let f = state.file_mut(id)?;
        f.live = bytes.to_vec();
        f.durable = bytes.to_vec();
        f.pending.clear();
        Ok(())
    }

    fn call<T>(&self, op: Op, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.shared.lock();
        state.enter(op)?;
        f(&mut state)
    }
}

/// A file after the crash: durable content plus a prefix of its pending changes, the next one
/// possibly torn.
fn crash_file(f: &FileNode, crash: Crash, rng: &mut XorShift) -> FileNode {
    let mut image = f.durable.clone();
    match crash {
        Crash::DropUnsynced => {}
        Crash::KeepUnsynced => image = f.live.clone(),
        Crash::Random { sectors, fill, .. } => {
            let keep = rng.below(f.pending.len() as u64 + 1) as usize;
            for change in &f.pending[..keep] {
                change.apply(&mut image);
            }
            if let Some(Change::Write { offset, data }) = f.pending.get(keep) {
                if rng.coin() {
                    tear(&mut image, *offset, data, sectors, fill, rng);
                }
            }
        }
    }
    FileNode {
        durable: image.clone(),
        pending: Vec::new(),
        live: image,
        lock: None,
    }
}

/// Writes part of `data` at `offset` into `image`, sector by sector.
fn tear(
    image: &mut Vec<u8>,
    offset: u64,
    data: &[u8],
    sectors: SectorLoss,
    fill: Fill,
    rng: &mut XorShift,
) {
    let old_len = image.len() as u64;
    let end = offset + data.len() as u64;
    let first = offset / SECTOR_SIZE;
    let last = (end - 1) / SECTOR_SIZE;
    let count = last - first + 1;
    // A prefix tear writes the first `cut` sectors; `Any` decides each sector on its own.
    let cut = rng.below(count + 1);
    if image.len() < end as usize {
        image.resize(end as usize, 0);
        if fill == Fill::Garbage {
            // Its own generator, so a seed picks the same sectors whatever the fill.
            XorShift::new(rng.0).fill(&mut image[old_len as usize..]);
        }
    }
    for (i, sector) in (first..=last).enumerate() {
        let written = match sectors {
            SectorLoss::Prefix => (i as u64) < cut,
            SectorLoss::Any => rng.coin(),
        };
        if written {
            let lo = (sector * SECTOR_SIZE).max(offset);
            let hi = ((sector + 1) * SECTOR_SIZE).min(end);
            image[lo as usize..hi as usize]
                .copy_from_slice(&data[(lo - offset) as usize..(hi - offset) as usize]);
        }
    }
}

fn crash_dir(d: &DirNode, crash: Crash, rng: &mut XorShift) -> DirNode {
    let entries = match crash {
        Crash::DropUnsynced => d.durable.clone(),
        Crash::KeepUnsynced => d.live.clone(),
        Crash::Random { .. } => {
            let keep = rng.below(d.pending.len() as u64 + 1) as usize;
            let mut entries = d.durable.clone();
            for change in &d.pending[..keep] {
                change.apply(&mut entries);
            }
            entries
        }
    };
    DirNode {
        durable: entries.clone(),
        pending: Vec::new(),
        live: entries,
    }
}

/// An open file of a [`SimFs`].
pub struct SimFile {
    shared: Arc<Shared>,
    node: NodeId,
    handle: u64,
    writable: bool,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("node", &self.node)
            .field("writable", &self.writable)
            .finish()
    }
}

impl SimFile {
    fn call<T>(&self, op: Op, f: impl FnOnce(&mut FileNode) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.shared.lock();
        state.enter(op)?;
        f(state.file_mut(self.node)?)
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(9)) // EBADF
        }
    }

    fn change(&self, op: Op, change: Change) -> io::Result<()> {
        self.check_writable()?;
        let mut state = self.shared.lock();
        state.enter(op)?;
        state.change_file(self.node, change)
    }

    fn sync(&self, op: Op) -> io::Result<()> {
        let mut state = self.shared.lock();
        let result = state.enter(op);
        let f = state.file_mut(self.node)?;
        match result {
            Ok(()) => {
                for change in f.pending.drain(..) {
                    change.apply(&mut f.durable);
                }
                Ok(())
            }
            Err(e) => {
                // fsyncgate: after a failed writeback the kernel forgets the dirty pages; the
                // changes stay visible but will never reach the disk.
                if !state.powered_off() {
                    if let Ok(f) = state.file_mut(self.node) {
                        f.pending.clear();
                    }
                }
                Err(e)
            }
        }
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        // Closing the last descriptor releases a flock.
        let mut state = self.shared.lock();
        if let Ok(f) = state.file_mut(self.node) {
            if f.lock == Some(self.handle) {
                f.lock = None;
            }
        }
    }
}

impl WalFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.call(Op::Read, |f| {
            let start = (offset as usize).min(f.live.len());
            let n = buf.len().min(f.live.len() - start);
            buf[..n].copy_from_slice(&f.live[start..start + n]);
            Ok(n)
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.change(
            Op::Write,
            Change::Write {
                offset,
                data: buf.to_vec(),
            },
        )
    }

    fn len(&self) -> io::Result<u64> {
        self.call(Op::Stat, |f| Ok(f.live.len() as u64))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.change(Op::SetLen, Change::SetLen(len))
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        let mut state = self.shared.lock();
        state.enter(Op::Allocate)?;
        let f = state.file_mut(self.node)?;
        if (f.live.len() as u64) < len {
            let change = Change::SetLen(len);
            change.apply(&mut f.live);
            f.pending.push(change);
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync(Op::SyncData)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync(Op::SyncAll)
    }

    fn try_lock(&self) -> io::Result<bool> {
        let handle = self.handle;
        self.call(Op::Lock, |f| match f.lock {
            Some(holder) if holder != handle => Ok(false),
            _ => {
                f.lock = Some(handle);
                Ok(true)
            }
        })
    }

    fn unlock(&self) -> io::Result<()> {
        let handle = self.handle;
        self.call(Op::Unlock, |f| {
            if f.lock == Some(handle) {
                f.lock = None;
            }
            Ok(())
        })
    }
}

impl SimFs {
    fn open(&self, state: &mut State, node: NodeId, writable: bool) -> Arc<dyn WalFile> {
        let handle = state.next_id;
        state.next_id += 1;
        Arc::new(SimFile {
            shared: self.shared.clone(),
            node,
            handle,
            writable,
        })
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.call(Op::CreateDir, |state| {
            let mut id = ROOT;
            for name in components(path)? {
                id = match state.dir(id)?.live.get(&name) {
                    Some(&child) => {
                        state.dir(child)?;
                        child
                    }
                    None => {
                        let child = state.add_node(Node::Dir(DirNode::default()));
                        state.change_dir(id, DirChange::Link(name, child))?;
                        child
                    }
                };
            }
            Ok(())
        })
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.call(Op::Remove, |state| {
            let (parent, name) = state.parent(path)?;
            let id = state.resolve(path)?;
            state.dir(id)?;
            state.change_dir(parent, DirChange::Unlink(name))
        })
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.call(Op::Remove, |state| {
            let (parent, name) = state.parent(path)?;
            let id = state.resolve(path)?;
            if !state.dir(id)?.live.is_empty() {
                return Err(io::Error::from_raw_os_error(39)); // ENOTEMPTY
            }
            state.change_dir(parent, DirChange::Unlink(name))
        })
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.call(Op::List, |state| {
            let id = state.resolve(path)?;
            Ok(state.dir(id)?.live.keys().cloned().collect())
        })
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.call(Op::Stat, |state| match state.resolve(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        })
    }

    fn create_file(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        let mut state = self.shared.lock();
        state.enter(Op::Create)?;
        let (parent, name) = state.parent(path)?;
        let node = match state.dir(parent)?.live.get(&name).copied() {
            Some(id) => {
                state.change_file(id, Change::SetLen(0))?;
                id
            }
            None => {
                let id = state.add_node(Node::File(FileNode::default()));
                state.change_dir(parent, DirChange::Link(name, id))?;
                id
            }
        };
        Ok(self.open(&mut state, node, true))
    }

    fn open_file(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn WalFile>> {
        let mut state = self.shared.lock();
        state.enter(Op::Open)?;
        let node = state.resolve(path)?;
        state.file_mut(node)?;
        Ok(self.open(&mut state, node, writable))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.call(Op::Remove, |state| {
            let (parent, name) = state.parent(path)?;
            let id = state.resolve(path)?;
            state.file_mut(id)?;
            state.change_dir(parent, DirChange::Unlink(name))
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.call(Op::Rename, |state| {
            let (from_parent, from_name) = state.parent(from)?;
            let (to_parent, to_name) = state.parent(to)?;
            let id = state.resolve(from)?;
            let moving_dir = state.dir(id).is_ok();
            if let Some(&target) = state.dir(to_parent)?.live.get(&to_name) {
                match state.nodes.get(&target) {
                    Some(Node::Dir(d)) if !moving_dir || !d.live.is_empty() => {
                        return Err(io::Error::from_raw_os_error(39));
                    }
                    Some(Node::File(_)) if moving_dir => {
                        return Err(io::Error::from_raw_os_error(20));
                    }
                    _ => {}
                }
            }
            if from_parent == to_parent {
                // One directory, one journal transaction: a crash keeps both halves or neither.
                let batch = DirChange::Batch(vec![
                    DirChange::Unlink(from_name),
                    DirChange::Link(to_name, id),
                ]);
                state.change_dir(from_parent, batch)
            } else {
                state.change_dir(from_parent, DirChange::Unlink(from_name))?;
                state.change_dir(to_parent, DirChange::Link(to_name, id))
            }
        })
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.call(Op::SyncDir, |state| {
            let id = state.resolve(path)?;
            let d = state.dir_mut(id)?;
            for change in d.pending.drain(..) {
                change.apply(&mut d.durable);
            }
            Ok(())
        })
    }
}
