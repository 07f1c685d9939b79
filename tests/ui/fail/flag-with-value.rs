use traced_spawn::traced_spawn;

#[traced_spawn(err = true)]
fn work() -> Result<(), String> {
    Ok(())
}

fn main() {}
