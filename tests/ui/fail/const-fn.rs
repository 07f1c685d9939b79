use traced_spawn::traced_spawn;

#[traced_spawn]
const fn answer() -> u32 {
    42
}

fn main() {}
