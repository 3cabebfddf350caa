//! Exposing raftwal's metrics: install a Prometheus recorder (no HTTP listener here; serve
//! `handle.render()` from your own endpoint), do some saves, print the text format.
//!
//! ```text
//! cargo run --example metrics
//! ```
//!
//! raftwal emits through the `metrics` facade and never installs a recorder itself: the
//! application picks the exporter and the histogram buckets.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use raftwal::eraftpb::{Entry, HardState};
use raftwal::observe::names;
use raftwal::WalOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // etcd's fsync buckets: 1 ms doubling up to about 8 s.
    let fsync_buckets: Vec<f64> = (0..14).map(|i| 0.001 * f64::from(1u32 << i)).collect();
    // Writes to the page cache take microseconds: 10 us doubling up to about 80 ms.
    let write_buckets: Vec<f64> = (0..14).map(|i| 0.00001 * f64::from(1u32 << i)).collect();
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::FSYNC_DURATION_SECONDS.into()),
            &fsync_buckets,
        )?
        .set_buckets_for_metric(
            Matcher::Full(names::WRITE_DURATION_SECONDS.into()),
            &write_buckets,
        )?
        .install_recorder()?;

    let parent = tempfile::tempdir()?;
    let options = WalOptions::new().segment_size(64 * 1024);
    let mut wal = options.create(parent.path().join("wal"), b"example")?;
    let mut hard_state = HardState {
        term: 1,
        ..Default::default()
    };
    for index in 1..=100 {
        hard_state.commit = index - 1;
        let entry = Entry {
            index,
            term: 1,
            data: vec![0u8; 1024].into(),
            ..Default::default()
        };
        wal.save(&hard_state, &[entry])?;
    }
    wal.close()?;

    print!("{}", handle.render());
    Ok(())
}
