//! `future` hands the traced future back unspawned; `child` makes the body a span of the caller's.
use traced_spawn::traced_spawn;

#[traced_spawn(future)]
async fn fetch(n: u32) -> u32 {
    n
}

/// Not `Send`: a future the caller spawns where it wants need not be.
#[traced_spawn(future, name = "render")]
async fn render(n: std::rc::Rc<u32>) -> u32 {
    *n
}

#[traced_spawn(child)]
async fn part(n: u32) -> u32 {
    n * 2
}

#[traced_spawn(child, blocking)]
fn parse(n: u32) -> u32 {
    n + 1
}

#[tokio::main]
async fn main() {
    let mut set = tokio::task::JoinSet::new();
    for n in 0..3 {
        set.spawn(fetch(n));
    }
    let mut sum = 0;
    while let Some(n) = set.join_next().await {
        sum += n.unwrap();
    }
    assert_eq!(sum, 3);
    let direct: traced_spawn::Continued<_> = fetch(4);
    assert_eq!(direct.await, 4);
    assert_eq!(render(std::rc::Rc::new(5)).await, 5);
    assert_eq!(part(3).await.unwrap(), 6);
    assert_eq!(parse(3).await.unwrap(), 4);
}
