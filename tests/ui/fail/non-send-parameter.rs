use std::rc::Rc;

use traced_spawn::traced_spawn;

#[traced_spawn]
fn count(counter: Rc<u32>) -> u32 {
    *counter
}

fn main() {}
