use std::borrow::Cow;

use traced_spawn::traced_spawn;

#[traced_spawn]
fn send(channel: &str, text: String) -> usize {
    channel.len() + text.len()
}

#[traced_spawn]
fn send_cow<'a>(text: Cow<'a, str>) -> usize {
    text.len()
}

fn main() {
    let _: std::thread::JoinHandle<usize> = send("C1", String::new());
}
