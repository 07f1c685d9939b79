use traced_spawn::traced_spawn;

#[traced_spawn]
#[traced_spawn(name = "reply")]
fn reply(channel: String) -> usize {
    channel.len()
}

fn main() {
    let _handle: std::thread::JoinHandle<usize> = reply("C1".to_owned());
}
