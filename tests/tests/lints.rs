//! Expanded code stays quiet under strict lints: this file is compiled by
//! `cargo clippy --all-targets -- -D warnings` in CI with `clippy::pedantic` and the rustc lints
//! users commonly deny, so any warning the expansion adds to user code fails CI.
#![deny(clippy::pedantic, unused, unreachable_pub, missing_docs, unsafe_code)]

use std::sync::Arc;

use traced_spawn::traced_spawn;

/// A free fn on a thread.
#[traced_spawn]
pub fn free(channel: String, count: usize) -> Result<usize, std::io::Error> {
    if channel.is_empty() {
        return Err(std::io::Error::other("no channel"));
    }
    Ok(channel.len() + count)
}

/// A fn whose body ends in a panic.
#[traced_spawn]
pub fn diverges(reason: String) {
    panic!("{reason}")
}

/// An async fn whose body never returns.
#[traced_spawn]
pub async fn forever(step: u64) {
    loop {
        tokio::task::yield_now().await;
        std::hint::black_box(step);
    }
}

/// A unit fn.
#[traced_spawn(name = "lints.unit", op = "queue.process", thread_name = "unit")]
pub fn unit(text: String) {
    drop(text);
}

/// An async fn with `err`.
#[traced_spawn(err)]
pub async fn task(question: String) -> Result<String, std::fmt::Error> {
    tokio::task::yield_now().await;
    Ok(question)
}

/// A blocking fn.
#[traced_spawn(blocking)]
pub fn blocking(values: Vec<u64>) -> u64 {
    values.iter().sum()
}

/// A rayon fn.
#[traced_spawn(rayon)]
pub fn pooled(values: Vec<u64>) -> u64 {
    values.iter().sum()
}

/// A type with traced methods.
pub struct Bot {
    prefix: String,
}

impl Bot {
    /// By value.
    #[traced_spawn]
    pub fn respond(self, question: String) -> String {
        format!("{}{question}", self.prefix)
    }

    /// Shared.
    #[traced_spawn]
    pub async fn respond_shared(self: Arc<Self>, question: String) -> String {
        format!("{}{question}", self.prefix)
    }
}

/// Generic.
#[traced_spawn]
pub fn generic<T: std::fmt::Display + Send + 'static>(
    value: T,
    extra: impl Into<String> + Send + 'static,
) -> String {
    format!("{value}{}", extra.into())
}

#[test]
fn lint_fixture_runs() {
    assert_eq!(free("ab".into(), 1).join().unwrap().unwrap(), 3);
    unit("x".into()).join().unwrap();
    assert_eq!(pooled(vec![1, 2]).join().unwrap(), 3);
    assert_eq!(generic(1, "b").join().unwrap(), "1b");
    assert_eq!(
        Bot {
            prefix: "> ".into()
        }
        .respond("q".into())
        .join()
        .unwrap(),
        "> q"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(task("q".into()).await.unwrap().unwrap(), "q");
        assert_eq!(blocking(vec![4]).await.unwrap(), 4);
        let bot = Arc::new(Bot {
            prefix: "# ".into(),
        });
        assert_eq!(bot.respond_shared("q".into()).await.unwrap(), "# q");
    });
}
