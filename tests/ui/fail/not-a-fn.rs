use traced_spawn::traced_spawn;

#[traced_spawn]
struct NotAFunction {
    field: u32,
}

fn main() {
    // The item is kept as written, so its uses still type-check.
    let _ = NotAFunction { field: 1 }.field;
}
