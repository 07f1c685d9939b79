use std::fmt::Debug;

use traced_spawn::traced_spawn;

#[traced_spawn]
fn describe<T: Debug + Send + 'static>(value: T) -> String {
    format!("{value:?}")
}

#[traced_spawn]
fn total<I>(items: I) -> u64
where
    I: IntoIterator<Item = u64> + Send + 'static,
{
    items.into_iter().sum()
}

#[traced_spawn]
async fn echo<T: Send + 'static>(value: T) -> T {
    value
}

struct Wrapper<T>(T);

impl<T: Send + 'static> Wrapper<T> {
    #[traced_spawn]
    fn into_inner(self) -> T {
        self.0
    }
}

#[tokio::main]
async fn main() {
    assert_eq!(describe(Some(3)).join().unwrap(), "Some(3)");
    assert_eq!(total(vec![1, 2, 3]).join().unwrap(), 6);
    assert_eq!(echo("x".to_owned()).await.unwrap(), "x");
    assert_eq!(Wrapper(7u8).into_inner().join().unwrap(), 7);
}
