use traced_spawn::traced_spawn;

#[traced_spawn(future)]
fn fetch(n: u32) -> u32 {
    n
}

fn main() {}
