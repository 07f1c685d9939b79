use traced_spawn::traced_spawn;

#[traced_spawn(err)]
fn count(text: String) -> usize {
    text.len()
}

#[traced_spawn(name = "notify", err)]
async fn notify(channel: String) {
    drop(channel);
}

fn main() {
    let _handle: std::thread::JoinHandle<usize> = count("x".to_owned());
}
