//! A bank ledger kept in a journal on the file store: typed records (postcard), a checkpoint
//! of the balances every few events, and recovery that rebuilds the balances from the last
//! checkpoint plus the events after it. Run it twice on the same directory to see a restart:
//!
//! ```sh
//! cargo run --example journal -- /tmp/ledger
//! cargo run --example journal -- /tmp/ledger
//! ```

use std::collections::BTreeMap;

use raftwal::journal::{Journal, Postcard, Replayed};
use raftwal::store::FileStore;
use raftwal::WalOptions;
use serde::{Deserialize, Serialize};

/// What the ledger journals: events as data records, balances as checkpoint records.
#[derive(Debug, Serialize, Deserialize)]
enum Record {
    Deposit {
        account: String,
        cents: i64,
    },
    Transfer {
        from: String,
        to: String,
        cents: i64,
    },
    Balance {
        account: String,
        cents: i64,
    },
}

/// Take a checkpoint after this many events.
const CHECKPOINT_EVERY: u64 = 4;

fn apply(balances: &mut BTreeMap<String, i64>, record: Record) {
    match record {
        Record::Deposit { account, cents } => *balances.entry(account).or_default() += cents,
        Record::Transfer { from, to, cents } => {
            *balances.entry(from).or_default() -= cents;
            *balances.entry(to).or_default() += cents;
        }
        Record::Balance { account, cents } => {
            balances.insert(account, cents);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let dir = match std::env::args().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => temp.path().join("ledger"),
    };

    // Recovery: the last finalized checkpoint's balances, then every event after it.
    let mut balances = BTreeMap::new();
    let (mut from_checkpoint, mut events) = (0, 0);
    let store = FileStore::open_or_create(&dir, WalOptions::new())?;
    let journal = Journal::open(
        store,
        Postcard::<Record>::new(),
        |replayed| match replayed {
            Replayed::Checkpoint(record) => {
                from_checkpoint += 1;
                apply(&mut balances, record);
            }
            Replayed::Data { record, .. } => {
                events += 1;
                apply(&mut balances, record);
            }
        },
    )?;
    println!(
        "recovered {} from {from_checkpoint} checkpoint records and {events} events: {balances:?}",
        dir.display()
    );

    let run = [
        Record::Deposit {
            account: "alice".into(),
            cents: 10_000,
        },
        Record::Deposit {
            account: "bob".into(),
            cents: 2_500,
        },
        Record::Transfer {
            from: "alice".into(),
            to: "bob".into(),
            cents: 1_200,
        },
        Record::Transfer {
            from: "bob".into(),
            to: "carol".into(),
            cents: 300,
        },
        Record::Deposit {
            account: "carol".into(),
            cents: 50,
        },
    ];
    for record in run {
        // Durable before it is applied: a crash never loses an event the ledger acted on.
        let index = journal.append(&record)?.wait()?;
        apply(&mut balances, record);
        events += 1;
        if events % CHECKPOINT_EVERY == 0 {
            let checkpoint = journal.start_checkpoint()?;
            for (account, &cents) in &balances {
                checkpoint.append(&Record::Balance {
                    account: account.clone(),
                    cents,
                })?;
            }
            // Durable, and the events before it deleted from the disk.
            checkpoint.finalize()?.wait()?;
            println!("event {index}: checkpoint of {} balances", balances.len());
        }
    }
    println!("balances now: {balances:?}");
    journal.close()?;
    Ok(())
}
