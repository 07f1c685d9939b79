use std::fmt;

use traced_spawn::traced_spawn;

#[derive(Debug)]
struct BotError(String);

impl fmt::Display for BotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bot error: {}", self.0)
    }
}

impl std::error::Error for BotError {}

#[traced_spawn]
fn send_generated_response(channel: String, question: String) -> Result<usize, BotError> {
    if channel.is_empty() {
        Err(BotError("no channel".to_owned()))
    } else {
        Ok(question.len())
    }
}

// `err` also captures the `Err` as an error event.
#[traced_spawn(err)]
fn send_and_capture(channel: String) -> Result<(), BotError> {
    Err(BotError(channel))
}

// An `Err` whose type is not `std::error::Error` still marks the transaction failed.
#[traced_spawn(err)]
fn string_error() -> Result<(), String> {
    Err("plain string".to_owned())
}

fn main() {
    let handle: std::thread::JoinHandle<Result<usize, BotError>> =
        send_generated_response("C123".to_owned(), "why?".to_owned());
    assert_eq!(handle.join().unwrap().unwrap(), 4);

    let failed = send_generated_response(String::new(), "why?".to_owned());
    assert!(failed.join().unwrap().is_err());

    assert!(send_and_capture("C1".to_owned()).join().unwrap().is_err());
    assert!(string_error().join().unwrap().is_err());
}
