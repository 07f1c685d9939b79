use traced_spawn::traced_spawn;

#[traced_spawn]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[traced_spawn]
fn no_return_type(message: String) {
    assert_eq!(message, "hello");
}

#[traced_spawn]
pub fn no_params() -> &'static str {
    "done"
}

fn main() {
    let handle: std::thread::JoinHandle<u32> = add(1, 2);
    assert_eq!(handle.join().unwrap(), 3);

    let handle: std::thread::JoinHandle<()> = no_return_type("hello".to_owned());
    handle.join().unwrap();

    assert_eq!(no_params().join().unwrap(), "done");
}
