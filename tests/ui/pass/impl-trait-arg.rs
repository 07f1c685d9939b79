use traced_spawn::traced_spawn;

#[traced_spawn]
fn call(f: impl FnOnce() -> u32 + Send + 'static) -> u32 {
    f()
}

// Lifetimes inside `fn(..)` and `Fn(..)` are higher-ranked, not borrows of the caller's data.
#[traced_spawn]
fn measure(f: fn(&str) -> usize, text: String) -> usize {
    f(&text)
}

#[traced_spawn]
fn boxed(f: Box<dyn Fn(&str) -> usize + Send>) -> usize {
    f("abc")
}

#[traced_spawn]
async fn sum(items: impl Iterator<Item = u32> + Send + 'static) -> u32 {
    items.sum()
}

#[tokio::main]
async fn main() {
    assert_eq!(call(|| 5).join().unwrap(), 5);
    assert_eq!(measure(str::len, "four".to_owned()).join().unwrap(), 4);
    assert_eq!(boxed(Box::new(|s: &str| s.len())).join().unwrap(), 3);
    assert_eq!(sum(vec![1, 2, 3].into_iter()).await.unwrap(), 6);
}
