// The runtime crate under another name: `crate = path` tells the macro where to find it.
extern crate traced_spawn as ts;

use traced_spawn::traced_spawn;

mod reexports {
    pub use ::traced_spawn as runtime;
}

#[traced_spawn(crate = ts)]
fn via_extern_crate(value: u32) -> u32 {
    value
}

#[traced_spawn(crate = crate::reexports::runtime, name = "via.module")]
fn via_module(value: u32) -> u32 {
    value + 1
}

#[ts::traced_spawn(crate = ::traced_spawn)]
async fn via_absolute_path(value: u32) -> u32 {
    value + 2
}

#[tokio::main]
async fn main() {
    assert_eq!(via_extern_crate(1).join().unwrap(), 1);
    assert_eq!(via_module(1).join().unwrap(), 2);
    assert_eq!(via_absolute_path(1).await.unwrap(), 3);
}
