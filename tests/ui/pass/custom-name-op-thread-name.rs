use traced_spawn::traced_spawn;

#[traced_spawn(name = "slack.reply", op = "queue.process", thread_name = "slack-reply")]
fn reply() -> Option<String> {
    std::thread::current().name().map(str::to_owned)
}

// The default thread name is the fn name.
#[traced_spawn]
fn default_thread_name() -> Option<String> {
    std::thread::current().name().map(str::to_owned)
}

// Options in any order, with a trailing comma.
#[traced_spawn(thread_name = "worker", err, op = "job", name = "job.run",)]
fn all_options() -> Result<(), std::io::Error> {
    Ok(())
}

#[traced_spawn(name = "fetch.answer", op = "llm")]
async fn fetch() -> u32 {
    1
}

#[tokio::main]
async fn main() {
    assert_eq!(reply().join().unwrap().as_deref(), Some("slack-reply"));
    assert_eq!(
        default_thread_name().join().unwrap().as_deref(),
        Some("default_thread_name")
    );
    all_options().join().unwrap().unwrap();
    assert_eq!(fetch().await.unwrap(), 1);
}
