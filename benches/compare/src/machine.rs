//! The machine the numbers come from: cores, CPU, memory, kernel, and the disk and file system
//! under the benchmark directory.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn first_line_with(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The mount (device, mount point, file system type) holding `dir`.
fn mount_of(dir: &Path) -> Option<(String, String, String)> {
    let dir = dir.canonicalize().ok()?;
    read("/proc/mounts")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3).then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string()))
        })
        .filter(|(_, mount, _)| dir.starts_with(mount))
        .max_by_key(|(_, mount, _)| mount.len())
}

/// What the block device is: its model (or driver) and whether it rotates.
fn disk(device: &str) -> String {
    let name = device.trim_start_matches("/dev/");
    let base: String = name
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches('p')
        .to_string();
    let base = if Path::new(&format!("/sys/block/{base}")).exists() {
        base
    } else {
        name.to_string()
    };
    let model = read(&format!("/sys/block/{base}/device/model"))
        .trim()
        .to_string();
    let rotational = read(&format!("/sys/block/{base}/queue/rotational"));
    let kind = match rotational.trim() {
        "0" => "non-rotational",
        "1" => "rotational",
        _ => "unknown kind",
    };
    let size_sectors: u64 = read(&format!("/sys/block/{base}/size"))
        .trim()
        .parse()
        .unwrap_or(0);
    let model = if model.is_empty() {
        if base.starts_with("vd") {
            "virtio block device".to_string()
        } else {
            "unknown model".to_string()
        }
    } else {
        model
    };
    format!(
        "{device} ({model}, {kind}, {} GB)",
        size_sectors * 512 / 1_000_000_000
    )
}

/// A few lines describing the machine and the disk under `dir`.
pub fn describe(dir: &Path) -> String {
    let cpuinfo = read("/proc/cpuinfo");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = first_line_with(&cpuinfo, "model name").unwrap_or_else(|| "unknown CPU".into());
    let sse42 = cpuinfo.contains(" sse4_2");
    let mem_kb: u64 = first_line_with(&read("/proc/meminfo"), "MemTotal")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    let (device, mount, fs) = mount_of(dir).unwrap_or_default();
    format!(
        "machine: {cores} cores ({cpu}{}), {:.0} GiB RAM, Linux {kernel}\n\
         disk:    {dir} on {mount} ({fs}), {}",
        if sse42 { ", SSE4.2" } else { "" },
        mem_kb as f64 / 1024.0 / 1024.0,
        disk(&device),
        dir = dir.display(),
    )
}
