//! A `Store` in memory, for tests of the journal itself: records survive a "reopen" (they live
//! in a shared vector), and a test can hold every append at a gate or make the store panic.
#![allow(dead_code)]

use std::sync::{Arc, Condvar, Mutex};

use raftwal::store::Store;
use raftwal::{Error, Result};

/// What every handle on the same memory store shares.
#[derive(Debug, Default)]
pub struct Memory {
    state: Mutex<State>,
    gate: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Index of `records[0]`.
    first: u64,
    records: Vec<Vec<u8>>,
    /// Appends wait while this is set.
    held: bool,
    /// The next append panics.
    panic: bool,
    /// The next append fails as a fenced writer's would, storing nothing.
    fenced: bool,
    /// Store appends so far.
    appends: u64,
}

impl Memory {
    pub fn new() -> Arc<Memory> {
        let memory = Memory::default();
        memory.state.lock().unwrap().first = 1;
        Arc::new(memory)
    }

    /// Holds (`true`) or lets through (`false`) every append.
    pub fn hold(&self, held: bool) {
        self.state.lock().unwrap().held = held;
        self.gate.notify_all();
    }

    /// Makes the next append panic.
    pub fn panic_next(&self) {
        self.state.lock().unwrap().panic = true;
    }

    /// Makes the next append fail with [`Error::Fenced`] (another writer took the store over).
    pub fn fence_next(&self) {
        self.state.lock().unwrap().fenced = true;
    }

    pub fn appends(&self) -> u64 {
        self.state.lock().unwrap().appends
    }

    /// A store handle on this memory (a "reopen").
    pub fn open(self: &Arc<Self>) -> MemStore {
        MemStore(self.clone())
    }
}

/// A handle on a [`Memory`].
#[derive(Debug)]
pub struct MemStore(Arc<Memory>);

impl Store for MemStore {
    fn first_index(&self) -> u64 {
        self.0.state.lock().unwrap().first
    }

    fn last_index(&self) -> u64 {
        let st = self.0.state.lock().unwrap();
        st.first + st.records.len() as u64 - 1
    }

    fn append(&mut self, records: &[&[u8]]) -> Result<()> {
        let mut st = self.0.state.lock().unwrap();
        while st.held {
            st = self.0.gate.wait(st).unwrap();
        }
        if std::mem::take(&mut st.panic) {
            drop(st);
            panic!("the memory store was told to panic");
        }
        if std::mem::take(&mut st.fenced) {
            return Err(Error::Fenced {
                prefix: "memory/".into(),
                reason: "another writer took the store over".into(),
            });
        }
        st.appends += 1;
        st.records.extend(records.iter().map(|r| r.to_vec()));
        Ok(())
    }

    fn read_from(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let (first, records) = {
            let st = self.0.state.lock().unwrap();
            (st.first, st.records.clone())
        };
        for (i, record) in records.iter().enumerate() {
            let index = first + i as u64;
            if index >= from {
                visit(index, record)?;
            }
        }
        Ok(())
    }

    fn delete_before(&mut self, index: u64) -> Result<()> {
        let mut st = self.0.state.lock().unwrap();
        let last = st.first + st.records.len() as u64 - 1;
        if index > last + 1 {
            return Err(Error::InvalidState {
                reason: "cannot delete records that were never appended",
            });
        }
        if index > st.first {
            let n = (index - st.first) as usize;
            st.records.drain(..n);
            st.first = index;
        }
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
