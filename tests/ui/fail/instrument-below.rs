use traced_spawn::traced_spawn;

#[traced_spawn]
#[tracing::instrument]
fn generate(question: String) -> usize {
    question.len()
}

fn main() {
    let _handle: std::thread::JoinHandle<usize> = generate("why?".to_owned());
}
