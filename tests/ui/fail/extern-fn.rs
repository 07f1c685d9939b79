use traced_spawn::traced_spawn;

#[traced_spawn]
extern "C" fn callback(value: u32) -> u32 {
    value
}

fn main() {}
