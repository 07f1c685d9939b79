use traced_spawn::traced_spawn;

#[traced_spawn(future, child)]
async fn fetch(n: u32) -> u32 {
    n
}

fn main() {}
