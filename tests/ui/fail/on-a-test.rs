// A test runs its body; a traced fn only spawns it. Either order, `#[test]` and `#[tokio::test]`.
use traced_spawn::traced_spawn;

#[traced_spawn]
#[test]
fn traced_above_test() {}

#[traced_spawn]
#[tokio::test]
async fn traced_above_tokio_test() {}

#[tokio::test]
#[traced_spawn]
async fn tokio_test_above_traced() {}

fn main() {}
