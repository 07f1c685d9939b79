use traced_spawn::traced_spawn;

#[traced_spawn(schedule = "0 3 * * *")]
fn nightly_report() {}

fn main() {
    let _ = nightly_report();
}
