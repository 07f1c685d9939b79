use traced_spawn::traced_spawn;

#[async_trait::async_trait]
trait Responder {
    async fn respond(self, question: String) -> usize;
}

struct Bot;

#[async_trait::async_trait]
impl Responder for Bot {
    #[traced_spawn]
    async fn respond(self, question: String) -> usize {
        question.len()
    }
}

fn main() {}
