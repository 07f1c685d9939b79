use traced_spawn::traced_spawn;

#[traced_spawn(nmae = "typo")]
fn work() {}

fn main() {
    // Unknown options are reported, the fn is still expanded with the defaults.
    let _: std::thread::JoinHandle<()> = work();
}
