//! `#[tracing::instrument]` above `#[traced_spawn]` instruments the body, on the spawned thread.
use traced_spawn::traced_spawn;

#[tracing::instrument]
#[traced_spawn]
fn generate(question: String) -> usize {
    question.len()
}

fn main() {
    assert_eq!(generate("why?".to_owned()).join().unwrap(), 4);
}
