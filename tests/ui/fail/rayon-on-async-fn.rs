use traced_spawn::traced_spawn;

#[traced_spawn(rayon)]
async fn index(items: Vec<u32>) -> u32 {
    items.iter().sum()
}

fn main() {}
