//! What raftwal tells an operator through `tracing`: every cut of a segment's tail, forced or
//! not, and every refusal, at `warn` with the file and offset to look at.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::*;
use raftwal::WalOptions;
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// One logged event: its level and its fields (`message` included), as text.
#[derive(Debug)]
struct Logged {
    level: Level,
    fields: BTreeMap<String, String>,
}

impl Logged {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Logged>>>);

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Fields<'a>(&'a mut BTreeMap<String, String>);
        impl Visit for Fields<'_> {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                self.0
                    .insert(field.name().to_string(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                self.0.insert(field.name().to_string(), value.to_string());
            }
        }
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Logged {
            level: *event.metadata().level(),
            fields,
        });
    }
}

/// Runs `f` with this thread's events captured; returns the `warn` ones.
fn warnings(f: impl FnOnce()) -> Vec<Logged> {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, f);
    let mut logged = capture.0.lock().unwrap();
    logged.retain(|l| l.level == Level::WARN);
    std::mem::take(&mut *logged)
}

/// A log of ten entries whose last frame lost its final 4 bytes; returns the parent, the dir,
/// the segment and where the damaged frame starts.
fn torn_log() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    u64,
) {
    let (parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    for i in 1..=10 {
        wal.save(&hard_state(1, 0, i), &[bare(i)]).unwrap();
    }
    wal.close().unwrap();
    let tail = last_segment(&dir);
    let (start, end) = *frames(&tail).last().unwrap();
    set_len(&tail, end - 4);
    (parent, dir, tail, start)
}

#[test]
fn repairing_a_torn_tail_warns_with_the_file_offset_and_copy() {
    let (_parent, dir, tail, start) = torn_log();
    let logged = warnings(|| {
        WalOptions::new().repair(&dir).unwrap().unwrap();
    });
    assert_eq!(logged.len(), 1, "{logged:?}");
    let warning = &logged[0];
    assert!(
        warning.field("message").contains("torn WAL tail"),
        "{warning:?}"
    );
    assert_eq!(warning.field("file"), tail.display().to_string());
    assert_eq!(warning.field("offset"), start.to_string());
    assert!(
        warning.field("broken_copy").ends_with(".broken"),
        "{warning:?}"
    );
}

#[test]
fn a_forced_cut_warns_that_acknowledged_entries_may_be_lost() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    wal.save(&hard_state(1, 0, 5), &(1..=5).map(bare).collect::<Vec<_>>())
        .unwrap();
    wal.close().unwrap();
    let tail = last_segment(&dir);
    let (start, _) = frames(&tail)[4];
    write_at(&tail, start, &[0; 8]);
    let logged = warnings(|| {
        WalOptions::new().repair_at(&dir, start).unwrap();
    });
    assert_eq!(logged.len(), 1, "{logged:?}");
    let warning = &logged[0];
    assert!(
        warning
            .field("message")
            .contains("acknowledged entries after it may be lost"),
        "{warning:?}"
    );
    assert_eq!(warning.field("offset"), start.to_string());
}

#[test]
fn a_refused_repair_warns_with_the_damage() {
    let (_parent, dir, tail, _) = torn_log();
    // A byte of the record's crc field, just after its length word and type.
    let (start, _) = frames(&tail)[5];
    flip_byte(&tail, start + 11);
    let logged = warnings(|| {
        WalOptions::new().repair(&dir).unwrap_err();
    });
    assert_eq!(logged.len(), 1, "{logged:?}");
    let warning = &logged[0];
    assert!(warning.field("message").contains("refused"), "{warning:?}");
    assert!(
        warning.field("error").contains(&format!("offset {start}")),
        "{warning:?}"
    );
}

#[test]
fn a_clean_log_opens_without_warnings() {
    let (_parent, dir) = parent_and_dir();
    let mut wal = create(&dir, b"");
    wal.save(&hard_state(1, 0, 1), &[bare(1)]).unwrap();
    wal.close().unwrap();
    let logged = warnings(|| {
        let mut wal = open(&dir, &start()).unwrap();
        wal.read_all().unwrap();
        wal.close().unwrap();
    });
    assert!(logged.is_empty(), "{logged:?}");
}
