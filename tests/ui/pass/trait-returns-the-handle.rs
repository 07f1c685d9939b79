//! A trait whose methods return the handle: the impl's methods can be `#[traced_spawn]`, and
//! callers through the trait get the handle.
use traced_spawn::traced_spawn;

trait Responder {
    fn respond(self, question: String) -> tokio::task::JoinHandle<usize>;
}

struct Bot;

impl Responder for Bot {
    #[traced_spawn]
    async fn respond(self, question: String) -> usize {
        question.len()
    }
}

/// An `#[async_trait]` method calls a free traced fn.
#[async_trait::async_trait]
trait Handler {
    async fn handle(&self, question: String) -> usize;
}

#[traced_spawn]
async fn answer(question: String) -> usize {
    question.len() * 2
}

#[async_trait::async_trait]
impl Handler for Bot {
    async fn handle(&self, question: String) -> usize {
        answer(question).await.unwrap_or_default()
    }
}

#[tokio::main]
async fn main() {
    assert_eq!(Bot.respond("why?".to_owned()).await.unwrap(), 4);
    assert_eq!(Bot.handle("why?".to_owned()).await, 8);
}
