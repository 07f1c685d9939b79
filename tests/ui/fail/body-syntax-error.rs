use traced_spawn::traced_spawn;

#[traced_spawn]
fn generate(question: String) -> usize {
    let length = question.len() +;
    length
}

fn main() {
    // The call site keeps type-checking: only the body's syntax error is reported.
    let _handle: std::thread::JoinHandle<usize> = generate("why?".to_owned());
}
