use traced_spawn::traced_spawn;

#[traced_spawn(monitor = "nightly-report", max_runtime = 30)]
fn nightly_report() {}

#[traced_spawn(monitor = "hourly-sync", schedule = "0 * * * *", checkin_margin = 0)]
fn hourly_sync() {}

fn main() {
    let _ = nightly_report();
    let _ = hourly_sync();
}
