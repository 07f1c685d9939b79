use traced_spawn::traced_spawn;

#[traced_spawn(monitor = "Nightly Report")]
fn nightly_report() {}

fn main() {
    let _ = nightly_report();
}
