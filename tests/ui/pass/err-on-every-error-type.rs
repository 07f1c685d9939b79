//! `err` on every `Result` shape services return.
use traced_spawn::traced_spawn;

#[traced_spawn(err)]
fn with_anyhow() -> anyhow::Result<u8> {
    Ok(1)
}

#[traced_spawn(err)]
fn with_boxed() -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    Ok(2)
}

#[traced_spawn(err)]
fn with_io() -> std::io::Result<u8> {
    Ok(3)
}

struct NoDebug;

#[traced_spawn(err)]
fn without_debug() -> Result<u8, NoDebug> {
    Ok(4)
}

fn main() {
    assert_eq!(with_anyhow().join().unwrap().unwrap(), 1);
    assert_eq!(with_boxed().join().unwrap().unwrap(), 2);
    assert_eq!(with_io().join().unwrap().unwrap(), 3);
    assert!(without_debug().join().unwrap().is_ok());
}
