use traced_spawn::traced_spawn;

#[traced_spawn(monitor = "nightly-report", schedule = "0 3 * *")]
fn nightly_report() {}

#[traced_spawn(monitor = "hourly-sync", schedule = "60 * * * *")]
fn hourly_sync() {}

fn main() {
    let _ = nightly_report();
    let _ = hourly_sync();
}
