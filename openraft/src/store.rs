//! [`LogStore`]: openraft's `RaftLogStorage` on a raftwal [`SharedWal`].

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, RaftTypeConfig,
    StorageError, Vote,
};
use raftwal::eraftpb::{self, HardState};
use raftwal::{Completion, LogRecord, SharedWal, SyncPolicy, Wal, WalOptions, WalSnapshot};

use crate::codec::{self, etcd_index, Stored, METADATA};
use crate::error::{Error, IntoStorage as _};

/// What the store knows, shared with its readers. Every field changes only after the WAL
/// accepted the write that records it.
struct State<C: RaftTypeConfig> {
    /// The entries after the last purged one, by openraft index (a later issue adds an on-disk
    /// index so they need not all stay in memory).
    entries: BTreeMap<u64, Entry<C>>,
    last_purged: Option<LogId<C::NodeId>>,
    vote: Option<Vote<C::NodeId>>,
    /// The committed log id saved by `save_committed` (or recovered).
    committed: Option<LogId<C::NodeId>>,
    /// The etcd index of the newest snapshot marker: the WAL is opened there, and every
    /// HardState written carries `commit >= marker` so that etcd counts the marker as valid.
    marker: u64,
}

impl<C: RaftTypeConfig> State<C> {
    fn last_log_id(&self) -> Option<LogId<C::NodeId>> {
        self.entries
            .values()
            .next_back()
            .map(|e| e.log_id.clone())
            .or_else(|| self.last_purged.clone())
    }

    /// The HardState that records the vote and the committed log id (see the README).
    fn hard_state(&self) -> Result<HardState, Error>
    where
        C::NodeId: Into<u64>,
    {
        let (term, vote) = match &self.vote {
            None => (0, 0),
            Some(v) => (
                v.leader_id.term,
                codec::pack_vote(v.leader_id.node_id.clone().into(), v.committed)?,
            ),
        };
        let commit = self
            .committed
            .as_ref()
            .map_or(0, |c| etcd_index(c.index))
            .max(self.marker);
        Ok(HardState {
            term,
            vote,
            commit,
            ..Default::default()
        })
    }
}

fn lock<C: RaftTypeConfig>(state: &Mutex<State<C>>) -> MutexGuard<'_, State<C>> {
    // Every update of the state is made after its WAL write succeeded and cannot panic half
    // way in a way that matters to readers, so a poisoned lock is still consistent.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A completion and the openraft callback to fire once it has.
type Pending<C> = (Completion, LogFlushed<C>);

/// An openraft log store (`RaftLogStorage`, storage-v2) on an etcd write-ahead log.
///
/// Appends are written at once and made durable by raftwal's group commit: one fdatasync
/// covers every append (and vote) written while the previous one ran, and each append's
/// callback fires, in log order, only after an fdatasync that covers it. Votes are durable
/// before `save_vote` returns, truncates before `truncate` returns, purges before `purge`
/// returns. All writes go to one log in the order they are made, so a vote and a log write are
/// never reordered.
pub struct LogStore<C: RaftTypeConfig> {
    dir: PathBuf,
    state: Arc<Mutex<State<C>>>,
    wal: Option<Arc<SharedWal>>,
    /// Feeds the thread that fires append callbacks in log order.
    pending: Option<mpsc::Sender<Pending<C>>>,
    flusher: Option<JoinHandle<()>>,
}

impl<C: RaftTypeConfig> Debug for LogStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("LogStore")
            .field("dir", &self.dir)
            .field("last_purged", &st.last_purged)
            .field("last_log_id", &st.last_log_id())
            .field("vote", &st.vote)
            .finish()
    }
}

/// A reader of a [`LogStore`]'s entries, for openraft's replication tasks.
pub struct LogReader<C: RaftTypeConfig> {
    state: Arc<Mutex<State<C>>>,
}

impl<C: RaftTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        LogReader {
            state: self.state.clone(),
        }
    }
}

impl<C: RaftTypeConfig> Debug for LogReader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader").finish_non_exhaustive()
    }
}

/// What replaying the log recovered.
struct Replayed {
    /// The live etcd entries after the marker, overwrites applied.
    entries: Vec<eraftpb::Entry>,
    /// The last record at the marker's index: the purged entry, its placeholder, or a void.
    at_marker: Option<eraftpb::Entry>,
    hard_state: HardState,
}

/// Reads the log opened at `marker` to its end, keeping every record at the marker's index.
fn replay(wal: &mut Wal, marker: u64) -> Result<Replayed, Error> {
    let mut out = Replayed {
        entries: Vec::new(),
        at_marker: None,
        hard_state: HardState::default(),
    };
    for record in wal.replay()? {
        match record? {
            LogRecord::Metadata(metadata) if metadata != METADATA => {
                return Err(Error::ForeignLog { metadata });
            }
            LogRecord::Entry(entry) => {
                if marker > 0 && entry.index == marker {
                    out.at_marker = Some(entry.clone());
                }
                // etcd's overwrite rule, as `Wal::read_all` applies it.
                if entry.index > marker {
                    out.entries.truncate((entry.index - marker - 1) as usize);
                    out.entries.push(entry);
                } else {
                    out.entries.clear();
                }
            }
            LogRecord::HardState(hard_state) => out.hard_state = hard_state,
            LogRecord::Metadata(_) | LogRecord::Snapshot(_) => {}
        }
    }
    Ok(out)
}

fn invalid(reason: String) -> Error {
    Error::Invalid(reason)
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Clone,
    C::NodeId: Into<u64> + From<u64>,
{
    /// Opens the log store in `dir` stored as `options` says (`WalOptions::new()` is etcd's:
    /// 64 MB segments), creating it if `dir` holds no WAL.
    ///
    /// Recovers every entry, the vote, the committed log id and the last purged log id that
    /// were durable. A torn tail (a crash mid-write: never acknowledged) is cut off first.
    pub fn open(dir: impl AsRef<Path>, options: WalOptions) -> Result<LogStore<C>, Error> {
        let dir = dir.as_ref().to_path_buf();
        if !options.exists(&dir) {
            options.create(&dir, METADATA)?.close()?;
        }
        // The newest marker: purges keep the HardState's commit at or above it, so it is valid.
        let start = options
            .valid_snapshot_entries(&dir)?
            .into_iter()
            .max_by_key(|s| s.index)
            .unwrap_or_default();
        let mut repaired = false;
        let (wal, replayed) = loop {
            let mut wal = options.open(&dir, &start)?;
            match replay(&mut wal, start.index) {
                Err(Error::Wal(raftwal::Error::TornTail { .. })) if !repaired => {
                    drop(wal);
                    options.repair(&dir)?;
                    repaired = true;
                }
                result => break (wal, result?),
            }
        };

        let mut entries = BTreeMap::new();
        for etcd in &replayed.entries {
            let entry = codec::from_etcd::<C>(etcd)?.ok_or_else(|| {
                invalid(format!(
                    "a purge placeholder at etcd index {} after the marker",
                    etcd.index
                ))
            })?;
            entries.insert(entry.log_id.index, entry);
        }
        let last_purged = match &replayed.at_marker {
            Some(etcd) => match codec::decode::<C>(etcd)? {
                Stored::Entry { leader, .. } | Stored::Purged { leader } => {
                    Some(codec::log_id_of(etcd, leader))
                }
                Stored::Void => None,
            },
            None => None,
        };
        let hs = &replayed.hard_state;
        let committed = hs.commit.checked_sub(1).and_then(|index| {
            entries
                .get(&index)
                .map(|e: &Entry<C>| e.log_id.clone())
                .or_else(|| last_purged.clone().filter(|p| p.index == index))
        });
        let state = State {
            entries,
            last_purged,
            vote: codec::unpack_vote(hs),
            committed,
            marker: start.index,
        };
        let wal = Arc::new(SharedWal::new(wal, SyncPolicy::Grouped)?);
        let (tx, rx) = mpsc::channel::<Pending<C>>();
        let flusher = std::thread::Builder::new()
            .name("raftwal-openraft-flush".into())
            .spawn(move || {
                // Completions fire in log order; firing the callbacks in the order received
                // keeps openraft's flushed log id monotonic.
                for (completion, callback) in rx {
                    callback.log_io_completed(completion.wait().map_err(std::io::Error::other));
                }
            })
            .map_err(Error::Thread)?;
        Ok(LogStore {
            dir,
            state: Arc::new(Mutex::new(state)),
            wal: Some(wal),
            pending: Some(tx),
            flusher: Some(flusher),
        })
    }
}

impl<C: RaftTypeConfig> LogStore<C> {
    /// The store's directory (an etcd WAL directory).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn wal(&self) -> Result<&SharedWal, Error> {
        self.wal
            .as_deref()
            .ok_or_else(|| invalid("the store is closed".into()))
    }

    /// Stops the callback thread after every pending callback has fired.
    fn stop_flusher(&mut self) {
        drop(self.pending.take());
        if let Some(thread) = self.flusher.take() {
            let _ = thread.join();
        }
    }

    /// Syncs what was written, fires every pending callback and releases the WAL.
    pub fn close(mut self) -> Result<(), Error> {
        if let Some(wal) = &self.wal {
            wal.sync()?;
        }
        self.stop_flusher();
        match self.wal.take().map(Arc::try_unwrap) {
            Some(Ok(wal)) => Ok(wal.close()?),
            _ => Ok(()),
        }
    }
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Clone,
    C::NodeId: Into<u64>,
{
    /// Appends `entries` as [`RaftLogStorage::append`] does, but returns raftwal's
    /// [`Completion`] (block on it or `.await` it) instead of taking openraft's callback, which
    /// only openraft can build: for pipelined appends outside a raft node, and benchmarks.
    /// The entries are readable when this returns; the completion fires after an fdatasync that
    /// covers them, and completions fire in log order.
    pub fn append_pipelined(&mut self, entries: Vec<Entry<C>>) -> Result<Completion, Error> {
        self.do_append(entries)
    }

    /// The index the next entry appended gets: one past the last log id (0 for an empty log).
    pub fn next_index(&self) -> u64 {
        lock(&self.state).last_log_id().map_or(0, |l| l.index + 1)
    }
}

impl<C: RaftTypeConfig> Drop for LogStore<C> {
    fn drop(&mut self) {
        // Dropping the WAL settles pending completions; the thread then fires their callbacks.
        drop(self.wal.take());
        self.stop_flusher();
    }
}

/// `[start, end)` of a range of indexes, or `None` if it is empty.
fn bounds(range: &impl RangeBounds<u64>) -> Option<(u64, u64)> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1)?,
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start < end).then_some((start, end))
}

fn entries_in<C>(state: &Mutex<State<C>>, range: impl RangeBounds<u64>) -> Vec<Entry<C>>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Clone,
{
    match bounds(&range) {
        Some((start, end)) => lock(state)
            .entries
            .range(start..end)
            .map(|(_, e)| e.clone())
            .collect(),
        None => Vec::new(),
    }
}

impl<C> RaftLogReader<C> for LogReader<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError<C::NodeId>> {
        Ok(entries_in(&self.state, range))
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError<C::NodeId>> {
        Ok(entries_in(&self.state, range))
    }
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Clone,
    C::NodeId: Into<u64>,
{
    /// Writes the current HardState; `Some(completion)` if there was one to write.
    fn submit_hard_state(&self, state: &State<C>) -> Result<Completion, Error> {
        let hs = state.hard_state()?;
        Ok(self.wal()?.submit(&hs, &[])?)
    }

    fn do_save_vote(&self, vote: &Vote<C::NodeId>) -> Result<Completion, Error> {
        let mut st = lock(&self.state);
        let previous = st.vote.replace(vote.clone());
        let submitted = self.submit_hard_state(&st);
        if submitted.is_err() {
            st.vote = previous;
        }
        submitted
    }

    fn do_save_committed(&self, committed: Option<LogId<C::NodeId>>) -> Result<Completion, Error> {
        let mut st = lock(&self.state);
        let previous = std::mem::replace(&mut st.committed, committed);
        let submitted = self.submit_hard_state(&st);
        if submitted.is_err() {
            st.committed = previous;
        }
        submitted
    }

    /// Writes `entries` (which must follow the log without a hole) and returns their
    /// completion; they are readable when this returns `Ok`.
    fn do_append(&self, mut entries: Vec<Entry<C>>) -> Result<Completion, Error> {
        let wal = self.wal()?;
        let mut st = lock(&self.state);
        // Entries at or below the purge point are committed and covered by the snapshot the
        // purge followed (openraft's suite appends such entries): there is nothing to keep.
        if let Some(p) = &st.last_purged {
            entries.retain(|e| e.log_id.index > p.index);
        }
        if let Some(first) = entries.first() {
            let i = first.log_id.index;
            let next = st.last_log_id().map_or(0, |l| l.index + 1);
            // An entry at or below the marker's etcd index would void the log on replay.
            if etcd_index(i) <= st.marker {
                return Err(invalid(format!(
                    "append at index {i}, below the start of the log at {}",
                    st.marker
                )));
            }
            if i > next {
                if !st.entries.is_empty() || st.last_purged.is_some() {
                    return Err(invalid(format!(
                        "append at index {i} would leave a hole after {}",
                        next.saturating_sub(1)
                    )));
                }
                // An empty log starting above its end (openraft's suite does this): a marker
                // just before the first entry lets etcd's replay accept it without a hole. It
                // names no purged log id (nothing is at its index), so none is recovered.
                let marker = etcd_index(i) - 1;
                st.marker = marker;
                let hs = st.hard_state()?;
                // The marker's sync covers this HardState.
                drop(wal.submit(&hs, &[])?);
                wal.save_snapshot_marker(&WalSnapshot::new(marker, 0))?;
            }
        }
        let etcd = entries
            .iter()
            .map(codec::to_etcd)
            .collect::<Result<Vec<_>, _>>()?;
        let completion = wal.submit(&HardState::default(), &etcd)?;
        // etcd's overwrite rule: an entry at or below the end drops the entries from its index
        // on, on replay as here.
        if let Some(first) = entries.first() {
            st.entries.split_off(&first.log_id.index);
        }
        for entry in entries {
            st.entries.insert(entry.log_id.index, entry);
        }
        Ok(completion)
    }

    /// Makes the log end before `log_id.index`: re-appends the entry before it (or, at the
    /// purge point, the purged log id; with nothing before it, a void at the marker), which
    /// drops everything after it on replay. Returns the completion of that write.
    fn do_truncate(&self, log_id: LogId<C::NodeId>) -> Result<Option<Completion>, Error> {
        let wal = self.wal()?;
        let mut st = lock(&self.state);
        let t = log_id.index;
        let last = st.last_log_id().map_or(0, |l| l.index + 1);
        if t >= last && st.entries.range(t..).next().is_none() {
            return Ok(None);
        }
        if let Some(p) = &st.last_purged {
            if t <= p.index {
                return Err(invalid(format!(
                    "truncate at {t}, at or below the last purged index {}",
                    p.index
                )));
            }
        }
        let record = match t.checked_sub(1) {
            Some(prev) if st.entries.contains_key(&prev) => codec::to_etcd(&st.entries[&prev])?,
            Some(prev) if st.last_purged.as_ref().is_some_and(|p| p.index == prev) => {
                match &st.last_purged {
                    Some(p) => codec::purged_entry::<C>(p)?,
                    None => codec::void_entry::<C>(st.marker)?,
                }
            }
            // Nothing known before `t`: void everything after the marker.
            _ => codec::void_entry::<C>(st.marker)?,
        };
        let completion = wal.submit(&HardState::default(), &[record])?;
        st.entries.split_off(&t);
        Ok(Some(completion))
    }

    /// Purges the log up to `log_id`, durably: HardState (commit at or above the marker), then
    /// the marker at the purged entry's etcd index, then (if the purged entry is not in the log)
    /// a placeholder that records its log id, then releases and deletes old segments.
    fn do_purge(&self, log_id: LogId<C::NodeId>) -> Result<(), Error> {
        let wal = self.wal()?;
        let mut st = lock(&self.state);
        let p = log_id.index;
        if st.last_purged.as_ref().is_some_and(|lp| lp.index >= p) {
            return Ok(());
        }
        let present = match st.entries.get(&p) {
            Some(entry) if entry.log_id != log_id => {
                return Err(invalid(format!(
                    "purge of {log_id} where the log holds {}",
                    entry.log_id
                )));
            }
            Some(_) => true,
            None => false,
        };
        let later: Vec<&Entry<C>> = st.entries.range(p + 1..).map(|(_, e)| e).collect();
        if !present && later.first().is_some_and(|e| e.log_id.index != p + 1) {
            return Err(invalid(format!(
                "purge of {log_id} would leave a hole before the entries kept"
            )));
        }
        let marker = etcd_index(p);
        if marker < st.marker {
            return Err(invalid(format!(
                "purge of {log_id}, below the start of the log at etcd index {}",
                st.marker
            )));
        }
        let mut next = State {
            entries: BTreeMap::new(),
            last_purged: Some(log_id.clone()),
            vote: st.vote.clone(),
            committed: st.committed.clone(),
            marker,
        };
        // 1. A HardState whose commit covers the marker, so etcd's rules count the marker; the
        //    marker's sync makes it durable.
        // 2. The marker, synced with everything before it. A log that began above 0 already has
        //    one here (with term 0): a second one with another term would not match on open.
        if marker != st.marker {
            drop(wal.submit(&next.hard_state()?, &[])?);
            wal.save_snapshot_marker(&WalSnapshot::new(marker, log_id.leader_id.term))?;
        }
        // 3. If the purged entry is not in the log, a placeholder at the marker's index records
        //    its log id; it voids what follows the marker on replay, so the entries after it are
        //    written again (only when the log began above the purge point).
        if !present {
            let mut records = vec![codec::purged_entry::<C>(&log_id)?];
            for entry in &later {
                records.push(codec::to_etcd(entry)?);
            }
            wal.submit(&HardState::default(), &records)?.wait()?;
        }
        next.entries = st.entries.split_off(&(p + 1));
        *st = next;
        drop(st);
        // 4. Segments before the one holding the marker's index are no longer read: release and
        //    delete them.
        wal.release_lock_to(marker + 1)?;
        wal.purge_released(0)?;
        Ok(())
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Clone,
    C::NodeId: Into<u64> + From<u64>,
{
    type LogReader = LogReader<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let st = lock(&self.state);
        Ok(LogState {
            last_purged_log_id: st.last_purged.clone(),
            last_log_id: st.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            state: self.state.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let completion = self
            .do_save_vote(vote)
            .storage(ErrorSubject::Vote, ErrorVerb::Write)?;
        completion
            .await
            .storage(ErrorSubject::Vote, ErrorVerb::Write)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(lock(&self.state).vote.clone())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        // Written in log order but not synced by itself: raft's MustSync lets a commit-only
        // change be lost and recomputed (see the README).
        let completion = self
            .do_save_committed(committed)
            .storage(ErrorSubject::Store, ErrorVerb::Write)?;
        drop(completion);
        Ok(())
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(lock(&self.state).committed.clone())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<C>> = entries.into_iter().collect();
        let completion = self
            .do_append(entries)
            .storage(ErrorSubject::Logs, ErrorVerb::Write)?;
        match &self.pending {
            Some(pending) => pending.send((completion, callback)).map_err(|_| {
                invalid("the callback thread has stopped".into())
                    .into_storage_error(ErrorSubject::Logs, ErrorVerb::Write)
            }),
            None => Err(invalid("the store is closed".into())
                .into_storage_error(ErrorSubject::Logs, ErrorVerb::Write)),
        }
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let completion = self
            .do_truncate(log_id)
            .storage(ErrorSubject::Logs, ErrorVerb::Delete)?;
        if let Some(completion) = completion {
            completion
                .await
                .storage(ErrorSubject::Logs, ErrorVerb::Delete)?;
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.do_purge(log_id)
            .storage(ErrorSubject::Logs, ErrorVerb::Delete)
    }
}
